"""What a viewer sees of a run: one HTML frame of out-of-band fragments, rendered once per run, never per viewer.

A frame carries the full current state of what it updates (status, metrics, recent events, every diagram), so
a viewer who joins late or reconnects is right after one frame. Diagram data travels as JSON in a hidden
element's attribute; the page's script re-renders a Mermaid diagram only when its source changed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from typing import Any

from django.template.loader import render_to_string

from .player import Player
from .scenario import encode

# event fields that name a node: the log's node filter matches rows by these
NODE_FIELDS = frozenset(
    {"server", "node", "src", "dst", "consumer", "service", "breaker", "hop", "lane", "leader", "candidate", "voter"}
)


def share_link(player: Player) -> str:
    return f"/patterns/{player.pattern.slug}/?{encode(player.pattern, player.scenario)}"


def drawings(player: Player) -> dict[str, dict[str, Any]]:
    return {d.name: asdict(d.draw(player.engine)) for d in player.pattern.diagrams}


def frame_data(
    player: Player, *, run_id: str | None, frame: int, playing: bool, speed: float, diagrams: dict[str, Any]
) -> dict[str, Any]:
    return {
        "run": run_id,
        "frame": frame,
        "t": round(player.now, 3),
        "horizon": round(player.horizon, 3),
        "max_time": player.max_time,
        "playing": playing,
        "speed": speed,
        "last_seq": player.last_seq,
        "stopped": player.stopped,
        "link": share_link(player),
        "sent": round(time.time(), 4),  # wall clock at render, for measuring delivery latency
        "diagrams": diagrams,
        "targets": {kind: list(names) for kind, names in player.pattern.targets(player.engine).items()},
    }


def log_rows(player: Player, count: int) -> list[dict[str, Any]]:
    """The newest ``count`` events and the newest ``count`` routine ones, newest first, each with its fields as
    short text and the node names it mentions (for the page's filters).

    Routine events (heartbeats, deliveries) are most of a busy stream: taken apart, they cannot push the few
    events a learner looks for out of the log, and the page can hide them without an empty log.
    """
    routine = set(player.pattern.routine)
    kept: list[Any] = []
    left = {True: count, False: count}
    for event in reversed(player.recent):
        is_routine = event.type in routine
        if left[is_routine]:
            left[is_routine] -= 1
            kept.append(event)
            if not (left[True] or left[False]):
                break
    rows = []
    for event in kept:
        detail = " ".join(f"{k}={_text(v)}" for k, v in event.fields.items())
        nodes = " ".join(sorted({str(v) for k, v in event.fields.items() if k in NODE_FIELDS and v is not None}))
        row = {"seq": event.seq, "t": f"{event.t:.3f}", "type": event.type, "detail": detail, "nodes": nodes}
        rows.append({**row, "routine": event.type in routine})
    return rows


def context(
    player: Player,
    *,
    run_id: str | None,
    frame: int,
    playing: bool,
    speed: float,
    log: int,
    viewers: int,
    message: str = "",
    diagrams: dict[str, Any] | None = None,
    with_script: bool = True,
    behind: bool = False,
    story: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a frame template needs; ``diagrams`` defaults to all of them, drawn now; ``story`` is the
    story's `patterns.core.story.frame` when the run tells one."""
    diagrams = drawings(player) if diagrams is None else diagrams
    data = frame_data(player, run_id=run_id, frame=frame, playing=playing, speed=speed, diagrams=diagrams)
    data["story"] = story
    return {
        "pattern": player.pattern,
        "data": data,
        "frame_json": json.dumps(data, separators=(",", ":")),
        "metrics": player.pattern.metrics(player.engine),
        "log": log_rows(player, log),
        "viewers": viewers,
        "message": message,
        "script": [a.text(player.pattern.command(a.command)) for a in player.scenario.script],
        "with_script": with_script,
        "behind": behind,
    }


def render_frame(ctx: dict[str, Any]) -> str:
    return render_to_string("core/frame.html", ctx)


def render_message(text: str, *, level: str = "error") -> str:
    return render_to_string("core/_messages.html", {"message": text, "level": level, "oob": True})


def _text(value: Any) -> str:
    """A field's value as a reader wants it: no ``None``, no nine-digit floats."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= 1e6:
            return f"{value:.4g}"
        return f"{value:.3f}".rstrip("0").rstrip(".") or "0"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)
