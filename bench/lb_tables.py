#!/usr/bin/env python
"""Load-balancing tables and picks: build times of the hashing schemes' tables and picks per CPU second.

No Django, no server: the balancers alone, as the engine drives them.

- build: a Maglev table for --servers servers (50) at M = 65537 (the paper's size) and at a small prime
  (--small-prime, 5003 > 100 n), and a consistent-hash ring with 100 virtual nodes (and the guide's 3);
  CPU seconds (time.process_time), best of --repeat.
- picks: each algorithm's `pick` in a bare loop over --servers servers (distinct keys, nobody finishing, loads
  as the views give them), picks per CPU second, best of --repeat.
- moved: the share of --keys keys that change server when one of --servers leaves, beside the ideal 1/n.

    .venv/bin/python bench/lb_tables.py [--json] [--servers 50] [--picks 20000] [--repeat 5] [--keys 20000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_parser, machine, machine_text, run_benchmark

from patterns.load_balancing.balancers import ALGORITHMS, Balancer, ServerView
from patterns.load_balancing.hashing import MAGLEV_DEFAULT_SIZE, Ring, is_prime, maglev_table

MOVED = {  # label -> (algorithm, options)
    "ring, 3 vnodes": ("ring_hash", {"vnodes": 3}),
    "ring, 100 vnodes": ("ring_hash", {"vnodes": 100}),
    "maglev, M=65537": ("maglev", {"maglev_table_size": MAGLEV_DEFAULT_SIZE}),
    "rendezvous": ("rendezvous", {}),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--servers", type=int, default=50, help="servers (default 50)")
    parser.add_argument("--small-prime", type=int, default=5003, help="the small Maglev table size (default 5003)")
    parser.add_argument("--picks", type=int, default=20000, help="picks per timed loop (default 20000)")
    parser.add_argument("--keys", type=int, default=20000, help="keys for the moved shares (default 20000)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions; the least CPU counts (default 5)")
    args = parser.parse_args(argv)
    if not is_prime(args.small_prime):
        parser.error(f"--small-prime {args.small_prime} is not a prime")
    return args


def cpu_best(action: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def servers(n: int) -> list[ServerView]:
    """Servers with a little of everything the balancers look at: weights 1-3 and some load."""
    return [ServerView(f"s{i}", weight=1 + i % 3, active=i % 4) for i in range(n)]


def pick_loop(balancer: Balancer, keys: list[str]) -> None:
    pick = balancer.pick
    for i, key in enumerate(keys):
        pick(key, i * 0.001)


def moved_share(name: str, options: dict[str, Any], n: int, keys: list[str]) -> dict[str, float]:
    balancer = ALGORITHMS[name](options, random.Random(0))
    members = [ServerView(f"s{i}") for i in range(n)]
    balancer.set_servers(members)
    before = balancer.key_owners(keys)
    balancer.set_servers(members[1:])
    after = balancer.key_owners(keys)
    moved = sum(before[k] != after[k] for k in keys)
    owned = sum(before[k] == "s0" for k in keys)
    return {"moved": moved / len(keys), "removed_share": owned / len(keys), "others": (moved - owned) / len(keys)}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    n = args.servers
    members = [(f"s{i}", 1) for i in range(n)]
    build = {
        f"maglev M={MAGLEV_DEFAULT_SIZE}": cpu_best(lambda: maglev_table(members, MAGLEV_DEFAULT_SIZE), args.repeat),
        f"maglev M={args.small_prime}": cpu_best(lambda: maglev_table(members, args.small_prime), args.repeat),
        "ring 100 vnodes": cpu_best(lambda: Ring(members, 100), args.repeat),
        "ring 3 vnodes": cpu_best(lambda: Ring(members, 3), args.repeat),
    }
    keys = [f"user:{i}" for i in range(args.picks)]
    picks = {}
    for name, cls in ALGORITHMS.items():
        balancer = cls({}, random.Random(1))
        balancer.set_servers(servers(n))
        cpu = cpu_best(lambda b=balancer: pick_loop(b, keys), args.repeat)
        picks[name] = {"cpu_s": cpu, "picks_per_cpu_s": args.picks / cpu if cpu else float("nan")}
    moved_keys = [f"user:{i}" for i in range(args.keys)]
    moved = {label: moved_share(name, options, n, moved_keys) for label, (name, options) in MOVED.items()}
    return {
        "benchmark": "lb_tables",
        "machine": machine(),
        "servers": n,
        "repeat": args.repeat,
        "build_cpu_s": build,
        "picks": picks,
        "picks_per_loop": args.picks,
        "moved": moved,
        "keys": args.keys,
    }


def report(result: dict[str, Any]) -> None:
    n = result["servers"]
    print(f"lb_tables: {n} servers, best of {result['repeat']} (CPU = time.process_time)")
    print(f"  {machine_text(result['machine'])}")
    print()
    print(f"  {'table build':<22} {'CPU ms':>9}")
    for label, cpu in result["build_cpu_s"].items():
        print(f"  {label:<22} {cpu * 1000:>9.2f}")
    print()
    print(f"  {'algorithm':<22} {'picks/CPU s':>12} {'µs/pick':>8}   ({result['picks_per_loop']} picks per loop)")
    for name, row in result["picks"].items():
        print(f"  {name:<22} {row['picks_per_cpu_s']:>12,.0f} {row['cpu_s'] / result['picks_per_loop'] * 1e6:>8.2f}")
    print()
    print(f"  one of {n} servers leaves ({result['keys']} keys; ideal share moved 1/n = {1 / n:.4f})")
    print(f"  {'scheme':<22} {'moved':>8} {'its own':>8} {'others':>8}")
    for label, row in result["moved"].items():
        print(f"  {label:<22} {row['moved']:>8.4f} {row['removed_share']:>8.4f} {row['others']:>8.4f}")


def main(argv: list[str] | None = None) -> None:
    run_benchmark(argv, parse_args, measure, report)


if __name__ == "__main__":
    main()
