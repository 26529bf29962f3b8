"""Compare mode: one request stream, identical for every lane; perturbations reach every lane at once."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from patterns.load_balancing.balancers import ALGORITHMS, ServerView
from patterns.load_balancing.lanes import KEY_SAMPLE
from patterns.load_balancing.servers import FAIL_WORK

from .test_engine import CHAOS, of_type, run

FOUR = "round_robin.p2c_least_request.ring_hash.maglev"
SMALL_MAGLEV = {"maglev_table_size": "251"}


def handled(events: list[dict], lane: str) -> list[tuple[float, int]]:
    """(time, request) of each request a lane routed or could not route, in order."""
    return [
        (e["t"], e["request"])
        for e in events
        if e.get("lane") == lane and (e["type"] == "lb.route" or (e["type"] == "lb.drop" and e["server"] is None))
    ]


def test_every_lane_gets_every_request_in_the_same_order_at_its_arrival():
    _, events = run(15.0, CHAOS, seed=2, algorithms=FOUR, **SMALL_MAGLEV)
    arrivals = [(e["t"], e["request"]) for e in of_type(events, "lb.arrive")]
    assert len(arrivals) > 1000
    for lane in FOUR.split("."):
        assert handled(events, lane) == arrivals, lane


def test_a_lane_does_the_same_alone_as_raced_against_others():
    def lane_events(algorithms: str, lane: str) -> list[dict]:
        _, events = run(13.0, CHAOS, seed=6, algorithms=algorithms, **SMALL_MAGLEV)
        return [{k: v for k, v in e.items() if k != "seq"} for e in events if e.get("lane") == lane]

    def arrivals(algorithms: str) -> list[dict]:
        _, events = run(13.0, CHAOS, seed=6, algorithms=algorithms, **SMALL_MAGLEV)
        return [{k: v for k, v in e.items() if k != "seq"} for e in of_type(events, "lb.arrive")]

    assert arrivals("random") == arrivals(FOUR)
    for lane in ("p2c_least_request", "maglev"):
        assert lane_events(lane, lane) == lane_events(FOUR, lane)


def test_service_times_do_not_differ_between_lanes():
    """A request that did not queue takes cost x slow / speed (a tenth of it if it failed) in every lane."""
    script = ((5.0, "slow_server", {"server": "s2", "factor": 3.0}), (8.0, "fail_server", {"server": "s4"}))
    _, events = run(12.0, script, seed=8, algorithms=FOUR, servers=4, speeds="1_2_0.5_1.5", **SMALL_MAGLEV)
    cost = {e["request"]: e["cost"] for e in of_type(events, "lb.arrive")}
    queued = {(e["lane"], e["request"]) for e in of_type(events, "lb.queue")}
    speed = {"s1": 1.0, "s2": 2.0, "s3": 0.5, "s4": 1.5}
    checked = defaultdict(int)
    for done in of_type(events, "lb.complete"):
        if (done["lane"], done["request"]) in queued or done["t"] - done["latency"] < 5.0:
            continue  # waited in a queue, or started before the slow-down
        server = done["server"]
        slow = 3.0 if server == "s2" else 1.0
        work = FAIL_WORK if not done["ok"] else 1.0
        assert done["latency"] == pytest.approx(cost[done["request"]] * work * slow / speed[server], abs=2e-6)
        checked[done["lane"]] += 1
    assert set(checked) == set(FOUR.split(".")) and min(checked.values()) > 100


def test_a_perturbation_reaches_every_lane_at_the_same_instant():
    script = ((6.0, "remove_server", {"server": "s3"}),)
    _, events = run(10.0, script, seed=4, algorithms=FOUR, **SMALL_MAGLEV)
    changes = of_type(events, "lb.membership", change="remove")
    assert [(e["lane"], e["t"], e["server"]) for e in changes] == [(lane, 6.0, "s3") for lane in FOUR.split(".")]
    assert all("s3" not in e["eligible"] for e in changes)
    assert not [e for e in of_type(events, "lb.route", server="s3") if e["t"] >= 6.0]
    assert all(of_type(events, "lb.route", lane=lane, server="s3") for lane in FOUR.split("."))


def test_moved_keys_when_a_server_leaves():
    """Rendezvous moves exactly the keys the leaving server owned; the 100-vnode ring close to 1/n; Maglev at
    least that; non-hashing lanes report none."""
    lanes = "ring_hash-100.maglev.rendezvous.round_robin"
    _, events = run(3.0, ((2.0, "remove_server", {"server": "s3"}),), seed=1, algorithms=lanes, servers=10)
    moved = {e["lane"]: e for e in of_type(events, "lb.membership", change="remove")}
    fresh = ALGORITHMS["rendezvous"]({}, random.Random(0))
    fresh.set_servers([ServerView(f"s{i}") for i in range(1, 11)])
    owned_by_s3 = sum(owner == "s3" for owner in fresh.key_owners(KEY_SAMPLE).values())
    assert moved["rendezvous"]["moved_keys"] == owned_by_s3
    assert moved["ring_hash-100"]["moved_share"] == pytest.approx(0.1, abs=0.04)
    assert moved["maglev"]["moved_share"] >= 0.07
    assert moved["round_robin"]["moved_keys"] is None and moved["round_robin"]["moved_share"] is None
    assert {e["ideal_share"] for e in moved.values()} == {0.1}
