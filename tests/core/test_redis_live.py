"""One run, two daphne processes, one Redis: a viewer on the other process watches and steers the run."""

import html
import json
import re
import time

import pytest
from websockets.sync.client import connect

from ..conftest import free_port, start_daphne

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def two_servers(redis_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redis-daphne")
    ports = [free_port(), free_port()]
    procs = [start_daphne(tmp, port, {"REDIS_URL": redis_url}) for port in ports]
    yield ports
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def frames(ws, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        match = re.search(r'id="frame-data" hidden data-frame="([^"]*)"', text)
        if match:
            yield json.loads(html.unescape(match.group(1)))
    raise TimeoutError("no matching frame")


def wait_for(ws, where):
    return next(f for f in frames(ws) if where(f))


def test_a_viewer_in_another_process_watches_and_steers_the_same_run(two_servers):
    a, b = two_servers
    with connect(f"ws://127.0.0.1:{a}/ws/patterns/circuit-breaker/", origin=f"http://127.0.0.1:{a}") as owner:
        owner.send(json.dumps({"action": "start", "seed": "4"}))
        first = wait_for(owner, lambda f: f["run"])
        url = f"ws://127.0.0.1:{b}/ws/patterns/circuit-breaker/?run={first['run']}"
        with connect(url, origin=f"http://127.0.0.1:{b}") as viewer:
            joined = wait_for(viewer, lambda f: f["run"] == first["run"])
            assert joined["link"].startswith("/patterns/circuit-breaker/?seed=4")
            viewer.send(json.dumps({"action": "pause"}))
            paused = wait_for(owner, lambda f: not f["playing"])
            viewer.send(json.dumps({"action": "command", "command": "outage_on", "service": "downstream"}))
            acted = wait_for(owner, lambda f: ":outage_on" in f["link"])
            seen = wait_for(viewer, lambda f: f["link"] == acted["link"])
            assert seen["t"] == acted["t"] >= paused["t"]
