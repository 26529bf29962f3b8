"""The message-queue engine: a broker with RabbitMQ semantics (or SQS's) on the kernel's network.

The parameter ``view`` picks the topology:

- ``work_queue``: producer P1 -> direct exchange "work" (key "task") -> queue "tasks" -> workers W1..Wn.
- ``pubsub``: producer P1 -> exchange "events" (``exchange_type``) -> one queue per subscriber S1..S3
  ("sub.S1" ...), bound with ``binding_1..3``; durable queues keep messages while their subscriber is away,
  transient ones (exclusive, auto-delete) are deleted when it disconnects and declared afresh when it is back.
- ``request_reply``: clients C1..Cn publish to the default exchange with key "rpc" -> queue "rpc" -> workers
  W1..Wn, who publish the reply to the client's exclusive queue "reply.C1" with the request's correlation id.

With ``dead_letter`` on, every queue but the reply queues dead-letters through the direct exchange "dlx" (bound
by the source queue's name) into "<queue>.dlq". Timing and failure rules are in `broker` (RabbitMQ and SQS
semantics), `consumers`, `producers` and `protocol` (what TCP gives a connection over a cut link).
Every actor is a node of the kernel `Network` ("broker", "P1", "C1", "W1", "S1"): a crash is a node crash, a
cut link is a network cut, and every publish, delivery, ack, poll and reply travels as a network message.

State the diagrams read (all plain attributes; nothing here needs Django):

- ``engine.view``, ``engine.mode`` ("rabbitmq" | "sqs"), ``engine.params`` (the parameter values).
- ``engine.exchanges``: dict name -> `Exchange` (``name``, ``kind`` "direct" | "fanout" | "topic",
  ``bindings``: list of `Binding` (``queue``, ``key``)). The default exchange "" routes to the queue named by the
  key and is not listed.
- ``engine.queues``: dict name -> `Queue` (``name``, ``role`` "work" | "subscriber" | "rpc" | "reply" |
  "dead_letter", ``durable``, ``exclusive``, ``auto_delete``, ``deleted``, ``max_length``, ``ttl``, ``overflow``,
  ``dead_letter_queue`` (name or None), ``delivery_limit``, ``polled`` (SQS semantics); counts ``ready``,
  ``unacked`` (delivered and not settled; in SQS mode: received and still invisible), ``depth`` = ready +
  unacked; ``head(n)``: the ids of the first n ready messages; ``pending``: dict (consumer, delivery tag) ->
  `Entry` of the unsettled copies; auto-ack copies are not in it: the broker forgot them when it sent them).
  A transient subscriber's queue is declared when the subscriber connects: it is absent until the first connect,
  stays (``deleted``) after a disconnect, and is replaced by a new `Queue` on the next connect.
- ``engine.consumers``: list of `Consumer` in creation order (``name``, ``queue``, ``state`` "connecting" | "up" |
  "disconnected" | "crashed" | "draining" | "removed", ``crashed``, ``cut``, ``prefetch`` (0: no limit),
  ``ack_mode``, ``unacked`` (deliveries the broker counts as unacked for it), ``holding`` (messages it has
  received and not finished), ``current`` (message id it is processing, or None), ``slow_factor``,
  ``processed``, ``failed``, ``deduplicated``, ``busy`` (seconds spent on finished work; ``busy_total(now)``
  includes the work in progress)).
- ``engine.producers``: list of `Producer` (``name``, ``exchange``, ``keys``, ``rate``, ``confirms``, ``published``,
  ``confirmed``, ``nacked``, ``unconfirmed``).
- ``engine.clients``: list of `Client` (request-reply only; ``name``, ``reply_queue``, ``outstanding`` (count),
  ``sent``, ``replies``, ``timeouts``, ``retries``, ``late_replies``, ``failed``).
- ``engine.ledger()``: dict with ``published``, ``entries`` (queue copies: see `ledger`), ``queued``,
  ``in_flight``, ``acked``, ``dead_lettered``, ``expired``, ``dropped``, ``dropped_by`` (reason -> count),
  ``duplicates_delivered``, ``duplicates_processed``, ``balanced``.
- ``engine.trail``: list (newest last, the last 40) of dicts ``{"t", "step", "id", "src", "dst", "label"}`` for
  the sequence diagram; ``step`` is the event name without "msg." (published, routed, delivered, acked, nacked,
  requeued, dead_lettered, expired, dropped, replied, reply_late, confirmed); src/dst are node, exchange or queue
  names ("(default)" for the default exchange; a routed step's dst is its queues joined by "," or "nowhere"; an
  expired or dropped step has no dst).
- ``engine.series``: `Series`, per-second history: ``series.window(now, span)`` -> dict of equal-length lists
  (``published``, ``delivered``, ``acked``, ``redelivered``, ``dead_lettered``, ``expired``, ``dropped`` per
  second; ``ready``, ``in_flight`` sampled each second; ``utilization`` (0..1, busy share of live consumers);
  ``latency_p50``, ``latency_p95``, ``latency_p99`` end-to-end seconds, publish to processed, NaN when none);
  ``series.totals`` (run totals of the counted series), ``series.latencies`` (recent (second, seconds) pairs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patterns.core.commands import Commands
from patterns.core.network import LatencyModel, Network
from patterns.core.sim import Simulation

from .broker import Broker
from .consumers import Consumer
from .events import Recorder
from .exchanges import Exchange
from .ledger import Ledger
from .params import SUBSCRIBERS, TOPIC_KEYS, WORKERS
from .producers import Client, Producer
from .protocol import Links
from .queues import Queue
from .series import Series

TICK = 1.0  # seconds between samples of the gauges
JITTER = 0.2  # share of the one-way delay added as uniform jitter (the links are FIFO, like TCP)


class MessagingEngine(Commands):
    """The pattern's engine: builds the view's topology, runs it, and applies perturbations."""

    def __init__(self, sim: Simulation, params: Mapping[str, Any]):
        self.sim = sim
        self.params = dict(params)
        self.view = params["view"]
        self.mode = params["queue_mode"]
        self.heartbeat = params["heartbeat_s"]
        self.dedupe = params["dedupe"]
        self.failure_probability = params["failure_probability"]
        self._ids = 0
        delay = params["latency_ms"] / 1000.0 + params["payload_bytes"] * 8 / (params["link_mbps"] * 1e6)
        self.network = Network(sim, latency=LatencyModel(delay, "uniform", delay * JITTER), fifo=True)
        self.links = Links(self.network)
        self.rec = Recorder(sim)
        self.accounts = Ledger()
        self.broker = Broker(sim, self.links, self.rec, self.accounts, self.params)
        self.producers: list[Producer] = []
        self.clients: list[Client] = []
        self.consumers: list[Consumer] = []
        self._busy_seen: dict[str, float] = {}
        {"work_queue": self._work_queue, "pubsub": self._pubsub, "request_reply": self._request_reply}[self.view]()

    # -- topologies -----------------------------------------------------------------------------------------------
    @property
    def polled(self) -> bool:
        return self.mode == "sqs"

    def _work_queue(self) -> None:
        self.broker.declare_exchange("work", "direct").bind("tasks", "task")
        self.broker.declare_queue("tasks", "work", polled=self.polled)
        self.producers.append(Producer(self, "P1", "work", ("task",), self.params["publish_rate"]))
        for name in WORKERS[: self.params["consumers"]]:
            self.consumers.append(Consumer(self, name, "tasks"))

    def _pubsub(self) -> None:
        exchange = self.broker.declare_exchange("events", self.params["exchange_type"])
        transient = self.params["subscriptions"] == "transient" and not self.polled  # SQS queues are durable
        for index, name in enumerate(SUBSCRIBERS, start=1):
            queue, key = f"sub.{name}", self.params[f"binding_{index}"]
            if transient:
                self.consumers.append(Consumer(self, name, queue, exchange="events", bindings=(key,)))
            else:
                self.broker.declare_queue(queue, "subscriber", polled=self.polled)
                exchange.bind(queue, key)
                self.consumers.append(Consumer(self, name, queue))
        self.producers.append(Producer(self, "P1", "events", TOPIC_KEYS, self.params["publish_rate"]))

    def _request_reply(self) -> None:
        self.broker.declare_queue("rpc", "rpc", polled=self.polled)
        count = self.params["clients"]
        for index in range(1, count + 1):
            client = Client(self, f"C{index}", self.params["publish_rate"] / count)
            self.broker.declare_queue(client.reply_queue, "reply", exclusive=True, dead_letter=False)
            self.clients.append(client)
        for name in WORKERS[: self.params["consumers"]]:
            self.consumers.append(Consumer(self, name, "rpc", replies=True))

    # -- what the diagrams read -----------------------------------------------------------------------------------
    @property
    def exchanges(self) -> dict[str, Exchange]:
        return self.broker.exchanges

    @property
    def queues(self) -> dict[str, Queue]:
        return self.broker.queues

    @property
    def trail(self):
        return self.rec.trail

    @property
    def series(self) -> Series:
        return self.rec.series

    def ledger(self) -> dict[str, Any]:
        """The ledger from live state: queues, unacked deliveries, auto-ack copies held; see `ledger`."""
        return self.accounts.summary(*self._places())

    def _places(self) -> tuple[int, int, int]:
        """Copies queued, in flight and dead-lettered now (the gauges the tick samples need these alone)."""
        queued = in_flight = dead_lettered = 0
        for queue in self.broker.queues.values():
            if queue.role == "dead_letter":
                dead_lettered += queue.ready
            else:
                queued += queue.ready
                in_flight += queue.unacked
        for holder in (*self.consumers, *self.clients):
            in_flight += holder.auto_in_flight
        return queued, in_flight, dead_lettered

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- running --------------------------------------------------------------------------------------------------
    def start(self) -> None:
        for consumer in self.consumers:
            consumer.start()
        for client in self.clients:
            client.connect()
        for sender in (*self.producers, *self.clients):
            sender.arrivals.start()
        self.sim.schedule(TICK, self._tick)

    def _tick(self) -> None:
        """Sample the gauges: one pass over the consumers takes each one's busy total once."""
        now = self.sim.now
        seen = self._busy_seen
        busy = 0.0
        live = 0
        for consumer in self.consumers:
            total = consumer.busy_total(now)
            if consumer.state in ("up", "draining"):
                live += 1
                busy += total - seen.get(consumer.name, total)
            seen[consumer.name] = total
        queued, in_flight, _ = self._places()
        self.rec.series.sample(now, queued, in_flight, busy / (TICK * live) if live else 0.0)
        self.sim.schedule(TICK, self._tick)

    # -- commands -------------------------------------------------------------------------------------------------
    def _do_add_consumer(self) -> None:
        self._add_consumer()

    def _do_burst(self, count: int) -> None:
        self._publish(count, poison=False)

    def _do_poison(self, count: int) -> None:
        self._publish(count, poison=True)

    def _publish(self, count: int, poison: bool) -> None:
        self.sim.emit("msg.traffic", {"rate": self._rate(), "burst": count, "poison": poison})
        for index in range(count):
            self._publish_one(index, poison)

    def _do_set_publish_rate(self, rate: float) -> None:
        senders = self.producers or self.clients
        for sender in senders:
            sender.arrivals.set_rate(rate / len(senders))
        self.sim.emit("msg.traffic", {"rate": self._rate(), "burst": 0, "poison": False})

    def _do_set_failure_probability(self, probability: float) -> None:
        self.failure_probability = probability
        self.sim.emit("msg.config", {"setting": "failure_probability", "value": self.failure_probability})

    def _rate(self) -> float:
        return sum(sender.arrivals.rate for sender in (*self.producers, *self.clients))

    def _publish_one(self, index: int, poison: bool) -> None:
        if self.producers:
            self.producers[index % len(self.producers)].publish(poison)
        else:
            self.clients[index % len(self.clients)].request(poison)

    def _consumer(self, command: str, name: str) -> Consumer | None:
        """The named consumer of this view, or None (with an ignored event) when the command may not name it now:
        a removed consumer is gone, but its link outlives it and can still be cut or restored."""
        links = command in ("cut_consumer", "restore_consumer")
        target = next((c for c in self.consumers if c.name == name and (links or c.state != "removed")), None)
        if target is None:
            self._ignore(command, f"there is no consumer {name} here")
        return target

    def _do_crash_consumer(self, consumer: str) -> None:
        if (target := self._consumer("crash_consumer", consumer)) and not target.crash():
            self._ignore("crash_consumer", f"{target.name} is down already")

    def _do_restart_consumer(self, consumer: str) -> None:
        if (target := self._consumer("restart_consumer", consumer)) and not target.restart():
            self._ignore("restart_consumer", f"{target.name} is not crashed")

    def _do_cut_consumer(self, consumer: str) -> None:
        if target := self._consumer("cut_consumer", consumer):
            self._cut(target)

    def _do_restore_consumer(self, consumer: str) -> None:
        target = self._consumer("restore_consumer", consumer)
        if target is None:
            return
        if not target.cut:
            self._ignore("restore_consumer", f"the link to {target.name} is not cut")
            return
        target.cut = False
        self.sim.cancel(target.heartbeat_timer)
        resent = self.links.restore(target.name)
        self.sim.emit("consumer.restored", {"consumer": target.name, "resent": resent})

    def _do_slow_consumer(self, consumer: str, factor: float) -> None:
        if target := self._consumer("slow_consumer", consumer):
            target.set_slow(factor)

    def _do_remove_consumer(self, consumer: str) -> None:
        if (target := self._consumer("remove_consumer", consumer)) and not target.cancel():
            self._ignore("remove_consumer", f"{target.name} is leaving already")

    def _do_set_prefetch(self, consumer: str, prefetch: int) -> None:
        target = self._consumer("set_prefetch", consumer)
        if target is None:
            return
        if self.polled:
            self._ignore("set_prefetch", "SQS consumers poll: set receive_batch instead of a prefetch")
        else:
            target.set_prefetch(prefetch)

    def _cut(self, consumer: Consumer) -> None:
        if consumer.cut:
            self._ignore("cut_consumer", f"the link to {consumer.name} is cut already")
            return
        consumer.cut = True
        self.links.cut(consumer.name, connection=not self.polled)
        self.sim.emit("consumer.cut", {"consumer": consumer.name})
        consumer.heartbeat_timer = self.sim.schedule(self.heartbeat, self._heartbeat_timeout, consumer)

    def _heartbeat_timeout(self, consumer: Consumer) -> None:
        """Both ends missed the heartbeats of a link cut this long: each closes the connection."""
        if not self.polled:
            self.broker.close_session(consumer.name, "heartbeat")
            consumer.connection_lost()

    def _add_consumer(self) -> None:
        if self.view == "pubsub":
            self._ignore("add_consumer", "subscribers are fixed; add workers in the other views")
            return
        names = [c.name for c in self.consumers]
        free = [name for name in WORKERS if name not in names]
        if free:
            consumer = Consumer(self, free[0], self.consumers[0].queue, replies=self.view == "request_reply")
            self.consumers.append(consumer)
            consumer.announce("added")
            consumer.start()
            return
        removed = next((c for c in self.consumers if c.state == "removed"), None)
        if removed is None:
            self._ignore("add_consumer", f"there are {len(WORKERS)} workers already")
        elif not removed.restart():
            removed.announce("added")
            removed.start()

    def _ignore(self, command: str, reason: str) -> None:
        self.sim.emit("command.ignored", {"command": command, "reason": reason})
