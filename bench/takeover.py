#!/usr/bin/env python
"""Kill -9 the worker that plays runs: how soon do their viewers see them go on?

`--mode redis` (the default, the issue's setting): two daphne web processes and two `manage.py runworkers` sharing
the Redis at `--redis` (a database of its own: it is emptied first). Each round starts `--runs` circuit-breaker
runs, each watched from both web processes, lets them play 1 to 2 s (drawn, so that kills fall anywhere between
two lease renewals), kills -9 the worker holding the first run (read from its lease in Redis), then starts a new
worker in its place. `--mode pool`: one daphne with its default pool of two workers; a drawn one of them is
killed and the pool starts another. `--load N` keeps N busy-looping processes running throughout (a loaded host).

For every viewer of a run that was taken over: the time from the kill to the first frame after the takeover notice
that is past every frame it had seen (the run going on, not just a notice). Prints p50/p99/max over all of them,
the worst viewer of each kill, and how many kills took more than 5 s (the issue's bound).

    .venv/bin/python bench/takeover.py [--json] [--kills 12] [--runs 3] [--mode redis|pool] [--load 2]
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, bench_env, bench_parser, free_port, machine, run_benchmark, summary
from websockets.sync.client import connect

from tests.support import start_daphne

FRAME = re.compile(r'id="frame-data" hidden data-frame="([^"]*)"')
MOVED = "another took it over"
BOUND = 5.0  # seconds: the "see it continue within 5 s"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--kills", type=int, default=12, help="workers killed, one per round (default 12)")
    parser.add_argument("--runs", type=int, default=3, help="runs started each round (default 3)")
    parser.add_argument("--mode", choices=("redis", "pool"), default="redis")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11", help="a database this bench may empty")
    parser.add_argument("--load", type=int, default=0, help="busy-looping processes beside (default 0)")
    parser.add_argument("--seed", type=int, default=1, help="draws of when to kill and whom (pool mode)")
    return parser.parse_args(argv)


def burn() -> None:
    while True:
        pass


class Viewer:
    """One websocket on one run, read in a thread: (arrival time, text, frame) of everything it hears."""

    def __init__(self, port: int, run_id: str = ""):
        query = f"?run={run_id}" if run_id else ""
        url = f"ws://127.0.0.1:{port}/ws/patterns/circuit-breaker/{query}"
        self.ws = connect(url, origin=f"http://127.0.0.1:{port}", open_timeout=30)
        self.heard: list[tuple[float, str, dict | None]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                match = FRAME.search(text)
                frame = json.loads(html.unescape(match.group(1))) if match else None
                with self.lock:
                    self.heard.append((time.monotonic(), text, frame))
        except Exception:  # closed at the end of the round
            pass

    def frames(self) -> list[dict]:
        with self.lock:
            return [frame for _at, _text, frame in self.heard if frame]

    def wait(self, where, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [f for f in self.frames() if where(f)]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise TimeoutError("no such frame")

    def notice(self, killed: float) -> float | None:
        """Seconds from the kill to the takeover notice."""
        with self.lock:
            return next((at - killed for at, text, _f in self.heard if MOVED in text), None)

    def went_on(self, killed: float) -> float | None:
        """Seconds from the kill to the first frame after the takeover notice past every frame heard before it."""
        with self.lock:
            heard = list(self.heard)
        notice = next((i for i, (_at, text, _f) in enumerate(heard) if MOVED in text), None)
        if notice is None:
            return None
        reached = max((f["t"] for _at, _text, f in heard[:notice] if f), default=0.0)
        return next((at - killed for at, _text, f in heard[notice:] if f and f["t"] > reached), None)

    def close(self) -> None:
        self.ws.close()


class Cluster:
    """The web processes and workers of one mode, with what it takes to kill a run's worker and replace it."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.tmp = args, Path(tempfile.mkdtemp(prefix="pg-bench-takeover-"))
        # a round's runs end soon after it (their viewers leave), so that each round's takeovers replay its own runs
        self.env = {**bench_env(self.tmp), "PLAYGROUND_IDLE_REAP_SECONDS": "2"}
        self.procs: list[subprocess.Popen] = []
        self.workers: dict[str, subprocess.Popen] = {}
        self.names = itertools.count()
        self.rng = random.Random(args.seed)
        if args.mode == "redis":
            import redis

            self.redis = redis.Redis.from_url(args.redis)
            self.redis.flushdb()
            self.env["REDIS_URL"] = args.redis
        else:
            self.env.pop("REDIS_URL", None)
            os.environ.pop("REDIS_URL", None)
        self.ports = [free_port() for _ in range(2 if args.mode == "redis" else 1)]
        self.webs = [start_daphne(self.tmp, port, self.env) for port in self.ports]
        self.procs += self.webs
        self.started = 0  # workers started so far
        if args.mode == "pool":  # the pool starts with the first websocket
            Viewer(self.ports[0]).close()
            self.started = 2
        for _ in range(2 if args.mode == "redis" else 0):
            self.start_worker()

    def start_worker(self) -> None:
        name = f"bench-{next(self.names)}"
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runworkers"],
            cwd=ROOT,
            env={**os.environ, **self.env, "PLAYGROUND_WORKER_NAME": name},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers[name] = proc
        self.procs.append(proc)
        self.started += 1

    def pool(self) -> list[str]:
        out = subprocess.run(["pgrep", "-P", str(self.webs[0].pid)], capture_output=True, text=True).stdout
        return out.split()

    def ready(self) -> None:
        """Two workers serving before the next round (a new one takes seconds to set Django up on a loaded host):
        each says so in its log (the pool's in daphne's)."""
        deadline = time.monotonic() + 60
        while self.serving() < self.started and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)

    def serving(self) -> int:
        return sum(log.read_text(errors="replace").count(": serving") for log in self.tmp.glob("*.log"))

    def kill(self, run_id: str) -> float:
        """Kill -9 the worker of ``run_id`` (a drawn pool worker in pool mode); the time of the kill."""
        if self.args.mode == "pool":
            pid = self.rng.choice(self.pool())
            killed = time.monotonic()
            os.kill(int(pid), signal.SIGKILL)
            self.started += 1  # the pool starts another
            return killed
        token = self.redis.get(f"playground:lease:{run_id}").decode()
        proc = self.workers.pop(token.split("#")[0])
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.start_worker()
        return killed

    def stop(self) -> int:
        """Stop everything; how many times a live worker lost a run to another (a stall past its lease)."""
        for proc in self.procs:
            proc.kill()
            proc.wait(10)
        lost = sum(log.read_text(errors="replace").count("lost run") for log in self.tmp.glob("*.log"))
        shutil.rmtree(self.tmp, ignore_errors=True)
        return lost


Seen = tuple[float | None, float | None]  # one viewer: seconds from the kill to the notice, to the run going on


def round_of(cluster: Cluster, args: argparse.Namespace, rng: random.Random) -> list[list[Seen]]:
    """One kill: for each run started, what each of its viewers saw (None, None: its run was not taken over)."""
    runs: list[list[Viewer]] = []
    try:
        for i in range(args.runs):
            owner = Viewer(cluster.ports[i % len(cluster.ports)])
            runs.append([owner])
            owner.ws.send(json.dumps({"action": "start", "seed": str(rng.randrange(1000))}))
            run_id = owner.wait(lambda f: f["run"], 30)["run"]
            runs[-1].append(Viewer(cluster.ports[(i + 1) % len(cluster.ports)], run_id))
        first = runs[0][0].wait(lambda f: f["run"], 1)["run"]
        time.sleep(rng.uniform(1.0, 2.0))
        killed = cluster.kill(first)
        everyone = [viewer for viewers in runs for viewer in viewers]
        while time.monotonic() < killed + 2 * BOUND:  # until every viewer told of a takeover saw its run go on
            time.sleep(0.25)
            told = [viewer.went_on(killed) for viewer in everyone if viewer.notice(killed) is not None]
            if told and None not in told and time.monotonic() > killed + max(told) + 0.5:
                break
        return [[(viewer.notice(killed), viewer.went_on(killed)) for viewer in viewers] for viewers in runs]
    finally:
        for viewers in runs:
            for viewer in viewers:
                viewer.close()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.load)]
    for burner in burners:
        burner.start()
    cluster = Cluster(args)
    rng = random.Random(args.seed)
    kills: list[list[list[Seen]]] = []
    try:
        for _ in range(args.kills):
            cluster.ready()
            kills.append(round_of(cluster, args, rng))
    finally:
        stolen = cluster.stop()
        for burner in burners:
            burner.kill()
    told = [[seen for run in kill for seen in run if seen[0] is not None] for kill in kills]
    went_on = [went for kill in told for _notice, went in kill if went is not None]
    worst = [max(went if went is not None else math.inf for _notice, went in kill) for kill in told if kill]
    return {
        "machine": machine(),
        "mode": args.mode,
        "load": args.load,
        "kills": len(kills),
        "runs_taken_over": sum(1 for kill in kills for run in kill if run[0][0] is not None),
        "notice": summary([notice for kill in told for notice, _went in kill]),
        "went_on": summary(went_on),
        "worst_viewer_per_kill": summary(worst),
        "kills_over_bound": sum(1 for t in worst if t > BOUND),
        "viewers_that_never_saw_it_go_on": sum(1 for kill in told for _notice, went in kill if went is None),
        "runs_lost_by_a_live_worker": stolen,
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"mode {result['mode']}, {result['load']} busy processes beside; {result['kills']} kills, "
        f"{result['runs_taken_over']} runs taken over"
    )
    for label, key in (
        ("kill -> takeover notice, every viewer", "notice"),
        ("kill -> run goes on, every viewer", "went_on"),
        ("kill -> run goes on, worst viewer of each kill", "worst_viewer_per_kill"),
    ):
        s = result[key]
        print(f"{label}: n={s['n']} p50={s['p50']:.2f} s p99={s['p99']:.2f} s max={s['max']:.2f} s")
    print(
        f"kills over {BOUND:g} s: {result['kills_over_bound']}; "
        f"viewers told of a takeover that never saw the run go on: {result['viewers_that_never_saw_it_go_on']}; "
        f"runs a live worker lost (stalled past its lease): {result['runs_lost_by_a_live_worker']}"
    )


if __name__ == "__main__":
    run_benchmark(None, parse_args, measure, report)
