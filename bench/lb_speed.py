#!/usr/bin/env python
"""Load-balancing engine speed: requests simulated per CPU second for each algorithm, beside the bare event loop.

For each algorithm: one lane, the pattern's defaults otherwise except --rate, --servers and --virtual-seconds;
a raw `Simulation` + the engine advanced in 1 s chunks with the events collected after each (best of --repeat,
time.process_time). Figures: requests (arrivals) per CPU second, events per CPU second, and the CPU of the same
number of events through the bare event loop of bench/engine_speed.py (one no-op action emitting one event):
engine / bare is what the algorithm and the servers cost above the kernel. A last row races four lanes at once
(compare mode: one request stream, four copies). Side by side: the engine's event rate as a fraction of the bare
loop's (the issue asks for at least a quarter), the median over --repeat runs of the two run in turn, chunk by chunk
(`engine_speed.run_side_by_side`, as bench/raft_speed.py measures it).

    .venv/bin/python bench/lb_speed.py [--json] [--virtual-seconds 60] [--rate 400] [--servers 10] [--repeat 5]
        [--algorithms peak_ewma,bounded_load,compare]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_parser, machine, machine_text, run_benchmark, setup_django
from engine_speed import TARGET_SHARE_OF_BARE, comma_list, run_bare, side_by_side

COMPARE = "round_robin.p2c_least_request.ring_hash.maglev"
COMPARE_ROW = "compare"  # what --algorithms calls the compare-mode row
CHUNK = 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--virtual-seconds", type=float, default=60.0, help="virtual span simulated (default 60)")
    parser.add_argument("--rate", type=float, default=400.0, help="requests per virtual second (default 400)")
    parser.add_argument("--servers", type=int, default=10, help="servers (default 10)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="repetitions: the least CPU counts, the median ratio (default 5)"
    )
    parser.add_argument(
        "--algorithms",
        type=comma_list,
        default=None,
        help=f"comma-separated rows to measure: algorithm names and '{COMPARE_ROW}' (default: every row)",
    )
    args = parser.parse_args(argv)
    rows = all_rows()
    if args.algorithms is None:
        args.algorithms = rows
    elif unknown := [name for name in args.algorithms if name not in rows]:
        parser.error(f"unknown --algorithms {', '.join(unknown)}; choose from {', '.join(rows)}")
    return args


def all_rows() -> list[str]:
    """Every row the bench can measure, by the name --algorithms takes, in the printed order."""
    from patterns.load_balancing.balancers import ALGORITHMS

    return [*ALGORITHMS, COMPARE_ROW]


def lanes_scenario(pattern: Any, algorithms: str, args: argparse.Namespace) -> Any:
    """The pattern's defaults with these lanes, --rate and --servers, seed 1, no script."""
    from patterns.core.scenario import Scenario

    params = {**pattern.defaults(), "algorithms": algorithms, "rate": args.rate, "servers": args.servers}
    return Scenario(pattern.slug, 1, tuple(params.items()))


def run_lanes(pattern: Any, scenario: Any, args: argparse.Namespace) -> tuple[float, int, int]:
    """(CPU seconds, requests, events) of one run."""
    from patterns.core.sim import Simulation

    started = time.process_time()
    sim = Simulation(scenario.seed)
    engine = pattern.engine(sim, scenario.values)
    engine.start()
    events, t = 0, 0.0
    while t < args.virtual_seconds:
        t = min(args.virtual_seconds, t + CHUNK)
        sim.run_until(t)
        events += len(sim.collect())
    return time.process_time() - started, engine.traffic.issued, events


def measure(args: argparse.Namespace) -> dict[str, Any]:
    setup_django()
    from patterns.core.registry import get_pattern

    pattern = get_pattern("load-balancing")
    span = args.virtual_seconds
    rows = {}
    for name in (COMPARE if row == COMPARE_ROW else row for row in args.algorithms):
        scenario = lanes_scenario(pattern, name, args)
        cpu, requests, events = min(
            (run_lanes(pattern, scenario, args) for _ in range(args.repeat)), key=lambda r: r[0]
        )
        bare_cpu, _ = min((run_bare(events, span, CHUNK) for _ in range(args.repeat)), key=lambda r: r[0])
        rows[name] = {
            "lanes": len(name.split(".")),
            "cpu_s": cpu,
            "requests": requests,
            "events": events,
            "requests_per_cpu_s": requests / cpu,
            "events_per_cpu_s": events / cpu,
            "us_per_request": cpu / requests * 1e6,
            "bare_events_per_cpu_s": events / bare_cpu,
            "engine_over_bare": cpu / bare_cpu,
            **side_by_side(pattern, scenario, span, CHUNK, args.repeat),
        }
    return {
        "benchmark": "lb_speed",
        "machine": machine(),
        "virtual_seconds": span,
        "rate": args.rate,
        "servers": args.servers,
        "repeat": args.repeat,
        "algorithms": rows,
        "target_share_of_bare": TARGET_SHARE_OF_BARE,
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"lb_speed: {result['rate']:g} requests/s over {result['servers']} servers for {result['virtual_seconds']:g} "
        f"virtual s, best of {result['repeat']} (CPU = time.process_time)"
    )
    print(f"  {machine_text(result['machine'])}")
    print()
    print(
        f"  {'algorithm':<24} {'requests':>8} {'events':>8} {'req/CPU s':>10} {'µs/req':>7} {'events/CPU s':>13} "
        f"{'bare ev/CPU s':>14} {'x bare':>7} {'side by side':>17}"
    )
    for name, row in result["algorithms"].items():
        label = name if row["lanes"] == 1 else f"compare mode, {row['lanes']} lanes"
        print(
            f"  {label:<24} {row['requests']:>8} {row['events']:>8} {row['requests_per_cpu_s']:>10,.0f} "
            f"{row['us_per_request']:>7.1f} {row['events_per_cpu_s']:>13,.0f} {row['bare_events_per_cpu_s']:>14,.0f} "
            f"{row['engine_over_bare']:>7.1f} {row['share_of_bare']:>6.3f} ({row['share_of_bare_range'][0]:.2f}-"
            f"{row['share_of_bare_range'][1]:.2f})"
        )
    print(f"\n  compare mode lanes: {COMPARE} (one request stream, four copies)")
    target = result["target_share_of_bare"]
    below = [name for name, row in result["algorithms"].items() if row["share_of_bare"] < target]
    print(
        f"  side by side: the engine's event rate over the bare loop's, median of {result['repeat']} runs "
        f"(range); target >= {target:.2f}: {'ok' if not below else 'BELOW for ' + ', '.join(below)}"
    )


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
