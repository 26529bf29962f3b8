"""Every preset, replayed as its Share link would replay it, shows what its story says, with the ledger balanced at
every second of the run."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import pytest

from patterns.core.player import Player
from patterns.core.scenario import Action, decode
from patterns.messaging.exchanges import topic_matches
from patterns.messaging.pattern import PATTERN
from patterns.messaging.presets import PRESETS, PUBSUB, REQUEST_REPLY, WORK_QUEUE
from patterns.messaging.series import percentile

UNTIL = 30
LIMITS = {"MAX_VIRTUAL_TIME": 600, "MAX_EVENTS_PER_RUN": 1_000_000, "EVENT_HISTORY": 10, "SNAPSHOT_EVERY": 10.0}
VIEWS = {WORK_QUEUE: "work_queue", PUBSUB: "pubsub", REQUEST_REPLY: "request_reply"}


class Run:
    """A preset played second by second: the engine at the end, every event, and per-second samples."""

    def __init__(self, slug: str):
        self.preset = PATTERN.preset(slug)
        player = Player(PATTERN, decode(PATTERN, link_pairs(self.preset)), LIMITS)
        self.events: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        for second in range(UNTIL + 1):
            player.advance_to(float(second))
            self.events += [event.as_dict() for event in player.drain()]
            engine = player.engine
            unacked = {c.name: c.unacked for c in engine.consumers}
            self.samples.append({"t": second, "ledger": engine.ledger(), "unacked": unacked})
        self.engine = player.engine

    def of(self, *types: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] in types and all(e.get(k) == v for k, v in match.items())]

    def consumer(self, name: str) -> Any:
        return next(c for c in self.engine.consumers if c.name == name)


def link_pairs(preset: Any) -> list[tuple[str, str]]:
    """The preset written out as a Share link would carry it: seed, parameters, script."""
    pairs = [("seed", str(preset.seed))]
    pairs += [(name, PATTERN.param(name).format(value)) for name, value in preset.params.items()]
    for t, command, args in preset.script:
        spec = PATTERN.command(command)
        ordered = tuple((arg.name, args.get(arg.name, arg.default)) for arg in spec.args)
        pairs.append(("do", Action(t, command, ordered).text(PATTERN)))
    return pairs


@functools.cache
def played(slug: str) -> Run:
    return Run(slug)


def test_the_pattern_lists_these_presets_each_under_its_view():
    assert PATTERN.presets == PRESETS
    assert len({p.slug for p in PRESETS}) == len(PRESETS)
    for preset in PRESETS:
        assert preset.section in VIEWS, preset.slug
        assert preset.params.get("view", "work_queue") == VIEWS[preset.section], preset.slug
    assert Counter(p.section for p in PRESETS) == {WORK_QUEUE: 8, PUBSUB: 4, REQUEST_REPLY: 4}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.slug)
def test_a_share_link_carries_the_preset_exactly(preset):
    scenario = decode(PATTERN, link_pairs(preset))
    assert scenario.seed == preset.seed
    assert {k: v for k, v in scenario.values.items() if k in preset.params} == dict(preset.params)
    assert [(a.t, a.command, dict(a.args)) for a in scenario.script] == [
        (t, command, {**{a.name: a.default for a in PATTERN.command(command).args}, **args})
        for t, command, args in preset.script
    ]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.slug)
def test_the_ledger_balances_at_every_second_and_nothing_is_ignored(preset):
    run = played(preset.slug)
    assert all(sample["ledger"]["balanced"] for sample in run.samples)
    assert run.samples[-1]["ledger"]["published"] > 20
    assert run.of("command.ignored") == []  # every scripted command applies to this topology


# -- work queue -----------------------------------------------------------------------------------------------------
def test_unlimited_prefetch_piles_up_on_the_slow_worker_and_prefetch_one_does_not():
    fair, piled = played("fair-dispatch"), played("prefetch-pileup")
    assert max(s["unacked"]["W3"] for s in fair.samples) == 1
    assert max(s["unacked"]["W3"] for s in piled.samples) >= 30
    # With prefetch 1 the fast workers do nearly everything; unlimited, the slow one is dealt a third.
    assert fair.consumer("W3").processed * 5 < fair.consumer("W1").processed
    assert sum(1 for e in piled.of("msg.delivered") if e["consumer"] == "W3") * 4 > len(piled.of("msg.delivered"))
    fair_p99, piled_p99 = (percentile([e["latency"] for e in r.of("msg.processed")], 99) for r in (fair, piled))
    assert piled_p99 > 5 * fair_p99


def test_a_crashed_worker_s_messages_are_redelivered_to_the_others_and_done():
    run = played("crash-redelivery")
    [crash] = run.of("consumer.crash", consumer="W1")
    requeued = [e["id"] for e in run.of("msg.requeued", consumer="W1", reason="connection_lost")]
    assert crash["held"] == len(requeued) == 5
    for message in requeued:
        redelivery = [e for e in run.of("msg.delivered", id=message) if e["redelivered"]]
        assert redelivery and redelivery[0]["consumer"] in ("W2", "W3") and redelivery[0]["t"] > crash["t"]
        assert len(run.of("msg.acked", id=message)) == 1
    assert run.samples[-1]["ledger"]["dropped"] == 0


def test_with_auto_ack_a_crash_loses_exactly_what_the_worker_held():
    run = played("auto-ack-loss")
    [crash] = run.of("consumer.crash", consumer="W1")
    lost = run.of("msg.dropped", reason="auto_ack_crash")
    assert len(lost) == crash["held"] >= 5 and {e["consumer"] for e in lost} == {"W1"}
    assert run.samples[-1]["ledger"]["dropped_by"] == {"auto_ack_crash": len(lost)}
    assert not any(e["redelivered"] for e in run.of("msg.delivered"))


def test_the_poison_message_is_dead_lettered_after_exactly_the_delivery_limit():
    run = played("poison-dlq")
    limit = run.preset.params["delivery_limit"]
    [poison] = [e["id"] for e in run.of("msg.published") if e["poison"]]
    deliveries = run.of("msg.delivered", id=poison)
    assert [e["redelivered"] for e in deliveries] == [False] + [True] * limit
    [dead] = run.of("msg.dead_lettered", id=poison)
    assert dead["reason"] == "delivery_limit" and dead["deliveries"] == limit + 1 and dead["t"] > deliveries[-1]["t"]
    assert run.engine.queues["tasks.dlq"].head(5) == [poison]
    assert run.samples[-1]["ledger"]["dead_lettered"] == 1


def test_sqs_redrive_moves_the_poison_message_after_max_receive_count_receives():
    run = played("sqs-redrive")
    receives = run.preset.params["max_receive_count"]
    [poison] = [e["id"] for e in run.of("msg.published") if e["poison"]]
    assert [e["deliveries"] for e in run.of("msg.delivered", id=poison)] == list(range(1, receives + 1))
    [dead] = run.of("msg.dead_lettered", id=poison)
    assert dead["reason"] == "max_receive_count" and dead["deliveries"] == receives


def test_work_slower_than_the_visibility_timeout_is_done_twice_unless_deduplicated():
    plain, deduped = played("sqs-visibility"), played("dedupe")
    for run in (plain, deduped):
        assert run.of("msg.ack_stale", consumer="W3")  # W3's deletes come after the message turned visible again
        assert sum(e["redelivered"] for e in run.of("msg.delivered")) >= 5
    assert plain.samples[-1]["ledger"]["duplicates_processed"] >= 5
    assert len(plain.of("msg.processed", duplicate=True)) == plain.samples[-1]["ledger"]["duplicates_processed"]
    assert deduped.samples[-1]["ledger"]["duplicates_processed"] == 0
    assert len(deduped.of("msg.deduplicated")) >= 5


# -- publish-subscribe ----------------------------------------------------------------------------------------------
def test_fanout_gives_every_subscriber_every_message():
    run = played("fanout")
    routed = run.of("msg.routed")
    assert routed and all(e["queues"] == ["sub.S1", "sub.S2", "sub.S3"] for e in routed)
    done = {name: {e["id"] for e in run.of("msg.acked", consumer=name)} for name in ("S1", "S2", "S3")}
    assert done["S1"] == done["S2"] == done["S3"] and len(done["S1"]) >= len(routed) - 3


def test_topic_routing_follows_the_wildcards():
    run = played("topic-routing")
    bindings = {f"sub.S{i}": run.preset.params[f"binding_{i}"] for i in (1, 2, 3)}
    keys = Counter()
    for event in run.of("msg.routed"):
        keys[event["routing_key"]] += 1
        assert event["queues"] == [q for q, b in bindings.items() if topic_matches(b, event["routing_key"])]
    assert len(keys) == 5  # every routing key of the producer was tried
    routed = {e["routing_key"]: e["queues"] for e in run.of("msg.routed")}
    assert routed["order.created"] == ["sub.S1", "sub.S2", "sub.S3"]
    assert routed["order.shipped.eu"] == ["sub.S1"]


def test_a_durable_subscriber_gets_what_was_published_while_it_was_away_and_a_transient_one_does_not():
    durable, transient = played("durable-subscriber"), played("transient-subscriber")
    assert durable.consumer("S2").processed >= durable.consumer("S1").processed - 1
    away = [e for e in transient.of("msg.routed") if 5.0 < e["t"] < 15.0]
    assert away and not any("sub.S2" in e["queues"] for e in away)
    assert any("sub.S2" in e["queues"] for e in durable.of("msg.routed") if 5.0 < e["t"] < 15.0)
    missed = transient.consumer("S1").processed - transient.consumer("S2").processed
    assert missed >= len(away) - 2
    assert transient.of("queue.deleted", queue="sub.S2")


# -- request-reply --------------------------------------------------------------------------------------------------
def test_every_reply_is_matched_to_its_request_by_correlation_id():
    run = played("correlation")
    requests = {e["correlation_id"]: e["producer"] for e in run.of("msg.published") if e["reply_to"]}
    matched = run.of("msg.reply_received")
    assert len(matched) >= len(requests) - 2
    assert all(requests[e["correlation_id"]] == e["client"] for e in matched)
    assert run.of("msg.reply_late") == [] and run.of("msg.request_timeout") == []


def test_a_slow_worker_s_replies_come_late_and_are_discarded():
    run = played("slow-worker")
    late = run.of("msg.reply_late")
    timed_out = {e["correlation_id"]: e["t"] for e in run.of("msg.request_timeout")}
    assert len(late) >= 3
    for event in late:
        assert event["reason"] == "timed_out" and timed_out[event["correlation_id"]] < event["t"]
    assert sum(c.late_replies for c in run.engine.clients) == len(late)


def test_retries_cause_duplicate_work():
    run = played("retry-duplicates")
    assert run.of("msg.request_timeout", retry=True)
    duplicates = run.of("msg.processed", duplicate=True)
    assert len(duplicates) >= 3 and run.samples[-1]["ledger"]["duplicates_processed"] == len(duplicates)
    assert {e["reason"] for e in run.of("msg.reply_late")} == {"answered"}


def test_a_worker_behind_a_cut_link_holds_requests_until_the_heartbeat_timeout():
    run = played("dead-worker")
    [closed] = run.of("consumer.disconnected", consumer="W1")
    assert closed["reason"] == "heartbeat" and closed["t"] == pytest.approx(10.0)
    stuck = {e["id"] for e in run.of("msg.requeued", consumer="W1", reason="connection_lost")}
    assert stuck and all(any(d["consumer"] == "W2" for d in run.of("msg.delivered", id=i)) for i in stuck)
    assert run.of("msg.request_timeout", retry=True) and run.of("msg.reply_late", reason="answered")
    assert run.consumer("W1").state == "up"  # reconnected after the link came back
