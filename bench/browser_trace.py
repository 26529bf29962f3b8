#!/usr/bin/env python
"""Where a live pattern page spends its main thread: CPU per trace event kind and per JavaScript function.

Starts daphne on a free port of 127.0.0.1, opens /patterns/<--pattern>/ (with --preset) in headless Chromium, clicks
Start, plays --warmup seconds at 1x, then records a Chromium trace (`devtools.timeline`) for --seconds while playing
through the preset's story (Next at each chapter, as `browser_budget.py` does). Prints, for the renderer's main
thread, the CPU time (`tdur`: what the thread itself ran, whatever else the machine does) and wall time of each trace
event kind, in ms per second and per frame applied. Kinds nest (a `RunTask` holds the `FunctionCall`s it ran, and
those the `Layout`s they forced), so the CPU column does not add up (`RunTask` is the whole); the "own" column, each
kind's CPU less that of the events nested in it, does. A `FunctionCall` is named after
the script function the browser called (`function@file:line`: the ws extension's message handler, motion.js's
animation frame callback...). With --js, a sampling JavaScript profile is taken over the same window and its
functions listed by self time.

With --replay FPS the server is taken out of the loop: the run's websocket messages are recorded first (at 1x,
through the story), then a fresh page is opened with its websocket answered by this script, which sends the
recorded messages one every 1/FPS s, and that page is traced. Every build then does the same work at the same
pace, however slowly a loaded machine's server makes frames (a message's JavaScript then runs outside any
`FunctionCall`: it is in RunTask's own time).

    .venv/bin/python bench/browser_trace.py [--pattern raft] [--preset leader-crash] [--replay 10] [--js] [--save F]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SLUG, Daphne, bench_parser, machine, machine_text, open_screen, require_chromium, run_benchmark
from browser_budget import STATS, STOP_AUTOPILOT, STORY_AUTOPILOT, page_path, start_run

CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute"]
MAIN_THREAD = "CrRendererMain"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--pattern", default=SLUG, help=f"the pattern page to open (default {SLUG})")
    parser.add_argument("--preset", default="", help="open ?preset=SLUG instead of the defaults")
    parser.add_argument("--seconds", type=float, default=8.0, help="traced window at 1x (default 8)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of play before the window (default 3)")
    parser.add_argument("--top", type=int, default=25, help="rows of each table (default 25)")
    parser.add_argument("--js", action="store_true", help="also take a JavaScript sampling profile")
    parser.add_argument(
        "--replay",
        type=float,
        default=0.0,
        metavar="FPS",
        help="record the run's frames, then trace a fresh page fed those frames at FPS a second, with no server in "
        "the loop (the same work at the same pace, however loaded the machine)",
    )
    parser.add_argument(
        "--save", default="", help="also write the trace to this file (DevTools' Performance panel opens it)"
    )
    return parser.parse_args(argv)


def event_name(event: dict[str, Any]) -> str:
    if event["name"] != "FunctionCall":
        return event["name"]
    data = event.get("args", {}).get("data", {})
    where = data.get("url", "").rsplit("/", 1)[-1]
    return f"FunctionCall {data.get('functionName', '')}@{where}:{data.get('lineNumber', '')}"


def main_thread_kinds(events: list[dict[str, Any]]) -> tuple[float, dict[str, dict[str, float]]]:
    """The traced span in seconds, and per event kind of the busiest renderer main thread: CPU ms in all and of its
    own (less the events nested in it), wall ms, count."""
    threads = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e.get("args", {}).get("name") == MAIN_THREAD
    }
    complete = [e for e in events if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in threads]
    busiest = collections.Counter((e["pid"], e["tid"]) for e in complete).most_common(1)
    main = sorted(
        (e for e in complete if busiest and (e["pid"], e["tid"]) == busiest[0][0]),
        key=lambda e: (e["ts"], -e.get("dur", 0)),
    )
    stamps = [e["ts"] for e in events if e.get("ts")]
    span = (max(stamps) - min(stamps)) / 1e6 if stamps else 0.0
    kinds: dict[str, dict[str, float]] = collections.defaultdict(
        lambda: {"cpu_ms": 0.0, "own_cpu_ms": 0.0, "wall_ms": 0.0, "count": 0}
    )
    enclosing: list[tuple[float, dict[str, float]]] = []  # (end, kind) of the events the next one may nest in
    for e in main:
        cpu = e.get("tdur", 0) / 1000
        while enclosing and enclosing[-1][0] <= e["ts"]:
            enclosing.pop()
        if enclosing:
            enclosing[-1][1]["own_cpu_ms"] -= cpu
        kind = kinds[event_name(e)]
        kind["cpu_ms"] += cpu
        kind["own_cpu_ms"] += cpu
        kind["wall_ms"] += e.get("dur", 0) / 1000
        kind["count"] += 1
        enclosing.append((e["ts"] + e.get("dur", 0), kind))
    return span, dict(kinds)


def js_self_times(profile: dict[str, Any]) -> dict[str, float]:
    """Self time in ms per function of a CDP `Profiler.stop` profile (samples spread evenly over its span)."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    samples = profile.get("samples", [])
    per_sample = (profile["endTime"] - profile["startTime"]) / 1000 / max(1, len(samples))
    hits = collections.Counter(samples)
    times: dict[str, float] = collections.defaultdict(float)
    for node_id, count in hits.items():
        frame = nodes[node_id]["callFrame"]
        where = frame.get("url", "").rsplit("/", 1)[-1]
        name = f"{frame.get('functionName') or '(anonymous)'}@{where}:{frame.get('lineNumber', -1) + 1}"
        times[name] += count * per_sample
    return dict(times)


def record_frames(page: Any, base_url: str, args: argparse.Namespace) -> list[str]:
    """Start a run and keep the messages its websocket brings, playing through the story, until there are enough
    to replay --warmup and --seconds at --replay frames a second (or three times that long has passed)."""
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    start_run(page, base_url, args.pattern, args.preset)
    page.evaluate(STORY_AUTOPILOT)
    wanted = (args.warmup + args.seconds) * args.replay + 2
    deadline = time.monotonic() + 3 * (args.warmup + args.seconds) + 10
    while len(frames) < wanted and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.evaluate(STOP_AUTOPILOT)
    return frames


def replay(page: Any, base_url: str, args: argparse.Namespace, frames: list[str]) -> Iterator[None]:
    """Open the page again with its websocket answered here, not by the server: the recorded messages, one every
    1/--replay s; yields after the warm-up, then once the rest was sent."""
    sockets: list[Any] = []
    page.route_web_socket(re.compile(r"/ws/"), lambda ws: sockets.append(ws))  # nothing reaches the server
    page.goto(base_url + page_path(args.pattern, args.preset))
    page.wait_for_function("!!window.playground", timeout=20000)
    while not sockets:
        page.wait_for_timeout(50)
    warm = int(args.warmup * args.replay)
    due = time.monotonic()
    for index, message in enumerate(frames[: warm + int(args.seconds * args.replay)]):
        if index == warm:
            yield
            due = time.monotonic()
        sockets[-1].send(message)
        due += 1 / args.replay
        page.wait_for_timeout(max(0.0, due - time.monotonic()) * 1000)
    yield


def live(page: Any, base_url: str, args: argparse.Namespace) -> Iterator[None]:
    """The run played by the server at 1x, through its story: yields after the warm-up, then after --seconds."""
    start_run(page, base_url, args.pattern, args.preset)
    page.wait_for_timeout(args.warmup * 1000)
    page.evaluate(STORY_AUTOPILOT)
    yield
    page.wait_for_timeout(args.seconds * 1000)
    page.evaluate(STOP_AUTOPILOT)
    yield


def measure(args: argparse.Namespace) -> dict[str, Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {
        "benchmark": "browser_trace",
        "url": page_path(args.pattern, args.preset),
        "machine": machine(),
        "top": args.top,
        "replay": args.replay,
    }
    with Daphne() as server, sync_playwright() as pw:
        browser, context = open_screen(pw)
        try:
            page = context.new_page()
            if args.replay:
                frames = record_frames(page, server.base_url, args)
                result["recorded"] = len(frames)
                page = context.new_page()
                steps = replay(page, server.base_url, args, frames)
            else:
                steps = live(page, server.base_url, args)
            next(steps)
            cdp = context.new_cdp_session(page)
            if args.js:
                cdp.send("Profiler.enable")
                cdp.send("Profiler.start")
            before = page.evaluate(STATS) or {}
            browser.start_tracing(page=page, categories=CATEGORIES)
            next(steps)
            trace = browser.stop_tracing()
            after = page.evaluate(STATS) or {}
            if args.js:
                result["js_ms"] = js_self_times(cdp.send("Profiler.stop")["profile"])
        finally:
            browser.close()
    if args.save:
        Path(args.save).write_bytes(trace)
    span, kinds = main_thread_kinds(json.loads(trace)["traceEvents"])
    result["span_s"] = span
    result["frames_applied"] = after.get("frames", 0) - before.get("frames", 0)
    result["kinds"] = kinds
    return result


def report(r: dict[str, Any]) -> None:
    span, frames = r["span_s"] or float("nan"), r["frames_applied"]
    whole = r["kinds"].get("RunTask", {"cpu_ms": 0.0, "wall_ms": 0.0})
    how = f"{r['recorded']} frames recorded at 1x, replayed at {r['replay']:g}/s" if r["replay"] else "a run at 1x"
    print(f"browser_trace: {r['url']} in headless Chromium, {how}")
    print(f"  {machine_text(r['machine'])}")
    print(
        f"  main thread over {span:.1f} s, {frames} frames applied ({frames / span:.1f}/s): "
        f"CPU {whole['cpu_ms'] / span / 10:.1f}%, busy (wall) {whole['wall_ms'] / span / 10:.1f}%"
    )
    print()
    print(f"  {'CPU ms/s':>9} {'own ms/s':>9} {'ms/frame':>9} {'wall ms/s':>10} {'count':>6}  event kind")
    ranked = sorted(r["kinds"].items(), key=lambda item: -item[1]["cpu_ms"])[: r["top"]]
    for name, k in ranked:
        per_frame = k["cpu_ms"] / frames if frames else float("nan")
        print(
            f"  {k['cpu_ms'] / span:9.1f} {k['own_cpu_ms'] / span:9.1f} {per_frame:9.2f} {k['wall_ms'] / span:10.1f}"
            f" {k['count']:6.0f}  {name}"
        )
    if "js_ms" in r:
        print()
        print(f"  {'self ms/s':>9} {'ms/frame':>9}  JavaScript function (sampled)")
        for name, ms in sorted(r["js_ms"].items(), key=lambda item: -item[1])[: r["top"]]:
            per_frame = ms / frames if frames else float("nan")
            print(f"  {ms / span:9.1f} {per_frame:9.2f}  {name}")


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
