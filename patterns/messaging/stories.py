"""The messaging presets told step by step; tests/core/test_stories.py checks every claim against the run.
Highlights name the topology's nodes: queues (qtasks, qtasks_2e_dlq for tasks.dlq), consumers (nW1) and
clients (cC1)."""

from __future__ import annotations

from patterns.core.story import Chapter, Claim, Match, count, latest, where


def _nodes(*ids: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("topology", ids),)


def _processed(consumer: str, value: int) -> Claim:
    return count(where("msg.processed", consumer=consumer), "==", value)


FAIR_DISPATCH = (
    Chapter(
        "Producer P1 puts tasks in the queue tasks; three workers take them. At 0.5 s W3 becomes ten times slower. "
        "Each worker has a prefetch of 1: it may hold one unacknowledged message at a time.",
        at=0.5,
        highlight=_nodes("nW3"),
        claims=(latest(where("consumer.config", consumer="W3"), slow_factor=10.0, prefetch=1),),
    ),
    Chapter(
        "So the broker gives a worker its next message only once it has acked the last: the fast workers simply "
        "come back more often. In 20 s W1 and W2 processed 66 messages each, W3 only 10.",
        at=20.0,
        highlight=_nodes("nW1", "nW2"),
        claims=(_processed("W1", 66), _processed("W2", 66), _processed("W3", 10)),
    ),
    Chapter(
        "Nothing waits behind the slow worker: after 30 s W1 and W2 have done 192 of the 207 messages.",
        at=30.0,
        pause=False,
        claims=(_processed("W1", 95), _processed("W2", 97), _processed("W3", 15)),
    ),
)

CRASH_REDELIVERY = (
    Chapter(
        "Workers ack each message after processing it, and may hold up to 5 unacked. At 7 s a burst of 40 "
        "messages arrives, and the workers fill up to five each.",
        at=7.0,
        highlight=_nodes("qtasks"),
        claims=(count(where("command", command="burst"), "==", 1),),
    ),
    Chapter(
        "At 8 s W1 crashes while holding 5 messages it has not acked.",
        after=where("consumer.crash"),
        highlight=_nodes("nW1"),
        claims=(latest(where("consumer.crash"), consumer="W1", held=5),),
    ),
    Chapter(
        "The broker sees W1's connection drop and puts those 5 messages back in the queue, in their places.",
        after=where("consumer.disconnected"),
        highlight=_nodes("qtasks"),
        claims=(
            latest(where("consumer.disconnected"), consumer="W1", requeued=5),
            count(where("msg.requeued", reason="connection_lost"), "==", 5, since_previous=True),
        ),
    ),
    Chapter(
        "All 5 have been delivered again, to W2 and W3, marked as redelivered so a worker knows it may be seeing "
        "one a second time.",
        after=where("msg.delivered", id=59, redelivered=True),
        highlight=_nodes("nW2", "nW3"),
        claims=(
            count(Match("msg.delivered", (("redelivered", "==", True), ("consumer", "in", ("W2", "W3")))), "==", 5),
            count(where("msg.delivered", redelivered=True), "==", 5),
        ),
    ),
    Chapter(
        "W1 reconnects at 14 s. Nothing was lost: no message dropped, none dead-lettered.",
        after=where("consumer.connected", consumer="W1", session=2),
        highlight=_nodes("nW1"),
        claims=(count(where("msg.dropped"), "==", 0), count(where("msg.dead_lettered"), "==", 0)),
    ),
)

POISON = where("msg.published", poison=True)
POISON_DLQ = (
    Chapter(
        "At 3 s a poison message arrives: message 7 fails every time a worker processes it.",
        after=POISON,
        highlight=_nodes("qtasks"),
        claims=(latest(POISON, id=7),),
    ),
    Chapter(
        "W3 fails it and nacks it with requeue: back to the queue it goes, to be delivered again.",
        after=where("msg.nacked", id=7),
        highlight=_nodes("nW3", "qtasks"),
        claims=(latest(where("msg.nacked", id=7), consumer="W3", requeue=True),),
    ),
    Chapter(
        "It has now been delivered four times (to W3, W2, W1, W3) and failed on three of them.",
        after=where("msg.delivered", id=7, deliveries=4),
        claims=(count(where("msg.nacked", id=7), "==", 3), count(where("msg.delivered", id=7), "==", 4)),
    ),
    Chapter(
        "The fourth failure is one more than the queue's delivery limit of 3 allows: instead of requeueing it, the "
        "queue dead-letters message 7 into tasks.dlq, where a person can look at it.",
        after=where("msg.dead_lettered"),
        highlight=_nodes("qtasks_2e_dlq"),
        claims=(latest(where("msg.dead_lettered"), id=7, reason="delivery_limit", dead_letter_queue="tasks.dlq"),),
    ),
    Chapter(
        "Meanwhile the other messages flowed on: at 10 s message 7 is still the only one dead-lettered, and "
        "more than 10 others have been processed since.",
        at=10.0,
        pause=False,
        claims=(
            count(where("msg.dead_lettered"), "==", 1),
            count(where("msg.processed", ok=True), ">", 10, since_previous=True),
        ),
    ),
)

ALL_THREE = ["sub.S1", "sub.S2", "sub.S3"]
FANOUT = (
    Chapter(
        "P1 publishes events to a fanout exchange. Each subscriber, S1, S2 and S3, has its own queue bound to it, "
        "and a fanout exchange copies every message to every bound queue.",
        after=where("msg.routed"),
        highlight=_nodes("qsub_2e_S1", "qsub_2e_S2", "qsub_2e_S3"),
        claims=(latest(where("msg.routed"), exchange="events", queues=ALL_THREE),),
    ),
    Chapter(
        "After 10 s: 46 messages published, every one routed to all three queues, and each subscriber has "
        "processed its own copy of almost all of them (S1 44, S2 and S3 45; the rest are on their way).",
        at=10.0,
        highlight=_nodes("nS1", "nS2", "nS3"),
        claims=(
            count(where("msg.published"), "==", 46),
            count(where("msg.routed", queues=ALL_THREE), "==", 46),
            _processed("S1", 44),
            _processed("S2", 45),
            _processed("S3", 45),
        ),
    ),
)

SLOW_WORKER = (
    Chapter(
        "Clients C1 and C2 put requests in the rpc queue, each with a correlation id and the name of the client's "
        "own reply queue; workers W1 and W2 answer there. A client waits 1 s for its reply. At 5 s W1 becomes "
        "twenty times slower.",
        at=5.0,
        highlight=_nodes("nW1"),
        claims=(
            latest(where("consumer.config", consumer="W1"), slow_factor=20.0),
            count(where("msg.reply_received"), ">=", 1),
        ),
    ),
    Chapter(
        "C1 has waited 1 s for the reply to its request C1-4, which W1 is still working on, and gives up (it does "
        "not retry).",
        after=where("msg.request_timeout"),
        highlight=_nodes("cC1"),
        claims=(latest(where("msg.request_timeout"), client="C1", correlation_id="C1-4", retry=False),),
    ),
    Chapter(
        "W1's reply to C1-4 finally arrives, 4 s after C1 gave up. C1 matches its correlation id to a request it "
        "no longer waits for, discards it and counts it as late.",
        after=where("msg.reply_late"),
        highlight=_nodes("cC1", "nW1"),
        claims=(latest(where("msg.reply_late"), correlation_id="C1-4", client="C1", reason="timed_out"),),
    ),
)

STORIES = {
    "fair-dispatch": FAIR_DISPATCH,
    "crash-redelivery": CRASH_REDELIVERY,
    "poison-dlq": POISON_DLQ,
    "fanout": FANOUT,
    "slow-worker": SLOW_WORKER,
}
