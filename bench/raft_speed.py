#!/usr/bin/env python
"""Raft engine speed under client load, and the time to rewind a 10-minute run, in one process, no server.

- speed: a 5-server cluster with --clients clients at --writes-per-second in all (sets, deletes and
  compare-and-sets, no reads). A client waits for each answer before its next think time (exponential, mean
  1/rate), so fewer writes complete than the rate says: the default 90 completes about 50 per virtual second, as
  the seek run prints. Simulated for --virtual-seconds as `bench/engine_speed.py` does it (a raw `Simulation` +
  the engine, then the same through `Player` with the live limits, snapshots included), beside the bare event loop
  emitting as many events. Figures: virtual seconds and events per CPU second (time.process_time, best of
  --repeat), and the engine's event rate as a fraction of the bare loop's (the issue asks for at least a quarter):
  the median over --repeat runs of the two side by side, chunk by chunk (`engine_speed.run_side_by_side`),
  because on a shared machine the CPU time of one whole run can vary by half from the next.
- checker: the same engine with the invariant checker replaced by one that checks nothing, to show what the
  live checking of every event costs.
- seek: the same scenario played for --seek-horizon virtual seconds with settings.PLAYGROUND, then `player.seek(t)`
  to --seeks seeded random points: wall-clock p50/p99/max against the 300 ms budget, and the snapshots' size.

    .venv/bin/python bench/raft_speed.py [--json] [--virtual-seconds 60] [--repeat 7] [--seeks 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_parser, machine, machine_text, run_benchmark, setup_django, summary
from engine_speed import (
    SEEK_BUDGET_MS,
    TARGET_SHARE_OF_BARE,
    _rates,
    best,
    run_bare,
    run_engine,
    run_player,
    share_line,
    side_by_side,
    snapshot_stats,
)

SLUG = "raft"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--virtual-seconds", type=float, default=60.0, help="virtual span timed (default 60)")
    parser.add_argument("--chunk", type=float, default=1.0, help="virtual seconds per advance (default 1)")
    parser.add_argument(
        "--repeat", type=int, default=7, help="repetitions: the least CPU counts, the median ratio (default 7)"
    )
    parser.add_argument("--servers", type=int, default=5, help="cluster size (default 5)")
    parser.add_argument("--clients", type=int, default=5, help="clients sharing the load (default 5)")
    parser.add_argument(
        "--writes-per-second",
        type=float,
        default=90.0,
        help="the clients' rate in all (default 90: about 50 writes complete per virtual second)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the scenario's seed (default 1)")
    parser.add_argument("--seek-horizon", type=float, default=600.0, help="virtual length of the seek run (600)")
    parser.add_argument("--seeks", type=int, default=30, help="random seek points (default 30)")
    parser.add_argument("--seek-seed", type=int, default=12345, help="seed of the seek points (default 12345)")
    return parser.parse_args(argv)


def load_scenario(pattern: Any, args: argparse.Namespace) -> Any:
    """Writes only, spread evenly over the clients, through the same link decoding a user's URL goes through."""
    from patterns.core.scenario import decode

    rate = args.writes_per_second / max(1, args.clients)
    query = {"seed": args.seed, "servers": args.servers, "clients": args.clients, "client_rate": rate, "read_share": 0}
    return decode(pattern, [(name, str(value)) for name, value in query.items()])


class NoChecker:
    """Stands in for the invariant checker: sees every event, checks nothing."""

    violations: tuple = ()

    def judge(self, event: Any) -> list[dict[str, Any]]:
        return []


def unchecked_engine(sim: Any, params: Any) -> Any:
    """The Raft engine without its live checker (module level, like every engine factory)."""
    from patterns.raft.engine import RaftEngine

    engine = RaftEngine(sim, params)
    engine.checker = NoChecker()
    return engine


def seek_times(player: Any, count: int, seed: int) -> tuple[list[float], list[float], int]:
    """Wall and CPU milliseconds of `player.seek` to ``count`` seeded random times, and how many landed elsewhere
    (CPU time too, because on a shared machine the wall clock also counts the other processes)."""
    rng = random.Random(seed)
    walls, cpus, missed = [], [], 0
    for t in [rng.uniform(0.0, player.horizon) for _ in range(count)]:
        started, cpu = time.perf_counter(), time.process_time()
        player.seek(t)
        walls.append((time.perf_counter() - started) * 1000.0)
        cpus.append((time.process_time() - cpu) * 1000.0)
        missed += abs(player.now - t) > 1e-9
    return walls, cpus, missed


def measure(args: argparse.Namespace) -> dict[str, Any]:
    setup_django()
    from django.conf import settings

    from patterns.core.registry import get_pattern

    pattern = get_pattern(SLUG)
    if pattern is None:
        raise SystemExit(f"pattern {SLUG!r} is not registered (is patterns.raft in INSTALLED_APPS?)")
    limits = dict(settings.PLAYGROUND)
    scenario = load_scenario(pattern, args)
    span = args.virtual_seconds
    checked = side_by_side(pattern, scenario, span, args.chunk, args.repeat)
    engine_cpu, engine_events, _ = best([run_engine(pattern, scenario, span, args.chunk) for _ in range(args.repeat)])
    bare_cpu, bare_events = best([run_bare(engine_events, span, args.chunk) for _ in range(args.repeat)])
    player_cpu, player_events, _ = best(
        [run_player(pattern, scenario, limits, span, args.chunk) for _ in range(args.repeat)]
    )
    unchecked = dataclasses.replace(pattern, engine=unchecked_engine)
    plain_cpu, plain_events, _ = best([run_engine(unchecked, scenario, span, args.chunk) for _ in range(args.repeat)])
    plain = side_by_side(unchecked, scenario, span, args.chunk, args.repeat)
    engine, bare = _rates(engine_cpu, span, engine_events), _rates(bare_cpu, span, bare_events)

    build_cpu, events, player = run_player(pattern, scenario, limits, args.seek_horizon, args.chunk)
    played = snapshot_stats(player)
    completed = sum(c.completed for c in player.engine.clients.values())
    walls, cpus, missed = seek_times(player, args.seeks, args.seek_seed)
    return {
        "benchmark": "raft_speed",
        "machine": machine(),
        "scenario": {name: scenario.values[name] for name in ("servers", "clients", "client_rate", "read_share")},
        "seed": scenario.seed,
        "virtual_seconds": span,
        "repeat": args.repeat,
        "engine": engine,
        "player": _rates(player_cpu, span, player_events),
        "bare": bare,
        "unchecked": _rates(plain_cpu, span, plain_events),
        "unchecked_share_of_bare": plain["share_of_bare"],
        # from the side-by-side ratios, which hold still: engine CPU per event = bare CPU per event / ratio
        "checker_share_of_cpu": 1.0 - checked["share_of_bare"] / plain["share_of_bare"],
        **checked,
        "share_of_bare_best": engine["events_per_cpu_s"] / bare["events_per_cpu_s"],
        "target_share_of_bare": TARGET_SHARE_OF_BARE,
        "seek": {
            "horizon_s": player.horizon,
            "events": events,
            "client_ops_completed": completed,
            "build_cpu_s": build_cpu,
            "wall_ms": summary(walls),
            "cpu_ms": summary(cpus),
            "budget_ms": SEEK_BUDGET_MS,
            "within_budget": max(walls, default=0.0) <= SEEK_BUDGET_MS,
            "landed_elsewhere": missed,
            "snapshots": played,
        },
    }


def report(result: dict[str, Any]) -> None:
    s = result["scenario"]
    print(
        f"raft_speed: {s['servers']} servers, {s['clients']} clients offered {s['client_rate']:g} writes/s each, seed "
        f"{result['seed']}; {result['virtual_seconds']:g} virtual s, best of {result['repeat']} (CPU = process time)"
    )
    print(f"  {machine_text(result['machine'])}")
    print(f"  {'what':<9} {'events':>9} {'CPU s':>7} {'virt s/CPU s':>13} {'events/CPU s':>13} {'µs/event':>9}")
    for what in ("engine", "player", "unchecked", "bare"):
        r = result[what]
        print(
            f"  {what:<9} {r['events']:>9} {r['cpu_s']:>7.3f} {r['virtual_s_per_cpu_s']:>13,.1f} "
            f"{r['events_per_cpu_s']:>13,.0f} {r['us_per_event']:>9.2f}"
        )
    print(f"  {share_line(result, result['repeat'], result['target_share_of_bare'])}")
    print(f"  best run against best run: {result['share_of_bare_best']:.3f} of the bare loop's event rate")
    print(
        f"  the live invariant checker takes {result['checker_share_of_cpu']:.0%} of the engine's CPU; without it the "
        f"engine's event rate is {result['unchecked_share_of_bare']:.3f} of the bare loop's (median, side by side)"
    )
    seek = result["seek"]
    w, snaps = seek["wall_ms"], seek["snapshots"]
    print(
        f"  seek in a {seek['horizon_s']:g} s run ({seek['events']} events, "
        f"{seek['client_ops_completed'] / seek['horizon_s']:.1f} writes completed per virtual s, "
        f"built in {seek['build_cpu_s']:.1f} CPU s): {w['n']} seeks, p50 {w['p50']:.1f} ms, p99 {w['p99']:.1f} ms, "
        f"max {w['max']:.1f} ms, budget {seek['budget_ms']:g} ms: {'ok' if seek['within_budget'] else 'OVER'}; "
        f"CPU p50 {seek['cpu_ms']['p50']:.1f} ms, max {seek['cpu_ms']['max']:.1f} ms"
    )
    print(
        f"  snapshots: {snaps['count']} every {snaps['spacing_s']:g} s, {snaps['total_bytes'] / 1024:.0f} KB in all, "
        f"largest {snaps['largest_bytes'] / 1024:.1f} KB"
    )
    if seek["landed_elsewhere"]:
        print(f"  !! {seek['landed_elsewhere']} seek(s) did not land on the time asked")


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
