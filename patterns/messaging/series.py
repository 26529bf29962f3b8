"""Bounded per-second history for the charts: event counts, sampled gauges, end-to-end latency.

Counts are added as events happen; gauges (ready, in flight, busy seconds of live consumers) are sampled by a
one-second tick of the engine. Everything is bounded (two minutes of seconds, the last latencies), so a long run
costs the same memory as a short one.

Speed tricks (several events per message are counted):

- *Current row at hand*: the newest row and the time its second ends are plain attributes. While the clock is still
  in that second (it only moves forward), counting an event is one comparison and one increment, with no call:
  `events.Recorder.step` counts straight into ``current``.
- *Totals on reading*: the run totals of the rows before the current one are added up once, when a row is closed,
  and `totals` adds the current row, so counting an event adds to one dict, not two.
- *Blank row*: a new second's row is a copy of a blank one, not built from the names each second.
"""

from __future__ import annotations

import math
from collections import deque

HISTORY_SECONDS = 120
LATENCY_SAMPLES = 400
COUNTED = ("published", "delivered", "acked", "redelivered", "dead_lettered", "expired", "dropped")
GAUGES = ("ready", "in_flight", "utilization")
PERCENTILES = (50, 95, 99)
BLANK_ROW = {"second": -1, **dict.fromkeys(COUNTED, 0), **dict.fromkeys(GAUGES, math.nan)}  # copied for each second


class Series:
    def __init__(self) -> None:
        self.rows: deque[dict] = deque(maxlen=HISTORY_SECONDS)  # {"second", counts..., gauges...}
        self.latencies: deque[tuple[int, float]] = deque(maxlen=LATENCY_SAMPLES)  # (second, seconds)
        self._closed = dict.fromkeys(COUNTED, 0)  # totals of the rows before the current one ("totals on reading")
        # "current row at hand"; before the first second, a row never listed, all counts 0
        self.current = dict(BLANK_ROW)
        self.current_ends = -math.inf

    @property
    def totals(self) -> dict[str, int]:
        """The run totals of the counted series."""
        return {name: self._closed[name] + self.current[name] for name in COUNTED}

    def new_row(self, now: float) -> dict:
        """Start the row of the second of ``now`` (a later one than the current row's) and return it."""
        closed, current = self._closed, self.current
        for name in COUNTED:
            closed[name] += current[name]
        second = int(now)
        self.current = row = BLANK_ROW.copy()
        row["second"] = second
        self.current_ends = second + 1
        self.rows.append(row)
        return row

    def row(self, now: float) -> dict:
        """The row of the second of ``now``, started if it is a new one."""
        return self.current if now < self.current_ends else self.new_row(now)

    def sample(self, now: float, ready: int, in_flight: int, utilization: float) -> None:
        row = self.row(now)
        row["ready"], row["in_flight"], row["utilization"] = ready, in_flight, utilization

    def latency(self, now: float, seconds: float) -> None:
        self.latencies.append((int(now), seconds))

    def window(self, now: float, span: int) -> dict[str, list[float]]:
        """One value per second for the ``span`` seconds up to ``now``; latency percentiles per second."""
        last = int(now)
        seconds = range(last - span + 1, last + 1)
        rows = {row["second"]: row for row in self.rows}
        out: dict[str, list[float]] = {}
        for name in COUNTED:
            out[name] = [rows[s][name] if s in rows else 0 for s in seconds]
        for name in GAUGES:
            out[name] = [rows[s][name] if s in rows else math.nan for s in seconds]
        by_second: dict[int, list[float]] = {}
        for second, value in self.latencies:
            by_second.setdefault(second, []).append(value)
        for p in PERCENTILES:
            out[f"latency_p{p}"] = [percentile(by_second.get(s, []), p) for s in seconds]
        return out


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100.0 * len(ordered)) - 1))]
