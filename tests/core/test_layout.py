"""Every pattern app has the same files and runs commands the same way, so that a reader who knows one knows all
(docs/ARCHITECTURE.md)."""

from __future__ import annotations

import inspect
from importlib import import_module
from pathlib import Path

import pytest
from django.template.loader import get_template

from patterns.core.commands import PREFIX, handler
from patterns.core.player import Player
from patterns.core.registry import all_patterns
from patterns.core.scenario import default_scenario

from .toy import LIMITS

PATTERNS_DIR = Path(__file__).resolve().parents[2] / "patterns"
APPS = ("raft", "circuit_breaker", "load_balancing", "messaging")
DESCRIPTOR = ("params.py", "presets.py", "stories.py", "events.py", "pattern.py", "engine.py", "diagrams.py", "apps.py")


@pytest.mark.parametrize(
    "app",
    APPS,
)
def test_each_app_has_the_descriptor_files(app: str) -> None:
    missing = [name for name in DESCRIPTOR if not (PATTERNS_DIR / app / name).is_file()]
    assert not missing, f"patterns/{app} lacks {missing}"


def test_every_registered_pattern_is_one_of_these_apps() -> None:
    descriptors = {import_module(f"patterns.{app}.pattern").PATTERN.slug for app in APPS}
    assert {p.slug for p in all_patterns()} <= descriptors | {"toy"}


@pytest.mark.parametrize("app", APPS)
def test_explain_template_lives_in_its_app(app: str) -> None:
    pattern = import_module(f"patterns.{app}.pattern").PATTERN
    origin = Path(get_template(pattern.explain_template).origin.name)
    assert origin == PATTERNS_DIR / app / "templates" / app / "explain.html"


@pytest.mark.parametrize("app", APPS)
def test_every_command_has_its_method_with_its_arguments(app: str) -> None:
    pattern = import_module(f"patterns.{app}.pattern").PATTERN
    wrong = {}
    for command in pattern.commands:
        method = handler(pattern.engine, command.name)
        arguments = None if method is None else list(inspect.signature(method).parameters)[1:]
        if arguments != [arg.name for arg in command.args]:
            wrong[command.name] = arguments
    assert not wrong, f"{pattern.slug}: commands whose {PREFIX}<command> method is missing or takes other arguments"


@pytest.mark.parametrize("app", APPS)
def test_which_nodes_exist_is_the_pattern_s_to_say_not_the_engine_s(app: str) -> None:
    """One list of what exists now (`Pattern.targets`) fills the page's pickers and refuses live commands: no engine
    keeps a ``targets`` of its own, and every kind of node a command's argument or a node action names is listed."""
    pattern = import_module(f"patterns.{app}.pattern").PATTERN
    assert not hasattr(pattern.engine, "targets")
    listed = set(pattern.targets(Player(pattern, default_scenario(pattern), LIMITS).engine))
    kinds = {arg.target for command in pattern.commands for arg in command.args if arg.target}
    assert kinds and kinds | {a.kind for a in pattern.node_actions if a.arg} <= listed
