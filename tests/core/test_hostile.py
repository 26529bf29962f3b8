"""Hostile websocket clients in process: every bad frame gets a message, every way a connection ends ends its
viewing (no run kept alive by a consumer that is gone), and connections per client are bounded."""

import asyncio
import html
import logging

import pytest
from autobahn.exception import Disconnected
from channels.testing import WebsocketCommunicator

from patterns.core import websocket
from patterns.core.inbound import nesting_depth, valid_run_id
from patterns.core.registry import Param
from patterns.core.runtime import runtime
from patterns.core.scenario import ScenarioError, decode_query
from playground.asgi import application

from .test_consumer import ORIGIN, connect, frame_of, fresh_layer, limits, next_frame, send  # noqa: F401
from .toy import TOY

HOSTILE_FRAMES = [
    ("[" * 4000 + "]" * 4000, "nested too deeply"),
    ('{"action": "start", "do": [[[[[[[[["1:bump"]]]]]]]]]}', "nested too deeply"),
    ('{"action": "command", "command": "bump", "by": Infinity}', "numbers must be finite, not Infinity"),
    ('{"action": "command", "command": "bump", "by": -Infinity}', "numbers must be finite, not -Infinity"),
    ('{"action": "command", "command": "bump", "by": NaN}', "numbers must be finite, not NaN"),
    ('{"action": "command", "command": "bump", "by": 1e400}', "numbers must be finite, not 1e400"),
    ('{"action": "command", "command": "bump", "by": 2.5}', "bump by: expected a whole number, got 2.5"),
    ('{"action": "command", "command": "bump", "by": "1e400"}', "bump by: expected a whole number"),
    ('{"action": "speed", "speed": 1' + "0" * 400 + "}", "speed: expected a number"),
    ('{"action": "speed", "speed": true}', "speed: expected a number"),
    ('{"action": "seek", "t": "-inf"}', "t: expected a number from 0"),
    ('{"action": "join", "run": "éééééééééééééééé"}', "run: that run id is not valid"),
    ('{"action": "join", "run": "abc"}', "run: that run id is not valid"),
    ('{"action": "start", "seed": "\\ud800"}', "not valid Unicode"),
    ('{"action": "start", "x": "' + "é" * 4200 + '"}', "too large (8"),
]


@pytest.mark.parametrize(("frame", "message"), HOSTILE_FRAMES)
async def test_a_hostile_frame_gets_a_clear_message_and_the_run_goes_on(frame, message, caplog):
    with limits():
        comm = await connect()
        await send(comm, action="start")
        before, _ = await next_frame(comm)
        await comm.send_to(text_data=frame)
        async with asyncio.timeout(5):
            while True:
                text = await comm.receive_from(timeout=3)
                if 'id="messages"' in text and frame_of(text) is None:
                    break
        assert message in html.unescape(text)
        after, _ = await next_frame(comm, where=lambda f: f["last_seq"] > before["last_seq"])
        assert after["run"] == before["run"] and after["playing"]
        await comm.disconnect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_non_ascii_run_in_the_address_is_refused():
    with limits():
        comm = await connect("?run=%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9")
        assert "that run id is not valid" in await comm.receive_from()
        await comm.disconnect()


def test_run_ids_are_ascii_of_one_fixed_form():
    assert valid_run_id("AbCdEf0123-_xyz9")
    for bad in ("ééééééééééééééé1", "AbCdEf0123-_xyz9\n", "short", "x" * 17, "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦", None, 16):
        assert not valid_run_id(bad)


def test_nesting_is_counted_without_recursion_and_brackets_in_strings_do_not_count():
    assert nesting_depth("[" * 100_000) == 100_000
    assert nesting_depth('{"do": ["[[[[[[[[[[", "}}}"]}') == 2
    assert nesting_depth('{"a": "\\"[[[["}') == 1


async def _subscribed(run_id):
    """The keys of this process's viewers of a run (the hub keeps the run alive for them)."""
    return set((await runtime()).hub.viewers.get(run_id, {}))


async def _viewers_of(run_id, key, present, timeout=2.0):
    for _ in range(int(timeout / 0.02)):
        if (key in await _subscribed(run_id)) == present:
            return True
        await asyncio.sleep(0.02)
    return False


async def _join_second_viewer(app):
    owner = await connect()
    await send(owner, action="start")
    first, _ = await next_frame(owner)
    before = await _subscribed(first["run"])
    viewer = WebsocketCommunicator(app, f"/ws/patterns/toy/?run={first['run']}", headers=ORIGIN)
    assert (await viewer.connect())[0]
    await next_frame(viewer)
    (key,) = await _subscribed(first["run"]) - before
    return owner, viewer, first["run"], key


async def test_a_consumer_that_fails_leaves_its_run(monkeypatch):
    with limits(VIEWER_TIMEOUT=0.3, IDLE_REAP_SECONDS=60.0):  # the hub's keepalive every 0.1 s for its viewers
        owner, viewer, run_id, key = await _join_second_viewer(application)

        async def broken(self, request):
            raise RuntimeError("a bug in a handler")

        monkeypatch.setattr(websocket.RunConsumer, "_act", broken)
        await send(viewer, action="pause")
        with pytest.raises(RuntimeError):
            await viewer.wait(2)
        assert await _viewers_of(run_id, key, present=False)
        await asyncio.sleep(0.5)
        assert key not in await _subscribed(run_id)
        await owner.disconnect()


async def test_a_socket_closed_while_a_frame_is_on_its_way_is_an_ordinary_end(caplog):
    closed = asyncio.Event()

    async def app(scope, receive, send):
        async def closing_send(message):
            if closed.is_set() and message["type"] == "websocket.send":
                raise Disconnected("Attempt to send on a closed protocol")
            await send(message)

        await application(scope, receive, closing_send)

    with limits(VIEWER_TIMEOUT=60.0):
        owner, viewer, run_id, key = await _join_second_viewer(app)
        closed.set()
        await send(viewer, action="launch")  # its answer meets the closed socket
        await viewer.wait(2)  # the consumer ended, and without an exception
        assert await _viewers_of(run_id, key, present=False)
        await owner.disconnect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_connections_per_client_are_capped_with_a_clear_close():
    with limits(MAX_CONNECTIONS_PER_CLIENT=2):
        first, second = await connect(), await connect()
        third = WebsocketCommunicator(application, "/ws/patterns/toy/", headers=ORIGIN)
        assert (await third.connect())[0]
        assert "Too many open connections from your address (at most 2)" in await third.receive_from()
        assert (await third.receive_output())["code"] == websocket.CLOSE_TOO_MANY_CONNECTIONS
        await first.disconnect()
        again = await connect()
        await send(again, action="pause")
        assert "press Start first" in await again.receive_from()
        for comm in (second, again):
            await comm.disconnect()
        live = await runtime()
        assert not live.hub.connections and not live.store.slots


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("int", float("inf"), "expected a finite number"),
        ("int", float("-inf"), "expected a finite number"),
        ("int", float("nan"), "expected a finite number"),
        ("int", 2.5, "expected a whole number"),
        ("float", 10**400, "expected a number"),
        ("float", "1e400", "expected a finite number"),
        ("int", "1e400", "expected a whole number"),
    ],
)
def test_numbers_from_links_forms_and_the_cli_must_be_finite(kind, value, message):
    with pytest.raises(ValueError, match=message):
        Param("n", kind, 1).parse(value)


def test_a_link_with_an_infinite_number_gets_a_clear_message():
    with pytest.raises(ScenarioError, match="rate: expected a finite number"):
        decode_query(TOY, "rate=1e400", limits={"MAX_QUERY_LENGTH": 4096, "MAX_SCRIPT_ACTIONS": 200})
