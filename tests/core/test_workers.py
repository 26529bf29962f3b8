"""Workers: the CPU of a tick shared between clients, leases and orphans in the store, and the default pool."""

import asyncio
import contextlib
import json
import signal
import subprocess

import pytest
from channels.layers import InMemoryChannelLayer

from patterns.core import store as store_module
from patterns.core import workers
from patterns.core.bridge import SharedReceives
from patterns.core.store import LEASE_SECONDS, LocalStore

from ..conftest import free_port, start_daphne
from .test_redis_live import messages, viewer, wait_for


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class GreedyRun:
    """Spends every CPU second it is offered (on a fake clock)."""

    def __init__(self, client, clock):
        self.client, self.clock, self.cpu, self.offered = client, clock, 0.0, []

    def wants_cpu(self):
        return True

    def advance(self, wall, budget):
        self.offered.append(budget)
        self.clock.now += budget
        self.cpu = budget


def test_a_client_with_many_heavy_runs_gets_no_more_cpu_than_a_client_with_one(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(workers.time, "perf_counter", clock)
    worker = workers.Worker(layer=None, store=None, name="t")
    crowd = [GreedyRun("crowd", clock) for _ in range(5)]
    alone = GreedyRun("alone", clock)
    worker.runs = {str(i): run for i, run in enumerate([*crowd, alone])}
    for _ in range(3):
        started = clock.now
        worker.simulate(workers.TICK, list(worker.runs.values()))
        assert clock.now - started <= workers.PROCESS_SHARE * workers.TICK + 1e-9
        assert alone.offered[-1] == pytest.approx(sum(run.offered[-1] for run in crowd))
        assert alone.offered[-1] <= workers.RUN_SHARE


def test_what_a_light_client_leaves_goes_to_the_heavy_one(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(workers.time, "perf_counter", clock)
    worker = workers.Worker(layer=None, store=None, name="t")
    heavy = [GreedyRun("heavy", clock) for _ in range(4)]

    class Light(GreedyRun):
        def advance(self, wall, budget):
            self.offered.append(budget)
            self.cpu = 0.0

    light = Light("light", clock)
    worker.runs = {str(i): run for i, run in enumerate([light, *heavy])}
    worker.simulate(workers.TICK, list(worker.runs.values()))
    assert sum(run.offered[-1] for run in heavy) == pytest.approx(workers.PROCESS_SHARE * workers.TICK)


async def test_a_lease_not_renewed_makes_its_run_an_orphan_that_one_worker_claims(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(store_module.time, "monotonic", clock)
    store = LocalStore()
    state = {"client": "c", "pattern": "toy", "query": "seed=1"}
    assert not await store.save("r1", state, "w1#1")  # only the holder of a lease saves
    assert await store.claim("r1", "w1#1", "c") and await store.save("r1", state, "w1#1")
    assert not await store.claim("r1", "w2#1", "c") and await store.orphans() == []
    clock.now += LEASE_SECONDS / 2
    assert await store.renew({"r1": ("w1#1", "c")}) == []
    clock.now += LEASE_SECONDS * 0.9
    assert await store.holder("r1") == "w1#1" and await store.runs_of("c") == 1
    clock.now += LEASE_SECONDS  # w1 died
    assert await store.orphans() == ["r1"] and await store.holder("r1") is None
    assert await store.claim("r1", "w2#1", "c") and not await store.claim("r1", "w3#1", "c")
    assert await store.renew({"r1": ("w1#1", "c")}) == ["r1"]  # w1 was only stalled: it must let the run go
    assert not await store.save("r1", {**state, "t": 1.0}, "w1#1")  # and cannot write over w2's state
    await store.forget("r1", "w1#1", "c")  # nor end it for w2
    assert await store.load("r1") == state
    await store.forget("r1", "w2#1", "c")
    assert await store.load("r1") is None and await store.orphans() == [] and await store.runs_of("c") == 0


async def test_a_lease_that_lapsed_unclaimed_is_renewed_and_a_dead_worker_s_are_released_at_once(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(store_module.time, "monotonic", clock)
    store = LocalStore()
    assert await store.claim("r1", "pool-1-0.0#1", "c") and await store.save("r1", {"client": "c"}, "pool-1-0.0#1")
    clock.now += LEASE_SECONDS * 1.5  # a stall that no one used to take the run
    assert await store.renew({"r1": ("pool-1-0.0#1", "c")}) == [] and await store.holder("r1") == "pool-1-0.0#1"
    await store.release("pool-1-0")  # another worker's name: not this one's
    assert await store.orphans() == []
    await store.release("pool-1-0.0")  # its process exited
    assert await store.orphans() == ["r1"]


async def test_counters_count_within_their_window(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(store_module.time, "monotonic", clock)
    store = LocalStore()
    assert [await store.hit("k", 1.0) for _ in range(3)] == [1, 2, 3]
    clock.now += 1.0
    assert await store.hit("k", 1.0) == 1


@contextlib.contextmanager
def daphne_on(tmp_path, env):
    """A daphne of its own (killed at the end) and its port."""
    port = free_port()
    daphne = start_daphne(tmp_path, port, env)
    try:
        yield daphne, port
    finally:
        daphne.kill()
        daphne.wait(10)


def test_the_default_pool_simulates_off_the_web_process_and_outlives_a_killed_worker(tmp_path):
    with daphne_on(tmp_path, {"PLAYGROUND_WORKERS": "2"}) as (daphne, port), viewer(port) as ws:
        ws.send(json.dumps({"action": "start", "seed": "3"}))
        first = wait_for(ws, lambda f: f["run"] and f["t"] > 0.5, timeout=20)
        pool = subprocess.run(["pgrep", "-P", str(daphne.pid)], capture_output=True, text=True).stdout.split()
        assert len(pool) == 2  # the simulation runs there, not in daphne
        for pid in pool:  # whichever holds the run
            subprocess.run(["kill", f"-{signal.SIGKILL.value}", pid], check=True)
        next(text for text in messages(ws, timeout=20) if "another took it over" in text)
        later = wait_for(ws, lambda f: f["t"] > first["t"] + 0.5, timeout=10)
        assert later["run"] == first["run"] and later["link"] == first["link"]


def test_a_wrong_redis_address_is_told_to_the_viewer_without_a_traceback(tmp_path):
    with daphne_on(tmp_path, {"REDIS_URL": "redis://127.0.0.1:1/0"}) as (_daphne, port), viewer(port) as ws:
        ws.send(json.dumps({"action": "start", "seed": "3"}))
        said = next(text for text in messages(ws, timeout=15) if "messages" in text)
        assert "cannot reach its Redis" in said
    log = next(tmp_path.glob("daphne-*.log")).read_text()
    assert "Traceback" not in log


async def test_every_pool_worker_waiting_on_the_starts_gets_its_turn():
    layer = SharedReceives(InMemoryChannelLayer())
    waiting = [asyncio.create_task(layer.receive(workers.START_CHANNEL)) for _ in range(2)]
    await asyncio.sleep(0)
    for n in range(2):  # one at a time: the first taken empties the channel before the second arrives
        await layer.send(workers.START_CHANNEL, {"type": "run.start", "n": n})
        await asyncio.wait([*waiting, *layer.readers], timeout=0.1, return_when=asyncio.FIRST_COMPLETED)
    got = await asyncio.wait_for(asyncio.gather(*waiting), 2)  # on the bare in-memory layer the second waits forever
    assert sorted(m["n"] for m in got) == [0, 1]
    for task in layer.readers:
        task.cancel()
