"""The circuit-breaker engine: wires users, callers, breakers and services into one of two topologies.

- "single": users call one service S through a caller that holds the breaker.
- "chain": users call A, A calls B for a share of their requests (``downstream_share``), B calls C. A and B each
  hold a breaker (and a caller limit) in front of the next service; the users have neither, only their own
  timeout. With C hanging and no breakers, A's and B's slots fill with calls waiting on C, and even the requests
  that never needed C queue behind them or are turned away: a cascade. With breakers, B and A learn to fail the
  calls that need C fast and keep their capacity for the rest.

Users arrive as a Poisson process (``request_rate`` per second, gaps drawn from the run's seeded generator).
Everything the engine schedules is a bound method, so a snapshot is a plain pickle of the simulation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patterns.core.arrivals import PoissonArrivals
from patterns.core.commands import Commands
from patterns.core.sim import Simulation

from .breaker import CLOSED, DISABLED, FORCED_OPEN, METRICS_ONLY, Breaker, BreakerConfig
from .service import Hop, Ids, Service

SERVICE_TARGETS = ("downstream", "A", "B", "C")
BREAKER_TARGETS = ("all", "downstream", "B", "C")


class CircuitBreakerEngine(Commands):
    """The pattern's engine: built from the parameters, driven by the kernel, perturbed by `apply`."""

    def __init__(self, sim: Simulation, params: Mapping[str, Any]):
        self.sim = sim
        self.params = dict(params)
        self.topology = params["topology"]
        self.config = BreakerConfig.from_params(params)
        self.arrivals = PoissonArrivals(sim, float(params["request_rate"]), self._request)
        self.requests = 0
        names = ("S",) if self.topology == "single" else ("A", "B", "C")
        self.services = tuple(Service(sim, name, self.params) for name in names)
        ids = Ids()
        hops = [self._hop(sim, ids, depth, service) for depth, service in enumerate(self.services)]
        for service, hop in zip(self.services, hops[1:], strict=False):
            service.downstream = hop
        self.services[0].downstream_share = float(params["downstream_share"])
        self.hops = tuple(hops)
        self.entry = hops[0]  # what the users call
        self.primary = hops[-1]  # the breaker in front of the deepest service, shown in the diagrams

    def _hop(self, sim: Simulation, ids: Ids, depth: int, service: Service) -> Hop:
        params = self.params
        users = self.topology == "chain" and depth == 0  # the users' own calls to A: no breaker, no limit
        breaker = None
        if users:
            timeout = params["user_timeout_ms"]
        else:
            breaker = Breaker(sim, service.name, self.config, CLOSED if params["breakers"] else DISABLED)
            timeout = params["timeout_ms"] if service is self.services[-1] else params["upstream_timeout_ms"]
        return Hop(
            sim,
            service,
            breaker,
            ids,
            timeout=timeout / 1000.0,
            limit=0 if users else params["caller_limit"],
            retries=0 if users else params["retries"],
            retry_backoff=params["retry_backoff_ms"] / 1000.0,
            slow_call=self.config.slow_call,
        )

    # -- running --------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.arrivals.start()

    def _request(self) -> None:
        self.requests += 1
        self.entry.invoke(self.requests)

    # -- commands -------------------------------------------------------------------------------------------------
    def _do_set_request_rate(self, rate: float) -> None:
        self.arrivals.rate = float(rate)
        self.sim.emit("cb.traffic", {"rate": self.arrivals.rate, "burst": 0})
        self.arrivals.start()

    def _do_burst(self, count: int) -> None:
        self.sim.emit("cb.traffic", {"rate": self.arrivals.rate, "burst": count})
        for _ in range(count):
            self._request()

    def _do_outage_on(self, service: str, mode: str) -> None:
        self._set_service("outage_on", service, outage=mode)

    def _do_outage_off(self, service: str) -> None:
        self._set_service("outage_off", service, outage=None)

    def _do_slow_on(self, service: str, factor: float) -> None:
        self._set_service("slow_on", service, slow_factor=float(factor))

    def _do_slow_off(self, service: str) -> None:
        self._set_service("slow_off", service, slow_factor=1.0)

    def _do_set_failure_probability(self, service: str, probability: float) -> None:
        self._set_service("set_failure_probability", service, failure_probability=float(probability))

    def _do_set_latency(self, service: str, median_ms: float) -> None:
        self._set_service("set_latency", service, latency_median=median_ms / 1000.0)

    def _set_service(self, command: str, target: str, **settings: Any) -> None:
        """Change the named service's settings and say so, or ignore a service the topology does not have."""
        service = self.services[-1] if target == "downstream" else self._named(self.services, target)
        if service is None:
            self._ignore(command, f"there is no service {target} in the {self.topology} topology")
            return
        for name, value in settings.items():
            setattr(service, name, value)
        self.sim.emit("cb.service", service.settings())

    def _do_force_open(self, breaker: str) -> None:
        self._force("force_open", breaker, FORCED_OPEN)

    def _do_disable(self, breaker: str) -> None:
        self._force("disable", breaker, DISABLED)

    def _do_metrics_only(self, breaker: str) -> None:
        self._force("metrics_only", breaker, METRICS_ONLY)

    def _do_reset_breaker(self, breaker: str) -> None:
        self._force("reset_breaker", breaker, CLOSED)

    def _force(self, command: str, target: str, state: str) -> None:
        for breaker in self._breakers(command, target):
            breaker.command(state)

    def _breakers(self, command: str, target: str) -> list[Breaker]:
        if target == "all":
            return [hop.breaker for hop in self.hops if hop.breaker is not None]
        hop = self.primary if target == "downstream" else self._named(self.hops, target)
        if hop is None or hop.breaker is None:
            self._ignore(command, f"there is no breaker in front of {target} in the {self.topology} topology")
            return []
        return [hop.breaker]

    @staticmethod
    def _named(items: tuple[Any, ...], name: str) -> Any:
        return next((item for item in items if item.name == name), None)

    def _ignore(self, command: str, reason: str) -> None:
        self.sim.emit("command.ignored", {"command": command, "reason": reason})
