"""Taking turns: the guide's round-robin and NGINX's smooth weighted round-robin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .base import ANY_ELIGIBLE, NONE_AVAILABLE, SEND, START, Balancer, Pick, eligible, flow


def smooth_pick(candidates: Sequence[str], weights: Mapping[str, int], current: dict[str, int]) -> tuple[str, int]:
    """One step of NGINX's smooth weighted round-robin (ngx_http_upstream_get_peer) over ``candidates``.

    Every candidate's current weight grows by its weight; the largest (the first of equals, in list order) is
    chosen and loses the total. Weights 5, 1, 1 give a a b a c a a: each server gets its share in every cycle of
    ``sum(weights)`` picks, spread out rather than in bursts. Returns the chosen server and the total.
    """
    best = None
    total = 0
    for server in candidates:
        weight = weights[server]
        current[server] = current.get(server, 0) + weight
        total += weight
        if best is None or current[server] > current[best]:
            best = server
    current[best] -= total
    return best, total


class SmoothWeightedTurns(Balancer):
    """A balancer that deals picks out by `smooth_pick` and keeps the current weights between picks.

    A change of membership or weights starts the current weights again from zero, as an NGINX reload does; a
    server turning unhealthy only leaves the turns (as a peer marked down) and keeps its current weight.
    ``current`` (server -> current weight) is public, for a face that shows the turns being taken.
    """

    def __init__(self, options, rng):
        super().__init__(options, rng)
        self.current: dict[str, int] = {}

    def rebuild(self, members_changed: bool) -> None:
        if members_changed:
            self.current = {}


class RoundRobin(Balancer):
    """The guide's round-robin: an index walks the server list in order, wrapping, and skips unhealthy servers
    (and drained ones, of weight 0). Other weights are ignored. The index survives membership changes (taken
    modulo the new length), as the guide's atomic counter does."""

    name = "round_robin"
    label = "Round-robin"
    FLOW = flow(
        START,
        ("empty", "Server list empty?", "decision"),
        ("index", "Get the current index", "step"),
        ("select", "Select the server at the index", "step"),
        ("advance", "index = (index + 1) mod length", "step"),
        ("healthy", "Server healthy (and not drained)?", "decision"),
        ("lap", "Tried every server?", "decision"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > empty
            empty > error: yes
            empty > index: no
            index > select
            select > advance
            advance > healthy
            healthy > send: yes
            healthy > lap: no
            lap > index: no, skip to the next
            lap > error: yes
        """,
    )

    def __init__(self, options, rng):
        super().__init__(options, rng)
        self.index = 0

    def pick(self, key: str, now: float | None = None) -> Pick:
        servers = self.servers
        if not servers:
            return self.nobody("start", "empty")
        trail = ["start", "empty", "index", "select", "advance", "healthy"]
        for skipped in range(len(servers)):
            slot = self.index % len(servers)
            server = servers[slot]
            self.index = (slot + 1) % len(servers)
            if eligible(server):
                return Pick(
                    server.id, (*trail, *(["lap"] if skipped else []), "send"), {"index": slot, "skipped": skipped}
                )
        return self.nobody(*trail, "lap")


class SmoothWeightedRoundRobin(SmoothWeightedTurns):
    """NGINX's smooth weighted round-robin (the default ``upstream`` balancer; see `smooth_pick`), over every
    eligible server, with current weights kept and reset as `SmoothWeightedTurns` says.

    NGINX's failure-driven ``effective_weight`` is not modelled: failures are handled by the health checks.
    """

    name = "weighted_round_robin"
    label = "Smooth weighted round-robin (NGINX)"
    FLOW = flow(
        START,
        ANY_ELIGIBLE,
        ("grow", "For each eligible server: current += weight; total += weight", "step"),
        ("best", "Choose the largest current weight (first of equals)", "step"),
        ("lose", "chosen.current -= total", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > any
            any > error: no
            any > grow: yes
            grow > best
            best > lose
            lose > send
        """,
    )

    def pick(self, key: str, now: float | None = None) -> Pick:
        if not self.eligible:
            return self.nobody("start", "any")
        server, total = smooth_pick(self.eligible, self.weights, self.current)
        return Pick(server, ("start", "any", "grow", "best", "lose", "send"), {"total": total})
