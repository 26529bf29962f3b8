"""Following the load: least connections (NGINX), least request with power of two choices (Envoy, Finagle) and
peak EWMA (Finagle, Linkerd)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import repeat
from typing import ClassVar

from .base import ANY_ELIGIBLE, NONE_AVAILABLE, SEND, START, Balancer, Pick, flow, option
from .rotation import SmoothWeightedTurns, smooth_pick


class LeastConnections(SmoothWeightedTurns):
    """NGINX ``least_conn``: the eligible server with the fewest active requests per unit of weight
    (``active * w_best < active_best * w``, integers, no rounding).

    Ties: NGINX's rule. The tied servers share out the picks by smooth weighted round-robin among themselves
    (`smooth_pick`, with current weights kept across picks as `SmoothWeightedTurns` keeps them), so with equal
    weights tied servers take turns in list order: a b c a b c on an idle cluster, never "always the first" as a
    plain scan would.
    """

    name = "least_connections"
    label = "Least connections (NGINX least_conn)"
    FLOW = flow(
        START,
        ("init", "min = infinity; chosen = none", "step"),
        ("each", "For each server", "step"),
        ("healthy", "Eligible?", "decision"),
        ("count", "Active requests / weight", "step"),
        ("compare", "Below min?", "decision"),
        ("update", "min = it; tied = [it]", "step"),
        ("tie", "Equal to min: add it to the tied", "step"),
        ("next", "Continue with the next server", "step"),
        ("more", "More servers?", "decision"),
        ("chosen", "Any chosen?", "decision"),
        ("ties", "Several tied?", "decision"),
        ("rotate", "Smooth weighted round-robin among the tied", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > init
            init > each
            each > healthy
            healthy > next: no
            healthy > count: yes
            count > compare
            compare > update: below
            compare > tie: equal
            compare > next: above
            update > next
            tie > next
            next > more
            more > each: yes
            more > chosen: no
            chosen > error: no
            chosen > ties: yes
            ties > rotate: yes
            ties > send: no
            rotate > send
        """,
    )

    SCAN = ("start", "init", "each", "healthy")
    # the two trails a pick with an eligible server takes, built once: one server with the least, or several tied
    TRAIL_ONE = (*SCAN, "count", "compare", "update", "next", "more", "chosen", "ties", "send")
    TRAIL_TIED = (*SCAN, "count", "compare", "update", "tie", "next", "more", "chosen", "ties", "rotate", "send")

    def pick(self, key: str, now: float | None = None) -> Pick:
        if not self.eligible:
            return self.nobody(*self.SCAN, "next", "more", "chosen")
        active, weights = self.active, self.weights
        tied: list[str] = []
        best_active, best_weight = 0, 1
        for server in self.eligible:
            a, w = active.get(server, 0), weights[server]
            if not tied or a * best_weight < best_active * w:
                tied = [server]
                best_active, best_weight = a, w
            elif a * best_weight == best_active * w:
                tied.append(server)
        if len(tied) == 1:
            return Pick(tied[0], self.TRAIL_ONE, {"active": best_active, "tied": tied})
        chosen, _ = smooth_pick(tied, weights, self.current)
        return Pick(chosen, self.TRAIL_TIED, {"active": best_active, "tied": tied})


def sample_two(rng: random.Random, items: Sequence[str]) -> list[str]:
    """``rng.sample(items, 2)``, the same draws and the same result, at half the cost (random.sample's checks and
    copies take longer than its two draws). As CPython draws them: from 21 items or fewer, the second index comes
    from the ``n - 1`` left, the last item having taken the first one's place; from more, repeats are redrawn.
    Each index is drawn by ``rng._randbelow``, as sample draws it (direct draws: ``randrange(n)`` would only check
    its argument and call the same, one more Python call per draw)."""
    below = rng._randbelow
    n = len(items)
    first = below(n)
    if n <= 21:
        second = below(n - 1)
        if second == first:
            second = n - 1
    else:
        second = below(n)
        while second == first:
            second = below(n)
    return [items[first], items[second]]


class PowerOfChoices(Balancer):
    """Draw ``choices`` (default 2) distinct eligible servers at random and keep the least loaded: the
    power of two choices (Mitzenmacher 2001), which keeps the maximum load near the mean where one random choice
    lets it grow with log n / log log n. Subclasses say what "load" is."""

    FLOW_DRAW = ("draw", "Draw 'choices' distinct servers at random (two by default)", "step")
    STEPS: ClassVar[tuple[str, ...]]  # the flowchart nodes between "one" and "send"

    def __init__(self, options, rng):
        super().__init__(options, rng)
        self.choices = option(options, "choices", 2, int, low=2)
        self.trail = ("start", "any", "one", *self.STEPS, "send")

    def pick(self, key: str, now: float | None = None) -> Pick:
        eligible = self.eligible
        if not eligible:
            return self.nobody("start", "any")
        if len(eligible) == 1:
            server = eligible[0]
            detail = {"candidates": [server], "loads": [self.load(server, now)]}
            return Pick(server, ("start", "any", "one", "send"), detail)
        if self.choices == 2:
            candidates = sample_two(self.rng, eligible)
        else:
            candidates = self.rng.sample(eligible, min(self.choices, len(eligible)))
        loads = list(map(self.load, candidates, repeat(now)))  # a map: a comprehension is one more call (< 3.12)
        best = loads.index(min(loads))  # the first drawn of equals
        detail = {"candidates": candidates, "loads": loads}
        return Pick(candidates[best], self.trail, detail)

    def load(self, server: str, now: float | None) -> float:
        raise NotImplementedError


class LeastRequest(PowerOfChoices):
    """Envoy's ``LEAST_REQUEST``: the fewer active requests wins, the first drawn of equals (Envoy keeps its
    candidate unless a sample has strictly fewer).

    With unequal weights Envoy uses ``weight / (active + 1) ^ active_request_bias`` (bias 1.0 by default; 0
    ignores load): here the load is its inverse, ``(active + 1) ^ bias / weight``, compared between the same
    drawn candidates. Two differences from Envoy, both as the playground's contract asks: the candidates are
    distinct (as Finagle's P2C draws them; Envoy draws with replacement), and with unequal weights Envoy feeds
    those weights to its EDF scheduler instead of drawing two, where here the two drawn are compared.
    """

    name = "p2c_least_request"
    label = "Least request, power of two choices (Envoy)"
    STEPS = ("draw", "load", "compare")
    FLOW = flow(
        START,
        ANY_ELIGIBLE,
        ("one", "Only one eligible?", "decision"),
        PowerOfChoices.FLOW_DRAW,
        ("load", "Load of each: active requests (unequal weights: (active + 1)^bias / weight)", "step"),
        ("compare", "Keep the least loaded (the first drawn of equals)", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > any
            any > error: no
            any > one: yes
            one > send: yes
            one > draw: no
            draw > load
            load > compare
            compare > send
        """,
    )

    def __init__(self, options, rng):
        super().__init__(options, rng)
        self.bias = option(options, "active_request_bias", 1.0, float, low=0.0)
        self.equal_weights = True

    def rebuild(self, members_changed: bool) -> None:
        self.equal_weights = len({self.weights[s] for s in self.eligible}) <= 1

    def load(self, server: str, now: float | None) -> float:
        active = self.active.get(server, 0)
        if self.equal_weights:
            return active
        return (active + 1) ** self.bias / self.weights[server]


PENALTY = float(1 << 47)  # Finagle's Long.MaxValue >> 16: the cost of a busy server never measured yet


class PeakEwmaEstimate:
    """A server's latency estimate as Finagle's PeakEwma keeps it (and Linkerd's, via tower).

    A sample above the estimate replaces it at once (peak-sensitive: one slow response is felt by the next
    pick); otherwise the estimate moves toward the sample by ``1 - exp(-dt / tau)``, ``dt`` being the time since
    the last update, so an unevenly sampled series decays with time, not with the count of samples. Reading it
    first decays it toward 0 as a sample of 0, as Finagle's ``get()`` does, so an idle server becomes cheap.
    """

    __slots__ = ("cost", "stamp")

    def __init__(self) -> None:
        self.cost = 0.0
        self.stamp: float | None = None

    def __getstate__(self) -> tuple[float, float | None]:
        return self.cost, self.stamp

    def __setstate__(self, state: tuple[float, float | None]) -> None:
        self.cost, self.stamp = state

    def observe(self, rtt: float, now: float, tau: float) -> None:
        elapsed = 0.0 if self.stamp is None else max(now - self.stamp, 0.0)
        if rtt > self.cost:
            self.cost = rtt
        else:
            w = math.exp(-elapsed / tau)
            self.cost = self.cost * w + rtt * (1.0 - w)
        self.stamp = now if self.stamp is None else max(now, self.stamp)

    def decay(self, now: float, tau: float) -> None:
        """``observe(0.0, now, tau)``, what every pick does to both candidates, at less cost. A sample of 0 never
        exceeds the estimate and adds ``0 * (1 - w) = 0``, so only the factor ``w`` acts, and only when time has
        passed and there is a cost to decay: the same floats without the comparisons, the ``max`` calls or the
        exp that change nothing."""
        stamp = self.stamp
        if stamp is None or now > stamp:
            if stamp is not None and self.cost:
                self.cost *= math.exp(-(now - stamp) / tau)
            self.stamp = now


class PeakEwma(PowerOfChoices):
    """Finagle's ``p2cPeakEwma`` (Linkerd's default): power of two choices on cost = peak-EWMA latency x
    (pending + 1), pending being the server's active requests; a server busy but never measured costs
    `PENALTY` + pending. ``ewma_decay_s`` is the time constant tau (Finagle's default decay time, 10 s).
    Estimates are measured here, from `on_finish` (the balancer times its own requests, as a client does);
    `pick` decays them to ``now`` when it is given.
    """

    name = "peak_ewma"
    label = "Peak EWMA, power of two choices (Finagle, Linkerd)"
    STEPS = ("draw", "decay", "cost", "compare")
    FLOW = flow(
        START,
        ANY_ELIGIBLE,
        ("one", "Only one eligible?", "decision"),
        PowerOfChoices.FLOW_DRAW,
        ("decay", "Decay each one's latency estimate to now", "step"),
        ("cost", "cost = peak EWMA latency x (pending + 1)", "step"),
        ("compare", "Keep the cheaper (the first drawn of equals)", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > any
            any > error: no
            any > one: yes
            one > send: yes
            one > draw: no
            draw > decay
            decay > cost
            cost > compare
            compare > send
        """,
    )

    def __init__(self, options, rng):
        super().__init__(options, rng)
        self.tau = option(options, "ewma_decay_s", 10.0, float, low=1e-9)
        self.estimates: dict[str, PeakEwmaEstimate] = {}

    def rebuild(self, members_changed: bool) -> None:
        self.estimates = {s: self.estimates.get(s) or PeakEwmaEstimate() for s in self.weights}

    def on_finish(self, server: str, latency: float, now: float) -> None:
        super().on_finish(server, latency, now)
        if server in self.estimates:
            self.estimates[server].observe(latency, now, self.tau)

    def latency(self, server: str) -> float:
        """The current estimate, for display."""
        return self.estimates[server].cost

    def load(self, server: str, now: float | None) -> float:
        estimate = self.estimates[server]
        if now is not None:
            estimate.decay(now, self.tau)
        pending = self.active.get(server, 0)
        if estimate.cost == 0.0 and pending:
            return PENALTY + pending
        return estimate.cost * (pending + 1)
