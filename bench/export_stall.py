"""Heavy events.jsonl downloads beside a bystander: does anyone else wait?

Starts one daphne; a bystander GETs the home page and does a websocket round trip (a command before Start, answered
at once) every 50 ms, first alone for a baseline, then while `--downloads` downloads run at once: the issue's
heaviest link (refused after a probe, with the CLI command) and a long stream within the budget. Prints each
download's status, bytes, first-byte and total wall time, daphne's CPU and RSS, the CPU of its worker processes
(which simulate the downloads), and the bystander's latencies.
"""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any

from _common import Daphne, bench_parser, percentile, run_benchmark
from websockets.sync.client import connect
from ws_fanout import children_cpu

HEAVY = "/patterns/load-balancing/events.jsonl?rate=2000&servers=32&algorithms=rr.random.lc.p2c&until=600"
LONG = "/patterns/circuit-breaker/events.jsonl?until=600"


def parse_args(argv: list[str] | None):
    parser = bench_parser(__doc__)
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--downloads", default=f"{HEAVY},{LONG},{LONG}", help="comma-separated paths")
    return parser.parse_args(argv)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def download(port: int, path: str, out: dict[str, Any]) -> None:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", path)
    response = conn.getresponse()
    first = response.read(1)
    out["first_byte_s"] = time.perf_counter() - started
    size = len(first) + len(response.read())
    out.update(path=path, status=response.status, bytes=size, total_s=time.perf_counter() - started)
    conn.close()


def bystander(port: int, stop: threading.Event, page: list[float], socket: list[float]) -> None:
    url = f"ws://127.0.0.1:{port}/ws/patterns/circuit-breaker/"
    with connect(url, origin=f"http://127.0.0.1:{port}") as ws:
        while not stop.wait(0.05):
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            page.append(time.perf_counter() - started)
            started = time.perf_counter()
            ws.send('{"action": "pause"}')
            ws.recv(timeout=120)
            socket.append(time.perf_counter() - started)


def watch(port: int, seconds: float | None, threads: list[threading.Thread]) -> dict[str, list[float]]:
    stop, page, socket = threading.Event(), [], []
    watcher = threading.Thread(target=bystander, args=(port, stop, page, socket))
    watcher.start()
    if seconds is not None:
        time.sleep(seconds)
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    return {"page": page, "socket": socket}


def measure(args) -> dict[str, Any]:
    with Daphne({"PLAYGROUND_COMMANDS_PER_SECOND": "1000", "PLAYGROUND_EXPORTS_PER_CLIENT": "3"}) as server:
        cpu_alone = server.cpu_seconds()
        baseline = watch(server.port, args.baseline_seconds, [])
        cpu, rss, workers = server.cpu_seconds(), rss_mb(server.proc.pid), children_cpu(server.proc.pid)
        results: list[dict[str, Any]] = [{} for _ in args.downloads.split(",")]
        threads = [
            threading.Thread(target=download, args=(server.port, path, out))
            for path, out in zip(args.downloads.split(","), results, strict=True)
        ]
        for thread in threads:
            thread.start()
        loaded = watch(server.port, None, threads)
        return {
            "downloads": results,
            "cpu_s": server.cpu_seconds() - cpu,
            "cpu_alone_s": cpu - cpu_alone,
            "workers_cpu_s": children_cpu(server.proc.pid) - workers,
            "rss_mb": [rss, rss_mb(server.proc.pid)],
            "bystander": {"alone": baseline, "during": loaded},
        }


def report(result: dict[str, Any]) -> None:
    for d in result["downloads"]:
        print(
            f"{d['path']}\n  status {d['status']}, {d['bytes']:,} bytes, "
            f"first byte {d['first_byte_s'] * 1000:.0f} ms, total {d['total_s']:.1f} s"
        )
    rss = result["rss_mb"]
    print(
        f"daphne CPU: {result['cpu_alone_s']:.1f} s with the bystander alone, {result['cpu_s']:.1f} s during the "
        f"downloads (the bystander's requests included); worker processes' CPU during the downloads "
        f"{result['workers_cpu_s']:.1f} s; daphne RSS {rss[0]:.0f} MB -> {rss[1]:.0f} MB"
    )
    for when, times in result["bystander"].items():
        for what in ("page", "socket"):
            values = [t * 1000 for t in times[what]]
            print(
                f"bystander {what:6} {when:6}: n={len(values)} p50={percentile(values, 50):.0f} ms "
                f"p99={percentile(values, 99):.0f} ms max={max(values):.0f} ms"
            )


if __name__ == "__main__":
    run_benchmark(None, parse_args, measure, report)
