"""Each preset shows the point its story makes, on its own seeded run (the panic preset: see test_health)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pytest

from patterns.core.scenario import decode
from patterns.load_balancing.metrics import lane_figures
from patterns.load_balancing.pattern import PATTERN

from .test_engine import of_type, preset_run


def figures(engine, lane: str) -> dict:
    return lane_figures(next(x for x in engine.lanes if x.name == lane))


@pytest.mark.parametrize("preset", PATTERN.presets, ids=lambda p: p.slug)
def test_every_preset_decodes_from_its_link(preset):
    scenario = decode(PATTERN, [("preset", preset.slug)])
    assert scenario.seed == preset.seed and len(scenario.script) == len(preset.script)


def test_uneven_servers_hurt_round_robin_and_not_least_request():
    engine, _ = preset_run("uneven-servers", 30.0)
    rr, lc, p2c = (figures(engine, lane) for lane in ("round_robin", "least_connections", "p2c_least_request"))
    assert rr["drop_rate"] > 0.05 and lc["dropped"] == p2c["dropped"] == 0
    assert rr["total"][99] > 2.5 * max(lc["total"][99], p2c["total"][99])
    slow_share = sum(rr["servers"][s]["routed"] for s in ("s3", "s4")) / rr["offered"]
    assert slow_share == pytest.approx(0.5, abs=0.01)  # round-robin: half of everything to a fifth of the capacity
    assert sum(p2c["servers"][s]["routed"] for s in ("s3", "s4")) / p2c["offered"] < 0.3


def test_peak_ewma_avoids_the_slow_server():
    engine, events = preset_run("slow-server", 40.0)
    late = [e for e in of_type(events, "lb.route") if e["t"] >= 12.0]
    share = {
        lane: sum(e["server"] == "s1" for e in late if e["lane"] == lane) / sum(e["lane"] == lane for e in late)
        for lane in ("round_robin", "p2c_least_request", "peak_ewma")
    }
    assert share["round_robin"] == pytest.approx(0.2, abs=0.01)
    assert share["peak_ewma"] < share["p2c_least_request"] / 2
    ewma, p2c = figures(engine, "peak_ewma"), figures(engine, "p2c_least_request")
    assert ewma["window"][95] < 0.6 * p2c["window"][95]


def test_two_choices_keep_queues_far_shorter_than_random_at_high_load():
    engine, events = preset_run("random-vs-p2c", 40.0)
    deepest = defaultdict(int)
    for e in of_type(events, "lb.queue"):
        deepest[e["lane"]] = max(deepest[e["lane"]], e["depth"])
    assert deepest["p2c_least_request"] * 2.5 < deepest["random"]
    random_lane, p2c = figures(engine, "random"), figures(engine, "p2c_least_request")
    assert p2c["total"][99] < 0.5 * random_lane["total"][99]


def test_a_server_leaving_moves_about_one_nth_of_keys_except_on_a_thin_ring():
    engine, events = preset_run("server-leaves", 12.0)
    moved = {e["lane"]: e for e in of_type(events, "lb.membership", change="remove")}
    assert set(moved) == {"ring_hash-3", "ring_hash-100", "maglev", "rendezvous"}
    assert all(e["ideal_share"] == 0.1 for e in moved.values())
    assert moved["ring_hash-100"]["moved_share"] == pytest.approx(0.1, abs=0.04)
    assert moved["rendezvous"]["moved_share"] == pytest.approx(0.1, abs=0.04)
    assert moved["maglev"]["moved_share"] == pytest.approx(0.1, abs=0.04)
    spread = {}
    for lane in engine.lanes:
        shares = [s["key_share"] for s in lane_figures(lane)["servers"].values() if "key_share" in s]
        assert len(shares) == 9 and sum(shares) == pytest.approx(1.0)
        spread[lane.name] = max(shares) / min(shares)
    assert spread["ring_hash-3"] > 2 * spread["ring_hash-100"]


def test_bounded_loads_cap_every_server_under_a_hot_key():
    engine, events = preset_run("hot-key", 30.0)
    ring, bounded = figures(engine, "ring_hash"), figures(engine, "bounded_load")
    assert ring["drop_rate"] > 0.05 and bounded["dropped"] == 0
    assert ring["imbalance"] > 2.0 and bounded["imbalance"] < 1.6
    # replay the bounded lane: when placed, no request finds its server at ceil(c * (total + 1) / n) already
    active: Counter = Counter()
    servers = 5
    for e in events:
        if e.get("lane") != "bounded_load":
            continue
        if e["type"] == "lb.route":
            capacity = math.ceil(1.25 * (sum(active.values()) + 1) / servers)
            assert active[e["server"]] < capacity, e
            active[e["server"]] += 1
        elif e["type"] == "lb.complete" or (e["type"] == "lb.drop" and e["server"]):
            active[e["server"]] -= 1


def test_outlier_detection_ejects_the_failing_server_for_longer_each_time():
    _, events = preset_run("outlier-ejection", 60.0)
    for lane in ("round_robin", "p2c_least_request"):
        found = of_type(events, "lb.eject", lane=lane)
        assert [e["server"] for e in found] == ["s2"] * len(found) and len(found) >= 3
        assert [e["seconds"] for e in found] == [5.0 * (i + 1) for i in range(len(found))]
        outcomes = [(e["t"], e["ok"]) for e in of_type(events, "lb.complete", lane=lane, server="s2")]
        back = [0.0] + [e["t"] for e in of_type(events, "lb.uneject", lane=lane)]
        for since, ejection in zip(back, found, strict=False):  # the fifth error in a row since its return ejects it
            run = [ok for t, ok in outcomes if since < t <= ejection["t"]]
            assert run[-5:] == [False] * 5 and (len(run) == 5 or run[-6])
