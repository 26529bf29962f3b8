"""What a viewer sees of a run: one HTML frame of out-of-band fragments, rendered once per run, never per viewer.

A frame is made of named fragments (`FRAGMENTS`: status, script, metrics, the event log, a message, the frame
data). A viewer who joins or reconnects gets a full frame of its own, every fragment whole; the frames every
viewer of a run gets then carry only what changed (`patterns.core.runs.LiveRun.render`): the fragments whose HTML
differs from the previous frame's, the diagrams whose drawing does, and of the event log only the events new since
the previous frame, which the page puts on top of the rows it shows and trims to the same bound. Diagram data
travels as JSON in a hidden element's attribute; the page's script re-renders a Mermaid diagram only when its
source changed.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

from django.template.loader import render_to_string

from .player import Player
from .scenario import decode, encode, format_time

SEEK_BEFORE = 0.001  # virtual seconds: a step's marker seeks this much before it, where it is still to come

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


def log_rows(player: Player, count: int, after: int | None = None) -> list[dict[str, Any]]:
    """The newest ``count`` events and the newest ``count`` routine ones, newest first, each with its fields as
    short text and the node names it mentions (for the page's filters); with ``after``, of the events after that
    sequence number only (what a page that lists the log up to it lacks).

    Routine events (heartbeats, deliveries) are most of a busy stream: taken apart, they cannot push the few
    events a learner looks for out of the log, and the page can hide them without an empty log.
    """
    routine = set(player.pattern.routine)
    kept: list[Any] = []
    left = {True: count, False: count}
    for event in reversed(player.recent):
        if after is not None and event.seq <= after:
            break
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
    log_after: int | None = None,
    with_script: bool = True,
    behind: bool = False,
    story: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a frame template needs; ``diagrams`` defaults to all of them, drawn now; with ``log_after`` the
    log holds only the events after that sequence number (see `log_rows`); without ``with_script`` the script's
    fragments are left out (their viewers have them); ``story`` is the story's `patterns.core.story.frame` when
    the run tells one."""
    diagrams = drawings(player) if diagrams is None else diagrams
    data = frame_data(player, run_id=run_id, frame=frame, playing=playing, speed=speed, diagrams=diagrams)
    data["story"] = story
    return {
        "pattern": player.pattern,
        "data": data,
        "frame_json": json.dumps(data, separators=(",", ":")),
        "metrics": player.pattern.metrics(player.engine),
        "log": log_rows(player, log, log_after),
        "log_after": log_after,
        "log_keep": log,
        "viewers": viewers,
        "message": message,
        "script": script_steps(player) if with_script else None,
        "behind": behind,
    }


def script_steps(player: Player) -> list[dict[str, Any]]:
    """The run's script as the timeline and the script list show it: each step's place, time, text (the link's
    form, which a remove frame quotes back), a label for people, and whether its preset scripts it or a viewer
    added it (a live step)."""
    pattern, scenario = player.pattern, player.scenario
    planned = Counter(decode(pattern, [("preset", scenario.preset)]).script if pattern.preset(scenario.preset) else ())
    steps = []
    for index, action in enumerate(scenario.script):
        command = pattern.command(action.command)
        text = action.text(pattern)
        args = text.split(":", 2)[2:]
        scripted = planned[action] > 0
        if scripted:
            planned[action] -= 1
        label = f"{format_time(action.t)} s: {command.label}" + (f" ({args[0]})" if args else "")
        seek = {"action": "seek", "t": max(0.0, round(action.t - SEEK_BEFORE, 3))}  # the step not yet applied
        remove = {"action": "remove", "index": index, "step": text}
        steps.append(
            {
                "index": index,
                "t": action.t,
                "text": text,
                "label": label,
                "live": not scripted,
                "seek": _json(seek),
                "remove": _json(remove),
            }
        )
    return steps


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# a frame's out-of-band fragments, in the order they are sent: #frame-data last (the page reads it after the swaps)
FRAGMENTS = {
    "status": "core/_status.html",
    "script": "core/_script.html",
    "steps": "core/_steps.html",
    "metrics": "core/_metrics.html",
    "log": "core/_log.html",
    "messages": "core/_messages.html",
    "frame_data": "core/_frame_data.html",
}


def render_fragments(ctx: dict[str, Any]) -> dict[str, str]:
    """A frame's fragments by name (`FRAGMENTS`), each an out-of-band swap; the message only when there is one,
    the script's only when the context has it, and the log not when it is only the new events and there are none."""
    ctx = {**ctx, "oob": True, "level": "info"}
    skip = {"messages"} if not ctx["message"] else set()
    if ctx["script"] is None:
        skip.update(("script", "steps"))
    if ctx["log_after"] is not None and not ctx["log"]:
        skip.add("log")
    return {name: render_to_string(template, ctx) for name, template in FRAGMENTS.items() if name not in skip}


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
