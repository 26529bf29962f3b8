"""Where every process sees the live runs: their state, who holds them, and the per-client counters.

A run's state is small (pattern, Share-link query, virtual time, playing, speed, client) and enough to rebuild it
anywhere by deterministic replay. The worker that holds a run keeps a lease on it and renews it; a run in the set
of live runs whose lease has lapsed is an orphan, and the first worker to claim it replays it. Counters with an
expiry bound what one client may do across all processes (runs, commands per second, open connections: each
web process renews its own connections, so those of a process that was killed lapse).

`RedisStore` is the store when ``REDIS_URL`` is set. `LocalStore` keeps the same data in the web process's memory
for the default pool (its workers reach it through the bridge), with the same semantics and wall-clock expiry.
"""

from __future__ import annotations

import json
import time
from typing import Any

LEASE_SECONDS = 4.0  # a worker silent for this long (a loaded host stalls it for seconds) loses its runs
STATE_SECONDS = 3600.0  # a run's saved state outlives its lease by this much, for the Share link of a lost run
CONNECTION_SECONDS = 30.0  # an open websocket not renewed for this long (its process died) stops counting


class Leases:
    """What both stores do with `claim`."""

    async def claim(self, run_id: str, worker: str, client: str) -> bool:
        raise NotImplementedError

    async def renew(self, worker: str, runs: dict[str, str]) -> list[str]:
        """Extend the leases of ``runs`` (run id -> client) held by ``worker``; return the ones it lost."""
        return [run_id for run_id, client in runs.items() if not await self.claim(run_id, worker, client)]


class LocalStore(Leases):
    """One process's store: plain dictionaries, expiry checked on read."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self.client_runs: dict[str, dict[str, float]] = {}
        self.counters: dict[str, tuple[int, float]] = {}
        self.connections: dict[str, dict[str, float]] = {}  # client -> connection key -> until

    async def save(self, run_id: str, state: dict[str, Any]) -> None:
        self.states[run_id] = dict(state)

    async def load(self, run_id: str) -> dict[str, Any] | None:
        return self.states.get(run_id)

    async def forget(self, run_id: str, worker: str) -> None:
        """Drop a run that ended, unless another worker holds it now."""
        holder = self.leases.get(run_id)
        if holder and holder[0] != worker and holder[1] > time.monotonic():
            return
        state = self.states.pop(run_id, None)
        self.leases.pop(run_id, None)
        if state:
            self.client_runs.get(state["client"], {}).pop(run_id, None)

    async def claim(self, run_id: str, worker: str, client: str) -> bool:
        now = time.monotonic()
        holder = self.leases.get(run_id)
        if holder and holder[1] > now and holder[0] != worker:
            return False
        self.leases[run_id] = (worker, now + LEASE_SECONDS)
        self.client_runs.setdefault(client, {})[run_id] = now + LEASE_SECONDS
        return True

    async def holder(self, run_id: str) -> str | None:
        holder = self.leases.get(run_id)
        return holder[0] if holder and holder[1] > time.monotonic() else None

    async def orphans(self) -> list[str]:
        return [run_id for run_id in self.states if await self.holder(run_id) is None]

    async def runs_of(self, client: str) -> int:
        now = time.monotonic()
        runs = self.client_runs.get(client, {})
        for run_id in [r for r, until in runs.items() if until <= now and r not in self.states]:
            del runs[run_id]
        return len(runs)

    async def hit(self, key: str, window: float) -> int:
        """Count one more use of ``key`` in the current window of ``window`` seconds; return the count."""
        now = time.monotonic()
        count, until = self.counters.get(key, (0, 0.0))
        if until <= now:
            count, until = 0, now + window
        self.counters[key] = (count + 1, until)
        if len(self.counters) > 10_000:
            self.counters = {k: v for k, v in self.counters.items() if v[1] > now}
        return count + 1

    async def open_connection(self, client: str, key: str, limit: int) -> bool:
        """Count connection ``key`` of ``client`` unless it has ``limit`` live ones already; say whether it did."""
        now = time.monotonic()
        live = {k: until for k, until in self.connections.get(client, {}).items() if until > now}
        if len(live) >= limit:
            return False
        live[key] = now + CONNECTION_SECONDS
        self.connections[client] = live
        return True

    async def close_connection(self, client: str, key: str) -> None:
        live = self.connections.get(client, {})
        live.pop(key, None)
        if not live:
            self.connections.pop(client, None)

    async def renew_connections(self, open_: dict[str, str]) -> None:
        """Keep counting this process's open connections (key -> client)."""
        until = time.monotonic() + CONNECTION_SECONDS
        for key, client in open_.items():
            if key in self.connections.get(client, {}):  # as Redis's ``xx``: a closed one is not counted again
                self.connections[client][key] = until


class RedisStore(Leases):
    """The same store in Redis, shared by every web and worker process that has the same ``REDIS_URL``."""

    PREFIX = "playground:"

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self.redis = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)

    def _key(self, *parts: str) -> str:
        return self.PREFIX + ":".join(parts)

    async def save(self, run_id: str, state: dict[str, Any]) -> None:
        await self.redis.set(self._key("state", run_id), json.dumps(state), ex=int(STATE_SECONDS))
        await self.redis.sadd(self._key("runs"), run_id)

    async def load(self, run_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self._key("state", run_id))
        return json.loads(raw) if raw else None

    async def forget(self, run_id: str, worker: str) -> None:
        holder = await self.holder(run_id)
        if holder not in (None, worker):
            return
        state = await self.load(run_id)
        pipe = self.redis.pipeline()
        pipe.delete(self._key("state", run_id), self._key("lease", run_id))
        pipe.srem(self._key("runs"), run_id)
        if state:
            pipe.zrem(self._key("client", state["client"]), run_id)
        await pipe.execute()

    async def claim(self, run_id: str, worker: str, client: str) -> bool:
        ms = int(LEASE_SECONDS * 1000)
        key = self._key("lease", run_id)
        if not await self.redis.set(key, worker, px=ms, nx=True):
            if (await self.redis.get(key) or b"").decode() != worker:
                return False
            await self.redis.pexpire(key, ms)
        await self.redis.zadd(self._key("client", client), {run_id: time.time() + LEASE_SECONDS})
        return True

    async def holder(self, run_id: str) -> str | None:
        raw = await self.redis.get(self._key("lease", run_id))
        return raw.decode() if raw else None

    async def orphans(self) -> list[str]:
        run_ids = sorted(r.decode() for r in await self.redis.smembers(self._key("runs")))
        if not run_ids:
            return []
        pipe = self.redis.pipeline()
        for run_id in run_ids:
            pipe.exists(self._key("lease", run_id))
            pipe.exists(self._key("state", run_id))
        found = await pipe.execute()
        orphans = []
        for i, run_id in enumerate(run_ids):
            leased, stored = found[2 * i], found[2 * i + 1]
            if not stored:
                await self.redis.srem(self._key("runs"), run_id)
            elif not leased:
                orphans.append(run_id)
        return orphans

    async def runs_of(self, client: str) -> int:
        key = self._key("client", client)
        await self.redis.zremrangebyscore(key, "-inf", time.time())
        return await self.redis.zcard(key)

    async def hit(self, key: str, window: float) -> int:
        bucket = self._key("hits", key, str(int(time.time() / window)))
        pipe = self.redis.pipeline()
        pipe.incr(bucket)
        pipe.expire(bucket, max(1, int(window * 2)))
        count, _ = await pipe.execute()
        return int(count)

    async def open_connection(self, client: str, key: str, limit: int) -> bool:
        """Add, then count: two processes adding the last slot at once may both refuse, never both accept."""
        now, name = time.time(), self._key("connections", client)
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(name, "-inf", now)
        pipe.zadd(name, {key: now + CONNECTION_SECONDS})
        pipe.expire(name, int(CONNECTION_SECONDS) + 1)
        pipe.zcard(name)
        *_, count = await pipe.execute()
        if count <= limit:
            return True
        await self.redis.zrem(name, key)
        return False

    async def close_connection(self, client: str, key: str) -> None:
        await self.redis.zrem(self._key("connections", client), key)

    async def renew_connections(self, open_: dict[str, str]) -> None:
        until = time.time() + CONNECTION_SECONDS
        pipe = self.redis.pipeline()
        for key, client in open_.items():
            pipe.zadd(self._key("connections", client), {key: until}, xx=True)
            pipe.expire(self._key("connections", client), int(CONNECTION_SECONDS) + 1)
        await pipe.execute()
