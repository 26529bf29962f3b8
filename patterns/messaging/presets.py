"""Named scenarios, one story each, listed under their view's heading on the page.

Each preset sets only what its story needs; tests/messaging/test_presets.py runs every one and checks that it shows
what its story says, with the ledger balanced.
"""

from __future__ import annotations

from patterns.core.registry import Preset
from patterns.core.story import with_chapters

from .stories import STORIES

WORK_QUEUE = "Work queue"
PUBSUB = "Publish-subscribe"
REQUEST_REPLY = "Request-reply"

# Three workers of 5 messages a second each, one of them ten times slower from the start, fed 6 a second.
SLOW_WORKER = {"publish_rate": 6.0, "process_ms": 200.0, "process_spread": 0.1}
SLOW_W3 = ((0.5, "slow_consumer", {"consumer": "W3", "factor": 10.0}),)
# A burst at 7 s fills the queue, so that W1 holds all it may when it crashes at 8 s.
CRASH = {"publish_rate": 6.0, "process_ms": 300.0}
CRASH_SCRIPT = (
    (7.0, "burst", {"count": 40}),
    (8.0, "crash_consumer", {"consumer": "W1"}),
    (14.0, "restart_consumer", {"consumer": "W1"}),
)
# Work that takes longer than SQS's visibility timeout on one of the workers.
SQS_SLOW = {
    "queue_mode": "sqs",
    "visibility_timeout_s": 2.0,
    "publish_rate": 4.0,
    "process_ms": 300.0,
    "process_spread": 0.1,
}
SQS_SLOW_SCRIPT = ((0.5, "slow_consumer", {"consumer": "W3", "factor": 10.0}),)
# A second subscriber away for a while, for the durable and transient subscription presets.
AWAY = ((5.0, "crash_consumer", {"consumer": "S2"}), (15.0, "restart_consumer", {"consumer": "S2"}))
PUBSUB_QUIET = {"view": "pubsub", "publish_rate": 4.0, "process_ms": 50.0}
RPC = {"view": "request_reply", "clients": 2, "consumers": 2, "publish_rate": 2.0, "process_ms": 200.0}

PRESETS = (
    Preset(
        "fair-dispatch",
        "Prefetch 1: fair dispatch",
        "Three workers, W3 ten times slower than the others. With a prefetch of 1 the broker gives a worker its next "
        "message only once it has acked the last, so W1 and W2 take nearly all the work and W3 never holds more "
        "than one message: nothing waits behind the slow worker.",
        {**SLOW_WORKER, "prefetch": 1},
        SLOW_W3,
        seed=3,
        section=WORK_QUEUE,
    ),
    Preset(
        "prefetch-pileup",
        "Unlimited prefetch: a pile-up on the slow worker",
        "The same workers with no prefetch limit. The broker deals messages out in turn as they arrive, a third of "
        "them to W3, which finishes one in two seconds: its unacked count climbs by more than one a second while W1 "
        "and W2 idle, and the messages stuck behind it wait longer and longer (watch p99 latency).",
        {**SLOW_WORKER, "prefetch": 0},
        SLOW_W3,
        seed=3,
        section=WORK_QUEUE,
    ),
    Preset(
        "crash-redelivery",
        "A worker crashes holding messages",
        "Manual acks and a prefetch of 5. A burst of 40 at 7 s fills the queue and every worker takes five; at 8 s "
        "W1 crashes holding its five unacked. The broker sees the connection reset, puts them back at their place "
        "in the queue and redelivers them to W2 and W3 with the redelivered flag. W1 is back at 14 s. Nothing is "
        "lost: the ledger stays balanced.",
        {**CRASH, "prefetch": 5},
        CRASH_SCRIPT,
        seed=4,
        section=WORK_QUEUE,
    ),
    Preset(
        "auto-ack-loss",
        "Auto-ack: a crash loses what the worker held",
        "The same burst and crash with auto-ack (at-most-once). The broker settles a message the moment it sends "
        "it and ignores the prefetch, so the burst is dealt straight into the workers' buffers; when W1 crashes "
        "at 8 s what it held is gone. The ledger still balances: it counts those copies as dropped by the auto-ack "
        "crash policy, and nothing is redelivered.",
        {**CRASH, "ack_mode": "auto"},
        CRASH_SCRIPT,
        seed=4,
        section=WORK_QUEUE,
    ),
    Preset(
        "poison-dlq",
        "A poison message goes to the dead-letter queue",
        "At 3 s a message that fails every time arrives. Each failure nacks it with requeue and it comes straight "
        "back, redelivered; with a delivery limit of 3 the queue gives up on the fourth return and dead-letters it "
        "(reason delivery_limit) into tasks.dlq, while the other messages flow on.",
        {"publish_rate": 3.0, "process_ms": 200.0, "delivery_limit": 3, "on_failure": "requeue"},
        ((3.0, "poison", {"count": 1}),),
        seed=2,
        section=WORK_QUEUE,
    ),
    Preset(
        "sqs-visibility",
        "SQS: work slower than the visibility timeout is done twice",
        "SQS semantics with a 2 s visibility timeout. W3 is ten times slower and takes about 3 s per message, so "
        "before it can delete one the message turns visible again and another worker receives and processes it "
        "too. Nothing fails, yet the ledger counts duplicates processed, and W3's late deletes are stale.",
        SQS_SLOW,
        SQS_SLOW_SCRIPT,
        seed=6,
        section=WORK_QUEUE,
    ),
    Preset(
        "sqs-redrive",
        "SQS: maxReceiveCount sends a poison message to the DLQ",
        "SQS semantics with a redrive policy of 3 receives. A poison message fails on every receive and is made "
        "visible again at once; after its third receive it is moved to tasks.dlq instead of being received a "
        "fourth time.",
        {"queue_mode": "sqs", "max_receive_count": 3, "publish_rate": 3.0, "process_ms": 200.0},
        ((3.0, "poison", {"count": 1}),),
        seed=2,
        section=WORK_QUEUE,
    ),
    Preset(
        "dedupe",
        "Deduplication: exactly-once processing",
        "The SQS visibility story again, with deduplication on: the workers share a record of the message ids they "
        "processed, checked before starting and again before committing. The slow messages are still received "
        "twice, but when W3 comes to commit one that another worker already did, it drops its work and deletes "
        "the message: duplicates skipped, none processed twice.",
        {**SQS_SLOW, "dedupe": True},
        SQS_SLOW_SCRIPT,
        seed=6,
        section=WORK_QUEUE,
    ),
    Preset(
        "fanout",
        "Fanout: every subscriber gets every message",
        "A fanout exchange ignores routing keys: each of the three subscriber queues gets a copy of every message "
        "published, so three copies per message go through the ledger.",
        {**PUBSUB_QUIET, "exchange_type": "fanout"},
        seed=1,
        section=PUBSUB,
    ),
    Preset(
        "topic-routing",
        "Topic routing with wildcards",
        "Orders and user events on a topic exchange. S1 is bound with # (everything), S2 with order.* (exactly "
        "one word after order: order.created and order.paid, not order.shipped.eu), S3 with *.created. An "
        "order.created goes to all three; order.shipped.eu only to S1.",
        {**PUBSUB_QUIET, "exchange_type": "topic", "binding_1": "#", "binding_2": "order.*", "binding_3": "*.created"},
        seed=1,
        section=PUBSUB,
    ),
    Preset(
        "durable-subscriber",
        "A durable subscriber misses nothing",
        "Fanout to three durable subscriptions. S2 crashes at 5 s and is back at 15 s; meanwhile its queue keeps "
        "collecting its copies, and once it reconnects it works through the backlog. It processes every message.",
        {**PUBSUB_QUIET, "exchange_type": "fanout", "subscriptions": "durable"},
        AWAY,
        seed=5,
        section=PUBSUB,
    ),
    Preset(
        "transient-subscriber",
        "A transient subscriber misses what it was away for",
        "The same absence with transient subscriptions: S2's exclusive, auto-delete queue is deleted when its "
        "connection drops, with what it held, and for ten seconds nothing is routed to S2 at all. When it "
        "reconnects it declares a fresh, empty queue: those messages are gone for S2, while S1 and S3 got them.",
        {**PUBSUB_QUIET, "exchange_type": "fanout", "subscriptions": "transient"},
        AWAY,
        seed=5,
        section=PUBSUB,
    ),
    Preset(
        "correlation",
        "Replies matched by correlation id",
        "Two clients send requests to the rpc queue; two workers answer each on the client's own reply queue with "
        "the request's correlation id, which is how a client matches every reply to the request it waits for.",
        {**RPC, "request_timeout_s": 2.0, "retries": 0},
        seed=1,
        section=REQUEST_REPLY,
    ),
    Preset(
        "slow-worker",
        "A slow worker: timeouts and late replies",
        "Clients wait 1 s for a reply and do not retry. At 5 s W1 becomes twenty times slower: its replies come "
        "after the clients gave up, and each is recognised by its correlation id, discarded and counted as late.",
        {**RPC, "request_timeout_s": 1.0, "retries": 0},
        ((5.0, "slow_consumer", {"consumer": "W1", "factor": 20.0}),),
        seed=2,
        section=REQUEST_REPLY,
    ),
    Preset(
        "retry-duplicates",
        "Retries cause duplicate work",
        "The slow worker again, but the clients retry twice after a 1 s timeout. A retried request is the same "
        "request (same message id property), so a worker does the work a second time while the slow one is still "
        "on it: duplicates processed, and one of the two replies is late.",
        {**RPC, "request_timeout_s": 1.0, "retries": 2},
        ((5.0, "slow_consumer", {"consumer": "W1", "factor": 20.0}),),
        seed=2,
        section=REQUEST_REPLY,
    ),
    Preset(
        "dead-worker",
        "A dead worker behind a cut link",
        "At 5 s the link to W1 is cut. The broker does not know yet and goes on handing W1 requests up to its "
        "prefetch; they go unanswered until the 5 s heartbeat timeout, when the broker requeues them for W2. "
        "Meanwhile their clients time out after 2 s and retry, W2 answers the retry and then the original as "
        "well: duplicate work and a late reply. The link is back at 20 s and W1 reconnects.",
        {**RPC, "request_timeout_s": 2.0, "retries": 2},
        ((5.0, "cut_consumer", {"consumer": "W1"}), (20.0, "restore_consumer", {"consumer": "W1"})),
        seed=3,
        section=REQUEST_REPLY,
    ),
)
PRESETS = with_chapters(PRESETS, STORIES)  # each story told chapter by chapter (stories.py)
