"""Live runs: a scenario played in wall-clock time by the process that started it, steered over the channel layer.

A run listens on the group ``run-<id>-cmd`` and publishes frames to ``run-<id>-view``; viewers never touch it
directly, so the same code serves one process with the in-memory layer and many daphne processes sharing Redis.
Commands reaching a run were validated by the consumer; the run checks them again and never lets one kill it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from .frames import context, drawings, render_frame, render_message
from .player import Player
from .registry import Pattern
from .scenario import Scenario, parse_command

log = logging.getLogger(__name__)
TICK = 0.025  # wall seconds between simulation steps of a playing run
LAYER_RETRY = 0.5  # seconds to wait after a channel-layer error before trying again
TICK_BUDGET = 0.015  # CPU seconds one run may simulate per tick
SLICE = 0.002  # wall seconds' worth of virtual time simulated between looks at the clock
MAX_TICK = 0.5  # after a stall (a slow host, a long seek), catch up at most this much wall time


def cmd_group(run_id: str) -> str:
    return f"run-{run_id}-cmd"


def view_group(run_id: str) -> str:
    return f"run-{run_id}-view"


class RunLimitError(Exception):
    pass


class LiveRun:
    def __init__(self, pattern: Pattern, scenario: Scenario, client: str, owner: str):
        self.limits = settings.PLAYGROUND
        self.id = secrets.token_urlsafe(12)
        self.client = client
        self.owner = owner  # the channel name of the connection that started it
        self.player = Player(pattern, scenario, self.limits)
        self.playing = True
        self.speed = 1.0
        self.frame = 0
        self.viewers: dict[str, float] = {owner: time.monotonic()}
        self.idle_since: float | None = None
        self.dirty = True
        self.last_frame = 0.0
        self.layer = get_channel_layer()
        self.task: asyncio.Task | None = None
        self.closing = False
        self.behind = False  # could not keep up with its speed on the last tick
        self.published: dict[str, Any] = {}  # the drawings every viewer in the group has now
        self.published_script: tuple = ()  # and the script

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def main(self) -> None:
        channel = await self.layer.new_channel()
        await self.layer.group_add(cmd_group(self.id), channel)
        receiver = asyncio.create_task(self._receive(channel))
        try:
            await self._loop()
        finally:
            receiver.cancel()
            await self.layer.group_discard(cmd_group(self.id), channel)
            await self.layer.group_send(view_group(self.id), _frame_message(render_message("This live run has ended.")))

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
                await self.handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad command or a channel-layer hiccup must never stop the run
                log.exception("run %s: receiving or handling a command failed", self.id)
                await asyncio.sleep(LAYER_RETRY)

    async def _loop(self) -> None:
        last = time.monotonic()
        while not self._reapable(last):
            await asyncio.sleep(TICK)
            now = time.monotonic()
            if self.playing and self.player.stopped is None:
                self._advance(min(now - last, MAX_TICK))
            last = now
            if self.dirty and now - self.last_frame >= self.limits["FRAME_INTERVAL"]:
                try:
                    await self.publish()
                except Exception:  # the layer is down: keep simulating, try again next tick
                    log.exception("run %s: publishing a frame failed", self.id)
                    await asyncio.sleep(LAYER_RETRY)

    def _advance(self, wall: float) -> None:
        """Play ``wall`` seconds at the run's speed, in slices, giving up the rest when the tick's CPU is spent:
        a heavy run at a high speed then falls behind (and says so) instead of stalling every other run."""
        player = self.player
        target = player.now + wall * self.speed
        deadline = time.perf_counter() + TICK_BUDGET
        while player.now < target and player.stopped is None and time.perf_counter() < deadline:
            player.advance_to(min(target, player.now + SLICE * self.speed))
        self.behind = player.now < target and player.stopped is None
        player.drain()
        if player.stopped:
            self.playing = False
        self.dirty = True

    def _reapable(self, now: float) -> bool:
        if self.closing:
            return True
        timeout = self.limits["VIEWER_TIMEOUT"]
        for viewer, seen in list(self.viewers.items()):
            if now - seen > timeout:
                del self.viewers[viewer]
        if self.viewers:
            self.idle_since = None
            return False
        self.idle_since = self.idle_since or now
        return now - self.idle_since > self.limits["IDLE_REAP_SECONDS"]

    # -- output -----------------------------------------------------------------------------------------------
    def render(self, message: str = "", *, full: bool) -> str:
        """A frame: with every diagram for a joining viewer, else with the diagrams changed since the last one."""
        current = drawings(self.player)
        script = self.player.scenario.script
        with_script = full or script != self.published_script
        if full:
            diagrams = current
        else:
            diagrams = {name: drawing for name, drawing in current.items() if self.published.get(name) != drawing}
            self.published, self.published_script = current, script
        ctx = context(
            self.player,
            run_id=self.id,
            frame=self.frame,
            playing=self.playing,
            speed=self.speed,
            log=self.limits["LOG_EVENTS_PER_FRAME"],
            viewers=len(self.viewers),
            message=message,
            diagrams=diagrams,
            with_script=with_script,
            behind=self.behind and self.playing,
        )
        return render_frame(ctx)

    async def publish(self, message: str = "") -> None:
        self.frame += 1
        html = self.render(message, full=False)
        self.dirty = False
        self.last_frame = time.monotonic()
        await self.layer.group_send(view_group(self.id), _frame_message(html))

    # -- commands ---------------------------------------------------------------------------------------------
    async def handle(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        viewer = message.get("viewer")
        if isinstance(viewer, str):
            self.viewers[viewer] = time.monotonic()
        if action == "hello":  # a viewer joined: it gets a full frame of its own
            self.frame += 1
            await self.layer.send(viewer, _frame_message(self.render(full=True)))
            return
        if action == "keepalive":
            return
        if action == "leave":
            self.viewers.pop(viewer, None)
            return
        if action == "stop":
            self.closing = True
            return
        problem = self._apply(action, message)
        self.player.drain()
        await self.publish(problem or "")

    def _apply(self, action: Any, message: dict[str, Any]) -> str | None:
        player = self.player
        if action == "pause":
            self.playing = False
        elif action == "play":
            if player.stopped:
                return player.stopped
            self.playing = True
        elif action == "step":
            self.playing = False
            player.step()
        elif action == "speed":
            speed = float(message["speed"])
            self.speed = min(max(speed, self.limits["MIN_SPEED"]), self.limits["MAX_SPEED"])
        elif action == "seek":
            t = float(message["t"])
            self.playing = False
            player.seek(t)
        elif action == "reset":
            self.playing = False
            player.seek(0.0)
        elif action == "command":
            try:  # checked again here: whatever reaches the script must replay
                name, args = parse_command(player.pattern, message.get("command"), dict(message.get("args") or ()))
                player.act(name, args)
            except ValueError as exc:
                return str(exc)
        else:
            return f"unknown action {action!r}"
        return None


def _frame_message(html: str) -> dict[str, str]:
    return {"type": "run.frame", "html": html}


class RunHost:
    """The runs this process plays, with the per-client and per-process bounds from settings."""

    def __init__(self) -> None:
        self.runs: dict[str, LiveRun] = {}

    def start(self, pattern: Pattern, scenario: Scenario, *, client: str, owner: str) -> LiveRun:
        limits = settings.PLAYGROUND
        if len(self.runs) >= limits["MAX_RUNS_PER_PROCESS"]:
            raise RunLimitError("The server is running as many simulations as it can; try again in a minute.")
        mine = sum(1 for run in self.runs.values() if run.client == client)
        if mine >= limits["MAX_RUNS_PER_CLIENT"]:
            raise RunLimitError(
                f"You already have {mine} live runs open (the limit is {limits['MAX_RUNS_PER_CLIENT']}); "
                "close a tab or wait a minute for idle runs to stop."
            )
        run = LiveRun(pattern, scenario, client, owner)
        self.runs[run.id] = run
        run.task = asyncio.create_task(run.main())
        run.task.add_done_callback(lambda _task: self.runs.pop(run.id, None))
        return run

    async def shutdown(self) -> None:
        tasks = [run.task for run in self.runs.values() if run.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.runs.clear()


host = RunHost()
