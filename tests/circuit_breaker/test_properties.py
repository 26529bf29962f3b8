"""Invariants that hold for any configuration and any perturbation, checked on random scenarios (hypothesis)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.circuit_breaker.breaker import HALF_OPEN_RULES, POLICIES, RECORDING_RULES
from patterns.circuit_breaker.engine import BREAKER_TARGETS, SERVICE_TARGETS

from .test_engine import make_params, run_script
from .test_policies import replay

RUN_FOR = 20.0
DRAIN = 40.0  # longer than any call can last with the timeouts and retries drawn below

PARAMS = st.fixed_dictionaries(
    {
        "topology": st.sampled_from(["single", "chain"]),
        "breakers": st.sampled_from([True, True, True, False]),  # mostly with breakers: they are what is tested
        "request_rate": st.sampled_from([15.0, 5.0, 40.0]),
        "downstream_share": st.sampled_from([0.5, 1.0]),
        "failure_probability": st.sampled_from([0.3, 0.7, 0.05, 0.0]),
        "latency_ms": st.sampled_from([5.0, 50.0, 300.0]),
        "latency_spread": st.sampled_from([0.0, 0.8]),
        "tail_probability": st.sampled_from([0.0, 0.1]),
        "service_concurrency": st.integers(1, 6),
        "service_queue": st.integers(0, 6),
        "timeout_ms": st.sampled_from([100.0, 700.0, 2000.0]),
        "upstream_timeout_ms": st.sampled_from([300.0, 2500.0]),
        "user_timeout_ms": st.sampled_from([500.0, 5000.0]),
        "caller_limit": st.sampled_from([0, 3, 20]),
        "retries": st.integers(0, 2),
        "retry_backoff_ms": st.sampled_from([10.0, 200.0]),
        "policy": st.sampled_from(POLICIES),
        "window_size": st.integers(1, 12),
        "minimum_calls": st.integers(1, 12),
        "failure_threshold": st.sampled_from([20.0, 50.0, 100.0]),
        "slow_threshold": st.sampled_from([30.0, 100.0]),
        "slow_call_ms": st.sampled_from([50.0, 500.0]),
        "consecutive_failures": st.integers(1, 5),
        "open_wait_s": st.sampled_from([0.2, 1.0, 3.0]),
        "backoff_multiplier": st.sampled_from([1.0, 2.0]),
        "max_open_wait_s": st.sampled_from([0.5, 10.0]),
        "half_open_transition": st.sampled_from(["lazy", "automatic"]),
        "half_open_calls": st.integers(1, 4),
        "half_open_rule": st.sampled_from(HALF_OPEN_RULES),
        "max_half_open_s": st.sampled_from([0.0, 0.15, 1.0]),
        "recording_rule": st.sampled_from(RECORDING_RULES),
    }
)

SERVICE = st.sampled_from(SERVICE_TARGETS)
BREAKER = st.sampled_from(BREAKER_TARGETS)
COMMAND = st.one_of(
    st.tuples(
        st.just("outage_on"), st.fixed_dictionaries({"service": SERVICE, "mode": st.sampled_from(["error", "hang"])})
    ),
    st.tuples(st.just("outage_off"), st.fixed_dictionaries({"service": SERVICE})),
    st.tuples(st.just("slow_on"), st.fixed_dictionaries({"service": SERVICE, "factor": st.sampled_from([3.0, 20.0])})),
    st.tuples(st.just("slow_off"), st.fixed_dictionaries({"service": SERVICE})),
    st.tuples(
        st.just("set_failure_probability"),
        st.fixed_dictionaries({"service": SERVICE, "probability": st.sampled_from([0.0, 0.5, 1.0])}),
    ),
    st.tuples(
        st.just("set_latency"), st.fixed_dictionaries({"service": SERVICE, "median_ms": st.sampled_from([5.0, 400.0])})
    ),
    st.tuples(st.just("set_request_rate"), st.fixed_dictionaries({"rate": st.sampled_from([0.0, 10.0, 60.0])})),
    st.tuples(st.just("burst"), st.fixed_dictionaries({"count": st.integers(1, 30)})),
    st.tuples(
        st.sampled_from(["force_open", "disable", "metrics_only", "reset_breaker"]),
        st.fixed_dictionaries({"breaker": BREAKER}),
    ),
)
SCRIPT = st.lists(
    st.tuples(st.integers(0, int(RUN_FOR * 10)).map(lambda tenths: tenths / 10), COMMAND), max_size=12
).map(lambda items: sorted(items, key=lambda item: item[0]))
SEED = st.integers(0, 2**16)


def play(params: dict[str, Any], script: list, seed: int, snapshot_at: float | None = None) -> list[dict[str, Any]]:
    """Run the scenario, then stop the users and let every call in flight finish."""
    items = [(t, command, args) for t, (command, args) in script] + [(RUN_FOR, "set_request_rate", {"rate": 0.0})]
    engine, events = run_script(params, items, seed, RUN_FOR + DRAIN, snapshot_at)
    assert all(hop.in_flight == 0 and not hop.pending for hop in engine.hops)
    return events


def check_invariants(events: list[dict[str, Any]], params: dict[str, Any]) -> None:
    # the stream is ordered
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert all(a["t"] <= b["t"] for a, b in itertools.pairwise(events))

    outcome_of: dict[int, dict[str, Any]] = {}
    started: dict[int, dict[str, Any]] = {}
    served: set[int] = set()
    state = defaultdict(lambda: "CLOSED" if params["breakers"] else "DISABLED")
    trials_in_flight: dict[str, set[int]] = defaultdict(set)
    trial_calls: dict[int, str] = {}
    admitted_while: dict[int, str] = {}
    for e in events:
        kind = e["type"]
        if kind == "transition":
            state[e["hop"]] = e["to"]
            trials_in_flight[e["hop"]] = set()  # trials of an earlier episode no longer count (nor are recorded)
        elif kind == "call":
            assert e["call"] not in started, "call ids are unique"
            started[e["call"]] = e
            admitted_while[e["call"]] = state[e["hop"]] if e["state"] is not None else "none"
            if e["trial"]:
                trials_in_flight[e["hop"]].add(e["call"])
                trial_calls[e["call"]] = e["hop"]
                assert len(trials_in_flight[e["hop"]]) <= params["half_open_calls"]
        elif kind == "serve":
            assert e["call"] in started and e["call"] not in served
            served.add(e["call"])
        elif kind == "outcome":
            assert e["call"] in started, "no outcome without a start"
            assert e["call"] not in outcome_of, "one outcome per call"
            outcome_of[e["call"]] = e
            if e["call"] in trial_calls:
                trials_in_flight[trial_calls.pop(e["call"])].discard(e["call"])
                if params["recording_rule"] == "admitting_state":
                    assert not e["recorded"] or state[e["hop"]] == "HALF_OPEN", "only the current trials are recorded"

    assert set(outcome_of) == set(started), "every started call has an outcome"
    for call, outcome in outcome_of.items():
        if outcome["outcome"] in ("rejected", "saturated"):
            assert call not in served, "a rejected call never reaches the service"
            assert outcome["duration"] is None
        if admitted_while[call] in ("OPEN", "FORCED_OPEN"):
            assert outcome["outcome"] in ("rejected", "saturated"), "nothing gets through an open breaker"
        if outcome["outcome"] in ("success", "failure") and outcome["reason"] in (None, "error", "downstream"):
            assert call in served, "an answer comes from a service that served the call"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PARAMS, SCRIPT, SEED)
def test_invariants_and_outside_replay_hold_for_any_scenario(values, script, seed):
    params = make_params(**values)
    events = play(params, script, seed)
    check_invariants(events, params)
    replay(events, params)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PARAMS, SCRIPT, SEED, st.floats(0.0, RUN_FOR))
def test_same_scenario_same_events_and_snapshots_change_nothing(values, script, seed, snapshot_at):
    params = make_params(**values)
    original = play(params, script, seed)
    assert play(params, script, seed) == original
    assert play(params, script, seed, snapshot_at=round(snapshot_at, 3)) == original
