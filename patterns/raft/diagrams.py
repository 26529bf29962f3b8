"""What a viewer sees of a Raft cluster: three pictures drawn here as SVG (the cluster, the recent RPCs, the logs),
two Mermaid diagrams (the server states, the invariants), per-node details and the metrics.

Every function here is a pure function of the engine's state (the names the Raft contract lists), so the same
run gives the same text in any process. Ids are built from server and client ids (``s<number>``, ``c<number>``);
every Mermaid label goes through `text`, which turns the characters Mermaid would read as syntax into its
``#code;`` entities, and every SVG text is HTML-escaped. Views are bounded (the last RPCS_SHOWN RPCs, the last
LOG_ROWS log indexes). The views that change with every heartbeat or commit are SVG: Mermaid cannot place a
message part-way along an edge, lays a complete graph out as a tangle, and takes 100 to 500 ms of the browser's
main thread to lay out a sequence diagram or a log table, which at ten frames a second would be all of it. The
two Mermaid diagrams change only when a server changes role or term, or an invariant breaks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from patterns.core.motion import newest, token
from patterns.core.registry import Diagram, Drawing
from patterns.core.sequence import Band, Row, sequence_svg

from .clients import Client
from .engine import RaftEngine
from .log import RaftLog
from .server import Server

RPCS_SHOWN = 20
LOG_ROWS = 12
IN_FLIGHT_LISTED = 6  # in-flight RPCs named in the cluster's caption (the ids drop_message takes)
DETAIL_ENTRIES = 8  # log entries listed in a server's details
CELL_CHARS = 9  # characters of a command shown in a log cell (the term follows)
NONE = "-"
ARROW = "\N{RIGHTWARDS ARROW}"
ABSENT = "\N{EMPTY SET}"
MIDDOT = "\N{MIDDLE DOT}"
SYNTAX = frozenset('#;"<>&|{}[]()%`\\:')  # characters Mermaid may read as syntax inside a label

ROLE_WORDS = {"follower": "follower", "pre_candidate": "pre-candidate", "candidate": "candidate", "leader": "leader"}
INVARIANTS = (  # the five properties of Figure 3 of the Raft paper, the clients' view, two rules that keep them
    ("election_safety", "Election Safety", "No term ever has two leaders."),
    (
        "leader_append_only",
        "Leader Append-Only",
        "While it leads, a leader only adds to its log: it never changes or removes an entry of its own.",
    ),
    (
        "log_matching",
        "Log Matching",
        "Two logs holding an entry with the same index and term hold the same entries up to that index.",
    ),
    (
        "leader_completeness",
        "Leader Completeness",
        "An entry committed in some term is in the log of every leader of a later term.",
    ),
    ("state_machine_safety", "State Machine Safety", "No two servers apply different commands at the same index."),
    (
        "linearizability",
        "Linearizability",
        "The answers clients got fit one order of their operations, each taking "
        "effect between its request and its answer.",
    ),
    (
        "commit_own_term",
        "Rule: commit own term",
        "A leader commits an entry by counting its replicas only if the entry is of the leader's term.",
    ),
    ("persistent_state", "Rule: persist term, vote", "A restarted server keeps its currentTerm and votedFor."),
)
# Mid-tone fills with dark text: legible in the light and the dark theme alike (index = term modulo the length).
TERM_FILLS = ("#a5d8ff", "#b2f2bb", "#ffd8a8", "#d0bfff", "#fcc2d7", "#99e9f2")
ROLE_STYLES = {  # CSS for a server's box in the cluster picture
    "leader": "fill:#b2f2bb;stroke:#2b8a3e;stroke-width:3",
    "candidate": "fill:#ffd8a8;stroke:#e8590c;stroke-width:2",
    "pre_candidate": "fill:#fff3bf;stroke:#f08c00;stroke-dasharray:4 3",
    "follower": "fill:#e7f5ff;stroke:#1c7ed6",
    "crashed": "fill:#dee2e6;stroke:#868e96;stroke-dasharray:5 4",
    "removed": "fill:#f8f9fa;stroke:#adb5bd;stroke-dasharray:2 3",
}


def text(value: Any) -> str:
    """A label safe inside Mermaid quotes, notes and messages: syntax characters become ``#code;`` entities."""
    return "".join(f"#{ord(ch)};" if ch in SYNTAX else " " if ch in "\r\n\t" else ch for ch in str(value))


def node_id(name: str) -> str:
    """A Mermaid id for a server or client name (kept as it is when it is already a plain word)."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in name)


def _svg_text(x: float, y: float, words: str, cls: str = "") -> str:
    """One line of escaped SVG text at (x, y); the picture's style says how it is aligned."""
    shown = f' class="{cls}"' if cls else ""
    return f'<text{shown} x="{x:g}" y="{y:g}">{escape(words)}</text>'


# -- shared views of the engine -----------------------------------------------------------------------------------
def leaders(engine: RaftEngine) -> list[Server]:
    """Live servers that think they lead, highest term first (two at once: a stale leader not yet deposed)."""
    found = [s for s in engine.servers.values() if s.alive and s.role == "leader"]
    return sorted(found, key=lambda s: -s.current_term)


def configuration(engine: RaftEngine) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The cluster's configuration as the most up-to-date live server sees it: (voters, learners)."""
    live = [s for s in engine.servers.values() if s.alive] or list(engine.servers.values())
    lead = leaders(engine)
    source = lead[0] if lead else max(live, key=lambda s: (s.current_term, s.log.last_index))
    return tuple(source.voters), tuple(source.learners)


def role_of(server: Server) -> str:
    return server.role if server.alive else "crashed"


def command_text(command: Mapping[str, Any], *, short: bool = False) -> str:
    """A log entry's command in words: ``set k1=5``; short, for a log cell: ``k1=5``, at most CELL_CHARS long."""
    op, key = command.get("op"), command.get("key")
    value, expected = _value(command.get("value")), _value(command.get("expected"))
    if short:
        words = {"set": f"{key}={value}", "delete": f"del {key}", "cas": f"cas {key}", "get": f"get {key}"}
        shown = words.get(op, str(op))
        return shown if len(shown) <= CELL_CHARS else shown[: CELL_CHARS - 1] + "\N{HORIZONTAL ELLIPSIS}"
    if op == "set":
        return f"set {key}={value}"
    if op == "delete":
        return f"del {key}"
    if op == "cas":
        return f"cas {key} {expected}{ARROW}{value}"
    if op == "get":
        return f"get {key}"
    if op == "config":
        learners = ",".join(command.get("learners", ()))
        voters = ",".join(command.get("voters", ())) or NONE
        return f"config voters {voters}" + (f" learners {learners}" if learners else "")
    return str(op)


def _value(value: Any) -> str:
    """A stored value; ABSENT for none (a cas that expects the key to be missing)."""
    return ABSENT if value is None else str(value)


def server_details(server: Server) -> str:
    """What survives a crash (currentTerm, votedFor, log) and what does not, as plain lines of text; the first
    is the heading the page shows above the rest."""
    log = server.log
    lines = [f"{server.id}: {'crashed' if not server.alive else ROLE_WORDS.get(server.role, server.role)}"]
    lines.append("Persistent (kept across a crash):")
    lines.append(f"  currentTerm {server.current_term}")
    lines.append(f"  votedFor {server.voted_for or NONE}")
    if log.snapshot_index:
        lines.append(f"  snapshot through index {log.snapshot_index} (term {log.snapshot_term})")
    if log.last_index > log.snapshot_index:
        lines.append(f"  log {log.snapshot_index + 1}..{log.last_index} (last term {log.last_term})")
        first = max(log.snapshot_index + 1, log.last_index - DETAIL_ENTRIES + 1)
        if first > log.snapshot_index + 1:
            lines.append("    ...")
        for index in range(first, log.last_index + 1):
            entry = log.entry_at(index)
            lines.append(f"    {index}: term {entry['term']} {command_text(entry['command'])}")
    else:
        lines.append("  log: no entries" + (" after the snapshot" if log.snapshot_index else ""))
    lines.append("")
    if not server.alive:
        lines.append("Volatile: lost in the crash; rebuilt from the above (and the leader) on restart.")
        return "\n".join(lines)
    lines.append("Volatile (lost in a crash):")
    lines.append(f"  role {ROLE_WORDS.get(server.role, server.role)}")
    lines.append(f"  commitIndex {server.commit_index}")
    lines.append(f"  lastApplied {server.last_applied}")
    lines.append(f"  leader {server.leader_id or 'unknown'}")
    if server.role in ("candidate", "pre_candidate"):
        lines.append(f"  votes from {', '.join(sorted(server.votes)) or NONE}")
    if server.role == "leader":
        lines.append("  nextIndex " + _per_peer(server.next_index))
        lines.append("  matchIndex " + _per_peer(server.match_index))
    if server.election_deadline is not None:
        lines.append(f"  election timeout at {server.election_deadline:.3f} s")
    voters, learners = ", ".join(server.voters) or NONE, ", ".join(server.learners)
    lines.append(f"  configuration: voters {voters}" + (f"; learners {learners}" if learners else ""))
    lines.append(f"  state machine: {_kv_text(server.kv)}")
    return "\n".join(lines)


def _per_peer(table: Mapping[str, int]) -> str:
    return " ".join(f"{peer}={table[peer]}" for peer in sorted(table, key=_server_order)) or NONE


def _server_order(name: str) -> tuple[int, str]:
    """Servers in number order (s2 before s10); anything else after, by name."""
    digits = name[1:]
    return (int(digits), name) if digits.isdigit() else (1 << 30, name)


def _kv_text(kv: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={kv[key]}" for key in sorted(kv)) or "empty"


# -- cluster --------------------------------------------------------------------------------------------------------
# A server-side SVG, as RaftScope draws it: the servers on a ring, every link between them with its state, each
# message on the wire as a dot on its way (placed by the share of its flight time gone), the clients on the left.
# Mermaid would lay out a complete graph as a tangle and could not place messages along an edge.
NODE_W, NODE_H, CLIENT_W, CLIENT_H, MARGIN = 120, 60, 92, 42, 12
LINE = 17  # px between the lines of text in a box (13 px text)
RING_MIN, RING_SPACING = 130.0, 136.0  # ring radius: at least RING_MIN, and RING_SPACING of arc per server
MESSAGE_KINDS = {"PreVote": "vote", "RequestVote": "vote", "AppendEntries": "append", "InstallSnapshot": "snap"}
MESSAGE_COLOURS = {"vote": "#9c36b5", "append": "#1c7ed6", "snap": "#e8590c", "client-msg": "#2b8a3e"}
CLUSTER_STYLE = (
    "<style>"
    + "".join(f".raft-cluster .{role} rect{{{style}}}" for role, style in ROLE_STYLES.items())
    + ".raft-cluster text{font:13px system-ui,sans-serif;text-anchor:middle;dominant-baseline:central;fill:#111}"
    ".raft-cluster text.plain{fill:currentColor}"
    ".raft-cluster .name{font-weight:700}"
    ".raft-cluster .crashed text,.raft-cluster .removed text{fill:#495057}"
    ".raft-cluster .client rect{fill:#f1f3f5;stroke:#868e96}"
    ".raft-cluster path{fill:none;stroke:currentColor;stroke-opacity:.35;stroke-width:1.5}"
    ".raft-cluster path.lossy{stroke-dasharray:2 3;stroke-opacity:.6}"
    ".raft-cluster path.cut{stroke:#c92a2a;stroke-opacity:.8;stroke-dasharray:6 4}"
    ".raft-cluster path.partitioned{stroke:#c92a2a;stroke-opacity:.3;stroke-dasharray:2 6}"
    ".raft-cluster path.hint{stroke-dasharray:4 3;stroke-opacity:.55}"
    ".raft-cluster circle{stroke:#111;stroke-width:1}"
    ".raft-cluster .reply{fill-opacity:.25;stroke-width:2}"
    + "".join(
        f".raft-cluster .{kind}{{fill:{c}}}.raft-cluster .reply.{kind}{{stroke:{c}}}"
        for kind, c in MESSAGE_COLOURS.items()
    )
    + "</style>"
)


def cluster(engine: RaftEngine) -> Drawing:
    """Servers with role, term and commit index on a ring, the links between them (ok, lossy, cut, partitioned),
    the messages on the wire, the clients and the server each sends to; a partition numbers its groups."""
    voters, learners = configuration(engine)
    servers, clients = list(engine.servers.values()), list(engine.clients.values())
    radius = max(RING_MIN, len(servers) * RING_SPACING / (2 * math.pi))
    left = MARGIN + (CLIENT_W + 3 * MARGIN if clients else 0)
    cx, cy = left + radius + NODE_W / 2, MARGIN + radius + NODE_H / 2
    at: dict[str, tuple[float, float, float, float]] = {}  # node -> centre x, y and half width, height
    for i, server in enumerate(servers):
        angle = -math.pi / 2 + 2 * math.pi * i / len(servers)
        at[server.id] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle), NODE_W / 2, NODE_H / 2)
    for i, client in enumerate(clients):
        y = cy + (i - (len(clients) - 1) / 2) * (CLIENT_H + MARGIN)
        at[client.id] = (MARGIN + CLIENT_W / 2, y, CLIENT_W / 2, CLIENT_H / 2)
    groups = [group for group in engine.net.groups() if any(node in engine.servers for node in group)]
    group_of = (
        {node: number for number, group in enumerate(groups, start=1) for node in group} if len(groups) > 1 else {}
    )
    width = cx + radius + NODE_W / 2 + MARGIN
    height = cy + radius + NODE_H / 2 + MARGIN + (22 if group_of else 0)
    links = [(a, b, state) for a, b, state in engine.net.links() if a in engine.servers and b in engine.servers]
    everywhere = bool(links) and all(state == "lossy" for _, _, state in links)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" class="raft-cluster" role="img" aria-labelledby="raft-cluster-title">',
        CLUSTER_STYLE,
        f'<title id="raft-cluster-title">{escape(_cluster_title(engine))}</title>',
    ]
    for a, b, state in links:
        parts.append(_svg_path(_link_id(a, b), state, at[a], at[b]))
        if state == "cut":
            parts.append(_svg_text(*_along(at[a], at[b], 0.5), "cut", "plain"))
    for client in clients:
        if client.leader_hint in at:
            parts.append(_svg_path(_link_id(client.id, ""), "hint", at[client.id], at[client.leader_hint]))
    for server in servers:
        role = role_of(server) if server.id in voters or server.id in learners else "removed"
        parts.append(_server_node(server, role, server.id in learners, at[server.id], group_of.get(server.id)))
    for client in clients:
        parts.append(_client_node(client, at[client.id]))
    if group_of:
        legend = "  |  ".join(" ".join(node for node in group) for group in groups)
        parts.append(_svg_text(width / 2, height - MARGIN - 6, f"partitions: {legend}", "plain"))
    parts.append("</svg>")
    details = {node_id(s.id): server_details(s) for s in servers}
    details.update({node_id(c.id): _client_details(c) for c in clients})
    return Drawing(
        svg="".join(parts),
        nodes=tuple(node_id(s.id) for s in leaders(engine)),
        edges=tuple(_busy_links(engine, [s.id for s in servers])),
        caption=_cluster_caption(engine, everywhere),
        details=details,
        tokens=_tokens(engine, at),
    )


def _cluster_title(engine: RaftEngine) -> str:
    lead = leaders(engine)
    who = ", ".join(f"{s.id} leads term {s.current_term}" for s in lead) or "no leader"
    return f"Cluster of {len(engine.servers)} servers: {who}"


def _server_node(server: Server, role: str, learner: bool, place: tuple, group: int | None) -> str:
    x, y, hw, hh = place
    if not server.alive:
        words, numbers = "crashed", f"term {server.current_term}"
    else:
        words = "learner" if learner else ROLE_WORDS.get(server.role, server.role)
        numbers = f"t{server.current_term} {MIDDOT} commit {server.commit_index}"
    if role == "removed":
        words = "leaving"
    out = [
        f'<g data-id="{node_id(server.id)}" class="{role}">',
        f'<rect x="{x - hw:.1f}" y="{y - hh:.1f}" width="{2 * hw:.0f}" height="{2 * hh:.0f}" rx="8"/>',
        _svg_text(x, y - LINE, server.id, "name"),
        _svg_text(x, y, words),
        _svg_text(x, y + LINE, numbers),
    ]
    if group is not None:
        out.append(_svg_text(x + hw - 14, y - LINE, f"P{group}"))
    return "".join(out) + "</g>"


def _client_node(client: Client, place: tuple) -> str:
    x, y, hw, hh = place
    pending = client.pending
    doing = command_text(pending, short=True) if pending else "idle"
    return (
        f'<g data-id="{node_id(client.id)}" class="client"><rect x="{x - hw:.1f}" y="{y - hh:.1f}" '
        f'width="{2 * hw:.0f}" height="{2 * hh:.0f}" rx="{hh:.0f}"/>'
        f"{_svg_text(x, y - LINE / 2, client.id, 'name')}{_svg_text(x, y + LINE / 2, doing)}</g>"
    )


# virtual seconds a message is shown travelling at the least: a 10 ms hop would not be seen, and one sent just
# after a frame must still be on its way at the next (FRAME_INTERVAL apart at 1x)
MIN_GLIDE = 0.2


def _tokens(engine: RaftEngine, at: Mapping[str, tuple]) -> tuple[Mapping[str, Any], ...]:
    """The recent messages between drawn nodes as tokens the page moves from the sender's box to the receiver's:
    from the send time to the arrival (known while on the wire), and for at least MIN_GLIDE, so that a message
    of a fast network is seen at all; colour by RPC, replies hollow. Lost messages are left to the RPC diagram."""
    now, out = engine.sim.now, []
    wire = {m.id: m for m in engine.net.in_flight()}
    for rpc in engine.rpcs:
        message = wire.get(rpc["id"])
        arrive = rpc["t"] + MIN_GLIDE
        if message is not None and message.deliver_at is not None:
            arrive = max(arrive, message.deliver_at)
        if rpc["fate"] == "dropped" or arrive <= now or rpc["src"] not in at or rpc["dst"] not in at:
            continue
        kind = rpc["kind"]
        shade = MESSAGE_KINDS.get(kind.removesuffix("Reply"), "client-msg") + (
            " reply" if kind.endswith("Reply") else ""
        )
        out.append(token(f"m{rpc['id']}", shade, rpc["t"], arrive, line=_lane(at[rpc["src"]], at[rpc["dst"]])))
    for message in wire.values():  # clients' requests and answers
        to_client = message.src in engine.clients or message.dst in engine.clients
        if to_client and message.src in at and message.dst in at and message.deliver_at is not None:
            line = _lane(at[message.src], at[message.dst])
            out.append(token(f"m{message.id}", "client-msg", message.sent_at, message.deliver_at, line=line))
    return newest(out)


TOKEN_LANE = 4.0  # px a token keeps to the right of the link it travels, so that requests and replies pass


def _lane(a: tuple, b: tuple) -> tuple[float, float, float, float]:
    """From box ``a`` to box ``b``, shifted TOKEN_LANE to the right of the direction of travel."""
    (x1, y1), (x2, y2) = _along(a, b, 0.0), _along(a, b, 1.0)
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    dx, dy = -(y2 - y1) / length * TOKEN_LANE, (x2 - x1) / length * TOKEN_LANE
    return x1 + dx, y1 + dy, x2 + dx, y2 + dy


def _svg_path(edge: str, state: str, a: tuple, b: tuple) -> str:
    (x1, y1), (x2, y2) = _along(a, b, 0.0), _along(a, b, 1.0)
    return f'<path data-edge="" data-id="{edge}" class="{state}" d="M{x1:.1f} {y1:.1f}L{x2:.1f} {y2:.1f}"/>'


def _along(a: tuple, b: tuple, share: float) -> tuple[float, float]:
    """The point ``share`` of the way from the border of box ``a`` to the border of box ``b``."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = a, b
    dx, dy = bx - ax, by - ay
    start = min(aw / abs(dx) if dx else math.inf, ah / abs(dy) if dy else math.inf)
    end = 1 - min(bw / abs(dx) if dx else math.inf, bh / abs(dy) if dy else math.inf)
    if end <= start:  # overlapping boxes: centre to centre
        start, end = 0.0, 1.0
    t = start + (end - start) * share
    return ax + dx * t, ay + dy * t


def _client_details(client: Client) -> str:
    pending = command_text(client.pending) if client.pending else "none"
    return (
        f"{client.id}: client\n  pending operation: {pending}\n  completed: {client.completed}\n"
        f"  sends to: {client.leader_hint or 'any server (no leader known)'}"
    )


def _link_id(a: str, b: str) -> str:
    """Edge id of the link a-b between servers, or of a client's arrow when ``b`` is empty."""
    return f"l_{node_id(a)}_{node_id(b)}" if b else f"k_{node_id(a)}"


def _busy_links(engine: RaftEngine, ids: list[str]) -> list[str]:
    """Ids of the drawn edges with at least one message on the wire, in drawing order."""
    order = {name: index for index, name in enumerate(ids)}
    busy: dict[str, bool] = {}
    for message in engine.net.in_flight():
        if message.src in order and message.dst in order:
            a, b = sorted((message.src, message.dst), key=order.__getitem__)
            busy[_link_id(a, b)] = True
        else:
            client = message.src if message.src in engine.clients else message.dst
            if client in engine.clients and engine.clients[client].leader_hint in engine.servers:
                busy[_link_id(client, "")] = True
    drawn = [_link_id(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    drawn += [_link_id(c, "") for c in engine.clients]
    return [edge for edge in drawn if edge in busy]


def _cluster_caption(engine: RaftEngine, lossy_everywhere: bool) -> str:
    in_flight = engine.net.in_flight()
    flying = [r for r in engine.rpcs if r["fate"] == "in_flight"]
    parts = [f"{len(in_flight)} message{'' if len(in_flight) == 1 else 's'} in flight"]
    if flying:
        listed = ", ".join(f"#{r['id']} {r['src']}{ARROW}{r['dst']} {r['kind']}" for r in flying[:IN_FLIGHT_LISTED])
        parts[0] += f" ({listed}{', ...' if len(flying) > IN_FLIGHT_LISTED else ''})"
    parts.append("highlighted links carry messages now")
    if lossy_everywhere:
        parts.append(f"every link loses {engine.net.drop_rate:.0%} of messages")
    down = [s.id for s in engine.servers.values() if not s.alive]
    if down:
        parts.append("crashed: " + ", ".join(down))
    parts.append("click a server for its persistent and volatile state")
    return "; ".join(parts) + "."


# -- server states --------------------------------------------------------------------------------------------------
STATE_IDS = {
    "follower": "Follower",
    "pre_candidate": "PreCandidate",
    "candidate": "Candidate",
    "leader": "Leader",
    "crashed": "Crashed",
}


# Drawn here, not by Mermaid: its layout of this machine put labels on top of each other and, fitted to a panel,
# shrank them to ~6 px. One column of states; the way up to candidate and leader on the left, every way back to
# follower on the right, one lane each, with its label on the row of the state it leaves; crash and restart
# between Crashed (at the top) and Follower. Each box lists the servers in that state now.
STATE_W, STATE_H, STATE_ROW = 112, 46, 92
STATE_LEFT, LANE_GAP, LABEL_GAP, STATE_LINE = 100, 14, 8, 16
LABEL_W = 110  # the longest label on the right (14 characters of 13 px text)
STATES_STYLE = (
    "<style>.raft-states text{font:13px system-ui,sans-serif;fill:currentColor;dominant-baseline:central}"
    ".raft-states .state rect{fill:none;stroke:currentColor;stroke-opacity:.55;stroke-width:1.5}"
    ".raft-states .state text{text-anchor:middle}.raft-states .name{font-weight:700}"
    ".raft-states .left{text-anchor:end}"
    ".raft-states path{fill:none;stroke:currentColor;stroke-opacity:.6;stroke-width:1.5}"
    ".raft-states path.head{fill:currentColor;fill-opacity:.75;stroke:none}</style>"
)
GOING_UP = {  # (from, to) -> label lines, on the left
    ("Follower", "PreCandidate"): ("election", "timeout"),
    ("Follower", "Candidate"): ("election", "timeout"),
    ("PreCandidate", "Candidate"): ("pre-votes of", "a majority"),
    ("Candidate", "Leader"): ("votes from", "a majority"),
}
GOING_BACK = {  # from -> label lines, on the right
    "PreCandidate": ("a leader, or", "no majority"),
    "Candidate": ("a leader or a", "higher term"),
    "Leader": ("a higher term",),
}


def states(engine: RaftEngine) -> Drawing:
    """Raft's server state machine as this run is configured (pre-vote, check-quorum); each state lists the
    servers in it now, and the states with a server are marked."""
    pre_vote, check_quorum = engine.params["pre_vote"], engine.params["check_quorum"]
    column = ["Crashed", "Follower", *(["PreCandidate"] if pre_vote else []), "Candidate", "Leader"]
    row = {state: index for index, state in enumerate(column)}
    occupied: dict[str, list[Server]] = {}
    for server in engine.servers.values():
        occupied.setdefault(STATE_IDS[role_of(server)], []).append(server)
    back = [state for state in column if state in GOING_BACK]
    right = STATE_LEFT + STATE_W
    label_x = right + LANE_GAP * (len(back) + 1) + LABEL_GAP
    width = label_x + LABEL_W
    height = STATE_ROW * (len(column) - 1) + STATE_H + 2 * MARGIN + STATE_LINE

    def centre(state: str) -> float:
        return MARGIN + STATE_H / 2 + row[state] * STATE_ROW

    x_mid = STATE_LEFT + STATE_W / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'class="raft-states" role="img" aria-labelledby="raft-states-title">',
        STATES_STYLE,
        f'<title id="raft-states-title">Server states: {escape(_states_summary(occupied))}</title>',
    ]
    for state in column:
        y = centre(state)
        names = " ".join(server.id for server in occupied.get(state, []))
        shown = names if len(names) <= 16 else f"{len(occupied[state])} servers"
        parts.append(
            f'<g class="state" data-id="{state}"><rect x="{STATE_LEFT}" y="{y - STATE_H / 2:g}" width="{STATE_W}" '
            f'height="{STATE_H}" rx="8"/>{_svg_text(x_mid, y - STATE_LINE / 2 - 1, STATE_WORDS[state], "name")}'
            f"{_svg_text(x_mid, y + STATE_LINE / 2 + 1, shown or NONE)}</g>"
        )
    # crash and restart, between Crashed and Follower
    top, bottom = centre("Crashed") + STATE_H / 2, centre("Follower") - STATE_H / 2
    parts += _arrow(x_mid - 24, top, x_mid - 24, bottom)
    parts += _arrow(x_mid + 24, bottom, x_mid + 24, top)
    parts.append(_svg_text(x_mid - 32, (top + bottom) / 2, "crash", "left"))
    parts.append(_svg_text(x_mid + 32, (top + bottom) / 2, "restart"))
    # the way up, on the left of the boxes, each label in the gap between the two rows
    ups = [(a, b) for a, b in GOING_UP if a in row and b in row and row[b] == row[a] + 1]
    for a, b in ups:
        x = STATE_LEFT + 30
        parts += _arrow(x, centre(a) + STATE_H / 2, x, centre(b) - STATE_H / 2)
        parts += _lines(x - 8, (centre(a) + centre(b)) / 2, GOING_UP[(a, b)], "left")
    # split vote: a loop on the left of Candidate
    y = centre("Candidate")
    parts.append(f'<path d="M{STATE_LEFT} {y - 8}h-16v16h10"/>')
    parts += _head(STATE_LEFT, y + 8, 1, 0)
    parts += _lines(STATE_LEFT - 22, y, ("split vote:", "next term"), "left")
    # every way back to Follower, one lane each on the right, entering Follower's right side
    follower = centre("Follower")
    for lane, state in enumerate(back):
        x, y = right + LANE_GAP * (lane + 1), centre(state)
        enter = follower + STATE_H / 2 - 6 - lane * 8
        parts.append(f'<path d="M{right} {y}H{x}V{enter}H{right + 6}"/>')
        parts += _head(right, enter, -1, 0)
        words = GOING_BACK[state]
        if state == "Leader" and check_quorum:
            words = ("a higher term,", "or no majority", "for a timeout")
        parts += _lines(label_x, y, words)
    parts.append("</svg>")
    marked = tuple(state for state in column if state in occupied)
    toggles = f"pre-vote {'on' if pre_vote else 'off'}, check-quorum {'on' if check_quorum else 'off'}"
    caption = f"{_states_summary(occupied)} ({toggles})."
    return Drawing(svg="".join(parts), nodes=marked, caption=caption)


STATE_WORDS = {
    "Crashed": "Crashed",
    "Follower": "Follower",
    "PreCandidate": "Pre-candidate",
    "Candidate": "Candidate",
    "Leader": "Leader",
}


def _states_summary(occupied: Mapping[str, list[Server]]) -> str:
    return "; ".join(
        f"{state}: {', '.join(_state_tag(server) for server in servers)}" for state, servers in _in_order(occupied)
    )


def _lines(x: float, y: float, words: Iterable[str], cls: str = "") -> list[str]:
    """Lines of text centred on ``y``, STATE_LINE apart."""
    words = list(words)
    first = y - (len(words) - 1) * STATE_LINE / 2
    return [_svg_text(x, first + i * STATE_LINE, line, cls) for i, line in enumerate(words)]


def _arrow(x1: float, y1: float, x2: float, y2: float) -> list[str]:
    """A straight vertical arrow from (x1, y1) to (x2, y2)."""
    step = 1 if y2 > y1 else -1
    return [f'<path d="M{x1:g} {y1:g}V{y2 - 6 * step:g}"/>', *_head(x2, y2, 0, step)]


def _head(x: float, y: float, dx: int, dy: int) -> list[str]:
    """An arrowhead with its tip at (x, y), pointing along (dx, dy)."""
    if dx:
        return [f'<path class="head" d="M{x:g} {y:g}l{-7 * dx} -4.5v9z"/>']
    return [f'<path class="head" d="M{x:g} {y:g}l-4.5 {-7 * dy}h9z"/>']


def _state_tag(server: Server) -> str:
    return f"{server.id} t{server.current_term}"


def _in_order(occupied: Mapping[str, list[Server]]) -> Iterable[tuple[str, list[Server]]]:
    return ((state_id, occupied[state_id]) for state_id in STATE_IDS.values() if state_id in occupied)


# -- recent RPCs ----------------------------------------------------------------------------------------------------
# A sequence diagram drawn here rather than by Mermaid (see patterns/core/sequence.py): it changes with every
# heartbeat, and a message still on the wire is drawn as far as it has gone, like the dots of the cluster picture.
SEQUENCE_STYLE = "".join(f".raft-rpcs .{kind}{{--ink:{c}}}" for kind, c in MESSAGE_COLOURS.items())


def rpcs(engine: RaftEngine) -> Drawing:
    """The last RPCS_SHOWN RPCs and replies as a sequence diagram, oldest at the top, with a band where the term
    changes: solid arrows are requests, dashed ones replies; a message on the wire stops where it is now, with
    its id (what drop_message takes); a lost one ends in a cross."""
    recent = list(engine.rpcs)[-RPCS_SHOWN:]
    flights = {m.id: m for m in engine.net.in_flight()}
    rows, bands, term = [], [], None
    for index, rpc in enumerate(recent):
        if rpc["term"] != term:
            term = rpc["term"]
            bands.append(Band(index, f"term {term}"))
        rows.append(_rpc_row(rpc, flights.get(rpc["id"]), engine.sim.now))
    svg = sequence_svg(  # a server removed from the cluster since: still a column while its messages show
        [(node_id(name), name) for name in engine.servers],
        rows,
        bands,
        name="raft-rpcs",
        title=f"The last {len(recent)} RPCs",
        style=SEQUENCE_STYLE,
        empty="no RPC yet",
    )
    if not recent:
        caption = "No RPC has been sent yet."
    else:
        dropped = sum(1 for r in recent if r["fate"] == "dropped")
        flying = sum(1 for r in recent if r["fate"] == "in_flight")
        caption = (
            f"The last {len(recent)} RPCs and replies, sent from {recent[0]['t']:.3f} s to {recent[-1]['t']:.3f} s: "
            f"{flying} still on the wire (drawn as far as they got, with the id to drop them by), {dropped} lost "
            "(cross); dashed arrows are replies. Purple: votes, blue: AppendEntries, orange: InstallSnapshot."
        )
    return Drawing(svg=svg, caption=caption)


def _rpc_row(rpc: Mapping[str, Any], flight: Any, now: float) -> Row:
    """One message, coloured by its RPC; the band above says the term, so its label does not."""
    reply = rpc["kind"].endswith("Reply")
    summary = rpc["summary"].removeprefix(f"term {rpc['term']}, ")
    number = f" #{rpc['id']}" if rpc["fate"] == "in_flight" else ""
    progress = 1.0
    if rpc["fate"] == "in_flight" and flight is not None and flight.deliver_at > flight.sent_at:
        progress = (now - flight.sent_at) / (flight.deliver_at - flight.sent_at)
    return Row(
        node_id(rpc["src"]),
        node_id(rpc["dst"]),
        f"{rpc['kind']}{number} {summary}" + (" (lost)" if rpc["fate"] == "dropped" else ""),
        style="reply" if reply else "request",
        fate=rpc["fate"],
        progress=progress,
        css=MESSAGE_KINDS.get(rpc["kind"].removesuffix("Reply"), "append"),
    )


# -- logs -----------------------------------------------------------------------------------------------------------
# A server-side SVG table, one column per server and one row per index (the last LOG_ROWS of them), so that the
# logs stand side by side and read down like a log file; Mermaid's block layout would take about half a second of
# the browser's main thread for it, on every commit.
CELL_W, CELL_H, GAP = 100, 24, 3
INDEX_W, HEAD_H = 60, 44
LOG_STYLE = (
    "<style>"
    + "".join(f".raft-log .t{i}{{fill:{fill}}}" for i, fill in enumerate(TERM_FILLS))
    + ".raft-log rect{stroke:#343a40;stroke-width:1}"
    ".raft-log .open{stroke-width:2;stroke-dasharray:5 3}"
    ".raft-log .snap{fill:#ced4da}"
    ".raft-log .down{opacity:.7}"
    ".raft-log .who{fill:none;stroke:currentColor;stroke-opacity:.35}"
    ".raft-log text{font:13px system-ui,sans-serif;text-anchor:middle;dominant-baseline:central;fill:currentColor}"
    ".raft-log text.ink{fill:#111}"
    "</style>"
)


def logs(engine: RaftEngine) -> Drawing:
    """Each server's log in a column, aligned by index over the last LOG_ROWS indexes: colour = term, a dashed
    border = not yet committed on that server, grey = compacted into a snapshot; the last row is lastApplied."""
    servers = list(engine.servers.values())
    high = max((s.log.last_index for s in servers), default=0)
    low = max(1, high - LOG_ROWS + 1)
    window = range(low, high + 1)
    y_rows = HEAD_H + GAP + (CELL_H + GAP if low > 1 else 0)  # below the names and the row for what came before
    y_applied = y_rows + len(window) * (CELL_H + GAP)
    width = INDEX_W + len(servers) * (CELL_W + GAP)
    height = y_applied + CELL_H
    title = f"Logs of {len(servers)} servers, indexes {low} to {high}" if high else "Logs: all empty"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'class="raft-log" role="img" aria-labelledby="raft-log-title">',
        LOG_STYLE,
        f'<title id="raft-log-title">{escape(title)}</title>',
    ]
    if low > 1:
        parts.append(_svg_text(INDEX_W / 2, HEAD_H + GAP + CELL_H / 2, f"..{low - 1}"))
    parts += [_svg_text(INDEX_W / 2, y_rows + k * (CELL_H + GAP) + CELL_H / 2, str(i)) for k, i in enumerate(window)]
    parts.append(_svg_text(INDEX_W / 2, y_applied + CELL_H / 2, "applied"))
    for column, server in enumerate(servers):
        parts += _log_column(server, INDEX_W + column * (CELL_W + GAP), window, y_rows, y_applied)
    parts.append("</svg>")
    lead = leaders(engine)
    if lead:
        caption = f"State machine of {lead[0].id} (leader, applied through {lead[0].last_applied}): "
        caption += _kv_text(lead[0].kv) + "."
    else:
        caption = "No leader now. " + "; ".join(f"{s.id}: {_kv_text(s.kv)}" for s in servers if s.alive) + "."
    caption += " Colour = term; dashed border = not committed on that server; grey = in a snapshot."
    return Drawing(
        svg="".join(parts),
        nodes=tuple(f"{node_id(s.id)}_who" for s in lead[:1]),
        caption=caption,  # no details: the cluster picture has them, and this one is resent on every commit
    )


def _log_column(server: Server, x: float, window: range, y_rows: float, y_applied: float) -> list[str]:
    log = server.log
    role = ROLE_WORDS.get(server.role, server.role) if server.alive else "crashed"
    out = [
        f'<g data-id="{node_id(server.id)}_who"><rect class="who" x="{x}" y="0" width="{CELL_W}" height="{HEAD_H}" '
        f'rx="4"/>{_svg_text(x + CELL_W / 2, HEAD_H / 2 - LINE / 2, server.id)}'
        f"{_svg_text(x + CELL_W / 2, HEAD_H / 2 + LINE / 2, role)}</g>"
    ]
    before = window.start - 1
    if before:
        snapped = 0 < log.snapshot_index >= before
        out.append(_svg_cell(x, HEAD_H + GAP, CELL_H, "snap" if snapped else "who", _prefix_text(log, before)))
    index = window.start
    while index < window.stop:
        y = y_rows + (index - window.start) * (CELL_H + GAP)
        if index <= log.snapshot_index:
            count = min(log.snapshot_index, window.stop - 1) - index + 1
            label = f"snapshot {log.snapshot_index} t{log.snapshot_term}" if count > 1 else "snap"
            out.append(_svg_cell(x, y, count * (CELL_H + GAP) - GAP, "snap", label))
            index += count
            continue
        if index <= log.last_index:
            entry = log.entry_at(index)
            shade = f"t{entry['term'] % len(TERM_FILLS)}" + ("" if index <= server.commit_index else " open")
            label = f"{command_text(entry['command'], short=True)} t{entry['term']}"
            out.append(_svg_cell(x, y, CELL_H, shade, label))
        index += 1
    applied = str(server.last_applied) if server.alive else NONE
    out.append(_svg_text(x + CELL_W / 2, y_applied + CELL_H / 2, applied))
    return out if server.alive else ['<g class="down">', *out, "</g>"]  # only its persistent log is left


def _svg_cell(x: float, y: float, h: float, shade: str, line: str) -> str:
    """A CELL_W wide rectangle with a centred line; dark ink on the coloured fills, the page's colour elsewhere."""
    rect = f'<rect class="{shade}" x="{x}" y="{y}" width="{CELL_W}" height="{h}" rx="3"/>'
    return rect + _svg_text(x + CELL_W / 2, y + h / 2, line, "" if shade == "who" else "ink")


def _prefix_text(log: RaftLog, before: int) -> str:
    """What a column holds before the window: its snapshot, and how many older entries it still has."""
    older = max(0, min(log.last_index, before) - log.snapshot_index)
    parts = [f"snap {min(log.snapshot_index, before)}"] if log.snapshot_index else []
    parts += [f"+{older}" if parts else f"{older} entr{'y' if older == 1 else 'ies'}"] if older else []
    return " ".join(parts) or "none"


VERDICT_STYLES = {
    "ok": "fill:#d3f9d8,stroke:#2b8a3e,color:#111",
    "bad": "fill:#ffc9c9,stroke:#c92a2a,stroke-width:3px,color:#111",
    "undecided": "fill:#fff3bf,stroke:#e67700,stroke-dasharray:4 3,color:#111",
}


# -- invariants -----------------------------------------------------------------------------------------------------
def invariants(engine: RaftEngine) -> Drawing:
    """The six safety properties and two rules, each OK, VIOLATED with the event that broke it first, or
    UNDECIDED where the checker gave up within its budget."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for violation in engine.checker.violations:
        found.setdefault(violation["invariant"], []).append(violation)
    lines = ["block-beta", "    columns 2"]
    bad, good, undecided = [], [], []
    gave_up = {v["invariant"]: v for v in reversed(engine.checker.undecided)}  # the first give-up of each
    details = {}
    for name, title, rule in INVARIANTS:
        hits = found.get(name, [])
        if hits:
            status = f"VIOLATED{_at(hits[0])}" + (f" {MIDDOT} {len(hits)} times" if len(hits) > 1 else "")
            bad.append(name)
            verb = "violated"
        elif name in gave_up:
            status = f"UNDECIDED{_at(gave_up[name])}"
            hits = [gave_up[name]]
            undecided.append(name)
            verb = "undecided"
        else:
            status = "OK"
            good.append(name)
        lines.append(f'    {name}["{text(title)}<br/>{text(status)}"]')
        details[name] = "\n".join(
            [f"{title}: {status}", rule, *(f"{verb}{_at(hit)}: {hit['detail']}" for hit in hits[:DETAIL_ENTRIES])]
        )
    for members, name in ((good, "ok"), (bad, "bad"), (undecided, "undecided")):
        if members:
            lines += [f"    classDef {name} {VERDICT_STYLES[name]}", f"    class {','.join(members)} {name}"]
    if bad:
        first = engine.checker.violations[0]
        caption = f"{len(engine.checker.violations)} violation(s); first: {first['invariant']}{_at(first)}: "
        caption += f"{first.get('detail', '')}"
    elif undecided:
        caption = f"No violation so far; undecided: {', '.join(undecided)} (the checker gave up within its budget, "
        caption += f"{len(engine.checker.undecided)} time(s)), and checks on from there."
    else:
        caption = "All six invariants and two rules hold so far; every event of the run is checked as it happens."
    # Marked by their red class only: the page's highlight colours would hide the text on it in the dark theme.
    return Drawing(mermaid="\n".join(lines), caption=caption, details=details)


def _at(violation: Mapping[str, Any]) -> str:
    cause = violation.get("cause")
    return f" at event #{cause}" if cause is not None else ""


# -- metrics --------------------------------------------------------------------------------------------------------
RPC_KINDS = ("PreVote", "RequestVote", "AppendEntries", "InstallSnapshot")
READ_MODES = {"read_index": "reads: read index, confirmed by a heartbeat round", "log": "reads: through the log"}


def metrics(engine: RaftEngine) -> dict[str, Any]:
    """The numbers beside the diagrams: who leads, how far the log is committed, traffic, clients, safety."""
    lead = leaders(engine)
    stats = engine.stats
    out: dict[str, Any] = {}
    out["Leader"] = ", ".join(f"{s.id} (term {s.current_term})" for s in lead) or "none"
    out["Term"] = max((s.current_term for s in engine.servers.values()), default=0)
    out["Commit index"] = lead[0].commit_index if lead else max(s.commit_index for s in engine.servers.values())
    voters, learners = configuration(engine)
    out["Voters"] = ", ".join(voters) or NONE
    if learners:
        out["Learners"] = ", ".join(learners)
    out["Up"] = f"{sum(s.alive for s in engine.servers.values())} of {len(engine.servers)}"
    out["Elections"] = stats["elections"]
    by_kind = stats["rpcs"]
    out["RPCs"] = sum(by_kind.values())
    for kind in RPC_KINDS:
        if kind in by_kind:
            out[f"{kind} / replies"] = f"{by_kind[kind]} / {by_kind.get(kind + 'Reply', 0)}"
    completed = sum(c.completed for c in engine.clients.values())
    pending = sum(1 for c in engine.clients.values() if c.pending)
    out["Client ops"] = f"{completed} completed, {pending} pending"
    out["Read mode"] = READ_MODES.get(engine.read_mode, engine.read_mode)
    out["Invariant violations"] = len(engine.checker.violations)
    return out


DIAGRAMS = (
    Diagram("cluster", "Cluster", cluster, wide=True),
    Diagram("states", "Server states", states),
    Diagram("rpcs", "Recent RPCs", rpcs, wide=True),
    Diagram("logs", "Logs", logs, wide=True),
    Diagram("invariants", "Invariants", invariants),
)
