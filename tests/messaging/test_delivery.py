"""Delivery guarantees of the push (RabbitMQ) mode: acks, crashes, cuts, prefetch, the redelivered flag, the
delivery limit, TTL and overflow policies, durable and transient subscriptions, deduplication."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from patterns.messaging.exchanges import topic_matches

from .test_ledger import apply, make_engine, of_type, random_case, run, watch

QUIET = {"publish_rate": 0.0, "process_spread": 0.0, "latency_ms": 1.0}


def ids(events: list[dict], *types: str, **match) -> list[int]:
    return [e["id"] for e in of_type(events, *types) if all(e.get(k) == v for k, v in match.items())]


def test_auto_ack_crash_loses_exactly_what_the_consumer_held() -> None:
    params = {"ack_mode": "auto", "process_ms": 500.0, "publish_rate": 15.0, "consumers": 3}
    sim, engine = make_engine(params, seed=3)
    engine.start()
    sim.run_until(5.0)
    w1 = engine.consumers[0]
    held = sorted(entry.id for entry in (*w1.wire.values(), *w1.held.values()))
    assert len(held) > 5  # unlimited deliveries piled up at the slow worker
    apply(sim, engine, "crash_consumer", {"consumer": "W1"})
    sim.run_until(20.0)
    events = [e.as_dict() for e in sim.collect()]
    lost = of_type(events, "msg.dropped")
    assert sorted(e["id"] for e in lost) == held
    assert {(e["reason"], e["consumer"]) for e in lost} == {("auto_ack_crash", "W1")}
    assert not [e for e in of_type(events, "msg.delivered") if e["redelivered"]]  # at-most-once: never again
    book = engine.ledger()
    assert book["balanced"]
    assert book["dropped_by"] == {"auto_ack_crash": len(held)}


def test_manual_ack_crash_requeues_and_redelivers_what_the_consumer_held() -> None:
    params = {"process_ms": 500.0, "publish_rate": 8.0, "prefetch": 5, "consumers": 3}
    sim, engine = make_engine(params, seed=4)
    engine.start()
    sim.run_until(5.0)
    queue = engine.queues["tasks"]
    held = sorted(entry.id for (holder, _), entry in queue.pending.items() if holder == "W1")
    assert len(held) >= 2
    apply(sim, engine, "crash_consumer", {"consumer": "W1"})
    sim.run_until(30.0)
    events = [e.as_dict() for e in sim.collect()]
    requeued = of_type(events, "msg.requeued")
    assert sorted(e["id"] for e in requeued) == held
    assert {(e["reason"], e["consumer"]) for e in requeued} == {("connection_lost", "W1")}
    disconnected = of_type(events, "consumer.disconnected")
    assert [(e["consumer"], e["reason"], e["requeued"]) for e in disconnected] == [("W1", "crash", len(held))]
    redelivered = {e["id"]: e["consumer"] for e in of_type(events, "msg.delivered") if e["redelivered"]}
    assert sorted(redelivered) == held
    assert set(redelivered.values()) <= {"W2", "W3"}
    assert set(held) <= set(ids(events, "msg.acked"))
    assert engine.ledger()["dropped"] == 0


def test_requeued_messages_keep_their_original_position() -> None:
    params = {**QUIET, "process_ms": 1000.0, "prefetch": 3, "consumers": 2}
    script = [
        (0.5, "crash_consumer", {"consumer": "W2"}),
        (1.0, "burst", {"count": 9}),
        (1.5, "crash_consumer", {"consumer": "W1"}),
    ]
    engine, _events = run(params, script, until=1.6)
    # W1 held 1, 2, 3 (it alone was up); after its crash they are back before 4..9
    assert engine.queues["tasks"].head(9) == list(range(1, 10))


def test_prefetch_one_dispatches_fairly_and_unlimited_piles_up_on_the_slow_worker() -> None:
    def shares(prefetch: int) -> tuple[Counter, int]:
        params = {"publish_rate": 6.0, "process_ms": 200.0, "process_spread": 0.1, "prefetch": prefetch}
        sim, engine = make_engine(params, seed=2)
        engine.start()
        apply(sim, engine, "slow_consumer", {"consumer": "W3", "factor": 10.0})
        most = 0
        for step in range(1, 121):
            sim.run_until(step * 0.5)
            most = max(most, engine.consumers[2].unacked)
        events = [e.as_dict() for e in sim.collect()]
        return Counter(e["consumer"] for e in of_type(events, "msg.delivered")), most

    fair, fair_most = shares(1)
    piled, piled_most = shares(0)
    assert fair_most == 1
    assert fair["W3"] / sum(fair.values()) < 0.12  # the slow worker takes only what it can
    assert 0.3 < piled["W3"] / sum(piled.values()) < 0.37  # round-robin: a third, whatever its speed
    assert piled_most > 40  # and they wait in its buffer


@pytest.mark.parametrize("seed", [1, 2, 3, 5, 7, 11, 13, 17])
def test_redelivered_flag_is_set_exactly_on_redeliveries(seed: int) -> None:
    params, script, until = random_case(seed)
    params = {**params, "queue_mode": "rabbitmq", "failure_probability": 0.3}
    _engine, events = run(params, script, until, seed=seed)
    seen: set[tuple[int, str]] = set()
    redeliveries = 0
    for event in of_type(events, "msg.delivered"):
        key = (event["id"], event["queue"])
        assert event["redelivered"] is (key in seen), event
        redeliveries += event["redelivered"]
        seen.add(key)
    assert redeliveries > 0


@pytest.mark.parametrize("limit", [1, 2, 5])
@pytest.mark.parametrize("dead_letter", [True, False])
def test_delivery_limit_dead_letters_a_poison_message_after_limit_plus_one_deliveries(
    limit: int, dead_letter: bool
) -> None:
    params = {**QUIET, "delivery_limit": limit, "dead_letter": dead_letter, "process_ms": 50.0}
    engine, events = run(params, [(1.0, "poison", {"count": 1})], until=20.0)
    deliveries = of_type(events, "msg.delivered")
    assert [e["deliveries"] for e in deliveries] == list(range(1, limit + 2))
    assert [e["redelivered"] for e in deliveries] == [False] + [True] * limit
    assert len(of_type(events, "msg.nacked")) == limit + 1
    if dead_letter:
        (dead,) = of_type(events, "msg.dead_lettered")
        assert (dead["reason"], dead["deliveries"], dead["dead_letter_queue"]) == (
            "delivery_limit",
            limit + 1,
            "tasks.dlq",
        )
        assert engine.queues["tasks.dlq"].head(5) == [deliveries[0]["id"]]
    else:
        (dropped,) = of_type(events, "msg.dropped")
        assert dropped["reason"] == "delivery_limit"
    assert engine.ledger()["balanced"]


def test_reject_without_requeue_dead_letters_at_once() -> None:
    params = {**QUIET, "on_failure": "reject", "process_ms": 50.0}
    engine, events = run(params, [(1.0, "poison", {"count": 2})], until=5.0)
    assert [e["reason"] for e in of_type(events, "msg.dead_lettered")] == ["rejected", "rejected"]
    assert len(of_type(events, "msg.delivered")) == 2
    assert engine.ledger()["dead_lettered"] == 2


@pytest.mark.parametrize("dead_letter", [True, False])
def test_ttl_expires_each_copy_at_its_time_even_after_a_requeue(dead_letter: bool) -> None:
    ttl = 2.0
    params = {
        "message_ttl_s": ttl,
        "dead_letter": dead_letter,
        "consumers": 1,
        "prefetch": 4,
        "process_ms": 3000.0,
        "publish_rate": 3.0,
        "process_spread": 0.0,
    }
    script = [(4.0, "crash_consumer", {"consumer": "W1"}), (4.0, "set_publish_rate", {"rate": 0.0})]
    engine, events = run(params, script, until=15.0, check=True)
    enqueued = {e["id"]: e["t"] for e in of_type(events, "msg.enqueued")}
    requeued = {e["id"]: e["t"] for e in of_type(events, "msg.requeued")}
    if dead_letter:
        gone = [e for e in of_type(events, "msg.dead_lettered") if e["reason"] == "expired"]
    else:
        gone = of_type(events, "msg.expired")
    assert len(gone) >= 5 and any(e["id"] in requeued for e in gone)
    for event in gone:
        due = max(enqueued[event["id"]] + ttl, requeued.get(event["id"], 0.0))
        assert event["t"] == pytest.approx(due, abs=2e-6), event
    book = engine.ledger()
    assert book["queued"] == book["in_flight"] == 0
    assert (book["dead_lettered"] if dead_letter else book["expired"]) == len(gone)


OVERFLOW = {**QUIET, "max_length": 5, "consumers": 1}
DOWN = [(0.5, "crash_consumer", {"consumer": "W1"}), (1.0, "burst", {"count": 10})]


@pytest.mark.parametrize(
    ("overflow", "dead_letter", "kept", "fate"),
    [
        ("drop-head", True, [6, 7, 8, 9, 10], ("msg.dead_lettered", "maxlen", [1, 2, 3, 4, 5])),
        ("drop-head", False, [6, 7, 8, 9, 10], ("msg.dropped", "overflow", [1, 2, 3, 4, 5])),
        ("reject-publish", True, [1, 2, 3, 4, 5], ("msg.dropped", "overflow_rejected", [6, 7, 8, 9, 10])),
        ("reject-publish-dlx", True, [1, 2, 3, 4, 5], ("msg.dead_lettered", "maxlen", [6, 7, 8, 9, 10])),
        # a refusal has one name whatever the policy: with no dead-letter queue, -dlx only refuses
        ("reject-publish-dlx", False, [1, 2, 3, 4, 5], ("msg.dropped", "overflow_rejected", [6, 7, 8, 9, 10])),
    ],
)
def test_overflow_policies(overflow: str, dead_letter: bool, kept: list[int], fate: tuple) -> None:
    params = {**OVERFLOW, "overflow": overflow, "dead_letter": dead_letter}
    engine, events = run(params, DOWN, until=3.0, check=True)
    assert engine.queues["tasks"].head(10) == kept
    kind, reason, victims = fate
    assert [e["id"] for e in of_type(events, kind) if e["reason"] == reason] == victims
    producer = engine.producers[0]
    rejecting = overflow.startswith("reject")
    assert (producer.confirmed, producer.nacked) == ((5, 5) if rejecting else (10, 0))
    assert [e["ack"] for e in of_type(events, "msg.confirmed")] == [True] * 5 + [not rejecting] * 5


# One worker holds m1..m5 (prefetch 5), the queue keeps three ready (m8, m9, m10: drop-head dropped m6, m7); then
# the worker crashes and its five come back at their original places, ahead of the three.
REQUEUE_OVER = {**QUIET, "consumers": 1, "prefetch": 5, "max_length": 3, "overflow": "drop-head"}
REQUEUE_OVER.update(process_ms=3000.0, dead_letter=False)
CRASH_WITH_FIVE = [(1.0, "burst", {"count": 10}), (2.0, "crash_consumer", {"consumer": "W1"})]


def test_drop_head_drops_the_requeued_heads_and_never_refuses_a_publish() -> None:
    """RabbitMQ drops heads after a requeue as after a publish: the requeued copies, oldest, are the ones to go."""
    script = [*CRASH_WITH_FIVE, (4.0, "burst", {"count": 1})]
    engine, events = run(REQUEUE_OVER, script, until=6.0, check=True)
    crash_drops = [e["id"] for e in of_type(events, "msg.dropped") if 2.0 < e["t"] < 3.0]
    assert crash_drops == [1, 2, 3, 4, 5]
    assert [e["requeued"] for e in of_type(events, "consumer.disconnected")] == [5]
    assert [e["id"] for e in of_type(events, "msg.dropped") if e["t"] > 3.0] == [8]  # m11 pushes out the head
    assert engine.queues["tasks"].head(10) == [9, 10, 11]
    assert {e["reason"] for e in of_type(events, "msg.dropped")} == {"overflow"}
    assert [e["ack"] for e in of_type(events, "msg.confirmed")] == [True] * 11


@pytest.mark.parametrize("dead_letter", [True, False])
def test_a_nack_with_requeue_into_a_full_drop_head_queue_drops_the_oldest(dead_letter: bool) -> None:
    params = {**REQUEUE_OVER, "dead_letter": dead_letter, "prefetch": 1, "process_ms": 500.0}
    params.update(failure_probability=1.0, on_failure="requeue")
    engine, events = run(params, [(1.0, "burst", {"count": 4})], until=1.6, check=True)
    # W1 holds m1 while m2..m4 fill the queue; m1 fails and goes back to the head, over the limit: it goes
    assert [e["id"] for e in of_type(events, "msg.requeued")] == [1]
    fate = of_type(events, "msg.dead_lettered" if dead_letter else "msg.dropped")
    assert [(e["id"], e["reason"]) for e in fate] == [(1, "maxlen" if dead_letter else "overflow")]
    assert engine.queues["tasks"].head(10) == [3, 4]  # and m2 went to W1 in its place


def test_a_drop_head_queue_stays_within_its_limit_and_confirms_every_publish() -> None:
    """Random crash schedules with a short drop-head queue: after every action of the simulation each queue with a
    max length holds at most that many ready copies, the ledger balances, and no publish is refused."""
    for seed in range(40):
        params, script, until = random_case(seed)
        params = {**params, "queue_mode": "rabbitmq", "max_length": 1 + seed % 4, "overflow": "drop-head"}
        params.update(dead_letter=seed % 2 == 0, failure_probability=0.3)
        sim, engine = make_engine(params, seed)
        watch(sim, engine)
        engine.start()
        for t, command, args in [*sorted(script, key=lambda item: item[0]), (until, "", {})]:
            while sim.next_time is not None and sim.next_time <= t:
                sim.run_until(sim.next_time)  # the actions due at that instant, each one ending within the limits
                over = [q.name for q in engine.queues.values() if q.max_length and q.ready > q.max_length]
                assert not over, (seed, sim.now, over)
            sim.run_until(t)
            if command:
                apply(sim, engine, command, args)
        events = [e.as_dict() for e in sim.collect()]
        assert all(e["ack"] for e in of_type(events, "msg.confirmed")), seed
        assert "overflow_rejected" not in engine.ledger()["dropped_by"], seed


def test_disconnected_counts_only_the_copies_it_requeued() -> None:
    """A copy over the delivery limit is dead-lettered, not requeued: consumer.disconnected does not count it."""
    params = {**QUIET, "consumers": 1, "prefetch": 5, "process_ms": 5000.0, "delivery_limit": 1}
    script = [
        (1.0, "burst", {"count": 3}),
        (2.0, "crash_consumer", {"consumer": "W1"}),  # first return of each: requeued
        (3.0, "restart_consumer", {"consumer": "W1"}),
        (5.0, "crash_consumer", {"consumer": "W1"}),  # second return: over the limit of 1, dead-lettered
    ]
    _engine, events = run(params, script, until=6.0, check=True)
    assert [e["requeued"] for e in of_type(events, "consumer.disconnected")] == [3, 0]
    assert [e["reason"] for e in of_type(events, "msg.dead_lettered")] == ["delivery_limit"] * 3


def test_a_cut_shorter_than_the_heartbeat_loses_nothing_and_redelivers_nothing() -> None:
    params = {"publish_rate": 10.0, "process_ms": 100.0, "heartbeat_s": 5.0, "prefetch": 3}
    script = [(3.0, "cut_consumer", {"consumer": "W1"}), (5.0, "restore_consumer", {"consumer": "W1"})]
    engine, events = run(params, script, until=12.0, check=True)
    assert not of_type(events, "msg.requeued", "consumer.disconnected", "msg.ack_stale")
    (restored,) = of_type(events, "consumer.restored")
    assert restored["resent"] > 0  # TCP resent what the cut had swallowed
    assert not [e for e in of_type(events, "msg.delivered") if e["redelivered"]]
    assert engine.ledger()["duplicates_delivered"] == 0


def test_a_cut_longer_than_the_heartbeat_closes_the_connection_and_requeues() -> None:
    params = {"publish_rate": 10.0, "process_ms": 300.0, "heartbeat_s": 2.0, "prefetch": 3}
    script = [(3.0, "cut_consumer", {"consumer": "W1"}), (9.0, "restore_consumer", {"consumer": "W1"})]
    engine, events = run(params, script, until=20.0, check=True)
    (closed,) = of_type(events, "consumer.disconnected")
    assert (closed["consumer"], closed["reason"], closed["t"]) == ("W1", "heartbeat", 5.0)
    requeued = of_type(events, "msg.requeued")
    assert len(requeued) == closed["requeued"] > 0 and all(e["t"] == 5.0 for e in requeued)
    connected = [e for e in of_type(events, "consumer.connected") if e["consumer"] == "W1"]
    assert len(connected) == 2 and connected[1]["t"] > 9.0  # it reconnects only once the link is back
    book = engine.ledger()
    assert book["dropped"] == 0 and book["balanced"]


def test_a_worker_that_processed_but_could_not_ack_causes_a_duplicate_unless_deduplicated() -> None:
    def duplicates(dedupe: bool) -> dict:
        params = {**QUIET, "process_ms": 1000.0, "heartbeat_s": 1.0, "consumers": 2, "dedupe": dedupe}
        script = [(0.5, "burst", {"count": 1}), (0.8, "cut_consumer", {"consumer": "W1"})]
        engine, events = run(params, script, until=10.0, check=True)
        return engine.ledger() | {"skipped": len(of_type(events, "msg.deduplicated"))}

    plain, deduped = duplicates(False), duplicates(True)
    assert (plain["duplicates_delivered"], plain["duplicates_processed"], plain["skipped"]) == (1, 1, 0)
    assert (deduped["duplicates_delivered"], deduped["duplicates_processed"], deduped["skipped"]) == (1, 0, 1)
    assert plain["acked"] == deduped["acked"] == 1


@pytest.mark.parametrize("subscriptions", ["durable", "transient"])
def test_a_subscriber_away_misses_messages_only_with_a_transient_subscription(subscriptions: str) -> None:
    params = {
        "view": "pubsub",
        "subscriptions": subscriptions,
        "exchange_type": "fanout",
        "process_ms": 50.0,
        "publish_rate": 4.0,
    }
    script = [
        (5.0, "crash_consumer", {"consumer": "S2"}),
        (15.0, "restart_consumer", {"consumer": "S2"}),
        (25.0, "set_publish_rate", {"rate": 0.0}),
    ]
    _engine, events = run(params, script, until=40.0, check=True)
    published = ids(events, "msg.published")
    got: dict[str, set[int]] = defaultdict(set)
    for event in of_type(events, "msg.acked"):
        got[event["consumer"]].add(event["id"])
    assert got["S1"] == got["S3"] == set(published)
    missed = set(published) - got["S2"]
    if subscriptions == "durable":
        assert not missed
    else:
        away = [e["id"] for e in of_type(events, "msg.routed") if "sub.S2" not in e["queues"]]
        assert away and missed >= set(away)
        assert missed == set(away) | set(ids(events, "msg.dropped", reason="queue_deleted"))
        assert [e["queue"] for e in of_type(events, "queue.deleted")] == ["sub.S2"]


def test_removing_a_consumer_lets_it_finish_what_it_holds_and_adding_one_shares_the_work() -> None:
    params = {"publish_rate": 10.0, "process_ms": 300.0, "prefetch": 3, "consumers": 2}
    script = [
        (3.0, "remove_consumer", {"consumer": "W1"}),
        (3.0, "add_consumer", {}),
        (3.0, "set_prefetch", {"consumer": "W2", "prefetch": 1}),
    ]
    engine, events = run(params, script, until=12.0, check=True)
    assert [c.name for c in engine.consumers] == ["W1", "W2", "W3"]
    assert engine.consumers[0].state == "removed"
    after = [e for e in of_type(events, "msg.delivered") if e["t"] > 3.01]
    assert {e["consumer"] for e in after} == {"W2", "W3"}
    assert not of_type(events, "msg.requeued")  # W1 acked what it held before it left
    (closed,) = of_type(events, "consumer.disconnected")
    assert (closed["consumer"], closed["reason"], closed["requeued"]) == ("W1", "cancelled", 0)
    assert any(e["t"] > 3.0 for e in of_type(events, "msg.acked") if e["consumer"] == "W1")  # finished its work
    assert engine.consumers[1].unacked <= 1


def test_pubsub_copies_go_exactly_where_the_bindings_say() -> None:
    bindings = {"sub.S1": "#", "sub.S2": "order.*", "sub.S3": "*.created"}
    _engine, events = run({"view": "pubsub", "publish_rate": 20.0}, until=5.0, check=True)
    routed = of_type(events, "msg.routed")
    assert len(routed) > 50
    for event in routed:
        expected = [q for q, key in bindings.items() if topic_matches(key, event["routing_key"])]
        assert event["queues"] == expected, event
    assert {e["routing_key"] for e in routed if e["queues"] == ["sub.S1"]} == {"order.shipped.eu", "user.deleted"}
