"""The clients: one request stream, drawn once and fed to every lane.

Arrivals are a Poisson process (the engine's `PoissonArrivals`, its gaps drawn from this traffic's generator)
plus bursts. Every request carries a
key (a user or session id, uniform or Zipf over ``key_space`` keys, or the hot key for a share of requests), a
cost (seconds of work on a server of speed 1: lognormal or Pareto around a mean, so the tail is tunable) and a
``luck`` draw that decides whether a failing server fails it. All of these are drawn here, once per request, from
the traffic's own generator, so every lane sees exactly the same requests and service-time randomness cannot
differ between lanes: a server's speed only divides the cost.

The traffic generator is seeded from the run's `sim.rng` once, at start; lanes draw from their own generators, so
the stream does not depend on which algorithms are raced.
"""

from __future__ import annotations

import bisect
import math
import random
from array import array
from collections.abc import Mapping
from typing import Any, NamedTuple

HOT_KEY = "hot"
MAX_COST_MULTIPLE = 1000.0  # a Pareto draw is capped at this many times the mean, so one request cannot stall a run


class Request(NamedTuple):
    """One request, the same object in every lane. A named tuple (immutable record): built at a third of the cost
    of a frozen dataclass, whose ``__init__`` sets each field through ``object.__setattr__``."""

    id: int
    key: str
    cost: float  # seconds of work at speed 1
    luck: float  # uniform in [0, 1): a server failing with probability p fails this request when luck < p
    arrived: float


def key_name(index: int) -> str:
    return f"k{index}"


class Traffic:
    """Draws requests (keys, costs and luck, in a fixed order per request) and the arrival gaps between them."""

    def __init__(self, seed: int, params: Mapping[str, Any]):
        self.rng = random.Random(seed)
        self.cost_mean = params["cost_ms"] / 1000.0
        self.tail = params["cost_tail"]
        self.sigma = float(params["cost_sigma"])
        self.mu = (
            math.log(self.cost_mean) - self.sigma**2 / 2.0
        )  # the lognormal costs' location: their mean is cost_mean
        self.alpha = float(params["pareto_alpha"])
        self.key_space = int(params["key_space"])
        self.zipf = params["key_distribution"] == "zipf"
        self.zipf_cdf = zipf_cdf(self.key_space, float(params["zipf_s"])) if self.zipf else array("d")
        self.hot_share = 0.0
        self.issued = 0

    def request(self, now: float) -> Request:
        self.issued += 1
        rng = self.rng
        cost = self._cost()
        key = self._key()
        return Request(self.issued, key, round(cost, 9), rng.random(), now)

    def _cost(self) -> float:
        if self.tail == "pareto":
            scale = self.cost_mean * (self.alpha - 1.0) / self.alpha  # Pareto(alpha, scale) has this mean
            return min(scale * self.rng.paretovariate(self.alpha), MAX_COST_MULTIPLE * self.cost_mean)
        if self.sigma == 0:
            return self.cost_mean
        return self.rng.lognormvariate(self.mu, self.sigma)

    def _key(self) -> str:
        draw = self.rng.random()
        if self.hot_share > 0 and self.rng.random() < self.hot_share:
            return HOT_KEY
        if self.zipf:
            return key_name(min(bisect.bisect_left(self.zipf_cdf, draw), self.key_space - 1))
        return key_name(int(draw * self.key_space))


def zipf_cdf(count: int, s: float) -> array:
    """Cumulative probabilities of ranks 1..count with weight 1/rank**s (s = 0 is uniform)."""
    weights = [1.0 / (rank**s) for rank in range(1, count + 1)]
    total = math.fsum(weights)
    out, running = array("d"), 0.0
    for weight in weights:
        running += weight
        out.append(running / total)
    return out
