"""What a picture needs to stay true between Mermaid renders: live label values and messages on the wire.

Mermaid lays a diagram out in the browser's main thread, tens to hundreds of milliseconds each time, so a
diagram whose numbers change on every frame cannot be re-rendered on every frame, and a render held back shows
old numbers beside a caption that has the new ones. So a diagram's Mermaid source carries `masked` labels (every
run of digits written as zeros, at least PLACEHOLDER_DIGITS of them, so that the source changes only with the
structure and the boxes are sized for the numbers to come) and the drawing's ``values`` carry the real labels,
which the page writes into the rendered SVG on every frame (static/playground/motion.js).

Messages in flight travel as `token` records: an edge of the picture (Mermaid edge id, or a straight line in the
SVG's coordinates) and the virtual times the message left and arrives; the page moves each along its edge at
display rate from the frames' virtual times. At most TOKENS_SHOWN per picture, the newest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

PLACEHOLDER_DIGITS = 3
TOKENS_SHOWN = 40
DIGITS = re.compile(r"\d+")


def masked(text: str) -> str:
    """The label with its numbers replaced by zeros: ``ready 12 · unacked 3`` -> ``ready 000 · unacked 000``."""
    return DIGITS.sub(lambda m: "0" * max(PLACEHOLDER_DIGITS, len(m.group())), text)


def token(
    key: str,
    kind: str,
    sent: float,
    arrive: float,
    *,
    edge: str = "",
    reverse: bool = False,
    line: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """One message on the wire: along Mermaid edge ``edge`` (backwards when ``reverse``) or along ``line``
    (x1, y1, x2, y2 in the picture's coordinates), from virtual time ``sent`` to ``arrive``; ``kind`` is its
    CSS class (its colour), ``key`` names it from frame to frame."""
    if not edge and line is None:
        raise ValueError("a token travels along an edge or a line")
    out: dict[str, Any] = {"id": key, "kind": kind, "sent": round(sent, 4), "arrive": round(arrive, 4)}
    if edge:
        out["edge"] = edge
        if reverse:
            out["reverse"] = True
    else:
        out["line"] = [round(v, 1) for v in line]
    return out


def newest(tokens: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    """The TOKENS_SHOWN most recently sent tokens, in the order given."""
    items = list(tokens)
    if len(items) <= TOKENS_SHOWN:
        return tuple(items)
    keep = sorted(range(len(items)), key=lambda i: items[i]["sent"])[-TOKENS_SHOWN:]
    return tuple(items[i] for i in sorted(keep))
