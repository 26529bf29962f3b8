"""Events as JSON lines: the one serialisation the CLI, the download link and the determinism tests share."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from .player import Player
from .sim import Event

CHUNK = 1.0  # virtual seconds simulated between flushes, so memory stays bounded on long runs


def event_json(event: Event) -> str:
    return json.dumps(event.as_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_lines(player: Player, until: float) -> Iterator[str]:
    """Every event of the player's scenario up to virtual time ``until``, in order."""
    yield from map(event_json, player.drain())
    t = player.now
    while t < until and player.stopped is None:
        t = min(until, t + CHUNK)
        player.advance_to(t)
        yield from map(event_json, player.drain())


class Export:
    """One events.jsonl download, bounded in events and CPU, simulated in slices of a few milliseconds of CPU by
    whoever drives it: a worker, under its per-process and per-client budgets (`patterns.core.downloads`).

    The first part (`probing`: a tenth of either budget) projects the whole: a download that would go past a
    budget is refused before anything is sent (the CLI prints any run in full). If a run turns heavier later than
    the probe saw, the lines stop at the budget (`spent`) and the driver ends with a line saying so.
    """

    SLICE_CPU = 0.005  # CPU seconds per slice, at most
    PROBE_SHARE = 0.1

    def __init__(self, player: Player, until: float, *, max_events: int, cpu_seconds: float):
        self.player, self.until = player, until
        self.max_events, self.cpu_seconds = max_events, cpu_seconds
        self.events = 0
        self.cpu = 0.0
        self.step = 0.05  # virtual seconds per slice, adapted so that a slice costs about what it was given

    @property
    def done(self) -> bool:
        return self.player.now >= self.until or self.player.stopped is not None

    @property
    def probing(self) -> bool:
        share = self.PROBE_SHARE
        return not self.done and self.cpu < self.cpu_seconds * share and self.events < self.max_events * share

    @property
    def spent(self) -> bool:
        return self.events >= self.max_events or self.cpu >= self.cpu_seconds

    def projected_over(self) -> str | None:
        """Which budget the whole download is on course to exceed, if any (judged from what was simulated)."""
        if self.done:
            return None
        share = self.until / self.player.now if self.player.now > 0 else float("inf")
        if self.events * share > self.max_events:
            return f"about {self.events * share:,.0f} events (the limit is {self.max_events:,})"
        if self.cpu * share > self.cpu_seconds:
            return f"about {self.cpu * share:,.0f} s of CPU (the limit is {self.cpu_seconds:g} s)"
        return None

    def slice(self, cpu: float = SLICE_CPU) -> list[str]:
        """The next lines, simulated in about ``cpu`` CPU seconds; none past the events budget."""
        started = time.thread_time()
        self.player.advance_to(min(self.until, self.player.now + self.step))
        lines = list(map(event_json, self.player.drain()))
        spent = time.thread_time() - started
        self.cpu += spent
        self.events += len(lines)
        self.step = max(1e-4, self.step * min(2.0, max(0.5, cpu / max(spent, 1e-6))))
        del lines[len(lines) - max(0, self.events - self.max_events) :]
        return lines
