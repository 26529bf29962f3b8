#!/usr/bin/env python
"""Websocket fan-out of one live run to many viewers: this stack beside a raw `websockets` server, in one run.

Stack: one daphne (in-memory layer, its default worker pool: the run is simulated in a worker, so daphne's CPU
is the fan-out's). A first viewer sends {"action": "start"} (with --fps setting the run's frame interval) and
watches alone for --baseline seconds; then --viewers in all watch ?run=<id> for --seconds.

Raw: a bare `websockets` asyncio server (a subprocess of this script) broadcasting the very frames the first
viewer received from the stack, at the same rate, to the same number of viewers (`websockets.broadcast`: one
write of the same bytes per socket), with the same baseline and window.

Viewers are asyncio connections in this process; each stamps what it receives. Figures per server: frames per
viewer, frame size, delivery latency (receive time minus the frame's "sent" wall time: the stack sets it when the
worker renders the frame, the raw server when it broadcasts it), and the server's CPU (utime + stime from
/proc/<pid>/stat) per delivered frame in the window and at the margin over the one-viewer baseline; then the
stack / raw ratio of the marginal figures (goal: at most 4).

    .venv/bin/python bench/ws_fanout.py [--json] [--viewers 500] [--fps 5] [--seconds 20] [--baseline 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, SLUG, Daphne, bench_parser, free_port, machine, machine_text, run_benchmark, summary

FRAME_NO = re.compile(r"&quot;frame&quot;:(\d+)")
SENT = re.compile(r"&quot;sent&quot;:([0-9.]+)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--viewers", type=int, default=500, help="viewers of the one run (default 500)")
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second of the run (default 5)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window with every viewer (default 20)")
    parser.add_argument("--baseline", type=float, default=5.0, help="window with the first viewer alone (default 5)")
    parser.add_argument("--seed", default="1", help="scenario seed sent with start (default 1)")
    parser.add_argument("--preset", default="", help="start a preset of the pattern instead of its defaults")
    parser.add_argument("--raw-server", nargs=3, metavar=("PORT", "FRAMES", "FPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.viewers < 1:
        raise SystemExit("--viewers must be at least 1")
    return args


# -- the raw server ---------------------------------------------------------------------------------------------
async def raw_server(port: int, frames_path: str, fps: float) -> None:
    """Broadcast the recorded frames, in a loop, to every connection, stamping each with its send time once."""
    from websockets.asyncio.server import broadcast, serve

    frames = json.loads(Path(frames_path).read_text())
    connections: set = set()

    async def handler(ws) -> None:
        connections.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connections.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, max_size=None):
        index = 0
        while True:
            await asyncio.sleep(1 / fps)
            text = SENT.sub(f"&quot;sent&quot;:{time.time():.4f}", frames[index % len(frames)], count=1)
            text = FRAME_NO.sub(f"&quot;frame&quot;:{index}", text, count=1)
            broadcast(connections, text)
            index += 1


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the raw server did not listen on {port}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int) -> float:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return sum(cpu_seconds(int(child)) for child in found)


# -- viewers ----------------------------------------------------------------------------------------------------
class Viewer:
    def __init__(self, url: str, origin: str, keep_text: bool = False):
        self.url, self.origin, self.keep_text = url, origin, keep_text
        self.got: list[tuple[float, int, float, int]] = []  # (received, frame number, sent, bytes)
        self.texts: list[tuple[float, str]] = []
        self.ws: Any = None
        self.error = ""

    async def open(self, tries: int = 3) -> None:
        """Connect; a handshake the loaded server dropped is tried again (a crowd of 500 must not end the bench)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidMessage

        for attempt in range(tries):
            try:
                self.ws = await connect(
                    self.url, origin=self.origin, compression=None, max_size=None, ping_interval=None, open_timeout=60
                )
                return
            except (InvalidMessage, OSError):
                if attempt == tries - 1:
                    raise
                await asyncio.sleep(1.0)

    async def listen(self) -> None:
        try:
            async for text in self.ws:
                now = time.time()
                number, sent = FRAME_NO.search(text), SENT.search(text)
                if number and sent:
                    self.got.append((now, int(number[1]), float(sent[1]), len(text.encode())))
                if self.keep_text:
                    self.texts.append((now, text))
        except Exception as exc:  # a closed connection: noted for the report
            self.error = f"{type(exc).__name__}: {exc}"


async def crowd(viewers: list[Viewer], batch: int = 50) -> list[asyncio.Task]:
    """Connect in batches (a burst of 500 handshakes times out on a small machine), then listen."""
    tasks = []
    for i in range(0, len(viewers), batch):
        await asyncio.gather(*(v.open() for v in viewers[i : i + batch]))
        tasks += [asyncio.create_task(v.listen()) for v in viewers[i : i + batch]]
    return tasks


def window(viewers: list[Viewer], t0: float, t1: float) -> list[list[tuple[float, int, float, int]]]:
    return [[g for g in v.got if t0 <= g[0] < t1] for v in viewers]


async def session(
    args: argparse.Namespace, url: str, origin: str, pid: int, start: dict | None, join: str
) -> dict[str, Any]:
    """One server: the first viewer alone, then all of them; CPU and frames in each window."""
    first = Viewer(url, origin, keep_text=True)
    await first.open()
    tasks = [asyncio.create_task(first.listen())]
    if start is not None:
        await first.ws.send(json.dumps(start))
    for _ in range(300):
        if first.got:
            break
        await asyncio.sleep(0.1)
    run_id = ""
    if start is not None:
        match = re.search(r"&quot;run&quot;:&quot;([^&]+)&quot;", first.texts[-1][1])
        run_id = match[1] if match else ""
    await asyncio.sleep(1.0)
    b0, bc0 = time.time(), cpu_seconds(pid)
    await asyncio.sleep(args.baseline)
    b1, bc1 = time.time(), cpu_seconds(pid)
    others = [Viewer(join.format(run=run_id), origin) for _ in range(args.viewers - 1)]
    tasks += await crowd(others)
    await asyncio.sleep(2.0)
    t0, c0, k0, w0 = time.time(), cpu_seconds(pid), time.process_time(), children_cpu(pid)
    await asyncio.sleep(args.seconds)
    t1, c1, k1, w1 = time.time(), cpu_seconds(pid), time.process_time(), children_cpu(pid)
    viewers = [first, *others]
    for viewer in viewers:
        await viewer.ws.close()
    await asyncio.gather(*tasks, return_exceptions=True)

    base = window([first], b0, b1)[0]
    per_viewer = window(viewers, t0, t1)
    delivered = sum(len(frames) for frames in per_viewer)
    span, base_span = t1 - t0, b1 - b0
    rate, base_rate = delivered / span, len(base) / base_span
    cpu_rate, base_cpu_rate = (c1 - c0) / span, (bc1 - bc0) / base_span
    marginal = (cpu_rate - base_cpu_rate) / (rate - base_rate) if rate > base_rate else float("nan")
    published = {g[1] for frames in per_viewer for g in frames}
    return {
        "frames_per_s": len(published) / span,
        "frames_per_viewer": {"min": min(map(len, per_viewer)), "max": max(map(len, per_viewer))},
        "delivered": delivered,
        "delivery_ratio": delivered / (len(published) * len(viewers)) if published else float("nan"),
        "frame_bytes": summary([float(g[3]) for frames in per_viewer for g in frames]),
        "latency_ms": summary([(g[0] - g[2]) * 1000 for frames in per_viewer for g in frames]),
        "server_cpu_share": cpu_rate,
        "us_per_delivered_frame": (c1 - c0) / delivered * 1e6 if delivered else float("nan"),
        "baseline_cpu_share": base_cpu_rate,
        "marginal_us_per_delivered_frame": marginal * 1e6,
        "workers_cpu_share": (w1 - w0) / span,
        "client_cpu_share": (k1 - k0) / span,
        "errors": [v.error for v in viewers if v.error][:3],
        "first_viewer_texts": [text for received, text in first.texts if t0 <= received < t1 and FRAME_NO.search(text)],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "ws_fanout",
        "machine": machine(),
        "viewers": args.viewers,
        "fps": args.fps,
        "seconds": args.seconds,
    }
    start = {"action": "start", "seed": str(args.seed), **({"preset": args.preset} if args.preset else {})}
    every_viewer = {"PLAYGROUND_MAX_CONNECTIONS_PER_CLIENT": str(args.viewers + 10)}  # they all come from 127.0.0.1
    with Daphne({"PLAYGROUND_FRAME_INTERVAL": str(1 / args.fps), **every_viewer}) as server:
        url = f"{server.ws_base}/ws/patterns/{SLUG}/"
        stack = asyncio.run(session(args, url, server.base_url, server.proc.pid, start, url + "?run={run}"))
    frames = stack.pop("first_viewer_texts")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(frames, f)
    port = free_port()
    raw = subprocess.Popen(
        [sys.executable, __file__, "--raw-server", str(port), f.name, str(args.fps)], cwd=ROOT, env=os.environ
    )
    try:
        wait_for_port(port)
        origin, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/"
        raw_figures = asyncio.run(session(args, ws_url, origin, raw.pid, None, ws_url))
    finally:
        raw.terminate()
        raw.wait(10)
        os.unlink(f.name)
    raw_figures.pop("first_viewer_texts")
    result.update({"stack": stack, "raw": raw_figures})
    result["ratio_marginal"] = stack["marginal_us_per_delivered_frame"] / raw_figures["marginal_us_per_delivered_frame"]
    result["ratio_total"] = stack["us_per_delivered_frame"] / raw_figures["us_per_delivered_frame"]
    return result


def report(r: dict[str, Any]) -> None:
    print(
        f"ws_fanout: one {SLUG} run, {r['viewers']} viewers, {r['fps']:g} frames/s asked, {r['seconds']:g} s window; "
        f"{machine_text(r['machine'])}"
    )
    print(f"  {'':28} {'stack (daphne)':>18} {'raw websockets':>18}")
    s, w = r["stack"], r["raw"]

    def row(label: str, a: str, b: str) -> None:
        print(f"  {label:28} {a:>18} {b:>18}")

    row("frames published per s", f"{s['frames_per_s']:.1f}", f"{w['frames_per_s']:.1f}")
    row(
        "delivered (share)",
        f"{s['delivered']} ({s['delivery_ratio']:.0%})",
        f"{w['delivered']} ({w['delivery_ratio']:.0%})",
    )
    row("frame size p50", f"{s['frame_bytes']['p50'] / 1024:.1f} KB", f"{w['frame_bytes']['p50'] / 1024:.1f} KB")
    for p in ("p50", "p99", "max"):
        row(f"latency {p}", f"{s['latency_ms'][p]:.1f} ms", f"{w['latency_ms'][p]:.1f} ms")
    row("server CPU (share of a core)", f"{s['server_cpu_share']:.0%}", f"{w['server_cpu_share']:.0%}")
    row("µs CPU per delivered frame", f"{s['us_per_delivered_frame']:.0f}", f"{w['us_per_delivered_frame']:.0f}")
    row(
        "  marginal (over 1 viewer)",
        f"{s['marginal_us_per_delivered_frame']:.0f}",
        f"{w['marginal_us_per_delivered_frame']:.0f}",
    )
    row("worker processes' CPU", f"{s['workers_cpu_share']:.0%}", "-")
    row("bench client CPU", f"{s['client_cpu_share']:.0%}", f"{w['client_cpu_share']:.0%}")
    print(f"  stack / raw: {r['ratio_marginal']:.1f}x at the margin, {r['ratio_total']:.1f}x in total (goal <= 4x)")
    for name in ("stack", "raw"):
        if r[name]["errors"]:
            print(f"  {name} viewer errors: {r[name]['errors']}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.raw_server:
        port, frames, fps = args.raw_server
        asyncio.run(raw_server(int(port), frames, float(fps)))
        return
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
