#!/usr/bin/env python
"""The Raft safety checker's cost: a whole 10-minute history, and per event, as it runs live in the engine.

One run of the engine (5 servers, clients writing 50 operations per second in all, by default) is simulated once;
its raft.* and client.* events, as the engine hands them to its checker, are then judged again by a fresh
`Checker`, --repeat times, timed with time.process_time (best run counts). Printed:

- the whole history: CPU seconds, events, µs per event; and the linearizability part alone (a fresh
  `KVHistory` over the client events: the issue's target is under 1 s for a 10-minute history);
- per event type: mean µs (time.perf_counter around each `observe`);
- the checker's pickled size and pickling time at the end of the run (it is in every rewind snapshot);
- the violations found (a correct engine: none).

    .venv/bin/python bench/raft_checker.py [--json] [--virtual-seconds 600] [--clients 5] [--rate 10]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_parser, machine, machine_text, run_benchmark

CHECKED = ("raft.", "client.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--virtual-seconds", type=float, default=600.0, help="virtual span simulated (default 600)")
    parser.add_argument("--servers", type=int, default=5, help="servers (default 5)")
    parser.add_argument("--clients", type=int, default=5, help="clients (default 5)")
    parser.add_argument("--rate", type=float, default=10.0, help="operations per second per client (default 10)")
    parser.add_argument("--read-share", type=float, default=0.0, help="share of reads (default 0: all writes)")
    parser.add_argument("--keys", type=int, default=3, help="keys (default 3)")
    parser.add_argument(
        "--snapshot-threshold", type=int, default=100, help="entries between snapshots, 0: never (default 100)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the run's seed (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the least CPU counts (default 3)")
    return parser.parse_args(argv)


def simulate(args: argparse.Namespace) -> tuple[list[dict[str, Any]], float]:
    """The events the engine hands its checker, each with the event's own number; and the engine's CPU time."""
    from patterns.core.sim import Simulation
    from patterns.raft.engine import RaftEngine
    from patterns.raft.params import PARAMS

    params = {p.name: p.default for p in PARAMS}
    params.update(
        servers=args.servers,
        clients=args.clients,
        client_rate=args.rate,
        read_share=args.read_share,
        keys=args.keys,
        snapshot_threshold=args.snapshot_threshold,
    )
    sim = Simulation(args.seed)
    started = time.process_time()
    engine = RaftEngine(sim, params)
    engine.start()
    events: list[tuple[int, dict[str, Any]]] = []
    t = 0.0
    while t < args.virtual_seconds:
        t = min(args.virtual_seconds, t + 1.0)
        sim.run_until(t)
        events += [(e.seq, e.as_dict()) for e in sim.collect() if e.type.startswith(CHECKED)]
    return events, time.process_time() - started


def judge(events: list[tuple[int, dict[str, Any]]]) -> tuple[float, Any]:
    from patterns.raft.invariants import Checker

    started = time.process_time()
    checker = Checker()
    for _seq, event in events:
        checker.observe(event)
    return time.process_time() - started, checker


def judge_clients(events: list[tuple[int, dict[str, Any]]]) -> tuple[float, int]:
    """The linearizability check alone, over the client events."""
    from patterns.raft.linearizability import KVHistory

    calls = [e for _, e in events if e["type"].startswith("client.")]
    started = time.process_time()
    history = KVHistory()
    for e in calls:
        if e["type"] == "client.invoke":
            history.invoke(e["client"], e["op_seq"], e["op"], e["key"], e["value"], e["expected"])
        else:
            history.complete(e["client"], e["op_seq"], e["key"], e["result"])
    return time.process_time() - started, history.checked


def per_type(events: list[tuple[int, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    from patterns.raft.invariants import Checker

    checker = Checker()
    spent: dict[str, list[float]] = defaultdict(list)
    clock = time.perf_counter
    for _seq, event in events:
        started = clock()
        checker.observe(event)
        spent[event["type"]].append(clock() - started)
    return {
        kind: {"events": len(times), "mean_us": sum(times) / len(times) * 1e6, "max_us": max(times) * 1e6}
        for kind, times in sorted(spent.items())
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    events, engine_cpu = simulate(args)
    runs = [judge(events) for _ in range(args.repeat)]
    cpu, checker = min(runs, key=lambda run: run[0])
    client_cpu, ops = min(judge_clients(events) for _ in range(args.repeat))
    started = time.process_time()
    blob = pickle.dumps(checker, pickle.HIGHEST_PROTOCOL)
    pickle_ms = (time.process_time() - started) * 1000
    return {
        "benchmark": "raft_checker",
        "machine": machine(),
        "scenario": {
            "virtual_seconds": args.virtual_seconds,
            "servers": args.servers,
            "clients": args.clients,
            "ops_per_second": args.clients * args.rate,
            "read_share": args.read_share,
            "keys": args.keys,
            "snapshot_threshold": args.snapshot_threshold,
            "seed": args.seed,
        },
        "engine_cpu_s": engine_cpu,
        "events_checked": len(events),
        "checker": {"cpu_s": cpu, "us_per_event": cpu / len(events) * 1e6 if events else None},
        "linearizability": {"cpu_s": client_cpu, "operations": ops, "per_virtual_s": ops / args.virtual_seconds},
        "per_type": per_type(events),
        "pickle": {"bytes": len(blob), "ms": pickle_ms},
        "violations": checker.violations,
    }


def report(result: dict[str, Any]) -> None:
    s = result["scenario"]
    print(
        f"raft_checker: {s['virtual_seconds']:g} virtual s, {s['servers']} servers, {s['clients']} clients, "
        f"{s['ops_per_second']:g} ops/s (reads {s['read_share']:.0%}), {s['keys']} keys, snapshot every "
        f"{s['snapshot_threshold']} entries, seed {s['seed']}"
    )
    print(f"  {machine_text(result['machine'])} (CPU = time.process_time)")
    print(f"  engine (with its live checker): {result['engine_cpu_s']:.2f} CPU s")
    c, lin = result["checker"], result["linearizability"]
    print(
        f"  checker, whole history: {c['cpu_s']:.3f} CPU s for {result['events_checked']} events "
        f"= {c['us_per_event']:.2f} µs per event ({c['cpu_s'] / result['engine_cpu_s']:.0%} of the engine's CPU)"
    )
    print(
        f"  linearizability alone:  {lin['cpu_s']:.3f} CPU s for {lin['operations']} completed operations "
        f"({lin['per_virtual_s']:.1f} per virtual s: clients think between operations)"
    )
    print(f"  pickled checker at the end: {result['pickle']['bytes'] / 1024:.1f} KB in {result['pickle']['ms']:.2f} ms")
    print(f"  {'event type':<18} {'events':>8} {'mean µs':>8} {'max µs':>8}")
    for kind, row in result["per_type"].items():
        print(f"  {kind:<18} {row['events']:>8} {row['mean_us']:>8.2f} {row['max_us']:>8.1f}")
    found = result["violations"]
    print(f"  violations: {len(found)}" + "".join(f"\n    {v['invariant']}: {v['detail']}" for v in found[:5]))


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
