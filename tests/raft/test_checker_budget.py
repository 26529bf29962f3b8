"""The live checker on a history that once froze a run (issue 13): many clients stuck behind a partition on one key.
It must finish with every operation judged; with a budget too small for it, the key is undecided (an event, and
the invariants diagram says so), never violated."""

from __future__ import annotations

import json
from typing import Any

from patterns.core.player import apply_action
from patterns.core.scenario import decode
from patterns.core.sim import Simulation
from patterns.raft.diagrams import invariants
from patterns.raft.engine import RaftEngine
from patterns.raft.linearizability import BUDGET
from patterns.raft.pattern import PATTERN
from tests.support import outputs_under_hash_seeds

STUCK = [  # the repro: a client joins the cut-off side before each new operation on k1
    "1:partition:groups=c1.c2.c3.c4.c5|s1.s2.s3",
    "1.120:client_request:op=set,key=k1,value=v6",
    "1.123:partition:groups=c1.c2.c3.c4.c5.c6|s1.s2.s3",
    "1.126:client_request:op=get,key=k1,value=x",
    "1.130:client_request:op=set,key=k1,value=v7",
    "1.133:partition:groups=c1.c2.c3.c4.c5.c6.c7|s1.s2.s3",
    "1.136:client_request:op=get,key=k1,value=x",
    "1.140:client_request:op=set,key=k1,value=v8",
    "1.143:partition:groups=c1.c2.c3.c4.c5.c6.c7.c8|s1.s2.s3",
    "1.146:client_request:op=get,key=k1,value=x",
    "1.150:client_request:op=set,key=k1,value=v9",
    "1.153:partition:groups=c1.c2.c3.c4.c5.c6.c7.c8.c9|s1.s2.s3",
    "1.156:client_request:op=get,key=k1,value=x",
]
REPRO = [
    ("seed", "5"),
    ("servers", "3"),
    ("clients", "5"),
    ("keys", "1"),
    ("client_rate", "12"),
    ("read_share", "0.6"),
    ("client_timeout_ms", "300"),
    *(("do", action) for action in STUCK),
    ("do", "3:heal"),
    ("do", "3:set_client_rate:rate=12"),
]


def run(until: float, budget: int = BUDGET) -> tuple[RaftEngine, list[dict[str, Any]]]:
    scenario = decode(PATTERN, REPRO)
    sim = Simulation(scenario.seed)
    engine = RaftEngine(sim, scenario.values)
    engine.checker.history.budget = budget
    engine.start()
    for action in scenario.script:
        sim.run_until(action.t)
        apply_action(sim, engine, action)
    sim.run_until(until)
    return engine, [{**e.as_dict(), "n": e.seq} for e in sim.collect()]


def test_the_repro_has_many_operations_in_flight_on_one_key():
    _, events = run(1.2)
    invoked, completed = set(), set()
    for e in events:
        if e["type"] == "client.invoke":
            invoked.add((e["client"], e["op_seq"]))
        elif e["type"] == "client.complete":
            completed.add((e["client"], e["op_seq"]))
    assert len(invoked - completed) >= 8


def test_the_repro_runs_to_the_end_with_every_operation_judged():
    engine, events = run(30.0)
    completions = sum(e["type"] == "client.complete" for e in events)
    assert completions > 2500
    assert engine.checker.history.checked == completions
    assert engine.checker.violations == [] and engine.checker.undecided == []
    assert max(key.work for key in engine.checker.history.keys.values()) <= BUDGET


def test_over_a_small_budget_the_key_is_undecided_as_an_event_and_on_the_diagram():
    engine, events = run(5.0, budget=200)
    assert engine.checker.violations == []
    undecided = [e for e in events if e["type"] == "invariant.undecided"]
    assert undecided and [(e["cause"], e["detail"]) for e in undecided] == [
        (v["cause"], v["detail"]) for v in engine.checker.undecided
    ]
    causes = {e["n"]: e for e in events}
    assert all(causes[e["cause"]]["type"] == "client.complete" and e["n"] == e["cause"] + 1 for e in undecided)
    assert all(e["invariant"] == "linearizability" and "gave up on key k1" in e["detail"] for e in undecided)
    drawing = invariants(engine)
    assert "UNDECIDED" in drawing.mermaid and "class linearizability undecided" in drawing.mermaid
    assert f"UNDECIDED at event #{undecided[0]['cause']}" in drawing.details["linearizability"]
    assert "undecided: linearizability" in drawing.caption
    assert drawing.details["linearizability"].count("gave up on key k1") == 1


GIVE_UP_IN_A_PROCESS = """
import hashlib, json
from tests.raft.test_checker_budget import run
engine, events = run(5.0, budget=200)
print(json.dumps(engine.checker.undecided))
print(hashlib.sha256(json.dumps(events, sort_keys=True).encode()).hexdigest())
"""


def test_where_the_search_gives_up_is_the_same_whatever_the_hash_seed():
    """The frontier is a set of nodes holding strings, visited in an order that string hashes decide: where the
    budget runs out, and so the run's events, must not depend on that order."""
    outputs = outputs_under_hash_seeds(GIVE_UP_IN_A_PROCESS, seeds=("1", "2", "3"))
    assert outputs[0] == outputs[1] == outputs[2]
    assert json.loads(outputs[0].splitlines()[0])
