"""Playing a scenario: advancing virtual time, applying perturbations live, seeking by snapshot and re-simulation.

The player is pure (no asyncio, no wall clock): the live runner decides how far to advance per tick, the CLI
advances straight to the end. Both go through `advance_to`, which applies each scripted action between
`Simulation.run_until` calls: run to the action's time, apply it, go on. A live action is inserted into the script at
its time and reached the same way, so a shared link replays exactly what the viewer saw; it may cut the steps not
yet applied instead of keeping them, and any step may be removed, the run then re-simulated without it.

Snapshots are pickles of ``(simulation, engine)`` taken at regular virtual times. A snapshot at time B holds the
effect of every scripted action at or before B; an action inserted at time t therefore discards the snapshots at
or after t. Their number and their total size are bounded: past either bound, every other one is dropped and the
spacing doubles. The size bound is what matters for busy engines: seeking costs the events between two snapshots,
so a 10-minute Raft run keeps its 5-second spacing (about 60 KB a snapshot) instead of thinning to 10 s.
"""

from __future__ import annotations

import bisect
import pickle
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .registry import Pattern
from .scenario import Action, Scenario, action_time
from .sim import Event, Simulation

MAX_SNAPSHOTS = 256
SNAPSHOT_BYTES = 8 * 2**20  # per run, unless the limits say otherwise
LIMIT_CHECK_EVERY = 1.0  # virtual seconds between checks of the event limit


def apply_action(sim: Simulation, engine: Any, action: Action) -> None:
    """Apply one perturbation: a `command` event first, so the stream alone tells what the user did."""
    args = dict(action.args)
    sim.emit("command", {"command": action.command, "args": args})
    engine.apply(action.command, args)


class Player:
    def __init__(self, pattern: Pattern, scenario: Scenario, limits: Mapping[str, Any]):
        self.pattern = pattern
        self.scenario = scenario
        self.max_time = float(limits["MAX_VIRTUAL_TIME"])
        self.max_events = int(limits["MAX_EVENTS_PER_RUN"])
        self.recent: deque[Event] = deque(maxlen=int(limits["EVENT_HISTORY"]))
        self.snapshot_every = float(limits["SNAPSHOT_EVERY"])
        self.snapshot_bytes = int(limits.get("SNAPSHOT_BYTES", SNAPSHOT_BYTES))
        self.horizon = 0.0  # the furthest virtual time this run has reached
        self.stopped: str | None = None  # why the run cannot go further, once it cannot
        self._snapshots: list[tuple[float, bytes]] = []
        self._restore(None)
        self.advance_to(0.0)

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.sim.now

    @property
    def last_seq(self) -> int:
        return self.sim.next_seq - 1

    def drain(self) -> list[Event]:
        """Events emitted since the last drain, also kept in `recent`."""
        events = self.sim.collect()
        self.recent.extend(events)
        return events

    # -- moving in time ---------------------------------------------------------------------------------------
    def advance_to(self, target: float) -> None:
        """Simulate up to ``target`` (bounded by the run's limits), taking snapshots on the way."""
        target = min(target, self.max_time)
        while True:
            if self.sim.next_seq >= self.max_events:
                self.stopped = f"this run reached its limit of {self.max_events} events"
                break
            if self._next_snapshot <= self.sim.now:  # passed by a step: the next boundary will do
                self._next_snapshot = self._snapshot_after(self.sim.now)
            stop = min(target, self._next_snapshot, self.sim.now + LIMIT_CHECK_EVERY)
            self._run_to(stop)
            if stop == self._next_snapshot:
                self._take_snapshot()
            if stop >= target:
                break
        self._reached()

    def step(self) -> None:
        """Advance to the next event, or to the next scripted action if that comes first."""
        limit = self.max_time
        if self._next_action < len(self._script):
            limit = min(limit, self._script[self._next_action].t)
        if not self.sim.step(limit):
            self.advance_to(limit)
        self._reached()

    def seek(self, t: float) -> None:
        """Go to any virtual time already reached, by re-simulating from the latest snapshot before it.

        The events re-simulated on the way are drained into `recent`: they are history, not news.
        """
        self.advance_to(self.rewind(t))
        self.drain()

    def rewind(self, t: float) -> float:
        """The cheap half of a seek: back to the latest snapshot at or before ``t`` (bounded by what was reached).

        Returns the time to advance to. A live run advances there in budgeted steps; `seek` does it at once.
        """
        t = min(max(0.0, t), self.horizon)
        index = bisect.bisect_right([s[0] for s in self._snapshots], t) - 1
        self._restore(self._snapshots[index] if index >= 0 else None)
        self.recent.clear()
        self.stopped = None
        return t

    def act(self, command: str, args: tuple[tuple[str, Any], ...], *, cut: bool = False) -> Action:
        """Apply a perturbation now: it lands at the next whole millisecond, and the script's later steps stay,
        unless ``cut``: then the steps not yet applied are cut from the script (the learner rewrites the future).

        A command naming a node that does not exist now is refused, never recorded in the script. What was
        simulated past it is no longer this run's future: snapshots from its time on are dropped.
        """
        action = Action(action_time(self.sim.now), command, args)
        if action.t > self.max_time:
            raise ValueError("the run is at its maximum virtual time; rewind to act")
        self.pattern.check_targets(self.engine, command, args)
        scenario = replace(self.scenario, script=self._script[: self._next_action]) if cut else self.scenario
        self._rewrite(scenario.with_action(action), action.t)
        self.advance_to(action.t)
        return action

    def remove(self, index: int) -> float:
        """Take step ``index`` out of the script; returns the time to advance to: where the run was.

        What was simulated from the step's time on is no longer this run's: snapshots from then are dropped, and a
        step already applied puts the run back to the latest snapshot before it, to re-simulate without it.
        """
        script = self._script
        if not 0 <= index < len(script):
            raise ValueError(f"the script has no step {index + 1} (it has {len(script)})")
        now, applied = self.sim.now, index < self._next_action
        self._rewrite(replace(self.scenario, script=script[:index] + script[index + 1 :]), script[index].t)
        if applied:
            self._restore(self._snapshots[-1] if self._snapshots else None)
            self.recent.clear()
        self.stopped = None
        return now

    # -- internals --------------------------------------------------------------------------------------------
    def _rewrite(self, scenario: Scenario, since: float) -> None:
        """Take ``scenario`` (the script changed from virtual time ``since`` on) as this run's: the snapshots from
        ``since`` on and what was simulated past now are no longer its future."""
        self.scenario = scenario
        self._script = scenario.script
        self._snapshots = [s for s in self._snapshots if s[0] < since]
        self._next_snapshot = self._snapshot_after(self.sim.now)
        self.horizon = self.sim.now

    def _reached(self) -> None:
        self.horizon = max(self.horizon, self.sim.now)
        if self.sim.now >= self.max_time:
            self.stopped = f"this run reached the maximum virtual time of {self.max_time:g} s"

    def _run_to(self, t: float) -> None:
        script = self._script
        while self._next_action < len(script) and script[self._next_action].t <= t:
            action = script[self._next_action]
            self.sim.run_until(action.t)
            self._next_action += 1
            apply_action(self.sim, self.engine, action)
        self.sim.run_until(t)

    def _take_snapshot(self) -> None:
        if self._snapshots and self._snapshots[-1][0] >= self.sim.now:
            return  # re-simulating after a seek: this one is already kept
        self._snapshots.append((self.sim.now, pickle.dumps((self.sim, self.engine), pickle.HIGHEST_PROTOCOL)))
        while len(self._snapshots) > MAX_SNAPSHOTS or sum(len(s[1]) for s in self._snapshots) > self.snapshot_bytes:
            if len(self._snapshots) == 1:
                break  # one snapshot is always kept, however large
            self.snapshot_every *= 2
            self._snapshots = [s for s in self._snapshots if _on_grid(s[0], self.snapshot_every)]
        self._next_snapshot = self._snapshot_after(self.sim.now)

    def _snapshot_after(self, t: float) -> float:
        return (int(t / self.snapshot_every) + 1) * self.snapshot_every

    def _restore(self, snapshot: tuple[float, bytes] | None) -> None:
        self._script = self.scenario.script
        if snapshot is None:
            self.sim = Simulation(self.scenario.seed)
            self.engine = self.pattern.engine(self.sim, self.scenario.values)
            self.engine.start()
            self._next_action = 0
            self._next_snapshot = 0.0
        else:
            when, blob = snapshot
            self.sim, self.engine = pickle.loads(blob)
            self._next_action = bisect.bisect_right([a.t for a in self._script], when)
            self._next_snapshot = self._snapshot_after(when)


def _on_grid(t: float, every: float) -> bool:
    ratio = t / every
    return abs(ratio - round(ratio)) < 1e-9
