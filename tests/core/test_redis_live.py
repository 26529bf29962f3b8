"""Runs across processes with Redis: two daphne web processes, two `runworkers` processes.

A viewer in the other web process watches and steers a run; a run whose worker is killed (-9) goes on in the other
worker within 5 s (the issue's bound), for the viewers of both web processes, with the same events a run never
interrupted has; a viewer whose web process is killed joins the run again from the other one. How soon a run goes
on, over many kills, is measured by `bench/takeover.py`.
"""

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis
from websockets.sync.client import connect

from patterns.core.frames import log_rows
from patterns.core.player import Player
from patterns.core.registry import get_pattern
from patterns.core.runs import scenario_of
from patterns.core.store import worker_of

from ..conftest import free_port, start_daphne
from ..support import ROOT

pytestmark = pytest.mark.redis
MOVED = "another took it over"
ROW = re.compile(
    r'<li data-seq="(\d+)" data-t="([^"]*)" data-type="([^"]*)"[^>]*>.*?<span class="detail">([^<]*)</span></li>'
)


def start_worker(tmp, name, env):
    log = open(tmp / f"worker-{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "manage.py", "runworkers"],
        cwd=ROOT,
        env={**os.environ, **env, "PLAYGROUND_WORKER_NAME": name, "PLAYGROUND_VAR_DIR": str(tmp)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def cluster(redis_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redis-daphne")
    env = {"REDIS_URL": redis_url}
    ports = [free_port(), free_port()]
    procs = {f"web{i}": start_daphne(tmp, port, env) for i, port in enumerate(ports)}
    procs.update({name: start_worker(tmp, name, env) for name in ("w0", "w1")})
    yield ports, procs, redis.Redis.from_url(redis_url)
    for proc in procs.values():
        proc.kill()
        proc.wait(10)


def messages(ws, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        yield ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    raise TimeoutError("no matching frame")


def frames(ws, timeout=5.0):
    for text in messages(ws, timeout):
        match = re.search(r'id="frame-data" hidden data-frame="([^"]*)"', text)
        if match:
            yield json.loads(html.unescape(match.group(1))), text


def wait_for(ws, where, timeout=5.0):
    return next(f for f, _text in frames(ws, timeout) if where(f))


@dataclass
class Heard:
    at: float  # time.monotonic() when it arrived
    html: str
    frame: dict | None  # its frame data, if it carries one


def follow_both(sockets, done, timeout=15.0):
    """Read every socket at once (each in a thread, so arrival times are true) until ``done`` holds for a frame of
    each that came after the takeover notice; what each heard, in order."""

    def read(ws):
        heard, moved = [], False
        for text in messages(ws, timeout):
            match = re.search(r'id="frame-data" hidden data-frame="([^"]*)"', text)
            heard.append(Heard(time.monotonic(), text, json.loads(html.unescape(match.group(1))) if match else None))
            moved = moved or MOVED in text
            if moved and heard[-1].frame and done(heard[-1].frame):
                return heard
        return heard

    with ThreadPoolExecutor(len(sockets)) as pool:
        return dict(zip(sockets, pool.map(read, sockets), strict=True))


def continued(heard):
    """The first frame after the takeover notice that is past every frame heard before it: the run going on."""
    notice = next(i for i, h in enumerate(heard) if MOVED in h.html)
    reached = max((h.frame["t"] for h in heard[:notice] if h.frame), default=0.0)
    return next((h for h in heard[notice:] if h.frame and h.frame["t"] > reached), None)


def viewer(port, run_id=""):
    query = f"?run={run_id}" if run_id else ""
    return connect(f"ws://127.0.0.1:{port}/ws/patterns/circuit-breaker/{query}", origin=f"http://127.0.0.1:{port}")


def test_a_viewer_in_another_process_watches_and_steers_the_same_run(cluster):
    (a, b), _procs, _redis = cluster
    with viewer(a) as owner:
        owner.send(json.dumps({"action": "start", "seed": "4"}))
        first = wait_for(owner, lambda f: f["run"], timeout=15)
        with viewer(b, first["run"]) as other:
            joined = wait_for(other, lambda f: f["run"] == first["run"])
            assert joined["link"].startswith("/patterns/circuit-breaker/?seed=4")
            other.send(json.dumps({"action": "pause"}))
            paused = wait_for(owner, lambda f: not f["playing"])
            other.send(json.dumps({"action": "command", "command": "outage_on", "service": "downstream"}))
            acted = wait_for(owner, lambda f: ":outage_on" in f["link"])
            seen = wait_for(other, lambda f: f["link"] == acted["link"])
            assert seen["t"] == acted["t"] >= paused["t"]


def test_a_killed_worker_s_run_goes_on_elsewhere_within_5_s_with_the_same_events(cluster):
    (a, b), procs, store = cluster
    with viewer(a) as owner:
        owner.send(json.dumps({"action": "start", "seed": "9", "failure_probability": "0.3"}))
        run_id = wait_for(owner, lambda f: f["run"], timeout=15)["run"]
        with viewer(b, run_id) as other:
            wait_for(other, lambda f: f["run"] == run_id)
            owner.send(json.dumps({"action": "command", "command": "outage_on", "service": "downstream"}))
            before = wait_for(owner, lambda f: ":outage_on" in f["link"] and f["t"] > 1.0)
            holder = worker_of(store.get(f"playground:lease:{run_id}").decode())
            killed = time.monotonic()
            procs[holder].send_signal(signal.SIGKILL)
            seen = follow_both([owner, other], lambda f: f["t"] > before["t"] + 1.0)
            assert worker_of(store.get(f"playground:lease:{run_id}").decode()) != holder
    rows, last = {}, {}
    for ws, texts in seen.items():
        rows.update({int(m[0]): m[1:] for text in texts for m in ROW.findall(html.unescape(text.html))})
        went_on = continued(texts)
        assert went_on is not None, "no frame went on past the killed worker's last one"
        assert went_on.at - killed < 5.0, f"the run went on only {went_on.at - killed:.2f} s after the kill"
        last[ws] = texts[-1].frame
    frame = max(last.values(), key=lambda f: f["t"])
    pattern = get_pattern("circuit-breaker")
    query = frame["link"].split("?", 1)[1]
    from django.conf import settings

    player = Player(pattern, scenario_of(pattern, query), {**settings.PLAYGROUND, "EVENT_HISTORY": 10**6})
    player.advance_to(frame["t"] + 0.0005)  # a frame's t is rounded to the millisecond, maybe down
    player.drain()
    expected = {row["seq"]: (row["t"], row["type"], row["detail"]) for row in log_rows(player, 10**6)}
    after = {seq: row for seq, row in rows.items() if seq > before["last_seq"]}
    assert len(after) > 20
    assert after == {seq: expected.get(seq) for seq in after}


def test_a_viewer_of_a_killed_web_process_joins_again_from_the_other(redis_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redis-web-kill")
    env = {"REDIS_URL": redis_url}
    a, b = free_port(), free_port()
    procs = [start_daphne(tmp, a, env), start_daphne(tmp, b, env), start_worker(tmp, "w-web", env)]
    try:
        with viewer(a) as ws:
            ws.send(json.dumps({"action": "start", "seed": "5"}))
            first = wait_for(ws, lambda f: f["run"], timeout=15)
            procs[0].send_signal(signal.SIGKILL)
            with viewer(b) as again:  # what the page does on a reconnect: join its run by id
                again.send(json.dumps({"action": "join", "run": first["run"]}))
                later = wait_for(again, lambda f: f["run"] == first["run"] and f["t"] > first["t"])
                assert later["link"] == first["link"]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
