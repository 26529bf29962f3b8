"""The default worker pool: worker processes started by the web process, reaching its channel layer and store.

Without ``REDIS_URL`` the channel layer is Channels' in-memory layer, which lives inside one process and cannot
carry a message to another. Rather than a second transport with its own protocol, each worker gets a socket pair
to the web process, and every call it makes on the layer or the store (``send``, ``group_send``, ``receive``,
``save``, ``claim``, ...) is forwarded over it and awaited in the web process. A worker therefore runs exactly the
code it runs beside Redis, against the same interface; only the objects behind ``layer`` and ``store`` differ.
Messages are length-prefixed pickles: both ends are this program, started by the web process (the socket is
never exposed to anything else). A worker whose web process dies sees its socket close and exits; a worker that
dies is started again, and its runs are taken over by replay (`workers.Worker`): its socket closing tells the web
process at once, which releases its leases then, so the other workers take its runs over on their next look
instead of when the leases would have lapsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
HEADER = struct.Struct("!I")
RESTART_DELAY = 1.0  # seconds before a dead worker is started again
ROOT = Path(__file__).resolve().parent.parent.parent


async def _read(reader: asyncio.StreamReader) -> Any:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return pickle.loads(await reader.readexactly(size))


def _write(writer: asyncio.StreamWriter, message: Any) -> None:
    blob = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    writer.write(HEADER.pack(len(blob)) + blob)


class BridgeServer:
    """The web process's end: serves one worker's calls on ``targets`` until its socket closes."""

    def __init__(self, targets: dict[str, Any]):
        self.targets = targets

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        calls: set[asyncio.Task] = set()
        try:
            while True:
                request = await _read(reader)
                task = asyncio.create_task(self._call(writer, *request))
                calls.add(task)
                task.add_done_callback(calls.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for task in calls:
                task.cancel()
            writer.close()

    async def _call(self, writer: asyncio.StreamWriter, call_id: int, target: str, method: str, args: tuple) -> None:
        try:
            result = (True, await getattr(self.targets[target], method)(*args))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the worker raises it again on its side
            result = (False, exc)
        with contextlib.suppress(ConnectionError):
            _write(writer, (call_id, *result))


class BridgeClient:
    """A worker's end: ``client.proxy("layer")`` behaves as the web process's channel layer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.pending: dict[int, asyncio.Future] = {}
        self.next_id = 0

    async def pump(self) -> None:
        """Hand replies to their callers; returns when the web process has gone."""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                call_id, ok, value = await _read(self.reader)
                future = self.pending.pop(call_id, None)
                if future is None or future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def call(self, target: str, method: str, *args: Any) -> Any:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        _write(self.writer, (self.next_id, target, method, args))
        return await future

    def proxy(self, target: str) -> Proxy:
        return Proxy(self, target)


class Proxy:
    def __init__(self, client: BridgeClient, target: str):
        self._client, self._target = client, target

    def __getattr__(self, method: str) -> Any:
        async def call(*args: Any) -> Any:
            return await self._client.call(self._target, method, *args)

        return call


class SharedReceives:
    """The web process's layer as the pool's workers see it: a shared channel (a work queue such as the starts)
    is read by one task here and handed to whichever worker waits first.

    Channels' in-memory layer drops a channel's queue whenever it runs empty, so of two waiters on the same
    general channel the second is left on a queue nothing feeds; with one reader here every worker gets its turn.
    """

    def __init__(self, layer: Any):
        self.layer = layer
        self.queues: dict[str, asyncio.Queue] = {}
        self.readers: list[asyncio.Task] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.layer, name)

    async def receive(self, channel: str) -> Any:
        if "!" in channel:  # a worker's own channel: one reader already
            return await self.layer.receive(channel)
        if channel not in self.queues:
            self.queues[channel] = asyncio.Queue(maxsize=1)
            self.readers.append(asyncio.create_task(self._read(channel)))
        return await self.queues[channel].get()

    async def _read(self, channel: str) -> None:
        while True:
            await self.queues[channel].put(await self.layer.receive(channel))


class Pool:
    """Worker processes owned by this web process, each behind its own socket pair, restarted when they die."""

    def __init__(self, size: int, targets: dict[str, Any]):
        self.size = size
        self.store = targets["store"]
        self.layer = SharedReceives(targets["layer"])
        self.server = BridgeServer({**targets, "layer": self.layer})
        self.processes: list[subprocess.Popen] = []
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        for index in range(self.size):
            self.tasks.append(asyncio.create_task(self._keep(index)))

    async def _keep(self, index: int) -> None:
        for generation in itertools.count():
            ours, theirs = socket.socketpair()
            name = f"pool-{os.getpid()}-{index}.{generation}"  # never reused: a lease names the one that claimed it
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "runworkers", "--bridge-fd", str(theirs.fileno())],
                cwd=ROOT,
                pass_fds=[theirs.fileno()],
                env={**os.environ, "PLAYGROUND_WORKER_NAME": name},
            )
            theirs.close()
            self.processes.append(proc)
            reader, writer = await asyncio.open_connection(sock=ours)
            try:
                await self.server.serve(reader, writer)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.get_running_loop().run_in_executor(None, proc.wait)
                self.processes.remove(proc)
                await self.store.release(name)  # dead for sure now: its runs are orphans
            log.warning("worker %s (pid %s) stopped with %s; starting another", index, proc.pid, proc.returncode)
            await asyncio.sleep(RESTART_DELAY)

    async def stop(self) -> None:
        tasks = [*self.tasks, *self.layer.readers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()


async def connect_worker(fd: int) -> BridgeClient:
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd))
    return BridgeClient(reader, writer)
