"""The pattern's typed, bounded parameters and commands.

Names follow the brokers they model: ``prefetch`` is AMQP's basic.qos prefetch count, ``max_length``,
``message_ttl_s``, ``overflow`` and ``delivery_limit`` are RabbitMQ's x-max-length, x-message-ttl, x-overflow and
x-delivery-limit queue arguments, ``visibility_timeout_s``, ``max_receive_count`` and ``wait_time_s`` are SQS's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from patterns.core.registry import Command, Param, in_group
from patterns.core.scenario import Action, never_there

VIEWS = ("work_queue", "pubsub", "request_reply")
QUEUE_MODES = ("rabbitmq", "sqs")
ACK_MODES = ("manual", "auto")
ON_FAILURE = ("requeue", "reject")
OVERFLOWS = ("drop-head", "reject-publish", "reject-publish-dlx")
EXCHANGE_TYPES = ("topic", "fanout", "direct")
SUBSCRIPTIONS = ("durable", "transient")
MAX_WORKERS = 8
WORKERS = tuple(f"W{i}" for i in range(1, MAX_WORKERS + 1))
SUBSCRIBERS = ("S1", "S2", "S3")
CONSUMER_NAMES = (*WORKERS, *SUBSCRIBERS)
# The routing keys the pub/sub producer publishes with, and the binding keys a subscriber may choose from. They are
# choices rather than text because "#" (topic wildcard) may not appear in a text value of a link.
TOPIC_KEYS = ("order.created", "order.paid", "order.shipped.eu", "user.created", "user.deleted")
BINDING_KEYS = ("#", "order.*", "*.created", "order.#", "#.eu", "*.*", "order.created", "user.*", "user.deleted")

PARAMS = (
    *in_group(
        "View",
        Param(
            "view",
            "choice",
            "work_queue",
            "View",
            choices=VIEWS,
            help="work_queue: competing consumers on one queue. pubsub: an exchange fans out to subscriber "
            "queues. request_reply: clients call workers through a request queue and private reply queues.",
        ),
        Param(
            "queue_mode",
            "choice",
            "rabbitmq",
            "Queue semantics",
            choices=QUEUE_MODES,
            help="rabbitmq: the broker pushes up to the prefetch and redelivers when a connection drops. sqs: "
            "consumers poll; a received message is hidden for the visibility timeout, then visible again.",
        ),
    ),
    *in_group(
        "Producers",
        Param("publish_rate", "float", 5.0, "Publish rate", min=0, max=200, unit="/s", help="Poisson arrivals."),
        Param("payload_bytes", "int", 1024, "Payload size", min=0, max=1_000_000, unit="B"),
        Param("link_mbps", "float", 100.0, "Link bandwidth", min=1, max=10000, unit="Mbit/s"),
        Param(
            "latency_ms",
            "float",
            2.0,
            "Network latency",
            min=0.1,
            max=1000,
            unit="ms",
            help="One way. Never zero, so that a poison message requeued for ever still lets time pass.",
        ),
        Param("confirms", "bool", True, "Publisher confirms", help="The broker acks (or nacks) each publish."),
    ),
    *in_group(
        "Consumers",
        Param("consumers", "int", 3, "Consumers", min=1, max=MAX_WORKERS, help="Workers (work queue, request-reply)."),
        Param("prefetch", "int", 1, "Prefetch", min=0, max=1000, help="Unacked deliveries per consumer; 0: no limit."),
        Param(
            "ack_mode",
            "choice",
            "manual",
            "Acknowledgement",
            choices=ACK_MODES,
            help="manual: ack after processing (at-least-once). auto: settled when sent (at-most-once), "
            "pushed without a prefetch limit, as RabbitMQ does. SQS consumers always delete after processing.",
        ),
        Param("process_ms", "float", 400.0, "Processing time", min=1, max=60000, unit="ms", help="Median."),
        Param("process_spread", "float", 0.3, "Processing spread", min=0, max=2, help="Lognormal sigma."),
        Param("failure_probability", "float", 0.0, "Failure probability", min=0, max=1),
        Param("poison_probability", "float", 0.0, "Poison share", min=0, max=1, help="Messages that always fail."),
        Param(
            "on_failure",
            "choice",
            "requeue",
            "On failure",
            choices=ON_FAILURE,
            help="requeue: nack with requeue. reject: nack without requeue (dead-letter if configured).",
        ),
        Param("dedupe", "bool", False, "Deduplicate", help="Consumers skip message ids already processed."),
        Param("heartbeat_s", "float", 5.0, "Heartbeat timeout", min=0.1, max=120, unit="s"),
    ),
    *in_group(
        "Queue",
        Param(
            "max_length",
            "int",
            0,
            "Max length",
            min=0,
            max=100000,
            help="Ready messages; 0: no limit. RabbitMQ only.",
        ),
        Param("message_ttl_s", "float", 0.0, "Message TTL", min=0, max=3600, unit="s", help="0: none."),
        Param(
            "overflow",
            "choice",
            "drop-head",
            "Overflow",
            choices=OVERFLOWS,
            help="When the queue is at its max length. drop-head: drop (or dead-letter) the oldest. reject-publish: "
            "refuse the new message. reject-publish-dlx: refuse it and dead-letter it. RabbitMQ only.",
        ),
        Param("dead_letter", "bool", True, "Dead-letter queue", help="A dead-letter exchange and queue."),
        Param(
            "delivery_limit",
            "int",
            0,
            "Delivery limit",
            min=0,
            max=1000,
            help="Quorum-queue style; 0: none. RabbitMQ only (SQS: max receive count).",
        ),
    ),
    *in_group(
        "SQS",
        Param("visibility_timeout_s", "float", 5.0, "Visibility timeout", min=0.1, max=3600, unit="s"),
        Param("max_receive_count", "int", 0, "Max receive count", min=0, max=1000, help="Redrive; 0: none."),
        Param("receive_batch", "int", 1, "Receive batch", min=1, max=10),
        Param("wait_time_s", "float", 20.0, "Long-poll wait", min=0, max=20, unit="s"),
    ),
    *in_group(
        "Publish-subscribe",
        Param("exchange_type", "choice", "topic", "Exchange type", choices=EXCHANGE_TYPES),
        Param(
            "subscriptions",
            "choice",
            "durable",
            "Subscriptions",
            choices=SUBSCRIPTIONS,
            help="durable: a subscriber's queue keeps its messages while it is away. transient: an exclusive, "
            "auto-delete queue, gone while its subscriber is (SQS queues are always durable).",
        ),
        Param("binding_1", "choice", "#", "S1 binding", choices=BINDING_KEYS),
        Param("binding_2", "choice", "order.*", "S2 binding", choices=BINDING_KEYS),
        Param("binding_3", "choice", "*.created", "S3 binding", choices=BINDING_KEYS),
    ),
    *in_group(
        "Request-reply",
        Param("clients", "int", 2, "Clients", min=1, max=4),
        Param("request_timeout_s", "float", 2.0, "Request timeout", min=0.01, max=600, unit="s"),
        Param("retries", "int", 1, "Retries", min=0, max=5, help="Resends of a timed-out request."),
    ),
)

RABBITMQ_ONLY = {  # queue arguments SQS has no counterpart of, and what SQS offers instead
    "max_length": "SQS queues have no maximum length",
    "overflow": "SQS queues have no overflow policy",
    "delivery_limit": "SQS counts receives instead (max_receive_count)",
}


def conflicts(values: Mapping[str, Any], script: Sequence[Action]) -> list[str]:
    """RabbitMQ's queue arguments are refused in SQS mode rather than quietly applied (or quietly ignored), and so
    is a scripted command naming a consumer this view never has (a worker in pub/sub, W5 of three workers)."""
    defaults = {p.name: p for p in PARAMS}
    problems = [
        f"{name}: {why}; with queue_mode sqs leave it at {defaults[name].format(defaults[name].default)}, "
        "or choose queue_mode rabbitmq"
        for name, why in RABBITMQ_ONLY.items()
        if values["queue_mode"] == "sqs" and values[name] != defaults[name].default
    ]
    return problems + never_there(script, "consumer", partial(consumer_names, values), "add_consumer")


def consumer_names(values: Mapping[str, Any], added: int) -> Sequence[str]:
    """The consumers a view can have once ``added`` have been added (pub/sub's subscribers are fixed)."""
    if values["view"] == "pubsub":
        return SUBSCRIBERS
    return WORKERS[: min(MAX_WORKERS, values["consumers"] + added)]


CONSUMER_ARG = Param("consumer", "choice", "W1", "Consumer", choices=CONSUMER_NAMES, target="consumer")
LINK_ARG = replace(CONSUMER_ARG, target="consumer link")  # a link outlives its consumer: it can still be restored

COMMANDS = (
    Command("crash_consumer", "Crash", (CONSUMER_ARG,), help="The consumer's process dies with what it holds."),
    Command("restart_consumer", "Restart", (CONSUMER_ARG,), help="It starts again and reconnects."),
    Command(
        "cut_consumer",
        "Cut link",
        (LINK_ARG,),
        help="Cut the link between the broker and the consumer; each side notices at the heartbeat timeout.",
    ),
    Command("restore_consumer", "Restore link", (LINK_ARG,)),
    Command(
        "slow_consumer",
        "Slow",
        (CONSUMER_ARG, Param("factor", "float", 10.0, "Factor", min=0.01, max=1000)),
        help="Multiply its processing time (1: normal).",
    ),
    Command("add_consumer", "Add consumer", help="One more worker (work queue, request-reply)."),
    Command("remove_consumer", "Remove", (CONSUMER_ARG,), help="Cancel: it finishes what it holds, then leaves."),
    Command("set_prefetch", "Prefetch", (CONSUMER_ARG, Param("prefetch", "int", 1, "Prefetch", min=0, max=1000))),
    Command("burst", "Burst", (Param("count", "int", 50, "Messages", min=1, max=1000),)),
    Command("poison", "Poison message", (Param("count", "int", 1, "Messages", min=1, max=100),)),
    Command("set_publish_rate", "Publish rate", (Param("rate", "float", 5.0, "Rate", min=0, max=200, unit="/s"),)),
    Command(
        "set_failure_probability",
        "Failure probability",
        (Param("probability", "float", 0.5, "Probability", min=0, max=1),),
    ),
)
