"""The one websocket consumer, generic over patterns: validates what the browser sends, forwards it to the run.

Channels calls this a consumer; the messaging pattern's queue consumers (`patterns.messaging.consumers`)
are another thing.

Runs live in workers (`patterns.core.workers`); this process only validates, fans frames out and serves pages.
Frames do not reach a viewer through a channel of its own: the process's hub (`patterns.core.fanout`) receives
each frame once and writes it to every local socket, without the per-message database clean-up hop Channels
makes before each handler (nothing here touches the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from autobahn.exception import Disconnected
from autobahn.websocket.protocol import WebSocketServerProtocol
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from .fanout import Frame
from .frames import render_message
from .inbound import load_frame, valid_run_id
from .registry import get_pattern, shown
from .runs import RunLimitError
from .runtime import runtime
from .scenario import ScenarioError, decode, encode, parse_command
from .workers import START_CHANNEL

BROWSER_ACTIONS = ("start", "join", "pause", "play", "step", "speed", "seek", "reset", "command", "remove")
FORM_KEYS_IGNORED = ("action", "HEADERS", "command", "cut_later")
MAX_STEP_TEXT = 500  # characters of a script step's text, as a remove frame quotes it
JOIN_TIMEOUT = 3.0
START_TIMEOUT = 20.0  # a new run waits for a worker: the default pool's first ones are still starting
UNREACHABLE = "The server cannot reach its Redis (REDIS_URL): live runs cannot start or be joined until it can."
CLOSE_TOO_MANY_CONNECTIONS = 4429  # an application close code (4000-4999), after HTTP's 429 Too Many Requests

log = logging.getLogger(__name__)


class TokenBucket:
    """Commands per second per connection: a steady rate with a small burst."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.capacity = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RunConsumer(AsyncWebsocketConsumer):
    # No channel per viewer: an alias with no layer behind it, so Channels gives this consumer none and reads none
    # (the hub is this process's one subscription). A viewer is known by ``key`` instead.
    channel_layer_alias = "none: viewers are reached through the hub"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Whatever ends the connection (a close, a handler that raised, daphne cancelling a slow instance), the
        viewing ends with it: a run must never be kept alive by a subscription of a consumer that is gone."""
        self.run_id: str | None = None
        self.background: list[asyncio.Task] = []
        self.counted: str | None = None
        self.wire = _websocket_protocol(send)
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.end_viewing()

    async def connect(self) -> None:
        self.key = secrets.token_urlsafe(12)
        self.limits = settings.PLAYGROUND
        self.pattern = get_pattern(self.scope["url_route"]["kwargs"]["slug"])
        self.bucket = TokenBucket(self.limits["COMMANDS_PER_SECOND"], self.limits["COMMAND_BURST"])
        self.got_frame = asyncio.Event()
        self.started: str | None = None  # the run this connection started: it may replace it
        self.client = (self.scope.get("client") or ["unknown"])[0]
        if self.pattern is None:
            await self.close(code=4404)
            return
        self.live = await runtime()
        await self.accept()
        if not await self._count_connection():
            await self.error(
                f"Too many open connections from your address (at most {self.limits['MAX_CONNECTIONS_PER_CLIENT']}): "
                "close some tabs of this site and reload."
            )
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS, reason="too many connections from this address")
            return
        wanted = dict(parse_qsl(self.scope.get("query_string", b"").decode("latin-1"))).get("run", "")
        if wanted:
            try:
                await self.join(wanted)
            except ScenarioError as exc:
                await self.error("; ".join(exc.problems))
            except (OSError, RedisError):
                await self.error(UNREACHABLE)

    async def _count_connection(self) -> bool:
        """Count this connection among its client's in the store (every process's); False when over the limit.
        With the store unreachable it is let in uncounted: it can do nothing live until the store is back."""
        try:
            if not await self.live.store.open_connection(
                self.client, self.key, self.limits["MAX_CONNECTIONS_PER_CLIENT"]
            ):
                return False
        except (OSError, RedisError) as exc:
            log.warning("counting a connection failed: %r", exc)
            return True
        self.live.hub.connections[self.key] = self.client
        self.counted = self.client
        return True

    async def disconnect(self, code: int) -> None:
        await self.end_viewing()

    async def end_viewing(self) -> None:
        """Cancel this connection's tasks, leave its run and give back its connection slot; safe to call twice."""
        tasks, self.background = self.background, []
        for task in tasks:
            task.cancel()
        if self.counted is not None:
            client, self.counted = self.counted, None
            self.live.hub.connections.pop(self.key, None)
            try:
                await self.live.store.close_connection(client, self.key)
            except (OSError, RedisError) as exc:  # it lapses in the store when no longer renewed
                log.warning("uncounting a connection failed: %r", exc)
        if self.run_id:
            try:
                await self.leave()
            except Exception as exc:  # Redis is down: the run's viewer timeout forgets this viewer instead
                log.warning("leaving run %s failed: %r", self.run_id, exc)

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """A socket that closed while a frame was on its way is an ordinary end, not an error."""
        try:
            await super().send(text_data, bytes_data, close)
        except Disconnected:
            raise StopConsumer() from None

    async def deliver(self, frame: Frame) -> None:
        """A frame from the hub (rendered and framed once for every viewer of the run): written straight to
        daphne's protocol when there is one (see `Frame`), else sent through Channels."""
        self.got_frame.set()
        wire = self.wire
        if wire is None:
            await self.send(text_data=frame.text)
        elif wire.state == wire.STATE_OPEN:  # closing or closed: its disconnect is on its way, as with daphne's send
            wire.sendPreparedMessage(frame.prepared(wire.factory))

    # -- from the browser -------------------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            request = self._parse(text_data, bytes_data)
            await self._act(request)
        except ScenarioError as exc:
            await self.error("; ".join(exc.problems))
        except RunLimitError as exc:
            await self.error(str(exc))
        except (OSError, RedisError):
            await self.error(UNREACHABLE)

    def _parse(self, text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
        if text_data is None:
            raise ScenarioError(["send text frames, not binary ones"])
        if not self.bucket.take():
            raise ScenarioError(["too many commands at once: slow down a little"])
        request = load_frame(
            text_data, max_bytes=self.limits["MAX_FRAME_IN_BYTES"], max_depth=self.limits["MAX_FRAME_DEPTH"]
        )
        if not isinstance(request, dict) or request.get("action") not in BROWSER_ACTIONS:
            raise ScenarioError([f"action: expected one of {', '.join(BROWSER_ACTIONS)}"])
        return request

    async def _act(self, request: dict[str, Any]) -> None:
        action = request["action"]
        if action == "start":
            await self.start(request)
            return
        if action == "join":
            await self.join(request.get("run"))
            return
        if self.run_id is None:
            raise ScenarioError(["no run yet: press Start first"])
        forward: dict[str, Any] = {"action": action}
        if action == "speed":
            forward["speed"] = _number(
                request.get("speed"), "speed", self.limits["MIN_SPEED"], self.limits["MAX_SPEED"]
            )
        elif action == "seek":
            forward["t"] = _number(request.get("t"), "t", 0.0, self.limits["MAX_VIRTUAL_TIME"])
        elif action == "command":
            raw = {k: v for k, v in request.items() if k not in FORM_KEYS_IGNORED}
            forward["command"], forward["args"] = parse_command(self.pattern, request.get("command"), raw)
            cut = request.get("cut_later", False)
            if not isinstance(cut, bool):
                raise ScenarioError(["cut_later: expected true or false (whether to cut the script's later steps)"])
            forward["cut_later"] = cut
        elif action == "remove":  # the run checks that the step is still there: only it knows its script
            forward["index"], forward["step"] = _step(request)
        await self.to_run(forward)

    async def start(self, request: dict[str, Any]) -> None:
        pairs = _form_pairs(request)
        scenario = decode(self.pattern, pairs, max_actions=self.limits["MAX_SCRIPT_ACTIONS"])
        store = self.live.store
        if self.run_id is not None:
            await self.leave()
        if self.started is not None:
            await self.live.hub.to_run(self.started, {"action": "stop", "viewer": self.key})
            self.started = None
        mine = await store.runs_of(self.client)
        if mine >= self.limits["MAX_RUNS_PER_CLIENT"]:
            raise RunLimitError(
                f"You already have {mine} live runs open (the limit is {self.limits['MAX_RUNS_PER_CLIENT']}); "
                "close a tab or wait a minute for idle runs to stop."
            )
        run_id = secrets.token_urlsafe(12)
        await self._subscribe(
            run_id, hello=False, timeout=START_TIMEOUT
        )  # the worker that takes the run sends this viewer a full frame
        self.started = run_id
        state = {"pattern": self.pattern.slug, "query": encode(self.pattern, scenario), "client": self.client}
        state["owner"] = self.key
        await self.live.layer.send(
            START_CHANNEL,
            {
                "type": "run.start",
                "run": run_id,
                "state": state,
                "hub": self.live.hub.channel,
                "viewers": 1,
                "viewer": self.key,
            },
        )

    async def join(self, run_id: Any) -> None:
        if not valid_run_id(run_id):
            raise ScenarioError(["run: that run id is not valid"])
        if self.run_id is not None:
            await self.leave()
        await self._subscribe(run_id, hello=True, timeout=JOIN_TIMEOUT)

    async def _subscribe(self, run_id: str, *, hello: bool, timeout: float) -> None:
        self.run_id = run_id
        self.got_frame.clear()
        await self.live.hub.subscribe(run_id, self, hello=hello)
        self.background.append(asyncio.create_task(self._expect_frame(run_id, timeout)))

    async def leave(self) -> None:
        run_id, self.run_id = self.run_id, None
        await self.live.hub.unsubscribe(run_id, self)

    async def to_run(self, message: dict[str, Any]) -> None:
        if not self.got_frame.is_set():  # a command right after Start: wait until a worker has the run
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.got_frame.wait(), START_TIMEOUT)
        count = await self.live.store.hit(f"commands:{self.client}", 1.0)
        if count > self.limits["COMMANDS_PER_CLIENT_PER_SECOND"]:
            raise ScenarioError(["too many commands from your address at once: slow down a little"])
        await self.live.hub.to_run(self.run_id, {"viewer": self.key, **message})

    async def error(self, text: str) -> None:
        await self.send(text_data=render_message(text))

    async def _expect_frame(self, run_id: str, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.got_frame.wait(), timeout)
        except TimeoutError:
            if self.run_id == run_id:
                await self.error("That live run has ended or does not exist: open its link and press Start.")


def _websocket_protocol(send: Any) -> WebSocketServerProtocol | None:
    """The autobahn protocol under daphne's ``send`` (``functools.partial(server.handle_reply, protocol)``), or
    None under any other server, which then gets every frame through ``send``."""
    protocol = send.args[0] if isinstance(send, partial) and send.args else None
    return protocol if isinstance(protocol, WebSocketServerProtocol) else None


def _form_pairs(request: dict[str, Any]) -> list[tuple[str, str]]:
    """Form fields as (name, text) pairs; a repeated field (the script's ``do`` lines) arrives as a list."""
    pairs = []
    for key, value in request.items():
        if key in FORM_KEYS_IGNORED:
            continue
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str):
                raise ScenarioError([f"{shown(key)}: form fields must be text"])
            pairs.append((key, item))
    return pairs


def _step(request: dict[str, Any]) -> tuple[int, str]:
    """A remove frame's step: its index in the script (from 0) and its text as the viewer saw it."""
    index, step = request.get("index"), request.get("step")
    problems = []
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        problems.append("index: expected the step's place in the script, a whole number from 0")
    if not isinstance(step, str) or not 0 < len(step) <= MAX_STEP_TEXT:
        problems.append(f"step: expected the step's text as the script shows it (at most {MAX_STEP_TEXT} characters)")
    if problems:
        raise ScenarioError(problems)
    return index, step


def _number(value: Any, name: str, low: float, high: float) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ScenarioError([f"{name}: expected a number"]) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ScenarioError([f"{name}: expected a number from {low:g} to {high:g}"])
    return number
