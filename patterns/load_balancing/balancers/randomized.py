"""Drawing lots: uniform and weighted random choice, with the run's seeded random generator."""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from .base import ANY_ELIGIBLE, NONE_AVAILABLE, SEND, START, Balancer, Pick, flow


class RandomChoice(Balancer):
    """Each request goes to an eligible server drawn uniformly (NGINX ``random`` without ``two``)."""

    name = "random"
    label = "Random"
    FLOW = flow(
        START,
        ANY_ELIGIBLE,
        ("draw", "Draw one eligible server uniformly", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > any
            any > error: no
            any > draw: yes
            draw > send
        """,
    )

    def pick(self, key: str, now: float | None = None) -> Pick:
        if not self.eligible:
            return self.nobody("start", "any")
        index = self.rng.randrange(len(self.eligible))
        return Pick(self.eligible[index], ("start", "any", "draw", "send"), {"drawn": index})


class WeightedRandom(Balancer):
    """A server drawn with probability weight / total weight: a uniform point on the stacked weights."""

    name = "weighted_random"
    label = "Weighted random"
    FLOW = flow(
        START,
        ANY_ELIGIBLE,
        ("draw", "Draw r uniformly in [0, total weight)", "step"),
        ("walk", "Walk the cumulative weights to the first above r", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > any
            any > error: no
            any > draw: yes
            draw > walk
            walk > send
        """,
    )

    def __init__(self, options, rng):
        super().__init__(options, rng)
        self.cumulative: list[int] = []

    def rebuild(self, members_changed: bool) -> None:
        self.cumulative = list(accumulate(self.weights[s] for s in self.eligible))

    def pick(self, key: str, now: float | None = None) -> Pick:
        if not self.eligible or not self.cumulative[-1]:
            return self.nobody("start", "any")
        r = self.rng.random() * self.cumulative[-1]
        index = bisect_right(self.cumulative, r)
        return Pick(self.eligible[index], ("start", "any", "draw", "walk", "send"), {"r": r})
