"""Engine tests' way to play a script of ``(t, command, args)`` items, as the kernel's player applies them.

A `command` event first, then the command, with missing arguments at their defaults and every value checked by its
`Param`; optionally the whole simulation pickled and restored on the way (what a seek does), which must change
nothing. Events come back as JSON would carry them.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable, Mapping
from typing import Any

from patterns.core.registry import Pattern
from patterns.core.sim import Event, Simulation


def apply(pattern: Pattern, sim: Simulation, engine: Any, command: str, args: Mapping[str, Any]) -> None:
    spec = pattern.command(command)
    assert spec is not None, command
    checked = {a.name: a.parse(args[a.name]) if a.name in args else a.default for a in spec.args}
    sim.emit("command", {"command": command, "args": checked})
    engine.apply(command, checked)


def play(
    pattern: Pattern,
    params: Mapping[str, Any],
    script: Iterable[tuple[float, str, Mapping[str, Any]]],
    *,
    seed: int,
    until: float,
    snapshot_at: float | None = None,
) -> tuple[Simulation, Any, list[dict[str, Any]]]:
    """The simulation, the engine and the events up to ``until``; script items after ``until`` are not applied."""
    sim = Simulation(seed)
    engine = pattern.engine(sim, params)
    engine.start()
    events: list[dict[str, Any]] = []
    for t, command, args in sorted(script, key=lambda item: item[0]):
        if t > until:
            break
        if snapshot_at is not None and snapshot_at <= t:
            sim.run_until(snapshot_at)
            events += as_json(sim.collect())
            sim, engine = pickle.loads(pickle.dumps((sim, engine)))
            snapshot_at = None
        sim.run_until(t)
        apply(pattern, sim, engine, command, args)
    sim.run_until(until)
    return sim, engine, events + as_json(sim.collect())


def as_json(events: list[Event]) -> list[dict[str, Any]]:
    return json.loads(json.dumps([e.as_dict() for e in events], allow_nan=False))
