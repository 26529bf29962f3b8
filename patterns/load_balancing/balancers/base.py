"""What every balancer shares: the server view it is given, the answer it gives, its flowchart as data.

A balancer is pure and deterministic: its randomness is the run's seeded `random.Random`, it never reads a clock
(time comes in as arguments) and it holds only picklable state, so a snapshot of a simulation carries it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple


@dataclass(frozen=True)
class ServerView:
    """One server as the balancer may see it. ``active`` is in flight + queued, as far as the balancer knows;
    ``ewma_latency`` is the engine's own figure (peak EWMA keeps its own estimate, measured as Finagle does)."""

    id: str
    weight: int = 1
    active: int = 0
    ewma_latency: float = 0.0
    healthy: bool = True


class Pick(NamedTuple):
    """A balancer's answer: the server (None: nobody eligible), the flowchart nodes the decision passed through
    (each once, in the order first reached, from the start node to a terminal node) and JSON-able details, their
    numbers unrounded (see `shown`)."""

    server: str | None
    trail: tuple[str, ...]
    detail: dict[str, Any]


SHOWN_DIGITS = 6  # decimals of a float in a pick's detail as shown


def shown(detail: Mapping[str, Any]) -> dict[str, Any]:
    """A pick's detail as shown: its floats, alone or in a list, rounded to `SHOWN_DIGITS` decimals.

    Rounded when shown, not when picked (lazy rounding): a lane routes thousands of requests between two frames
    and only its last pick is ever shown, while rounding a float to a number of decimals costs about as much as
    a whole pick of the simpler algorithms.
    """
    return {
        name: [_rounded(item) for item in value] if isinstance(value, list) else _rounded(value)
        for name, value in detail.items()
    }


def _rounded(value: Any) -> Any:
    return round(value, SHOWN_DIGITS) if isinstance(value, float) else value


class FlowNode(NamedTuple):
    id: str
    label: str
    shape: str  # "terminal" (start, send, error), "step" or "decision"


class FlowEdge(NamedTuple):
    source: str
    target: str
    label: str = ""


class Flow(NamedTuple):
    """An algorithm's decision flowchart, renderer-neutral. The first node is where every pick starts."""

    nodes: tuple[FlowNode, ...]
    edges: tuple[FlowEdge, ...]


def flow(*nodes: tuple[str, str, str], edges: str) -> Flow:
    """Build a Flow from (id, label, shape) triples and edge lines ``source > target [: label]``."""
    parsed = []
    for line in edges.strip().splitlines():
        link, _, label = line.partition(":")
        source, target = (part.strip() for part in link.split(">"))
        parsed.append(FlowEdge(source, target, label.strip()))
    return Flow(tuple(FlowNode(*node) for node in nodes), tuple(parsed))


START = ("start", "Request arrives", "terminal")
SEND = ("send", "Send the request to the chosen server", "terminal")
NONE_AVAILABLE = ("error", "Return an error: no server available", "terminal")
ANY_ELIGIBLE = ("any", "Any eligible server?", "decision")


def eligible(server: ServerView) -> bool:
    """Healthy and with a positive weight: a weight of 0 drains a server without removing it."""
    return server.healthy and server.weight > 0


def option(options: Mapping[str, Any], name: str, default: Any, kind: type, low: float | None = None) -> Any:
    """A balancer option, converted and checked: bad values are a programming error of the caller."""
    value = kind(options.get(name, default))
    if low is not None and value < low:
        raise ValueError(f"{name} must be at least {low}, not {value}")
    return value


class Balancer:
    """The base of every algorithm. Subclasses set ``name``, ``label``, ``FLOW`` and implement `pick`.

    Load is tracked here for the load-aware algorithms: `set_servers` takes each server's ``active`` from its
    view (the engine's truth), and `on_start` / `on_finish` keep it current between two calls, so both ways of
    driving a balancer (views before every pick, or only on changes) see the same loads.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    hashing: ClassVar[bool] = False
    FLOW: ClassVar[Flow]

    def __init__(self, options: Mapping[str, Any], rng: random.Random):
        self.rng = rng
        self.servers: tuple[ServerView, ...] = ()
        self.eligible: list[str] = []  # healthy servers of positive weight, in the order given
        self.weights: dict[str, int] = {}
        self.active: dict[str, int] = {}
        self._membership: tuple[tuple[str, int], ...] | None = None
        self._health: tuple[bool, ...] = ()

    def set_servers(self, servers: Sequence[ServerView]) -> None:
        """Take the current servers; rebuild what depends on membership, weights or health only if it changed."""
        self.active = {s.id: s.active for s in servers}
        membership = tuple((s.id, s.weight) for s in servers)
        health = tuple(s.healthy for s in servers)
        if membership == self._membership and health == self._health:
            return
        members_changed = membership != self._membership
        self.servers = tuple(servers)
        self.eligible = [s.id for s in servers if eligible(s)]
        self.weights = dict(membership)
        self._membership, self._health = membership, health
        self.rebuild(members_changed)

    def rebuild(self, members_changed: bool) -> None:
        """Hook: membership or weights (``members_changed``) or only health changed."""

    def on_start(self, server: str) -> None:
        self.active[server] = self.active.get(server, 0) + 1

    def on_finish(self, server: str, latency: float, now: float) -> None:
        if self.active.get(server, 0) > 0:
            self.active[server] -= 1

    def flow(self) -> Flow:
        return self.FLOW

    def pick(self, key: str, now: float | None = None) -> Pick:
        """Choose a server for a request with ``key`` at virtual time ``now`` (only peak EWMA uses the time)."""
        raise NotImplementedError

    def nobody(self, *trail: str) -> Pick:
        return Pick(None, (*trail, "error"), {})
