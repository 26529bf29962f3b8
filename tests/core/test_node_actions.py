"""What the page needs to steer by touching the picture: every pattern's node actions name real commands and
arguments and match nodes its diagrams draw; target lists hold only what exists now; the log is readable."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from patterns.core.frames import _text, frame_data, log_rows
from patterns.core.player import Player
from patterns.core.registry import NodeActions, Param, Pattern, all_patterns
from patterns.core.scenario import decode, default_scenario

from .toy import TOY

REAL = [p for p in all_patterns() if p.slug != "toy"]


def drawn_nodes(pattern: Pattern, scenario) -> tuple[set[str], dict]:
    """Every word of the diagrams' sources (a superset of their node ids), and the targets, at 2 s."""
    player = Player(pattern, scenario, settings.PLAYGROUND)
    player.advance_to(2.0)
    words: set[str] = set()
    for diagram in pattern.diagrams:
        drawing = diagram.draw(player.engine)
        words |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", drawing.mermaid)) | set(drawing.details)
    return words, pattern.targets(player.engine)


@pytest.mark.parametrize("pattern", REAL, ids=lambda p: p.slug)
def test_node_actions_match_drawn_nodes_of_targets_that_exist(pattern):
    """Each declared node pattern matches a node of the default scenario or of a preset, and names a target the
    pattern lists as existing then (the page offers a node's actions only in that case)."""
    assert pattern.node_actions
    scenarios = [default_scenario(pattern), *(decode(pattern, [("preset", p.slug)]) for p in pattern.presets)]
    unmatched = list(pattern.node_actions)
    for scenario in scenarios:
        words, targets = drawn_nodes(pattern, scenario)
        for actions in list(unmatched):
            for node in (w for w in words if re.fullmatch(actions.node, w)):
                name = actions.name or (re.fullmatch(actions.node, node).groups() or ("",))[0]
                assert not actions.arg or name in targets.get(actions.kind, ()), (node, name, targets)
                unmatched.remove(actions)
                break
        if not unmatched:
            break
    assert not unmatched


@pytest.mark.parametrize("pattern", REAL, ids=lambda p: p.slug)
def test_node_actions_fix_an_argument_their_commands_take(pattern):
    for actions in pattern.node_actions:
        if actions.arg:
            assert any(actions.arg in {a.name for a in pattern.command(c).args} for c in actions.commands), actions


def test_messaging_targets_are_the_consumers_that_exist_not_every_possible_name():
    pattern = next(p for p in REAL if p.slug == "messaging")
    player = Player(pattern, default_scenario(pattern), settings.PLAYGROUND)
    assert pattern.targets(player.engine) == {"consumer": ("W1", "W2", "W3"), "consumer link": ("W1", "W2", "W3")}
    player.act("add_consumer", ())
    player.act("remove_consumer", (("consumer", "W1"),))
    player.advance_to(30.0)
    targets = pattern.targets(player.engine)
    assert targets["consumer"] == ("W2", "W3", "W4") and targets["consumer link"] == ("W1", "W2", "W3", "W4")
    frame = frame_data(player, run_id=None, frame=0, playing=False, speed=1.0, diagrams={})
    assert frame["targets"] == {k: list(v) for k, v in pattern.targets(player.engine).items()}


def test_a_node_action_naming_an_unknown_command_or_diagram_is_refused():
    with pytest.raises(ValueError, match="unknown command"):
        Pattern(**{**_fields(TOY), "node_actions": (NodeActions("node", "Node", "n([0-9])", ("nope",)),)})
    with pytest.raises(ValueError, match="unknown diagrams"):
        Pattern(**{**_fields(TOY), "focus": ("nope",)})


def test_the_log_keeps_rare_events_beside_routine_ones_and_shows_values_readably():
    pattern = Pattern(**{**_fields(TOY), "routine": ("tick",)})
    player = Player(pattern, decode(pattern, [("rate", "50"), ("do", "0.5:label:name=a")]), settings.PLAYGROUND)
    player.advance_to(5.0)
    player.drain()
    rows = log_rows(player, 3)
    assert [r["routine"] for r in rows].count(True) == 3
    assert [r["type"] for r in rows if not r["routine"]] == ["label", "command"]  # 5 s later, still listed
    assert all(r["nodes"] in {"", "0", "1", "2"} for r in rows) and any(r["nodes"] for r in rows)
    assert _text(None) == "none" and _text(True) == "yes" and _text(0.1 + 0.2) == "0.3" and _text(2.0) == "2"
    assert _text(123456789.123) == "1.235e+08" and _text({"a": None, "b": [1.23456]}) == "{a=none, b=[1.235]}"


def test_options_belong_to_a_text_parameter_with_a_separator():
    with pytest.raises(ValueError, match="separator"):
        Param("lanes", "choice", "a", choices=("a",), options=("a", "b"))
    lanes = Param("lanes", "text", "a.b", pattern=r"[ab](\.[ab])*", options=("a", "b"), separator=".")
    assert lanes.describe()["options"] == ["a", "b"] and lanes.parse("b.a") == "b.a"


def _fields(pattern: Pattern) -> dict:
    return {name: getattr(pattern, name) for name in pattern.__dataclass_fields__}
