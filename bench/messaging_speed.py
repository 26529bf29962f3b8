#!/usr/bin/env python
"""Message-queue engine speed: messages simulated per CPU second, beside the bare event loop. No server.

For each scenario (the work-queue defaults and the `crash-redelivery` preset by default, optionally at a higher
publish rate with --rate):

- engine: a raw `Simulation` + the engine, scripted perturbations applied as the player applies them, advanced in
  chunks of virtual time with the events collected after each chunk. Figures: messages published (and copies
  settled) per CPU second, events per CPU second, virtual seconds per CPU second (time.process_time, best of
  --repeat); the ledger is checked to balance at the end.
- player: the same through `patterns.core.player.Player` with the live limits (snapshots included).
- bare: the kernel's cost alone (bench/engine_speed.py's bare loop) for as many events over the same span.
- side by side: the engine's event rate as a fraction of the bare loop's (the issue asks for at least a quarter),
  the median over --repeat runs of the two run in turn, chunk by chunk (`engine_speed.run_side_by_side`, as
  bench/raft_speed.py measures it), because on a shared machine the CPU time of whole runs wanders.

    .venv/bin/python bench/messaging_speed.py [--json] [--virtual-seconds 300] [--repeat 5] [--rate 50]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_parser, machine, machine_text, run_benchmark, setup_django
from engine_speed import (
    TARGET_SHARE_OF_BARE,
    best,
    comma_list,
    run_bare,
    run_engine,
    run_player,
    scenario_for,
    share_line,
    side_by_side,
)

SLUG = "messaging"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--virtual-seconds", type=float, default=300.0, help="virtual span simulated (default 300)")
    parser.add_argument("--chunk", type=float, default=1.0, help="virtual seconds per advance (default 1)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="repetitions: the least CPU counts, the median ratio (default 5)"
    )
    parser.add_argument(
        "--scenarios",
        type=comma_list,
        default="default,crash-redelivery",
        help="comma-separated: 'default' (the work-queue view) or preset slugs (default: default,crash-redelivery)",
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="also run each scenario at this publish rate, with enough workers"
    )
    return parser.parse_args(argv)


def with_rate(pattern: Any, scenario: Any, rate: float) -> Any:
    """The scenario at another publish rate, with the most workers and a processing time they can keep up with."""
    from patterns.core.scenario import Scenario

    values = {
        **scenario.values,
        "publish_rate": rate,
        "consumers": pattern.param("consumers").max,
        "process_ms": 0.5 * 1000.0 * pattern.param("consumers").max / rate,
    }
    return Scenario(scenario.pattern, scenario.seed, tuple(values.items()), scenario.script)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    setup_django()
    from django.conf import settings

    from patterns.core.registry import get_pattern

    pattern = get_pattern(SLUG)
    limits = dict(settings.PLAYGROUND)
    span = args.virtual_seconds
    result: dict[str, Any] = {
        "benchmark": "messaging_speed",
        "machine": machine(),
        "virtual_seconds": span,
        "chunk": args.chunk,
        "repeat": args.repeat,
        "speed": {},
    }
    runs = [(name, scenario_for(pattern, name)) for name in args.scenarios]
    if args.rate > 0:
        runs += [(f"{name}@{args.rate:g}/s", with_rate(pattern, scenario, args.rate)) for name, scenario in runs]
    for name, scenario in runs:
        cpu, events, engine = best([run_engine(pattern, scenario, span, args.chunk) for _ in range(args.repeat)])
        ledger = engine.ledger()
        player_cpu, _, _ = best([run_player(pattern, scenario, limits, span, args.chunk) for _ in range(args.repeat)])
        bare_cpu, bare_events = best([run_bare(events, span, args.chunk) for _ in range(args.repeat)])
        result["speed"][name] = {
            "published": ledger["published"],
            "settled": ledger["acked"],
            "events": events,
            "balanced": ledger["balanced"],
            "engine_cpu_s": cpu,
            "messages_per_cpu_s": ledger["published"] / cpu,
            "events_per_cpu_s": events / cpu,
            "virtual_s_per_cpu_s": span / cpu,
            "player_messages_per_cpu_s": ledger["published"] / player_cpu,
            "bare_events_per_cpu_s": bare_events / bare_cpu,
            "engine_over_bare": cpu / bare_cpu,
            **side_by_side(pattern, scenario, span, args.chunk, args.repeat),
        }
    result["target_share_of_bare"] = TARGET_SHARE_OF_BARE
    return result


def report(result: dict[str, Any]) -> None:
    print(f"messaging engine speed, {result['virtual_seconds']:g} virtual s, best of {result['repeat']}")
    print(f"  {machine_text(result['machine'])}")
    for name, row in result["speed"].items():
        print(
            f"  {name:<28} {row['published']:>7} messages  {row['events']:>8} events  ledger "
            f"{'balanced' if row['balanced'] else 'NOT balanced'}\n"
            f"    engine : {row['messages_per_cpu_s']:>10,.0f} messages/CPU s  {row['events_per_cpu_s']:>10,.0f} "
            f"events/CPU s  {row['virtual_s_per_cpu_s']:>8,.0f} virtual s/CPU s\n"
            f"    player : {row['player_messages_per_cpu_s']:>10,.0f} messages/CPU s (snapshots included)\n"
            f"    bare   : {row['bare_events_per_cpu_s']:>10,.0f} events/CPU s; engine CPU / bare CPU = "
            f"{row['engine_over_bare']:.1f}\n"
            f"    {share_line(row, result['repeat'], result['target_share_of_bare'])}"
        )


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
