"""What a viewer sees of the broker: the topology, the recent message trail, the ledger, charts and metrics.

Mermaid ids are derived from names by an injective escape (`mermaid_id`), so that a queue called "sub.S1" or an
exchange called "" gives a valid, stable id, and the same engine state always gives the same text. Every label
goes through `label_text`, which turns the characters Mermaid would read as syntax (``#`` of a topic binding
included) into entity codes. The trail, which changes on every frame, and the ledger are SVG drawn here (their
text HTML-escaped), with the same ids for the participants of the trail as for the nodes of the topology.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from patterns.core.charts import PALETTE, line_chart
from patterns.core.motion import masked, newest, token
from patterns.core.registry import Diagram, Drawing
from patterns.core.sequence import Row, sequence_svg

from .broker import DLX
from .consumers import Consumer
from .engine import MessagingEngine
from .exchanges import Exchange
from .producers import Client, Producer
from .protocol import BROKER
from .queues import Queue
from .series import percentile

TRAIL_STEPS = 20
CHART_SECONDS = 60
RATE_SECONDS = 10
NONE = "-"
UNLIMITED = "\N{INFINITY}"
TIMES = "\N{MULTIPLICATION SIGN}"
DOWN_STATES = ("crashed", "disconnected", "removed")
DEFAULT_EXCHANGE = "(default)"  # how the trail names the default exchange ""
NOWHERE = "nowhere"  # the trail's destination of a message routed to no queue

# -- names and text -------------------------------------------------------------------------------------------------
PREFIXES = {"producer": "p", "client": "c", "exchange": "x", "queue": "q", "consumer": "n", "node": "o"}
ENTITIES = {"#": "#35;", '"': "#quot;", ";": "#59;", "<": "#lt;", ">": "#gt;", "%": "#37;", "\n": " "}


def mermaid_id(kind: str, name: str) -> str:
    """A Mermaid-safe id: the kind's letter, then the name with every character but ASCII letters and digits
    written as ``_<hex>_``; distinct (kind, name) pairs give distinct ids."""
    body = "".join(ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):x}_" for ch in name)
    return PREFIXES[kind] + body


def label_text(text: Any) -> str:
    """Text for a Mermaid label or message: characters Mermaid reads as syntax become entity codes."""
    return "".join(ENTITIES.get(ch, ch) for ch in str(text))


def exchange_name(name: str) -> str:
    return name or DEFAULT_EXCHANGE


def _prefetch(value: int) -> str:
    return str(value) if value else UNLIMITED


def _seconds(value: float) -> str:
    return f"{value:g} s"


# -- topology -------------------------------------------------------------------------------------------------------
CLASSES = (
    "    classDef down stroke:#e5484d,stroke-width:3px,stroke-dasharray:6 4",
    "    classDef cut stroke:#f76b15,stroke-width:3px,stroke-dasharray:2 3",
    "    classDef away stroke-dasharray:4 4,opacity:0.6",
    "    classDef dlq stroke:#8e4ec6,stroke-width:2px",
)


class Topology:
    """Collects the lines, highlights, click-through details, live labels and edge ids of the topology flowchart.

    The Mermaid source carries every label but a node's name `masked`; the real labels go in ``values``, written
    into the rendered picture on every frame: the source (and Mermaid's work) changes only with the structure."""

    def __init__(self) -> None:
        self.lines = ["flowchart LR"]
        self.styles: list[str] = []
        self.details: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.lit_nodes: list[str] = []
        self.lit_edges: list[str] = []
        self.edge_ids: dict[tuple[str, str], str] = {}  # (source, target) -> the first edge between them
        self.edges = 0

    def node(self, node_id: str, shape: str, label: Iterable[str], details: Iterable[str], css: str = "") -> None:
        opening, closing = shape.split("|")
        name, *live = label
        shown = [label_text(name), *(label_text(masked(part)) for part in live)]
        self.lines.append(f'    {node_id}{opening}"{"<br/>".join(shown)}"{closing}')
        self.values[node_id] = "\n".join([name, *live])
        self.details[node_id] = "\n".join(details)
        if css:
            self.styles.append(f"    class {node_id} {css}")

    def edge(self, source: str, target: str, *label: str, dashed: bool = False, lit: bool = False) -> None:
        """An arrow with an id (``e1``, ``e2``, ... in drawing order) and a label of one line per part."""
        self.edges += 1
        edge_id = f"e{self.edges}"
        self.edge_ids.setdefault((source, target), edge_id)
        arrow = "-.->" if dashed else "-->"
        parts = [part for part in label if part]
        text = f'|"{"<br/>".join(label_text(masked(part)) for part in parts)}"|' if parts else ""
        if parts:
            self.values[edge_id] = "\n".join(parts)
        self.lines.append(f"    {source} {edge_id}@{arrow}{text} {target}")
        if lit:
            self.lit_edges.append(edge_id)

    def drawing(self, caption: str, tokens: tuple[Mapping[str, Any], ...] = ()) -> Drawing:
        classes = CLASSES if self.styles else ()
        return Drawing(
            mermaid="\n".join([*self.lines, *classes, *self.styles]),
            nodes=tuple(self.lit_nodes),
            edges=tuple(self.lit_edges),
            caption=caption,
            details=self.details,
            values=self.values,
            tokens=tokens,
        )


SHAPES = {"producer": "([|])", "exchange": "{{|}}", "queue": "[(|)]", "consumer": "[|]"}


def topology(engine: MessagingEngine) -> Drawing:
    """Producers (or clients) -> exchanges -> queues -> consumers, with bindings, depths, unacked counts and
    dead-letter routes; crashed, cut and absent consumers are marked, busy ones lit."""
    graph = Topology()
    sqs = engine.mode == "sqs"
    for producer in engine.producers:
        _draw_producer(graph, producer)
    for client in engine.clients:
        _draw_client(graph, client)
    default_used = any(p.exchange == "" for p in engine.producers) or bool(engine.clients)
    if default_used:
        graph.node(
            mermaid_id("exchange", ""),
            SHAPES["exchange"],
            ["(default)", "direct, by queue name"],
            ["Exchange: the default exchange", "Type: direct; every queue is bound by its own name."],
        )
    for exchange in engine.exchanges.values():
        _draw_exchange(graph, exchange)
    for queue in engine.queues.values():
        _draw_queue(graph, queue, sqs)
    for consumer in engine.consumers:
        _draw_consumer(graph, consumer, engine.queues.get(consumer.queue), sqs)
    _draw_links(graph, engine, default_used)
    return graph.drawing(_topology_caption(engine), newest(_tokens(graph, engine)))


GLIDE = 0.25  # virtual seconds a message step is shown travelling along its edge
GLIDING = {"published": "publish", "routed": "publish", "delivered": "deliver", "acked": "ack", "nacked": "nack"}


def _tokens(graph: Topology, engine: MessagingEngine) -> Iterable[dict[str, Any]]:
    """The latest message steps (publish, route, deliver, ack) as tokens along the topology's edges.

    The wire takes milliseconds, too short to see and shorter than the time between two frames, so each step
    glides GLIDE virtual seconds from its time on (stated in the caption); the steps of one message at one
    instant (published, routed, delivered) follow each other, so that a message is seen going from its producer
    through the exchange and its queue to its consumer."""
    cast = Cast(engine)
    now = engine.sim.now
    chain: dict[tuple[float, int | None], list[str]] = {}  # a message's kinds of step at one instant, in order
    for step in engine.trail:
        kind = GLIDING.get(step["step"])
        if kind is None or step["t"] <= now - GLIDE * len(GLIDING):
            continue
        kinds = chain.setdefault((step["t"], step["id"]), [])
        if step["step"] not in kinds:
            kinds.append(step["step"])
        order = kinds.index(step["step"])
        source = cast.find(step["src"])[1]
        for target in (step["dst"] or "").split(","):
            target_id = cast.find(target)[1]
            edge, reverse = graph.edge_ids.get((source, target_id)), False
            if edge is None:
                edge, reverse = graph.edge_ids.get((target_id, source)), True
            sent = step["t"] + order * GLIDE
            if edge is not None and sent + GLIDE > now:
                yield token(
                    f"{kind}-{step['id']}-{target}-{sent:.4f}", kind, sent, sent + GLIDE, edge=edge, reverse=reverse
                )


def _draw_producer(graph: Topology, producer: Producer) -> None:
    confirms = f"confirms: {producer.confirmed} acked, {producer.nacked} nacked, {producer.unconfirmed} waiting"
    graph.node(
        mermaid_id("producer", producer.name),
        SHAPES["producer"],
        [producer.name, f"{producer.rate:g}/s"],
        [
            f"Producer {producer.name}",
            f"Publishes to: {exchange_name(producer.exchange)}",
            f"Rate: {producer.rate:g}/s",
            f"Published: {producer.published}",
            confirms if producer.confirms else "Publisher confirms: off",
        ],
    )


def _draw_client(graph: Topology, client: Client) -> None:
    graph.node(
        mermaid_id("client", client.name),
        SHAPES["producer"],
        [client.name, f"{client.outstanding} waiting"],
        [
            f"Client {client.name} (request-reply)",
            f"Reply queue: {client.reply_queue}",
            f"Requests sent: {client.sent} (retries {client.retries})",
            f"Waiting for a reply: {client.outstanding}",
            f"Replies matched: {client.replies}",
            f"Timeouts: {client.timeouts}; given up: {client.failed}",
            f"Late replies discarded: {client.late_replies}",
        ],
    )


def _draw_exchange(graph: Topology, exchange: Exchange) -> None:
    bindings = [f"  {b.queue} <- {b.key or '(any)'}" for b in exchange.bindings] or ["  (none)"]
    graph.node(
        mermaid_id("exchange", exchange.name),
        SHAPES["exchange"],
        [exchange_name(exchange.name), exchange.kind],
        [f"Exchange {exchange_name(exchange.name)}", f"Type: {exchange.kind}", "Bindings (queue <- key):", *bindings],
    )


def _queue_limits(queue: Queue) -> list[str]:
    limits = []
    if queue.max_length:
        limits.append(f"max {queue.max_length} ({queue.overflow})")
    if queue.ttl:
        limits.append(f"TTL {_seconds(queue.ttl)}")
    if queue.delivery_limit:
        limits.append(f"delivery limit {queue.delivery_limit}")
    return limits


def _draw_queue(graph: Topology, queue: Queue, sqs: bool) -> None:
    held = "in flight" if sqs else "unacked"
    label = [queue.name, f"ready {queue.ready} · {held} {queue.unacked}", *_queue_limits(queue)]
    css = "dlq" if queue.role == "dead_letter" else ""
    if queue.deleted:
        label = [queue.name, "deleted"]
        css = "away"
    flags = [word for word, on in (("durable", queue.durable), ("exclusive", queue.exclusive)) if on]
    if queue.auto_delete:
        flags.append("auto-delete")
    head = ", ".join(f"#{i}" for i in queue.head(10)) or NONE
    graph.node(
        mermaid_id("queue", queue.name),
        SHAPES["queue"],
        label,
        [
            f"Queue {queue.name} ({queue.role.replace('_', ' ')}{', deleted' if queue.deleted else ''})",
            f"Flags: {', '.join(flags) or 'transient'}",
            f"Ready: {queue.ready}; {held}: {queue.unacked}",
            f"Next ready: {head}",
            f"Limits: {', '.join(_queue_limits(queue)) or 'none'}",
            f"Dead-letter queue: {queue.dead_letter_queue or 'none'}",
        ],
        css,
    )


def _consumer_state(consumer: Consumer) -> str:
    if consumer.crashed:
        return "crashed"
    if consumer.cut:
        return "link cut"
    return consumer.state


def _draw_consumer(graph: Topology, consumer: Consumer, queue: Queue | None, sqs: bool) -> None:
    """A consumer; ``queue`` is None while a transient subscriber has not declared its queue yet."""
    node_id = mermaid_id("consumer", consumer.name)
    state = _consumer_state(consumer)
    slow = f", slow {TIMES}{consumer.slow_factor:g}" if consumer.slow_factor != 1 else ""
    css = "down" if consumer.crashed else "cut" if consumer.cut else "away" if state in DOWN_STATES else ""
    unacked = ", ".join(f"#{i}" for i in unacked_ids(queue, consumer.name)) if queue is not None else ""
    graph.node(
        node_id,
        SHAPES["consumer"],
        [consumer.name, f"{state}{slow}", f"done {consumer.processed}"],
        [
            f"Consumer {consumer.name} on {consumer.queue}: {state}{slow}",
            f"Acknowledgement: {consumer.ack_mode}" + ("" if sqs else f"; prefetch {_prefetch(consumer.prefetch)}"),
            f"Unacked at the broker: {consumer.unacked} ({unacked or NONE})",
            f"Received and not finished: {consumer.holding}",
            f"Processing: {NONE if consumer.current is None else f'#{consumer.current}'}",
            f"Processed: {consumer.processed}; failed: {consumer.failed}",
            f"Duplicates skipped (dedupe): {consumer.deduplicated}",
            f"Busy: {consumer.busy:.1f} s",
        ],
        css,
    )
    if consumer.current is not None and not consumer.crashed:
        graph.lit_nodes.append(node_id)


def unacked_ids(queue: Queue, consumer: str) -> list[int]:
    """Ids of the copies the broker counts as delivered to this consumer and not settled."""
    return sorted(entry.id for entry in queue.pending.values() if entry.consumer == consumer)


def _draw_links(graph: Topology, engine: MessagingEngine, default_used: bool) -> None:
    queues = engine.queues
    for producer in engine.producers:
        graph.edge(mermaid_id("producer", producer.name), mermaid_id("exchange", producer.exchange), *producer.keys)
    for client in engine.clients:
        graph.edge(mermaid_id("client", client.name), mermaid_id("exchange", ""), "request")
    if default_used:
        for queue in queues.values():
            if queue.role in ("rpc", "reply"):
                graph.edge(mermaid_id("exchange", ""), mermaid_id("queue", queue.name), queue.name)
    for exchange in engine.exchanges.values():
        for binding in exchange.bindings:
            key = "" if exchange.kind == "fanout" else binding.key
            graph.edge(mermaid_id("exchange", exchange.name), mermaid_id("queue", binding.queue), key)
    for queue in queues.values():
        if queue.dead_letter_queue and not queue.deleted:
            dead_letter = mermaid_id("exchange", DLX)
            graph.edge(mermaid_id("queue", queue.name), dead_letter, _dead_letter_label(engine, queue), dashed=True)
    sqs = engine.mode == "sqs"
    for consumer in engine.consumers:
        if consumer.state == "removed" or consumer.queue not in queues:
            continue
        unacked = consumer.unacked
        label = f"{unacked} in flight" if sqs else f"{unacked}/{_prefetch(consumer.prefetch)} unacked"
        source = mermaid_id("queue", consumer.queue)
        target = mermaid_id("consumer", consumer.name)
        down = consumer.crashed or consumer.cut or _consumer_state(consumer) in DOWN_STATES
        graph.edge(source, target, label, dashed=down, lit=unacked > 0)
        if engine.view == "request_reply":
            graph.edge(target, mermaid_id("exchange", ""), "reply", dashed=down)
    for client in engine.clients:
        graph.edge(mermaid_id("queue", client.reply_queue), mermaid_id("client", client.name), "reply")


def _dead_letter_label(engine: MessagingEngine, queue: Queue) -> str:
    """Why copies of this queue can be dead-lettered, as configured."""
    reasons = ["rejected"] if engine.params["on_failure"] == "reject" else []
    if queue.ttl:
        reasons.append("expired")
    if queue.max_length and queue.overflow != "reject-publish":
        reasons.append("overflow")
    if queue.delivery_limit:
        reasons.append(f"over {queue.delivery_limit} returns")
    receives = engine.params["max_receive_count"]
    if engine.mode == "sqs" and receives:
        reasons.append(f"{receives} receives")
    return ": ".join(["dead-letter", ", ".join(reasons)] if reasons else ["dead-letter"])


def _topology_caption(engine: MessagingEngine) -> str:
    parts = []
    for queue in engine.queues.values():
        if queue.deleted:
            parts.append(f"{queue.name} deleted")
        elif queue.depth or queue.role != "dead_letter":
            parts.append(f"{queue.name}: {queue.ready} ready, {queue.unacked} unacked")
    down = [f"{c.name} {_consumer_state(c)}" for c in engine.consumers if _consumer_state(c) != "up"]
    return "; ".join(parts + down) + "."


# -- message trail --------------------------------------------------------------------------------------------------
# Drawn here as SVG (patterns/core/sequence.py): the trail changes on every frame, and Mermaid's layout of a
# sequence diagram would take about 40 ms of the browser's main thread each time.
SHAPES_OF_STEPS = {  # step -> (style, fate): dashed answers, a cross where a copy is refused or ends
    "acked": ("reply", "delivered"),
    "nacked": ("reply", "dropped"),
    "requeued": ("reply", "delivered"),
    "dead_lettered": ("request", "dropped"),
    "expired": ("request", "dropped"),
    "dropped": ("request", "dropped"),
    "reply_late": ("reply", "dropped"),
    "confirmed": ("reply", "delivered"),
}
VERBS = {
    "published": "publish",
    "routed": "route",
    "delivered": "deliver",
    "acked": "ack",
    "nacked": "nack",
    "requeued": "requeue",
    "dead_lettered": "dead-letter",
    "expired": "expire",
    "dropped": "drop",
    "replied": "reply",
    "reply_late": "late reply, discarded",
    "confirmed": "confirm",
}
# Colours from the site's theme (light and dark), with fallbacks for a picture shown on its own.
TRAIL_STYLE = (
    ".msg-trail :is(.step-acked,.step-confirmed,.step-replied){--ink:var(--ok,#067647)}"
    ".msg-trail :is(.step-requeued,.step-redelivered){--ink:var(--active,#c2410c)}"
    ".msg-trail :is(.step-nacked,.step-dead_lettered,.step-expired,.step-dropped,.step-reply_late)"
    "{--ink:var(--danger,#b42318)}"
)


class Cast:
    """Who a name on the trail is: its id (as in the topology), its shown name and its place from left to right."""

    def __init__(self, engine: MessagingEngine):
        self.places: dict[str, tuple[tuple[int, int], str, str]] = {}
        dead_letter_queues = {q.name for q in engine.queues.values() if q.role == "dead_letter"}
        senders = [("producer", p.name) for p in engine.producers]
        senders += [("client", c.name) for c in engine.clients]
        for index, (kind, name) in enumerate(senders):
            self._add(name, (0, index), mermaid_id(kind, name), name)
        self._add(BROKER, (1, -1), mermaid_id("node", BROKER), BROKER)
        self._add(DEFAULT_EXCHANGE, (1, 0), mermaid_id("exchange", ""), exchange_name(""))
        for index, name in enumerate(engine.exchanges, start=1):
            rank = 4 if name == DLX else 1
            self._add(name, (rank, index), mermaid_id("exchange", name), exchange_name(name))
        for index, queue in enumerate(engine.queues.values()):
            rank = 5 if queue.name in dead_letter_queues else 2
            self._add(queue.name, (rank, index), mermaid_id("queue", queue.name), queue.name)
        for index, consumer in enumerate(engine.consumers):
            self._add(consumer.name, (3, index), mermaid_id("consumer", consumer.name), consumer.name)

    def _add(self, name: str, place: tuple[int, int], node_id: str, shown: str) -> None:
        self.places.setdefault(name, (place, node_id, shown))

    def find(self, name: str) -> tuple[tuple[int, int], str, str]:
        return self.places.get(name) or ((6, 0), mermaid_id("node", name), name)


def _shown_step(step: Mapping[str, Any]) -> bool:
    """Publisher confirms only when the broker refused a message: acks of every publish would crowd the rest out."""
    return step["step"] != "confirmed" or step["label"] != "ack"


def _ends(step: Mapping[str, Any]) -> tuple[str, list[str], str]:
    """Who a step goes from and to, and a note: a route goes to each queue of its comma-separated list; a step
    with one end (an expiry, a drop) or routed nowhere is drawn on the one actor it concerns."""
    source, target = step["src"], step["dst"]
    if source is None:
        source = target
    if target is None:
        return source, [source], ""
    if step["step"] == "routed":
        return (source, [source], "to no queue") if target == NOWHERE else (source, target.split(","), "")
    return source, [target], ""


def trail(engine: MessagingEngine) -> Drawing:
    """The last steps of messages through the broker, oldest first, as a sequence diagram: one arrow per queue a
    message is routed to; a step with one end (an expiry, a drop) is a loop on the one participant it concerns."""
    steps = [step for step in engine.trail if _shown_step(step)][-TRAIL_STEPS:]
    cast = Cast(engine)
    rows = []
    actors = {}
    for step in steps:
        source, targets, note = _ends(step)
        words = [f"{step['t']:.2f}", VERBS.get(step["step"], step["step"])]
        if step["id"] is not None:
            words.append(f"#{step['id']}")
        words += [part for part in (step["label"], note) if part]
        style, fate = SHAPES_OF_STEPS.get(step["step"], ("request", "delivered"))
        css = f"step-{step['step']}" + (" step-redelivered" if step["label"] == "redelivered" else "")
        for name in (source, *targets):
            actors[name] = cast.find(name)
        for target in targets:
            rows.append(Row(actors[source][1], actors[target][1], " ".join(words), style=style, fate=fate, css=css))
    if not rows:
        actors = {BROKER: cast.find(BROKER)}
    columns = {node_id: (place, shown) for place, node_id, shown in actors.values()}  # "" and "(default)": one
    order = sorted((place, node_id, shown) for node_id, (place, shown) in columns.items())
    svg = sequence_svg(
        [(node_id, shown) for _, node_id, shown in order],
        rows,
        name="msg-trail",
        title=f"The last {len(steps)} message steps" if steps else "No message has moved yet",
        style=TRAIL_STYLE,
        empty="no message has moved yet",
    )
    caption = "Messages appear here as they move."
    if steps:
        caption = f"The last {len(steps)} message steps, from {steps[0]['t']:.2f} s to {steps[-1]['t']:.2f} s."
    return Drawing(svg=svg, caption=caption)


# -- ledger ---------------------------------------------------------------------------------------------------------
PLACES = (
    ("queued", "queued"),
    ("in_flight", "in flight"),
    ("acked", "acked"),
    ("dead_lettered", "dead-lettered"),
    ("expired", "expired"),
    ("dropped", "dropped"),
)
LEDGER_WIDTH, LEDGER_HEIGHT = 360, 132
BAR_LEFT, BAR_TOP, BAR_HEIGHT = 4, 26, 16
LEGEND_COLUMNS = 3
LEDGER_STYLE = (
    "<style>.ledger text{fill:currentColor;font:12px system-ui,sans-serif}.ledger .verdict{font-weight:700}"
    ".ledger .frame{fill:none;stroke:currentColor;stroke-opacity:.4}</style>"
)


def ledger(engine: MessagingEngine) -> Drawing:
    """Where every copy of every published message is now: whether that balances, a stacked bar, the sum."""
    book = engine.ledger()
    copies = book["entries"]
    placed = sum(book[key] for key, _ in PLACES)
    verdict = "Balanced" if book["balanced"] else f"NOT balanced: {copies - placed:+d} copies unaccounted for"
    equation = f"{copies} copies = " + " + ".join(str(book[key]) for key, _ in PLACES)
    duplicates = (
        f"{book['published']} published; duplicates {book['duplicates_delivered']} delivered, "
        f"{book['duplicates_processed']} processed"
    )
    span = LEDGER_WIDTH - 2 * BAR_LEFT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ledger" role="img" viewBox="0 0 {LEDGER_WIDTH} '
        f'{LEDGER_HEIGHT}" width="{LEDGER_WIDTH}" height="{LEDGER_HEIGHT}">',
        f"<title>Ledger: {escape(verdict)}</title>",
        f"<desc>{escape(equation)} ({', '.join(name for _, name in PLACES)}). {escape(duplicates)}.</desc>",
        LEDGER_STYLE,
        f'<text class="verdict" x="{BAR_LEFT}" y="16">{escape(verdict)}</text>',
        f'<rect class="frame" x="{BAR_LEFT}" y="{BAR_TOP}" width="{span}" height="{BAR_HEIGHT}"/>',
    ]
    x = float(BAR_LEFT)
    for index, (key, _) in enumerate(PLACES):
        width = span * book[key] / placed if placed else 0.0
        if width > 0:
            parts.append(
                f'<rect x="{x:.1f}" y="{BAR_TOP}" width="{width:.1f}" height="{BAR_HEIGHT}" fill="{PALETTE[index]}"/>'
            )
        x += width
    column = span // LEGEND_COLUMNS
    for index, (key, name) in enumerate(PLACES):
        row, col = divmod(index, LEGEND_COLUMNS)
        lx, ly = BAR_LEFT + col * column, BAR_TOP + BAR_HEIGHT + 18 + row * 18
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{PALETTE[index]}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly}">{escape(name)} {book[key]}</text>')
    parts.append(f'<text x="{BAR_LEFT}" y="{LEDGER_HEIGHT - 26}">{escape(equation)}</text>')
    parts.append(f'<text x="{BAR_LEFT}" y="{LEDGER_HEIGHT - 8}">{escape(duplicates)}</text>')
    parts.append("</svg>")
    caption = "Every copy (one per queue a message was routed to) is in exactly one place; a dead-lettered copy is "
    caption += "counted in its dead-letter queue, not as queued."
    dropped = ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in book["dropped_by"].items())
    if dropped:
        caption += f" Dropped by policy: {dropped}."
    return Drawing(svg="".join(parts), caption=caption)


# -- charts ---------------------------------------------------------------------------------------------------------
def _window(engine: MessagingEngine) -> tuple[dict[str, list[float]], int]:
    """The series over the last whole seconds (at most a minute), and the first second shown."""
    last = math.floor(engine.sim.now) - 1
    span = max(0, min(CHART_SECONDS, last + 1))
    return engine.series.window(last, span), last - span + 1


def depth_chart(engine: MessagingEngine) -> Drawing:
    data, first = _window(engine)
    series = {"ready": data["ready"], "in flight": data["in_flight"]}
    svg = line_chart(series, x0=first, dx=1, title="Messages ready and in flight", unit="msgs")
    return Drawing(svg=svg, caption="Ready copies in all queues and copies delivered but not settled, each second.")


def throughput_chart(engine: MessagingEngine) -> Drawing:
    data, first = _window(engine)
    names = ("published", "delivered", "acked", "redelivered", "dead_lettered", "dropped")
    series = {name.replace("_", "-"): data[name] for name in names}
    svg = line_chart(series, x0=first, dx=1, title="Messages per second", unit="/s")
    return Drawing(svg=svg, caption="What happened to messages in each whole virtual second of the last minute.")


def latency_chart(engine: MessagingEngine) -> Drawing:
    data, first = _window(engine)
    series = {f"p{p}": [v * 1000 for v in data[f"latency_p{p}"]] for p in (50, 95, 99)}
    svg = line_chart(series, x0=first, dx=1, title="End-to-end latency", unit="ms")
    return Drawing(svg=svg, caption="From publish to processed, percentiles of the messages finished each second.")


def utilization_chart(engine: MessagingEngine) -> Drawing:
    data, first = _window(engine)
    series = {"busy": [v * 100 for v in data["utilization"]]}
    svg = line_chart(series, x0=first, dx=1, title="Consumer utilization", unit="%")
    return Drawing(svg=svg, caption="Share of the live consumers' time spent processing, each second.")


DIAGRAMS = (
    Diagram("ledger", "Ledger", ledger),
    Diagram("topology", "Topology", topology, wide=True),
    Diagram("trail", "Recent messages", trail, wide=True),
    Diagram("depth", "Queue depth and in flight", depth_chart),
    Diagram("throughput", "Throughput", throughput_chart),
    Diagram("latency", "End-to-end latency", latency_chart),
    Diagram("utilization", "Consumer utilization", utilization_chart),
)


# -- metrics --------------------------------------------------------------------------------------------------------
def metrics(engine: MessagingEngine) -> dict[str, Any]:
    """The ledger first, then latency, throughput, queues, consumers and, for request-reply, the clients."""
    book = engine.ledger()
    out: dict[str, Any] = {
        "View": f"{engine.view.replace('_', ' ')} ({engine.mode})",
        "Ledger": "balanced" if book["balanced"] else "NOT balanced",
        "Published": book["published"],
        "Copies": book["entries"],
    }
    for key, name in PLACES:
        out[name[0].upper() + name[1:]] = book[key]
    for reason, count in book["dropped_by"].items():
        out[f"Dropped: {reason.replace('_', ' ')}"] = count
    out["Duplicates delivered"] = book["duplicates_delivered"]
    out["Duplicates processed"] = book["duplicates_processed"]
    out["Redelivered"] = engine.series.totals["redelivered"]
    latencies = [seconds for _, seconds in engine.series.latencies]
    out["Latency p50 / p95 / p99"] = " / ".join(_ms(percentile(latencies, p)) for p in (50, 95, 99))
    now = engine.sim.now
    recent = engine.series.window(math.floor(now) - 1, RATE_SECONDS) if now >= RATE_SECONDS else None
    out[f"Acked /s ({RATE_SECONDS} s)"] = round(sum(recent["acked"]) / RATE_SECONDS, 2) if recent else NONE
    for queue in engine.queues.values():
        if not queue.deleted and queue.role != "dead_letter":  # dead-letter queues: the ledger counts them
            out[f"Queue {queue.name}"] = f"{queue.ready} ready, {queue.unacked} unacked"
    up = sum(1 for c in engine.consumers if _consumer_state(c) == "up")
    out["Consumers up"] = f"{up}/{sum(1 for c in engine.consumers if c.state != 'removed')}"
    clients = engine.clients
    if clients:
        out["Requests sent"] = sum(c.sent for c in clients)
        out["Replies matched"] = sum(c.replies for c in clients)
        out["Timeouts"] = sum(c.timeouts for c in clients)
        out["Late replies"] = sum(c.late_replies for c in clients)
    confirming = [p for p in engine.producers if p.confirms]
    if confirming:
        out["Unconfirmed publishes"] = sum(p.unconfirmed for p in confirming)
    return out


def _ms(seconds: float) -> str:
    return NONE if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"
