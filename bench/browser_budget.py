#!/usr/bin/env python
"""The browser's budget on a live pattern page: main-thread busy share and click-to-visible latency.

Starts daphne on a free port of 127.0.0.1, opens /patterns/<--pattern>/ (the circuit breaker by default) in headless
Chromium (/usr/bin/chromium, through Playwright), clicks "Start" and lets the run play at 1x:

- busy share: Δ TaskDuration / Δ Timestamp from the DevTools protocol (`Performance.getMetrics`) over --seconds,
  against the 25% budget; with the script/layout/style split, frames applied and Mermaid renders
  (window.playground.stats) in the same window.
- click-to-visible: --clicks times, alternately "Pause" and "Resume"; from the click (a capturing click listener,
  performance.now()) until `#run-status` says "Paused" / "Playing" (a MutationObserver), and until the next frame
  after that (requestAnimationFrame then a task: roughly when it is painted); p50/max against 150 ms.
- node click-to-visible: --clicks times, a click on the first node of the main diagrams that opens a box (its
  details and actions), then Escape; from the click until the box is shown with its actions, and until the next
  frame after that; p50/max against 150 ms.

The window is 1366x800, the screen the page is laid out for.

    .venv/bin/python bench/browser_budget.py [--json] [--seconds 15] [--clicks 10] [--pattern raft] [--preset P]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SLUG,
    Daphne,
    bench_parser,
    machine,
    machine_text,
    open_screen,
    require_chromium,
    run_benchmark,
    summary,
)

BUSY_BUDGET = 0.25
CLICK_BUDGET_MS = 150.0

# Before any page script: note when the ws extension has opened its socket.
INIT_SCRIPT = """
window.__bench = { wsOpen: 0, trials: [] };
document.addEventListener("htmx:wsOpen", () => { window.__bench.wsOpen++; });
"""

# Click-to-visible instrumentation, installed once the run plays.
CLICK_PROBE = """
() => {
  const b = window.__bench;
  b.trials = [];
  const WANT = { Pause: "Paused", Resume: "Playing" };
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button") : null;
    const label = button ? button.textContent.trim() : "";
    if (!(label in WANT)) return;
    b.trials.push({ label, want: WANT[label], click: performance.now(), dom: null, paint: null });
  }, true);
  const check = () => {
    const trial = b.trials[b.trials.length - 1];
    if (!trial || trial.dom !== null) return;
    const state = document.querySelector("#run-status .state");
    if (state && state.textContent.trim() === trial.want) {
      trial.dom = performance.now();
      requestAnimationFrame(() => setTimeout(() => { trial.paint = performance.now(); }, 0));
    }
  };
  // #run-status is replaced (out-of-band swap) by every frame: watch its container.
  new MutationObserver(check).observe(document.getElementById("live") || document.body,
                                      { childList: true, subtree: true, characterData: true });
}
"""

# Node click-to-visible: the page's own (bubbling) click handler fills the box in the same dispatch; a task after it
# sees the result, and a frame then a task later it is roughly painted.
NODE_PROBE = """
() => {
  const b = window.__bench;
  b.nodeTrials = [];
  document.addEventListener("click", (event) => {
    const node = event.target instanceof Element ? event.target.closest(".diagrams.focus .pg-details") : null;
    if (!node) return;
    const trial = { click: performance.now(), dom: null, paint: null, actions: 0 };
    b.nodeTrials.push(trial);
    setTimeout(() => {
      const box = document.querySelector(".diagram-details:not([hidden])");
      if (!box) return;
      trial.dom = performance.now();
      trial.actions = box.querySelectorAll(".details-actions button").length;
      requestAnimationFrame(() => setTimeout(() => { trial.paint = performance.now(); }, 0));
    }, 0);
  }, true);
}
"""
NODE = ".diagrams.focus .pg-details"

# A preset with a story pauses the run at its chapters: while the busy share is measured, press Next whenever the
# run is paused there (Resume after the last chapter), as a learner following the story would, and count how long
# it stood paused.
STORY_AUTOPILOT = """
() => {
  const b = window.__bench;
  b.pausedMs = 0;
  b.playOn = () => {
    const next = document.getElementById("story-next");
    if (next && !next.disabled && next.offsetParent !== null) return next.click();
    const resume = [...document.querySelectorAll("button")].find((el) => el.textContent.trim() === "Resume");
    if (resume) resume.click();
  };
  let last = performance.now();
  b.autopilot = setInterval(() => {
    const now = performance.now();
    if (document.body.dataset.playing !== "true") {
      b.pausedMs += now - last;
      window.__bench.playOn();
    }
    last = now;
  }, 100);
}
"""
STOP_AUTOPILOT = "() => clearInterval(window.__bench.autopilot)"

STATS = """
() => {
  const p = window.playground;
  if (!p) return null;
  const s = p.stats || {};
  return { ...s, renderCount: typeof p.renderCount === "number" ? p.renderCount : null,
           nodes: document.getElementsByTagName("*").length };
}
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="busy-share window at 1x (default 15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of play before the window (default 2)")
    parser.add_argument("--clicks", type=int, default=10, help="Pause/Resume clicks (default 10)")
    parser.add_argument(
        "--paused-seconds",
        type=float,
        default=5.0,
        help="busy-share window with the run paused, for comparison (default 5; 0 skips it)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the pauses between clicks (default 1)")
    parser.add_argument("--pattern", default=SLUG, help=f"the pattern page to open (default {SLUG})")
    parser.add_argument("--preset", default="", help="open ?preset=SLUG instead of the defaults")
    parser.add_argument("--headed", action="store_true", help="show the browser window (needs a display)")
    return parser.parse_args(argv)


def start_run(page: Any, base_url: str, pattern: str, preset: str) -> str:
    """Open the pattern's page (with the preset), press Start and wait until the run plays; its id."""
    page.add_init_script(INIT_SCRIPT)
    page.goto(base_url + page_path(pattern, preset))
    page.wait_for_function("window.__bench.wsOpen > 0 && !!window.playground", timeout=20000)
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_function("document.body.dataset.run && document.body.dataset.playing === 'true'", timeout=20000)
    return page.evaluate("document.body.dataset.run")


def page_path(pattern: str, preset: str) -> str:
    """The pattern page's path, opening ``preset`` if one is named."""
    return f"/patterns/{pattern}/" + (f"?preset={preset}" if preset else "")


def metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {
        "benchmark": "browser_budget",
        "url": page_path(args.pattern, args.preset),
        "machine": machine(),
        "seconds": args.seconds,
        "busy_budget": BUSY_BUDGET,
        "click_budget_ms": CLICK_BUDGET_MS,
    }
    errors: list[str] = []
    with Daphne() as server, sync_playwright() as pw:
        browser, context = open_screen(pw, headed=args.headed)
        try:
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", lambda msg: msg.type == "error" and errors.append(f"console: {msg.text}"))
            page.on("response", lambda resp: resp.status >= 400 and errors.append(f"HTTP {resp.status}: {resp.url}"))
            result["run"] = start_run(page, server.base_url, args.pattern, args.preset)
            page.wait_for_timeout(args.warmup * 1000)

            # -- busy share while playing at 1x --------------------------------------------------------------
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            cdp.send("HeapProfiler.collectGarbage")  # so that the node and heap counts below compare like with like
            page.evaluate(STORY_AUTOPILOT)
            m0, s0, wall0 = metrics(cdp), page.evaluate(STATS), time.monotonic()
            page.wait_for_timeout(args.seconds * 1000)
            m1, s1, wall1 = metrics(cdp), page.evaluate(STATS), time.monotonic()
            page.evaluate(STOP_AUTOPILOT)
            if page.evaluate("document.body.dataset.playing") != "true":  # at a chapter: play on for the clicks
                page.evaluate("window.__bench.playOn()")
                page.wait_for_function("document.body.dataset.playing === 'true'", timeout=10000)
            span = m1["Timestamp"] - m0["Timestamp"]
            cdp.send("HeapProfiler.collectGarbage")  # after the window: not counted in it
            after_gc = metrics(cdp)

            def delta(name: str) -> float:
                return m1.get(name, 0.0) - m0.get(name, 0.0)

            result["busy"] = {
                "window_s": span,
                "wall_s": wall1 - wall0,
                "task_s": delta("TaskDuration"),
                "busy_share": delta("TaskDuration") / span if span else float("nan"),
                # CPU time of the main thread: what the busy share would be without other processes' contention
                "cpu_share": delta("ThreadTime") / span if span and "ThreadTime" in m1 else None,
                "script_share": delta("ScriptDuration") / span if span else float("nan"),
                "layout_share": delta("LayoutDuration") / span if span else float("nan"),
                "style_share": delta("RecalcStyleDuration") / span if span else float("nan"),
                "layouts": delta("LayoutCount"),
                "paused_s": page.evaluate("window.__bench.pausedMs") / 1000,
                "task_ms_per_frame": None,
                # before the window (after a GC) -> after it (after a GC): growth here is a leak
                "js_heap_used_mb": (m0.get("JSHeapUsedSize", 0) / 2**20, after_gc.get("JSHeapUsedSize", 0) / 2**20),
                "dom_nodes": (m0.get("Nodes"), after_gc.get("Nodes")),
                "elements_in_document": (s0 or {}).get("nodes"),
                "elements_in_document_after": (s1 or {}).get("nodes"),
            }
            if s0 and s1:
                frames = s1.get("frames", 0) - s0.get("frames", 0)
                renders = s1.get("renders", 0) - s0.get("renders", 0)
                result["page"] = {
                    "frames_applied": frames,
                    "frames_per_s": frames / span if span else float("nan"),
                    "mermaid_renders": renders,
                    "renders_per_s": renders / span if span else float("nan"),
                    "render_errors": s1.get("renderErrors", 0) - s0.get("renderErrors", 0),
                    "last_render_ms": s1.get("lastRenderMs"),
                    "apply_ms_per_frame": (s1.get("applyMs", 0) - s0.get("applyMs", 0)) / frames if frames else None,
                    "render_count_hook": s1.get("renderCount") is not None,
                }
                if frames:
                    result["busy"]["task_ms_per_frame"] = delta("TaskDuration") * 1000 / frames
            else:
                result["page"] = None  # window.playground is missing: no render counts

            # -- click-to-visible ------------------------------------------------------------------------------
            page.evaluate(CLICK_PROBE)
            rng = random.Random(args.seed)
            for i in range(args.clicks):
                label = "Pause" if i % 2 == 0 else "Resume"
                page.get_by_role("button", name=label, exact=True).click()
                page.wait_for_function(
                    "n => window.__bench.trials.length >= n && window.__bench.trials[n - 1].paint !== null",
                    arg=i + 1,
                    timeout=10000,
                )
                page.wait_for_timeout(rng.uniform(300, 700))  # land the next click anywhere between frames
            trials = page.evaluate("window.__bench.trials")

            # -- node click-to-visible: a node's details and actions -------------------------------------------
            page.evaluate(NODE_PROBE)
            for i in range(args.clicks):
                page.locator(NODE).first.click()
                page.wait_for_function(
                    "n => window.__bench.nodeTrials.length >= n && window.__bench.nodeTrials[n - 1].paint !== null",
                    arg=i + 1,
                    timeout=10000,
                )
                page.keyboard.press("Escape")
                page.wait_for_timeout(rng.uniform(300, 700))
            node_trials = page.evaluate("window.__bench.nodeTrials")

            # -- the same page with the run paused: what the page costs when no frame comes ---------------------
            result["paused"] = None
            if args.paused_seconds > 0:
                if page.evaluate("document.body.dataset.playing") == "true":
                    page.get_by_role("button", name="Pause", exact=True).click()
                page.wait_for_function("document.querySelector('#run-status .state')?.textContent.trim() === 'Paused'")
                page.wait_for_timeout(500)
                p0 = metrics(cdp)
                page.wait_for_timeout(args.paused_seconds * 1000)
                p1 = metrics(cdp)
                paused_span = p1["Timestamp"] - p0["Timestamp"]
                result["paused"] = {
                    "window_s": paused_span,
                    "busy_share": (p1["TaskDuration"] - p0["TaskDuration"]) / paused_span if paused_span else None,
                }
            dom = [t["dom"] - t["click"] for t in trials]
            paint = [t["paint"] - t["click"] for t in trials]
            result["click"] = {
                "trials": [
                    {"label": t["label"], "dom_ms": t["dom"] - t["click"], "paint_ms": t["paint"] - t["click"]}
                    for t in trials
                ],
                "dom_ms": summary(dom),
                "paint_ms": summary(paint),
            }
            result["node_click"] = {
                "actions_offered": [t["actions"] for t in node_trials],
                "dom_ms": summary([t["dom"] - t["click"] for t in node_trials]),
                "paint_ms": summary([t["paint"] - t["click"] for t in node_trials]),
            }
        finally:
            browser.close()
    result["errors"] = errors
    result["server_http_errors"] = server.http_errors()
    return result


def _print_clicks(r: dict, clicks: dict, names: tuple[str, str], extra: str) -> None:
    """The DOM and paint times of one kind of click, each against the click budget."""
    for name, key in zip(names, ("dom_ms", "paint_ms"), strict=True):
        s = clicks[key]
        verdict = "ok" if s["max"] <= r["click_budget_ms"] else "OVER"
        print(
            f"  {name:<25} p50 {s['p50']:.0f} ms  max {s['max']:.0f} ms over {s['n']} clicks "
            f"(budget {r['click_budget_ms']:g} ms: {verdict}{extra})"
        )


def report(r: dict[str, Any]) -> None:
    print(f"browser_budget: {r['url']} in headless Chromium, run {r['run']} at 1x")
    print(f"  {machine_text(r['machine'])}")
    print()
    b = r["busy"]
    verdict = "ok" if b["busy_share"] <= r["busy_budget"] else "OVER"
    print(
        f"  main thread busy          {b['busy_share'] * 100:.1f}% of {b['window_s']:.1f} s "
        f"(budget {r['busy_budget'] * 100:g}%: {verdict})"
    )
    print(
        f"    of which                script {b['script_share'] * 100:.1f}%, layout {b['layout_share'] * 100:.1f}%, "
        f"style {b['style_share'] * 100:.1f}%  ({b['layouts']:.0f} layouts; the rest is paint, parsing, GC...)"
    )
    if b["cpu_share"] is not None:
        print(f"    main thread CPU         {b['cpu_share'] * 100:.1f}% (its CPU time: the busy share less contention)")
    if b["paused_s"] >= 0.05:
        print(f"    story pauses            {b['paused_s']:.1f} s of the window paused at chapters (Next pressed)")
    if b["task_ms_per_frame"] is not None:
        print(f"    per frame applied       {b['task_ms_per_frame']:.1f} ms of main-thread tasks")
    if r.get("paused"):
        print(f"    with the run paused     {r['paused']['busy_share'] * 100:.1f}% of {r['paused']['window_s']:.1f} s")
    heap0, heap1 = b["js_heap_used_mb"]
    nodes0, nodes1 = b["dom_nodes"]
    print(
        f"    JS heap / DOM nodes     {heap0:.1f} -> {heap1:.1f} MB, {nodes0:.0f} -> {nodes1:.0f} nodes (after a GC "
        f"each; {b['elements_in_document']} -> {b['elements_in_document_after']} elements in the document)"
    )
    p = r["page"]
    if p:
        print(
            f"  frames applied            {p['frames_applied']} ({p['frames_per_s']:.1f}/s), "
            f"{p['apply_ms_per_frame'] or 0:.2f} ms each in applyFrame"
        )
        print(
            f"  Mermaid renders           {p['mermaid_renders']} ({p['renders_per_s']:.2f}/s, "
            f"{p['render_errors']} errors, last {p['last_render_ms'] or 0:.0f} ms)"
        )
    else:
        print("  Mermaid renders           not counted: window.playground is missing")
    c = r["click"]
    _print_clicks(r, c, ("click to status (DOM)", "click to next paint"), "")
    print("    each                    " + "  ".join(f"{t['label'][0]}:{t['dom_ms']:.0f}" for t in c["trials"]))
    n = r["node_click"]
    offered = f"; {max(n['actions_offered'], default=0)} actions offered"
    _print_clicks(r, n, ("node click to box (DOM)", "node click to next paint"), offered)
    for line in r["server_http_errors"]:
        print(f"  server answered           {line}")
    if r["errors"]:
        print(f"  page errors ({len(r['errors'])}):")
        for line in r["errors"][:10]:
            print(f"    {line[:200]}")


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
