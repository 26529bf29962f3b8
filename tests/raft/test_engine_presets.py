"""Every preset plays to its end; with every rule in place none breaks an invariant, and each broken-rule preset
leads to a real violation of the invariant its rule protects (and the same script with the rule kept does not)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from patterns.core.scenario import decode, encode
from patterns.raft.pattern import PATTERN
from patterns.raft.presets import PRESETS

from .test_engine_basics import run_preset

BROKEN = {
    "break-vote-log-check": ("break_vote_log_check", {"leader_completeness", "state_machine_safety"}),
    "break-commit-current-term": ("break_commit_current_term", {"state_machine_safety"}),
    "break-persist-vote": ("break_persist_vote", {"election_safety"}),
    "break-consistency-check": ("break_consistency_check", {"log_matching"}),
}


def end_of(preset) -> float:
    return max((t for t, _, _ in preset.script), default=0.0) + 3.0


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.slug)
def test_preset_plays_and_round_trips_through_a_link(preset):
    scenario = decode(PATTERN, [("preset", preset.slug)])
    assert decode(PATTERN, parse_qsl(encode(PATTERN, scenario))) == scenario
    run = run_preset(preset.slug, end_of(preset))
    found = {v["invariant"] for v in run.violations()}
    if preset.slug in BROKEN:
        assert BROKEN[preset.slug][1] <= found
    else:
        assert not found
        assert run.leaders()


@pytest.mark.parametrize("slug", sorted(BROKEN))
def test_the_broken_rule_is_what_breaks_it(slug):
    """The same script with the rule kept is safe: the toggle disables exactly that rule."""
    rule, _ = BROKEN[slug]
    preset = next(p for p in PRESETS if p.slug == slug)
    run = run_preset(slug, end_of(preset), **{rule: False})
    assert not run.violations()


def test_a_violation_names_the_event_that_caused_it():
    run = run_preset("break-persist-vote", 2.0)
    forgot, second_leader = run.violations()[:2]
    cause = next(e for e in run.events if e["seq"] == second_leader["cause"])
    assert second_leader["invariant"] == "election_safety"
    assert cause["type"] == "raft.role" and cause["role"] == "leader" and cause["server"] == "s3"
    assert second_leader["seq"] == cause["seq"] + 1
    cause = next(e for e in run.events if e["seq"] == forgot["cause"])  # the broken rule, before its consequence
    assert forgot["invariant"] == "persistent_state" and cause["type"] == "raft.restart"
    assert forgot["seq"] == cause["seq"] + 1


def test_a_live_perturbation_keeps_the_presets_later_steps_and_the_link_replays_it():
    """On leader-crash, timing s3 out at 1 s adds to the story: s1 still crashes at 2 s and restarts at 4 s."""
    from patterns.core.export import event_lines
    from patterns.core.player import Player
    from tests.core.toy import LIMITS

    player = Player(PATTERN, decode(PATTERN, [("preset", "leader-crash")]), LIMITS)
    lines = list(event_lines(player, 1.0))
    player.act("timeout", (("server", "s3"),))
    lines += list(event_lines(player, 6.0))
    commands = [(e["t"], e["command"], e["args"]["server"]) for e in map(json.loads, lines) if e["type"] == "command"]
    assert commands == [(1.0, "timeout", "s3"), (2.0, "crash", "s1"), (4.0, "restart", "s1")]
    shared = decode(PATTERN, parse_qsl(encode(PATTERN, player.scenario)))
    assert list(event_lines(Player(PATTERN, shared, LIMITS), 6.0)) == lines
