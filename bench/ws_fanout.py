#!/usr/bin/env python
"""Websocket fan-out of one live circuit-breaker run to many viewers, through daphne and the in-memory layer.

One daphne process is started on a free port of 127.0.0.1. The first viewer sends {"action": "start"} and reads
the run id from its first frame; it watches alone for --baseline seconds (the run's own cost: simulation ticks,
one render per frame, one delivery). Then the other viewers join with ?run=<id> and all of them watch for
--seconds; then they leave and the first viewer watches alone for --baseline seconds again. Each viewer is a
thread with the sync `websockets` client and only timestamps what it receives; frames are parsed afterwards.

Figures: frames per viewer, frame size, delivery latency (now - the frame's "sent" wall time, set when the run
renders it), the spread between the first and the last viewer receiving the same frame, and daphne's CPU
(utime + stime from /proc/<pid>/stat) per delivered frame, in total and at the margin (window minus baseline),
beside the reference figures in ../shared/ARCHITECTURE.md.

    .venv/bin/python bench/ws_fanout.py [--json] [--viewers 50] [--seconds 20] [--baseline 5] [--speed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REF_NAIVE_CHANNELS_US,
    REF_RAW_WEBSOCKETS_US,
    SLUG,
    Daphne,
    bench_parser,
    machine,
    run_benchmark,
    summary,
)

FRAME_RE = re.compile(r'id="frame-data" hidden data-frame="([^"]*)"')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--viewers", type=int, default=50, help="viewers of the one run (default 50)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window with every viewer (default 20)")
    parser.add_argument("--baseline", type=float, default=5.0, help="window with the first viewer alone (default 5)")
    parser.add_argument("--speed", default="1", help='run speed; e.g. 10 sends {"action":"speed","speed":"10"}')
    parser.add_argument("--seed", default="1", help="scenario seed sent with start (default 1)")
    parser.add_argument("--preset", default="", help="start a preset of the pattern instead of its defaults")
    parser.add_argument(
        "--compression",
        choices=("none", "deflate"),
        default="none",
        help="offer permessage-deflate as browsers do (default none; daphne may not accept it anyway)",
    )
    args = parser.parse_args(argv)
    if args.viewers < 1:
        raise SystemExit("--viewers must be at least 1")
    return args


def frame_of(text: str) -> dict[str, Any] | None:
    match = FRAME_RE.search(text)
    return json.loads(html.unescape(match.group(1))) if match else None


class Viewer(threading.Thread):
    """One websocket connection; records (receive wall time, text) for every message until told to stop."""

    def __init__(self, url: str, origin: str, compression: str | None):
        super().__init__(daemon=True)
        self.url, self.origin, self.compression = url, origin, compression
        self.received: list[tuple[float, str]] = []
        self.joined = threading.Event()  # first message in
        self.stop = threading.Event()
        self.error: str | None = None
        self.extensions = ""
        self.ws: Any = None

    def connect(self) -> None:
        from websockets.sync.client import connect

        self.ws = connect(
            self.url,
            origin=self.origin,
            proxy=None,
            compression=self.compression,
            open_timeout=20,
            max_size=None,
            ping_interval=None,
            legacy=True,
        )
        self.extensions = self.ws.response.headers.get("Sec-WebSocket-Extensions", "")

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def run(self) -> None:
        try:
            if self.ws is None:
                self.connect()
            received = self.received
            while not self.stop.is_set():
                try:
                    text = self.ws.recv(timeout=0.25)
                except TimeoutError:
                    continue
                received.append((time.time(), text))
                self.joined.set()
        except Exception as exc:  # a closed or failed connection: note it, the report says so
            if not self.stop.is_set():
                self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.joined.set()

    def close(self) -> None:
        self.stop.set()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.close()


def first_frame(viewer: Viewer, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        for _t, text in viewer.received[seen:]:
            frame = frame_of(text)
            if frame is not None and frame.get("run"):
                return frame
        seen = len(viewer.received)
        if viewer.error:
            break
        time.sleep(0.02)
    raise RuntimeError(f"no frame with a run id from the server: {viewer.error or viewer.received[-1:]!r}")


def window_frames(viewer: Viewer, start: float, end: float) -> list[tuple[float, int, dict[str, Any]]]:
    """(receive time, size in bytes, frame) for the frames a viewer received in [start, end)."""
    out = []
    for received, text in viewer.received:
        if start <= received < end:
            frame = frame_of(text)
            if frame is not None:
                out.append((received, len(text.encode()), frame))
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    compression = "deflate" if args.compression == "deflate" else None
    result: dict[str, Any] = {
        "benchmark": "ws_fanout",
        "machine": machine(),
        "viewers": args.viewers,
        "seconds": args.seconds,
        "baseline_seconds": args.baseline,
        "speed": args.speed,
        "reference_us_per_frame": {
            "raw_websockets": list(REF_RAW_WEBSOCKETS_US),
            "naive_channels": REF_NAIVE_CHANNELS_US,
        },
    }
    with Daphne() as server:
        origin = server.base_url
        url = f"{server.ws_base}/ws/patterns/{SLUG}/"
        viewers: list[Viewer] = []
        try:
            starter = Viewer(url, origin, compression)
            starter.connect()
            viewers.append(starter)
            starter.start()
            start = {"action": "start", "seed": str(args.seed)}
            if args.preset:
                start["preset"] = args.preset
            starter.send(start)
            run_id = first_frame(starter)["run"]
            if str(args.speed) not in ("1", "1.0"):
                starter.send({"action": "speed", "speed": str(args.speed)})
            result["run"] = run_id
            result["extensions"] = starter.extensions

            time.sleep(1.0)  # let the first frames and any speed change settle
            base_t0, base_cpu0, base_client0 = time.time(), server.cpu_seconds(), time.process_time()
            time.sleep(args.baseline)
            base_t1, base_cpu1, base_client1 = time.time(), server.cpu_seconds(), time.process_time()

            others = [Viewer(f"{url}?run={run_id}", origin, compression) for _ in range(args.viewers - 1)]
            for viewer in others:
                viewer.start()  # each connects in its own thread
            viewers.extend(others)
            for viewer in others:
                viewer.joined.wait(30)
            failed = [v.error for v in viewers if v.error]
            if failed:
                raise RuntimeError(f"{len(failed)} viewer(s) failed to join: {failed[:3]}")
            time.sleep(1.0)
            t0, cpu0, client0 = time.time(), server.cpu_seconds(), time.process_time()
            time.sleep(args.seconds)
            t1, cpu1, client1 = time.time(), server.cpu_seconds(), time.process_time()

            for viewer in others:  # the first viewer alone again: a second baseline, after the crowd
                viewer.close()
            for viewer in others:
                viewer.join(5)
            time.sleep(1.0)
            after_t0, after_cpu0 = time.time(), server.cpu_seconds()
            time.sleep(args.baseline)
            after_t1, after_cpu1 = time.time(), server.cpu_seconds()
        finally:
            for viewer in viewers:
                viewer.stop.set()
            for viewer in viewers:
                viewer.close()
            for viewer in viewers:
                viewer.join(5)
        result["daphne_log_tail"] = server.log_tail(600) if any(v.error for v in viewers) else ""

    # -- analysis, after the window: the viewers only timestamped ------------------------------------------
    base = window_frames(viewers[0], base_t0, base_t1) + window_frames(viewers[0], after_t0, after_t1)
    per_viewer = [window_frames(v, t0, t1) for v in viewers]
    counts = [len(frames) for frames in per_viewer]
    delivered = sum(counts)
    sizes = [size for frames in per_viewer for _r, size, _f in frames]
    have_sent = all("sent" in f for frames in per_viewer for _r, _s, f in frames) and delivered > 0
    latencies = [(r - f["sent"]) * 1000.0 for frames in per_viewer for r, _s, f in frames] if have_sent else []
    by_frame: dict[int, list[float]] = {}
    for frames in per_viewer:
        for received, _size, frame in frames:
            by_frame.setdefault(frame["frame"], []).append(received)
    complete = {n: times for n, times in by_frame.items() if len(times) == len(viewers)}
    spreads = [(max(times) - min(times)) * 1000.0 for times in complete.values()]
    distinct = len(by_frame)
    span = t1 - t0
    cpu = cpu1 - cpu0
    base_span = (base_t1 - base_t0) + (after_t1 - after_t0)
    base_cpu = (base_cpu1 - base_cpu0) + (after_cpu1 - after_cpu0)
    base_rate = len(base) / base_span if base_span else 0.0
    rate = delivered / span if span else 0.0
    marginal = ((cpu / span - base_cpu / base_span) / (rate - base_rate)) if rate > base_rate else float("nan")
    ts = [f["t"] for frames in per_viewer[:1] for _r, _s, f in frames]
    result.update(
        {
            "window_s": span,
            "frames_published": distinct,
            "frames_per_s": distinct / span if span else 0.0,
            "virtual_s_per_wall_s": (max(ts) - min(ts)) / span if len(ts) > 1 else float("nan"),
            "frames_per_viewer": {"min": min(counts), "mean": delivered / len(counts), "max": max(counts)},
            "delivered": delivered,
            "delivery_ratio": delivered / (distinct * len(viewers)) if distinct else float("nan"),
            "frame_bytes": summary([float(s) for s in sizes]),
            "latency_ms": summary(latencies) if have_sent else None,
            "latency_source": "sent" if have_sent else "missing: frames carry no 'sent' field",
            "spread_ms": summary(spreads),
            "frames_seen_by_all": len(complete),
            "daphne_cpu_s": cpu,
            "daphne_cpu_share": cpu / span if span else float("nan"),
            "us_per_delivered_frame": cpu / delivered * 1e6 if delivered else float("nan"),
            "baseline": {
                "seconds": base_span,
                "frames": len(base),
                "daphne_cpu_s": base_cpu,
                "daphne_cpu_share": base_cpu / base_span if base_span else float("nan"),
                "us_per_delivered_frame": base_cpu / len(base) * 1e6 if base else float("nan"),
            },
            "marginal_us_per_delivered_frame": marginal * 1e6,
            "client_cpu_share": (client1 - client0) / span if span else float("nan"),
            "client_baseline_cpu_share": (base_client1 - base_client0) / base_span if base_span else float("nan"),
        }
    )
    return result


def report(r: dict[str, Any]) -> None:
    lo, hi = r["reference_us_per_frame"]["raw_websockets"]
    print(
        f"ws_fanout: one circuit-breaker run, {r['viewers']} viewers, {r['window_s']:.1f} s window "
        f"(+ {r['baseline_seconds']:g} s with 1 viewer before and after), speed {r['speed']}x, "
        "daphne + in-memory layer"
    )
    print(
        f"  python {r['machine']['python']}, {r['machine']['cpus']} CPUs; "
        f"websocket extensions negotiated: {r['extensions'] or 'none'}"
    )
    print()
    fpv = r["frames_per_viewer"]
    print(
        f"  frames published          {r['frames_published']} ({r['frames_per_s']:.1f}/s; "
        f"virtual time ran {r['virtual_s_per_wall_s']:.2f} s per wall s)"
    )
    print(
        f"  frames per viewer         min {fpv['min']}  mean {fpv['mean']:.1f}  max {fpv['max']}  "
        f"(delivered {r['delivered']}, {r['delivery_ratio'] * 100:.1f}% of published x viewers)"
    )
    fb = r["frame_bytes"]
    print(f"  frame size                p50 {fb['p50'] / 1024:.1f} KB  max {fb['max'] / 1024:.1f} KB")
    if r["latency_ms"]:
        lat = r["latency_ms"]
        print(f"  latency (sent -> recv)    p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f} ms  max {lat['max']:.1f} ms")
    else:
        print(f"  latency                   not measured: {r['latency_source']}")
    sp = r["spread_ms"]
    print(
        f"  first-to-last viewer      p50 {sp['p50']:.1f} ms  p99 {sp['p99']:.1f} ms  max {sp['max']:.1f} ms  "
        f"({r['frames_seen_by_all']} frames seen by all)"
    )
    print()
    b = r["baseline"]
    print(
        f"  daphne CPU, 1 viewer      {b['daphne_cpu_share'] * 100:.1f}% of a core, "
        f"{b['us_per_delivered_frame']:,.0f} µs per delivered frame ({b['frames']} frames: run + render + send)"
    )
    print(
        f"  daphne CPU, {r['viewers']} viewers    {r['daphne_cpu_share'] * 100:.1f}% of a core, "
        f"{r['us_per_delivered_frame']:,.0f} µs per delivered frame (all of it / frames delivered)"
    )
    print(
        f"  marginal fan-out cost     {r['marginal_us_per_delivered_frame']:,.0f} µs per extra delivered frame "
        f"(window minus 1-viewer baseline)"
    )
    print(
        f"  reference (ARCHITECTURE)  raw websockets ~{lo:g}-{hi:g} µs, naive Channels on daphne "
        f"~{r['reference_us_per_frame']['naive_channels']:g} µs (2 KB frames, 200 viewers)"
    )
    print(
        f"  bench client CPU          {r['client_cpu_share'] * 100:.1f}% of a core during the window "
        "(latency includes the client's own thread scheduling)"
    )


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
