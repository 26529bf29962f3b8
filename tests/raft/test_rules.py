"""Two rules of Figure 2 are checked at the event that breaks them, not only at the rare later event where a
safety property fails: a leader commits by counting replicas only an entry of its own term, and a restart keeps
currentTerm and votedFor. The truth comes from the engine itself, not from events: the servers' methods are wrapped
to note each commit a leader makes of an entry not of its term, and each restart that finds the term or vote the
crash left changed. With a rule broken, every such moment is flagged at its event (once per server and term);
with the rules kept, none is, over RAFT_RULE_SCHEDULES random fault schedules each (40 by default)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from patterns.raft.invariants import RULES
from patterns.raft.server import LEADER, Server

from .test_fault_schedules import run_schedule

RULE_SCHEDULES = int(os.environ.get("RAFT_RULE_SCHEDULES", "40"))
SWITCHES = {  # rule -> the parameters that break it (and make the schedules give it chances to show)
    "commit_own_term": {"break_commit_current_term": True, "max_batch": 1, "clients": 3, "client_rate": 20.0},
    "persistent_state": {"break_persist_vote": True},
}


@pytest.fixture
def truth(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[tuple[str, int], int]]:
    """Rule -> (server, term) -> seq of the first event at which the engine broke it (filled as runs go)."""
    broken: dict[str, dict[tuple[str, int], int]] = {rule: {} for rule in RULES}
    left: dict[str, tuple[int, str | None]] = {}  # server -> (term, vote) its crash left
    commit_to, crash, restart = Server._commit_to, Server.crash, Server.restart

    def noting_commit(self: Server, index: int) -> None:
        if self.role == LEADER and index > self.commit_index and self.log.term_at(index) != self.current_term:
            broken["commit_own_term"].setdefault((self.id, self.current_term), self.sim.next_seq)
        commit_to(self, index)

    def noting_crash(self: Server) -> None:
        left[self.id] = (self.current_term, self.voted_for)
        crash(self)

    def noting_restart(self: Server) -> None:
        seq = self.sim.next_seq  # of the raft.restart event: a restart emits nothing before it
        restart(self)
        before = left.pop(self.id, None)
        if before is not None and before != (self.current_term, self.voted_for):
            broken["persistent_state"].setdefault((self.id, before[0]), seq)

    monkeypatch.setattr(Server, "_commit_to", noting_commit)
    monkeypatch.setattr(Server, "crash", noting_crash)
    monkeypatch.setattr(Server, "restart", noting_restart)
    return broken


def flagged(engine: Any, rule: str) -> set[int]:
    return {v["cause"] for v in engine.checker.violations if v["invariant"] == rule}


@pytest.mark.parametrize("rule", RULES)
def test_with_the_rule_broken_each_break_is_flagged_at_its_event(rule, truth):
    breaks = 0
    for seed in range(RULE_SCHEDULES):
        for found in truth.values():
            found.clear()
        engine, events, script = run_schedule(seed, **SWITCHES[rule])
        expected = set(truth[rule].values())
        assert flagged(engine, rule) == expected, (seed, script)
        kinds = {events[n]["type"] for n in expected}
        assert kinds <= {"raft.commit", "raft.restart"}, kinds
        breaks += len(expected)
    assert breaks >= 3, "the schedules hardly ever break the rule: nothing was tested"


def test_with_the_rules_kept_nothing_is_flagged(truth):
    for seed in range(RULE_SCHEDULES):
        engine, _, script = run_schedule(seed)
        assert all(found == {} for found in truth.values()), (seed, script)
        assert [v for v in engine.checker.violations if v["invariant"] in RULES] == [], (seed, script)
