"""How the numbers are computed, stated once so that an outside checker can compute the same from the events.

- Percentiles are nearest-rank: the value at rank ceil(q/100 * n) of the sorted sample.
- Over the sliding window (the last ``window_s`` seconds, a completion at exactly now - window excluded)
  percentiles are exact. Over the whole run latencies are kept in a log histogram with 1% wide buckets and a
  percentile is the upper edge of its bucket: at most 1% above the exact value, and the memory stays bounded.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lanes import Lane

RESOLUTION = 1.01  # ratio between a histogram bucket's edges
_LOG_RESOLUTION = math.log(RESOLUTION)
QUANTILES = (50, 95, 99)


def bucket(latency: float) -> int:
    return math.floor(math.log(max(latency, 1e-9)) / _LOG_RESOLUTION)


def bucket_top(index: int) -> float:
    return RESOLUTION ** (index + 1)


def rank(count: int, q: float) -> int:
    """The 1-based nearest rank of quantile q (percent) in a sample of ``count``."""
    return max(1, math.ceil(q / 100.0 * count))


def histogram_percentile(histogram: Counter, q: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    wanted, seen = rank(total, q), 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= wanted:
            return bucket_top(index)
    raise AssertionError("unreachable: the ranks add up to the total")


def imbalance(loads: Sequence[float]) -> float | None:
    """Max over mean; None when there is nothing to compare."""
    if not loads or not any(loads):
        return None
    return max(loads) / (sum(loads) / len(loads))


def lane_figures(lane: Lane) -> dict[str, Any]:
    """Every number of a lane and of each of its servers, as plain data (what the page shows, what tests check).

    Window figures cover (now - window, now]; rates divide by the window, or by the time run so far if shorter.
    Imbalance is max over mean of the requests routed in the window per unit of weight, over the present servers
    with a weight.
    """
    routes, completions, drops = lane.windowed()
    span = min(lane.window, lane.sim.now) or 1.0
    latencies: dict[str, list[float]] = defaultdict(list)
    for _t, server_id, latency, _ok in completions:
        latencies[server_id].append(latency)
    routed = Counter(server_id for _t, server_id in routes)
    by_server: dict[str, dict[str, Any]] = {}
    for server_id, server in lane.servers.items():
        by_server[server_id] = {
            "present": server_id in lane.order,
            "eligible": server_id in lane.eligible,
            "in_flight": server.busy,
            "queue": len(server.queue),
            "routed": server.routed,
            "served": server.served,
            "failed": server.failed,
            "dropped": server.dropped,
            "window": _percentiles(latencies[server_id]),
            "total": {q: histogram_percentile(server.latencies, q) for q in QUANTILES},
            "routed_window": routed[server_id],
        }
    if lane.hashing:
        for server_id, share in key_shares(lane.owners).items():
            by_server[server_id]["key_share"] = share
    weighted = [
        by_server[s]["routed_window"] / lane.servers[s].spec.weight for s in lane.order if lane.servers[s].spec.weight
    ]
    offered = len(routes) + sum(1 for _t, server in drops if server is None)
    return {
        "in_flight": sum(s["in_flight"] for s in by_server.values()),
        "queue": sum(s["queue"] for s in by_server.values()),
        "offered": lane.offered,
        "served": lane.completed,
        "failed": lane.failed,
        "dropped": sum(lane.dropped.values()),
        "window": _percentiles([latency for _t, _s, latency, _ok in completions]),
        "total": {q: histogram_percentile(lane.latencies, q) for q in QUANTILES},
        "throughput": sum(1 for *_rest, ok in completions if ok) / span,
        "drop_rate": len(drops) / offered if offered else 0.0,
        "imbalance": imbalance(weighted),
        "panic": lane.health.panic,
        "servers": by_server,
    }


def key_shares(owners: dict[str, str]) -> dict[str, float]:
    counts = Counter(owners.values())
    return {server: counts[server] / len(owners) for server in sorted(counts)} if owners else {}


def _percentiles(values: Sequence[float]) -> dict[int, float | None]:
    ordered = sorted(values)
    return {q: ordered[rank(len(ordered), q) - 1] if ordered else None for q in QUANTILES}
