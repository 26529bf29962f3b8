"""A lane: one algorithm with its own servers, health view and counters, fed the run's shared request stream.

Compare mode runs up to four lanes side by side. Everything that differs between lanes lives here (queues, busy
slots, what the balancer has learned, outlier ejections, panic); everything else (the requests, the servers'
settings, the active health checks' results) is the engine's and identical for every lane. A lane's balancer
draws from its own generator, seeded from the run and the lane's name, so the same lane behaves the same whatever
it is raced against.

Every change of a lane's eligible servers (a server added or removed, a weight, a health or ejection change, panic)
is a ``lb.membership`` event; for hashing schemes it says how many of a fixed sample of keys changed owner,
against the smallest share any scheme must move for that change.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from patterns.core.sim import Simulation

from .balancers import Balancer, Pick, ServerView, shown
from .health import Health
from .metrics import bucket
from .servers import Server, ServerSpec
from .traffic import Request, key_name

KEY_SAMPLE = tuple(key_name(i) for i in range(1000))  # the keys whose owners membership events compare
EWMA_WEIGHT = 0.2  # of a new latency in the engine's own per-server average, shown to the balancer
EWMA_KEEP = 1 - EWMA_WEIGHT  # of the average so far
CHART_POINTS = 31  # per-second load samples kept (half a minute)


@dataclass
class LastPick:
    """The latest routing decision, for the decision-flow diagram."""

    request: int
    key: str
    server: str | None
    trail: tuple[str, ...]
    detail: dict[str, Any]
    outcome: str  # "start", "queue", "drop" or "no_server"


class Lane:
    def __init__(
        self,
        sim: Simulation,
        index: int,
        name: str,
        balancer: Balancer,
        specs: list[ServerSpec],
        health: Health,
        window: float,
    ):
        self.sim = sim
        self.index = index
        self.name = name
        self.balancer = balancer
        self.health = health
        self.window = window
        self.servers: dict[str, Server] = {}  # every server this lane has had, removed ones still draining
        self.order: list[str] = []  # the present servers, in the order they joined
        self.eligible: list[str] = []
        self.told: dict[str, int] = {}  # the eligible servers and weights the balancer was last given
        self.ewma: dict[str, float] = {}
        self.owners: dict[str, str] = {}  # hashing: owner of each sample key, as of the last membership change
        self._last: tuple[Request, Pick, str | None, str] | None = None  # the parts of `last`
        self.moved: dict[str, Any] | None = None  # hashing: the latest lb.membership's fields
        self.epoch_at = 0.0  # when the current whole window began, for the diagram's shares
        self.epoch_counts: dict[str, int] = {}  # each server's routed count then
        self.epoch_shares: dict[str, float] = {}  # each server's share of the requests of the last whole window
        # The window's routes, completions and drops, trimmed once a second by `sample_load` and again by
        # `windowed` before any figure is read (lazy trimming, not at every append): in between they may hold up
        # to a second more than the window.
        self.routes: deque[tuple[float, str]] = deque()  # (t, server)
        self.completions: deque[tuple[float, str, float, bool]] = deque()  # (t, server, latency, ok)
        self.drops: deque[tuple[float, str | None]] = deque()  # (t, server or None)
        self.offered = 0  # requests this lane was handed (routed, or dropped for want of a server)
        self.completed = 0
        self.failed = 0
        self.dropped: Counter = Counter()  # reason -> count
        self.latencies: Counter = Counter()
        self.loads: deque[tuple[float, dict[str, int]]] = deque(maxlen=CHART_POINTS)
        for spec in specs:
            self._join(spec)
        self.refresh("initial", None)

    @property
    def hashing(self) -> bool:
        return self.balancer.hashing

    @property
    def last(self) -> LastPick | None:
        """The latest routing decision. Kept as its parts and assembled only when a diagram asks (lazy last pick):
        a lane routes thousands of requests between two frames."""
        if self._last is None:
            return None
        request, pick, server, outcome = self._last
        return LastPick(request.id, request.key, server, pick.trail, shown(pick.detail), outcome)

    # -- membership -------------------------------------------------------------------------------------------
    def _join(self, spec: ServerSpec) -> None:
        self.servers[spec.id] = Server(spec)
        self.order.append(spec.id)
        self.health.add(spec.id)

    def add(self, spec: ServerSpec) -> None:
        self._join(spec)
        self.refresh("add", spec.id)

    def remove(self, server: str) -> None:
        self.order.remove(server)
        self.refresh("remove", server)

    def refresh(self, change: str, server: str | None) -> None:
        """Recompute the eligible servers; tell the balancer and the stream if they (or their weights) changed."""
        was_panic = self.health.panic
        before = self.told
        self.eligible = self.health.eligible(self.order)
        if self.health.panic != was_panic:
            healthy = sum(1 for s in self.order if self.health.hosts[s].usable)
            self.sim.emit(
                "lb.panic", {"lane": self.name, "on": self.health.panic, "healthy": healthy, "servers": len(self.order)}
            )
            change = "panic" if change in ("health", "eject", "uneject") else change
        after = {s: self.servers[s].spec.weight for s in self.eligible}
        if before == after and change not in ("initial", "add", "remove", "weight"):
            return
        self.told = after
        self.balancer.set_servers(self.views())
        moved = share = None
        if self.hashing:
            owners = self.balancer.key_owners(KEY_SAMPLE)
            if change != "initial":
                moved = sum(1 for key in KEY_SAMPLE if owners.get(key) != self.owners.get(key))
                share = round(moved / len(KEY_SAMPLE), 6)
            self.owners = owners
        if change == "initial":
            return
        event = self.sim.emit(
            "lb.membership",
            {
                "lane": self.name,
                "change": change,
                "server": server,
                "eligible": list(self.eligible),
                "moved_keys": moved,
                "moved_share": share,
                "ideal_share": round(ideal_share(before, after), 6),
            },
        )
        if self.hashing:
            self.moved = event.fields

    def set_weight(self, server: str) -> None:
        """A server's weight changed: a membership change even while the server is ejected or unhealthy (its
        weight is part of the configuration the balancer restarts from, as an NGINX reload restarts it)."""
        self.refresh("weight", server)

    def views(self) -> list[ServerView]:
        eligible = set(self.eligible)
        return [
            ServerView(s, self.servers[s].spec.weight, self.servers[s].active, self.ewma.get(s, 0.0), s in eligible)
            for s in self.order
        ]

    # -- requests ---------------------------------------------------------------------------------------------
    def route(self, request: Request) -> None:
        now = self.sim.now
        pick = self.balancer.pick(request.key, now)
        self.offered += 1
        if pick.server is None:
            self._last = (request, pick, None, "no_server")
            self._drop(request, None, "no_server")
            return
        name = pick.server
        server = self.servers[name]
        outcome = server.admit(request)
        self._last = (request, pick, name, outcome)
        self.sim.emit("lb.route", {"lane": self.name, "request": request.id, "server": name})
        self.routes.append((now, name))
        if outcome == "drop":
            self._drop(request, name, "queue_full")
            return
        self.balancer.on_start(name)
        if outcome == "start":
            self._start(server, request)
        else:
            self.sim.emit(
                "lb.queue", {"lane": self.name, "request": request.id, "server": name, "depth": len(server.queue)}
            )

    def _drop(self, request: Request, server: str | None, reason: str) -> None:
        self.dropped[reason] += 1
        self.drops.append((self.sim.now, server))
        self.sim.emit("lb.drop", {"lane": self.name, "request": request.id, "server": server, "reason": reason})

    def _start(self, server: Server, request: Request) -> None:
        failed, seconds = server.spec.serve(request)
        self.sim.schedule(seconds, self._finish, server.spec.id, request, failed)

    def _finish(self, server_id: str, request: Request, failed: bool) -> None:
        now = self.sim.now
        server = self.servers[server_id]
        latency = round(now - request.arrived, 9)
        ok = not failed
        server.served += 1
        server.failed += failed
        bucket_index = bucket(latency)
        server.latencies[bucket_index] += 1
        self.completed += 1
        self.failed += failed
        self.latencies[bucket_index] += 1
        self.completions.append((now, server_id, latency, ok))
        self.ewma[server_id] = self.ewma.get(server_id, latency) * EWMA_KEEP + latency * EWMA_WEIGHT
        self.sim.emit(
            "lb.complete", {"lane": self.name, "request": request.id, "server": server_id, "latency": latency, "ok": ok}
        )
        self.balancer.on_finish(server_id, latency, now)
        following = server.release()
        if following is not None:
            self._start(server, following)
        length = self.health.outcome(server_id, ok, self.order, now)
        if length is not None:
            self._eject(server_id, length)

    # -- health -----------------------------------------------------------------------------------------------
    def _eject(self, server: str, length: float) -> None:
        """Outlier detection ejected ``server`` for ``length`` seconds."""
        host = self.health.hosts[server]
        self.sim.emit(
            "lb.eject",
            {
                "lane": self.name,
                "server": server,
                "ejections": host.ejections,
                "seconds": length,
                "until": round(host.ejected_until, 6),
            },
        )
        self.sim.schedule(length, self._uneject, server, host.ejections)
        self.refresh("eject", server)

    def _uneject(self, server: str, ejection: int) -> None:
        if self.health.hosts[server].ejections != ejection:
            return
        self.health.uneject(server)
        self.sim.emit("lb.uneject", {"lane": self.name, "server": server})
        if server in self.order:
            self.refresh("uneject", server)

    def probe(self, server: str, ok: bool) -> None:
        state = self.health.probe(server, ok)
        if state is not None:
            self.sim.emit("lb.health", {"lane": self.name, "server": server, "state": state, "reason": "active_check"})
            self.refresh("health", server)

    # -- windows ----------------------------------------------------------------------------------------------
    def sample_load(self) -> None:
        """Every second: each server's load for the chart, the window's records trimmed; every whole window, the
        split of its requests."""
        now = self.sim.now
        self.windowed()
        self.loads.append((now, {s: self.servers[s].active for s in self.order}))
        if now - self.epoch_at < self.window - 1e-9 and self.epoch_counts:
            return
        counts = {s: server.routed - self.epoch_counts.get(s, 0) for s, server in self.servers.items()}
        total = sum(counts.values())
        self.epoch_shares = {s: count / total for s, count in counts.items()} if total else {}
        self.epoch_at, self.epoch_counts = now, {s: server.routed for s, server in self.servers.items()}

    def _trim(self, items: deque, now: float) -> deque:
        """Drop what left the window (an item at exactly now - window is out), and hand the deque back."""
        edge = now - self.window
        while items and items[0][0] <= edge:
            items.popleft()
        return items

    def windowed(self) -> tuple[deque, deque, deque]:
        now = self.sim.now
        return self._trim(self.routes, now), self._trim(self.completions, now), self._trim(self.drops, now)


def ideal_share(before: dict[str, int], after: dict[str, int]) -> float:
    """The ideal share of keys to move: half the total variation between the fair (weighted) shares before and
    after, the least a scheme that holds every server at its fair share must move. A scheme with unequal shares
    (a ring with few virtual nodes) can move fewer or more."""
    total_before, total_after = sum(before.values()), sum(after.values())
    servers = list(dict.fromkeys([*before, *after]))
    moved = 0.0
    for s in servers:
        old = before.get(s, 0) / total_before if total_before else 0.0
        new = after.get(s, 0) / total_after if total_after else 0.0
        moved += abs(new - old)
    return moved / 2.0


def lane_rng(base: int, name: str) -> random.Random:
    """A lane's generator: from the run and the lane's name only (a str seed hashes with SHA-512, not hash())."""
    return random.Random(f"{base}:{name}")
