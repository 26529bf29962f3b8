"""Sequence diagrams drawn on the server as SVG: participants as columns, one message arrow per row.

A picture that changes on every frame (recent RPCs, recent message steps) is cheap to draw here and costly for
Mermaid, which lays a sequence diagram out in the browser's main thread (tens of milliseconds each time). Drawing
it here also lets a message still on the wire stop part way along its arrow.

The output is a pure function of the arguments: the same rows give the same text in any process. Every text and
attribute value is HTML-escaped, labels are cut to LABEL_CHARS and the picture is widened to hold the longest, so
the size grows only with the number of rows and participants. Colours come from ``currentColor`` and the
``--ink`` custom property a caller may set per row class in ``style`` (for instance from the site's theme
variables), so the picture reads in the light and the dark theme alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

COLUMN_W, ROW_H, BAND_H, ACTOR_H, MARGIN = 96, 32, 22, 26, 12
CHAR_W = 7.4  # a generous width of one character of 13px text, to keep labels inside the picture
LABEL_CHARS = 96  # longest label shown; longer ones end in an ellipsis
NAME_CHARS = int((COLUMN_W - 12) // CHAR_W)  # longest participant name that fits its box
LOOP_W, LOOP_H = 26, 7  # a message from a participant to itself: a loop on the right of its lifeline
ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"
REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
CROSS = "\N{MULTIPLICATION SIGN}"
STYLES = ("request", "reply")
FATES = ("delivered", "dropped", "in_flight")
BASE_STYLE = (
    ".seq text{font:13px system-ui,sans-serif;fill:currentColor;dominant-baseline:central}"
    ".seq .actor rect{fill:none;stroke:currentColor;stroke-opacity:.5}"
    ".seq .actor text,.seq .band text,.seq .empty{text-anchor:middle}"
    ".seq .life{stroke:currentColor;stroke-opacity:.2}"
    ".seq .band rect{fill:#fff3bf;stroke:#f08c00}.seq .band text{fill:#111}"
    ".seq .row line,.seq .row .loop{fill:none;stroke:var(--ink,currentColor);stroke-width:1.5}"
    ".seq .reply line,.seq .reply .loop{stroke-dasharray:5 3}"
    ".seq .dropped line,.seq .dropped .loop{stroke-opacity:.45}"
    ".seq .head,.seq .row circle{fill:var(--ink,currentColor)}"
    ".seq .cross{fill:var(--danger,#c92a2a);font-weight:700;text-anchor:middle}"
)


@dataclass(frozen=True)
class Row:
    """One message: from participant ``src`` to ``dst`` (the same one for a step that concerns only it).

    ``style`` "reply" draws the arrow dashed; ``fate`` "dropped" ends it in a cross, "in_flight" stops it
    ``progress`` (0 to 1) of the way with a dot; ``css`` adds classes to the row (for its colour), ``data_id``
    names it for the page's highlights and details.
    """

    src: str
    dst: str
    label: str
    style: str = "request"
    fate: str = "delivered"
    progress: float = 1.0
    css: str = ""
    data_id: str = ""

    def __post_init__(self) -> None:
        if self.style not in STYLES or self.fate not in FATES:
            raise ValueError(f"a row's style is one of {STYLES} and its fate one of {FATES}: {self}")


@dataclass(frozen=True)
class Band:
    """A labelled band across the picture heading the rows from index ``start`` on, up to the next band."""

    start: int
    label: str


def sequence_svg(
    participants: Sequence[tuple[str, str]],
    rows: Sequence[Row],
    bands: Iterable[Band] = (),
    *,
    name: str,
    title: str,
    style: str = "",
    empty: str = "nothing yet",
) -> str:
    """The picture: ``participants`` are (id, label) columns from left to right (a row naming another id gets a
    column of its own at the right), ``rows`` top to bottom; ``name`` is the root's class and the prefix of its
    title's id, ``style`` extra CSS rules (scope them under ``.name``), ``empty`` what to say when there is no row.
    """
    empty = _cut(empty, LABEL_CHARS)
    columns = dict(participants)
    for row in rows:
        for end in (row.src, row.dst):
            columns.setdefault(end, end)
    x = {key: MARGIN + i * COLUMN_W + COLUMN_W / 2 for i, key in enumerate(columns)}
    labels = [_cut(row.label, LABEL_CHARS) for row in rows]
    longest = max((len(label) for label in labels), default=len(empty))
    # Rounded up: rounded to nearest, a long label could stick out of the margin by a fraction of a pixel.
    width = max(2 * MARGIN + len(columns) * COLUMN_W, 2 * MARGIN + math.ceil(longest * CHAR_W))
    heads = {band.start: band.label for band in bands}
    body, y = [], ACTOR_H + MARGIN
    for index, (row, label) in enumerate(zip(rows, labels, strict=True)):
        if index in heads:
            body.append(_band(heads[index], y, width))
            y += BAND_H
        body.append(_row(row, label, x, y, width))
        y += ROW_H
    if not rows:
        body.append(f'<text class="empty" x="{width / 2:g}" y="{y + ROW_H / 2:g}">{escape(empty)}</text>')
        y += ROW_H
    height = y + MARGIN
    actors = "".join(_actor(key, shown, x[key], height) for key, shown in columns.items())
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'class="seq {_attr(name)}" role="img" aria-labelledby="{_attr(name)}-title">'
        f"<style>{BASE_STYLE}{style}</style>"
        f'<title id="{_attr(name)}-title">{escape(_cut(title, LABEL_CHARS))}</title>{actors}{"".join(body)}</svg>'
    )


def _cut(words: str, most: int) -> str:
    """One line of at most ``most`` characters, with none that XML forbids, ready to escape."""
    words = " ".join(_clean(words).split())  # one line: no newline or tab in a label
    return words if len(words) <= most else words[: most - 1] + ELLIPSIS


def _clean(value: str) -> str:
    """The text with each character that may not appear in an XML document (controls, U+FFFE...) replaced."""
    return "".join(ch if ch in "\t\n\r" or _allowed(ord(ch)) else REPLACEMENT for ch in str(value))


def _allowed(code: int) -> bool:
    return 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF


def _attr(value: str) -> str:
    return escape(" ".join(_clean(value).split()))


def _actor(key: str, shown: str, x: float, height: float) -> str:
    """A participant's box (its whole name in a tooltip when it is cut) and its lifeline."""
    return (
        f'<g class="actor" data-id="{_attr(key)}"><title>{escape(_cut(shown, LABEL_CHARS))}</title>'
        f'<rect x="{x - COLUMN_W / 2 + 6:g}" y="{MARGIN / 2:g}" width="{COLUMN_W - 12}" height="{ACTOR_H}" rx="4"/>'
        f'<text x="{x:g}" y="{MARGIN / 2 + ACTOR_H / 2:g}">{escape(_cut(shown, NAME_CHARS))}</text></g>'
        f'<path class="life" d="M{x:g} {MARGIN / 2 + ACTOR_H:g}V{height}"/>'
    )


def _band(label: str, y: float, width: float) -> str:
    return (
        f'<g class="band"><rect x="{MARGIN}" y="{y + 2}" width="{width - 2 * MARGIN}" height="{BAND_H - 4}"/>'
        f'<text x="{width / 2:g}" y="{y + BAND_H / 2:g}">{escape(_cut(label, LABEL_CHARS))}</text></g>'
    )


def _row(row: Row, label: str, x: dict[str, float], y: float, width: float) -> str:
    """The label above an arrow from sender to receiver (or as far as it has got); the label starts over the
    arrow's left end, or ends at the right edge when it would run past it."""
    start, goal = x[row.src], x[row.dst]
    share = min(1.0, max(0.0, row.progress)) if row.fate == "in_flight" else 1.0
    line_y = y + ROW_H - 8
    if row.src == row.dst:
        arrow, end, end_y, step = _loop(start, line_y - 4, row.fate, share)
    else:
        end, end_y = start + (goal - start) * share, line_y
        step = 1 if end >= start else -1
        arrow = f'<line x1="{start:.1f}" y1="{line_y}" x2="{end:.1f}" y2="{line_y}"/>'
    if row.fate == "delivered":
        head = f'<path class="head" d="M{end:.1f} {end_y}l{-8 * step} -4v8z"/>'
    elif row.fate == "dropped":
        head = f'<text class="cross" x="{end - 6 * step:.1f}" y="{end_y}">{CROSS}</text>'
    else:
        head = f'<circle cx="{end:.1f}" cy="{end_y}" r="4"/>'
    classes = " ".join(["row", row.fate, row.style, *row.css.split()])
    named = f' data-id="{_attr(row.data_id)}"' if row.data_id else ""
    text = _label(min(start, goal) + 4, y + 9, label, width - MARGIN)
    return f'<g class="{_attr(classes)}"{named}>{text}{arrow}{head}</g>'


def _loop(x: float, y: float, fate: str, share: float) -> tuple[str, float, float, int]:
    """A message to oneself: out to the right and back below, ending at the lifeline when delivered; a lost one
    ends out at the right, one on its way part way out. Returns the path, where it ends and its direction."""
    if fate == "delivered":
        return f'<path class="loop" d="M{x:.1f} {y}h{LOOP_W}v{LOOP_H}h{-LOOP_W}"/>', x, y + LOOP_H, -1
    reach = LOOP_W * (share if fate == "in_flight" else 1.0)
    return f'<path class="loop" d="M{x:.1f} {y}h{reach:.1f}"/>', x + reach, y, 1


def _label(x: float, y: float, words: str, right: float) -> str:
    if x + len(words) * CHAR_W > right:
        return f'<text x="{right:.1f}" y="{y}" text-anchor="end">{escape(words)}</text>'
    return f'<text x="{x:.1f}" y="{y}">{escape(words)}</text>'
