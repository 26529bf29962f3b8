"""A hostile client against a live daphne: fuzzed websocket frames and fuzzed links, then the checks the issue asks
for: no 5xx, no traceback or ERROR in the server's log, and no run left alive without a viewer once the reaping
interval has passed. A bystander's page and websocket round trip are timed throughout and printed (not asserted:
timings on a shared machine are for benchmarks).

HOSTILE_FUZZ_COUNT sets how many frames and how many links (default 100 each, well under a minute here); the
issue's figure is 10,000 of each: ``HOSTILE_FUZZ_COUNT=10000 pytest -s tests/core/test_hostile_live.py``.
"""

import contextlib
import html
import http.client
import json
import os
import re
import statistics
import threading
import time
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from ..support import free_port, start_daphne

COUNT = int(os.environ.get("HOSTILE_FUZZ_COUNT", 100))
SLUGS = ("circuit-breaker", "raft", "load-balancing", "messaging")
REAP = {"PLAYGROUND_IDLE_REAP_SECONDS": "1", "PLAYGROUND_VIEWER_TIMEOUT": "2"}
FIELDS = (
    "action", "seed", "preset", "do", "run", "speed", "t", "command", "until", "HEADERS", "request_rate", "servers",
    "failure_probability", "algorithms", "rate", "view", "publish_rate", "service", "server", "groups", "by", "mode",
)  # fmt: skip
ACTIONS = ("start", "join", "pause", "play", "step", "speed", "seek", "reset", "command", "launch", "")
RUN_IN_FRAME = re.compile(r'"run":\s*"([A-Za-z0-9_-]{16})"')

leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["1e400", "-inf", "NaN", "ééé", "0:crash:server=s1", "1:outage_on:mode=hang", "\ud800"])
)
value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
request = st.builds(
    lambda action, extra: {"action": action, **extra},
    st.sampled_from(ACTIONS),
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), value, max_size=5),
)
frames = st.one_of(
    request.map(json.dumps),  # NaN and Infinity written as JSON's non-standard constants
    st.just('{"action": "start"}'),  # so that there are runs to leak, and the per-client run limit is met
    st.text(max_size=300),
    st.integers(min_value=1, max_value=6000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=1, max_value=5000).map(lambda n: '{"action":"start","seed":"' + "é" * n + '"}'),
    st.binary(max_size=50),
)
links = st.tuples(
    st.sampled_from((*SLUGS, "nope", "../x")),
    st.sampled_from(["/", "/events.jsonl", "/describe.json"]),
    st.lists(st.tuples(st.sampled_from(FIELDS) | st.text(max_size=8), st.text(max_size=30)), max_size=8),
    st.sampled_from(["", "&" * 1000, "%ZZ%", "%C3", "run=%C3%A9", "until=1e400", "do=" + "1:x," * 900]),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    port = free_port()
    env = {
        **REAP,
        "PLAYGROUND_COMMANDS_PER_SECOND": "100000",  # let every fuzzed frame reach the parser
        "PLAYGROUND_COMMANDS_PER_CLIENT_PER_SECOND": "100000",
        "PLAYGROUND_MAX_CONNECTIONS_PER_CLIENT": "2000",
        "PLAYGROUND_EXPORT_CPU_SECONDS": "0.2",
    }
    proc = start_daphne(tmp, port, env)
    yield port, tmp / f"daphne-{port}.log"
    proc.terminate()
    proc.wait(10)


class Clients:
    """A few websocket connections per pattern, reopened when the server closes one; every frame they get is
    drained, and the run ids in them remembered."""

    def __init__(self, port):
        self.port, self.sockets, self.runs = port, {}, set()
        self.stack = contextlib.ExitStack()

    def open(self, slug, query=""):
        url = f"ws://127.0.0.1:{self.port}/ws/patterns/{slug}/{query}"
        return connect(url, origin=f"http://127.0.0.1:{self.port}", max_size=None, open_timeout=10)

    def send(self, slot, frame):
        slug = SLUGS[slot % len(SLUGS)]
        ws = self.sockets.get(slot) or self.sockets.setdefault(slot, self.stack.enter_context(self.open(slug)))
        try:
            ws.send(frame)
            self.drain(ws)
        except (WebSocketException, OSError):
            self.sockets.pop(slot, None)

    def drain(self, ws, seconds=0.0):
        deadline = time.monotonic() + seconds
        while True:
            try:
                text = ws.recv(timeout=max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                return
            except (WebSocketException, OSError):
                return
            self.runs.update(RUN_IN_FRAME.findall(html.unescape(text if isinstance(text, str) else "")))

    def close_all(self):
        for ws in self.sockets.values():  # runs started last may still be on their way from a worker
            self.drain(ws, seconds=2.0)
        self.stack.close()
        self.sockets.clear()

    def alive(self, runs):
        """The runs that still answer a join with a frame (a gone one says so after the join timeout)."""
        with contextlib.ExitStack() as stack:
            sockets = {run: stack.enter_context(self.open("circuit-breaker", f"?run={run}")) for run in runs}
            return [run for run, ws in sockets.items() if answers(ws)]


class Bystander(threading.Thread):
    """Every 0.2 s: a page, and a websocket's round trip (a command before Start is answered at once)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.page, self.socket, self.stop = port, [], [], threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            conn.request("GET", "/")
            conn.getresponse().read()
            self.page.append(time.perf_counter() - started)
            url = f"ws://127.0.0.1:{self.port}/ws/patterns/circuit-breaker/"
            with connect(url, origin=f"http://127.0.0.1:{self.port}") as ws:
                started = time.perf_counter()
                ws.send('{"action": "pause"}')
                ws.recv(timeout=30)
                self.socket.append(time.perf_counter() - started)

    def report(self, what, times):
        times = sorted(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        p50, worst = statistics.median(times), times[-1]
        return f"{what}: n={len(times)} p50={p50 * 1000:.0f} ms p99={p99 * 1000:.0f} ms max={worst * 1000:.0f} ms"


def fuzz(test):
    return settings(max_examples=COUNT, deadline=None, database=None, suppress_health_check=list(HealthCheck))(test)


def test_fuzzed_frames_and_links_leave_no_5xx_no_traceback_and_no_orphan_run(server):
    port, log = server
    clients, statuses = Clients(port), []
    bystander = Bystander(port)
    bystander.start()
    started = time.perf_counter()

    @fuzz
    @given(st.integers(min_value=0, max_value=11), frames)
    def send_frame(slot, frame):
        clients.send(slot, frame)

    @fuzz
    @given(links)
    def get_link(link):
        slug, page, pairs, raw = link
        query = "&".join(f"{quote(k, safe='%')}={quote(v, safe='%:,=')}" for k, v in pairs) + raw
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/patterns/{quote(slug, safe='/.')}{page}?{query}")
        statuses.append(conn.getresponse().status)
        conn.close()

    send_frame()
    get_link()
    elapsed = time.perf_counter() - started
    clients.close_all()
    bystander.stop.set()
    bystander.join()
    print(f"\n{COUNT} frames and {COUNT} links in {elapsed:.1f} s; {len(clients.runs)} runs started")
    print(bystander.report("bystander page", bystander.page))
    print(bystander.report("bystander websocket round trip", bystander.socket))

    assert statuses and max(statuses) < 500, sorted(set(statuses))
    time.sleep(float(REAP["PLAYGROUND_VIEWER_TIMEOUT"]) + float(REAP["PLAYGROUND_IDLE_REAP_SECONDS"]) + 2)
    alive = clients.alive(clients.runs)
    assert not alive, f"{len(alive)} runs without a viewer are still alive"
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "ERROR" not in text, text[-3000:]


def answers(ws):
    while True:
        text = ws.recv(timeout=10)
        if "has ended" in text:
            return False
        if RUN_IN_FRAME.search(html.unescape(text)):
            return True
