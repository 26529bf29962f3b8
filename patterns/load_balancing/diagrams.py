"""What a viewer sees of the lanes: Mermaid sources, highlights, per-server details, hash rings and load charts.

Mermaid sources change only with what changes rarely (membership, health, server settings, and the load shares,
renewed once per metrics window), so the browser re-renders them rarely; the last request's path travels as
highlights, the live numbers in captions and in each server node's ``details``. Rings and charts are SVG drawn
here, a few kilobytes whatever the number of virtual nodes.
"""

from __future__ import annotations

import colorsys
import math
from bisect import bisect_left
from html import escape
from itertools import accumulate, pairwise
from typing import Any

from patterns.core.charts import line_chart
from patterns.core.motion import masked, newest, token
from patterns.core.registry import Drawing

from .engine import LoadBalancingEngine
from .hashing import HASH_SPACE
from .lanes import Lane
from .metrics import key_shares, lane_figures
from .traffic import HOT_KEY

NONE = "-"
SHAPES = {"terminal": ('(["', '"])'), "step": ('["', '"]'), "decision": ('{"', '"}')}
RING_RADIUS, RING_WIDTH, RING_SIZE = 70, 18, 200
RING_CELLS = 180  # the ring is drawn in 2-degree cells, each coloured by its owner: compact at any vnode count
MAX_TICKS = 120  # virtual nodes drawn as ticks up to this many points per ring


def server_colour(server: str) -> str:
    """A stable colour per server id (golden-angle hues), the same in every lane and diagram."""
    number = int(server[1:]) if server[1:].isdigit() else 0
    red, green, blue = colorsys.hls_to_rgb((number * 0.381966) % 1.0, 0.5, 0.6)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def _text(label: str) -> str:
    return label.replace('"', "#quot;")


# -- topology -------------------------------------------------------------------------------------------------------
def topology(engine: LoadBalancingEngine) -> Drawing:
    """Clients -> each lane's balancer -> its servers. Each edge carries the server's share of the lane's requests
    over the last whole metrics window, renewed once per window: the source (and the browser's rendering) changes
    that rarely, while the live numbers travel in the details and the caption."""
    lines = ["flowchart LR", f'    clients(["Clients<br/>{engine.arrivals.rate:g} req/s"])']
    lit_nodes: list[str] = []
    lit_edges: list[str] = []
    details: dict[str, str] = {}
    values: dict[str, str] = {}
    tokens: list[dict[str, Any]] = []
    captions = []
    for lane in engine.lanes:
        figures = lane_figures(lane)
        i = lane.index
        balancer = f"b{i}"
        lines.append(f'    subgraph lane{i}["{_text(lane.name)}{" (panic)" if lane.health.panic else ""}"]')
        lines.append("        direction TB")  # servers side by side under their balancer; lanes stack down the page
        lines.append(f'        {balancer}{{{{"{_text(lane.balancer.label)}"}}}}')
        shown = [s for s in lane.servers if s in lane.order or lane.servers[s].active]
        for server_id in shown:
            node = f"l{i}_{server_id}"
            numbers = figures["servers"][server_id]
            lines.append(f'        {node}["{server_id}<br/>{_server_state(lane, server_id)}"]')
            share = lane.epoch_shares.get(server_id)
            label = f'|"{masked(f"{share:.0%}")}"|' if share is not None else ""
            if share is not None:
                values[f"l{i}e_{server_id}"] = f"{share:.0%}"
            lines.append(f"        {balancer} l{i}e_{server_id}@-->{label} {node}")
            details[node] = _server_details(lane, server_id, numbers)
            marked = _server_class(lane, server_id)
            if marked:
                lines.append(f"        class {node} {marked}")
        lines.append("    end")
        lines.append(f"    clients --> lane{i}")  # to the lane, not its balancer: a link inside would undo direction
        if lane.last is not None and lane.last.server is not None:
            lit_nodes.append(f"l{i}_{lane.last.server}")
            lit_edges.append(f"l{i}e_{lane.last.server}")
        captions.append(_lane_caption(lane, figures))
        tokens += _route_tokens(lane, engine.sim.now)
    lines.append("    classDef down fill:#e5484d33,stroke:#e5484d,stroke-dasharray:4 3")
    lines.append("    classDef gone fill:#8b8d9833,stroke:#8b8d98,stroke-dasharray:2 2")
    return Drawing(
        mermaid="\n".join(lines),
        nodes=tuple(lit_nodes),
        edges=tuple(lit_edges),
        caption=" ".join(captions),
        details=details,
        values=values,
        tokens=newest(tokens),
    )


ROUTE_GLIDE = 0.3  # virtual seconds a routed request is shown travelling from its balancer to its server


def _route_tokens(lane: Lane, now: float) -> list[dict[str, Any]]:
    """The lane's requests routed in the last ROUTE_GLIDE seconds, each gliding from the balancer to its server
    (routing itself takes no time in the model: the glide is there to be seen)."""
    out = []
    for t, server in reversed(lane.routes):
        if t <= now - ROUTE_GLIDE:
            break
        out.append(
            token(f"r{lane.index}-{server}-{t:.6f}", "request", t, t + ROUTE_GLIDE, edge=f"l{lane.index}e_{server}")
        )
    return out[::-1]


def _server_state(lane: Lane, server_id: str) -> str:
    server = lane.servers[server_id]
    host = lane.health.hosts[server_id]
    words = []
    if server_id not in lane.order:
        words.append("removed, draining")
    if host.ejected:
        words.append(f"ejected until {host.ejected_until:.0f} s")
    if not host.healthy:
        words.append("unhealthy")
    spec = server.spec
    words.append(f"speed {spec.speed:g}" + (f", weight {spec.weight}" if spec.weight != 1 else ""))
    if spec.slow != 1:
        words.append(f"slow x{spec.slow:g}")
    if spec.fail_probability:
        words.append(f"failing {spec.fail_probability:.0%}")
    return "<br/>".join(words)


def _server_class(lane: Lane, server_id: str) -> str:
    if server_id not in lane.order:
        return "gone"
    host = lane.health.hosts[server_id]
    return "down" if host.ejected or not host.healthy else ""


def _server_details(lane: Lane, server_id: str, numbers: dict[str, Any]) -> str:
    spec = lane.servers[server_id].spec
    lines = [
        f"{server_id} in lane {lane.name}",
        f"speed {spec.speed:g}, weight {spec.weight}, slow x{spec.slow:g}, failing {spec.fail_probability:.0%}",
        f"{numbers['in_flight']} in flight, {numbers['queue']} queued",
        f"routed {numbers['routed']}, served {numbers['served']} ({numbers['failed']} errors), "
        f"dropped {numbers['dropped']}",
        f"latency p50/p95/p99, last {lane.window:g} s: {_ms3(numbers['window'])}",
        f"latency p50/p95/p99, whole run: {_ms3(numbers['total'])}",
    ]
    if "key_share" in numbers:
        lines.append(f"key share {numbers['key_share']:.1%}")
    host = lane.health.hosts[server_id]
    if host.ejections:
        lines.append(f"ejected {host.ejections} time{'s' if host.ejections > 1 else ''}")
    return "\n".join(lines)


def _lane_caption(lane: Lane, figures: dict[str, Any]) -> str:
    p = figures["window"]
    return (
        f"{lane.name}: {figures['throughput']:.0f}/s served, p99 {_ms(p[99])}, "
        f"{figures['drop_rate']:.1%} dropped, imbalance {_ratio(figures['imbalance'])}."
    )


# -- decision flow --------------------------------------------------------------------------------------------------
def flow(engine: LoadBalancingEngine) -> Drawing:
    """Each lane's decision flowchart, with the path of its latest request highlighted; the page shows one lane
    at a time (``views``), with a picker.

    Mermaid lays unconnected subgraphs out from right to left, so the lanes are written last first."""
    blocks: list[list[str]] = []
    lit_nodes: list[str] = []
    lit_edges: list[str] = []
    captions = []
    for lane in engine.lanes:
        i = lane.index
        chart = lane.balancer.flow()
        lines = [f'    subgraph flow{i}["{_text(lane.name)}"]', "        direction TB"]
        blocks.append(lines)
        for node in chart.nodes:
            opening, closing = SHAPES[node.shape]
            lines.append(f"        f{i}_{node.id}{opening}{_text(node.label)}{closing}")
        edge_ids = {}
        for number, edge in enumerate(chart.edges):
            edge_id = f"f{i}e{number}"
            edge_ids.setdefault((edge.source, edge.target), edge_id)
            label = f'|"{_text(edge.label)}"|' if edge.label else ""
            lines.append(f"        f{i}_{edge.source} {edge_id}@-->{label} f{i}_{edge.target}")
        lines.append("    end")
        last = lane.last
        if last is None:
            captions.append(f"{lane.name}: no request yet.")
            continue
        lit_nodes += [f"f{i}_{node}" for node in last.trail]
        lit_edges += [edge_ids[pair] for pair in pairwise(last.trail) if pair in edge_ids]
        captions.append(_pick_caption(lane))
    source = "\n".join(["flowchart TB", *(line for block in reversed(blocks) for line in block)])
    views = {f"flow{lane.index}": lane.name for lane in engine.lanes}
    return Drawing(
        mermaid=source, nodes=tuple(lit_nodes), edges=tuple(lit_edges), caption=" ".join(captions), views=views
    )


def _pick_caption(lane: Lane) -> str:
    last = lane.last
    where = last.server or "no server"
    outcome = {"start": "served at once", "queue": "queued", "drop": "dropped: queue full", "no_server": "dropped"}
    detail = ", ".join(f"{k} {_value(v)}" for k, v in last.detail.items())
    return f"{lane.name}: request {last.request} (key {last.key}) -> {where}, {outcome[last.outcome]}" + (
        f" ({detail})." if detail else "."
    )


# -- hash rings -----------------------------------------------------------------------------------------------------
def ring(engine: LoadBalancingEngine) -> Drawing:
    """For each hashing lane a ring: who owns each part of the hash space (ring, Maglev table) or of the key
    sample (rendezvous), with the virtual nodes as ticks while there are few enough to see."""
    lanes = [lane for lane in engine.lanes if lane.hashing]
    if not lanes:
        return Drawing(caption="No hashing lane: add ring_hash, bounded_load, maglev or rendezvous to the algorithms.")
    pictures, captions = [], []
    for lane in lanes:
        cells, ticks, what = _ownership(lane)
        shares = key_shares(lane.owners)
        pictures.append(_ring_svg(lane, cells, ticks, shares, what))
        captions.append(_ring_caption(lane, shares))
        if engine.traffic.hot_share:
            captions.append(f"The hot key belongs to {lane.balancer.key_owners([HOT_KEY])[HOT_KEY]} in {lane.name}.")
    svg = f'<div class="lb-rings" style="display:flex;flex-wrap:wrap;gap:8px">{"".join(pictures)}</div>'
    return Drawing(svg=svg, caption=" ".join(captions))


def _ownership(lane: Lane) -> tuple[list[str | None], list[float], str]:
    """The owner of each cell of the circle, the virtual nodes' positions (turns) and what the circle is."""
    balancer = lane.balancer
    ring_points = getattr(balancer, "ring", None)
    if ring_points is not None and len(ring_points):
        points, owners = ring_points.points, ring_points.owners
        cells = []
        for cell in range(RING_CELLS):
            h = int((cell + 0.5) / RING_CELLS * HASH_SPACE)
            index = bisect_left(points, h)
            cells.append(owners[index % len(points)])
        ticks = [p / HASH_SPACE for p in points] if len(points) <= MAX_TICKS else []
        return cells, ticks, f"ring of {len(points)} points ({balancer.vnodes} per server per weight)"
    table = getattr(balancer, "table", None)
    if table is not None and len(table):
        size = len(table)
        members = balancer.members
        cells = [members[table[int((cell + 0.5) / RING_CELLS * size)]] for cell in range(RING_CELLS)]
        return cells, [], f"Maglev table of {size} slots"
    shares = key_shares(lane.owners)
    cells, start = [], 0.0
    for server, share in shares.items():
        end = start + share * RING_CELLS
        cells += [server] * (round(end) - round(start))
        start = end
    return cells, [], "share of the key sample (no ring)"


def _ring_svg(lane: Lane, cells: list[str | None], ticks: list[float], shares: dict[str, float], what: str) -> str:
    """One circle per owner, its stroke dashed so that it shows exactly on that owner's cells: a few hundred
    bytes per ring whatever the number of virtual nodes."""
    centre = RING_SIZE / 2
    height = RING_SIZE + 20 * len(shares) + 8
    font = "fill:currentColor;font:13px system-ui,sans-serif"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {RING_SIZE + 80} {height}" '
        f'width="{RING_SIZE + 80}" height="{height}" data-lane="{escape(lane.name)}">',
        f"<title>{escape(lane.name)}: {escape(what)}</title>",
        f'<text x="4" y="14" style="{font}">{escape(lane.name)}</text>',
    ]
    cell_length = 2 * math.pi * RING_RADIUS / RING_CELLS
    for owner in dict.fromkeys(cells):
        edges = list(accumulate(_dashes([cell == owner for cell in cells])))
        ends = [round(edge * cell_length, 2) for edge in edges]  # rounded ends: the dashes still add up to a turn
        pattern = " ".join(f"{end - start:.2f}" for start, end in zip([0.0, *ends], ends, strict=False))
        colour = server_colour(owner) if owner else "#8b8d98"
        parts.append(
            f'<circle cx="{centre}" cy="{centre}" r="{RING_RADIUS}" fill="none" stroke="{colour}" '
            f'stroke-width="{RING_WIDTH}" stroke-dasharray="{pattern}" transform="rotate(-90 {centre} {centre})">'
            f"<title>{escape(owner or NONE)}</title></circle>"
        )
    inner, outer = RING_RADIUS - RING_WIDTH / 2 - 4, RING_RADIUS + RING_WIDTH / 2 + 4
    for turn in ticks:
        x1, y1 = _point(centre, inner, turn)
        x2, y2 = _point(centre, outer, turn)
        parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" style="stroke:currentColor"/>')
    label = what.split(" (")[0]
    parts.append(f'<text x="{centre}" y="{centre}" text-anchor="middle" style="{font}">{escape(label)}</text>')
    for row, (server, share) in enumerate(shares.items()):
        y = RING_SIZE + 8 + row * 20
        mark = "" if server in lane.eligible else " (not eligible)"
        parts.append(f'<rect x="8" y="{y}" width="10" height="10" fill="{server_colour(server)}"/>')
        parts.append(f'<text x="24" y="{y + 9}" style="{font}">{escape(server)} {share:.1%} of keys{mark}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _dashes(owned: list[bool]) -> list[int]:
    """Alternating run lengths of a stroke-dasharray, drawn first (0 when the circle starts undrawn)."""
    runs = [] if owned[0] else [0]
    current, length = owned[0], 0
    for flag in owned:
        if flag == current:
            length += 1
        else:
            runs.append(length)
            current, length = flag, 1
    runs.append(length)
    return runs if len(runs) % 2 == 0 else [*runs, 0]


def _point(centre: float, radius: float, turn: float) -> tuple[str, str]:
    angle = 2 * math.pi * turn - math.pi / 2  # 0 at the top, clockwise
    return f"{centre + radius * math.cos(angle):.1f}", f"{centre + radius * math.sin(angle):.1f}"


def _ring_caption(lane: Lane, shares: dict[str, float]) -> str:
    spread = f"key shares {min(shares.values()):.1%} to {max(shares.values()):.1%}" if shares else "no keys"
    moved = lane.moved
    if moved is None:
        return f"{lane.name}: {spread}."
    return f"{lane.name}: {spread}; the last change ({moved['change']} {moved['server'] or ''}) {moved_phrase(moved)}."


def moved_phrase(moved: dict[str, Any]) -> str:
    """What a membership change moved against the ideal. The ideal is the changed server's fair share of the keys
    (1/n when one of n equal servers leaves); a scheme with unequal shares (a ring with few virtual nodes) moves
    what that server really held, which can be less or more."""
    share, ideal = round(moved["moved_share"], 3), round(moved["ideal_share"], 3)
    removed = moved["change"] == "remove"
    who, whose = ("the removed server", "the removed server's") if removed else ("the changed servers", "their")
    text = f"moved {share:.1%} of keys; ideal {ideal:.1%} ({whose} fair share: 1/n of keys for n equal servers)"
    if share < ideal:
        return text + f": fewer, because this scheme's shares are unequal and {who} held less than that"
    if share > ideal:
        return text + f": more, because {who} held more than that or keys also moved between servers that stayed"
    return text


# -- load chart -----------------------------------------------------------------------------------------------------
def load(engine: LoadBalancingEngine) -> Drawing:
    """Requests in flight plus queued on each server, sampled every second over the last half minute, one chart per
    lane."""
    charts = []
    for lane in engine.lanes:
        if not lane.loads:
            continue
        servers = list(dict.fromkeys(s for _t, loads in lane.loads for s in loads))
        series = {s: [loads.get(s, math.nan) for _t, loads in lane.loads] for s in servers}
        charts.append(
            line_chart(
                series,
                x0=lane.loads[0][0],
                dx=1.0,
                title=f"{lane.name}: in flight + queued per server",
                width=460,
                height=200,
            )
        )
    caption = "Each server's requests in flight plus queued, sampled every virtual second."
    return Drawing(svg=f'<div class="lb-loads">{"".join(charts)}</div>', caption=caption)


# -- metrics --------------------------------------------------------------------------------------------------------
def metrics(engine: LoadBalancingEngine) -> dict[str, Any]:
    """Per lane: the totals, the window's latency and rates, imbalance; for hashing lanes the last moved share."""
    out: dict[str, Any] = {"Requests": engine.traffic.issued, "Request rate": f"{engine.arrivals.rate:g}/s"}
    if engine.traffic.hot_share:
        out["Hot key share"] = f"{engine.traffic.hot_share:.0%}"
    for lane in engine.lanes:
        figures = lane_figures(lane)
        name = lane.name
        out[f"{name}: in flight / queued"] = f"{figures['in_flight']} / {figures['queue']}"
        out[f"{name}: served / errors / dropped"] = f"{figures['served']} / {figures['failed']} / {figures['dropped']}"
        out[f"{name}: p50/p95/p99 ({lane.window:g} s)"] = _ms3(figures["window"])
        out[f"{name}: p50/p95/p99 (run)"] = _ms3(figures["total"])
        out[f"{name}: throughput"] = f"{figures['throughput']:.1f}/s"
        out[f"{name}: drop rate"] = f"{figures['drop_rate']:.1%}"
        out[f"{name}: imbalance (max/mean)"] = _ratio(figures["imbalance"])
        out[f"{name}: max queue now"] = max((s["queue"] for s in figures["servers"].values()), default=0)
        if lane.health.panic:
            out[f"{name}: panic"] = "yes: routing to all servers"
        if lane.hashing and lane.moved is not None:
            moved = lane.moved
            out[f"{name}: keys moved"] = f"at {moved['change']} {moved['server'] or ''}: {moved_phrase(moved)}"
        for server_id, numbers in figures["servers"].items():
            if numbers["present"] or numbers["in_flight"]:
                out[f"{name} · {server_id}"] = _server_row(numbers)
    return out


def _server_row(numbers: dict[str, Any]) -> str:
    row = (
        f"{numbers['in_flight']} in flight, {numbers['queue']} queued; {numbers['served']} served, "
        f"{numbers['dropped']} dropped; {_ms3(numbers['window'])}"
    )
    return row + (f"; {numbers['key_share']:.1%} of keys" if "key_share" in numbers else "")


def _ms(value: float | None) -> str:
    return NONE if value is None else f"{value * 1000:.0f} ms"


def _ms3(values: dict[int, float | None]) -> str:
    return " / ".join(_ms(values[q]) for q in (50, 95, 99))


def _ratio(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "/".join(map(_value, value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return str(value)
