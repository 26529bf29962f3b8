"""The circuit-breaker pattern as the kernel sees it: parameters, commands, events, diagrams and presets."""

from __future__ import annotations

from patterns.core.registry import Diagram, NodeActions, Pattern

from . import diagrams
from .breaker import STATES
from .engine import CircuitBreakerEngine
from .events import EVENT_TYPES
from .params import COMMANDS, PARAMS, conflicts
from .presets import PRESETS

SERVICE_COMMANDS = ("outage_on", "outage_off", "slow_on", "slow_off", "set_failure_probability", "set_latency")

BREAKER_COMMANDS = ("force_open", "disable", "metrics_only", "reset_breaker")

NODE_ACTIONS = (
    # diagrams.cascade draws service X as node svcX; the single topology's one service S is "downstream"
    NodeActions("service", "Service", r"svcS", SERVICE_COMMANDS, arg="service", name="downstream"),
    NodeActions("service", "Service", r"svc([ABC])", SERVICE_COMMANDS, arg="service"),
    NodeActions("breaker", "Its breaker", r"svcS", BREAKER_COMMANDS, arg="breaker", name="downstream"),
    NodeActions("breaker", "Its breaker", r"svc([BC])", BREAKER_COMMANDS, arg="breaker"),
    NodeActions("breaker", "Breaker", "|".join(STATES), BREAKER_COMMANDS, arg="breaker", name="downstream"),
    NodeActions("traffic", "Users", r"users", ("set_request_rate", "burst")),
)


def targets(engine: CircuitBreakerEngine) -> dict[str, tuple[str, ...]]:
    """The services and the breakers in front of them, by the names the commands take."""

    def named(name: str) -> str:
        return "downstream" if name == "S" else name

    services = tuple(named(s.name) for s in engine.services)
    breakers = tuple(named(h.name) for h in engine.hops if h.breaker is not None)
    return {
        "service": tuple(dict.fromkeys((*services, "downstream"))),
        "breaker": tuple(dict.fromkeys(("all", *breakers, "downstream"))),
    }


PATTERN = Pattern(
    slug="circuit-breaker",
    title="Circuit breaker",
    summary=(
        "A circuit breaker sits between a caller and a service and watches the outcomes of calls. When too many "
        "fail or are slow it opens and rejects calls at once, so that the caller stops waiting on a service that "
        "cannot answer and the service gets room to recover; after a while it lets a few trial calls through "
        "and closes again if they succeed. Make a service fail, hang or slow down, and watch the breaker trip, "
        "probe and recover, or watch a chain of services collapse without one."
    ),
    engine=CircuitBreakerEngine,
    params=PARAMS,
    commands=COMMANDS,
    conflicts=conflicts,
    event_types=EVENT_TYPES,
    diagrams=(
        Diagram("state", "Breaker states", diagrams.state),
        Diagram("flow", "Decision flow", diagrams.flow, wide=True),
        Diagram("rates", "Rates over time", diagrams.rates),
        Diagram("cascade", "Services", diagrams.cascade),
    ),
    metrics=diagrams.metrics,
    presets=PRESETS,
    explain_template="circuit_breaker/explain.html",
    order=10,
    targets=targets,
    node_actions=NODE_ACTIONS,
    focus=("cascade", "state"),
    routine=("cb.call", "cb.outcome", "cb.serve"),
)
