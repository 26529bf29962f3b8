"""The ledger: rebuilt from the event stream alone it equals engine.ledger() after every event, it always balances,
and under seeded randomized crash schedules a manual-ack broker never loses a message.

The helpers here (`run`, `make_engine`, `apply`, `StreamLedger`, `of_type`, `random_case`) are shared by the other
test modules of this package.
``MSG_SCHEDULES`` sets how many random schedules run (default 300, a few CPU seconds); ``MSG_FUZZ`` how many
runs with any parameters and commands (default 60).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from patterns.core.sim import Simulation
from patterns.messaging.engine import MessagingEngine
from patterns.messaging.params import WORKERS
from patterns.messaging.pattern import PATTERN

SCHEDULES = int(os.environ.get("MSG_SCHEDULES", "300"))
Script = Iterable[tuple[float, str, Mapping[str, Any]]]

PLACES = {
    "msg.enqueued": "queued",
    "msg.requeued": "queued",
    "msg.delivered": "in_flight",
    "msg.acked": "acked",
    "msg.dead_lettered": "dead_lettered",
    "msg.expired": "expired",
    "msg.dropped": "dropped",
}
PLACE_ORDER = ("queued", "in_flight", "acked", "dead_lettered", "expired", "dropped")
# the place a copy may be in before each step (None: the copy is new)
LEGAL = {
    "msg.enqueued": {None},
    "msg.requeued": {"in_flight"},
    "msg.delivered": {"queued"},
    "msg.acked": {"in_flight"},
    "msg.dead_lettered": {None, "queued", "in_flight"},
    "msg.expired": {"queued"},
    "msg.dropped": {None, "queued", "in_flight"},
}


class StreamLedger:
    """The ledger rebuilt from events alone, checking that every step starts from a place it can start from."""

    def __init__(self) -> None:
        self.place: dict[tuple[int, str | None], str] = {}
        self.counts: Counter[str] = Counter()
        self.dropped_by: Counter[str] = Counter()
        self.processed: Counter[tuple[str, str]] = Counter()
        self.published = 0
        self.duplicates_delivered = 0
        self.duplicates_processed = 0

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event["type"]
        if kind == "msg.published":
            self.published += 1
        elif kind == "msg.processed" and event["ok"]:
            self.processed[(event["queue"], event["key"])] += 1
            self.duplicates_processed += self.processed[(event["queue"], event["key"])] > 1
        elif kind in PLACES:
            key = (event["id"], event["queue"])
            before = self.place.get(key)
            assert before in LEGAL[kind], f"{kind} of {key} from {before}: {event}"
            if kind == "msg.delivered" and (event["queue"], event["key"]) in self.processed:
                self.duplicates_delivered += 1
            if kind == "msg.dropped":
                self.dropped_by[event["reason"]] += 1
            if before is not None:
                self.counts[before] -= 1
            self.place[key] = PLACES[kind]
            self.counts[PLACES[kind]] += 1

    def places(self) -> tuple[int, ...]:
        counts = self.counts
        return (len(self.place), *(counts[name] for name in PLACE_ORDER))

    def summary(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "entries": len(self.place),
            **{name: self.counts[name] for name in ("queued", "in_flight", "acked", "dead_lettered", "expired")},
            "dropped": self.counts["dropped"],
            "dropped_by": {reason: n for reason, n in self.dropped_by.items() if n},
            "duplicates_delivered": self.duplicates_delivered,
            "duplicates_processed": self.duplicates_processed,
        }


def engine_places(engine: MessagingEngine) -> tuple[int, ...]:
    """Copies and the count in each place, from the engine's live state, asserting that they balance."""
    book = engine.ledger()
    assert book["balanced"], book
    return (book["entries"], *(book[name] for name in PLACE_ORDER))


def engine_summary(engine: MessagingEngine) -> dict[str, Any]:
    book = engine.ledger()
    assert book["balanced"], book
    return {k: v for k, v in book.items() if k != "balanced"}


def make_engine(params: Mapping[str, Any], seed: int = 1) -> tuple[Simulation, MessagingEngine]:
    sim = Simulation(seed)
    return sim, MessagingEngine(sim, {**PATTERN.defaults(), **params})


def watch(sim: Simulation, engine: MessagingEngine) -> StreamLedger:
    """Check after every event that the stream's ledger equals the engine's and that it balances."""
    stream = StreamLedger()
    emit = sim.emit

    def checked(type: str, fields: dict[str, Any] | None = None):
        event = emit(type, fields)
        if type.startswith("msg."):
            stream.feed(event.as_dict())
            assert stream.places() == engine_places(engine), event
        return event

    sim.emit = checked  # an instance attribute: only for this test run, never pickled
    return stream


def apply(sim: Simulation, engine: MessagingEngine, command: str, args: Mapping[str, Any]) -> None:
    full = {a.name: args.get(a.name, a.default) for a in PATTERN.command(command).args}
    sim.emit("command", {"command": command, "args": full})
    engine.apply(command, full)


def run(
    params: Mapping[str, Any], script: Script = (), until: float = 30.0, seed: int = 1, check: bool = False
) -> tuple[MessagingEngine, list[dict[str, Any]]]:
    """Run a scenario as the player does; with ``check``, the ledger is checked after every event."""
    sim, engine = make_engine(params, seed)
    if check:
        watch(sim, engine)
    engine.start()
    for t, command, args in sorted(script, key=lambda item: item[0]):
        sim.run_until(t)
        apply(sim, engine, command, args)
    sim.run_until(until)
    return engine, [event.as_dict() for event in sim.collect()]


def of_type(events: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] in types]


# -- randomized crash schedules -------------------------------------------------------------------------------------
CHAOS = (
    "crash_consumer",
    "restart_consumer",
    "cut_consumer",
    "restore_consumer",
    "slow_consumer",
    "remove_consumer",
    "add_consumer",
    "set_prefetch",
    "burst",
)


def random_case(seed: int) -> tuple[dict[str, Any], list[tuple[float, str, dict[str, Any]]], float]:
    """A short manual-ack run with random faults, then everything healed and the queue drained."""
    rng = random.Random(seed)
    view = rng.choice(("work_queue", "work_queue", "pubsub", "request_reply"))
    mode = "sqs" if rng.random() < 0.25 else "rabbitmq"
    params = {
        "view": view,
        "queue_mode": mode,
        "consumers": rng.randint(1, 4),
        "prefetch": rng.choice((0, 1, 3)),
        "ack_mode": "manual",
        "publish_rate": rng.choice((5.0, 15.0)),
        "process_ms": rng.choice((20.0, 80.0)),
        "failure_probability": rng.choice((0.0, 0.0, 0.3)),
        "on_failure": "requeue",
        "dedupe": rng.random() < 0.3,
        "heartbeat_s": rng.choice((0.5, 2.0)),
        "subscriptions": "durable",
        "visibility_timeout_s": rng.choice((0.3, 2.0)),
        "receive_batch": rng.choice((1, 3)),
        "wait_time_s": rng.choice((0.0, 5.0)),
        "request_timeout_s": 60.0,  # request-reply: no give-ups, so every request is answered
    }
    names = [*WORKERS[:4], "S1", "S2", "S3"] if view != "pubsub" else ["S1", "S2", "S3"]
    script: list[tuple[float, str, dict[str, Any]]] = []
    chaos = [c for c in CHAOS if view != "pubsub" or c != "remove_consumer"]  # a subscriber is not replaced
    for _ in range(rng.randint(3, 12)):
        command = rng.choice(chaos)
        args: dict[str, Any] = {"consumer": rng.choice(names)}
        if command == "slow_consumer":
            args["factor"] = rng.choice((0.5, 5.0))
        elif command == "set_prefetch":
            args["prefetch"] = rng.choice((0, 1, 2))
        elif command == "burst":
            args = {"count": rng.randint(1, 20)}
        elif command == "add_consumer":
            args = {}
        script.append((round(rng.uniform(0.0, 6.0), 3), command, args))
    heal = 8.0
    script += heal_all(heal)
    return params, script, heal + 60.0


@pytest.mark.parametrize("chunk", range(4))
def test_manual_ack_never_loses_a_message(chunk: int) -> None:
    for seed in range(chunk, SCHEDULES, 4):
        params, script, until = random_case(seed)
        engine, events = run(params, script, until, seed=seed, check=True)
        book = engine.ledger()
        context = (seed, params)
        stream = StreamLedger()
        for event in events:
            stream.feed(event)
        assert stream.summary() == engine_summary(engine), context
        assert book["balanced"], context
        assert book["dropped"] == book["expired"] == book["dead_lettered"] == 0, (context, book)
        assert book["queued"] == book["in_flight"] == 0, (context, book)
        assert book["acked"] == book["entries"], (context, book)
        if params["view"] == "request_reply":
            assert sum(c.outstanding for c in engine.clients) == 0, context
            assert sum(c.failed for c in engine.clients) == 0, context


def test_stream_ledger_matches_engine_in_every_view_and_fate() -> None:
    """One busy run per view with every policy at work: TTL, overflow, delivery limit, auto-ack crashes."""
    cases = [
        (
            {
                "view": "work_queue",
                "max_length": 5,
                "message_ttl_s": 1.0,
                "delivery_limit": 2,
                "poison_probability": 0.1,
                "publish_rate": 20.0,
            },
            [(2.0, "crash_consumer", {"consumer": "W1"}), (2.0, "burst", {"count": 30})],
        ),
        (
            {"view": "work_queue", "ack_mode": "auto", "prefetch": 0, "process_ms": 800.0, "publish_rate": 10.0},
            [(3.0, "crash_consumer", {"consumer": "W2"}), (4.0, "cut_consumer", {"consumer": "W3"})],
        ),
        (
            {"view": "pubsub", "subscriptions": "transient", "exchange_type": "topic"},
            [(2.0, "crash_consumer", {"consumer": "S2"}), (6.0, "restart_consumer", {"consumer": "S2"})],
        ),
        (
            {"view": "request_reply", "request_timeout_s": 0.5, "retries": 2, "process_ms": 400.0},
            [(2.0, "slow_consumer", {"consumer": "W1", "factor": 5.0})],
        ),
        (
            {
                "view": "work_queue",
                "queue_mode": "sqs",
                "max_receive_count": 3,
                "poison_probability": 0.1,
                "visibility_timeout_s": 1.0,
                "on_failure": "reject",
            },
            [(2.0, "crash_consumer", {"consumer": "W1"})],
        ),
        (
            {"view": "work_queue", "max_length": 3, "overflow": "reject-publish-dlx", "dead_letter": True},
            [(1.0, "burst", {"count": 20})],
        ),
        (
            {
                "view": "work_queue",
                "max_length": 3,
                "overflow": "reject-publish",
                "dead_letter": False,
                "message_ttl_s": 0.5,
            },
            [(1.0, "burst", {"count": 20})],
        ),
    ]
    for params, script in cases:
        engine, events = run(params, script, until=12.0, check=True)
        stream = StreamLedger()
        for event in events:
            stream.feed(event)
        assert stream.summary() == engine_summary(engine), params
        assert stream.summary()["entries"] > 0


# -- any parameters, any commands -----------------------------------------------------------------------------------
FUZZ = int(os.environ.get("MSG_FUZZ", "60"))


def random_value(rng: random.Random, param: Any) -> Any:
    """A valid value, biased to the bounds, small enough that a run stays short."""
    if param.kind == "bool":
        return rng.random() < 0.5
    if param.kind == "choice":
        return rng.choice(param.choices)
    if param.kind == "int":
        return rng.randint(int(param.min), int(min(param.max, param.min + 10)))
    return rng.choice((param.min, param.default, param.min + (param.max - param.min) * rng.random() * 0.01))


def test_any_parameters_and_commands_keep_the_ledger_balanced_and_nothing_stuck() -> None:
    """Whatever a visitor sets and does, in any order (commands naming absent consumers included), the engine
    neither fails nor loses track: the stream's ledger equals the engine's after every event. Once everything is
    healed, nothing stays in flight and nothing stays queued where a consumer is up to take it (poison messages,
    TTL and SQS work longer than its visibility timeout, which cycles for ever, are left out)."""
    checked = 0
    for seed in range(FUZZ):
        rng = random.Random(seed)
        params = {p.name: random_value(rng, p) for p in PATTERN.params}
        params.update(
            publish_rate=min(params["publish_rate"], 30.0),
            process_ms=max(params["process_ms"], 5.0),
            poison_probability=0.0,
            message_ttl_s=0.0,
            request_timeout_s=600.0,
        )
        if params["queue_mode"] == "sqs" and params["visibility_timeout_s"] < 30 * params["process_ms"] / 1000:
            continue
        script = []
        for _ in range(rng.randint(0, 15)):
            command = rng.choice([c for c in PATTERN.commands if c.name != "poison"])
            args = {a.name: random_value(rng, a) for a in command.args}
            if command.name == "set_publish_rate":
                args["rate"] = min(args["rate"], 30.0)
            script.append((round(rng.uniform(0.0, 10.0), 3), command.name, args))
        script += heal_all(12.0)
        engine, _ = run(params, script, until=200.0, seed=seed, check=True)
        book = engine.ledger()
        context = (seed, params, script)
        assert book["balanced"] and book["in_flight"] == 0, context
        live = {c.queue for c in engine.consumers if c.state == "up"}
        assert not [q.name for q in engine.queues.values() if q.ready and q.name in live], context
        checked += 1
    assert checked > FUZZ // 2


def heal_all(t: float) -> list[tuple[float, str, dict[str, Any]]]:
    """Stop publishing and failing, restart, reconnect and speed up every consumer, add a worker."""
    script = [(t, "set_publish_rate", {"rate": 0.0}), (t, "set_failure_probability", {"probability": 0.0})]
    for name in (*WORKERS, "S1", "S2", "S3"):
        script.append((t, "restart_consumer", {"consumer": name}))
        script.append((t, "restore_consumer", {"consumer": name}))
        script.append((t, "slow_consumer", {"consumer": name, "factor": 1.0}))
    return [*script, (t, "add_consumer", {})]
