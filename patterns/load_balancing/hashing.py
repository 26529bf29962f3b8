"""The hashing schemes' data structures, built on one stable 64-bit hash.

Python's ``hash()`` of a string changes with ``PYTHONHASHSEED``; a balancer that used it would send a key to a
different server in every process, and a shared link would not reproduce its run. Everything here hashes with
BLAKE2b (hashlib) instead, with a distinct ``person`` string per use so that the ring's points, Maglev's two
permutation hashes and rendezvous scores are independent functions, as the papers assume.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from bisect import bisect_left
from collections.abc import Sequence

HASH_SPACE = 1 << 64  # every stable hash is an integer in [0, HASH_SPACE)
MAGLEV_DEFAULT_SIZE = 65537  # the paper's table size for production (a prime)

KEY, VNODE, MAGLEV_OFFSET, MAGLEV_SKIP, RENDEZVOUS = b"key", b"vnode", b"maglev-offset", b"maglev-skip", b"hrw"


def stable_hash(text: str, person: bytes = KEY) -> int:
    """A 64-bit hash of ``text`` that is the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, person=person).digest(), "big")


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % d for d in range(3, math.isqrt(n) + 1, 2))


# ---------------------------------------------------------------------------------------------------- ring


class Ring:
    """A consistent-hash ring (Karger et al. 1997) with ``vnodes`` points per unit of weight per server.

    Point ``i`` of server ``s`` sits at ``stable_hash("s#i")``; a key belongs to the first point at or after its
    own hash, clockwise, wrapping at the top. Equal points (astronomically rare) are ordered by server id, so
    the ring never depends on the order servers were given in.
    """

    def __init__(self, servers: Sequence[tuple[str, int]], vnodes: int):
        if vnodes < 1:
            raise ValueError(f"vnodes must be at least 1, not {vnodes}")
        pairs = sorted(
            (stable_hash(f"{server}#{i}", VNODE), server) for server, weight in servers for i in range(vnodes * weight)
        )
        self.vnodes = vnodes
        self.points = [point for point, _ in pairs]
        self.owners = [server for _, server in pairs]
        self._located: dict[str, tuple[int, int]] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_located": {}}  # snapshots leave the memo out: it is rebuilt as keys come

    def __len__(self) -> int:
        return len(self.points)

    def locate(self, key: str) -> tuple[int, int]:
        """The key's hash and the index of the first point clockwise from it.

        Memoized per ring (located keys): requests reuse a bounded set of keys (at most the key space), and a
        ring never changes once built, so each key is hashed and searched for once per ring.
        """
        located = self._located.get(key)
        if located is None:
            h = stable_hash(key)
            index = bisect_left(self.points, h)
            located = self._located[key] = (h, index % len(self.points) if self.points else 0)
        return located

    def arc_shares(self) -> dict[str, float]:
        """Each server's exact share of the hash space: the arcs ending at its points (first point seen first)."""
        shares: dict[str, float] = {}
        previous = self.points[-1] - HASH_SPACE if self.points else 0
        for point, owner in zip(self.points, self.owners, strict=True):
            shares[owner] = shares.get(owner, 0.0) + (point - previous) / HASH_SPACE
            previous = point
        return shares


# ---------------------------------------------------------------------------------------------------- maglev


def maglev_table(servers: Sequence[tuple[str, int]], size: int = MAGLEV_DEFAULT_SIZE) -> array:
    """Maglev's lookup table (Eisenbud et al., NSDI 2016, section 3.4): entry -> index into ``servers``.

    Each server has a permutation of the ``size`` slots, ``offset + j * skip (mod size)``; ``size`` prime and
    ``1 <= skip < size`` make every permutation visit every slot. Servers take turns claiming their next free
    preferred slot until the table is full, so with equal weights every server gets ``size // n`` or
    ``size // n + 1`` entries. Unequal integer weights follow Envoy's variant: a server takes a turn only in the
    rounds where ``round * weight >= target`` (target growing by the largest weight each turn), so a server of a
    third of the largest weight claims a slot every third round.
    """
    if not is_prime(size):
        raise ValueError(f"the Maglev table size must be a prime, not {size}")
    if len(servers) > min(size, 65535):
        raise ValueError(f"a Maglev table of {size} entries cannot hold {len(servers)} servers")
    if not servers:
        return array("H")
    table = array("H", [0]) * size
    taken = bytearray(size)
    offsets = [stable_hash(name, MAGLEV_OFFSET) % size for name, _ in servers]
    skips = [stable_hash(name, MAGLEV_SKIP) % (size - 1) + 1 for name, _ in servers]
    nexts = offsets[:]  # each server's current slot in its permutation
    weights = [weight for _, weight in servers]
    top = max(weights)
    targets = [0] * len(servers)
    filled = 0
    turn = 0
    while True:
        turn += 1
        for i, weight in enumerate(weights):
            if turn * weight < targets[i]:
                continue
            targets[i] += top
            slot, skip = nexts[i], skips[i]
            while taken[slot]:
                slot += skip
                if slot >= size:
                    slot -= size
            taken[slot] = 1
            table[slot] = i
            nexts[i] = slot + skip - size if slot + skip >= size else slot + skip
            filled += 1
            if filled == size:
                return table


# ---------------------------------------------------------------------------------------------------- rendezvous


def unit_interval(h: int) -> float:
    """A 64-bit hash as a fraction strictly inside (0, 1): its top 53 bits, centred."""
    return ((h >> 11) + 0.5) / (1 << 53)


class RendezvousScores:
    """Highest-random-weight hashing (Thaler & Ravishankar 1998): every server scores a key and the highest wins
    (ties, which need equal 64-bit hashes, by id). The score is ``-weight / ln(u)``, ``u`` the hash of
    ``server + "\\x00" + key`` in (0, 1): the logarithmic weighting, under which a server wins a key with
    probability ``weight / sum(weights)``; with equal weights the order is that of the raw hashes.

    Each server's hash state is fed its prefix once, so a key costs one copy and one update per server (a third
    of hashing afresh); the states are not picklable, so a pickled copy keeps the servers and rebuilds them
    (and its memo).
    """

    def __init__(self, servers: Sequence[tuple[str, int]]):
        self.servers = list(servers)
        self.states = [
            hashlib.blake2b(f"{server}\x00".encode(), digest_size=8, person=RENDEZVOUS) for server, _ in servers
        ]
        self._won: dict[str, tuple[str | None, float]] = {}

    def __getstate__(self) -> list[tuple[str, int]]:
        return self.servers

    def __setstate__(self, servers: list[tuple[str, int]]) -> None:
        self.__init__(servers)

    def owner(self, key: str) -> tuple[str | None, float]:
        """The winning server and its score (None, 0.0 without servers).

        Memoized (won keys): requests reuse a bounded set of keys, and the servers never change once scored.
        """
        won = self._won.get(key)
        if won is None:
            won = self._won[key] = self._score(key)
        return won

    def _score(self, key: str) -> tuple[str | None, float]:
        data = key.encode()
        best, best_score = None, 0.0
        for (server, weight), state in zip(self.servers, self.states, strict=True):
            h = state.copy()
            h.update(data)
            score = -weight / math.log(unit_interval(int.from_bytes(h.digest(), "big")))
            if best is None or score > best_score or (score == best_score and server > best):
                best, best_score = server, score
        return best, best_score
