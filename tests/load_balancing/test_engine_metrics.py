"""An outside checker: every metric of every lane and server, recomputed from the event stream alone, equals the
engine's. The checker knows only what `--describe` documents (the FIFO queue, the window, nearest-rank
percentiles, the whole-run histogram's 1% resolution)."""

from __future__ import annotations

import math
import os
import random
from collections import defaultdict, deque
from typing import Any

import pytest

from patterns.load_balancing.balancers import ALGORITHMS
from patterns.load_balancing.engine import ALIASES
from patterns.load_balancing.metrics import lane_figures

from .test_engine import CHAOS, preset_run, run

QUANTILES = (50, 95, 99)


def nearest_rank(values: list[float], q: int) -> float | None:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] if ordered else None


class Checker:
    """Replays the stream: server slots and FIFO queues per lane, counters, and the timed records of the window."""

    def __init__(self, events: list[dict[str, Any]]):
        setup = events[0]
        assert setup["type"] == "lb.setup"
        self.window = setup["window_s"]
        self.weights = {s["server"]: s["weight"] for s in setup["servers"]}
        self.present = [s["server"] for s in setup["servers"]]
        self.now = 0.0
        self.lanes: dict[str, dict[str, Any]] = {lane: self._lane() for lane in setup["lanes"]}
        for event in events[1:]:
            self.now = event["t"]
            handler = getattr(self, "on_" + event["type"].replace("lb.", ""), None)
            if handler:
                handler(event)

    @staticmethod
    def _lane() -> dict[str, Any]:
        server = lambda: {"busy": 0, "queue": deque(), "routed": 0, "served": 0, "failed": 0, "dropped": 0}  # noqa: E731
        return {"servers": defaultdict(server), "routes": [], "completions": [], "drops": [], "started": set()}

    def on_server(self, e: dict) -> None:
        self.weights[e["server"]] = e["weight"]
        if e["change"] == "add":
            self.present.append(e["server"])
        if e["change"] == "remove":
            self.present.remove(e["server"])

    def on_route(self, e: dict) -> None:
        lane = self.lanes[e["lane"]]
        server = lane["servers"][e["server"]]
        server["routed"] += 1
        server["busy"] += 1  # taken back at once if the next event queues or drops it
        lane["started"].add(e["request"])
        lane["routes"].append((e["t"], e["server"]))

    def on_queue(self, e: dict) -> None:
        lane = self.lanes[e["lane"]]
        server = lane["servers"][e["server"]]
        server["busy"] -= 1
        lane["started"].discard(e["request"])
        server["queue"].append(e["request"])
        assert len(server["queue"]) == e["depth"]

    def on_drop(self, e: dict) -> None:
        lane = self.lanes[e["lane"]]
        lane["drops"].append((e["t"], e["server"]))
        if e["server"] is not None:
            server = lane["servers"][e["server"]]
            server["busy"] -= 1
            server["dropped"] += 1
            lane["started"].discard(e["request"])

    def on_complete(self, e: dict) -> None:
        lane = self.lanes[e["lane"]]
        server = lane["servers"][e["server"]]
        assert e["request"] in lane["started"], "only a started request completes"
        lane["started"].discard(e["request"])
        server["served"] += 1
        server["failed"] += not e["ok"]
        lane["completions"].append((e["t"], e["server"], e["latency"], e["ok"]))
        if server["queue"]:
            lane["started"].add(server["queue"].popleft())  # FIFO: the head of the queue takes the slot
        else:
            server["busy"] -= 1

    def figures(self, name: str) -> dict[str, Any]:
        lane = self.lanes[name]
        edge = self.now - self.window
        routes = [(t, s) for t, s in lane["routes"] if t > edge]
        completions = [c for c in lane["completions"] if c[0] > edge]
        drops = [d for d in lane["drops"] if d[0] > edge]
        span = min(self.window, self.now)
        servers = {}
        for server_id, s in lane["servers"].items():
            latencies = [c[2] for c in completions if c[1] == server_id]
            servers[server_id] = {
                "in_flight": s["busy"],
                "queue": len(s["queue"]),
                "routed": s["routed"],
                "served": s["served"],
                "failed": s["failed"],
                "dropped": s["dropped"],
                "window": {q: nearest_rank(latencies, q) for q in QUANTILES},
                "all": [c[2] for c in lane["completions"] if c[1] == server_id],
                "routed_window": sum(1 for _t, r in routes if r == server_id),
            }
        per_weight = [servers[s]["routed_window"] / self.weights[s] for s in self.present if self.weights[s]]
        offered = len(routes) + sum(1 for _t, server in drops if server is None)
        return {
            "served": len(lane["completions"]),
            "failed": sum(1 for c in lane["completions"] if not c[3]),
            "dropped": len(lane["drops"]),
            "window": {q: nearest_rank([c[2] for c in completions], q) for q in QUANTILES},
            "all": [c[2] for c in lane["completions"]],
            "throughput": sum(1 for c in completions if c[3]) / span,
            "drop_rate": len(drops) / offered if offered else 0.0,
            "imbalance": max(per_weight) / (sum(per_weight) / len(per_weight)) if any(per_weight) else None,
            "servers": servers,
        }


def assert_histogram(engine_value: float | None, values: list[float], q: int) -> None:
    exact = nearest_rank(values, q)
    if exact is None:
        assert engine_value is None
    else:  # the upper edge of a 1%-wide bucket: never below the exact value, at most 1% above
        assert exact <= engine_value * (1 + 1e-12) and engine_value <= exact * 1.01 * (1 + 1e-12)


def check(engine: Any, events: list[dict[str, Any]]) -> None:
    checker = Checker(events)
    assert checker.now <= engine.sim.now
    checker.now = engine.sim.now
    for lane in engine.lanes:
        mine, theirs = lane_figures(lane), checker.figures(lane.name)
        for key in ("served", "failed", "dropped", "window"):
            assert mine[key] == theirs[key], (lane.name, key)
        for key in ("throughput", "drop_rate", "imbalance"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-9), (lane.name, key)
        assert mine["in_flight"] == sum(s["in_flight"] for s in theirs["servers"].values())
        assert mine["queue"] == sum(s["queue"] for s in theirs["servers"].values())
        for q in QUANTILES:
            assert_histogram(mine["total"][q], theirs["all"], q)
        assert set(theirs["servers"]) <= set(mine["servers"])
        for server_id, server in mine["servers"].items():
            other = theirs["servers"][server_id]
            for key in ("in_flight", "queue", "routed", "served", "failed", "dropped", "window", "routed_window"):
                assert server[key] == other[key], (lane.name, server_id, key)
            for q in QUANTILES:
                assert_histogram(server["total"][q], other["all"], q)


@pytest.mark.parametrize("until", [7.3, 15.0])
def test_metrics_recomputed_from_the_events_equal_the_engines(until):
    lanes = "weighted_round_robin.p2c_least_request.bounded_load.maglev"
    engine, events = run(until, CHAOS, seed=12, algorithms=lanes, maglev_table_size="251", queue_limit=5)
    assert any(e["type"] == "lb.queue" for e in events) and any(e["type"] == "lb.drop" for e in events)
    check(engine, events)


@pytest.mark.parametrize("slug", ["uneven-servers", "outlier-ejection", "panic"])
def test_the_checker_agrees_on_presets(slug):
    engine, events = preset_run(slug, 20.0)
    check(engine, events)


SCHEDULES = int(os.environ.get("LB_TEST_SCHEDULES", "4"))  # seeded random perturbation schedules checked


def random_script(rng: random.Random) -> tuple:
    """A dozen random perturbations over 12 s, on servers that may or may not be there."""
    servers = [f"s{i}" for i in range(1, 8)]
    choices = (
        lambda: ("add_server", {"speed": rng.choice([0.5, 1.0, 3.0]), "weight": rng.randint(1, 4)}),
        lambda: ("remove_server", {"server": rng.choice(servers)}),
        lambda: ("slow_server", {"server": rng.choice(servers), "factor": rng.choice([2.0, 10.0])}),
        lambda: ("fail_server", {"server": rng.choice(servers), "probability": rng.choice([0.5, 1.0])}),
        lambda: ("recover_server", {"server": rng.choice(servers)}),
        lambda: ("set_weight", {"server": rng.choice(servers), "weight": rng.randint(0, 5)}),
        lambda: ("set_rate", {"rate": rng.choice([20.0, 150.0, 400.0])}),
        lambda: ("burst", {"count": rng.randint(1, 200)}),
        lambda: ("hot_key", {"share": rng.choice([0.0, 0.5])}),
    )
    return tuple(
        sorted(((round(rng.uniform(0, 12), 3), *rng.choice(choices)()) for _ in range(12)), key=lambda a: a[0])
    )


@pytest.mark.parametrize("schedule", range(SCHEDULES))
def test_random_schedules_keep_every_request_accounted_for(schedule):
    rng = random.Random(schedule)
    short = {name: alias for alias, name in ALIASES.items()}
    lanes = ".".join(short.get(name, name) for name in rng.sample(sorted(ALGORITHMS), 4))
    engine, events = run(
        14.0,
        random_script(rng),
        seed=schedule,
        algorithms=lanes,
        maglev_table_size="251",
        queue_limit=8,
        base_ejection_s=2.0,
    )
    check(engine, events)
    arrived = len([e for e in events if e["type"] == "lb.arrive"])
    for lane in engine.lanes:
        figures = lane_figures(lane)
        assert lane.offered == arrived
        # every request a lane got is exactly one of: in flight, queued, answered, dropped
        assert arrived == figures["in_flight"] + figures["queue"] + figures["served"] + figures["dropped"], lane.name
