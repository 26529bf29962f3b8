"""Each "break a rule" preset breaks the invariant its rule protects, and the checker flags it at the very event
that does, as a naive oracle (whole logs as lists, every definition taken literally) finds it; with the rule in
place, the same script breaks nothing. Random fault schedules with rules broken at random are judged by both too
(RAFT_BROKEN_SCHEDULES of them, 40 by default)."""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

from patterns.core.player import apply_action
from patterns.core.scenario import decode
from patterns.core.sim import Simulation
from patterns.raft.engine import RaftEngine
from patterns.raft.invariants import RULES, check_events
from patterns.raft.pattern import PATTERN

from .test_fault_schedules import run_schedule

BROKEN = {  # preset -> (its rule's parameter, the invariants it must break)
    "break-vote-log-check": ("break_vote_log_check", ("leader_completeness",)),
    "break-commit-current-term": ("break_commit_current_term", ("state_machine_safety",)),
    "break-persist-vote": ("break_persist_vote", ("election_safety",)),
    "break-consistency-check": ("break_consistency_check", ("log_matching",)),
}
RULE_OF = {"break-commit-current-term": "commit_own_term", "break-persist-vote": "persistent_state"}  # checked too
NOT_IN_LOGS = ("linearizability", *RULES)  # what the oracle, reading logs, does not judge
SETTLE = 3.0  # virtual seconds after the last scripted action
BROKEN_SCHEDULES = int(os.environ.get("RAFT_BROKEN_SCHEDULES", "40"))


def play(slug: str, **params: Any) -> tuple[RaftEngine, list[dict[str, Any]]]:
    """The preset (with ``params`` changed), to a few seconds after its last action; the events as dicts, each with
    its own number under ``n`` (a client event's ``seq`` is the client's)."""
    scenario = decode(PATTERN, [("preset", slug), *((k, str(v).lower()) for k, v in params.items())])
    sim = Simulation(scenario.seed)
    engine = RaftEngine(sim, scenario.values)
    engine.start()
    for action in scenario.script:
        sim.run_until(action.t)
        apply_action(sim, engine, action)
    sim.run_until(max(a.t for a in scenario.script) + SETTLE)
    return engine, [{**e.as_dict(), "n": e.seq} for e in sim.collect()]


class Oracle:
    """The five properties read literally from whole logs, recomputed from scratch after every event: slow and
    obviously right, for a stream of a few hundred events without snapshots."""

    def __init__(self) -> None:
        self.logs: dict[str, list[tuple[int, str]]] = {}  # server -> [(term, command as text)], index 1 first
        self.terms: dict[str, int] = {}
        self.leaders: dict[int, set[str]] = {}
        self.committed: dict[tuple[int, int, str], int] = {}  # entry (index, term, text) -> lowest term committed
        self.applied: dict[int, set[tuple[int, str]]] = {}
        self.broken: set[str] = set()

    def see(self, event: dict[str, Any]) -> set[str]:
        kind = event["type"]
        assert kind not in ("raft.snapshot", "raft.install"), "the oracle has no snapshots"
        server = event.get("server")
        log = self.logs.setdefault(server, []) if server else []
        if kind in ("raft.role", "raft.term", "raft.restart"):
            self.terms[server] = event["term"]
        if kind == "raft.role" and event["role"] == "leader":
            self.leaders.setdefault(event["term"], set()).add(server)
            self._check_completeness(log, event["term"])
        elif kind == "raft.append":
            del log[event["index"] - 1 :]
            log += [(e["term"], repr(sorted(e["command"].items()))) for e in event["entries"]]
        elif kind == "raft.truncate":
            del log[event["index"] - 1 :]
        elif kind == "raft.commit":
            for index, (term, text) in enumerate(log[: event["index"]], start=1):
                key = (index, term, text)
                self.committed[key] = min(self.committed.get(key, self.terms[server]), self.terms[server])
        elif kind == "raft.apply":
            self.applied.setdefault(event["index"], set()).add((event["term"], repr(sorted(event["command"].items()))))
        if any(len(leaders) > 1 for leaders in self.leaders.values()):
            self.broken.add("election_safety")
        if any(len(entries) > 1 for entries in self.applied.values()):
            self.broken.add("state_machine_safety")
        if kind in ("raft.append", "raft.truncate", "raft.restart") and self._logs_disagree():
            self.broken.add("log_matching")
        return set(self.broken)

    def _check_completeness(self, log: list[tuple[int, str]], term: int) -> None:
        for (index, entry_term, text), committed_in in self.committed.items():
            if committed_in < term and (len(log) < index or log[index - 1] != (entry_term, text)):
                self.broken.add("leader_completeness")

    def _logs_disagree(self) -> bool:
        """Two logs with entries of the same term at an index, but not the same entries up to it."""
        logs = list(self.logs.values())
        for n, a in enumerate(logs):
            for b in logs[n + 1 :]:
                common = min(len(a), len(b))
                parted = next((i for i in range(common) if a[i] != b[i]), common)
                if any(a[i][0] == b[i][0] for i in range(parted, common)):
                    return True
        return False


def first_breaks(events: list[dict[str, Any]]) -> dict[str, int]:
    """Invariant -> the number of the first event after which the oracle finds it broken."""
    oracle, first = Oracle(), {}
    for event in events:
        for name in oracle.see(event):
            first.setdefault(name, event["n"])
    return first


@pytest.mark.parametrize("slug", sorted(BROKEN))
def test_the_preset_breaks_its_invariant_at_the_event_that_does(slug):
    _, expected = BROKEN[slug]
    engine, events = play(slug)
    oracle = first_breaks(events)
    assert set(expected) <= set(oracle), f"the story no longer breaks {expected}: {oracle}"
    first_flagged: dict[str, int] = {}
    for violation in engine.checker.violations:
        if violation["invariant"] not in NOT_IN_LOGS:  # the oracle judges the logs only
            first_flagged.setdefault(violation["invariant"], violation["cause"])
    assert first_flagged == oracle
    flagged = [e for e in events if e["type"] == "invariant.violated"]
    assert [(e["invariant"], e["cause"]) for e in flagged] == [
        (v["invariant"], v["cause"]) for v in engine.checker.violations
    ]
    assert all(e["n"] == e["cause"] + 1 for e in flagged), "emitted right after the event that caused it"


@pytest.mark.parametrize("slug", sorted(RULE_OF))
def test_the_broken_rule_itself_is_flagged_no_later_than_what_it_breaks(slug):
    engine, _ = play(slug)
    causes = {}
    for violation in engine.checker.violations:
        causes.setdefault(violation["invariant"], violation["cause"])
    _, consequences = BROKEN[slug]
    assert all(causes[RULE_OF[slug]] <= causes[name] for name in consequences), causes


@pytest.mark.parametrize("slug", sorted(BROKEN))
def test_the_same_script_with_the_rule_kept_breaks_nothing(slug):
    rule, _ = BROKEN[slug]
    engine, events = play(slug, **{rule: False})
    assert engine.checker.violations == []
    assert first_breaks(events) == {}
    assert check_events(events) == []


@pytest.mark.parametrize("slug", sorted(BROKEN))
def test_the_exported_stream_is_judged_the_same(slug):
    engine, events = play(slug)
    exported = [{k: v for k, v in e.items() if k != "n"} for e in events]
    assert [(v["invariant"], v["cause"], v["detail"]) for v in check_events(exported)] == [
        (v["invariant"], v["cause"], v["detail"]) for v in engine.checker.violations
    ]


@pytest.mark.parametrize("seed", range(BROKEN_SCHEDULES))
def test_random_schedules_with_broken_rules_agree_with_the_oracle(seed):
    """Fault schedules with rules broken at random: whatever breaks, the checker flags it first where the oracle
    does (no snapshots and no membership changes, which the oracle does not model)."""
    rng = random.Random(seed)
    broken = {rule: rng.random() < 0.5 for rule, _ in BROKEN.values()}
    engine, events, script = run_schedule(seed, snapshot_threshold=0, **broken)
    numbered = [{**e, "n": n} for n, e in enumerate(events)]
    first_flagged: dict[str, int] = {}
    for violation in engine.checker.violations:
        if violation["invariant"] not in NOT_IN_LOGS:
            first_flagged.setdefault(violation["invariant"], violation["cause"])
    assert first_flagged == first_breaks(numbered), (broken, script)


def test_a_refusal_storm_stays_paced_by_the_heartbeat():
    """With the vote's log check broken, schedule 51 elects a leader whose log ends before its followers'
    snapshots: they refuse every AppendEntries at the entry after the one they were known to match. Each such
    refusal used to beget a new request at once, and each heartbeat round started one more endless exchange: 30,000
    events by 3 virtual s, a million by 3.3. Paced by the heartbeat, every later virtual second costs what a busy
    correct run's does (about 2,000 events for seven servers and three clients), with a handful of messages in
    flight."""
    engine, _, _ = run_schedule(51, break_vote_log_check=True, servers=7)  # fails on a storm by 4 virtual s
    sim = engine.sim
    for _ in range(10):
        start, most_in_flight = sim.next_seq, 0
        for _ in range(20):
            sim.run_until(sim.now + 0.05)
            most_in_flight = max(most_in_flight, len(engine.net.in_flight()))
        assert sim.next_seq - start < 5_000, f"{sim.next_seq - start} events in the virtual second to {sim.now:.1f}"
        assert most_in_flight < 100
