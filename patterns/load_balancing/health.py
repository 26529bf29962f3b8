"""Which servers a lane may send to: active health checks, passive outlier ejection and Envoy's panic threshold.

- Active checks: every ``interval`` the balancer probes each server. ``unhealthy_threshold`` failed probes in a
  row mark a healthy server unhealthy; ``healthy_threshold`` passing probes in a row mark it healthy again.
- Outlier detection (Envoy's consecutive 5xx): ``consecutive_failures`` errors in a row from a server eject it for
  ``base_ejection * ejections`` seconds (its ``ejections``-th time; capped at ``max_ejection``), unless
  ``max_ejection_percent`` of the servers are ejected already; as in Envoy, one server may always be ejected. A
  success resets the count. The ejection ends exactly when its time is up (Envoy notices it at its next sweep).
- Panic: when fewer than ``panic_threshold`` percent of the servers are healthy and not ejected, the balancer
  stops trusting its health data and routes to every server (Envoy's healthy_panic_threshold; 0 turns it off).

One `Health` per lane: what a lane's balancer learns depends on the traffic it sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_EJECTION_S = 300.0  # Envoy's default max_ejection_time


@dataclass(frozen=True)
class HealthConfig:
    checks: bool
    interval: float
    healthy_threshold: int
    unhealthy_threshold: int
    outliers: bool
    consecutive_failures: int
    base_ejection: float
    max_ejection_percent: float
    panic_threshold: float

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> HealthConfig:
        return cls(
            checks=params["health_checks"],
            interval=params["check_interval_s"],
            healthy_threshold=params["healthy_threshold"],
            unhealthy_threshold=params["unhealthy_threshold"],
            outliers=params["outlier_detection"],
            consecutive_failures=params["consecutive_failures"],
            base_ejection=params["base_ejection_s"],
            max_ejection_percent=params["max_ejection_percent"],
            panic_threshold=params["panic_threshold"],
        )

    @property
    def max_ejection(self) -> float:
        return max(MAX_EJECTION_S, self.base_ejection)


@dataclass
class HostHealth:
    healthy: bool = True  # as the active checks see it
    streak: int = 0  # probes in a row that disagree with `healthy`
    consecutive: int = 0  # errors in a row, for outlier detection
    ejections: int = 0
    ejected_until: float | None = None

    @property
    def ejected(self) -> bool:
        return self.ejected_until is not None

    @property
    def usable(self) -> bool:
        return self.healthy and not self.ejected


class Health:
    """The health view of one lane's balancer."""

    def __init__(self, config: HealthConfig):
        self.config = config
        self.hosts: dict[str, HostHealth] = {}
        self.panic = False

    def add(self, server: str) -> None:
        self.hosts.setdefault(server, HostHealth())

    def probe(self, server: str, ok: bool) -> str | None:
        """Record an active check; the new state ("healthy" or "unhealthy") if it changed."""
        host = self.hosts[server]
        if ok == host.healthy:
            host.streak = 0
            return None
        host.streak += 1
        needed = self.config.healthy_threshold if ok else self.config.unhealthy_threshold
        if host.streak < needed:
            return None
        host.healthy, host.streak = ok, 0
        return "healthy" if ok else "unhealthy"

    def outcome(self, server: str, ok: bool, present: Sequence[str], now: float) -> float | None:
        """Record a request's outcome; the ejection's length if this one ejects the server."""
        host = self.hosts[server]
        if ok:
            host.consecutive = 0
            return None
        host.consecutive += 1
        if not self.config.outliers or host.ejected or host.consecutive < self.config.consecutive_failures:
            return None
        if server not in present or not self._may_eject(present):
            return None
        host.ejections += 1
        length = min(self.config.base_ejection * host.ejections, self.config.max_ejection)
        host.ejected_until = now + length
        return length

    def _may_eject(self, present: Sequence[str]) -> bool:
        ejected = sum(1 for s in present if self.hosts[s].ejected)
        allowed = max(1, math.floor(len(present) * self.config.max_ejection_percent / 100.0))
        return ejected < allowed

    def uneject(self, server: str) -> None:
        host = self.hosts[server]
        host.ejected_until = None
        host.consecutive = 0

    def eligible(self, present: Sequence[str]) -> list[str]:
        """The servers to route to now: the usable ones, or all of them in panic (`panic` says which)."""
        usable = [s for s in present if self.hosts[s].usable]
        threshold = self.config.panic_threshold
        self.panic = bool(present) and threshold > 0 and len(usable) * 100.0 < threshold * len(present)
        return list(present) if self.panic else usable
