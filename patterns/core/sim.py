"""The deterministic discrete-event simulation kernel.

A `Simulation` owns a virtual clock, one seeded `random.Random` and a priority queue of pending actions ordered
by ``(time, sequence)``. Engines schedule plain callables (bound methods or module-level functions, never
lambdas or closures, so that the whole simulation pickles into a snapshot) and report what happened only by
`emit`-ting events. Nothing here reads the wall clock, the global random module or the hash of a string, so one
scenario gives the same event stream in any process.

`schedule` and `schedule_at` return the action's `Timer`, which `cancel` turns into a no-op: an engine keeps the
handle of a timer it may have to call off (an election timeout, a retry, the next arrival) instead of stamping
every timer with a generation number and ignoring the stale ones when they fire.

Scripted perturbations are not queued here: the player applies them between `run_until` calls (see
`patterns.core.player`), so that snapshots never hold a script that a later live action may cut off.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TIME_DIGITS = 6  # event times are rounded to the microsecond so that their text form is stable

Timer = list
"""A scheduled action's handle, and its entry in the queue: ``[time, order, action, args]``. A plain list, the
cheapest mutable record to build and compare (the queue orders entries by time, then by the order they were
scheduled in, which is unique, so the action is never compared)."""


def _cancelled(*_args: Any) -> None:
    """What a cancelled timer runs when its time comes: nothing."""


def micros(seconds: float) -> int:
    """A duration or a time in whole microseconds, the kernel's grain: compare these, never raw float differences
    (``now - start`` of a 0.5 s timeout is 0.49999999999999994 or 0.5000000000000001 depending on ``start``)."""
    return round(seconds * 1_000_000)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened: the only view the outside world has of an engine."""

    seq: int
    t: float
    type: str
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "t": self.t, "type": self.type, **self.fields}


class Simulation:
    """Virtual clock, seeded randomness, an ordered queue of actions and the events they emit."""

    def __init__(self, seed: int):
        self.seed = seed
        self.now = 0.0
        self.rng = random.Random(seed)
        self._queue: list[Timer] = []
        self._order = 0
        self.next_seq = 0
        self.pending: list[Event] = []  # emitted and not yet collected by whoever drives the run

    # -- scheduling -------------------------------------------------------------------------------------------
    def schedule(self, delay: float, action: Callable[..., Any], *args: Any) -> Timer:
        """Run ``action(*args)`` after ``delay`` virtual seconds (zero runs it after what is due now)."""
        if not delay >= 0 or math.isinf(delay):
            raise ValueError(f"delay must be a finite number >= 0, not {delay!r}")
        return self._push(self.now + delay, action, args)

    def schedule_at(self, t: float, action: Callable[..., Any], *args: Any) -> Timer:
        if not t >= self.now or math.isinf(t):
            raise ValueError(f"cannot schedule at {t!r}: it is before now ({self.now}) or not finite")
        return self._push(t, action, args)

    def _push(self, t: float, action: Callable[..., Any], args: tuple) -> Timer:
        timer = [t, self._order, action, args]
        heapq.heappush(self._queue, timer)
        self._order += 1
        return timer

    @staticmethod
    def cancel(timer: Timer | None) -> None:
        """Call a scheduled action off (nothing happens for None, or for one that ran already).

        The entry stays in the queue with a no-op: taking it out would re-order the heap, and a no-op at its time
        leaves `run_until` and `step` stopping at the same virtual times, emitting the same events, as the
        ignored timers of the generation-number way did, so the streams do not change.
        """
        if timer is not None:
            timer[2] = _cancelled
            timer[3] = ()

    # -- events -----------------------------------------------------------------------------------------------
    def emit(self, type: str, fields: dict[str, Any] | None = None) -> Event:
        """Record an event now. ``fields`` becomes the event's own dict, so it is written fresh at the call, as a
        literal: a dict display costs an engine less than keyword arguments would, on every event."""
        if fields is None:
            fields = {}
        elif "seq" in fields or "t" in fields:
            raise ValueError(f"{type}: 'seq' and 't' are the event's own fields; name the field otherwise")
        event = Event(self.next_seq, round(self.now, TIME_DIGITS), type, fields)
        self.next_seq += 1
        self.pending.append(event)
        return event

    def collect(self) -> list[Event]:
        """Hand over the events emitted since the last call."""
        events, self.pending = self.pending, []
        return events

    def __getstate__(self) -> dict[str, Any]:
        """Snapshots leave out the events not yet collected: whoever drives the run has those already."""
        return {**self.__dict__, "pending": []}

    # -- running ----------------------------------------------------------------------------------------------
    @property
    def next_time(self) -> float | None:
        """The time of the first queued action, a cancelled one included (it stays queued until its time)."""
        return self._queue[0][0] if self._queue else None

    def run_until(self, t: float) -> None:
        """Run every action due at or before ``t``; the clock ends at ``t``."""
        queue = self._queue
        while queue and queue[0][0] <= t:
            when, _order, action, args = heapq.heappop(queue)
            self.now = when
            action(*args)
        if t > self.now:
            self.now = t

    def step(self, limit: float) -> bool:
        """Run actions until at least one event is emitted or ``limit`` is reached; True if one was."""
        emitted = self.next_seq
        queue = self._queue
        while self.next_seq == emitted:
            if not queue or queue[0][0] > limit:
                self.now = max(self.now, limit)
                return False
            when, _order, action, args = heapq.heappop(queue)
            self.now = when
            action(*args)
        return True
