"""Connections per client counted in the store, so the cap holds across web processes: two stores on one Redis
are two processes; a process that dies stops renewing its connections and they lapse."""

import secrets

import pytest

from patterns.core import store as store_module
from patterns.core.store import CONNECTION_SECONDS, LocalStore, RedisStore


@pytest.fixture(params=["local", "redis"])
def stores(request):
    """Two processes' views of one store."""
    if request.param == "local":
        one = LocalStore()
        return one, one
    url = request.getfixturevalue("redis_url")
    return RedisStore(url), RedisStore(url)


def later(monkeypatch, seconds):
    """Move both of the store's clocks ``seconds`` on."""
    monotonic, wall = store_module.time.monotonic, store_module.time.time
    monkeypatch.setattr(store_module.time, "monotonic", lambda: monotonic() + seconds)
    monkeypatch.setattr(store_module.time, "time", lambda: wall() + seconds)


async def test_the_cap_holds_across_processes_and_a_closed_connection_frees_its_slot(stores):
    first, second = stores
    client = f"client-{secrets.token_hex(4)}"
    assert await first.open_connection(client, "a", 3)
    assert await second.open_connection(client, "b", 3)
    assert await first.open_connection(client, "c", 3)
    assert not await second.open_connection(client, "d", 3)
    assert not await first.open_connection(client, "e", 3)  # a refused one took no slot
    assert await second.open_connection("another client", "f", 3)
    await first.close_connection(client, "a")
    assert await second.open_connection(client, "d", 3)
    assert not await first.open_connection(client, "g", 3)


async def test_a_dead_process_s_connections_lapse_and_a_live_one_s_are_renewed(stores, monkeypatch):
    alive, killed = stores
    client = f"client-{secrets.token_hex(4)}"
    assert await alive.open_connection(client, "kept", 2)
    assert await killed.open_connection(client, "lost", 2)
    assert not await alive.open_connection(client, "new", 2)
    later(monkeypatch, CONNECTION_SECONDS / 2)
    await alive.renew_connections({"kept": client})  # the killed process renews nothing
    later(monkeypatch, CONNECTION_SECONDS * 0.9)
    assert await alive.open_connection(client, "new", 2)  # "lost" lapsed, "kept" still counts
    assert not await alive.open_connection(client, "one too many", 2)


async def test_renewing_does_not_count_again_a_connection_closed_meanwhile(stores):
    first, _ = stores
    client = f"client-{secrets.token_hex(4)}"
    assert await first.open_connection(client, "a", 1)
    await first.close_connection(client, "a")
    await first.renew_connections({"a": client})  # a renewal that read the open connections before the close
    assert await first.open_connection(client, "b", 1)
