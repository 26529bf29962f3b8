"""SQS mode: polling with a visibility timeout, receive counts and the redrive policy, deletes as acks."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from patterns.core.scenario import ScenarioError, decode
from patterns.messaging.pattern import PATTERN

from .test_ledger import make_engine, of_type, run

SQS = {"queue_mode": "sqs", "publish_rate": 0.0, "process_spread": 0.0, "latency_ms": 1.0}


@pytest.mark.parametrize("max_receive_count", [1, 3, 5])
@pytest.mark.parametrize("on_failure", ["reject", "requeue"])
def test_redrive_moves_a_poison_message_after_exactly_max_receive_count_receives(
    max_receive_count: int, on_failure: str
) -> None:
    params = {
        **SQS,
        "max_receive_count": max_receive_count,
        "on_failure": on_failure,
        "visibility_timeout_s": 1.0,
        "process_ms": 100.0,
    }
    engine, events = run(params, [(1.0, "poison", {"count": 1})], until=30.0, check=True)
    receives = of_type(events, "msg.delivered")
    assert [e["deliveries"] for e in receives] == list(range(1, max_receive_count + 1))
    (dead,) = of_type(events, "msg.dead_lettered")
    assert (dead["reason"], dead["deliveries"], dead["dead_letter_queue"]) == (
        "max_receive_count",
        max_receive_count,
        "tasks.dlq",
    )
    returns = of_type(events, "msg.requeued")
    expected = "nack" if on_failure == "requeue" else "visibility_timeout"
    assert [e["reason"] for e in returns] == [expected] * max_receive_count
    if on_failure == "reject":  # nothing deletes it: it comes back when its visibility timeout runs out
        for receive, back in zip(receives, returns, strict=True):
            assert back["t"] == pytest.approx(receive["t"] + 1.0, abs=2e-6)
    assert engine.ledger()["dead_lettered"] == 1


def test_without_a_redrive_policy_a_poison_message_cycles_for_ever() -> None:
    params = {**SQS, "max_receive_count": 0, "visibility_timeout_s": 0.5, "process_ms": 100.0, "on_failure": "reject"}
    _engine, events = run(params, [(1.0, "poison", {"count": 1})], until=20.0)
    assert len(of_type(events, "msg.delivered")) > 20
    assert not of_type(events, "msg.dead_lettered")


def test_work_longer_than_the_visibility_timeout_is_done_twice_and_its_late_delete_is_stale() -> None:
    params = {**SQS, "visibility_timeout_s": 1.0, "process_ms": 100.0, "consumers": 2}
    script = [(0.5, "slow_consumer", {"consumer": "W1", "factor": 30.0}), (1.0, "burst", {"count": 1})]
    engine, events = run(params, script, until=10.0, check=True)
    received = [(e["consumer"], e["deliveries"]) for e in of_type(events, "msg.delivered")]
    assert received[:2] == [("W1", 1), ("W2", 2)]
    assert [e["consumer"] for e in of_type(events, "msg.processed")] == ["W2", "W1"]
    assert [e["consumer"] for e in of_type(events, "msg.ack_stale")] == ["W1"]  # its receipt handle is old
    book = engine.ledger()
    assert (book["acked"], book["duplicates_processed"], book["duplicates_delivered"]) == (1, 1, 0)


def test_dedupe_makes_the_second_processing_a_no_op() -> None:
    params = {**SQS, "visibility_timeout_s": 1.0, "process_ms": 100.0, "consumers": 2, "dedupe": True}
    script = [(0.5, "slow_consumer", {"consumer": "W1", "factor": 30.0}), (1.0, "burst", {"count": 1})]
    engine, events = run(params, script, until=10.0, check=True)
    assert [e["consumer"] for e in of_type(events, "msg.processed")] == ["W2"]
    assert [e["consumer"] for e in of_type(events, "msg.deduplicated")] == ["W1"]
    assert engine.ledger()["duplicates_processed"] == 0


def test_a_crashed_consumer_s_messages_come_back_when_their_visibility_runs_out() -> None:
    params = {**SQS, "visibility_timeout_s": 3.0, "process_ms": 2000.0, "consumers": 2, "receive_batch": 4}
    script = [(0.5, "burst", {"count": 8}), (1.0, "crash_consumer", {"consumer": "W1"})]
    _engine, events = run(params, script, until=12.0, check=True)
    took = {e["id"]: e["t"] for e in of_type(events, "msg.delivered") if e["consumer"] == "W1"}
    back = {e["id"]: e["t"] for e in of_type(events, "msg.requeued")}
    assert took and set(took) <= set(back)  # a long poll returns as soon as there is a message: W1 held some
    for message_id, t in took.items():
        assert back[message_id] == pytest.approx(t + 3.0, abs=2e-6)
    assert not of_type(events, "consumer.disconnected")  # SQS has no connections to lose


def test_consumers_never_hold_more_than_one_batch_and_long_polls_answer_at_once() -> None:
    params = {**SQS, "process_ms": 300.0, "consumers": 3, "receive_batch": 2, "wait_time_s": 20.0, "publish_rate": 20.0}
    sim, engine = make_engine(params, seed=5)
    engine.start()
    for step in range(1, 101):
        sim.run_until(step * 0.1)
        assert all(c.unacked <= 2 for c in engine.consumers)
    events = [e.as_dict() for e in sim.collect()]
    idle = make_engine({**SQS, "wait_time_s": 20.0}, seed=5)
    sim2, engine2 = idle
    engine2.start()
    sim2.run_until(5.0)  # every consumer is parked in a long poll
    engine2.apply("burst", {"count": 1})
    sim2.run_until(6.0)
    quiet = [e.as_dict() for e in sim2.collect()]
    (enqueued,) = of_type(quiet, "msg.enqueued")
    (delivered,) = of_type(quiet, "msg.delivered")
    assert delivered["t"] == enqueued["t"]
    assert len(of_type(events, "msg.delivered")) > 50


RABBITMQ_ARGUMENTS = [("max_length", "3"), ("overflow", "reject-publish"), ("delivery_limit", "2")]


@pytest.mark.parametrize(("name", "value"), RABBITMQ_ARGUMENTS)
def test_rabbitmq_queue_arguments_are_refused_in_sqs_mode(name: str, value: str) -> None:
    """SQS has no max length, overflow policy or delivery limit: a link, form or command line setting one in SQS mode
    is refused with a message naming the setting (the same decoding serves all three), not quietly applied."""
    with pytest.raises(ScenarioError) as refused:
        decode(PATTERN, [("queue_mode", "sqs"), (name, value)])
    (problem,) = refused.value.problems
    assert problem.startswith(f"{name}: SQS ") and "queue_mode rabbitmq" in problem
    with pytest.raises(CommandError, match=f"invalid scenario: {name}: SQS "):
        call_command("simulate", "messaging", "--set", "queue_mode=sqs", "--set", f"{name}={value}", "--until", "1")
    assert decode(PATTERN, [("queue_mode", "rabbitmq"), (name, value)]).values[name] != PATTERN.param(name).default


def test_an_sqs_queue_built_with_rabbitmq_arguments_goes_without_them() -> None:
    """The engine driven directly (not through a link) follows the same rule: polled queues have no length limit."""
    engine, events = run({**SQS, "max_length": 2, "delivery_limit": 1}, [(1.0, "burst", {"count": 6})], until=1.5)
    queue = engine.queues["tasks"]
    assert (queue.max_length, queue.delivery_limit) == (0, 0)
    assert not of_type(events, "msg.dropped", "msg.dead_lettered")
