"""Diagrams and metrics: Mermaid whose every edge, highlight and detail names a declared node, labels that cannot
break the syntax, the same text for the same state, and numbers that agree with the engine's own."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patterns.core.motion import masked
from patterns.core.player import Player
from patterns.core.scenario import decode
from patterns.messaging.diagrams import DIAGRAMS, TRAIL_STEPS, label_text, mermaid_id, metrics
from patterns.messaging.pattern import PATTERN
from patterns.messaging.presets import PRESETS
from patterns.messaging.series import percentile

from ..support import outputs_under_hash_seeds
from .test_presets import LIMITS, link_pairs, played

TIMES = (0.0, 5.5, 9.0, 12.0, 30.0)
ID = r"[A-Za-z][A-Za-z0-9_]*"
NODE = re.compile(rf"^    ({ID})(\(\[|\{{\{{|\[\(|\[)\"([^\"]*)\"(\]\)|\}}\}}|\)\]|\])$")
EDGE = re.compile(rf"^    ({ID}) (e\d+)@(-->|-\.->)(?:\|\"([^\"]*)\"\|)? ({ID})$")
ENTITY = r"#(35|quot|59|lt|gt|37);"
ENTITIES = {"35": "#", "quot": '"', "59": ";", "lt": "<", "gt": ">", "37": "%"}
SVG = "{http://www.w3.org/2000/svg}"


@functools.cache
def engine_at(slug: str, t: float) -> Any:
    """The engine of a preset's run at time ``t`` (shared: tests only read it)."""
    player = Player(PATTERN, decode(PATTERN, link_pairs(PATTERN.preset(slug))), LIMITS)
    player.advance_to(t)
    return player.engine


def draw(engine: Any, name: str):
    return next(d for d in DIAGRAMS if d.name == name).draw(engine)


def parse_flowchart(source: str) -> tuple[dict[str, str], dict[str, tuple[str, str, str, str]], dict[str, str]]:
    """Nodes (id -> label), edges (id -> source, arrow, label, target) and classes (node id -> class) of a
    topology; every line must be one of those or a class definition."""
    lines = source.splitlines()
    assert lines[0] == "flowchart LR"
    nodes, edges, classes = {}, {}, {}
    for line in lines[1:]:
        if node := NODE.match(line):
            assert node[1] not in nodes, line
            nodes[node[1]] = node[3]
        elif edge := EDGE.match(line):
            edges[edge[2]] = (edge[1], edge[3], edge[4] or "", edge[5])
        elif line.startswith("    class "):
            _, node_id, css = line.split()
            classes[node_id] = css
        else:
            assert line.startswith("    classDef "), line
    return nodes, edges, classes


class Arrow(NamedTuple):
    src: str
    dst: str
    style: str  # request (solid) or reply (dashed)
    fate: str  # delivered (arrowhead), dropped (cross) or in_flight
    label: str


def parse_trail(svg: str) -> tuple[list[str], list[Arrow], ET.Element]:
    """The participants (ids, left to right) and the arrows of a trail picture, each arrow's ends found from where
    it is drawn: a line from one lifeline to another, or a loop that starts on one."""
    root = ET.fromstring(svg)
    participants, at = [], {}
    for actor in (g for g in root.iter(f"{SVG}g") if g.get("class") == "actor"):
        rect = actor.find(f"{SVG}rect")
        participants.append(actor.get("data-id"))
        at[round(float(rect.get("x")) + float(rect.get("width")) / 2, 1)] = actor.get("data-id")
    arrows = []
    for row in (g for g in root.iter(f"{SVG}g") if g.get("class", "").startswith("row ")):
        _, fate, style, *_ = row.get("class").split()
        line = row.find(f"{SVG}line")
        if line is None:
            loop = row.find(f"{SVG}path[@class='loop']")
            src = dst = at[float(re.match(r"M([\d.]+) ", loop.get("d"))[1])]
        else:
            src, dst = at[float(line.get("x1"))], at[float(line.get("x2"))]
        arrows.append(Arrow(src, dst, style, fate, row.find(f"{SVG}text").text))
    return participants, arrows, root


SNAPSHOTS = [(p.slug, t) for p in PRESETS for t in TIMES]


# -- names and labels -----------------------------------------------------------------------------------------------
@given(st.lists(st.text(max_size=12), min_size=2, max_size=6, unique=True))
def test_mermaid_ids_are_safe_and_distinct_names_give_distinct_ids(names):
    ids = [mermaid_id("queue", name) for name in names]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(ID, node_id) for node_id in ids)


@given(st.text(max_size=40))
def test_labels_carry_no_character_mermaid_reads_as_syntax(text):
    out = label_text(text)
    assert not set('#"<>;%\n').intersection(re.sub(ENTITY, "", out))
    assert re.sub(ENTITY, lambda m: ENTITIES[m[1]], out) == text.replace("\n", " ")


def test_a_topic_binding_is_written_with_entity_codes():
    _, edges, _ = parse_flowchart(draw(engine_at("topic-routing", 3.0), "topology").mermaid)
    labels = {label for _, _, label, _ in edges.values()}
    assert {"#35;", "order.*", "*.created"} <= labels


# -- topology -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("slug", "t"), SNAPSHOTS, ids=[f"{s}@{t}" for s, t in SNAPSHOTS])
def test_topology_is_well_formed_and_every_reference_is_declared(slug, t):
    engine = engine_at(slug, t)
    drawing = draw(engine, "topology")
    nodes, edges, classes = parse_flowchart(drawing.mermaid)
    for source, _, _, target in edges.values():
        assert source in nodes and target in nodes
    assert set(drawing.nodes) <= set(nodes) and set(drawing.edges) <= set(edges)
    assert set(drawing.details) == set(nodes) and all(drawing.details.values())
    assert set(classes) <= set(nodes)
    # The source carries the labels with their numbers masked (it changes only with the structure); the
    # drawing's values carry them as they are now, for the page to write into the rendered picture.
    for element, value in drawing.values.items():
        shown = nodes[element] if element in nodes else edges[element][2]
        name, *rest = value.split("\n")
        expected = [name, *map(masked, rest)] if element in nodes else [masked(v) for v in (name, *rest)]
        assert shown == "<br/>".join(map(label_text, expected))
    for queue in engine.queues.values():
        label = drawing.values[mermaid_id("queue", queue.name)]
        assert queue.name in label
        if not queue.deleted:
            assert f"ready {queue.ready}" in label
    for consumer in engine.consumers:
        node_id = mermaid_id("consumer", consumer.name)
        assert (classes.get(node_id) == "down") == consumer.crashed
        assert (classes.get(node_id) == "cut") == (consumer.cut and not consumer.crashed)
        assert (node_id in drawing.nodes) == (consumer.current is not None and not consumer.crashed)


def test_unacked_counts_sit_on_the_queue_to_consumer_edges():
    engine = engine_at("prefetch-pileup", 20.0)
    drawing = draw(engine, "topology")
    _, edges, _ = parse_flowchart(drawing.mermaid)
    for consumer in engine.consumers:
        [(key, arrow)] = [(k, e[1]) for k, e in edges.items() if e[3] == mermaid_id("consumer", consumer.name)]
        assert drawing.values[key] == f"{consumer.unacked}/∞ unacked" and arrow == "-->"
        assert edges[key][2] == "000/∞ unacked"  # the source stays the same while the count changes
    assert engine.consumers[2].unacked >= 20
    sqs = engine_at("sqs-visibility", 9.0)  # SQS: received and still invisible, no prefetch
    drawing = draw(sqs, "topology")
    _, edges, _ = parse_flowchart(drawing.mermaid)
    labels = {e[3]: drawing.values[k] for k, e in edges.items() if e[3].startswith("nW")}
    assert labels == {mermaid_id("consumer", c.name): f"{c.unacked} in flight" for c in sqs.consumers}


def test_a_crashed_consumer_is_marked_and_its_edge_dashed_and_the_dead_letter_route_drawn():
    engine = engine_at("crash-redelivery", 9.0)
    drawing = draw(engine, "topology")
    nodes, edges, classes = parse_flowchart(drawing.mermaid)
    w1 = mermaid_id("consumer", "W1")
    assert classes[w1] == "down" and "crashed" in nodes[w1]
    assert [e[1] for e in edges.values() if e[3] == w1] == ["-.->"]
    assert ("qtasks", "-.->", "dead-letter", "xdlx") in edges.values()
    assert "W1 crashed" in drawing.caption
    details = drawing.details[mermaid_id("queue", "tasks")]
    assert f"Ready: {engine.queues['tasks'].ready}" in details and "Dead-letter queue: tasks.dlq" in details


def test_consumer_details_list_the_ids_it_holds_unacked():
    engine = engine_at("prefetch-pileup", 10.0)
    held = sorted(entry.id for (who, _), entry in engine.queues["tasks"].pending.items() if who == "W3")
    assert len(held) > 5
    text = draw(engine, "topology").details[mermaid_id("consumer", "W3")]
    assert f"Unacked at the broker: {len(held)} ({', '.join(f'#{i}' for i in held)})" in text
    assert "prefetch ∞" in text


def test_request_reply_draws_reply_queues_to_their_clients_and_a_transient_queue_shows_deleted():
    nodes, edges, _ = parse_flowchart(draw(engine_at("correlation", 3.0), "topology").mermaid)
    for client in ("C1", "C2"):
        assert (f"qreply_2e_{client}", "-->", "reply", f"c{client}") in edges.values()
    engine = engine_at("transient-subscriber", 10.0)
    nodes, _, classes = parse_flowchart(draw(engine, "topology").mermaid)
    s2 = mermaid_id("queue", "sub.S2")
    assert nodes.get(s2) in (None, "sub.S2<br/>deleted") and classes.get(s2, "away") == "away"


# -- message trail --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("slug", "t"), SNAPSHOTS, ids=[f"{s}@{t}" for s, t in SNAPSHOTS])
def test_trail_is_a_bounded_sequence_diagram_of_declared_participants(slug, t):
    engine = engine_at(slug, t)
    drawing = draw(engine, "trail")
    assert drawing.mermaid == "" and drawing.caption
    participants, arrows, root = parse_trail(drawing.svg)
    assert root.get("role") == "img" and len(participants) == len(set(participants))
    if t == 0.0:
        assert not arrows and participants == [mermaid_id("node", "broker")]
        assert root.find(f"{SVG}text[@class='empty']").text == "no message has moved yet"
        return
    assert {a.src for a in arrows} | {a.dst for a in arrows} == set(participants)
    times = [float(a.label.split()[0]) for a in arrows]
    assert times == sorted(times) and times[-1] <= t
    assert len(arrows) <= 3 * TRAIL_STEPS  # a route to three queues is three arrows
    assert len(drawing.svg) < 6000 + 400 * len(arrows)


def trail_just_after(slug: str, event_type: str, **match: Any) -> list[Arrow]:
    """The arrows of the trail drawn a moment after the first event of a type in a preset's run."""
    [first, *_] = played(slug).of(event_type, **match)
    return parse_trail(draw(engine_at(slug, first["t"] + 0.001), "trail").svg)[1]


def shown(arrows: list[Arrow], src: str, dst: str, style: str, fate: str, label: str) -> bool:
    """Whether an arrow goes from ``src`` to ``dst`` (patterns) drawn so, with a label matching ``label``."""
    return any(
        re.fullmatch(src, a.src)
        and re.fullmatch(dst, a.dst)
        and (a.style, a.fate) == (style, fate)
        and re.fullmatch(label, a.label)
        for a in arrows
    )


def test_trail_shows_requeues_redeliveries_dead_letters_and_late_replies():
    requeue = trail_just_after("crash-redelivery", "msg.requeued")
    assert shown(requeue, "nW1", "qtasks", "reply", "delivered", r"[\d.]+ requeue #\d+ connection_lost")
    redelivery = trail_just_after("crash-redelivery", "msg.delivered", redelivered=True)
    assert shown(redelivery, "qtasks", "nW[23]", "request", "delivered", r"[\d.]+ deliver #\d+ redelivered")
    poison = trail_just_after("poison-dlq", "msg.dead_lettered")
    assert shown(poison, "qtasks", "qtasks_2e_dlq", "request", "dropped", r"[\d.]+ dead-letter #\d+ delivery_limit")
    late = trail_just_after("slow-worker", "msg.reply_late")
    assert shown(late, r"qreply_2e_C\d", r"cC\d", "reply", "dropped", r"[\d.]+ late reply, discarded #\d+ C\d-\d+")


def test_a_message_routed_to_several_queues_is_one_arrow_per_queue():
    engine = engine_at("topic-routing", 5.5)
    _, arrows, _ = parse_trail(draw(engine, "trail").svg)
    routes: dict[str, list[str]] = {}
    for arrow in arrows:
        if arrow.label.split()[1] == "route":
            routes.setdefault(arrow.label, []).append(arrow.dst)
    routed = {f"{s['t']:.2f} route #{s['id']} {s['label']}": s["dst"] for s in engine.trail if s["step"] == "routed"}
    assert any(len(queues) > 1 for queues in routes.values()), "the preset routes a message to several queues"
    for label, queues in routes.items():
        assert queues == [mermaid_id("queue", q) for q in routed[label].split(",")]


# -- ledger, charts, metrics ----------------------------------------------------------------------------------------
def test_the_ledger_block_shows_the_sum_and_says_when_it_does_not_balance(monkeypatch):
    engine = engine_at("auto-ack-loss", 20.0)
    book = engine.ledger()
    drawing = draw(engine, "ledger")
    assert "<title>Ledger: Balanced</title>" in drawing.svg
    places = [book[k] for k in ("queued", "in_flight", "acked", "dead_lettered", "expired", "dropped")]
    assert f"{book['entries']} copies = {' + '.join(map(str, places))}" in drawing.svg
    assert sum(places) == book["entries"]
    assert f"auto ack crash {book['dropped_by']['auto_ack_crash']}" in drawing.caption
    monkeypatch.setattr(engine, "ledger", lambda: {**book, "entries": book["entries"] + 2, "balanced": False})
    assert "NOT balanced: +2 copies unaccounted for" in draw(engine, "ledger").svg


def test_charts_plot_the_engine_series_over_whole_seconds():
    engine = engine_at("prefetch-pileup", 30.5)
    depth = draw(engine, "depth").svg
    window = engine.series.window(29, 30)
    assert f"in flight {window['in_flight'][-1]:g} msgs" in depth
    latency = draw(engine, "latency").svg
    assert all(name in latency for name in ("p50", "p95", "p99"))
    assert "no data" in draw(engine_at("prefetch-pileup", 0.5), "throughput").svg


def test_metrics_agree_with_the_ledger_the_series_and_the_clients():
    engine = engine_at("retry-duplicates", 30.0)
    book, out = engine.ledger(), metrics(engine)
    assert out["Ledger"] == "balanced" and out["Copies"] == book["entries"]
    assert out["Duplicates processed"] == book["duplicates_processed"] > 0
    latencies = [s for _, s in engine.series.latencies]
    p = [f"{percentile(latencies, q) * 1000:.0f} ms" for q in (50, 95, 99)]
    assert out["Latency p50 / p95 / p99"] == " / ".join(p)
    assert out["Late replies"] == sum(c.late_replies for c in engine.clients) > 0
    assert out["Redelivered"] == engine.series.totals["redelivered"]


# -- determinism ----------------------------------------------------------------------------------------------------
def fingerprint(slugs: tuple[str, ...]) -> str:
    """A digest of every drawing and the metrics of some presets at a few times."""
    digest = hashlib.sha256()
    for slug in slugs:
        for t in (9.0, 21.0):
            engine = engine_at(slug, t)
            out = [dataclasses.asdict(d.draw(engine)) for d in DIAGRAMS]
            digest.update(json.dumps([out, metrics(engine)], sort_keys=True).encode())
    return digest.hexdigest()


FINGERPRINTED = ("crash-redelivery", "topic-routing", "transient-subscriber", "dead-worker")


def test_the_same_state_draws_the_same_text_whatever_the_hash_seed():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'playground.settings'; django.setup(); "
        "from tests.messaging.test_diagrams import fingerprint, FINGERPRINTED; print(fingerprint(FINGERPRINTED))"
    )
    outputs = {out.strip() for out in outputs_under_hash_seeds(code)}
    assert outputs == {fingerprint(FINGERPRINTED)}


@pytest.mark.parametrize(("slug", "t"), [("crash-redelivery", 5.05), ("fanout", 6.1), ("correlation", 6.1)])
def test_message_steps_glide_along_the_topologys_edges(slug, t):
    engine = engine_at(slug, t)
    drawing = draw(engine, "topology")
    _, edges, _ = parse_flowchart(drawing.mermaid)
    assert drawing.tokens and len(drawing.tokens) <= 40
    now = engine.sim.now
    for token in drawing.tokens:
        assert token["edge"] in edges and token["kind"] in ("publish", "deliver", "ack", "nack")
        assert token["sent"] - 1e-4 <= now + 3 * 0.25 and token["arrive"] > now - 1e-4
        assert token["arrive"] == pytest.approx(token["sent"] + 0.25, abs=2e-4)
        source, _, _, target = edges[token["edge"]]
        if token["kind"] == "deliver":  # from a queue to a consumer
            assert source.startswith("q") and target.startswith("n") and not token.get("reverse")
        if token["kind"] == "ack":  # back up that edge
            assert target.startswith("n") and token["reverse"]
