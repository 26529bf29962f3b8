"""Consumers: competing workers, subscribers and request-reply workers, pushed to or polling.

A consumer processes one message at a time from a local buffer, in arrival order. Manual ack: it acks after
processing (at-least-once), or nacks a failure with or without requeue. Auto-ack: the broker settled the message
when it sent it, so a crash loses everything on the wire to the consumer and in its buffer (at-most-once). With
``dedupe`` on, consumers share a store of the keys (message-id properties) processed from their queue, check it
before starting and again when committing the work, and ack a duplicate without doing it twice: exactly-once
*processing* over at-least-once *delivery*.

Push mode (RabbitMQ): a consumer connects (and, for a transient subscription, declares its exclusive queue), gets
deliveries up to its prefetch, and reconnects after a lost connection. Poll mode (SQS): it long-polls for up to
``receive_batch`` messages, processes them, deletes each one done, and polls again once its batch is finished.

Speed tricks (per message; the events stay exactly what the plain code would give):

- *Duration at hand*: the median processing time is made when the slow factor changes, and the failure policy
  read once, not per message (`_duration`, `_settle`).
- *Lognormal by hand*: ``exp(rng.normalvariate(0, sigma))`` is what ``rng.lognormvariate(0, sigma)`` returns, with
  one call fewer.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

from patterns.core.sim import Timer

from .protocol import (
    BROKER,
    Cancel,
    Close,
    Connect,
    ConnectOk,
    Deliver,
    FrameReceiver,
    Publish,
    Qos,
    Receive,
    Received,
    Reset,
    build_settle,
)
from .queues import Entry, Message

if TYPE_CHECKING:
    from .engine import MessagingEngine

RECONNECT_DELAY = 1.0  # seconds a client library waits before reconnecting
POLL_MARGIN = 1.0  # an SQS receive with no answer after wait + this is given up and sent again
EMPTY_POLL_PAUSE = 0.1  # short polling (wait 0) that found nothing waits this long before asking again


class AutoAckHolder(FrameReceiver):
    """Copies settled by the broker when it sent them: on the wire to this node, or received and unfinished.

    A copy on the wire is lost when the connection it was sent on closes before it arrives (whatever arrives
    later for a closed connection is discarded), so each remembers its connection.
    """

    engine: MessagingEngine
    name: str

    def __init__(self) -> None:
        self.wire: dict[int, Entry] = {}
        self.held: dict[int, Entry] = {}
        self._sent_on: dict[int, int] = {}  # tag -> session it was sent on

    def sent_auto(self, tag: int, entry: Entry, session: int) -> None:
        self.wire[tag] = entry
        self._sent_on[tag] = session

    def arrived(self, tag: int) -> Entry | None:
        """Take a copy off the wire: it arrived (or is being written off)."""
        self._sent_on.pop(tag, None)
        return self.wire.pop(tag, None)

    def session_closed(self, session: int) -> None:
        """The broker closed this connection: what it still had on the wire to us will never be taken."""
        for tag in [tag for tag, sent_on in self._sent_on.items() if sent_on == session]:
            self.engine.broker.drop(self.arrived(tag), "lost_in_transit", self.name)

    def lose_wire(self, reason: str) -> None:
        for tag in list(self.wire):
            self.engine.broker.drop(self.arrived(tag), reason, self.name)

    @property
    def auto_in_flight(self) -> int:
        return len(self.wire) + len(self.held)


class Consumer(AutoAckHolder):
    def __init__(
        self,
        engine: MessagingEngine,
        name: str,
        queue: str,
        *,
        exchange: str = "",
        bindings: tuple[str, ...] = (),
        replies: bool = False,
    ):
        super().__init__()
        params = engine.params
        self.engine = engine
        self.name = name
        self.queue = queue
        self.exchange = exchange  # transient subscription: declared and bound on every connect
        self.bindings = bindings
        self.replies = replies  # request-reply worker: publishes a reply for each request
        self.polled = engine.mode == "sqs"
        self.ack_mode = params["ack_mode"]
        self.auto = self.ack_mode == "auto" and not self.polled
        self.prefetch = params["prefetch"]
        self.requeue_failures = params["on_failure"] == "requeue"
        self._process_s = params["process_ms"] / 1000.0
        self._spread = params["process_spread"]
        self.slow_factor = 1.0
        self._median = self._process_s * self.slow_factor
        self.state = "connecting"
        self.crashed = False
        self.cut = False
        self.heartbeat_timer: Timer | None = None  # set by a cut, called off when the link is restored
        self.session = 0
        self.requested_prefetch = self.prefetch
        self.poll = 0
        self.polling = False
        self.processing: Timer | None = None  # called off by a crash
        self.buffer: deque[Deliver] = deque()
        self.working: Deliver | None = None
        self.busy_since = 0.0
        self.busy = 0.0
        self.processed = 0
        self.failed = 0
        self.deduplicated = 0
        engine.links.add(name, self)

    # -- what the diagrams read -----------------------------------------------------------------------------------
    @property
    def current(self) -> int | None:
        return self.working.entry.id if self.working is not None else None

    @property
    def holding(self) -> int:
        return len(self.buffer) + (self.working is not None)

    @property
    def unacked(self) -> int:
        if self.polled:
            queue = self.engine.broker.queues[self.queue]
            return sum(1 for holder, _ in queue.pending if holder == self.name)
        session = self.engine.broker.sessions.get(self.name)
        return len(session.pending) if session is not None else 0

    def busy_total(self, now: float) -> float:
        return self.busy + (now - self.busy_since if self.working is not None else 0.0)

    # -- connecting -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.polled:
            self.state = "up"
            self.engine.sim.emit("consumer.connected", {"consumer": self.name, "queue": self.queue, "session": 0})
            self._poll()
        else:
            self._connect()

    def _connect(self) -> None:
        self.session += 1
        self.state = "connecting"
        self.requested_prefetch = self.prefetch
        frame = Connect(self.name, self.session, self.queue, self.prefetch, self.auto, self.exchange, self.bindings)
        self.engine.links.send(self.name, BROKER, frame)
        self.engine.sim.schedule(self.engine.heartbeat, self._connect_retry, self.session)

    def _connect_retry(self, session: int) -> None:
        if session == self.session and self.state == "connecting":
            self._connect()

    def on_connect_ok(self, frame: ConnectOk) -> None:
        if frame.session == self.session and self.state == "connecting" and not self.crashed:
            self.state = "up"
            self.engine.sim.emit(
                "consumer.connected", {"consumer": self.name, "queue": self.queue, "session": self.session}
            )
            if self.prefetch != self.requested_prefetch:  # changed while connecting
                self.engine.links.send(self.name, BROKER, Qos(self.name, self.session, self.prefetch), reliable=True)

    def connection_lost(self) -> None:
        """The heartbeat timed out on this side: the channel is closed, unacked buffered messages are gone."""
        if self.crashed or self.state in ("removed", "disconnected"):
            return
        self.lose_wire("lost_in_transit")
        if not self.auto:
            self.buffer.clear()
        if self.state == "draining":
            self._removed()
            return
        self.state = "disconnected"
        self.session += 1  # whatever still arrives for the old connection is ignored
        self.engine.sim.schedule(RECONNECT_DELAY, self._reconnect, self.session)

    def _reconnect(self, session: int) -> None:
        if session == self.session and self.state == "disconnected":
            self._connect()

    # -- receiving ------------------------------------------------------------------------------------------------
    def on_deliver(self, frame: Deliver) -> None:
        if self.crashed or frame.session != self.session or self.state not in ("up", "draining"):
            if frame.tag in self.wire:  # settled by the broker, and arrived at a closed channel: gone
                self.engine.broker.drop(self.arrived(frame.tag), "lost_in_transit", self.name)
            return
        if self.auto:
            self.held[frame.tag] = self.arrived(frame.tag)
        self.buffer.append(frame)
        self._next()

    def on_received(self, frame: Received) -> None:
        if self.crashed or frame.poll != self.poll or not self.polling:
            return
        self.polling = False
        self.buffer.extend(frame.deliveries)
        if frame.deliveries:
            self._next()
        elif self.state == "up":
            if self.engine.params["wait_time_s"] > 0:
                self._poll()
            else:
                self.engine.sim.schedule(EMPTY_POLL_PAUSE, self._repoll, self.poll)

    def _poll(self) -> None:
        self.poll += 1
        self.polling = True
        params = self.engine.params
        wait = params["wait_time_s"]
        self.engine.links.send(
            self.name, BROKER, Receive(self.name, self.queue, self.poll, params["receive_batch"], wait)
        )
        self.engine.sim.schedule(wait + POLL_MARGIN, self._poll_deadline, self.poll)

    def _poll_deadline(self, poll: int) -> None:
        if poll == self.poll and self.polling and self.state == "up" and not self.crashed:
            self._poll()

    def _repoll(self, poll: int) -> None:
        if poll == self.poll and not self.polling and self.state == "up" and self.working is None and not self.buffer:
            self._poll()

    # -- processing -----------------------------------------------------------------------------------------------
    def _next(self) -> None:
        engine = self.engine
        while self.working is None and not self.crashed:
            if not self.buffer:
                self._idle()
                return
            delivery = self.buffer.popleft()
            entry = delivery.entry
            if engine.dedupe and engine.accounts.was_processed(entry.origin, entry.message.key):
                self._deduplicated(delivery)
                continue
            self.working = delivery
            self.busy_since = engine.sim.now
            self.processing = engine.sim.schedule(self._duration(), self._finished)

    def _duration(self) -> float:
        """The median times a lognormal draw ("duration at hand", "lognormal by hand")."""
        spread = self._spread
        return self._median * math.exp(self.engine.sim.rng.normalvariate(0.0, spread)) if spread > 0 else self._median

    def _finished(self) -> None:
        engine = self.engine
        now = engine.sim.now
        delivery, self.working = self.working, None
        self.busy += now - self.busy_since
        entry = delivery.entry
        message = entry.message
        failure = engine.failure_probability
        ok = not message.poison and not (failure > 0 and engine.sim.rng.random() < failure)
        if ok and engine.dedupe and engine.accounts.was_processed(entry.origin, message.key):
            self._deduplicated(delivery)  # another consumer committed it while this one worked
        else:
            latency = now - message.published_at
            duplicate = False
            if ok:
                self.processed += 1
                duplicate = engine.accounts.record_processed(entry.origin, message.key)
                engine.rec.series.latency(now, latency)
            else:
                self.failed += 1
            engine.sim.emit(
                "msg.processed",
                {
                    "id": entry.id,
                    "queue": entry.origin,
                    "key": message.key,
                    "consumer": self.name,
                    "ok": ok,
                    "duplicate": duplicate,
                    "latency": round(latency, 6),
                },
            )
            if ok and self.replies:
                self._reply(message)
            self._settle(delivery, ack=ok)
        self._next()

    def _deduplicated(self, delivery: Deliver) -> None:
        self.deduplicated += 1
        entry = delivery.entry
        self.engine.sim.emit(
            "msg.deduplicated", {"id": entry.id, "queue": entry.origin, "key": entry.message.key, "consumer": self.name}
        )
        if self.replies:
            self._reply(entry.message)  # a request-reply worker answers a duplicate from its stored result
        self._settle(delivery, ack=True)

    def _reply(self, request: Message) -> None:
        if request.reply_to is None:
            return
        if not self.polled and self.state not in ("up", "draining"):
            return  # no open channel to publish on: the request will be redelivered and answered again
        engine = self.engine
        reply_id = engine.next_id()
        reply = Message(
            reply_id,
            f"r{reply_id}",
            self.name,
            "",
            request.reply_to,
            engine.params["payload_bytes"],
            engine.sim.now,
            correlation_id=request.correlation_id,
        )
        event = engine.sim.emit(
            "msg.replied",
            {
                "id": reply_id,
                "request": request.id,
                "correlation_id": request.correlation_id,
                "worker": self.name,
                "reply_to": request.reply_to,
            },
        )
        engine.rec.step(event, self.name, request.reply_to, request.correlation_id)
        engine.links.send(self.name, BROKER, Publish(reply, False), reliable=not self.polled)

    def _settle(self, delivery: Deliver, *, ack: bool) -> None:
        engine = self.engine
        entry = delivery.entry
        requeue = self.requeue_failures
        if self.auto:
            del self.held[delivery.tag]
            if ack:
                engine.accounts.acked += 1
                event = engine.sim.emit(
                    "msg.acked", {"id": entry.id, "queue": entry.queue, "consumer": self.name, "auto": True}
                )
                engine.rec.step(event, self.name, entry.queue)
            else:
                engine.broker.drop(entry, "auto_ack_failure", self.name)
            return
        frame = build_settle((self.name, delivery.session, self.queue, delivery.tag, entry.id, ack, requeue))
        if self.polled:
            if ack or requeue:  # DeleteMessage, or ChangeMessageVisibility to 0; a rejected one just times out
                engine.links.send(self.name, BROKER, frame)
        elif delivery.session == self.session and self.state in ("up", "draining"):
            engine.links.send(self.name, BROKER, frame, reliable=True)

    def _idle(self) -> None:
        if self.state == "draining":
            if not self.polled:
                self.engine.links.send(self.name, BROKER, Close(self.name, self.session), reliable=True)
            self._removed()
        elif self.polled and self.state == "up" and not self.polling:
            self._poll()

    # -- perturbations --------------------------------------------------------------------------------------------
    def crash(self) -> bool:
        if self.crashed:
            return False
        held = self.holding + len(self.wire)
        self.lose_wire("auto_ack_crash")
        for tag in list(self.held):
            self.engine.broker.drop(self.held.pop(tag), "auto_ack_crash", self.name)
        if self.working is not None:
            self.busy += self.engine.sim.now - self.busy_since
        self.buffer.clear()
        self.working = None
        self.engine.sim.cancel(self.processing)
        self.polling = False
        links = self.engine.links
        if not self.polled and self.state in ("up", "draining", "connecting"):
            # after whatever it sent before; over a cut link it is lost, and the heartbeat will tell instead
            links.send(self.name, BROKER, Reset(self.name, self.session), reliable=True)
        links.reset(self.name)
        links.net.crash(self.name)
        self.crashed = True
        self.state = "crashed"
        self.engine.sim.emit("consumer.crash", {"consumer": self.name, "held": held})
        return True

    def restart(self) -> bool:
        if not self.crashed:
            return False
        self.crashed = False
        self.engine.links.net.restart(self.name)
        self.engine.sim.emit("consumer.restart", {"consumer": self.name})
        self.start()
        return True

    def cancel(self) -> bool:
        """basic.cancel: no new deliveries; finish what it holds, then close."""
        if self.state in ("removed", "draining"):
            return False
        if self.state != "up" or self.crashed:
            if self.state == "connecting" and not self.polled:  # its connect may still get through: close it too
                self.engine.links.send(self.name, BROKER, Close(self.name, self.session), reliable=True)
            self._removed()
            return True
        if not self.polled:
            self.engine.links.send(self.name, BROKER, Cancel(self.name, self.session), reliable=True)
        self.state = "draining"
        self.announce("cancelled")
        if self.working is None and not self.buffer:
            self._idle()
        return True

    def _removed(self) -> None:
        self.state = "removed"
        self.session += 1
        self.polling = False
        self.announce("removed")

    def set_prefetch(self, prefetch: int) -> None:
        self.prefetch = prefetch
        if self.state == "up" and not self.polled:
            self.engine.links.send(self.name, BROKER, Qos(self.name, self.session, prefetch), reliable=True)
        self.announce("prefetch")

    def set_slow(self, factor: float) -> None:
        self.slow_factor = factor
        self._median = self._process_s * factor
        self.announce("slow")

    def announce(self, change: str) -> None:
        self.engine.sim.emit(
            "consumer.config",
            {"consumer": self.name, "change": change, "prefetch": self.prefetch, "slow_factor": self.slow_factor},
        )
