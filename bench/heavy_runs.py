#!/usr/bin/env python
"""Twenty heavy runs at speed 100 and a bystander: does anyone else notice?

One daphne with its default worker pool (in-memory layer). --runs websocket clients each start a heavy run (by
default the load-balancing scenario that cost 335 CPU seconds as one export: 2000 requests/s over 32 servers,
four algorithms) and set it to speed 100, then keep reading its frames. Meanwhile a bystander fetches a page
(GET /patterns/circuit-breaker/) every --every seconds and watches a run of its own at speed 1 over a websocket.
Figures over the --seconds window: the bystander's GET latency and frame latency (receive time minus the frame's
"sent" wall time), each p50/p99/max (goal p99 < 200 ms), the heavy runs' virtual seconds per wall second (how far
they fell behind speed 100), and the CPU of daphne and of the worker processes.

    .venv/bin/python bench/heavy_runs.py [--json] [--runs 20] [--seconds 30] [--link "rate=2000&servers=32"]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Daphne, bench_parser, machine, machine_text, run_benchmark, summary
from ws_fanout import FRAME_NO, SENT, children_cpu, cpu_seconds

T = re.compile(r"&quot;t&quot;:([0-9.]+)")
RUN = re.compile(r"&quot;run&quot;:&quot;([^&]+)&quot;")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--runs", type=int, default=20, help="heavy runs (default 20)")
    parser.add_argument("--speed", default="100", help="their speed (default 100)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window (default 30)")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between the bystander's GETs")
    parser.add_argument("--pattern", default="load-balancing", help="the heavy runs' pattern")
    parser.add_argument("--link", default="rate=2000&servers=32&algorithms=rr.random.lc.p2c", help="their scenario")
    return parser.parse_args(argv)


class Watcher:
    """One websocket: starts a run, optionally sets its speed, records (received, sent, t) per frame."""

    def __init__(self, url: str, origin: str):
        self.url, self.origin = url, origin
        self.frames: list[tuple[float, float, float]] = []
        self.run = ""
        self.ws: Any = None

    async def start(self, fields: dict[str, str], speed: str) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(self.url, origin=self.origin, max_size=None, ping_interval=None, open_timeout=60)
        await self.ws.send(json.dumps({"action": "start", **fields}))
        while not self.run:
            text = await asyncio.wait_for(self.ws.recv(), 60)
            match = RUN.search(text)
            if match:
                self.run = match[1]
            elif 'id="messages"' in text:
                raise RuntimeError(f"the server refused a run: {re.sub(r'<[^>]+>', '', text).strip()}")
        if speed != "1":
            await self.ws.send(json.dumps({"action": "speed", "speed": speed}))

    async def read(self) -> None:
        try:
            async for text in self.ws:
                sent, t = SENT.search(text), T.search(text)
                if sent and t and FRAME_NO.search(text):
                    self.frames.append((time.time(), float(sent[1]), float(t[1])))
        except Exception:  # closed at the end
            pass


def fetch(url: str) -> float:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.perf_counter()
    opener.open(url, timeout=60).read()
    return (time.perf_counter() - started) * 1000


async def session(args: argparse.Namespace, server: Daphne) -> dict[str, Any]:
    url = f"{server.ws_base}/ws/patterns/{args.pattern}/"
    fields = dict(parse_qsl(args.link))
    heavy = [Watcher(url, server.base_url) for _ in range(args.runs)]
    for watcher in heavy:
        await watcher.start(fields, args.speed)
    readers = [asyncio.create_task(w.read()) for w in heavy]
    bystander = Watcher(f"{server.ws_base}/ws/patterns/circuit-breaker/", server.base_url)
    await bystander.start({"seed": "1"}, "1")
    readers.append(asyncio.create_task(bystander.read()))
    await asyncio.sleep(3.0)
    t0, c0, w0 = time.time(), cpu_seconds(server.proc.pid), children_cpu(server.proc.pid)
    gets = []
    page = f"{server.base_url}/patterns/circuit-breaker/"
    while time.time() < t0 + args.seconds:
        gets.append(await asyncio.get_running_loop().run_in_executor(None, fetch, page))
        await asyncio.sleep(args.every)
    t1, c1, w1 = time.time(), cpu_seconds(server.proc.pid), children_cpu(server.proc.pid)
    for watcher in [*heavy, bystander]:
        await watcher.ws.close()
    await asyncio.gather(*readers)

    def in_window(w: Watcher) -> list[tuple[float, float, float]]:
        return [f for f in w.frames if t0 <= f[0] < t1]

    rates = []
    for watcher in heavy:
        frames = in_window(watcher)
        if len(frames) > 1:
            rates.append((frames[-1][2] - frames[0][2]) / (frames[-1][0] - frames[0][0]))
    mine = in_window(bystander)
    span = t1 - t0
    return {
        "bystander_get_ms": summary(gets),
        "bystander_frame_ms": summary([(r - s) * 1000 for r, s, _t in mine]),
        "bystander_frames_per_s": len(mine) / span,
        "heavy_virtual_s_per_wall_s": summary(rates),
        "heavy_runs_started": sum(1 for w in heavy if w.run),
        "daphne_cpu_share": (c1 - c0) / span,
        "workers_cpu_share": (w1 - w0) / span,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    result = {"benchmark": "heavy_runs", "machine": machine(), "runs": args.runs, "speed": args.speed}
    result["link"], result["pattern"], result["seconds"] = args.link, args.pattern, args.seconds
    with Daphne({"PLAYGROUND_MAX_RUNS_PER_CLIENT": str(args.runs + 1)}) as server:  # every client is 127.0.0.1
        result.update(asyncio.run(session(args, server)))
    return result


def report(r: dict[str, Any]) -> None:
    print(
        f"heavy_runs: {r['heavy_runs_started']}/{r['runs']} {r['pattern']} runs ?{r['link']} at speed {r['speed']}, "
        f"a bystander, {r['seconds']:g} s; {machine_text(r['machine'])}"
    )
    for label, key in (("bystander GET", "bystander_get_ms"), ("bystander frame latency", "bystander_frame_ms")):
        s = r[key]
        print(f"  {label:26} p50 {s['p50']:.1f} ms  p99 {s['p99']:.1f} ms  max {s['max']:.1f} ms  (n={s['n']})")
    h = r["heavy_virtual_s_per_wall_s"]
    print(f"  bystander frames per s     {r['bystander_frames_per_s']:.1f}   (goal: both p99 < 200 ms)")
    print(f"  heavy runs' virtual s/s    p50 {h['p50']:.3f}  max {h['max']:.3f}  (speed {r['speed']} asked)")
    print(f"  CPU: daphne {r['daphne_cpu_share']:.0%} of a core, worker processes {r['workers_cpu_share']:.0%}")


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
