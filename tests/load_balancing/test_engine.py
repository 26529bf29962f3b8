"""The load-balancing engine as a whole: servers, traffic, commands, parameters, determinism and snapshots.

The helpers here (`make_params`, `run`, `of_type`) are shared by the other engine test modules of this package:
a run is played the way the kernel's player plays it (a `command` event, then the command).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections import Counter
from typing import Any

import pytest

from patterns.core.player import Player
from patterns.core.registry import RESERVED_NAMES
from patterns.core.scenario import ScenarioError, decode
from patterns.load_balancing.balancers import ALGORITHMS
from patterns.load_balancing.engine import ALIASES, lane_names
from patterns.load_balancing.pattern import PATTERN
from patterns.load_balancing.servers import FAIL_WORK

from ..core.toy import LIMITS
from ..playback import play
from ..support import outputs_under_hash_seeds

Script = tuple[tuple[float, str, dict[str, Any]], ...]
QUIET = {"rate": 0.0, "cost_sigma": 0.0, "health_checks": False, "outlier_detection": False}  # bursts only


def make_params(**overrides: Any) -> dict[str, Any]:
    """Every parameter, defaults overridden and checked as the site would check them."""
    values = PATTERN.defaults()
    for name, value in overrides.items():
        param = PATTERN.param(name)
        assert param is not None, name
        values[name] = param.parse(value) if isinstance(value, str) else param.check(value)
    return values


def run(until: float, script: Script = (), seed: int = 1, snapshot_at: float | None = None, **overrides: Any):
    """Play a scenario; return the engine and the events as JSON would carry them. With ``snapshot_at`` the
    whole simulation is pickled and restored there on the way (what a seek does), which must change nothing."""
    _sim, engine, events = play(
        PATTERN, make_params(**overrides), script, seed=seed, until=until, snapshot_at=snapshot_at
    )
    return engine, events


def of_type(events: list[dict[str, Any]], kind: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind and all(e.get(k) == v for k, v in match.items())]


def preset_run(slug: str, until: float, **overrides: Any):
    preset = PATTERN.preset(slug)
    return run(until, preset.script, preset.seed, **{**preset.params, **overrides})


CHAOS: Script = (
    (3.0, "slow_server", {"server": "s1", "factor": 4.0}),
    (4.0, "fail_server", {"server": "s2", "probability": 0.7}),
    (5.5, "add_server", {"speed": 2.0, "weight": 3}),
    (6.0, "burst", {"count": 60}),
    (7.0, "hot_key", {"share": 0.3}),
    (8.0, "set_weight", {"server": "s3", "weight": 4}),
    (9.0, "remove_server", {"server": "s4"}),
    (10.0, "set_rate", {"rate": 150.0}),
    (12.0, "recover_server", {"server": "s2"}),
)
CHAOS_LANES = "weighted_round_robin.peak_ewma.bounded_load-20.maglev"


# -- servers and requests ---------------------------------------------------------------------------------------------
def test_a_lone_request_takes_its_cost_times_slowness_over_speed():
    script = (
        (1.0, "burst", {"count": 1}),
        (2.0, "slow_server", {"server": "s1", "factor": 3.0}),
        (2.0, "burst", {"count": 1}),
        (3.0, "fail_server", {"server": "s1", "probability": 1.0}),
        (3.0, "burst", {"count": 1}),
    )
    _, events = run(5.0, script, servers=1, speeds="2", algorithms="round_robin", **QUIET)
    costs = {e["request"]: e["cost"] for e in of_type(events, "lb.arrive")}
    done = {e["request"]: e for e in of_type(events, "lb.complete")}
    assert costs == {1: 0.05, 2: 0.05, 3: 0.05}
    assert done[1]["latency"] == pytest.approx(0.05 / 2) and done[1]["ok"]
    assert done[2]["latency"] == pytest.approx(0.05 * 3 / 2) and done[2]["ok"]
    assert done[3]["latency"] == pytest.approx(0.05 * FAIL_WORK * 3 / 2) and not done[3]["ok"]


def test_slots_then_a_bounded_fifo_queue_then_drops():
    _, events = run(
        2.0, ((1.0, "burst", {"count": 7}),), servers=1, concurrency=2, queue_limit=3, algorithms="random", **QUIET
    )
    assert [e["request"] for e in of_type(events, "lb.route")] == list(range(1, 8))
    assert [(e["request"], e["depth"]) for e in of_type(events, "lb.queue")] == [(3, 1), (4, 2), (5, 3)]
    assert [(e["request"], e["reason"]) for e in of_type(events, "lb.drop")] == [(6, "queue_full"), (7, "queue_full")]
    finished = [(e["request"], e["latency"]) for e in of_type(events, "lb.complete")]
    # two at a time, 50 ms each, in arrival order: the queue is FIFO and the wait counts in the latency
    assert finished == [(1, 0.05), (2, 0.05), (3, 0.1), (4, 0.1), (5, 0.15)]


def test_no_eligible_server_drops_with_no_server():
    script = ((1.0, "remove_server", {"server": "s1"}), (2.0, "burst", {"count": 2}))
    _, events = run(3.0, script, servers=1, **QUIET)
    drops = of_type(events, "lb.drop")
    assert [(e["lane"], e["server"], e["reason"]) for e in drops] == [
        (lane, None, "no_server") for _ in range(2) for lane in ("round_robin", "p2c_least_request")
    ]
    assert not of_type(events, "lb.route")


def test_a_removed_server_drains_what_it_has_and_gets_nothing_new():
    script = ((1.0, "burst", {"count": 12}), (1.001, "remove_server", {"server": "s1"}), (1.5, "burst", {"count": 9}))
    _, events = run(4.0, script, servers=3, concurrency=1, queue_limit=10, algorithms="round_robin", **QUIET)
    routed_to_s1 = {e["request"] for e in of_type(events, "lb.route", server="s1")}
    assert routed_to_s1 == {1, 4, 7, 10}
    assert {e["request"] for e in of_type(events, "lb.complete", server="s1")} == routed_to_s1


def test_add_server_joins_every_lane_under_the_next_name():
    script = ((1.0, "add_server", {"speed": 3.0, "weight": 2}), (2.0, "burst", {"count": 30}))
    engine, events = run(3.0, script, servers=2, algorithms="round_robin.rendezvous", **QUIET)
    (added,) = of_type(events, "lb.server", change="add")
    assert (added["server"], added["speed"], added["weight"]) == ("s3", 3.0, 2)
    for lane in engine.lanes:
        assert lane.order == ["s1", "s2", "s3"]
        assert of_type(events, "lb.route", lane=lane.name, server="s3")


def test_a_new_weight_reaches_the_balancer_of_every_lane():
    script = ((1.0, "set_weight", {"server": "s1", "weight": 5}), (2.0, "burst", {"count": 70}))
    _, events = run(3.0, script, servers=3, algorithms="weighted_round_robin.weighted_random", **QUIET)
    for lane in ("weighted_round_robin", "weighted_random"):
        (change,) = of_type(events, "lb.membership", lane=lane)
        assert (change["change"], change["ideal_share"]) == ("weight", round(5 / 7 - 1 / 3, 6))
    smooth = Counter(e["server"] for e in of_type(events, "lb.route", lane="weighted_round_robin"))
    assert smooth == {"s1": 50, "s2": 10, "s3": 10}


AWAY = {  # s1 fails every request and every check from 0.5 s: unhealthy from the second check (2 s) ...
    "unhealthy": ({"health_checks": True, "outlier_detection": False}, 2.5),
    # ... or ejected by its first error (one error in a row ejects; any share of the servers may be ejected)
    "ejected": ({"outlier_detection": True, "consecutive_failures": 1, "max_ejection_percent": 100.0}, 1.5),
}


@pytest.mark.parametrize("away", [None, *AWAY])
def test_a_weight_change_restarts_the_turns_whether_the_server_is_eligible_or_not(away: str | None):
    """Setting a server's weight is a membership change for every lane, as its docstring says, even while the
    server is ejected or unhealthy: the event names the server and the smooth round-robin turns start again."""
    settings, quiet_until = AWAY[away] if away else ({}, 1.5)
    script = (
        *(((0.5, "fail_server", {"server": "s1", "probability": 1.0}),) if away else ()),
        (1.0, "burst", {"count": 3}),  # the ejecting error, if any
        (quiet_until, "burst", {"count": 4}),  # turns taken: current weights that are not all zero
        (quiet_until + 0.5, "set_weight", {"server": "s1", "weight": 3}),
    )
    lanes = "weighted_round_robin.least_connections"
    params = {**QUIET, **settings, "concurrency": 100, "weights": "1_2_3"}
    before, _ = run(quiet_until + 0.499, script, servers=3, algorithms=lanes, **params)
    engine, events = run(quiet_until + 0.5, script, servers=3, algorithms=lanes, **params)
    for lane in before.lanes:
        assert ("s1" in lane.eligible) == (away is None)
        assert any(lane.balancer.current.values())
    for lane in engine.lanes:
        (change,) = of_type(events, "lb.membership", lane=lane.name, change="weight")
        assert change["server"] == "s1" and change["t"] == quiet_until + 0.5
        assert lane.balancer.current == {}
        assert lane.balancer.weights["s1"] == 3


def test_commands_naming_a_missing_server_are_ignored_and_said():
    _, events = run(2.0, ((1.0, "slow_server", {"server": "s9", "factor": 2.0}),), servers=2, **QUIET)
    (ignored,) = of_type(events, "command.ignored")
    assert ignored["command"] == "slow_server" and "s9" in ignored["reason"] and "s1, s2" in ignored["reason"]


def test_a_live_command_on_a_server_that_is_not_there_is_refused():
    """remove_server s9 in a 5-server cluster, or on a server already removed, is refused with a message and never
    enters the script; a server added since may be named."""
    player = Player(PATTERN, decode(PATTERN, [("servers", "5")]), LIMITS)
    player.advance_to(1.0)
    with pytest.raises(ValueError, match=r"remove_server: there is no server s9 now \(there are: s1, s2, s3, s4, s5\)"):
        player.act("remove_server", (("server", "s9"),))
    player.act("remove_server", (("server", "s2"),))
    with pytest.raises(ValueError, match="there is no server s2 now"):
        player.act("set_weight", (("server", "s2"), ("weight", 3)))
    player.act("add_server", (("speed", 1.0), ("weight", 1)))
    player.act("fail_server", (("server", "s6"), ("probability", 0.5)))
    assert [a.command for a in player.scenario.script] == ["remove_server", "add_server", "fail_server"]


def test_a_link_naming_a_server_the_run_never_has_is_refused():
    with pytest.raises(ScenarioError, match=r"do 3: remove_server names server s9, .* \(by then it has s1, s2, s3\)"):
        decode(PATTERN, [("servers", "3"), ("do", "3:remove_server:server=s9")])
    with pytest.raises(ScenarioError, match="do 1: fail_server names server s4"):
        decode(PATTERN, [("servers", "3"), ("do", "1:fail_server:server=s4"), ("do", "2:add_server")])
    decode(PATTERN, [("servers", "3"), ("do", "2:add_server"), ("do", "3:fail_server:server=s4")])


def test_set_rate_restarts_the_arrivals_at_the_new_rate():
    _, events = run(40.0, ((20.0, "set_rate", {"rate": 200.0}),), rate=20.0, servers=10)
    arrivals = [e["t"] for e in of_type(events, "lb.arrive")]
    before = sum(1 for t in arrivals if t < 20.0)
    after = sum(1 for t in arrivals if t >= 20.0)
    assert 300 < before < 500 and 3500 < after < 4500  # Poisson: 400 and 4000 expected, within 5 sigma


def test_periodic_bursts_and_the_burst_command():
    _, events = run(10.5, ((5.5, "burst", {"count": 7}),), rate=0.0, burst_every_s=5.0, burst_size=4)
    assert [(e["t"], e["burst"]) for e in of_type(events, "lb.traffic")] == [(5.0, 4), (5.5, 7), (10.0, 4)]
    assert Counter(e["t"] for e in of_type(events, "lb.arrive")) == {5.0: 4, 5.5: 7, 10.0: 4}


# -- traffic ----------------------------------------------------------------------------------------------------------
def test_costs_have_the_mean_asked_for_and_pareto_has_the_heavier_tail():
    def costs(**overrides: Any) -> list[float]:
        _, events = run(40.0, rate=150.0, servers=10, cost_ms=40.0, algorithms="random", **overrides)
        return [e["cost"] for e in of_type(events, "lb.arrive")]

    lognormal = costs(cost_sigma=0.5)
    pareto = costs(cost_tail="pareto", pareto_alpha=2.5)
    assert statistics.fmean(lognormal) == pytest.approx(0.04, rel=0.05)
    assert statistics.fmean(pareto) == pytest.approx(0.04, rel=0.1)
    assert min(pareto) >= 0.04 * 1.5 / 2.5 - 1e-9  # Pareto's scale: nothing below it
    beyond = [sum(cost > 5 * 0.04 for cost in sample) for sample in (lognormal, pareto)]
    assert beyond[1] > 5 * max(beyond[0], 1)  # P(X > 5 mean): 0.5% for this Pareto, 0.03% for this lognormal


def test_zipf_keys_are_skewed_and_uniform_keys_are_not():
    def keys(**overrides: Any) -> Counter:
        _, events = run(30.0, rate=100.0, servers=10, key_space=100, algorithms="random", **overrides)
        return Counter(e["key"] for e in of_type(events, "lb.arrive"))

    uniform = keys()
    zipf = keys(key_distribution="zipf", zipf_s=1.2)
    total = sum(zipf.values())
    harmonic = sum(1 / r**1.2 for r in range(1, 101))
    assert zipf["k0"] / total == pytest.approx(1 / harmonic, rel=0.15)
    assert zipf["k0"] > 5 * zipf["k9"]
    assert max(uniform.values()) < 3 * (sum(uniform.values()) / 100)
    assert set(uniform) <= {f"k{i}" for i in range(100)}


def test_a_hot_key_takes_its_share_of_requests():
    script = ((10.0, "hot_key", {"share": 0.4}), (30.0, "hot_key", {"share": 0.0}))
    _, events = run(40.0, script, rate=100.0, algorithms="random")
    keys = [(e["t"], e["key"]) for e in of_type(events, "lb.arrive")]
    during = [key for t, key in keys if 10.0 <= t < 30.0]
    assert sum(key == "hot" for key in during) / len(during) == pytest.approx(0.4, abs=0.05)
    assert not any(key == "hot" for t, key in keys if t < 10.0 or t >= 30.0)


# -- parameters -------------------------------------------------------------------------------------------------------
def test_parameters_are_typed_bounded_and_not_reserved():
    assert not RESERVED_NAMES.intersection(p.name for p in PATTERN.params)
    for param in PATTERN.params:
        if param.kind in ("int", "float"):
            assert param.min is not None and param.max is not None, param.name


@pytest.mark.parametrize(
    "text",
    ["round_robin", "ring_hash-3.ring_hash-100.maglev.rendezvous", "bounded_load-1000.p2c_least_request"],
)
def test_algorithms_accepts_one_to_four_known_lanes(text):
    assert PATTERN.param("algorithms").parse(text) == text


@pytest.mark.parametrize(
    "text",
    ["", "round_robin.nope", "maglev-3", "ring_hash-0", "ring_hash-1001", "random.random.random.random.random", "a,b"],
)
def test_algorithms_refuses_anything_else(text):
    with pytest.raises(ValueError):
        PATTERN.param("algorithms").parse(text)


def test_short_names_fit_any_four_lanes_in_a_link_value():
    longest = ".".join(sorted(ALIASES, key=len, reverse=True)[:4])
    assert PATTERN.param("algorithms").parse(longest) == longest
    assert lane_names("p2c.ring-3.hrw.wrr") == [
        "p2c_least_request",
        "ring_hash-3",
        "rendezvous",
        "weighted_round_robin",
    ]
    assert set(ALIASES.values()) <= set(ALGORITHMS)
    with pytest.raises(ValueError):
        PATTERN.param("algorithms").parse("lc-3")  # only rings take a virtual-node count


def test_a_repeated_lane_runs_once():
    assert lane_names("random.maglev.random.rr.round_robin") == ["random", "maglev", "round_robin"]
    engine, _ = run(1.0, algorithms="random.maglev.random")
    assert [lane.name for lane in engine.lanes] == ["random", "maglev"]


def test_speeds_and_weights_repeat_over_the_servers():
    _, events = run(0.0, servers=5, speeds="2_0.5", weights="3_1_1")
    (setup,) = of_type(events, "lb.setup")
    assert [(s["server"], s["speed"], s["weight"]) for s in setup["servers"]] == [
        ("s1", 2.0, 3),
        ("s2", 0.5, 1),
        ("s3", 2.0, 1),
        ("s4", 0.5, 3),
        ("s5", 2.0, 1),
    ]


def test_a_bad_link_names_each_bad_part():
    with pytest.raises(ScenarioError) as caught:
        decode(PATTERN, [("algorithms", "round_robin.nope"), ("speeds", "1,2"), ("do", "3:remove_server:server=x")])
    assert len(caught.value.problems) == 3


# -- determinism ------------------------------------------------------------------------------------------------------
def test_the_same_scenario_gives_the_same_events_and_another_seed_does_not():
    first = run(13.0, CHAOS, seed=4, algorithms=CHAOS_LANES, maglev_table_size="251")[1]
    again = run(13.0, CHAOS, seed=4, algorithms=CHAOS_LANES, maglev_table_size="251")[1]
    other = run(13.0, CHAOS, seed=5, algorithms=CHAOS_LANES, maglev_table_size="251")[1]
    assert json.dumps(first) == json.dumps(again)
    assert first != other


def test_the_stream_does_not_depend_on_the_hash_seed():
    code = (
        "import hashlib, json\n"
        "from tests.load_balancing.test_engine import CHAOS, CHAOS_LANES, run\n"
        "events = run(12.0, CHAOS, seed=4, algorithms=CHAOS_LANES, maglev_table_size='251')[1]\n"
        "print(hashlib.sha256(json.dumps(events).encode()).hexdigest())\n"
    )
    (digest,) = set(outputs_under_hash_seeds(code, seeds=("0", "4242")))
    expected = run(12.0, CHAOS, seed=4, algorithms=CHAOS_LANES, maglev_table_size="251")[1]
    assert digest.strip() == hashlib.sha256(json.dumps(expected).encode()).hexdigest()


def test_a_pickled_and_restored_run_goes_on_exactly_as_the_original():
    lanes = {"algorithms": CHAOS_LANES, "maglev_table_size": "251", "base_ejection_s": 1.0}
    original = run(13.0, CHAOS, seed=9, **lanes)[1]
    assert of_type(original, "lb.eject") and of_type(original, "lb.uneject")
    for snapshot_at in (4.5, 11.0):
        assert run(13.0, CHAOS, seed=9, snapshot_at=snapshot_at, **lanes)[1] == original


def test_every_event_type_emitted_is_declared():
    declared = {e.name for e in PATTERN.all_event_types}
    _, events = run(15.0, CHAOS, seed=3, algorithms=CHAOS_LANES, maglev_table_size="251")
    emitted = {e["type"] for e in events}
    assert emitted <= declared
    assert {"lb.setup", "lb.arrive", "lb.route", "lb.complete", "lb.server", "lb.traffic", "lb.membership"} <= emitted
