"""Hashing a request key to a server, so that the same user keeps landing on the same server: the consistent-hash
ring, its bounded-loads variant, Maglev and rendezvous hashing. Each can say who owns any key now
(`key_owners`), which is how the moved share of keys is measured on a membership change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

from ..hashing import (
    HASH_SPACE,
    MAGLEV_DEFAULT_SIZE,
    RendezvousScores,
    Ring,
    maglev_table,
    stable_hash,
)
from .base import ANY_ELIGIBLE, NONE_AVAILABLE, SEND, START, Balancer, Pick, ServerView, flow, option

HASH_KEY = ("hash", "hash = stable 64-bit hash of the request key (user or session id)", "step")
# Where a hash h sits on the ring is h / TURN, a fraction of a turn (JSON-safe, unlike a 64-bit integer). TURN is
# a float (float division by a power of two): h / 2.0**64 is exactly the correctly rounded h / 2**64, as the float
# of h is correctly rounded and dividing it by a power of two is exact, at a quarter of the cost of dividing two
# integers.
TURN = float(HASH_SPACE)


class HashingBalancer(Balancer):
    hashing = True

    def key_owners(self, keys: Sequence[str]) -> dict[str, str | None]:
        """The server each key goes to now, load aside (for bounded loads: its owner on the ring)."""
        return {key: self.owner(key) for key in keys}

    def owner(self, key: str) -> str | None:
        raise NotImplementedError


class RingHash(HashingBalancer):
    """A consistent-hash ring (Karger et al. 1997; Envoy's RING_HASH, the guide's ring) with ``vnodes`` points
    per unit of weight per server (default 100; the guide used 3).

    The ring holds every member of positive weight, healthy or not; the walk clockwise passes the points of
    ineligible servers, as in the guide's flowchart. That gives exactly the owners of a ring rebuilt without
    them (a server's points do not depend on the others'), so health changes need no rebuild.
    """

    name = "ring_hash"
    label = "Consistent hashing (ring, virtual nodes)"
    TRAIL = ("start", "any", "hash", "find", "search", "map", "healthy")  # what every pick passes, before "next"
    FLOW = flow(
        START,
        ANY_ELIGIBLE,
        HASH_KEY,
        ("find", "Find the key's position on the ring", "step"),
        ("search", "Take the first virtual node clockwise", "step"),
        ("map", "Map the virtual node to its server", "step"),
        ("healthy", "Server available?", "decision"),
        ("next", "Continue clockwise to the next virtual node", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > any
            any > error: no
            any > hash: yes
            hash > find
            find > search
            search > map
            map > healthy
            healthy > next: no
            healthy > send: yes
            next > map
        """,
    )

    def __init__(self, options, rng):
        super().__init__(options, rng)
        self.vnodes = option(options, "vnodes", 100, int, low=1)
        self.ring = Ring((), self.vnodes)
        self.eligible_set: frozenset[str] = frozenset()
        self.trails = ((*self.TRAIL, "send"), (*self.TRAIL, "next", "send"))  # stopped at once, or passed points

    def rebuild(self, members_changed: bool) -> None:
        self.eligible_set = frozenset(self.eligible)
        if members_changed:
            self.ring = Ring([(s, w) for s, w in self.weights.items() if w > 0], self.vnodes)

    def walk(self, key: str, accepts: Callable[[str], bool] | None = None) -> tuple[int, int, int, str | None]:
        """(key hash, first point index, points passed, owner): the first eligible owner clockwise that
        ``accepts`` (if given) lets the walk stop at."""
        h, start = self.ring.locate(key)
        owners, eligible = self.ring.owners, self.eligible_set
        size = len(owners)
        for passed in range(size):  # every point once, clockwise from start, wrapping at the top
            server = owners[start + passed - size if start + passed >= size else start + passed]
            if server in eligible and (accepts is None or accepts(server)):
                return h, start, passed, server
        return h, start, size, None

    def owner(self, key: str) -> str | None:
        return self.walk(key)[3] if self.eligible else None

    def pick(self, key: str, now: float | None = None) -> Pick:
        if not self.eligible:
            return self.nobody("start", "any")
        h, start, passed, server = self.place(key)
        points = self.ring.points
        detail = {
            "position": h / TURN,
            "point": points[start] / TURN,
            "passed": passed,
            "stopped": points[(start + passed) % len(points)] / TURN,
            **self.load_detail(server),
        }
        return Pick(server, self.trails[passed > 0], detail)

    def place(self, key: str) -> tuple[int, int, int, str | None]:
        """The walk a pick takes (see `walk`): on the plain ring, to the first eligible owner clockwise."""
        return self.walk(key)

    def load_detail(self, server: str) -> dict[str, int]:
        """What a pick reports of the chosen server's load: nothing, the plain ring ignores load."""
        return {}


class BoundedLoad(RingHash):
    """Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, SODA 2018; in HAProxy as
    ``hash-balance-factor``, contributed by Vimeo): no server may take more than
    ``capacity = ceil(c * (m + 1) * weight / total_weight)`` requests, ``m`` the requests in flight on the
    eligible servers and ``+ 1`` the one being placed (HAProxy counts it too); the walk clockwise passes full
    servers as it passes unhealthy ones. With equal weights that is the paper's ``ceil(c * (m + 1) / n)``.
    HAProxy rounds up the total ``c * (m + 1)`` once and deals the slots out by weight, one fewer for some
    servers; the paper's per-server ceiling is kept here, so the tested bound is the paper's.
    As the capacities add up to at least ``c * (m + 1) > m``, some server always has room when ``c >= 1``.
    The bound holds when each request is placed; later departures can leave a server above a shrunken
    capacity until it drains, as in the paper.
    """

    name = "bounded_load"
    label = "Consistent hashing with bounded loads"
    TRAIL = ("start", "any", "hash", "find", "capacity", "search", "map", "healthy", "full")
    FLOW = flow(
        START,
        ANY_ELIGIBLE,
        HASH_KEY,
        ("find", "Find the key's position on the ring", "step"),
        ("capacity", "capacity = ceil(c x (in flight + 1) x weight / total weight)", "step"),
        ("search", "Take the first virtual node clockwise", "step"),
        ("map", "Map the virtual node to its server", "step"),
        ("healthy", "Server available?", "decision"),
        ("full", "Server at capacity?", "decision"),
        ("next", "Continue clockwise to the next virtual node", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > any
            any > error: no
            any > hash: yes
            hash > find
            find > capacity
            capacity > search
            search > map
            map > healthy
            healthy > next: no
            healthy > full: yes
            full > next: yes
            full > send: no
            next > map
        """,
    )

    def __init__(self, options, rng):
        super().__init__(options, rng)
        factor = Fraction(str(option(options, "bounded_load_factor", 1.25, float, low=1.0))).limit_denominator(10**6)
        self.factor = (factor.numerator, factor.denominator)  # exact integer ceilings: no 2.0000000001 -> 3
        self.total_weight = 0
        self.in_flight = 0  # requests active on the eligible servers
        self.placing = 1  # in flight + the request being placed, set by each pick
        self.room = (0, 1)  # (factor numerator x placing, factor denominator x total weight), set by each pick

    def rebuild(self, members_changed: bool) -> None:
        super().rebuild(members_changed)
        self.total_weight = sum(self.weights[s] for s in self.eligible)

    # Counted in flight: kept current by every start and finish, instead of summing every eligible server's load
    # at every pick (the sum is retaken whenever the balancer is given its servers and their loads).
    def set_servers(self, servers: Sequence[ServerView]) -> None:
        super().set_servers(servers)
        self.in_flight = sum(self.active[s] for s in self.eligible)

    def on_start(self, server: str) -> None:
        super().on_start(server)
        if server in self.eligible_set:
            self.in_flight += 1

    def on_finish(self, server: str, latency: float, now: float) -> None:
        if self.active.get(server, 0) > 0 and server in self.eligible_set:
            self.in_flight -= 1
        super().on_finish(server, latency, now)

    def capacity(self, server: str, placing: int) -> int:
        """How many requests ``server`` may hold once ``placing`` (in flight + the new one) are placed."""
        numerator, denominator = self.factor
        return -(-numerator * placing * self.weights[server] // (denominator * self.total_weight))

    def has_room(self, server: str) -> bool:
        """``active < capacity(server, placing)``, cross-multiplied (room test without the ceiling): for a whole
        number of requests, ``active < ceil(x)`` is ``active < x``, so no division, rounding or call is needed."""
        scaled_placing, scaled_total = self.room
        return self.active.get(server, 0) * scaled_total < scaled_placing * self.weights[server]

    def place(self, key: str) -> tuple[int, int, int, str | None]:
        """The walk clockwise passes full servers too, the capacities counting the request being placed."""
        self.placing = self.in_flight + 1
        numerator, denominator = self.factor
        self.room = (numerator * self.placing, denominator * self.total_weight)
        return self.walk(key, self.has_room)

    def load_detail(self, server: str) -> dict[str, int]:
        return {"capacity": self.capacity(server, self.placing), "load": self.active.get(server, 0)}


class Maglev(HashingBalancer):
    """Maglev hashing (Eisenbud et al., NSDI 2016; Envoy's MAGLEV): a key's server is ``table[hash mod M]``,
    the table filled by `maglev_table` from the eligible servers. ``maglev_table_size`` M must be a prime
    (default 65537, the paper's; smaller primes build faster, at the cost of balance: keep M > 100 n).
    Unlike the ring it is rebuilt on every change of the eligible set, health included, as Maglev does.
    """

    name = "maglev"
    label = "Maglev hashing"
    FLOW = flow(
        START,
        ANY_ELIGIBLE,
        HASH_KEY,
        ("slot", "slot = hash mod M (M prime)", "step"),
        ("lookup", "server = table[slot] (filled by the servers' permutations, taking turns)", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > any
            any > error: no
            any > hash: yes
            hash > slot
            slot > lookup
            lookup > send
        """,
    )

    def __init__(self, options, rng):
        super().__init__(options, rng)
        self.size = option(options, "maglev_table_size", MAGLEV_DEFAULT_SIZE, int, low=2)
        self.table = maglev_table((), self.size)  # rejects a size that is not a prime now, not at first use
        self.members: list[str] = []

    def rebuild(self, members_changed: bool) -> None:
        self.members = list(self.eligible)
        self.table = maglev_table([(s, self.weights[s]) for s in self.members], self.size)

    def owner(self, key: str) -> str | None:
        return self.members[self.table[stable_hash(key) % self.size]] if self.members else None

    def pick(self, key: str, now: float | None = None) -> Pick:
        if not self.members:
            return self.nobody("start", "any")
        h = stable_hash(key)
        slot = h % self.size
        server = self.members[self.table[slot]]
        return Pick(server, ("start", "any", "hash", "slot", "lookup", "send"), {"slot": slot, "size": self.size})


class Rendezvous(HashingBalancer):
    """Rendezvous or highest-random-weight hashing (Thaler & Ravishankar 1998): every eligible server scores the
    key (`hashing.RendezvousScores`, weighted logarithmically) and the highest wins. Removing a server moves only its
    own keys, with no table or ring at all; the price is n hashes per pick."""

    name = "rendezvous"
    label = "Rendezvous (highest random weight) hashing"
    FLOW = flow(
        START,
        ANY_ELIGIBLE,
        ("score", "Score every eligible server: -weight / ln(hash(server, key) in (0, 1))", "step"),
        ("highest", "Choose the highest score", "step"),
        SEND,
        NONE_AVAILABLE,
        edges="""
            start > any
            any > error: no
            any > score: yes
            score > highest
            highest > send
        """,
    )

    def __init__(self, options, rng):
        super().__init__(options, rng)
        self.scores = RendezvousScores(())

    def rebuild(self, members_changed: bool) -> None:
        self.scores = RendezvousScores([(s, self.weights[s]) for s in self.eligible])

    def owner(self, key: str) -> str | None:
        return self.scores.owner(key)[0]

    def pick(self, key: str, now: float | None = None) -> Pick:
        server, score = self.scores.owner(key)
        if server is None:
            return self.nobody("start", "any")
        return Pick(server, ("start", "any", "score", "highest", "send"), {"score": score})
