"""The events of the pattern, and the recorder that keeps the trail and the series of the message steps.

Each step of a message copy's life is one event naming the message ``id`` and the ``queue``, so that an outside
checker can rebuild the ledger (see `patterns.messaging.ledger`) from the stream alone: msg.enqueued and
msg.requeued put a copy in its queue, msg.delivered puts it in flight, msg.acked, msg.expired and msg.dropped
end it, msg.dead_lettered moves it to its queue's dead-letter queue. Without a dead-letter queue the copy is
dropped instead (msg.dropped with the same reason; msg.expired for TTL).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from patterns.core.registry import EventType
from patterns.core.sim import Event, Simulation

from .series import Series

TRAIL_LENGTH = 40
# why a copy was dropped, and what each reason means (the `--describe` docs list them)
DROP_REASONS = {
    "unroutable": "no queue is bound for the routing key",
    "overflow": "drop-head: the oldest ready copy of a queue over its max length, with no dead-letter queue",
    "overflow_rejected": "a publish a full queue refused (reject-publish, or reject-publish-dlx with no "
    "dead-letter queue); the publisher gets a negative confirm",
    "rejected": "nacked without requeue, with no dead-letter queue",
    "auto_ack_crash": "auto-ack: held by (or on its way to) a consumer that crashed",
    "auto_ack_failure": "auto-ack: its processing failed",
    "lost_in_transit": "auto-ack: on the wire to a consumer whose connection closed",
    "queue_deleted": "in an exclusive, auto-delete queue deleted with its connection",
    "delivery_limit": "returned more times than the delivery limit, with no dead-letter queue",
}
DEAD_LETTER_REASONS = ("rejected", "expired", "maxlen", "delivery_limit", "max_receive_count")
REQUEUE_REASONS = ("nack", "connection_lost", "visibility_timeout")

_COPY = {"id": "message id (unique per publish)", "queue": "the queue of this copy"}
EVENT_TYPES = (
    EventType(
        "msg.published",
        "The broker accepted a publish.",
        {
            "id": "message id",
            "key": "message-id property (a retried request keeps its first key); dedupe uses it",
            "producer": "who published it (a producer, a client, or a worker sending a reply)",
            "exchange": "target exchange ('' is the default exchange: the key names the queue)",
            "routing_key": "routing key",
            "size": "payload bytes",
            "poison": "true for a message that fails every time it is processed",
            "correlation_id": "request-reply: the request's correlation id, else null",
            "reply_to": "request-reply requests: the client's reply queue, else null",
        },
    ),
    EventType(
        "msg.routed",
        "The exchange chose the queues the message goes to (one copy each).",
        {"id": "message id", "exchange": "exchange", "routing_key": "key", "queues": "list of queue names"},
    ),
    EventType("msg.enqueued", "A copy entered its queue.", {**_COPY, "ready": "ready messages after it"}),
    EventType(
        "msg.delivered",
        "The broker sent a copy to a consumer (SQS: returned it from a receive and hid it).",
        {
            **_COPY,
            "key": "message-id property",
            "consumer": "the consumer",
            "tag": "delivery tag (SQS: receipt handle), unique in the run",
            "redelivered": "true if this copy was delivered before",
            "deliveries": "times delivered so far, this one included (SQS: the receive count)",
        },
    ),
    EventType(
        "msg.processed",
        "A consumer finished processing a copy.",
        {
            **_COPY,
            "key": "message-id property",
            "consumer": "the consumer",
            "ok": "true if the work succeeded",
            "duplicate": "true if this key had already been processed successfully from this queue",
            "latency": "seconds from publish to now",
        },
    ),
    EventType(
        "msg.deduplicated",
        "A consumer with dedupe on saw a key already processed from this queue and did not process it again.",
        {**_COPY, "key": "message-id property", "consumer": "the consumer"},
    ),
    EventType(
        "msg.acked",
        "A copy is done: acked by its consumer (SQS: deleted), or an auto-ack copy its consumer finished.",
        {**_COPY, "consumer": "the consumer", "auto": "true for auto-ack (the broker settled it when sending)"},
    ),
    EventType(
        "msg.nacked",
        "A consumer gave a copy back (basic.nack; SQS: visibility set to 0 for requeue).",
        {**_COPY, "consumer": "the consumer", "requeue": "true: back to the queue; false: reject (dead-letter)"},
    ),
    EventType(
        "msg.ack_stale",
        "An ack (SQS: delete) arrived for a delivery the broker no longer holds for that consumer: the connection "
        "was closed or the visibility timeout ran out. The copy stays where it is.",
        {**_COPY, "consumer": "the consumer", "tag": "delivery tag or receipt handle"},
    ),
    EventType(
        "msg.requeued",
        "A copy went back to its original position in its queue, to be redelivered.",
        {**_COPY, "reason": " | ".join(REQUEUE_REASONS), "consumer": "who held it"},
    ),
    EventType(
        "msg.dead_lettered",
        "A copy left its queue through the dead-letter exchange.",
        {
            **_COPY,
            "dead_letter_queue": "the dead-letter queue where it now sits (and is counted as dead-lettered)",
            "reason": " | ".join(DEAD_LETTER_REASONS),
            "deliveries": "times it was delivered",
        },
    ),
    EventType("msg.expired", "A copy outlived the queue's message TTL and was discarded.", dict(_COPY)),
    EventType(
        "msg.dropped",
        "A copy (or, unroutable, a message) was discarded by a stated policy.",
        {
            "id": "message id",
            "queue": "the queue of the copy; null for an unroutable message",
            "reason": "; ".join(f"{reason}: {meaning}" for reason, meaning in DROP_REASONS.items()),
            "consumer": "auto-ack losses: the consumer that held it, else null",
        },
    ),
    EventType(
        "msg.confirmed",
        "A publisher confirm reached the producer.",
        {"id": "message id", "producer": "the producer", "ack": "true: basic.ack; false: basic.nack (rejected)"},
    ),
    EventType(
        "msg.replied",
        "A worker published the reply to a request.",
        {
            "id": "the reply's message id",
            "request": "the request's message id",
            "correlation_id": "the request's correlation id",
            "worker": "the worker",
            "reply_to": "the client's reply queue",
        },
    ),
    EventType(
        "msg.reply_received",
        "A client matched a reply to its pending request by correlation id.",
        {"correlation_id": "correlation id", "client": "the client", "id": "reply message id", "latency": "s"},
    ),
    EventType(
        "msg.reply_late",
        "A reply whose request is no longer pending: discarded and counted.",
        {
            "correlation_id": "correlation id",
            "client": "the client",
            "id": "reply message id",
            "reason": "timed_out (the client gave up) | answered (an earlier reply was taken)",
        },
    ),
    EventType(
        "msg.request_timeout",
        "A client's request got no reply in time.",
        {
            "correlation_id": "correlation id",
            "client": "the client",
            "attempt": "the attempt that timed out (1 is the first send)",
            "retry": "true if the client sends it again, false if it gives up",
        },
    ),
    EventType(
        "consumer.connected",
        "A consumer's connection is open: the broker delivers to it (SQS: it polls).",
        {"consumer": "the consumer", "queue": "its queue", "session": "connection number"},
    ),
    EventType(
        "consumer.disconnected",
        "The broker closed a consumer's connection; its unacked copies are requeued.",
        {
            "consumer": "the consumer",
            "reason": "crash (TCP reset) | heartbeat (timeout) | cancelled | replaced",
            "requeued": "copies requeued (not those over the delivery limit, dead-lettered instead; a drop-head "
            "queue over its max length then drops the oldest)",
        },
    ),
    EventType("consumer.crash", "A consumer's process died.", {"consumer": "the consumer", "held": "messages lost"}),
    EventType("consumer.restart", "A crashed consumer is up again and reconnects.", {"consumer": "the consumer"}),
    EventType("consumer.cut", "The link between the broker and a consumer was cut.", {"consumer": "the consumer"}),
    EventType(
        "consumer.restored",
        "The cut link works again; within the heartbeat timeout TCP resends what was lost.",
        {"consumer": "the consumer", "resent": "frames resent"},
    ),
    EventType(
        "consumer.config",
        "A consumer's prefetch or speed changed, or it was added, cancelled or removed.",
        {
            "consumer": "the consumer",
            "change": "added | cancelled | removed | prefetch | slow",
            "prefetch": "prefetch count (0: no limit)",
            "slow_factor": "processing time multiplier",
        },
    ),
    EventType(
        "queue.declared",
        "A queue was declared and bound (transient subscriptions: each time the subscriber connects).",
        {"queue": "the queue", "exclusive": "exclusive, auto-delete", "bindings": "binding keys"},
    ),
    EventType(
        "queue.deleted",
        "An exclusive, auto-delete queue was deleted when its connection closed; its copies are dropped.",
        {"queue": "the queue", "dropped": "copies discarded"},
    ),
    EventType(
        "msg.traffic",
        "The publish rate changed, or a burst or poison messages were published.",
        {"rate": "publishes per second", "burst": "messages published at once", "poison": "true for poison"},
    ),
    EventType("msg.config", "A run-wide setting changed.", {"setting": "its name", "value": "the new value"}),
)

_TRAILED = (
    "msg.published",
    "msg.routed",
    "msg.delivered",
    "msg.acked",
    "msg.nacked",
    "msg.requeued",
    "msg.dead_lettered",
    "msg.expired",
    "msg.dropped",
    "msg.replied",
    "msg.reply_late",
    "msg.confirmed",
)
_SERIES = {
    "msg.published": "published",
    "msg.delivered": "delivered",
    "msg.acked": "acked",
    "msg.dead_lettered": "dead_lettered",
    "msg.expired": "expired",
    "msg.dropped": "dropped",
}
# The message steps (the types the recorder keeps: each goes on the trail), and the series each counts in, if any.
_STEPS = {kind: _SERIES.get(kind) for kind in _TRAILED}


class Recorder:
    """Keeps the trail of recent message steps and the per-second series in step with the events.

    The engine emits every event straight through the kernel (`sim.emit`) and hands a message step's event here,
    with where it goes on the sequence diagram ("no relay": a recorder that emitted on the engine's behalf packed
    and unpacked every event's fields once more, a tenth of the engine's time). The trail keeps the events
    themselves and makes its dicts when read ("trail made on reading"): a frame reads 40 steps, a busy second
    records thousands; a routed step keeps its list of queues, joined only then. A counted step is added straight
    to the series' current row ("current row at hand", see `series`).
    """

    def __init__(self, sim: Simulation):
        self.sim = sim
        self._steps: deque[tuple[float, Event, str | None, str | list[str] | None, str]] = deque(maxlen=TRAIL_LENGTH)
        self.series = Series()

    def step(self, event: Event, src: str | None = None, dst: str | list[str] | None = None, label: str = "") -> None:
        """Note a message step just emitted: ``src``/``dst``/``label`` place it on the sequence diagram's trail; a
        list of queues as ``dst`` (a routed step's) is joined when the trail is read ("nowhere" if empty)."""
        now = self.sim.now
        self._steps.append((now, event, src, dst, label))
        counted = _STEPS[event.type]
        if counted is not None:
            series = self.series
            row = series.current if now < series.current_ends else series.new_row(now)  # `Series.row`, inline
            row[counted] += 1
            if counted == "delivered" and event.fields["redelivered"]:
                row["redelivered"] += 1

    @property
    def trail(self) -> list[dict[str, Any]]:
        """The recent message steps, oldest first: ``{"t", "step", "id", "src", "dst", "label"}``."""
        return [
            {
                "t": t,
                "step": event.type[4:],
                "id": event.fields.get("id"),
                "src": src,
                "dst": (",".join(dst) or "nowhere") if isinstance(dst, list) else dst,
                "label": label,
            }
            for t, event, src, dst, label in self._steps
        ]
