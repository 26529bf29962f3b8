"""What a viewer sees of a run: one HTML frame of out-of-band fragments, rendered once per run, never per viewer.

A frame carries the full current state of what it updates (status, metrics, recent events, every diagram), so
a viewer who joins late or reconnects is right after one frame. Diagram data travels as JSON in a hidden
element's attribute; the page's script re-renders a Mermaid diagram only when its source changed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from django.template.loader import render_to_string

from .player import Player
from .scenario import encode


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
    }


def log_rows(player: Player, count: int) -> list[dict[str, Any]]:
    """The newest ``count`` events, newest first, each with its fields as short text."""
    rows = []
    for event in list(player.recent)[-count:][::-1]:
        detail = " ".join(f"{k}={_text(v)}" for k, v in event.fields.items())
        rows.append({"seq": event.seq, "t": f"{event.t:.3f}", "type": event.type, "detail": detail})
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
) -> dict[str, Any]:
    """Everything a frame template needs; ``diagrams`` defaults to all of them, drawn now."""
    diagrams = drawings(player) if diagrams is None else diagrams
    data = frame_data(player, run_id=run_id, frame=frame, playing=playing, speed=speed, diagrams=diagrams)
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
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
