"""events.jsonl: simulated in a worker, streamed back in chunks, byte-identical to the CLI, bounded in events and
CPU per download and in downloads per client, and stopped in the worker when its client goes away."""

import asyncio
import http.client
import json
import os
import subprocess

import pytest
from channels.layers import channel_layers
from django.conf import settings
from django.test import override_settings

from patterns.core import runtime
from patterns.core.export import Export, event_lines
from patterns.core.player import Player
from patterns.core.scenario import decode_query
from playground.asgi import application

from .test_workers import daphne_on
from .toy import TOY

HEAVY = "/patterns/load-balancing/events.jsonl?rate=2000&servers=32&algorithms=rr.random.lc.p2c&until=600"


@pytest.fixture(autouse=True)
async def inline_worker():
    """Downloads are simulated by the worker inside the test's process (the same code as in a pool worker)."""
    channel_layers.backends = {}
    with override_settings(PLAYGROUND={**settings.PLAYGROUND, "WORKERS": 0}):
        yield
        await runtime.shutdown()


def limits(**changes):
    return override_settings(PLAYGROUND={**settings.PLAYGROUND, **changes})


def cli_lines(query, until):
    scenario = decode_query(TOY, query, limits=settings.PLAYGROUND)
    return "".join(line + "\n" for line in event_lines(Player(TOY, scenario, settings.PLAYGROUND), until))


async def body(response):
    return b"".join([part async for part in response.streaming_content]).decode()


async def test_the_download_streams_in_many_parts_and_is_byte_identical_to_the_cli(async_client):
    query = "seed=3&rate=400&do=1:bump:node=0,by=2"
    response = await async_client.get(f"/patterns/toy/events.jsonl?{query}&until=40")
    parts = [part async for part in response.streaming_content]
    assert response.status_code == 200 and len(parts) > 10
    assert b"".join(parts).decode() == cli_lines(query, 40.0)
    assert response["X-Simulated-By"] == "inline"  # the worker's name


async def test_events_download_is_the_same_stream_as_the_cli(async_client):
    response = await async_client.get("/patterns/toy/events.jsonl?seed=4&until=3&do=1:bump:node=0,by=2")
    events = [json.loads(line) for line in (await body(response)).splitlines()]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert all(e["t"] <= 3 for e in events) and any(e["type"] == "echo" for e in events)


async def test_a_download_beyond_the_budget_is_refused_up_front_with_the_cli_command(async_client):
    response = await async_client.get(HEAVY)
    text = response.content.decode()
    assert response.status_code == 422
    assert "This download would take about" in text
    command = (
        ".venv/bin/python manage.py simulate load-balancing "
        "--link '?seed=1&algorithms=rr.random.lc.p2c&rate=2000&servers=32' --until 600"
    )
    assert text.endswith(f"\n{command}\n")


async def test_a_run_heavier_than_its_probe_stops_at_the_budget_and_says_how_to_get_the_rest(async_client, monkeypatch):
    monkeypatch.setattr(Export, "projected_over", lambda self: None)  # the probe judged it light
    with limits(EXPORT_MAX_EVENTS=300, EXPORT_CPU_SECONDS=60.0):
        response = await async_client.get("/patterns/toy/events.jsonl?rate=500&until=40")
        lines = (await body(response)).splitlines()
    assert response.status_code == 200
    assert lines[:-1] == cli_lines("rate=500", 40.0).splitlines()[:300]
    assert json.loads(lines[-1])["error"].startswith("stopped at this download's limit of events or CPU")
    assert "manage.py simulate toy" in lines[-1]


async def test_a_client_gets_only_so_many_downloads_at_once(async_client):
    with limits(EXPORTS_PER_CLIENT=1):
        first = await async_client.get("/patterns/toy/events.jsonl?rate=400&until=40")  # opened, not read yet
        second = await async_client.get("/patterns/toy/events.jsonl?rate=400&until=40")
        assert first.status_code == 200 and second.status_code == 429
        assert "Too many downloads at once from your address (at most 1)" in second.content.decode()
        await body(first)  # read to its end, it no longer counts
        third = await async_client.get("/patterns/toy/events.jsonl?rate=400&until=1")
        assert third.status_code == 200


class HttpClient:
    """An ASGI HTTP client that reads the first part of a response, then stops reading and goes away."""

    def __init__(self, path, query):
        self.scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": query.encode(),
            "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        self.inbox = asyncio.Queue()
        self.inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        self.body = asyncio.Queue()

    async def receive(self):
        return await self.inbox.get()

    async def send(self, message):
        if message["type"] == "http.response.body":
            await self.body.put(message.get("body", b""))
            await asyncio.Event().wait()  # reads no more: the server's writes wait, as on a full socket

    def go_away(self):
        self.inbox.put_nowait({"type": "http.disconnect"})


async def test_a_client_that_goes_away_stops_its_download_in_the_worker():
    with limits(EXPORT_MAX_EVENTS=10**5, EXPORT_CPU_SECONDS=60.0):  # a probe of 10,000 events, then the rest
        live = await runtime.runtime()
        client = HttpClient("/patterns/toy/events.jsonl", "rate=300&until=100")  # 90,000 events
        app = asyncio.create_task(application(client.scope, client.receive, client.send))
        assert await asyncio.wait_for(client.body.get(), 20)  # the first chunk: the worker is simulating it
        (job,) = live.worker.exports.values()
        client.go_away()
        await asyncio.wait_for(app, 10)
        for _ in range(200):  # the cancel reaches the worker through the channel layer
            if not live.worker.exports:
                break
            await asyncio.sleep(0.01)
        assert live.worker.exports == {}
        assert not job.finished and job.export.player.now < 100
        stopped_at = job.export.player.now
        await asyncio.sleep(0.2)
        assert job.export.player.now == stopped_at  # and nothing simulates it any more


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    response = conn.getresponse()
    return response, response.read()


def test_in_the_default_pool_a_download_is_simulated_by_a_worker_process_not_the_web_process(tmp_path):
    with daphne_on(tmp_path, {"PLAYGROUND_WORKERS": "2"}) as (daphne, port):
        assert get(port, "/patterns/load-balancing/events.jsonl?until=1")[0].status == 200  # the pool is up
        pool = subprocess.run(["pgrep", "-P", str(daphne.pid)], capture_output=True, text=True).stdout.split()
        before = {pid: cpu_seconds(pid) for pid in [str(daphne.pid), *pool]}
        response, data = get(port, "/patterns/load-balancing/events.jsonl?rate=500&until=60")
        assert response.status == 200 and len(data) > 1_000_000
        assert response.getheader("X-Simulated-By").startswith("pool-")
        spent = {pid: cpu_seconds(pid) - was for pid, was in before.items()}
        web = spent.pop(str(daphne.pid))
        assert max(spent.values()) > 2 * web  # the simulating was a worker's; daphne only wrote it out
