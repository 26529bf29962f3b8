"""Small, dependency-free SVG line charts for rates over time.

The output is a self-contained inline SVG: an accessible image (``role="img"`` with a ``<title>`` and a
``<desc>`` giving each series' latest value), series coloured through the classes ``series-0`` .. ``series-5``
(defaults included, a site stylesheet may override them) and axes and text in ``currentColor``, so a chart reads
in light and dark themes alike. The same input always gives the same text, so a frame that did not change is
not re-sent and a diff of two runs shows only what differs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#1f9d55", "#e5484d", "#f76b15", "#8e4ec6", "#3e63dd", "#8b8d98")  # mid-tones: legible on light and dark
STYLE = (
    "<style>"
    + "".join(f".line-chart .series-{i}{{stroke:{colour}}}" for i, colour in enumerate(PALETTE))
    + ".line-chart .line{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}"
    ".line-chart .axis{stroke:currentColor;stroke-opacity:.55;fill:none}"
    ".line-chart .grid{stroke:currentColor;stroke-opacity:.12}"
    ".line-chart text{fill:currentColor;font:13px system-ui,sans-serif}"
    "</style>"
)
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 48, 14, 36, 40
LEGEND_ROW = 20
CHAR_W = 7.4  # a generous width of one character of 13px text: legend entries never run into each other


def line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    x0: float,
    dx: float,
    title: str,
    unit: str = "",
    x_unit: str = "s",
    width: int = 400,
    height: int = 240,
) -> str:
    """Draw each series as a line; point ``i`` of every series sits at ``x0 + i * dx``; ``unit`` is the values'
    unit (over the y axis), ``x_unit`` the x axis' (after its last tick).

    Non-finite values leave a gap. An empty chart (no series or no points) still draws its axes and says so.
    """
    names = list(series)
    columns = [[float(v) for v in series[name]] for name in names]
    count = max((len(c) for c in columns), default=0)
    finite = [v for c in columns for v in c if math.isfinite(v)]
    low, high = _y_range(finite)
    x_last = x0 + max(count - 1, 1) * dx
    legend = _legend_places(names, MARGIN_LEFT, width - MARGIN_RIGHT)
    legend_rows = 1 + max((row for row, _ in legend), default=-1)
    plot_left, plot_top = MARGIN_LEFT, MARGIN_TOP
    plot_right = width - MARGIN_RIGHT
    plot_bottom = height - MARGIN_BOTTOM - legend_rows * LEGEND_ROW

    def sx(x: float) -> float:
        return plot_left + (x - x0) / (x_last - x0) * (plot_right - plot_left) if x_last != x0 else plot_left

    def sy(y: float) -> float:
        return plot_bottom - (y - low) / (high - low) * (plot_bottom - plot_top)

    unit_text = f" {unit}" if unit else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="line-chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(_summary(names, columns, unit_text))}</desc>",
        STYLE,
        f'<text x="{plot_left}" y="13">{escape(title)}</text>',
    ]
    for tick in _ticks(low, high, 5):
        y = _n(sy(tick))
        parts.append(f'<line class="grid" x1="{plot_left}" y1="{y}" x2="{plot_right}" y2="{y}"/>')
        parts.append(f'<text x="{plot_left - 4}" y="{y}" text-anchor="end" dy="0.32em">{escape(_label(tick))}</text>')
    x_ticks = _ticks(x0, x_last, 6, least=dx) if count else []
    for tick in x_ticks:
        x = _n(sx(tick))
        shown = _label(tick) + (f" {x_unit}" if x_unit and tick == x_ticks[-1] else "")  # the unit on the last
        anchor = "end" if tick == x_ticks[-1] and len(x_ticks) > 1 else "middle"
        parts.append(f'<line class="axis" x1="{x}" y1="{plot_bottom}" x2="{x}" y2="{_n(plot_bottom + 4)}"/>')
        parts.append(f'<text x="{x}" y="{_n(plot_bottom + 17)}" text-anchor="{anchor}">{escape(shown)}</text>')
    parts.append(f'<path class="axis" d="M{plot_left} {plot_top}V{_n(plot_bottom)}H{plot_right}"/>')
    if unit:
        parts.append(f'<text x="{plot_left - 4}" y="{plot_top - 14}" text-anchor="end">{escape(unit)}</text>')
    if not finite:
        middle = _n((plot_top + plot_bottom) / 2)
        parts.append(f'<text x="{_n((plot_left + plot_right) / 2)}" y="{middle}" text-anchor="middle">no data</text>')
    for index, column in enumerate(columns):
        path = _path([(sx(x0 + i * dx), sy(v)) for i, v in enumerate(column)], column)
        if path:
            parts.append(f'<path class="line series-{index % len(PALETTE)}" d="{path}"/>')
    legend_top = height - legend_rows * LEGEND_ROW - 4
    for index, (name, (row, x)) in enumerate(zip(names, legend, strict=True)):
        y = legend_top + row * LEGEND_ROW + 10
        parts.append(f'<line class="line series-{index % len(PALETTE)}" x1="{x}" y1="{y}" x2="{x + 14}" y2="{y}"/>')
        parts.append(f'<text x="{x + 18}" y="{y}" dy="0.32em">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _y_range(values: list[float]) -> tuple[float, float]:
    """From zero (or the lowest negative value) to a round number above the highest value."""
    low = min(min(values, default=0.0), 0.0)
    high = max(max(values, default=0.0), 0.0)
    if high == low:
        high = low + 1.0
    step = _step(high - low, 5)
    return math.floor(low / step) * step, math.ceil(high / step) * step


def _step(span: float, count: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``count`` intervals over ``span``."""
    raw = span / count
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _legend_places(names: list[str], left: float, right: float) -> list[tuple[int, float]]:
    """(row, x) of each legend entry: a swatch and the name, side by side, wrapping at ``right``."""
    places, row, x = [], 0, left
    for name in names:
        size = 18 + len(name) * CHAR_W + 14
        if x > left and x + size > right:
            row, x = row + 1, left
        places.append((row, x))
        x += size
    return places


def _ticks(low: float, high: float, count: int, least: float = 0.0) -> list[float]:
    if high <= low:
        return [low]
    step = max(_step(high - low, count), least)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _path(points: list[tuple[float, float]], values: list[float]) -> str:
    """An SVG path through the finite points, broken where a value is missing."""
    out, pen_down = [], False
    for (x, y), value in zip(points, values, strict=True):
        if not math.isfinite(value):
            pen_down = False
            continue
        out.append(f"{'L' if pen_down else 'M'}{_n(x)} {_n(y)}")
        pen_down = True
    return "".join(out)


def _summary(names: list[str], columns: list[list[float]], unit_text: str) -> str:
    latest = []
    for name, column in zip(names, columns, strict=True):
        values = [v for v in column if math.isfinite(v)]
        latest.append(f"{name} {_label(values[-1])}{unit_text}" if values else f"{name} no data")
    return ("Latest: " + ", ".join(latest) + ".") if latest else "No series."


def _label(value: float) -> str:
    """Short, stable text for a number: 0, 2.5, 10, 1.2k."""
    if abs(value) >= 10000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _n(value: float) -> str:
    """A coordinate with one decimal, never ``-0.0``."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text
