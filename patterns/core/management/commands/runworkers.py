"""`manage.py runworkers`: simulate live runs for the web processes that share this one's channel layer and store.

With ``REDIS_URL`` set, start as many of these as you like, on any machine that reaches the Redis: each start of
a run goes to one of them, and when one dies the others take its runs over. ``--processes N`` starts N workers
from one command (one process each: a worker is one event loop, one CPU budget). ``--bridge-fd`` is internal: the
web process's default pool uses it to hand a worker its end of a socket pair (see `patterns.core.bridge`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from django.core.management.base import BaseCommand, CommandError

from patterns.core.bridge import connect_worker
from patterns.core.runtime import make_store
from patterns.core.workers import Worker


class Command(BaseCommand):
    help = "Simulate live runs for the web processes (needs REDIS_URL; without it the web process has its own pool)."

    def add_arguments(self, parser):
        parser.add_argument("--processes", type=int, default=1, help="worker processes to run (default 1)")
        parser.add_argument("--bridge-fd", type=int, default=None, help="internal: the default pool's socket")

    def handle(self, *args, processes: int, bridge_fd: int | None, **options):
        if bridge_fd is not None:
            asyncio.run(_bridged(bridge_fd))
            return
        if not os.environ.get("REDIS_URL"):
            raise CommandError("set REDIS_URL: without Redis the web process runs its own workers")
        if processes < 1:
            raise CommandError("--processes must be at least 1")
        if processes == 1:
            asyncio.run(_standalone())
            return
        children = [subprocess.Popen([sys.executable, *sys.argv[:2]]) for _ in range(processes)]
        try:
            for child in children:
                child.wait()
        except KeyboardInterrupt:
            for child in children:
                child.terminate()


async def _standalone() -> None:
    from channels.layers import get_channel_layer

    await Worker(get_channel_layer(), make_store()).serve()


async def _bridged(fd: int) -> None:
    """Serve until the web process closes its end of the socket."""
    client = await connect_worker(fd)
    worker = Worker(client.proxy("layer"), client.proxy("store"))
    serving = asyncio.create_task(worker.serve())
    await client.pump()
    serving.cancel()
