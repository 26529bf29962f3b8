"""Producers and request-reply clients.

Both publish as a Poisson process drawn from the run's seeded generator. A producer may ask for publisher
confirms and counts the acks and nacks it gets back. A client sends requests with a correlation id and its
private reply queue, waits ``request_timeout_s`` for the reply, resends the same request (same correlation id,
same message-id property, so deduplicating workers can recognise it) up to ``retries`` times, and discards, and
counts, a reply that comes when nobody waits for it any more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from patterns.core.arrivals import PoissonArrivals

from .consumers import AutoAckHolder
from .protocol import BROKER, Confirm, Connect, ConnectOk, Deliver, FrameReceiver, Publish, build_publish
from .queues import Message, build_message

if TYPE_CHECKING:
    from .engine import MessagingEngine


def poison_roll(engine: MessagingEngine) -> bool:
    share = engine.params["poison_probability"]
    return share > 0 and engine.sim.rng.random() < share


class Producer(FrameReceiver):
    def __init__(self, engine: MessagingEngine, name: str, exchange: str, keys: tuple[str, ...], rate: float):
        self.engine = engine
        self.arrivals = PoissonArrivals(engine.sim, rate, self.send)
        self.name = name
        self.exchange = exchange
        self.keys = keys
        self.confirms = engine.params["confirms"]
        self.size = engine.params["payload_bytes"]
        self.published = 0
        self.confirmed = 0
        self.nacked = 0
        engine.links.add(name, self)

    @property
    def unconfirmed(self) -> int:
        return self.published - self.confirmed - self.nacked if self.confirms else 0

    @property
    def rate(self) -> float:
        return self.arrivals.rate

    def send(self) -> None:
        self.publish(poison_roll(self.engine))

    def publish(self, poison: bool) -> None:
        engine = self.engine
        key = self.keys[0] if len(self.keys) == 1 else engine.sim.rng.choice(self.keys)
        message_id = engine.next_id()
        message = build_message(
            (
                message_id,
                f"m{message_id}",
                self.name,
                self.exchange,
                key,
                self.size,
                engine.sim.now,
                poison,
                None,  # reply_to
                None,  # correlation_id
            )
        )
        self.published += 1
        engine.links.send(self.name, BROKER, build_publish((message, self.confirms)))

    def on_confirm(self, frame: Confirm) -> None:
        message_id, ack = frame
        if ack:
            self.confirmed += 1
        else:
            self.nacked += 1
        event = self.engine.sim.emit("msg.confirmed", {"id": message_id, "producer": self.name, "ack": ack})
        self.engine.rec.step(event, BROKER, self.name, "ack" if ack else "nack")


class Client(AutoAckHolder):
    """Sends requests and consumes its exclusive reply queue (auto-ack, no prefetch limit)."""

    def __init__(self, engine: MessagingEngine, name: str, rate: float):
        super().__init__()
        self.engine = engine
        self.arrivals = PoissonArrivals(engine.sim, rate, self.send)
        self.name = name
        self.reply_queue = f"reply.{name}"
        self.timeout = engine.params["request_timeout_s"]
        self.max_retries = engine.params["retries"]
        self.pending: dict[str, list] = {}  # correlation id -> [attempt, first sent at, poison]
        self.gave_up: dict[str, bool] = {}
        self.requests = 0
        self.sent = 0
        self.replies = 0
        self.timeouts = 0
        self.retries = 0
        self.late_replies = 0
        self.failed = 0
        engine.links.add(name, self)

    @property
    def outstanding(self) -> int:
        return len(self.pending)

    def connect(self) -> None:
        self.engine.links.send(self.name, BROKER, Connect(self.name, 1, self.reply_queue, 0, True, "", ()))

    def on_connect_ok(self, frame: ConnectOk) -> None:
        self.engine.sim.emit(
            "consumer.connected", {"consumer": self.name, "queue": self.reply_queue, "session": frame.session}
        )

    def send(self) -> None:
        self.request(poison_roll(self.engine))

    def request(self, poison: bool) -> None:
        self.requests += 1
        correlation_id = f"{self.name}-{self.requests}"
        self.pending[correlation_id] = [0, self.engine.sim.now, poison]
        self._attempt(correlation_id)

    def _attempt(self, correlation_id: str) -> None:
        engine = self.engine
        pending = self.pending[correlation_id]
        pending[0] += 1
        message_id = engine.next_id()
        message = Message(
            message_id,
            correlation_id,
            self.name,
            "",
            "rpc",
            engine.params["payload_bytes"],
            engine.sim.now,
            pending[2],
            reply_to=self.reply_queue,
            correlation_id=correlation_id,
        )
        self.sent += 1
        engine.links.send(self.name, BROKER, Publish(message, False))
        engine.sim.schedule(self.timeout, self._timeout, correlation_id, pending[0])

    def _timeout(self, correlation_id: str, attempt: int) -> None:
        pending = self.pending.get(correlation_id)
        if pending is None or pending[0] != attempt:
            return
        self.timeouts += 1
        retry = attempt <= self.max_retries
        self.engine.sim.emit(
            "msg.request_timeout",
            {"correlation_id": correlation_id, "client": self.name, "attempt": attempt, "retry": retry},
        )
        if retry:
            self.retries += 1
            self._attempt(correlation_id)
        else:
            del self.pending[correlation_id]
            self.gave_up[correlation_id] = True
            self.failed += 1

    def on_deliver(self, frame: Deliver) -> None:
        engine = self.engine
        entry = self.arrived(frame.tag)
        engine.accounts.acked += 1
        event = engine.sim.emit(
            "msg.acked", {"id": entry.id, "queue": entry.queue, "consumer": self.name, "auto": True}
        )
        engine.rec.step(event, self.name, entry.queue)
        correlation_id = entry.message.correlation_id
        pending = self.pending.pop(correlation_id, None)
        if pending is not None:
            self.replies += 1
            engine.sim.emit(
                "msg.reply_received",
                {
                    "correlation_id": correlation_id,
                    "client": self.name,
                    "id": entry.id,
                    "latency": round(engine.sim.now - pending[1], 6),
                },
            )
            return
        self.late_replies += 1
        reason = "timed_out" if correlation_id in self.gave_up else "answered"
        event = engine.sim.emit(
            "msg.reply_late", {"correlation_id": correlation_id, "client": self.name, "id": entry.id, "reason": reason}
        )
        engine.rec.step(event, entry.queue, self.name, correlation_id)
