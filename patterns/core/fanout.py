"""One subscription per web process per run: the hub receives each frame once and writes it to every local socket.

Phoenix PubSub's local fan-out is the model. A run publishes a frame to its view group; the group holds one
channel per web process (this hub's), not one per viewer, so the channel layer carries a frame once per process
and the frame, rendered once by the worker, is framed once here and written as the same bytes to each socket
(`Frame`). A joining viewer gets a full frame addressed to it alone (``to``). The hub also speaks for its
viewers: one keepalive per run per process with their number; it keeps its open connections counted in the store
(the per-client cap holds across processes); and it watches the store so that viewers hear when their run moved
to another worker or was lost with no worker to take it (with its Share link to replay it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from django.conf import settings
from redis.exceptions import RedisError

from .frames import render_message
from .runs import cmd_group, view_group
from .store import CONNECTION_SECONDS

log = logging.getLogger(__name__)
WATCH_EVERY = 1.0  # seconds between looks at who holds each watched run
LOST_AFTER = 8.0  # a run with no holder for this long is lost: no worker could take it over
LAYER_RETRY = 0.5
UNREACHABLE_RETRY = 5.0  # seconds between tries (and log lines) while Redis cannot be reached


class Viewer(Protocol):
    key: str

    async def deliver(self, frame: Frame) -> None: ...


class Frame:
    """One outgoing text frame, encoded to UTF-8 and framed as a websocket message at most once for all viewers.

    Going through Channels, every viewer's copy would be a message dict through ``base_send``, daphne's reply
    coroutine and its protocol's ``serverSend``, which encodes the text and frames it again per socket: most of
    the CPU of a class watching one run. Autobahn (daphne's websocket protocol) has the broadcast seam for this:
    ``factory.prepareMessage`` frames a payload once and ``protocol.sendPreparedMessage`` writes those bytes to
    one more socket (with per-message deflate negotiated it compresses per socket, as it must). A viewer that has
    no such protocol under it (a test's communicator) takes the text through Channels as before.
    """

    __slots__ = ("_prepared", "text")

    def __init__(self, text: str):
        self.text = text
        self._prepared: Any = None

    def prepared(self, factory: Any) -> Any:
        if self._prepared is None:
            self._prepared = factory.prepareMessage(self.text.encode("utf-8"), isBinary=False)
        return self._prepared


class Hub:
    def __init__(self, layer: Any, store: Any):
        self.layer, self.store = layer, store
        self.channel = ""
        self.viewers: dict[str, dict[str, Viewer]] = {}  # run id -> viewer key -> viewer
        self.unheld: dict[str, float] = {}  # run id -> since when no worker holds it
        self.connections: dict[str, str] = {}  # this process's open websockets counted in the store: key -> client
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.channel = await self.layer.new_channel()  # the default prefix: channels_redis reads one per process
        self.tasks = [asyncio.create_task(job()) for job in (self._pump, self._keepalive, self._watch, self._renew)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- viewers ----------------------------------------------------------------------------------------------
    async def subscribe(self, run_id: str, viewer: Viewer, *, hello: bool = True) -> None:
        local = self.viewers.setdefault(run_id, {})
        if not local:
            await self.layer.group_add(view_group(run_id), self.channel)
        local[viewer.key] = viewer
        if hello:
            await self.to_run(run_id, {"action": "hello", "viewer": viewer.key})

    async def unsubscribe(self, run_id: str, viewer: Viewer) -> None:
        local = self.viewers.get(run_id, {})
        if local.pop(viewer.key, None) is None:
            return
        if not local:
            del self.viewers[run_id]
            self.unheld.pop(run_id, None)
            await self.layer.group_discard(view_group(run_id), self.channel)
        await self.to_run(run_id, {"action": "leave"})

    async def to_run(self, run_id: str, message: dict[str, Any]) -> None:
        """A command for a run, signed with this hub and the number of its viewers of that run."""
        count = len(self.viewers.get(run_id, ()))
        await self.layer.group_send(
            cmd_group(run_id), {"type": "run.command", "run": run_id, "hub": self.channel, "viewers": count, **message}
        )

    async def tell(self, run_id: str, html: str) -> None:
        """Write one frame to every local viewer of a run; a socket that closed meanwhile is skipped."""
        frame = Frame(html)
        for viewer in list(self.viewers.get(run_id, {}).values()):
            with contextlib.suppress(Exception):
                await viewer.deliver(frame)

    # -- loops ------------------------------------------------------------------------------------------------
    async def _pump(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
                await self._route(message)
            except asyncio.CancelledError:
                raise
            except (OSError, RedisError) as exc:  # Redis unreachable: the viewers are told when they act
                log.warning("hub: the channel layer cannot be read: %s", exc)
                await asyncio.sleep(UNREACHABLE_RETRY)
            except Exception:
                log.exception("hub: receiving a frame failed")
                await asyncio.sleep(LAYER_RETRY)

    async def _route(self, message: dict[str, Any]) -> None:
        run_id = message.get("run")
        if message.get("type") == "run.moved":
            self.unheld.pop(run_id, None)
            await self.tell(
                run_id, render_message("The worker running this run stopped; another took it over.", level="info")
            )
            await self.to_run(run_id, {"action": "keepalive"})
        elif "to" in message:
            viewer = self.viewers.get(run_id, {}).get(message["to"])
            if viewer is not None:
                with contextlib.suppress(Exception):
                    await viewer.deliver(Frame(message["html"]))
        else:
            await self.tell(run_id, message["html"])

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(settings.PLAYGROUND["VIEWER_TIMEOUT"] / 3)
            for run_id in list(self.viewers):
                with contextlib.suppress(Exception):
                    await self.to_run(run_id, {"action": "keepalive"})

    async def _renew(self) -> None:
        """Keep this process's connections counted in the store; a killed process's lapse after CONNECTION_SECONDS."""
        while True:
            await asyncio.sleep(CONNECTION_SECONDS / 3)
            try:
                await self.store.renew_connections(dict(self.connections))
            except (OSError, RedisError) as exc:
                log.warning("hub: cannot renew the connections in the store: %s", exc)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            for run_id in list(self.viewers):
                try:
                    await self._check(run_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("hub: cannot reach the store to watch run %s", run_id)

    async def _check(self, run_id: str) -> None:
        if await self.store.holder(run_id) is not None:
            self.unheld.pop(run_id, None)
            return
        now = time.monotonic()
        since = self.unheld.setdefault(run_id, now)
        if now - since < LOST_AFTER:
            return
        state = await self.store.load(run_id)
        if state is None:  # ended normally (its viewers were told) or never existed
            return
        link = f"/patterns/{state['pattern']}/?{state['query']}"
        await self.tell(run_id, render_message(lost_text(link), level="error"))
        self.unheld[run_id] = now + 60.0  # say it again in a minute, not every second


def lost_text(link: str) -> str:
    return (
        "The worker running this live run stopped and no other worker could take it over. "
        f"Its Share link replays it exactly: {link}"
    )
