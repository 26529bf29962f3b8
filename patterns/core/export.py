"""Events as JSON lines: the one serialisation the CLI, the download link and the determinism tests share."""

from __future__ import annotations

import json
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
