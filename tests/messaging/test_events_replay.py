"""Determinism and the event stream: the same scenario gives the same events, a snapshot taken mid-run continues
identically, whatever PYTHONHASHSEED is; every event emitted is declared; and the ledger rebuilt from a played
stream equals the engine's, for every preset."""

from __future__ import annotations

import pickle

import pytest
from django.conf import settings

from patterns.core.player import Player
from patterns.core.scenario import decode
from patterns.messaging.pattern import PATTERN

from ..support import outputs_under_hash_seeds
from .test_ledger import StreamLedger, apply, engine_summary, make_engine, run

BUSY = [
    (1.0, "poison", {"count": 2}),
    (2.0, "crash_consumer", {"consumer": "W1"}),
    (3.0, "cut_consumer", {"consumer": "W2"}),
    (4.0, "burst", {"count": 20}),
    (6.0, "restart_consumer", {"consumer": "W1"}),
    (9.0, "restore_consumer", {"consumer": "W2"}),
    (10.0, "set_prefetch", {"consumer": "W3", "prefetch": 0}),
]
VIEWS = [
    {"delivery_limit": 3, "failure_probability": 0.2, "message_ttl_s": 5.0},
    {"queue_mode": "sqs", "max_receive_count": 3, "visibility_timeout_s": 1.0},
    {"ack_mode": "auto", "prefetch": 0},
    {"view": "request_reply", "request_timeout_s": 0.5, "retries": 1},
]


@pytest.mark.parametrize("params", VIEWS)
def test_same_scenario_same_events(params: dict) -> None:
    first = run(params, BUSY, until=20.0, seed=9)[1]
    second = run(params, BUSY, until=20.0, seed=9)[1]
    assert first == second
    assert len(first) > 300


@pytest.mark.parametrize("params", VIEWS)
def test_a_pickled_run_continues_identically(params: dict) -> None:
    sim, engine = make_engine(params, seed=5)
    engine.start()
    for t, command, args in BUSY[:4]:
        sim.run_until(t)
        apply(sim, engine, command, args)
    sim.run_until(4.5)
    sim.collect()
    clone_sim, clone = pickle.loads(pickle.dumps((sim, engine), pickle.HIGHEST_PROTOCOL))
    streams = []
    for s, e in ((sim, engine), (clone_sim, clone)):
        for t, command, args in BUSY[4:]:
            s.run_until(t)
            apply(s, e, command, args)
        s.run_until(20.0)
        streams.append([event.as_dict() for event in s.collect()])
    assert streams[0] == streams[1] and len(streams[0]) > 100
    assert engine.ledger() == clone.ledger()


def test_every_emitted_event_type_is_declared() -> None:
    declared = {e["type"] for e in PATTERN.describe()["event_types"]}
    emitted: set[str] = set()
    for params in [*VIEWS, {"view": "pubsub", "subscriptions": "transient"}, {**VIEWS[0], "dead_letter": False}]:
        script = [
            *BUSY,
            (12.0, "remove_consumer", {"consumer": "W3"}),
            (13.0, "add_consumer", {}),
            (14.0, "crash_consumer", {"consumer": "S2"}),
            (15.0, "set_failure_probability", {"probability": 0}),
        ]
        emitted |= {e["type"] for e in run(params, script, until=20.0)[1]}
    assert emitted <= declared, emitted - declared
    assert {"msg.dead_lettered", "msg.expired", "msg.reply_late", "queue.deleted", "command.ignored"} <= emitted


@pytest.mark.parametrize("preset", PATTERN.presets, ids=lambda p: p.slug)
def test_ledger_rebuilt_from_a_played_stream_equals_the_engine_s(preset) -> None:
    scenario = decode(PATTERN, [("preset", preset.slug)])
    player = Player(PATTERN, scenario, settings.PLAYGROUND)
    stream = StreamLedger()
    for t in range(1, 41):
        player.advance_to(float(t))
        for event in player.drain():
            stream.feed(event.as_dict())
        assert stream.summary() == engine_summary(player.engine), (preset.slug, t)


def test_the_cli_stream_does_not_depend_on_the_hash_seed() -> None:
    command = ["manage.py", "simulate", "messaging", "--preset", "transient-subscriber", "--until", "20"]
    (output,) = set(outputs_under_hash_seeds(command))
    assert output.count("\n") > 500
