"""The circuit-breaker engine as a whole: the service and caller model, commands, chains, presets, determinism.

The helpers here (`run`, `outcome_script`, `timeline`) are shared by the other test modules of this package: a
quiet configuration (no random arrivals, fixed latency) plus a script of service settings and one-call bursts
gives a call-by-call outcome sequence that is known in advance.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from patterns.circuit_breaker.breaker import CLOSED, DISABLED, OPEN
from patterns.circuit_breaker.pattern import PATTERN
from patterns.circuit_breaker.service import HISTORY_SECONDS, LATENCY_SAMPLES
from patterns.core.registry import RESERVED_NAMES
from patterns.core.sim import Simulation

from ..playback import apply, as_json, play
from ..support import outputs_under_hash_seeds

Script = tuple[tuple[float, str, dict[str, Any]], ...]

# No random arrivals, every call takes exactly 10 ms and succeeds unless told otherwise.
QUIET = {
    "request_rate": 0.0,
    "failure_probability": 0.0,
    "latency_ms": 10.0,
    "latency_spread": 0.0,
    "tail_probability": 0.0,
    "timeout_ms": 800.0,
    "slow_call_ms": 500.0,
    "caller_limit": 0,
}

# Outcome codes for `outcome_script`: (failure probability, latency ms, outage)
CODES = {
    "S": (0.0, 10.0, None),  # fast success
    "F": (1.0, 10.0, None),  # fast failure
    "W": (0.0, 600.0, None),  # slow success (600 ms > 500 ms)
    "X": (1.0, 600.0, None),  # slow failure
    "T": (0.0, 10.0, "hang"),  # timeout after 800 ms, slow too
    "E": (0.0, 10.0, "error"),  # outage error, 1 ms
}


def make_params(**overrides: Any) -> dict[str, Any]:
    """Every parameter, defaults overridden and checked as the site would check them."""
    values = PATTERN.defaults()
    for name, value in overrides.items():
        param = PATTERN.param(name)
        assert param is not None, name
        values[name] = param.parse(value) if isinstance(value, str) else param.check(value)
    return values


def run(until: float, script: Script = (), seed: int = 1, **overrides: Any):
    """Play a scenario the way the kernel's player does; return the simulation, the engine and the events."""
    return play(PATTERN, make_params(**overrides), script, seed=seed, until=until)


def run_script(
    params: dict[str, Any], script: list, seed: int, until: float, snapshot_at: float | None = None
) -> tuple[Any, list[dict[str, Any]]]:
    """The engine and the events; with ``snapshot_at``, pickled and restored there on the way."""
    _sim, engine, events = play(PATTERN, params, script, seed=seed, until=until, snapshot_at=snapshot_at)
    return engine, events


def outcome_script(codes: str, start: float = 1.0, spacing: float = 1.0, service: str = "downstream") -> Script:
    """One call every ``spacing`` seconds, the service set up before each so that its outcome is ``codes[i]``;
    a space skips a slot."""
    script: list[tuple[float, str, dict[str, Any]]] = []
    current = (0.0, 10.0, None)
    for index, code in enumerate(codes):
        if code == " ":
            continue
        t = round(start + index * spacing, 6)
        wanted = CODES[code]
        failure, latency, outage = wanted
        if failure != current[0]:
            script.append((t, "set_failure_probability", {"service": service, "probability": failure}))
        if latency != current[1]:
            script.append((t, "set_latency", {"service": service, "median_ms": latency}))
        if outage != current[2]:
            script.append(
                (t, "outage_on", {"service": service, "mode": outage})
                if outage
                else (t, "outage_off", {"service": service})
            )
        script.append((t, "burst", {"count": 1}))
        current = wanted
    return tuple(script)


TOKENS = {"success": "s", "failure": "f", "timeout": "t", "rejected": "r", "saturated": "x"}


def timeline(events: list[dict[str, Any]], hop: str = "S") -> str:
    """A compact story of one hop: a letter per finished call (upper case if slow), [STATE] per transition."""
    out = []
    for e in events:
        if e.get("hop") != hop:
            continue
        if e["type"] == "cb.outcome":
            token = TOKENS[e["outcome"]]
            out.append(token.upper() if e["slow"] else token)
        elif e["type"] == "cb.transition":
            out.append(f"[{e['to']}]")
        elif e["type"] == "cb.would_open":
            out.append("[would open]")
    return "".join(out)


def of_type(events: list[dict[str, Any]], kind: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind and all(e.get(k) == v for k, v in match.items())]


# -- the descriptor -----------------------------------------------------------------------------------------------
def test_parameters_are_snake_case_bounded_and_not_reserved():
    for param in PATTERN.params:
        assert param.name.isidentifier() and param.name == param.name.lower()
        assert param.name not in RESERVED_NAMES
        if param.kind in ("int", "float"):
            assert param.min is not None and param.max is not None, param.name
    assert PATTERN.slug == "circuit-breaker" and PATTERN.order == 10


def test_every_event_type_emitted_is_documented():
    documented = {e.name for e in PATTERN.all_event_types}
    _, _, events = run(40.0, preset_script("guide"), **PATTERN.preset("guide").params)
    chained = run(30.0, preset_script("cascade-breakers"), **PATTERN.preset("cascade-breakers").params)[2]
    script = (
        (1.0, "metrics_only", {}),
        (2.0, "set_failure_probability", {"probability": 1.0}),
        (3.0, "outage_on", {"service": "A"}),
        (4.0, "set_request_rate", {"rate": 5.0}),
    )
    manual = run(6.0, script, retries=1)[2]
    seen = {e["type"] for e in events + chained + manual}
    assert seen <= documented
    own = ("call", "outcome", "serve", "retry", "transition", "would_open", "service", "traffic")
    assert seen >= {f"cb.{name}" for name in own} | {"command.ignored"}


def preset_script(slug: str) -> Script:
    return tuple((t, command, dict(args)) for t, command, args in PATTERN.preset(slug).script)


@pytest.mark.parametrize("preset", PATTERN.presets, ids=lambda p: p.slug)
def test_presets_are_valid_and_run(preset):
    params = make_params(**preset.params)
    for t, command, args in preset.script:
        spec = PATTERN.command(command)
        assert spec is not None and t >= 0
        assert set(args) == {a.name for a in spec.args}
        for arg in spec.args:
            if arg.name in args:
                assert arg.parse(args[arg.name]) == args[arg.name]
    _, _, events = run(60.0, preset_script(preset.slug), seed=preset.seed, **params)
    assert of_type(events, "cb.outcome")


def preset_moves(slug: str, until: float = 60.0) -> list[dict[str, Any]]:
    preset = PATTERN.preset(slug)
    return of_type(run(until, preset_script(slug), seed=preset.seed, **preset.params)[2], "cb.transition")


def test_preset_stories_flaky_and_slow_calls():
    flaky = preset_moves("flaky")
    assert [e["to"] for e in flaky] == ["OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"]
    assert 5 < flaky[0]["t"] < 8 and flaky[0]["reason"] == "failure_rate" and 20 < flaky[-1]["t"] < 26
    slow = preset_moves("slow-calls")
    assert (slow[0]["reason"], slow[0]["failures"], slow[0]["slow_rate"]) == ("slow_rate", 0, 50.0)
    assert [e["to"] for e in slow][-1] == "CLOSED" and slow[-1]["t"] > 25
    assert all(e["to"] != "CLOSED" for e in slow if e["t"] < 25)


def test_preset_stories_backoff_and_guide():
    backoff = preset_moves("backoff")
    assert [e["wait"] for e in backoff if e["to"] == "OPEN"] == [2.0, 4.0, 8.0, 16.0, 20.0]
    assert backoff[-1]["to"] == "CLOSED" and backoff[-1]["t"] > 40
    guide = preset_moves("guide")
    assert (guide[0]["reason"], guide[0]["consecutive"], guide[0]["wait"]) == ("consecutive_failures", 3, 2.0)
    reasons = {e["reason"] for e in guide}
    assert {"trial_failure", "trials_passed"} <= reasons and "failure_rate" not in reasons
    assert guide[-1]["to"] == "CLOSED"


def test_the_explanation_renders():
    from django.template.loader import render_to_string

    text = render_to_string(PATTERN.explain_template)
    assert text.count("<h2>") >= 4 and "resilience4j" in text and "gobreaker" in text and "pybreaker" in text


def test_event_fields_are_json_scalars():
    _, _, events = run(30.0, preset_script("cascade-breakers"), **PATTERN.preset("cascade-breakers").params)
    for event in events:
        for key, value in event.items():
            if event["type"] == "command" and key == "args":
                continue
            assert value is None or isinstance(value, (str, int, float, bool)), (key, value)


# -- the service model ---------------------------------------------------------------------------------------------
def test_service_slots_queue_and_overflow():
    _, _, events = run(2.0, ((1.0, "burst", {"count": 4}),), **QUIET, service_concurrency=2, service_queue=1)
    serves = of_type(events, "cb.serve")
    assert [(s["call"], s["t"], s["waited"]) for s in serves] == [(1, 1.0, 0.0), (2, 1.0, 0.0), (3, 1.01, 0.01)]
    assert [(o["call"], o["outcome"], o["reason"], o["duration"]) for o in of_type(events, "cb.outcome")] == [
        (4, "failure", "queue_full", 0.001),
        (1, "success", None, 0.01),
        (2, "success", None, 0.01),
        (3, "success", None, 0.02),
    ]


def test_caller_limit_refuses_beyond_it_and_the_breaker_never_sees_it():
    _, engine, events = run(2.0, ((1.0, "burst", {"count": 5}),), **{**QUIET, "caller_limit": 2})
    outcomes = of_type(events, "cb.outcome")
    assert [o["outcome"] for o in outcomes] == ["saturated"] * 3 + ["success"] * 2
    assert {o["reason"] for o in outcomes[:3]} == {"caller_limit"}
    assert [s["call"] for s in of_type(events, "cb.serve")] == [1, 2]
    assert engine.primary.stats.totals["saturated"] == 3
    assert engine.primary.breaker.window_tally().calls == 2
    assert engine.primary.in_flight == 0


def test_outage_error_fails_fast_and_hang_waits_for_the_timeout():
    script = outcome_script("ET")
    _, _, events = run(4.0, script, **QUIET)
    outcomes = of_type(events, "cb.outcome")
    assert [(o["outcome"], o["reason"], o["duration"], o["slow"]) for o in outcomes] == [
        ("failure", "outage", 0.001, False),
        ("timeout", "timeout", 0.8, True),
    ]
    assert of_type(events, "cb.serve") == []


def test_slow_mode_multiplies_latency_and_latency_tail_is_applied():
    script = (
        (1.0, "slow_on", {"factor": 7.0}),
        (1.0, "burst", {"count": 1}),
        (2.0, "slow_off", {}),
        (2.0, "burst", {"count": 1}),
    )
    _, _, events = run(3.0, script, **QUIET)
    assert [o["duration"] for o in of_type(events, "cb.outcome")] == [0.07, 0.01]
    _, _, tail = run(3.0, ((1.0, "burst", {"count": 3}),), **{**QUIET, "tail_probability": 1.0, "tail_multiplier": 4})
    assert [o["duration"] for o in of_type(tail, "cb.outcome")] == [0.04, 0.04, 0.04]


def test_timed_out_calls_are_still_served_later_and_their_late_answer_is_ignored():
    _, _, events = run(
        3.0,
        ((1.0, "burst", {"count": 3}),),
        **{**QUIET, "latency_ms": 500.0, "timeout_ms": 700.0, "service_concurrency": 1},
    )
    assert [(s["call"], s["t"]) for s in of_type(events, "cb.serve")] == [(1, 1.0), (2, 1.5), (3, 2.0)]
    assert [(o["call"], o["outcome"]) for o in of_type(events, "cb.outcome")] == [
        (1, "success"),
        (2, "timeout"),
        (3, "timeout"),
    ]


def test_retries_back_off_exponentially_and_rejections_are_not_retried():
    _, _, events = run(
        3.0,
        ((1.0, "burst", {"count": 1}),),
        **{**QUIET, "failure_probability": 1.0, "retries": 2, "retry_backoff_ms": 100.0},
    )
    calls = of_type(events, "cb.call")
    assert [(c["call"], c["attempt"], c["request"], c["t"]) for c in calls] == [
        (1, 1, 1, 1.0),
        (2, 2, 1, 1.11),
        (3, 3, 1, 1.32),
    ]
    assert [r["delay"] for r in of_type(events, "cb.retry")] == [0.1, 0.2]
    _, _, forced = run(3.0, ((0.5, "force_open", {}), (1.0, "burst", {"count": 1})), **QUIET, retries=2)
    assert [(o["outcome"], o["reason"]) for o in of_type(forced, "cb.outcome")] == [("rejected", "forced_open")]
    assert of_type(forced, "cb.retry") == []


def test_requests_arrive_as_a_poisson_process_at_the_set_rate():
    _, engine, events = run(100.0, request_rate=20.0)
    assert 1800 < engine.requests < 2200
    _, engine, _ = run(100.0, ((50.0, "set_request_rate", {"rate": 0.0}),), request_rate=20.0)
    assert 900 < engine.requests < 1100
    assert of_type(events, "cb.traffic") == []


# -- commands ------------------------------------------------------------------------------------------------------
def test_service_commands_report_the_new_settings():
    script = (
        (1.0, "outage_on", {"mode": "hang"}),
        (2.0, "slow_on", {"factor": 3.0}),
        (3.0, "set_failure_probability", {"probability": 0.25}),
        (4.0, "set_latency", {"median_ms": 80.0}),
        (5.0, "outage_off", {}),
        (6.0, "slow_off", {}),
    )
    _, _, events = run(7.0, script, **QUIET)
    settings = [
        (e["outage"], e["slow_factor"], e["failure_probability"], e["latency_ms"])
        for e in of_type(events, "cb.service")
    ]
    assert settings == [
        ("hang", 1.0, 0.0, 10.0),
        ("hang", 3.0, 0.0, 10.0),
        ("hang", 3.0, 0.25, 10.0),
        ("hang", 3.0, 0.25, 80.0),
        (None, 3.0, 0.25, 80.0),
        (None, 1.0, 0.25, 80.0),
    ]


def test_commands_naming_what_the_topology_lacks_are_ignored_with_a_reason():
    script = ((1.0, "outage_on", {"service": "B"}), (2.0, "force_open", {"breaker": "C"}))
    _, engine, events = run(3.0, script, **QUIET)
    ignored = of_type(events, "command.ignored")
    assert [(e["command"], e["reason"]) for e in ignored] == [
        ("outage_on", "there is no service B in the single topology"),
        ("force_open", "there is no breaker in front of C in the single topology"),
    ]
    assert engine.services[0].outage is None and engine.primary.breaker.state == CLOSED
    sim, chain, _ = run(1.0, topology="chain")
    chain.apply("force_open", {"breaker": "A"})  # no form or link can send it (not a choice): the engine still copes
    assert of_type(as_json(sim.collect()), "command.ignored")[0]["reason"] == (
        "there is no breaker in front of A in the chain topology"
    )


def test_burst_and_rate_change_emit_traffic_events():
    _, engine, events = run(2.0, ((1.0, "burst", {"count": 7}), (1.5, "set_request_rate", {"rate": 3.0})), **QUIET)
    assert [(e["rate"], e["burst"]) for e in of_type(events, "cb.traffic")] == [(0.0, 7), (3.0, 0)]
    assert engine.requests >= 7


def test_breakers_off_start_disabled_and_reset_turns_them_on():
    _, engine, events = run(30.0, outcome_script("FFFFFFFFFFFF"), **QUIET, breakers=False)
    assert engine.primary.breaker.state == DISABLED
    assert of_type(events, "cb.transition") == []
    assert {o["recorded"] for o in of_type(events, "cb.outcome")} == {False}
    _, engine, events = run(30.0, ((0.5, "reset_breaker", {}), *outcome_script("FFFFFFFFFF")), **QUIET, breakers=False)
    assert timeline(events) == "[CLOSED]ffffffffff[OPEN]"


# -- chains --------------------------------------------------------------------------------------------------------
def test_chain_calls_carry_request_and_parent_and_failures_propagate():
    script = ((1.0, "set_failure_probability", {"service": "C", "probability": 1.0}), (1.0, "burst", {"count": 1}))
    _, engine, events = run(2.0, script, **{**QUIET, "topology": "chain"})
    calls = of_type(events, "cb.call")
    assert [(c["hop"], c["call"], c["parent"], c["request"], c["state"]) for c in calls] == [
        ("A", 1, None, 1, None),
        ("B", 2, 1, 1, CLOSED),
        ("C", 3, 2, 1, CLOSED),
    ]
    outcomes = of_type(events, "cb.outcome")
    assert [(o["hop"], o["outcome"], o["reason"], o["duration"]) for o in outcomes] == [
        ("C", "failure", "error", 0.01),
        ("B", "failure", "downstream", 0.02),
        ("A", "failure", "downstream", 0.03),
    ]
    assert [hop.breaker is None for hop in engine.hops] == [True, False, False]


def test_chain_timeouts_are_per_hop():
    params = {**QUIET, "topology": "chain", "timeout_ms": 300.0, "upstream_timeout_ms": 600.0, "user_timeout_ms": 900.0}
    seen = {}
    for service in ("A", "B", "C"):
        script = ((1.0, "outage_on", {"service": service, "mode": "hang"}), (1.0, "burst", {"count": 1}))
        _, _, events = run(3.0, script, **params)
        seen[service] = [(o["hop"], o["outcome"], o["duration"]) for o in of_type(events, "cb.outcome")]
    assert seen == {
        "A": [("A", "timeout", 0.9)],
        "B": [("B", "timeout", 0.6), ("A", "failure", 0.61)],
        "C": [("C", "timeout", 0.3), ("B", "failure", 0.31), ("A", "failure", 0.32)],
    }


def test_the_cascade_exhausts_capacity_without_breakers_and_not_with_them():
    """The story of the two cascade presets in numbers, sampled each second while C hangs (from 5 s)."""
    results = {}
    for slug in ("cascade", "cascade-breakers"):
        preset = PATTERN.preset(slug)
        sim = Simulation(preset.seed)
        engine = PATTERN.engine(sim, make_params(**preset.params))
        engine.start()
        sim.run_until(5.0)
        apply(PATTERN, sim, engine, *preset_script(slug)[0][1:])
        a, b = engine.services[0], engine.services[1]
        samples = []
        for t in range(10, 36):
            sim.run_until(float(t))
            samples.append((a.busy, len(a.queue), b.busy))
        late = [o for o in of_type(as_json(sim.collect()), "cb.outcome", hop="A") if o["t"] >= 10.0]
        results[slug] = {
            "a_busy": sum(s[0] for s in samples) / len(samples),
            "a_queued": sum(s[1] for s in samples) / len(samples),
            "b_busy": sum(s[2] for s in samples) / len(samples),
            "success": sum(o["outcome"] == "success" for o in late) / len(late),
            "p50": sorted(o["duration"] for o in late)[len(late) // 2],
        }
    without, with_ = results["cascade"], results["cascade-breakers"]
    assert without["a_busy"] > 9.5 and without["a_queued"] > 15 and without["b_busy"] > 8
    assert with_["a_busy"] < 5 and with_["a_queued"] < 1
    assert without["success"] < 0.35 < 0.4 < with_["success"]  # half the requests never needed C
    assert without["p50"] > 0.5 > 0.1 > with_["p50"]


# -- determinism and snapshots -------------------------------------------------------------------------------------
def chaos_script() -> Script:
    return (
        (2.0, "set_failure_probability", {"probability": 0.6}),
        (6.0, "outage_on", {"mode": "hang"}),
        (9.0, "outage_off", {}),
        (10.0, "slow_on", {"factor": 20.0}),
        (13.0, "burst", {"count": 40}),
        (14.0, "slow_off", {}),
        (15.0, "metrics_only", {}),
        (18.0, "reset_breaker", {}),
        (19.0, "set_failure_probability", {"probability": 0.02}),
    )


@pytest.mark.parametrize("topology", ["single", "chain"])
def test_same_scenario_gives_the_same_events_and_another_seed_does_not(topology):
    first = run(25.0, chaos_script(), seed=4, topology=topology, retries=1)[2]
    again = run(25.0, chaos_script(), seed=4, topology=topology, retries=1)[2]
    other = run(25.0, chaos_script(), seed=5, topology=topology, retries=1)[2]
    assert json.dumps(first) == json.dumps(again)
    assert first != other


def test_the_stream_does_not_depend_on_the_hash_seed():
    code = (
        "import hashlib, json\n"
        "from tests.circuit_breaker.test_engine import chaos_script, run\n"
        "events = run(25.0, chaos_script(), seed=4, topology='chain', retries=1)[2]\n"
        "print(hashlib.sha256(json.dumps(events).encode()).hexdigest())\n"
    )
    (digest,) = set(outputs_under_hash_seeds(code, seeds=("0", "4242")))
    assert len(digest.strip()) == 64


@pytest.mark.parametrize("topology", ["single", "chain"])
def test_a_pickled_and_restored_run_goes_on_exactly_as_the_original(topology):
    script = chaos_script()
    params = make_params(topology=topology, retries=1, half_open_transition="automatic", max_half_open_s=2.0)

    def play(snapshot_at: float | None) -> list[dict[str, Any]]:
        return run_script(params, script, 9, 25.0, snapshot_at)[1]

    original = play(None)
    assert play(7.3) == original
    assert play(16.0) == original


def test_memory_stays_bounded_on_a_long_busy_run():
    sim = Simulation(3)
    engine = PATTERN.engine(sim, make_params(request_rate=200.0, failure_probability=0.3))
    engine.start()
    sizes = []
    for t in (150.0, 300.0, 450.0):
        sim.run_until(t)
        sim.collect()
        sizes.append(len(pickle.dumps((sim, engine))))
        stats = engine.primary.stats
        assert len(stats.seconds) <= HISTORY_SECONDS and len(stats.latencies) <= LATENCY_SAMPLES
    assert max(sizes) < 1.2 * min(sizes)


def test_breaker_states_are_reported_in_call_events():
    _, _, events = run(20.0, outcome_script("FFFFFFFFFF" + "SS"), **QUIET)
    states = [c["state"] for c in of_type(events, "cb.call")]
    assert states[:10] == [CLOSED] * 10 and states[10:] == [OPEN, OPEN]
