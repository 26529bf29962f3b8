"""The load-balancing engine: one request stream, raced through one lane per algorithm.

The ``algorithms`` parameter names one to four lanes ("round_robin.p2c_least_request"; a ring's name may carry
its virtual-node count, "ring_hash-3"). Each request is drawn once (`traffic`) and handed, identically, to every
lane in order; each lane routes it with its own balancer to its own copy of the servers (`lanes`). Commands change
the shared server settings or the traffic, so every perturbation reaches every lane at the same instant; active
health checks are probed once per server per interval and the one result is given to every lane.

Commands naming a server may name only a present one: the kernel refuses a live command naming another (the pattern's
`targets`); a scripted one is ignored with a ``command.ignored`` event.

Randomness: the traffic, the health-check results and each lane's balancer have their own generators, all seeded
from the run's `sim.rng` at construction, so adding a lane changes neither the traffic nor the other lanes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from patterns.core.arrivals import PoissonArrivals
from patterns.core.commands import Commands
from patterns.core.sim import Simulation

from .balancers import ALGORITHMS
from .health import Health, HealthConfig
from .lanes import KEY_SAMPLE, Lane, lane_rng
from .servers import ServerSpec
from .traffic import Traffic

LANE_SEPARATOR = "."
VNODE_SUFFIX = "-"  # "ring_hash-3": a ring with 3 virtual nodes per server
RING_ALGORITHMS = ("ring_hash", "bounded_load")
# Short names, so that any four lanes fit in a link value (the kernel caps a text value at 64 characters).
ALIASES = {
    "rr": "round_robin",
    "wrr": "weighted_round_robin",
    "wrandom": "weighted_random",
    "lc": "least_connections",
    "p2c": "p2c_least_request",
    "ewma": "peak_ewma",
    "ring": "ring_hash",
    "bounded": "bounded_load",
    "hrw": "rendezvous",
}
SAMPLE_EVERY = 1.0  # seconds between per-server load samples for the chart
SPEED_RANGE = (0.05, 20.0)
MAX_SERVERS = 64  # present at once; add_server beyond it is ignored


def lane_names(text: str) -> list[str]:
    """The distinct lanes of an ``algorithms`` value, in order, each under its algorithm's full name."""
    lanes = []
    for part in text.split(LANE_SEPARATOR):
        algorithm, suffix, vnodes = part.partition(VNODE_SUFFIX)
        lanes.append(ALIASES.get(algorithm, algorithm) + suffix + vnodes)
    return list(dict.fromkeys(lanes))


def lane_options(lane: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The algorithm of a lane and its balancer options (the lane's own vnode count wins over the parameter)."""
    algorithm, _, vnodes = lane.partition(VNODE_SUFFIX)
    options = {
        "vnodes": int(vnodes) if vnodes else params["vnodes"],
        "maglev_table_size": int(params["maglev_table_size"]),
        "bounded_load_factor": params["bounded_load_factor"],
        "active_request_bias": params["active_request_bias"],
        "ewma_decay_s": params["ewma_decay_s"],
    }
    return algorithm, options


def per_server(text: str, count: int, kind: type) -> list[Any]:
    """Values from an underscore-separated list, repeated cyclically over ``count`` servers."""
    values = [kind(float(part)) for part in text.split("_")]
    return [values[i % len(values)] for i in range(count)]


class LoadBalancingEngine(Commands):
    def __init__(self, sim: Simulation, params: Mapping[str, Any]):
        self.sim = sim
        self.params = dict(params)
        self.traffic = Traffic(sim.rng.getrandbits(64), params)
        self.arrivals = PoissonArrivals(sim, float(params["rate"]), self._request, self.traffic.rng)
        self.checks = random.Random(sim.rng.getrandbits(64))
        lane_base = sim.rng.getrandbits(64)
        count = params["servers"]
        speeds = [min(max(s, SPEED_RANGE[0]), SPEED_RANGE[1]) for s in per_server(params["speeds"], count, float)]
        weights = per_server(params["weights"], count, int)
        self.specs: dict[str, ServerSpec] = {}
        for speed, weight in zip(speeds, weights, strict=True):
            self._new_spec(speed, weight)
        self.health_config = HealthConfig.from_params(params)
        self.lanes: list[Lane] = []
        for index, name in enumerate(lane_names(params["algorithms"])):
            algorithm, options = lane_options(name, params)
            balancer = ALGORITHMS[algorithm](options, lane_rng(lane_base, name))
            health = Health(self.health_config)
            self.lanes.append(Lane(sim, index, name, balancer, self.present, health, params["window_s"]))

    def _new_spec(self, speed: float, weight: int) -> ServerSpec:
        spec = ServerSpec(
            f"s{len(self.specs) + 1}", speed, weight, self.params["concurrency"], self.params["queue_limit"]
        )
        self.specs[spec.id] = spec
        return spec

    @property
    def present(self) -> list[ServerSpec]:
        return [spec for spec in self.specs.values() if spec.present]

    # -- running ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.sim.emit(
            "lb.setup",
            {
                "lanes": [lane.name for lane in self.lanes],
                "hashing": [lane.name for lane in self.lanes if lane.hashing],
                "servers": [spec.describe() for spec in self.present],
                "concurrency": self.params["concurrency"],
                "queue_limit": self.params["queue_limit"],
                "window_s": self.params["window_s"],
                "sample_keys": len(KEY_SAMPLE),
            },
        )
        self.arrivals.start()
        if self.health_config.checks:
            self.sim.schedule(self.health_config.interval, self._check)
        if self.params["burst_every_s"] > 0:
            self.sim.schedule(self.params["burst_every_s"], self._periodic_burst)
        self.sim.schedule(0.0, self._sample)

    def _request(self) -> None:
        request = self.traffic.request(self.sim.now)
        self.sim.emit("lb.arrive", {"request": request.id, "key": request.key, "cost": request.cost})
        for lane in self.lanes:
            lane.route(request)

    def _burst(self, count: int) -> None:
        self.sim.emit("lb.traffic", {"rate": self.arrivals.rate, "burst": count, "hot_share": self.traffic.hot_share})
        for _ in range(count):
            self._request()

    def _periodic_burst(self) -> None:
        self._burst(self.params["burst_size"])
        self.sim.schedule(self.params["burst_every_s"], self._periodic_burst)

    def _check(self) -> None:
        """One active health check of every present server; the same result goes to every lane."""
        for spec in self.present:
            ok = self.checks.random() >= spec.fail_probability
            for lane in self.lanes:
                lane.probe(spec.id, ok)
        self.sim.schedule(self.health_config.interval, self._check)

    def _sample(self) -> None:
        for lane in self.lanes:
            lane.sample_load()
        self.sim.schedule(SAMPLE_EVERY, self._sample)

    # -- commands ---------------------------------------------------------------------------------------------
    def _do_add_server(self, speed: float, weight: int) -> None:
        if len(self.present) >= MAX_SERVERS:
            self.sim.emit(
                "command.ignored", {"command": "add_server", "reason": f"there are {MAX_SERVERS} servers already"}
            )
            return
        spec = self._new_spec(float(speed), int(weight))
        self._server_event("add", spec)
        for lane in self.lanes:
            lane.add(spec)

    def _do_set_rate(self, rate: float) -> None:
        self.arrivals.rate = float(rate)
        self._traffic_event()
        self.arrivals.start()

    def _do_burst(self, count: int) -> None:
        self._burst(int(count))

    def _do_hot_key(self, share: float) -> None:
        self.traffic.hot_share = float(share)
        self._traffic_event()

    def _present(self, command: str, server: str) -> ServerSpec | None:
        """The named server, or None (with a command.ignored event) when it is not present."""
        present = [spec.id for spec in self.present]
        if server not in present:
            known = ", ".join(present) or "none"
            self.sim.emit("command.ignored", {"command": command, "reason": f"no server {server} (present: {known})"})
            return None
        return self.specs[server]

    def _do_remove_server(self, server: str) -> None:
        if spec := self._present("remove_server", server):
            spec.present = False
            self._server_event("remove", spec)
            for lane in self.lanes:
                lane.remove(spec.id)

    def _do_slow_server(self, server: str, factor: float) -> None:
        if spec := self._present("slow_server", server):
            spec.slow = float(factor)
            self._server_event("slow", spec)

    def _do_fail_server(self, server: str, probability: float) -> None:
        if spec := self._present("fail_server", server):
            spec.fail_probability = float(probability)
            self._server_event("fail", spec)

    def _do_recover_server(self, server: str) -> None:
        if spec := self._present("recover_server", server):
            spec.slow, spec.fail_probability = 1.0, 0.0
            self._server_event("recover", spec)

    def _do_set_weight(self, server: str, weight: int) -> None:
        if spec := self._present("set_weight", server):
            changed, spec.weight = int(weight) != spec.weight, int(weight)
            self._server_event("weight", spec)
            if changed:
                for lane in self.lanes:
                    lane.set_weight(spec.id)

    def _server_event(self, change: str, spec: ServerSpec) -> None:
        self.sim.emit("lb.server", {"change": change, **spec.describe()})

    def _traffic_event(self) -> None:
        self.sim.emit("lb.traffic", {"rate": self.arrivals.rate, "burst": 0, "hot_share": self.traffic.hot_share})
