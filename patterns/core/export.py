"""Events as JSON lines: the one serialisation the CLI, the download link and the determinism tests share."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

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
    """One events.jsonl download, simulated in slices of a few milliseconds of CPU, each in a thread so that the
    event loop goes on serving everyone else meanwhile, and bounded in events and CPU.

    `probe` simulates the first part (a tenth of either budget) and projects the whole: a download that would
    go past a budget is refused before anything is sent (the CLI prints any run in full). `rest` streams the
    lines; if a run turns heavier later than the probe saw, it stops at the budget with a final line saying so.
    """

    SLICE_CPU = 0.005  # CPU seconds per slice: what a bystander may wait behind one download
    PROBE_SHARE = 0.1

    def __init__(self, player: Player, until: float, *, max_events: int, cpu_seconds: float):
        self.player, self.until = player, until
        self.max_events, self.cpu_seconds = max_events, cpu_seconds
        self.events = 0
        self.cpu = 0.0
        self.step = 0.05  # virtual seconds per slice, adapted so that a slice costs about SLICE_CPU

    @property
    def done(self) -> bool:
        return self.player.now >= self.until or self.player.stopped is not None

    async def probe(self) -> list[str]:
        lines = await asyncio.to_thread(self._slice, 0.0)
        while not self.done and self.cpu < self.cpu_seconds * self.PROBE_SHARE:
            if self.events >= self.max_events * self.PROBE_SHARE:
                break
            lines.extend(await asyncio.to_thread(self._slice, self.step))
        return lines

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

    async def rest(self, head: list[str], cut_short: str) -> AsyncIterator[str]:
        if head:
            yield "\n".join(head) + "\n"
        while not self.done:
            if self.events >= self.max_events or self.cpu >= self.cpu_seconds:
                yield json.dumps({"error": cut_short}, separators=(",", ":")) + "\n"
                return
            lines = await asyncio.to_thread(self._slice, self.step)
            del lines[len(lines) - max(0, self.events - self.max_events) :]
            if lines:
                yield "\n".join(lines) + "\n"

    def _slice(self, step: float) -> list[str]:
        started = time.thread_time()
        self.player.advance_to(min(self.until, self.player.now + step))
        lines = list(map(event_json, self.player.drain()))
        spent = time.thread_time() - started
        self.cpu += spent
        self.events += len(lines)
        self.step = max(1e-4, self.step * min(2.0, max(0.5, self.SLICE_CPU / max(spent, 1e-6))))
        return lines
