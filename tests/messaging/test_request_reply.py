"""Request-reply: replies matched by correlation id, late replies discarded and counted, retries and the duplicate
work they cause, and what deduplication does to it."""

from __future__ import annotations

from collections import Counter

import pytest

from .test_ledger import of_type, run

RPC = {"view": "request_reply", "clients": 2, "consumers": 2, "publish_rate": 4.0, "process_ms": 200.0}


def check_matching(events: list[dict]) -> None:
    """Each reply taken by a client answers a request of that client with the same correlation id, published by a
    worker that processed (or deduplicated) that request."""
    published = {e["id"]: e for e in of_type(events, "msg.published")}
    requests = {e["correlation_id"]: e["producer"] for e in published.values() if e["reply_to"]}
    replied = {e["id"]: e for e in of_type(events, "msg.replied")}
    worked = {(e["consumer"], e["id"]) for e in of_type(events, "msg.processed", "msg.deduplicated")}
    for event in of_type(events, "msg.reply_received", "msg.reply_late"):
        reply = replied[event["id"]]
        assert reply["correlation_id"] == event["correlation_id"] == published[event["id"]]["correlation_id"]
        assert requests[event["correlation_id"]] == event["client"]
        assert published[event["id"]]["routing_key"] == f"reply.{event['client']}"
        assert (reply["worker"], reply["request"]) in worked


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_reply_is_matched_by_correlation_id(seed: int) -> None:
    script = [(5.0, "crash_consumer", {"consumer": "W1"}), (9.0, "restart_consumer", {"consumer": "W1"})]
    engine, events = run(RPC, script, until=30.0, seed=seed, check=True)
    check_matching(events)
    received = of_type(events, "msg.reply_received")
    assert len(received) > 50
    assert len({e["correlation_id"] for e in received}) == len(received)  # one answer per request
    for client in engine.clients:
        assert client.requests == client.replies + client.failed + client.outstanding


def test_late_replies_after_the_client_gave_up_are_discarded_and_counted() -> None:
    params = {**RPC, "request_timeout_s": 1.0, "retries": 0, "publish_rate": 2.0}
    script = [(3.0, "slow_consumer", {"consumer": "W1", "factor": 10.0}), (15.0, "set_publish_rate", {"rate": 0.0})]
    engine, events = run(params, script, until=40.0, check=True)
    check_matching(events)
    late = of_type(events, "msg.reply_late")
    assert late and {e["reason"] for e in late} == {"timed_out"}
    assert len(late) == sum(c.late_replies for c in engine.clients)
    gave_up = {e["correlation_id"]: e["t"] for e in of_type(events, "msg.request_timeout") if not e["retry"]}
    for event in late:
        assert gave_up[event["correlation_id"]] < event["t"]
    assert len(gave_up) == sum(c.failed for c in engine.clients)
    assert not of_type(events, "msg.reply_received") or all(
        e["correlation_id"] not in gave_up for e in of_type(events, "msg.reply_received")
    )


def retried(dedupe: bool) -> tuple[object, list[dict]]:
    params = {
        **RPC,
        "request_timeout_s": 0.8,
        "retries": 2,
        "process_ms": 1000.0,
        "publish_rate": 1.0,
        "dedupe": dedupe,
        "consumers": 3,
    }
    return run(params, [(20.0, "set_publish_rate", {"rate": 0.0})], until=40.0, check=True)


def test_retries_cause_duplicate_work_and_duplicate_replies() -> None:
    engine, events = retried(dedupe=False)
    check_matching(events)
    work = Counter(e["key"] for e in of_type(events, "msg.processed") if e["ok"])
    assert max(work.values()) > 1  # the same request worked on more than once
    book = engine.ledger()
    assert book["duplicates_processed"] == sum(n - 1 for n in work.values()) > 0
    late = of_type(events, "msg.reply_late")
    assert late and "answered" in {e["reason"] for e in late}  # an earlier attempt's reply was taken first
    retries = [e for e in of_type(events, "msg.request_timeout") if e["retry"]]
    assert len(retries) == sum(c.retries for c in engine.clients) > 0


def test_dedupe_stops_the_duplicate_work_but_still_replies() -> None:
    engine, events = retried(dedupe=True)
    check_matching(events)
    assert engine.ledger()["duplicates_processed"] == 0
    assert of_type(events, "msg.deduplicated")
    assert len(of_type(events, "msg.replied")) == len(of_type(events, "msg.processed", "msg.deduplicated"))


def test_a_dead_worker_s_request_is_redelivered_and_answered() -> None:
    params = {**RPC, "publish_rate": 0.0, "process_ms": 500.0, "process_spread": 0.0, "request_timeout_s": 10.0}
    script = [(1.0, "burst", {"count": 1}), (1.2, "crash_consumer", {"consumer": "W1"})]
    _engine, events = run(params, script, until=5.0, check=True)
    (first, second) = of_type(events, "msg.delivered")[:2]
    assert (first["consumer"], first["redelivered"]) == ("W1", False)
    assert (second["consumer"], second["redelivered"], second["id"]) == ("W2", True, first["id"])
    (answer,) = of_type(events, "msg.reply_received")
    assert answer["correlation_id"] == "C1-1"
    check_matching(events)
