"""Health: active checks and their thresholds, outlier ejection and its growing ejection time, the cap on ejected
servers, and panic mode. Every check reads the event stream alone."""

from __future__ import annotations

from collections import Counter

import pytest

from .test_engine import of_type, preset_run, run

NO_CHECKS = {"health_checks": False}
LANES = "round_robin.p2c_least_request.ring_hash"


def ejections(events: list[dict]) -> list[tuple[str, str, float, float, int]]:
    return [(e["lane"], e["server"], e["t"], e["until"], e["ejections"]) for e in of_type(events, "lb.eject")]


def test_an_ejected_server_gets_no_traffic_until_its_ejection_ends():
    script = ((5.0, "fail_server", {"server": "s2"}),)
    _, events = run(60.0, script, seed=3, algorithms=LANES, base_ejection_s=4.0, max_ejection_percent=20.0, **NO_CHECKS)
    found = ejections(events)
    assert {lane for lane, *_ in found} == set(LANES.split("."))
    for lane, server, start, until, _count in found:
        routes = [e["t"] for e in of_type(events, "lb.route", lane=lane, server=server)]
        assert not [t for t in routes if start <= t < until], (lane, start, until)
        if until >= 59.0:
            continue
        unejected = [e["t"] for e in of_type(events, "lb.uneject", lane=lane, server=server) if e["t"] >= start]
        assert unejected[0] == pytest.approx(until)
        assert [t for t in routes if t >= until], "back in the rotation once the ejection ends"


def test_each_ejection_lasts_base_times_the_ejections_so_far():
    script = ((5.0, "fail_server", {"server": "s2"}),)
    _, events = run(
        40.0, script, seed=3, algorithms="round_robin", base_ejection_s=3.0, max_ejection_percent=20.0, **NO_CHECKS
    )
    found = ejections(events)
    assert len(found) >= 4
    assert [count for *_, count in found] == list(range(1, len(found) + 1))
    assert [round(until - start, 6) for _, _, start, until, count in found] == [3.0 * c for *_, c in found]


def test_it_takes_exactly_the_consecutive_errors_asked_for():
    script = ((5.0, "fail_server", {"server": "s1"}),)
    _, events = run(8.0, script, algorithms="round_robin", consecutive_failures=7, base_ejection_s=100.0, **NO_CHECKS)
    ((_, _, start, _, _),) = ejections(events)
    failures = [e for e in of_type(events, "lb.complete", server="s1") if not e["ok"] and e["t"] <= start]
    assert len(failures) == 7 and failures[-1]["t"] == start


def test_no_more_than_the_max_ejection_percent_is_ejected_and_always_one_may_be():
    script = tuple((5.0, "fail_server", {"server": f"s{i}"}) for i in (1, 2, 3))
    for percent, most in ((10.0, 1), (20.0, 2), (0.0, 1)):
        _, events = run(
            30.0,
            script,
            algorithms="round_robin",
            servers=10,
            max_ejection_percent=percent,
            base_ejection_s=100.0,
            **NO_CHECKS,
        )
        assert len(ejections(events)) == most, percent


def test_active_checks_mark_a_server_down_and_up_after_their_thresholds():
    script = ((10.2, "fail_server", {"server": "s1"}), (20.2, "recover_server", {"server": "s1"}))
    _, events = run(
        30.0,
        script,
        algorithms="round_robin",
        check_interval_s=1.0,
        unhealthy_threshold=3,
        healthy_threshold=2,
        outlier_detection=False,
    )
    changes = [(e["t"], e["state"]) for e in of_type(events, "lb.health")]
    assert changes == [(13.0, "unhealthy"), (22.0, "healthy")]  # probes at 11, 12, 13 fail; 21, 22 pass
    routes = [e["t"] for e in of_type(events, "lb.route", server="s1")]
    assert not [t for t in routes if 13.0 <= t < 22.0]
    assert [t for t in routes if t >= 22.0]


def test_every_lane_hears_the_same_probe_results():
    script = ((3.0, "fail_server", {"server": "s2", "probability": 0.5}),)
    _, events = run(40.0, script, seed=5, algorithms=LANES, outlier_detection=False, unhealthy_threshold=1)
    by_lane = {
        lane: [(e["t"], e["server"], e["state"]) for e in of_type(events, "lb.health", lane=lane)]
        for lane in LANES.split(".")
    }
    assert len(by_lane["round_robin"]) >= 4
    assert by_lane["round_robin"] == by_lane["p2c_least_request"] == by_lane["ring_hash"]


def test_panic_routes_to_every_server_and_ends_when_enough_recover():
    preset_events = preset_run("panic", 40.0)[1]
    panics = [(e["lane"], e["t"], e["on"]) for e in of_type(preset_events, "lb.panic")]
    for lane in ("round_robin", "least_connections"):
        (on, off) = [t for name, t, _ in panics if name == lane]
        assert [flag for name, _, flag in panics if name == lane] == [True, False]
        assert 5.0 < on < 10.0 and 25.0 < off < 30.0
        during = Counter(e["server"] for e in of_type(preset_events, "lb.route", lane=lane) if on <= e["t"] < off)
        assert set(during) == {f"s{i}" for i in range(1, 7)}
        if lane == "round_robin":  # round-robin over all six again: an even spread
            assert max(during.values()) / min(during.values()) < 1.05


def test_without_panic_the_survivors_take_everything():
    _, events = preset_run("panic", 20.0, panic_threshold=0.0)
    assert not of_type(events, "lb.panic")
    late = Counter(e["server"] for e in of_type(events, "lb.route", lane="round_robin") if 10.0 <= e["t"] < 20.0)
    assert set(late) == {"s5", "s6"}
