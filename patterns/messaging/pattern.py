"""The message-queue pattern as the kernel sees it: parameters, commands, events, diagrams and presets."""

from __future__ import annotations

from patterns.core.network import EVENT_TYPES as NETWORK_EVENT_TYPES
from patterns.core.registry import NodeActions, Pattern

from .diagrams import DIAGRAMS, metrics
from .engine import MessagingEngine
from .events import EVENT_TYPES
from .params import COMMANDS, PARAMS, conflicts
from .presets import PRESETS

CONSUMER_NODE = r"n([A-Za-z0-9]+)"  # diagrams.mermaid_id("consumer", name) for plain names
NODE_ACTIONS = (
    NodeActions(
        "consumer",
        "Consumer",
        CONSUMER_NODE,
        (
            "crash_consumer",
            "restart_consumer",
            "cut_consumer",
            "restore_consumer",
            "slow_consumer",
            "set_prefetch",
            "remove_consumer",
        ),
        arg="consumer",
    ),
    NodeActions("queue", "Queue", r"q.+", ("burst", "poison", "add_consumer")),
    NodeActions("producer", "Producer", r"[pc].+", ("set_publish_rate", "burst", "poison")),
)


def targets(engine: MessagingEngine) -> dict[str, tuple[str, ...]]:
    """The consumers that exist now (a removed one is gone), and those whose link to the broker can be cut or
    restored: every consumer of the view, since a link outlives its consumer."""
    return {
        "consumer": tuple(c.name for c in engine.consumers if c.state != "removed"),
        "consumer link": tuple(c.name for c in engine.consumers),
    }


PATTERN = Pattern(
    slug="messaging",
    title="Message queues",
    summary=(
        "A broker between producers and consumers: exchanges route each message to queues, queues hold it until a "
        "consumer acknowledges it. Crash a consumer holding messages, cut its link, publish a poison message or a "
        "burst, and watch what RabbitMQ (or SQS) promises: who gets each message, when it is redelivered, where "
        "duplicates come from, and a ledger that proves nothing was lost."
    ),
    engine=MessagingEngine,
    params=PARAMS,
    commands=COMMANDS,
    event_types=(
        *EVENT_TYPES,
        *(e for e in NETWORK_EVENT_TYPES if e.name in ("net.crash", "net.restart", "net.cut", "net.restore")),
    ),
    diagrams=DIAGRAMS,
    metrics=metrics,
    presets=PRESETS,
    explain_template="messaging/explain.html",
    order=40,
    conflicts=conflicts,
    targets=targets,
    node_actions=NODE_ACTIONS,
    focus=("topology",),
    routine=(
        "msg.published",
        "msg.routed",
        "msg.enqueued",
        "msg.delivered",
        "msg.confirmed",
        "msg.processed",
        "msg.acked",
    ),
)
