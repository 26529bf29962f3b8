"""A worker: the process that simulates live runs, under one CPU budget shared fairly between clients.

This is Channels' worker model (`manage.py runworker` consuming a named channel) with the parts a live run needs
that a plain consumer cannot give: one tick loop that divides the process's CPU between clients and then between
each client's runs, leases renewed in the store, and orphans taken over. So the worker consumes the named channel
`START_CHANNEL` itself rather than through `channels.worker.Worker` (whose one-consumer-instance-per-message
scope would split the runs of a process into independent tasks, each timing itself, which is the very failure
that let five heavy runs stall a server). Starts are a work queue: each start reaches exactly one worker.

Budgets: each tick, at most `PROCESS_SHARE` of the tick's wall time goes to simulation; clients get equal
shares of it (the lightest first, so that what they leave goes to the others), and a client's share is split
between its runs and its events.jsonl downloads (`downloads`: the web process only writes them out). A run that
cannot keep up at its speed falls behind and says so.

Takeover: a worker renews its leases every `RENEW_EVERY` (an eighth of `LEASE_SECONDS`, one Redis round trip for
all its runs); one that stops (killed, stalled) loses its runs when their leases lapse, every other worker looks
for orphans every `SCAN_EVERY`, and the first to claim one replays it (deterministic engines: the same events, the
same bytes) to where it was. So a run goes on at most about ``LEASE_SECONDS + SCAN_EVERY`` after its worker died,
plus its replay; in the default pool sooner, as the web process releases a dead worker's leases at once. Never two
at once: a worker plays a run only while its own clock says its lease is live (counted from when it sent the last
renewal, so before the lease can lapse in the store), and only the holder of a run's current lease token saves
its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import socket
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from .downloads import EXPORT_CHANNEL, EXPORTS_PER_PROCESS, ExportJob
from .fanout import UNREACHABLE_RETRY
from .runs import SAVE_EVERY, LiveRun, cmd_group, view_group
from .store import LEASE_SECONDS

log = logging.getLogger(__name__)
START_CHANNEL = "playground-runs.start"
TICK = 0.025  # wall seconds between simulation steps
PROCESS_SHARE = 0.6  # of each tick's wall time, at most this much is simulation; the rest is I/O and rendering
RENDER_SHARE = 0.25  # of a core, at most, for rendering frames (every run of the process together)
RUN_SHARE = 0.015  # CPU seconds one run (or download) may use per tick, however idle the rest
RENEW_EVERY = LEASE_SECONDS / 8  # a stall of most of a lease is survived; a renewal is one round trip for all runs
SCAN_EVERY = LEASE_SECONDS / 8  # how late, at most, an orphan is seen after its lease lapsed
LAYER_RETRY = 0.5  # seconds to wait after a channel-layer or store error before trying again


def worker_name() -> str:
    return (
        os.environ.get("PLAYGROUND_WORKER_NAME") or f"{socket.gethostname()}-{os.getpid()}-{random.getrandbits(24):x}"
    )


@dataclass
class Lease:
    """A lease this worker holds: its token in the store, and until when (this process's monotonic clock) it is
    surely still live: from the sending of its last claim or renewal, which the store received after that."""

    token: str
    client: str
    until: float


class Worker:
    """Runs live runs; ``layer`` and ``store`` are the real ones or, in the default pool, proxies over the bridge."""

    def __init__(self, layer: Any, store: Any, name: str | None = None):
        self.layer, self.store = layer, store
        self.name = name or worker_name()
        self.limits = settings.PLAYGROUND
        self.runs: dict[str, LiveRun] = {}
        self.leases: dict[str, Lease] = {}  # run id -> the lease held on it
        self.exports: dict[str, ExportJob] = {}  # events.jsonl downloads being simulated here
        self.claims = itertools.count(1)
        self.channel = ""
        self.tasks: list[asyncio.Task] = []

    async def serve(self) -> None:
        """Run until cancelled."""
        self.channel = await self.layer.new_channel()
        jobs = (self._starts, self._downloads, self._commands, self._renew, self._scan, self._tick)
        self.tasks = [asyncio.create_task(job()) for job in jobs]
        log.info("worker %s: serving", self.name)
        try:
            await asyncio.gather(*self.tasks)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _forever(self, what: str, step) -> None:
        """Call ``step`` again and again; an error (a bad message, the layer or store down) only costs a pause."""
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except (OSError, RedisError) as exc:
                log.warning("worker %s: %s: cannot reach the channel layer or store: %s", self.name, what, exc)
                await asyncio.sleep(UNREACHABLE_RETRY)
            except Exception:
                log.exception("worker %s: %s failed", self.name, what)
                await asyncio.sleep(LAYER_RETRY)

    # -- runs arriving ----------------------------------------------------------------------------------------
    async def _starts(self) -> None:
        async def step() -> None:
            if len(self.runs) >= self.limits["MAX_RUNS_PER_PROCESS"]:
                await asyncio.sleep(1.0)  # full: leave new runs to the other workers
                return
            await self._start(await self.layer.receive(START_CHANNEL))

        await self._forever("starting a run", step)

    async def _start(self, message: dict[str, Any]) -> None:
        run_id = message["run"]
        state = {**message["state"], "t": 0.0, "playing": True, "speed": 1.0, "frame": 0}
        if not await self._claim(run_id, state["client"]):
            return
        run = LiveRun.resume(run_id, state)
        run.heard_from(message)
        await self._adopt(run)
        await self.layer.send(message["hub"], run.full_frame(message["viewer"]))

    async def _claim(self, run_id: str, client: str) -> bool:
        token, sent = f"{self.name}#{next(self.claims)}", time.monotonic()
        if not await self.store.claim(run_id, token, client):
            return False
        self.leases[run_id] = Lease(token, client, sent + LEASE_SECONDS)
        return True

    def holds(self, run_id: str, now: float) -> bool:
        lease = self.leases.get(run_id)
        return lease is not None and now < lease.until

    async def _adopt(self, run: LiveRun) -> None:
        self.runs[run.id] = run
        await self._save(run)
        await self.layer.group_add(cmd_group(run.id), self.channel)

    async def _save(self, run: LiveRun) -> None:
        lease = self.leases.get(run.id)
        if lease is not None and not await self.store.save(run.id, run.state(), lease.token):
            log.warning("worker %s: lost run %s to another worker", self.name, run.id)
            await self._drop(run.id)

    async def _take_over(self) -> None:
        if len(self.runs) >= self.limits["MAX_RUNS_PER_PROCESS"]:
            return
        for run_id in await self.store.orphans():
            state = await self.store.load(run_id)
            if state is None or run_id in self.runs or not await self._claim(run_id, state["client"]):
                continue
            try:
                run = LiveRun.resume(run_id, state)
            except ValueError:
                log.warning("worker %s: run %s cannot be rebuilt from its state", self.name, run_id)
                await self.store.forget(run_id, self.leases.pop(run_id).token, state["client"])
                continue
            log.info("worker %s: took over run %s at t=%.3f", self.name, run_id, run.replay_to)
            await self._adopt(run)
            await self.layer.group_send(view_group(run_id), {"type": "run.moved", "run": run_id})

    # -- downloads --------------------------------------------------------------------------------------------
    async def _downloads(self) -> None:
        async def step() -> None:
            if len(self.exports) >= EXPORTS_PER_PROCESS:
                await asyncio.sleep(0.25)  # full: leave new downloads to the other workers
                return
            message = await self.layer.receive(EXPORT_CHANNEL)
            if message.get("until_wall", 0) < time.time():  # its web process has stopped waiting for an answer
                return
            try:
                job = ExportJob(message, self.name, self.channel)
            except ValueError as exc:  # the web process checked the link: a worker of another version of the site
                log.warning("worker %s: cannot simulate download %s: %s", self.name, message.get("export"), exc)
                await self.layer.send(message["reply"], {"type": "export.opened", "problem": str(exc)})
                return
            self.exports[job.id] = job

        await self._forever("taking a download", step)

    def _download_command(self, message: dict[str, Any]) -> None:
        job = self.exports.get(message.get("export"))
        if job is None:
            return
        if message.get("action") == "cancel":  # its client went away
            del self.exports[job.id]
            log.info("worker %s: download %s cancelled at t=%.3f", self.name, job.id, job.export.player.now)
        else:
            job.hear(message)

    async def _send_downloads(self, now: float) -> None:
        for job in list(self.exports.values()):
            for message in job.outbox(now):
                await self.layer.send(job.reply, message)
            if job.over or job.abandoned(now):
                self.exports.pop(job.id, None)

    # -- steering ---------------------------------------------------------------------------------------------
    async def _commands(self) -> None:
        async def step() -> None:
            message = await self.layer.receive(self.channel)
            if message.get("type") == "export.command":
                self._download_command(message)
                return
            run = self.runs.get(message.get("run"))
            if run is not None:
                await self._steer(run, message)

        await self._forever("handling a command", step)

    async def _steer(self, run: LiveRun, message: dict[str, Any]) -> None:
        run.heard_from(message)
        action = message.get("action")
        if action == "hello":  # a viewer joined: it gets a full frame of its own
            await self.layer.send(message["hub"], run.full_frame(message["viewer"]))
        elif action == "stop":
            run.closing = run.closing or message.get("viewer") == run.owner
        elif action not in ("keepalive", "leave"):
            problem = run.apply(message)
            await self._publish(run, problem or "")
            await self._save(run)

    # -- time -------------------------------------------------------------------------------------------------
    async def _renew(self) -> None:
        async def step() -> None:
            await asyncio.sleep(RENEW_EVERY * random.uniform(0.8, 1.0))
            held, sent = dict(self.leases), time.monotonic()
            lost = set(await self.store.renew({run_id: (lease.token, lease.client) for run_id, lease in held.items()}))
            for run_id, lease in held.items():
                if self.leases.get(run_id) is not lease:  # ended meanwhile
                    continue
                if run_id in lost:  # another worker holds it now (this one stalled): let it go quietly
                    log.warning("worker %s: lost run %s to another worker", self.name, run_id)
                    await self._drop(run_id)
                else:
                    lease.until = sent + LEASE_SECONDS

        await self._forever("renewing leases", step)

    async def _scan(self) -> None:
        async def step() -> None:
            await asyncio.sleep(SCAN_EVERY * random.uniform(0.8, 1.0))
            await self._take_over()

        await self._forever("looking for orphaned runs", step)

    async def _tick(self) -> None:
        last = time.monotonic()

        async def step() -> None:
            nonlocal last
            await asyncio.sleep(TICK)
            now = time.monotonic()
            held = [run for run in self.runs.values() if self.holds(run.id, now)]
            self.simulate(now - last, [*held, *self.exports.values()])
            last = now
            for run in list(self.runs.values()):
                if not self.holds(run.id, now):  # not renewed in time: frozen until the store says whose it is
                    continue
                if run.reapable(now):
                    await self._end(run)
                elif run.dirty and now - run.last_frame >= self.frame_interval(run):
                    await self._publish(run)
                    if now - run.last_save >= SAVE_EVERY:
                        run.last_save = now
                        await self._save(run)
            await self._send_downloads(now)

        await self._forever("a tick", step)

    def simulate(self, wall: float, jobs: list[LiveRun | ExportJob]) -> None:
        """Share this tick's CPU: clients in equal parts, lightest first; each client's part between its runs and
        downloads."""
        clients: dict[str, list[LiveRun | ExportJob]] = defaultdict(list)
        for job in jobs:
            if job.wants_cpu():
                clients[job.client].append(job)
        budget = PROCESS_SHARE * TICK
        for i, (_client, mine) in enumerate(sorted(clients.items(), key=lambda item: sum(j.cpu for j in item[1]))):
            share = budget / (len(clients) - i)
            started = time.perf_counter()
            for k, job in enumerate(sorted(mine, key=lambda j: j.cpu)):
                spent = time.perf_counter() - started
                job.advance(wall, min(RUN_SHARE, max(0.0, share - spent) / (len(mine) - k)))
            budget -= time.perf_counter() - started

    def frame_interval(self, run: LiveRun) -> float:
        """Frames come as often as settings say, unless rendering them would take more than `RENDER_SHARE` of
        this process between all its runs: a run with huge frames then sends fewer, and no one else notices."""
        return max(self.limits["FRAME_INTERVAL"], run.render_cost * len(self.runs) / RENDER_SHARE)

    async def _publish(self, run: LiveRun, message: str = "") -> None:
        await self.layer.group_send(view_group(run.id), run.next_frame(message))

    async def _end(self, run: LiveRun) -> None:
        lease = self.leases.get(run.id)
        await self._drop(run.id)
        if lease is not None:
            await self.store.forget(run.id, lease.token, run.client)
        await self.layer.group_send(view_group(run.id), run.ended_frame())

    async def _drop(self, run_id: str) -> None:
        self.runs.pop(run_id, None)
        self.leases.pop(run_id, None)
        await self.layer.group_discard(cmd_group(run_id), self.channel)

    async def stop(self) -> None:
        """End every run of this worker (the tests' and the inline worker's shutdown)."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for run in list(self.runs.values()):
            with contextlib.suppress(Exception):
                await self._end(run)
