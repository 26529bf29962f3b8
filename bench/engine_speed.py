#!/usr/bin/env python
"""Circuit-breaker engine speed, seek latency and snapshot memory, in one process, no server.

For each scenario (the pattern's defaults and the `cascade` preset by default):

- engine: a raw `Simulation` + the engine, scripted perturbations applied as the player applies them, advanced in
  chunks of virtual time with the events collected after each chunk. Figures: virtual seconds simulated per CPU
  second and events per CPU second (time.process_time, best of --repeat).
- player: the same scenario through `patterns.core.player.Player` with the live limits (snapshots included).
- bare: a `Simulation` whose one no-op action emits one event and reschedules itself, as many events over the
  same virtual span: the cost of the kernel's queue and events alone. Printed: engine CPU / bare CPU (best
  against best).
- side by side: the engine's event rate as a fraction of the bare loop's (the target is at least a quarter), the
  median over --repeat runs of the two run in turn, chunk by chunk (`run_side_by_side`), because on a shared
  machine the CPU time of whole runs wanders. `side_by_side` and `share_line` give the figures and their line to
  any pattern's bench.
- seek: a run of --seek-horizons virtual seconds with settings.PLAYGROUND, then `player.seek(t)` to --seeks
  seeded random points; wall-clock p50/p99/max against the 300 ms budget, and the snapshots' total size.

    .venv/bin/python bench/engine_speed.py [--json] [--virtual-seconds 600] [--repeat 5] [--seeks 30]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SLUG, bench_parser, machine, machine_text, run_benchmark, setup_django, summary

SEEK_BUDGET_MS = 300.0
TARGET_SHARE_OF_BARE = 0.25  # the least share of the bare loop's event rate an engine should keep, side by side


def comma_list(text: str) -> list[str]:
    """The items of a comma-separated option, stripped, blanks left out (argparse applies it to defaults too)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--virtual-seconds", type=float, default=600.0, help="virtual span simulated (default 600)")
    parser.add_argument("--chunk", type=float, default=1.0, help="virtual seconds per advance (default 1)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="repetitions: the least CPU counts, the median ratio (default 5)"
    )
    parser.add_argument(
        "--scenarios",
        type=comma_list,
        default="default,cascade",
        help="comma-separated: 'default' or preset slugs of the pattern (default: default,cascade)",
    )
    parser.add_argument("--seeks", type=int, default=30, help="random seek points per run (default 30)")
    parser.add_argument("--seek-seed", type=int, default=12345, help="seed of the seek points (default 12345)")
    parser.add_argument(
        "--seek-horizons",
        type=comma_list,
        default="600,max",
        help="comma-separated virtual lengths of the runs to seek in; 'max' = MAX_VIRTUAL_TIME (default 600,max)",
    )
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------------- pieces


class Bare:
    """The cheapest possible engine: one action that emits one event and reschedules itself."""

    def __init__(self, sim: Any, interval: float):
        self.sim = sim
        self.interval = interval

    def tick(self) -> None:
        self.sim.emit("tick")
        self.sim.schedule(self.interval, self.tick)


def scenario_for(pattern: Any, name: str) -> Any:
    from patterns.core.scenario import decode, default_scenario

    if name == "default":
        return default_scenario(pattern)
    return decode(pattern, [("preset", name)])


def settle() -> None:
    """Collect, then freeze what is alive (Django, the modules, earlier runs), so that the collector's full passes
    during a timed run walk only what that run made: otherwise a run pays for walking a heap it never touched, by
    chance (whether a full pass falls inside it), up to a third of a bare loop's time."""
    gc.collect()
    gc.freeze()


def run_engine(pattern: Any, scenario: Any, span: float, chunk: float) -> tuple[float, int, Any]:
    """Raw Simulation + engine, scripted actions applied as the player does; returns (CPU seconds, events, engine)."""

    settle()
    started = time.process_time()
    sim, engine, script = _started(pattern, scenario)
    events = 0
    t = 0.0
    while t < span:
        t = min(span, t + chunk)
        events += _advance(sim, engine, script, t)
    return time.process_time() - started, events, engine


def _started(pattern: Any, scenario: Any) -> tuple[Any, Any, list]:
    """A raw `Simulation` with the scenario's engine started, and its script still to apply."""
    from patterns.core.sim import Simulation

    sim = Simulation(scenario.seed)
    engine = pattern.engine(sim, scenario.values)
    engine.start()
    return sim, engine, list(scenario.script)


def _advance(sim: Any, engine: Any, script: list, t: float) -> int:
    """Run to ``t``, applying the scripted actions due on the way as the player does; the events emitted."""
    from patterns.core.player import apply_action

    while script and script[0].t <= t:
        action = script.pop(0)
        sim.run_until(action.t)
        apply_action(sim, engine, action)
    sim.run_until(t)
    return len(sim.collect())


def run_side_by_side(pattern: Any, scenario: Any, span: float, chunk: float) -> float:
    """The engine's event rate as a fraction of the bare loop's, the two run in turn, chunk by chunk, each chunk
    timed on its own: both see the machine as it was at that moment, so the ratio holds still where whole separate
    runs wander (by half, on a shared machine). The bare loop emits as many events per chunk as the engine did in
    its latest; who goes first alternates (neither always finds the caches as the other left them), and each chunk
    starts with the youngest generation collected (neither pays for collecting the other's objects). A bare loop
    measured this way against itself comes out at 0.99 (median of 11, range 0.94-1.03)."""
    from patterns.core.sim import Simulation

    settle()
    clock = time.process_time
    sim, engine, script = _started(pattern, scenario)
    bare_sim = Simulation(1)
    bare = Bare(bare_sim, 1.0)  # one tick per virtual second: running n seconds on emits n events
    bare_sim.schedule(bare.interval, bare.tick)
    spent = {"engine": 0.0, "bare": 0.0}
    counted = {"engine": 0, "bare": 0}
    latest, turn = 0, 0
    t = 0.0
    while t < span:
        t = min(span, t + chunk)
        turn += 1
        for side in ("engine", "bare") if turn % 2 else ("bare", "engine"):
            gc.collect(0)
            started = clock()
            if side == "engine":
                latest = emitted = _advance(sim, engine, script, t)
            else:
                bare_sim.run_until(bare_sim.now + latest)
                emitted = len(bare_sim.collect())
            spent[side] += clock() - started
            counted[side] += emitted
    return (counted["engine"] / spent["engine"]) / (counted["bare"] / spent["bare"])


def side_by_side(pattern: Any, scenario: Any, span: float, chunk: float, repeat: int) -> dict[str, Any]:
    """`run_side_by_side` ``repeat`` times: the median share of the bare loop's event rate and the range of the
    shares, as a bench's result row holds them."""
    shares = sorted(run_side_by_side(pattern, scenario, span, chunk) for _ in range(repeat))
    return {"share_of_bare": statistics.median(shares), "share_of_bare_range": [shares[0], shares[-1]]}


def share_line(row: dict[str, Any], repeat: int, target: float = TARGET_SHARE_OF_BARE) -> str:
    """The side-by-side figures of a row (from `side_by_side`) against the target, in words."""
    share, (low, high) = row["share_of_bare"], row["share_of_bare_range"]
    return (
        f"engine event rate = {share:.3f} of the bare loop's, median of {repeat} side-by-side runs "
        f"(range {low:.3f}-{high:.3f}; target >= {target:.2f}): {'ok' if share >= target else 'BELOW'}"
    )


def run_player(pattern: Any, scenario: Any, limits: dict, span: float, chunk: float) -> tuple[float, int, Any]:
    """The same through Player (snapshots and the event history included); returns (CPU s, events, player)."""
    from patterns.core.player import Player

    settle()
    started = time.process_time()
    player = Player(pattern, scenario, limits)
    events = len(player.drain())
    t = 0.0
    while t < span and player.stopped is None:
        t = min(span, t + chunk)
        player.advance_to(t)
        events += len(player.drain())
    return time.process_time() - started, events, player


def run_bare(events: int, span: float, chunk: float) -> tuple[float, int]:
    from patterns.core.sim import Simulation

    settle()
    started = time.process_time()
    sim = Simulation(1)
    bare = Bare(sim, span / max(1, events))
    sim.schedule(bare.interval, bare.tick)
    emitted = 0
    t = 0.0
    while t < span:
        t = min(span, t + chunk)
        sim.run_until(t)
        emitted += len(sim.collect())
    return time.process_time() - started, emitted


def best(runs: list[tuple]) -> tuple:
    return min(runs, key=lambda r: r[0])


def snapshot_stats(player: Any) -> dict[str, Any]:
    blobs = [len(blob) for _t, blob in player._snapshots]
    times = [t for t, _blob in player._snapshots]
    return {
        "in_time_order": times == sorted(times) and len(set(times)) == len(times),
        "count": len(blobs),
        "spacing_s": player.snapshot_every,
        "total_bytes": sum(blobs),
        "largest_bytes": max(blobs) if blobs else 0,
    }


# ---------------------------------------------------------------------------------------------------- main


def measure(args: argparse.Namespace) -> dict[str, Any]:
    setup_django()
    from django.conf import settings

    from patterns.core.registry import get_pattern

    pattern = get_pattern(SLUG)
    if pattern is None:
        raise SystemExit(f"pattern {SLUG!r} is not registered (is patterns/circuit_breaker/pattern.py importable?)")
    limits = dict(settings.PLAYGROUND)
    span = args.virtual_seconds
    result: dict[str, Any] = {
        "benchmark": "engine_speed",
        "machine": machine(),
        "virtual_seconds": span,
        "chunk": args.chunk,
        "repeat": args.repeat,
        "limits": {k: limits[k] for k in ("SNAPSHOT_EVERY", "MAX_VIRTUAL_TIME", "MAX_EVENTS_PER_RUN", "EVENT_HISTORY")},
        "speed": {},
        "seek": {},
        "seek_budget_ms": SEEK_BUDGET_MS,
        "target_share_of_bare": TARGET_SHARE_OF_BARE,
    }
    for name in args.scenarios:
        scenario = scenario_for(pattern, name)
        engine_cpu, engine_events, _ = best(
            [run_engine(pattern, scenario, span, args.chunk) for _ in range(args.repeat)]
        )
        player_cpu, player_events, _ = best(
            [run_player(pattern, scenario, limits, span, args.chunk) for _ in range(args.repeat)]
        )
        bare_cpu, bare_events = best([run_bare(engine_events, span, args.chunk) for _ in range(args.repeat)])
        result["speed"][name] = {
            "events": engine_events,
            "engine": _rates(engine_cpu, span, engine_events),
            "player": _rates(player_cpu, span, player_events),
            "bare": _rates(bare_cpu, span, bare_events),
            "engine_over_bare": engine_cpu / bare_cpu if bare_cpu else float("nan"),
            "player_over_engine": player_cpu / engine_cpu if engine_cpu else float("nan"),
            **side_by_side(pattern, scenario, span, args.chunk, args.repeat),
        }

        for horizon_text in args.seek_horizons:
            horizon = limits["MAX_VIRTUAL_TIME"] if horizon_text == "max" else float(horizon_text)
            build_cpu, events, player = run_player(pattern, scenario, limits, horizon, args.chunk)
            before = snapshot_stats(player)
            rng = random.Random(args.seek_seed)
            points = [rng.uniform(0.0, player.horizon) for _ in range(args.seeks)]
            walls: list[float] = []
            missed = 0
            for t in points:
                started = time.perf_counter()
                player.seek(t)
                walls.append((time.perf_counter() - started) * 1000.0)
                missed += abs(player.now - t) > 1e-9  # a seek must land exactly where asked
            stats = summary(walls)
            result["seek"][f"{name}@{horizon:g}"] = {
                "scenario": name,
                "horizon_s": player.horizon,
                "events": events,
                "build_cpu_s": build_cpu,
                "seeks": len(points),
                "wall_ms": stats,
                "within_budget": stats["max"] <= SEEK_BUDGET_MS,
                "landed_elsewhere": missed,
                "snapshots": before,  # memory of the run as played, before any seek
                "snapshots_after_seeks": snapshot_stats(player),
            }
    return result


def _rates(cpu: float, span: float, events: int) -> dict[str, float]:
    return {
        "cpu_s": cpu,
        "events": events,
        "virtual_s_per_cpu_s": span / cpu if cpu else float("nan"),
        "events_per_cpu_s": events / cpu if cpu else float("nan"),
        "us_per_event": cpu / events * 1e6 if events else float("nan"),
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"engine_speed: circuit-breaker, {result['virtual_seconds']:g} virtual s per run, "
        f"advanced in {result['chunk']:g} s chunks, best of {result['repeat']} (CPU = time.process_time)"
    )
    print(f"  {machine_text(result['machine'])}")
    print()
    print(
        f"  {'scenario':<10} {'what':<7} {'events':>8} {'CPU s':>7} {'virt s/CPU s':>13} {'events/CPU s':>13} "
        f"{'µs/event':>9}"
    )
    for name, row in result["speed"].items():
        for what in ("engine", "player", "bare"):
            r = row[what]
            print(
                f"  {name:<10} {what:<7} {r['events']:>8} {r['cpu_s']:>7.3f} {r['virtual_s_per_cpu_s']:>13,.0f} "
                f"{r['events_per_cpu_s']:>13,.0f} {r['us_per_event']:>9.2f}"
            )
        print(
            f"  {name:<10} engine / bare = {row['engine_over_bare']:.1f}x CPU for the same events; "
            f"player / engine = {row['player_over_engine']:.2f}x (snapshots, history)"
        )
        print(f"  {name:<10} {share_line(row, result['repeat'], result['target_share_of_bare'])}")
    print()
    print(f"  seek: player.seek(t) to random points (wall ms), live limits; budget {result['seek_budget_ms']:g} ms;")
    print("  snapshots: count, spacing and pickled size after playing the run, before the seeks")
    print(
        f"  {'run':<16} {'events':>8} {'seeks':>5} {'p50':>7} {'p99':>7} {'max':>7}  {'budget':<6} "
        f"{'snapshots':>9} {'every':>6} {'total KB':>9} {'largest KB':>10}"
    )
    for key, row in result["seek"].items():
        w, s = row["wall_ms"], row["snapshots"]
        verdict = "ok" if row["within_budget"] else "OVER"
        print(
            f"  {key:<16} {row['events']:>8} {row['seeks']:>5} {w['p50']:>7.1f} {w['p99']:>7.1f} {w['max']:>7.1f}  "
            f"{verdict:<6} {s['count']:>9} {s['spacing_s']:>5g}s {s['total_bytes'] / 1024:>9.0f} "
            f"{s['largest_bytes'] / 1024:>10.1f}"
        )
        if row["landed_elsewhere"]:
            print(f"  {'':<16} !! {row['landed_elsewhere']} seek(s) did not land on the time asked")
        if not row["snapshots_after_seeks"]["in_time_order"]:
            print(f"  {'':<16} !! after the seeks the snapshot list is out of time order or has duplicates")


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
