"""The broker: exchanges, queues and their policies, push delivery with prefetch, and SQS-style polling.

RabbitMQ semantics, as documented for classic and quorum queues:

- A publish is routed by its exchange (the default exchange "" routes to the queue named by the key) and becomes
  one copy per queue. With publisher confirms, the producer gets basic.ack once the copies are enqueued, or
  basic.nack if a full queue with overflow reject-publish(-dlx) refused one. Unroutable messages are dropped and
  still acked, as RabbitMQ does for publishes without the mandatory flag.
- x-max-length counts ready messages only. drop-head drops (reason overflow) or dead-letters (reason maxlen) the
  oldest ready messages until the queue is within its limit, after a publish and after a requeue alike, and never
  refuses a publish; reject-publish refuses the new one (dropped, reason overflow_rejected); reject-publish-dlx
  also dead-letters it (reason maxlen; without a dead-letter queue, dropped as overflow_rejected). A queue over its
  limit after a requeue refuses publishes until consumers bring it under the limit.
- x-message-ttl: a copy expires when it reaches the head of its queue past its time (a requeued copy keeps its
  original enqueue time); it is dead-lettered (reason expired) or discarded.
- Push delivery: consumers in round-robin order, each up to its prefetch of unacked deliveries (0: no limit).
  Auto-ack deliveries are settled when sent and ignore the prefetch, as in RabbitMQ.
- A nack with requeue, or a closed connection, returns the copy to its original position with the redelivered
  flag; x-delivery-limit (quorum queues) counts those returns, and a copy returned more times than the limit is
  dead-lettered (reason delivery_limit) or dropped: a poison message is delivered limit + 1 times. A nack
  without requeue dead-letters (reason rejected) or drops it.
- The broker learns that a consumer is gone from a TCP reset right after a crash, or from the heartbeat timeout
  when the link is cut; then it requeues what the consumer held, and deletes its exclusive, auto-delete queue.

SQS semantics for polled queues: ReceiveMessage (up to ``receive_batch``, long polling up to ``wait_time_s``)
hides each returned message for the visibility timeout and counts the receive; DeleteMessage is the ack (with a
stale receipt handle it succeeds without deleting); a message not deleted in time becomes visible again. With a
redrive policy a message already received ``max_receive_count`` times goes to the dead-letter queue instead of
being received again: it is received exactly that many times. SQS has no counterpart of x-max-length, the
overflow policies or x-delivery-limit: polled queues go without them.

Speed tricks (this code runs for every message; each keeps the events exactly what the plain code would give):

- *Ring on the queue*: a push queue keeps its open sessions in round-robin order and the index of the next turn
  (`Queue.ring`, `Queue.turn`): a dispatch reads one attribute, where a dict of names per queue name, a position per
  queue name and then each session by name were three look-ups and one per session asked.
- *Credit limit at hand*: a session's ``limit`` (its prefetch; 0 once cancelled; unlimited for auto-ack or a prefetch
  of 0) is set when the prefetch or the cancel changes it, so the round-robin walk tells credit with one comparison;
  the walk is written in the `_dispatch` loop, not a call per delivery.
- *Policies only where set*: the max-length and TTL steps (`_refused`, `_arm_expiry`, `_expire_heads`) are called
  only for a queue that has a max length or a TTL; most have neither.
- *Unpack once*: a publish's message and a settle frame are unpacked in one C-speed step (each read of a named
  tuple's field by name is a descriptor call).
- *Nothing ready, nothing to do*: after most acks nothing is ready, so `on_settle` skips the hand-out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from patterns.core.sim import Simulation

from .events import Recorder
from .exchanges import Exchange
from .ledger import Ledger
from .protocol import (
    BROKER,
    Cancel,
    Close,
    Connect,
    ConnectOk,
    Deliver,
    FrameReceiver,
    Links,
    Publish,
    Qos,
    Receive,
    Received,
    Reset,
    Settle,
    build_confirm,
    build_deliver,
)
from .queues import Entry, Message, Queue

DLX = "dlx"
SQS_HAS_NO = {"max_length": 0, "delivery_limit": 0}  # RabbitMQ queue arguments a polled (SQS) queue goes without


@dataclass(eq=False)
class Session:
    """An open consumer connection (with its one channel and one consumer).

    ``limit``: the unacked deliveries it may hold, 0 once cancelled, unlimited for auto-ack or a prefetch of 0; set
    when the prefetch or the cancel changes it ("credit limit at hand"), so the round-robin walk tells whether a
    session has credit with one comparison. Compared by identity: the walk finds a session in its queue's ring.
    """

    consumer: str
    session: int
    queue: str
    prefetch: int
    auto_ack: bool
    cancelled: bool = False
    pending: dict[int, Entry] = field(default_factory=dict)  # tag -> unacked copy
    limit: float = field(init=False)

    def __post_init__(self) -> None:
        self._set_limit()

    def set_prefetch(self, prefetch: int) -> None:
        self.prefetch = prefetch
        self._set_limit()

    def cancel(self) -> None:
        self.cancelled = True
        self._set_limit()

    def _set_limit(self) -> None:
        if self.cancelled:
            self.limit = 0
        elif self.auto_ack or self.prefetch == 0:
            self.limit = math.inf
        else:
            self.limit = self.prefetch


@dataclass
class Poll:
    consumer: str
    poll: int
    max_messages: int


class Broker(FrameReceiver):
    def __init__(self, sim: Simulation, links: Links, recorder: Recorder, ledger: Ledger, params: Mapping[str, Any]):
        self.sim = sim
        self.links = links
        self.rec = recorder
        self.ledger = ledger
        self.policy = {
            "max_length": params["max_length"],
            "ttl": params["message_ttl_s"],
            "overflow": params["overflow"],
            "delivery_limit": params["delivery_limit"],
        }
        self.dead_letter = params["dead_letter"]
        self.visibility = params["visibility_timeout_s"]
        self.max_receive_count = params["max_receive_count"] if params["dead_letter"] else 0
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        self.sessions: dict[str, Session] = {}
        self.polls: dict[str, list[Poll]] = {}  # SQS queue -> waiting long polls, oldest first
        self._seq = 0
        self._tag = 0
        links.add(BROKER, self)
        if self.dead_letter:
            self.exchanges[DLX] = Exchange(DLX, "direct")

    # -- declarations ---------------------------------------------------------------------------------------------
    def declare_exchange(self, name: str, kind: str) -> Exchange:
        exchange = self.exchanges.setdefault(name, Exchange(name, kind))
        return exchange

    def declare_queue(
        self, name: str, role: str, *, polled: bool = False, exclusive: bool = False, dead_letter: bool = True
    ) -> Queue:
        """A queue with the run's policies; with dead-lettering on, its dead-letter queue "<name>.dlq" too."""
        dlq = None
        if self.dead_letter and dead_letter:
            dlq = f"{name}.dlq"
            if dlq not in self.queues:
                self.queues[dlq] = Queue(dlq, "dead_letter")
                self.exchanges[DLX].bind(dlq, name)
        queue = Queue(
            name,
            role,
            durable=not exclusive,
            exclusive=exclusive,
            auto_delete=exclusive,
            dead_letter_queue=dlq,
            polled=polled,
            **{**self.policy, **(SQS_HAS_NO if polled else {})},
        )
        self.queues[name] = queue
        self.polls.setdefault(name, [])
        return queue

    def _delete_queue(self, queue: Queue) -> None:
        dropped = 0
        while queue.ready:
            self.drop(queue.pop(), "queue_deleted")
            dropped += 1
        queue.deleted = True
        for exchange in self.exchanges.values():
            if exchange.name != DLX:
                exchange.unbind_queue(queue.name)
        self.sim.emit("queue.deleted", {"queue": queue.name, "dropped": dropped})

    # -- publishing -----------------------------------------------------------------------------------------------
    def on_publish(self, frame: Publish) -> None:
        m = frame.message
        # "Unpack once": the fields read here, in one C-speed unpacking (each read of a named tuple's field by name
        # is a descriptor call, and a publish reads twenty).
        message_id, key, producer, exchange, routing_key, size, _at, poison, reply_to, correlation_id = m
        self.ledger.published += 1
        target = exchange or "(default)"
        event = self.sim.emit(
            "msg.published",
            {
                "id": message_id,
                "key": key,
                "producer": producer,
                "exchange": exchange,
                "routing_key": routing_key,
                "size": size,
                "poison": poison,
                "correlation_id": correlation_id,
                "reply_to": reply_to,
            },
        )
        self.rec.step(event, producer, target, correlation_id or routing_key)
        if exchange:
            names = self.exchanges[exchange].route(routing_key)
        else:
            queue = self.queues.get(routing_key)
            names = [routing_key] if queue is not None and not queue.deleted else []
        event = self.sim.emit(
            "msg.routed", {"id": message_id, "exchange": exchange, "routing_key": routing_key, "queues": names}
        )
        self.rec.step(event, target, names, routing_key)
        accepted = True
        if not names:
            self.ledger.entries += 1
            self.ledger.dropped_by["unroutable"] += 1
            event = self.sim.emit("msg.dropped", {"id": message_id, "queue": None, "reason": "unroutable"})
            self.rec.step(event, target, None, "unroutable")
        for name in names:
            accepted = self._enqueue_new(m, self.queues[name]) and accepted
        if frame.confirm:
            self.links.send(BROKER, producer, build_confirm((message_id, accepted)))

    def _enqueue_new(self, message: Message, queue: Queue) -> bool:
        """Add a copy; False if the queue's max length refused it."""
        self._seq += 1
        entry = Entry(message, queue.name, self._seq, self.sim.now)
        if queue.max_length and self._refused(queue, entry):
            return False
        self.ledger.entries += 1
        queue.push(entry)
        self.sim.emit("msg.enqueued", {"id": entry.id, "queue": queue.name, "ready": queue.ready})
        if queue.ttl > 0:
            self._arm_expiry(queue)
        self._serve(queue)
        return True

    def _refused(self, queue: Queue, entry: Entry) -> bool:
        """x-max-length on a publish: True if the overflow policy refused the new copy (reject-publish,
        reject-publish-dlx), which is then dropped or dead-lettered.

        drop-head never refuses: RabbitMQ enqueues the new copy, then drops heads until the queue is within its
        limit. Making room first ends the same way (the new copy is the newest, so never a head that goes).
        """
        self._drop_heads(queue, room=1)
        if not queue.full():
            return False
        self.ledger.entries += 1  # the refused copy is counted, and ends at once
        if queue.overflow == "reject-publish" or queue.dead_letter_queue is None:
            self.drop(entry, "overflow_rejected")
        else:
            self._discard(entry, "maxlen")
        return True

    # -- fates ----------------------------------------------------------------------------------------------------
    def _discard(self, entry: Entry, reason: str) -> None:
        """Dead-letter a copy that leaves its queue unsettled, or, with no dead-letter queue, end it."""
        queue = self.queues[entry.queue]
        dlq = self.queues.get(queue.dead_letter_queue) if queue.dead_letter_queue else None
        if dlq is not None:
            self._seq += 1
            source = entry.queue
            entry.queue, entry.seq, entry.enqueued_at = dlq.name, self._seq, self.sim.now
            dlq.push(entry)
            event = self.sim.emit(
                "msg.dead_lettered",
                {
                    "id": entry.id,
                    "queue": source,
                    "dead_letter_queue": dlq.name,
                    "reason": reason,
                    "deliveries": entry.deliveries,
                },
            )
            self.rec.step(event, source, dlq.name, reason)
        elif reason == "expired":
            self.ledger.expired += 1
            event = self.sim.emit("msg.expired", {"id": entry.id, "queue": entry.queue})
            self.rec.step(event, entry.queue, None, "ttl")
        else:
            self.drop(entry, {"maxlen": "overflow"}.get(reason, reason))  # maxlen: a head that drop-head let go

    def drop(self, entry: Entry, reason: str, consumer: str | None = None) -> None:
        """End a copy by a stated policy (auto-ack losses name the consumer that held it)."""
        self.ledger.dropped_by[reason] += 1
        event = self.sim.emit(
            "msg.dropped", {"id": entry.id, "queue": entry.queue, "reason": reason, "consumer": consumer}
        )
        self.rec.step(event, entry.queue, None, reason)

    def _drop_heads(self, queue: Queue, room: int = 0) -> None:
        """drop-head: dead-letter or drop the oldest ready copies until ``room`` more fit within the max length.

        RabbitMQ does this after a publish and after a requeue alike, so requeued copies (back at their original
        positions, the oldest) are the first to go when they push the queue over its limit.
        """
        if queue.overflow == "drop-head" and queue.max_length:
            while queue.ready + room > queue.max_length:
                self._discard(queue.pop(), "maxlen")

    def _requeue(self, entry: Entry, reason: str) -> bool:
        """Give a copy back to its queue at its original position, unless it is over the delivery limit.

        True if it was requeued. On a push queue the caller then calls `_drop_heads`, once for all the copies it
        gives back (a polled queue has no max length).
        """
        queue = self.queues[entry.queue]
        consumer, entry.consumer = entry.consumer, None
        entry.returns += 1
        if queue.delivery_limit and entry.returns > queue.delivery_limit:
            self._discard(entry, "delivery_limit")
            return False
        queue.push(entry)
        event = self.sim.emit(
            "msg.requeued", {"id": entry.id, "queue": queue.name, "reason": reason, "consumer": consumer}
        )
        self.rec.step(event, consumer, queue.name, reason)
        if queue.ttl > 0:
            self._arm_expiry(queue)
        return True

    # -- TTL ------------------------------------------------------------------------------------------------------
    def _arm_expiry(self, queue: Queue) -> None:
        """Make sure a timer fires when the head is due (a requeued copy may be due before the armed time); callers
        ask only for a queue with a TTL."""
        head = queue.peek()
        if head is None:
            return
        due = max(self.sim.now, head.enqueued_at + queue.ttl)
        if queue.expiry_at is None or due < queue.expiry_at:
            queue.expiry_at = due
            self.sim.schedule_at(due, self._expire, queue, due)

    def _expire(self, queue: Queue, due: float) -> None:
        if queue.expiry_at == due and not queue.deleted:
            queue.expiry_at = None
            self._expire_heads(queue)
            self._arm_expiry(queue)

    def _expire_heads(self, queue: Queue) -> None:
        """Expire the heads past their TTL (callers ask only for a queue with a TTL)."""
        now = self.sim.now
        while (head := queue.peek()) is not None and head.enqueued_at + queue.ttl <= now:
            self._discard(queue.pop(), "expired")

    # -- push delivery --------------------------------------------------------------------------------------------
    def _serve(self, queue: Queue) -> None:
        """Hand out what is ready (callers call it only when something is)."""
        if queue.polled:
            self._answer_polls(queue)
        else:
            self._dispatch(queue)

    def _dispatch(self, queue: Queue) -> None:
        """Deliver ready copies to the queue's sessions in round-robin order, each up to its credit."""
        ring = queue.ring
        if not ring:
            return
        if queue.ttl > 0:
            self._expire_heads(queue)
        count = len(ring)
        while queue.ready:
            start = queue.turn
            for turn in range(start, start + count):  # from the session whose turn it is, once round the ring
                session = ring[turn % count]
                if len(session.pending) < session.limit:
                    break
            else:
                return  # no session has credit
            queue.turn = turn % count + 1
            frame = self._handout(queue, queue.pop(), session.consumer, session)
            self.links.send(BROKER, session.consumer, frame, reliable=True)

    def _handout(self, queue: Queue, entry: Entry, consumer: str, session: Session | None) -> Deliver:
        """Number a delivery (tag, delivery count), put the copy where in-flight copies are kept, and emit it."""
        self._tag += 1
        tag = self._tag
        deliveries = entry.deliveries + 1
        redelivered = deliveries > 1  # `Entry.redelivered` before this one, without the property's call
        entry.deliveries = deliveries
        entry.consumer = consumer
        if session is not None and session.auto_ack:
            self.links.receivers[consumer].sent_auto(tag, entry, session.session)
        else:
            queue.pending[(consumer, tag)] = entry
            if session is not None:
                session.pending[tag] = entry
        key = entry.message.key
        if self.ledger.was_processed(queue.name, key):
            self.ledger.duplicates_delivered += 1
        event = self.sim.emit(
            "msg.delivered",
            {
                "id": entry.id,
                "queue": queue.name,
                "key": key,
                "consumer": consumer,
                "tag": tag,
                "redelivered": redelivered,
                "deliveries": deliveries,
            },
        )
        self.rec.step(event, queue.name, consumer, "redelivered" if redelivered else "")
        return build_deliver((entry, tag, session.session if session is not None else 0, redelivered))

    # -- connections ----------------------------------------------------------------------------------------------
    def on_connect(self, frame: Connect) -> None:
        if frame.consumer in self.sessions:
            self.close_session(frame.consumer, "replaced")
        queue = self.queues.get(frame.queue)
        if frame.exchange and (queue is None or queue.deleted):
            queue = self.declare_queue(frame.queue, "subscriber", exclusive=True)
            for key in frame.bindings:
                self.exchanges[frame.exchange].bind(frame.queue, key)
            self.sim.emit("queue.declared", {"queue": frame.queue, "exclusive": True, "bindings": list(frame.bindings)})
        session = Session(frame.consumer, frame.session, frame.queue, frame.prefetch, frame.auto_ack)
        self.sessions[frame.consumer] = session
        queue.ring.append(session)
        self.links.send(BROKER, frame.consumer, ConnectOk(frame.session), reliable=True)
        self._dispatch(queue)

    def session_of(self, consumer: str, session: int) -> Session | None:
        current = self.sessions.get(consumer)
        return current if current is not None and current.session == session else None

    def close_session(self, consumer: str, reason: str, session: int | None = None) -> None:
        """Close a consumer's connection (if ``session`` is given, only that one): requeue what it held."""
        current = self.sessions.get(consumer)
        if current is None or (session is not None and current.session != session):
            return
        del self.sessions[consumer]
        queue = self.queues[current.queue]
        self._stop_dispatching(current)
        requeued = 0
        for tag, entry in current.pending.items():
            del queue.pending[(consumer, tag)]
            requeued += self._requeue(entry, "connection_lost")
        self._drop_heads(queue)
        self.links.reset(consumer)
        self.links.receivers[consumer].session_closed(current.session)
        self.sim.emit("consumer.disconnected", {"consumer": consumer, "reason": reason, "requeued": requeued})
        if queue.exclusive and queue.auto_delete:
            self._delete_queue(queue)
        else:
            self._dispatch(queue)

    def _stop_dispatching(self, session: Session) -> None:
        queue = self.queues[session.queue]
        if session in queue.ring:
            index = queue.ring.index(session)
            del queue.ring[index]
            if queue.turn > index:
                queue.turn -= 1

    def on_cancel(self, frame: Cancel) -> None:
        session = self.session_of(frame.consumer, frame.session)
        if session is not None:
            session.cancel()
            self._stop_dispatching(session)

    def on_reset(self, frame: Reset) -> None:
        self.close_session(frame.consumer, "crash", frame.session)

    def on_close(self, frame: Close) -> None:
        self.close_session(frame.consumer, "cancelled", frame.session)

    def on_qos(self, frame: Qos) -> None:
        session = self.session_of(frame.consumer, frame.session)
        if session is not None:
            session.set_prefetch(frame.prefetch)
            self._dispatch(self.queues[session.queue])

    # -- settling -------------------------------------------------------------------------------------------------
    def on_settle(self, frame: Settle) -> None:
        consumer, session_id, queue_name, tag, message_id, ack, requeue = frame  # "unpack once"
        queue = self.queues[queue_name]
        key = (consumer, tag)
        session = None if queue.polled else self.session_of(consumer, session_id)
        entry = queue.pending.get(key) if queue.polled or session is not None else None
        if entry is None:
            self.sim.emit("msg.ack_stale", {"id": message_id, "queue": queue_name, "consumer": consumer, "tag": tag})
            return
        if not ack:
            event = self.sim.emit(
                "msg.nacked", {"id": entry.id, "queue": queue.name, "consumer": consumer, "requeue": requeue}
            )
            self.rec.step(event, consumer, queue.name, "requeue" if requeue else "reject")
        del queue.pending[key]
        if session is not None:
            del session.pending[tag]
        if ack:
            self.ledger.acked += 1
            event = self.sim.emit(
                "msg.acked", {"id": entry.id, "queue": queue_name, "consumer": consumer, "auto": False}
            )
            self.rec.step(event, consumer, queue_name)
        elif requeue:
            self._requeue(entry, "nack")
            self._drop_heads(queue)
        else:
            entry.consumer = None
            self._discard(entry, "rejected")
        if queue.ready:  # "nothing ready, nothing to do"
            self._serve(queue)

    # -- SQS polling ----------------------------------------------------------------------------------------------
    def on_receive(self, frame: Receive) -> None:
        queue = self.queues[frame.queue]
        deliveries = self._receive(queue, frame.consumer, frame.max_messages)
        if deliveries or frame.wait <= 0:
            self.links.send(BROKER, frame.consumer, Received(frame.poll, deliveries))
            return
        self.polls[queue.name].append(Poll(frame.consumer, frame.poll, frame.max_messages))
        self.sim.schedule(frame.wait, self._poll_expired, queue, frame.consumer, frame.poll)

    def _receive(self, queue: Queue, consumer: str, count: int) -> tuple[Deliver, ...]:
        if queue.ttl > 0:
            self._expire_heads(queue)
        out = []
        while queue.ready and len(out) < count:
            entry = queue.pop()
            if self.max_receive_count and entry.deliveries >= self.max_receive_count:
                self._discard(entry, "max_receive_count")
                continue
            frame = self._handout(queue, entry, consumer, None)
            self.sim.schedule(self.visibility, self._visibility_expired, queue, (consumer, frame.tag))
            out.append(frame)
        return tuple(out)

    def _answer_polls(self, queue: Queue) -> None:
        waiting = self.polls[queue.name]
        while waiting and queue.ready:
            poll = waiting.pop(0)
            self.links.send(
                BROKER, poll.consumer, Received(poll.poll, self._receive(queue, poll.consumer, poll.max_messages))
            )

    def _poll_expired(self, queue: Queue, consumer: str, poll: int) -> None:
        waiting = self.polls[queue.name]
        for index, item in enumerate(waiting):
            if item.consumer == consumer and item.poll == poll:
                del waiting[index]
                self.links.send(BROKER, consumer, Received(poll, ()))
                return

    def _visibility_expired(self, queue: Queue, key: tuple[str, int]) -> None:
        entry = queue.pending.pop(key, None)
        if entry is not None:
            self._requeue(entry, "visibility_timeout")
            self._answer_polls(queue)
