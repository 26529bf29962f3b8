"""The live runtime of one web process: its channel layer, store, hub and (without Redis) its worker pool.

``PLAYGROUND["WORKERS"]`` says where runs are simulated:

- with ``REDIS_URL``: in separate `manage.py runworkers` processes, on any machine; the web process starts none.
- without it: in that many worker processes started with the web process (`bridge.Pool`), so that
  `scripts/serve` alone still does everything;
- 0 without Redis: inside the web process (the tests' mode: fast to start, same worker code, no isolation).

Started on first use, once per event loop (a test's loop, daphne's loop).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from .bridge import Pool
from .fanout import Hub
from .store import LocalStore, RedisStore
from .workers import Worker


def make_store() -> Any:
    url = os.environ.get("REDIS_URL")
    return RedisStore(url) if url else LocalStore()


class Runtime:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.store = make_store()
        self.hub = Hub(self.layer, self.store)
        self.pool: Pool | None = None
        self.worker: Worker | None = None
        self.worker_task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.hub.start()
        if os.environ.get("REDIS_URL"):
            return
        workers = int(settings.PLAYGROUND["WORKERS"])
        if workers > 0:
            self.pool = Pool(workers, {"layer": self.layer, "store": self.store})
            self.pool.start()
        else:
            self.worker = Worker(self.layer, self.store, name="inline")
            self.worker_task = asyncio.create_task(self.worker.serve())

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
        if self.worker_task is not None:
            self.worker_task.cancel()
            await asyncio.gather(self.worker_task, return_exceptions=True)
        if self.pool is not None:
            await self.pool.stop()
        await self.hub.stop()


_runtimes: dict[asyncio.AbstractEventLoop, Runtime] = {}
_starting: dict[asyncio.AbstractEventLoop, asyncio.Future] = {}


async def runtime() -> Runtime:
    """This event loop's runtime, started on the first call."""
    loop = asyncio.get_running_loop()
    if loop in _runtimes:
        return _runtimes[loop]
    if loop not in _starting:
        _starting[loop] = loop.create_future()
        live = Runtime()
        await live.start()
        _runtimes[loop] = live
        _starting.pop(loop).set_result(live)
        return live
    return await asyncio.shield(_starting[loop])


async def shutdown() -> None:
    """Stop this loop's runtime (tests)."""
    live = _runtimes.pop(asyncio.get_running_loop(), None)
    if live is not None:
        await live.stop()
