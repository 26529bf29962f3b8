"""Servers: what the commands change (shared by every lane) and what the traffic does to them (one per lane).

A `ServerSpec` is a server as the operator sees it: speed, weight, slow-down, failure probability, membership.
Every perturbation changes the one spec, so it reaches every lane at once. A `Server` is that spec inside one
lane: its busy slots, its bounded FIFO queue and its counters. A request's service time is its cost times the
slow-down, divided by the speed; a failing server answers the requests it fails (those whose ``luck`` is below
its failure probability) with an error after a tenth of that work, like a 5xx that comes back fast.

A removed server is drained: it gets no new requests but finishes the ones it has.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from .traffic import Request

FAIL_WORK = 0.1  # share of its work a failing request takes before its error comes back


@dataclass
class ServerSpec:
    id: str
    speed: float
    weight: int
    concurrency: int
    queue_limit: int
    slow: float = 1.0  # service-time multiplier
    fail_probability: float = 0.0
    present: bool = True  # False once removed

    def describe(self) -> dict[str, object]:
        return {
            "server": self.id,
            "speed": self.speed,
            "weight": self.weight,
            "slow": self.slow,
            "fail_probability": self.fail_probability,
            "present": self.present,
        }

    def serve(self, request: Request) -> tuple[bool, float]:
        """Whether this server fails the request, and the seconds it works on it (one call per request started)."""
        failed = request.luck < self.fail_probability
        work = request.cost * (FAIL_WORK if failed else 1.0)
        return failed, work * self.slow / self.speed


@dataclass
class Server:
    """One server's state in one lane."""

    spec: ServerSpec
    busy: int = 0
    queue: deque[Request] = field(default_factory=deque)
    routed: int = 0
    served: int = 0  # completed, successes and errors alike
    failed: int = 0  # completed with an error
    dropped: int = 0
    latencies: Counter = field(default_factory=Counter)  # histogram bucket -> count, over the whole run

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def active(self) -> int:
        """Requests in flight plus queued: what the balancer knows it has sent and not heard back about."""
        return self.busy + len(self.queue)

    def admit(self, request: Request) -> str:
        """Take a routed request: "start" (a slot is free), "queue" or "drop" (queue full)."""
        self.routed += 1
        if self.busy < self.spec.concurrency:
            self.busy += 1
            return "start"
        if len(self.queue) < self.spec.queue_limit:
            self.queue.append(request)
            return "queue"
        self.dropped += 1
        return "drop"

    def release(self) -> Request | None:
        """A slot frees up: the next queued request takes it (returned), or the slot stays free."""
        if self.queue:
            return self.queue.popleft()
        self.busy -= 1
        return None
