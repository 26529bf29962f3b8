"""Where every process sees the live runs: their state, who holds them, and the per-client counters.

A run's state is small (pattern, Share-link query, virtual time, playing, speed, client) and enough to rebuild it
anywhere by deterministic replay. The worker that holds a run keeps a lease on it and renews it; a run in the set
of live runs whose lease has lapsed is an orphan, and the first worker to claim it replays it. A lease is a token
of its claim (``worker#n``), not just the worker's name: a state is saved only by the holder of the current token,
so a worker that stalled past its lease and lost the run cannot write over the new holder's state. Counters with
an expiry bound what one client may do across all processes (runs, commands per second, open connections and
downloads: each web process renews its own, so those of a process that was killed lapse).

`RedisStore` is the store when ``REDIS_URL`` is set. `LocalStore` keeps the same data in the web process's memory
for the default pool (its workers reach it through the bridge), with the same semantics and wall-clock expiry.
"""

from __future__ import annotations

import json
import time
from typing import Any

LEASE_SECONDS = 1.5  # a worker silent for this long loses its runs (renewed every eighth of it: see `workers`)
STATE_SECONDS = 3600.0  # a run's saved state outlives its lease by this much, for the Share link of a lost run
CONNECTION_SECONDS = 30.0  # an open websocket not renewed for this long (its process died) stops counting


def worker_of(token: str) -> str:
    """The worker that holds a lease token (``worker#n``: a worker names each of its claims)."""
    return token.rpartition("#")[0]


class Slots:
    """Counted open things of a client, in every process (its websockets, its downloads), each with an expiry that
    its process renews, so that those of a killed process stop counting. The connection methods are the kind
    ``connections``."""

    async def open_slot(self, kind: str, client: str, key: str, limit: int, seconds: float) -> bool:
        raise NotImplementedError

    async def close_slot(self, kind: str, client: str, key: str) -> None:
        raise NotImplementedError

    async def renew_slots(self, kind: str, open_: dict[str, str], seconds: float) -> None:
        raise NotImplementedError

    async def open_connection(self, client: str, key: str, limit: int) -> bool:
        """Count connection ``key`` of ``client`` unless it has ``limit`` live ones already; say whether it did."""
        return await self.open_slot("connections", client, key, limit, CONNECTION_SECONDS)

    async def close_connection(self, client: str, key: str) -> None:
        await self.close_slot("connections", client, key)

    async def renew_connections(self, open_: dict[str, str]) -> None:
        """Keep counting this process's open connections (key -> client)."""
        await self.renew_slots("connections", open_, CONNECTION_SECONDS)


class LocalStore(Slots):
    """One process's store: plain dictionaries, expiry checked on read. Each method runs without yielding to the
    event loop, so each is atomic, as the Redis scripts are."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.leases: dict[str, tuple[str, float]] = {}  # run id -> (token, until)
        self.client_runs: dict[str, dict[str, float]] = {}
        self.counters: dict[str, tuple[int, float]] = {}
        self.slots: dict[tuple[str, str], dict[str, float]] = {}  # (kind, client) -> key -> until

    async def save(self, run_id: str, state: dict[str, Any], token: str) -> bool:
        """Keep a run's state, only for the holder of its lease (a worker that lost it must not write over it)."""
        if await self.holder(run_id) != token:
            return False
        self.states[run_id] = dict(state)
        return True

    async def load(self, run_id: str) -> dict[str, Any] | None:
        return self.states.get(run_id)

    async def forget(self, run_id: str, token: str, client: str) -> None:
        """Drop a run that ended, unless another worker holds it now."""
        if await self.holder(run_id) not in (None, token):
            return
        self.states.pop(run_id, None)
        self.leases.pop(run_id, None)
        self.client_runs.get(client, {}).pop(run_id, None)

    async def claim(self, run_id: str, token: str, client: str) -> bool:
        """Take the lease on a run that no one holds."""
        if await self.holder(run_id) is not None:
            return False
        self._lease(run_id, token, client)
        return True

    async def renew(self, leases: dict[str, tuple[str, str]]) -> list[str]:
        """Extend the leases (run id -> (token, client)) of one worker; return the runs it lost. A lease that lapsed
        with no one claiming the run meanwhile is still this worker's (no one else can have played it)."""
        lost = []
        for run_id, (token, client) in leases.items():
            holder = await self.holder(run_id)
            if holder == token or (holder is None and run_id in self.states):
                self._lease(run_id, token, client)
            else:
                lost.append(run_id)
        return lost

    def _lease(self, run_id: str, token: str, client: str) -> None:
        until = time.monotonic() + LEASE_SECONDS
        self.leases[run_id] = (token, until)
        self.client_runs.setdefault(client, {})[run_id] = until

    async def release(self, worker: str) -> None:
        """End the leases of a worker known to be dead (the pool saw its process exit): its runs are orphans now,
        not in LEASE_SECONDS."""
        for run_id, (token, _until) in list(self.leases.items()):
            if worker_of(token) == worker:
                del self.leases[run_id]

    async def holder(self, run_id: str) -> str | None:
        """The token of the lease on a run, if one is live."""
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

    async def open_slot(self, kind: str, client: str, key: str, limit: int, seconds: float) -> bool:
        now = time.monotonic()
        live = {k: until for k, until in self.slots.get((kind, client), {}).items() if until > now}
        if len(live) >= limit:
            return False
        live[key] = now + seconds
        self.slots[kind, client] = live
        return True

    async def close_slot(self, kind: str, client: str, key: str) -> None:
        live = self.slots.get((kind, client), {})
        live.pop(key, None)
        if not live:
            self.slots.pop((kind, client), None)

    async def renew_slots(self, kind: str, open_: dict[str, str], seconds: float) -> None:
        until = time.monotonic() + seconds
        for key, client in open_.items():
            if key in self.slots.get((kind, client), {}):  # as Redis's ``xx``: a closed one is not counted again
                self.slots[kind, client][key] = until


# Lease changes as Redis scripts, each atomic: a lease that lapses between a read and a write cannot be extended
# for a worker that has lost it. KEYS: the lease, the client's runs, the state; ARGV: token, lease ms, run id, until.
SCRIPTS = {
    "claim": """
if redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2], 'nx') then
  redis.call('zadd', KEYS[2], ARGV[4], ARGV[3])
  return 1
end
return 0
""",
    "renew": """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] or (not holder and redis.call('exists', KEYS[3]) == 1) then
  redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
  redis.call('zadd', KEYS[2], ARGV[4], ARGV[3])
  return 1
end
return 0
""",
    # KEYS: the lease, the state, the set of runs; ARGV: token, state JSON, state seconds, run id.
    "save": """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2], 'ex', ARGV[3])
redis.call('sadd', KEYS[3], ARGV[4])
return 1
""",
    # KEYS: the lease, the state, the set of runs, the client's runs; ARGV: token, run id.
    "forget": """
local holder = redis.call('get', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1], KEYS[2])
redis.call('srem', KEYS[3], ARGV[2])
redis.call('zrem', KEYS[4], ARGV[2])
return 1
""",
}


class RedisStore(Slots):
    """The same store in Redis, shared by every web and worker process that has the same ``REDIS_URL``."""

    PREFIX = "playground:"

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self.redis = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self.scripts = {name: self.redis.register_script(source) for name, source in SCRIPTS.items()}

    def _key(self, *parts: str) -> str:
        return self.PREFIX + ":".join(parts)

    def _lease_call(self, name: str, run_id: str, token: str, client: str, on: Any = None) -> Any:
        keys = [self._key("lease", run_id), self._key("client", client), self._key("state", run_id)]
        args = [token, int(LEASE_SECONDS * 1000), run_id, time.time() + LEASE_SECONDS]
        return self.scripts[name](keys=keys, args=args, client=on)

    async def save(self, run_id: str, state: dict[str, Any], token: str) -> bool:
        keys = [self._key("lease", run_id), self._key("state", run_id), self._key("runs")]
        return bool(await self.scripts["save"](keys=keys, args=[token, json.dumps(state), int(STATE_SECONDS), run_id]))

    async def load(self, run_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self._key("state", run_id))
        return json.loads(raw) if raw else None

    async def forget(self, run_id: str, token: str, client: str) -> None:
        keys = [self._key("lease", run_id), self._key("state", run_id), self._key("runs"), self._key("client", client)]
        await self.scripts["forget"](keys=keys, args=[token, run_id])

    async def claim(self, run_id: str, token: str, client: str) -> bool:
        return bool(await self._lease_call("claim", run_id, token, client))

    async def renew(self, leases: dict[str, tuple[str, str]]) -> list[str]:
        if not leases:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for run_id, (token, client) in leases.items():
            await self._lease_call("renew", run_id, token, client, on=pipe)  # queued: runs on execute()
        kept = await pipe.execute()
        return [run_id for run_id, ok in zip(leases, kept, strict=True) if not ok]

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

    async def open_slot(self, kind: str, client: str, key: str, limit: int, seconds: float) -> bool:
        """Add, then count: two processes adding the last slot at once may both refuse, never both accept."""
        now, name = time.time(), self._key(kind, client)
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(name, "-inf", now)
        pipe.zadd(name, {key: now + seconds})
        pipe.expire(name, int(seconds) + 1)
        pipe.zcard(name)
        *_, count = await pipe.execute()
        if count <= limit:
            return True
        await self.redis.zrem(name, key)
        return False

    async def close_slot(self, kind: str, client: str, key: str) -> None:
        await self.redis.zrem(self._key(kind, client), key)

    async def renew_slots(self, kind: str, open_: dict[str, str], seconds: float) -> None:
        until = time.time() + seconds
        pipe = self.redis.pipeline()
        for key, client in open_.items():
            pipe.zadd(self._key(kind, client), {key: until}, xx=True)
            pipe.expire(self._key(kind, client), int(seconds) + 1)
        await pipe.execute()
