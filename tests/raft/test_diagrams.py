"""Raft diagrams and metrics on real runs: every view for an initial election, a leader crash, a partition, a
snapshot, a membership change and each preset; highlights and details name ids the drawing declares; the text is
the same in any process; labels cannot break Mermaid's syntax."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from functools import cache
from typing import Any

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from hypothesis import given
from hypothesis import strategies as st

from patterns.core import sequence
from patterns.core.player import Player
from patterns.core.scenario import decode
from patterns.raft import diagrams
from patterns.raft.diagrams import RPCS_SHOWN, SYNTAX, leaders, text
from patterns.raft.pattern import PATTERN

from ..support import outputs_under_hash_seeds

STATE_IDS = set(diagrams.STATE_IDS.values())


def run(until: float, *pairs: tuple[str, str]) -> Player:
    """A run decoded from link pairs (``("do", "1:crash:server=s1")``) and played with the live limits."""
    player = Player(PATTERN, decode(PATTERN, pairs), settings.PLAYGROUND)
    player.advance_to(until)
    return player


def play(until: float, *pairs: tuple[str, str]) -> Any:
    return run(until, *pairs).engine


@cache
def leader_at(t: float, seed: str) -> str:
    found = leaders(play(t, ("seed", seed)))
    assert len(found) == 1, found
    return found[0].id


def draw_all(engine: Any) -> dict[str, Any]:
    return {d.name: d.draw(engine) for d in diagrams.DIAGRAMS}


# -- the situations -------------------------------------------------------------------------------------------------
def election() -> Any:
    return play(2.0, ("seed", "3"))


def leader_crash() -> Any:
    return play(4.0, ("seed", "3"), ("do", f"2:crash:server={leader_at(2.0, '3')}"))


def partition() -> Any:
    return play(4.0, ("seed", "3"), ("clients", "2"), ("do", "2:partition:groups=s1.s2|s3.s4.s5.c1.c2"))


def snapshot() -> Any:
    return play(12.0, ("seed", "5"), ("snapshot_threshold", "10"), ("client_rate", "20"))


def membership() -> Any:
    leader = leader_at(2.0, "7")
    return play(
        8.0, ("seed", "7"), ("clients", "2"), ("do", "2:add_server"), ("do", f"5:remove_server:server={leader}")
    )


SITUATIONS = {
    "election": election,
    "leader_crash": leader_crash,
    "partition": partition,
    "snapshot": snapshot,
    "membership": membership,
}


@cache
def situation(name: str) -> tuple[Any, dict[str, Any]]:
    engine = SITUATIONS[name]()
    return engine, draw_all(engine)


# -- reading the drawings ----------------------------------------------------------------------------------------------
SVG = "{http://www.w3.org/2000/svg}"


def svg_ids(svg: str) -> list[str]:
    """The ids of an SVG picture's nodes (``data-id`` on anything but an edge), in document order."""
    return [el.get("data-id") for el in ET.fromstring(svg).iter() if el.get("data-id") and el.get("data-edge") is None]


def svg_edges(svg: str) -> dict[str, str]:
    """Edge id -> its class (the link's state), in document order."""
    return {el.get("data-id"): el.get("class") for el in ET.fromstring(svg).iter() if el.get("data-edge") is not None}


def svg_node(svg: str, node: str) -> tuple[str, str]:
    """A node's class and its text, the lines joined by spaces."""
    element = next(el for el in ET.fromstring(svg).iter() if el.get("data-id") == node)
    return element.get("class"), " ".join(t.text for t in element.iter(f"{SVG}text"))


def check_drawing_ids(name: str, drawing: Any) -> None:
    """Highlights and details point at ids the drawing declares."""
    if name in ("cluster", "states", "rpcs", "logs"):  # pictures drawn on the server
        assert drawing.mermaid == "" and ET.fromstring(drawing.svg).get("role") == "img"
        declared = set(svg_ids(drawing.svg))
        assert set(drawing.edges) <= set(svg_edges(drawing.svg))
    else:
        declared = set(re.findall(r"^\s*(\w+)\[\"", drawing.mermaid, flags=re.M))
        assert name == "invariants" and len(declared) == len(diagrams.INVARIANTS) == 8 and drawing.nodes == ()
    assert set(drawing.nodes) <= declared, (drawing.nodes, declared)
    assert set(drawing.details) <= declared


# -- every view in every situation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SITUATIONS)
def test_every_view_declares_what_it_highlights_and_details(name):
    engine, drawn = situation(name)
    assert list(drawn) == ["cluster", "states", "rpcs", "logs", "invariants"]
    for view, drawing in drawn.items():
        check_drawing_ids(view, drawing)
        assert drawing.caption
    cluster = drawn["cluster"]
    servers = [diagrams.node_id(s) for s in engine.servers]
    assert [n for n in svg_ids(cluster.svg) if n in servers] == servers
    assert [n for n in svg_ids(cluster.svg) if n not in servers] == [diagrams.node_id(c) for c in engine.clients]
    for server in engine.servers.values():
        detail = cluster.details[server.id]
        role = diagrams.ROLE_WORDS[server.role] if server.alive else "crashed"
        assert detail.splitlines()[:2] == [f"{server.id}: {role}", "Persistent (kept across a crash):"]  # heading
        assert f"currentTerm {server.current_term}" in detail and "votedFor" in detail
        if server.alive:
            assert f"commitIndex {server.commit_index}" in detail and f"lastApplied {server.last_applied}" in detail
            assert ("nextIndex" in detail) == (server.role == "leader")
        else:
            assert "commitIndex" not in detail and "lost in the crash" in detail
    assert set(cluster.nodes) == {s.id for s in leaders(engine)}
    assert "VIOLATED" not in drawn["invariants"].mermaid
    assert diagrams.metrics(engine)["Invariant violations"] == 0


@pytest.mark.parametrize("name", SITUATIONS)
def test_the_state_diagram_places_every_server_once(name):
    engine, drawn = situation(name)
    svg = drawn["states"].svg
    boxes = {el.get("data-id"): el for el in ET.fromstring(svg).iter() if el.get("class") == "state"}
    assert set(drawn["states"].nodes) <= set(boxes) <= STATE_IDS
    assert ("PreCandidate" in boxes) == engine.params["pre_vote"]
    for state, box in boxes.items():
        words, listed = (t.text for t in box.iter(f"{SVG}text"))
        assert words == diagrams.STATE_WORDS[state]
        servers = [
            s for s in engine.servers.values() if ("Crashed" if not s.alive else diagrams.STATE_IDS[s.role]) == state
        ]
        assert listed == (" ".join(s.id for s in servers) or diagrams.NONE)
        assert (state in drawn["states"].nodes) == bool(servers)
        for server in servers:
            assert f"{server.id} t{server.current_term}" in drawn["states"].caption
    assert ("check-quorum on" in drawn["states"].caption) == engine.params["check_quorum"]


@pytest.mark.parametrize("name", SITUATIONS)
def test_the_sequence_diagram_shows_the_latest_rpcs(name):
    engine, drawn = situation(name)
    root = ET.fromstring(drawn["rpcs"].svg)
    columns = {
        el.get("data-id"): float(el.find(f"{SVG}rect").get("x")) + sequence.COLUMN_W / 2 - 6
        for el in root.iter()
        if el.get("class") == "actor"
    }
    assert list(columns)[: len(engine.servers)] == list(engine.servers)
    rows = [el for el in root.iter(f"{SVG}g") if el.get("class", "").startswith("row ")]
    recent = list(engine.rpcs)[-RPCS_SHOWN:]
    assert len(rows) == len(recent) > 0
    for row, rpc in zip(rows, recent, strict=True):
        classes = row.get("class").split()
        assert classes[1] == rpc["fate"] and ("reply" in classes) == rpc["kind"].endswith("Reply")
        shown = row.find(f"{SVG}text")
        label = shown.text  # inside the picture: starting after its left end, or ending at its right one
        right = float(root.get("width")) - sequence.MARGIN
        if shown.get("text-anchor") == "end":
            assert float(shown.get("x")) == right and len(label) * sequence.CHAR_W <= right
        else:
            assert float(shown.get("x")) + len(label) * sequence.CHAR_W <= right
        assert label.startswith(rpc["kind"]) and (f" #{rpc['id']} " in label) == (rpc["fate"] == "in_flight")
        assert label.endswith(" (lost)") == (rpc["fate"] == "dropped")
        line = row.find(f"{SVG}line")
        start, end = float(line.get("x1")), float(line.get("x2"))
        assert abs(start - columns[rpc["src"]]) < 0.1  # from the sender's lifeline towards the receiver's
        towards = columns[rpc["dst"]] - start
        assert 0 <= (end - start) / towards <= 1 and (rpc["fate"] != "delivered" or abs(end - start - towards) < 0.1)
    terms = [el.find(f"{SVG}text").text for el in root.iter(f"{SVG}g") if el.get("class") == "band"]
    assert terms == [
        f"term {t}" for i, t in enumerate(r["term"] for r in recent) if i == 0 or recent[i - 1]["term"] != t
    ]


@pytest.mark.parametrize("name", SITUATIONS)
def test_the_logs_align_entries_by_index_and_mark_commits(name):
    engine, drawn = situation(name)
    root = ET.fromstring(drawn["logs"].svg)
    assert root.get("role") == "img" and root.find("{http://www.w3.org/2000/svg}title") is not None
    assert svg_ids(drawn["logs"].svg) == [f"{s}_who" for s in engine.servers]
    high = max(s.log.last_index for s in engine.servers.values())
    shown = ET.tostring(root, encoding="unicode")
    assert f">{high}<" in shown
    lead = leaders(engine)
    assert drawn["logs"].nodes == tuple(f"{s.id}_who" for s in lead[:1])
    if lead:
        assert f"applied through {lead[0].last_applied}" in drawn["logs"].caption


# -- what each situation must show ----------------------------------------------------------------------------------
def test_after_the_first_election_one_leader_is_marked_everywhere():
    engine, drawn = situation("election")
    (leader,) = leaders(engine)
    assert drawn["cluster"].nodes == (leader.id,)
    assert svg_node(drawn["cluster"].svg, leader.id) == (
        "leader",
        f"{leader.id} leader t{leader.current_term} · commit {leader.commit_index}",
    )
    assert "Leader" in drawn["states"].nodes and "Candidate" not in drawn["states"].nodes
    assert diagrams.metrics(engine)["Leader"] == f"{leader.id} (term {leader.current_term})"
    assert "AppendEntries" in drawn["rpcs"].svg


def test_a_crashed_leader_is_marked_and_a_new_one_has_a_higher_term():
    old = leader_at(2.0, "3")
    before = play(2.0, ("seed", "3")).servers[old].current_term
    engine, drawn = situation("leader_crash")
    (leader,) = leaders(engine)
    assert leader.id != old and leader.current_term > before
    assert svg_node(drawn["cluster"].svg, old) == ("crashed", f"{old} crashed term {before}")
    assert "Crashed" in drawn["states"].nodes
    assert diagrams.metrics(engine)["Up"] == "4 of 5"


def test_a_partition_draws_its_groups_and_the_minority_cannot_commit():
    engine, drawn = situation("partition")
    svg = drawn["cluster"].svg
    assert "partitions: s1 s2  |  s3 s4 s5 c1 c2" in svg
    for server in engine.servers:
        assert svg_node(svg, server)[1].endswith(" P1" if server in ("s1", "s2") else " P2")
    links = svg_edges(svg)
    assert links["l_s1_s3"] == "partitioned" and links["l_s1_s2"] == "ok" and links["l_s3_s4"] == "ok"
    majority = [s for s in leaders(engine) if s.id in ("s3", "s4", "s5")]
    assert majority, "the majority side elects a leader"
    minority_commit = max(engine.servers[s].commit_index for s in ("s1", "s2"))
    assert minority_commit <= majority[0].commit_index


def test_a_snapshot_shows_as_a_grey_prefix_and_in_the_details():
    engine, drawn = situation("snapshot")
    compacted = [s for s in engine.servers.values() if s.log.snapshot_index]
    assert compacted
    assert 'class="snap"' in drawn["logs"].svg
    for server in compacted:
        assert f"snapshot through index {server.log.snapshot_index}" in drawn["cluster"].details[server.id]


def test_a_membership_change_shows_the_new_server_and_retires_the_removed_leader():
    engine, drawn = situation("membership")
    removed = leader_at(2.0, "7")
    voters, learners = diagrams.configuration(engine)
    assert "s6" in voters and removed not in voters + learners and removed not in engine.servers
    shown = svg_ids(drawn["cluster"].svg)
    assert "s6" in shown and removed not in shown and "l_s5_s6" in svg_edges(drawn["cluster"].svg)
    assert [s.id for s in leaders(engine)] == list(drawn["cluster"].nodes) != [removed]
    assert diagrams.metrics(engine)["Voters"] == ", ".join(voters)


def test_a_server_out_of_the_configuration_but_not_yet_retired_is_drawn_apart():
    engine = play(2.0, ("seed", "7"))
    leader = leaders(engine)[0]
    gone = next(s for s in engine.servers if s != leader.id)
    leader.voters = tuple(s for s in leader.voters if s != gone)  # as a proposed configuration entry does
    assert svg_node(diagrams.cluster(engine).svg, gone) == (
        "removed",
        f"{gone} leaving t{engine.servers[gone].current_term} · commit {engine.servers[gone].commit_index}",
    )


def centre(svg: str, node: str) -> tuple[float, float]:
    rect = next(el for el in ET.fromstring(svg).iter() if el.get("data-id") == node).find(f"{SVG}rect")
    x, y, w, h = (float(rect.get(k)) for k in ("x", "y", "width", "height"))
    return x + w / 2, y + h / 2


def test_messages_on_the_wire_are_tokens_along_their_links_and_light_them():
    player = run(2.0, ("seed", "3"), ("client_rate", "20"))
    while len(player.engine.net.in_flight()) < 4:
        player.advance_to(player.now + 0.002)
    engine, flying = player.engine, player.engine.net.in_flight()
    drawing = diagrams.cluster(engine)
    tokens = {t["id"]: t for t in drawing.tokens}
    assert "<circle" not in drawing.svg  # the page draws and moves them
    assert {f"m{m.id}" for m in flying} <= set(tokens)
    kinds = {r["id"]: r["kind"] for r in engine.rpcs}
    for message in flying:
        token = tokens[f"m{message.id}"]
        assert token["sent"] == round(message.sent_at, 4) and token["arrive"] >= round(message.deliver_at, 4)
        assert token["arrive"] >= token["sent"] + (diagrams.MIN_GLIDE - 1e-4 if message.id in kinds else 0)
        (ax, ay), (bx, by) = centre(drawing.svg, message.src), centre(drawing.svg, message.dst)
        x1, y1, x2, y2 = token["line"]
        for x, y in ((x1, y1), (x2, y2)):  # on the link, TOKEN_LANE to the right of the way it goes
            side = ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) / math.hypot(bx - ax, by - ay)
            assert abs(side - diagrams.TOKEN_LANE) < 0.2
        assert math.hypot(x1 - ax, y1 - ay) < math.hypot(x2 - ax, y2 - ay)  # from the sender to the receiver
        kind = kinds.get(message.id, "client")
        assert token["kind"].startswith({"AppendEntries": "append", "client": "client-msg"}[kind.removesuffix("Reply")])
        assert token["kind"].endswith(" reply") == kind.endswith("Reply")
    order = list(engine.servers)
    between_servers = [m for m in flying if m.src in engine.servers and m.dst in engine.servers]
    lit = {"l_{}_{}".format(*sorted((m.src, m.dst), key=order.index)) for m in between_servers}
    assert lit and lit <= set(drawing.edges)
    assert f"{len(flying)} messages in flight (#{flying[0].id} " in drawing.caption
    numbered = re.findall(r">\w+ #(\d+) ", diagrams.rpcs(engine).svg)
    assert numbered and {int(n) for n in numbered} <= {m.id for m in flying}


def test_lost_messages_are_crossed_out():
    engine = play(3.0, ("seed", "2"), ("loss", "0.3"))
    svg = diagrams.rpcs(engine).svg
    lost = [r for r in list(engine.rpcs)[-RPCS_SHOWN:] if r["fate"] == "dropped"]
    assert lost and svg.count('class="cross"') == len(lost) == svg.count(" (lost)</text>")
    assert "every link loses 30%" in diagrams.cluster(engine).caption


@pytest.mark.parametrize("preset", PATTERN.presets, ids=lambda p: p.slug)
def test_each_preset_draws_and_its_broken_rule_shows_in_the_invariant_panel(preset):
    player = run(10.0, ("preset", preset.slug))
    engine, events = player.engine, player.drain()
    drawn = draw_all(engine)
    for view, drawing in drawn.items():
        check_drawing_ids(view, drawing)
    violations = engine.checker.violations
    assert bool(violations) == any(v for name, v in preset.params.items() if name.startswith("break_"))
    reported = [(e.fields["invariant"], e.fields["cause"]) for e in events if e.type == "invariant.violated"]
    assert reported == [(v["invariant"], v["cause"]) for v in violations]
    panel = drawn["invariants"]
    bad = re.search(r"^\s*class ([\w,]+) bad$", panel.mermaid, flags=re.M)
    assert set(bad.group(1).split(",") if bad else ()) == {name for name, _ in reported}
    for name, cause in reported[:1]:
        assert f"{name} at event #{cause}" in panel.caption
        assert re.search(rf'^\s*{name}\["[^"]*VIOLATED at event #35;{cause}', panel.mermaid, flags=re.M)
        assert f"violated at event #{cause}" in panel.details[name]
    assert diagrams.metrics(engine)["Invariant violations"] == len(violations)


def test_metrics_name_the_read_mode_and_count_client_operations():
    engine, _ = situation("election")
    shown = diagrams.metrics(engine)
    assert shown["Read mode"] == "reads: read index, confirmed by a heartbeat round"
    assert shown["Elections"] >= 1 and shown["RPCs"] == sum(engine.stats["rpcs"].values())
    rpcs = engine.stats["rpcs"]
    assert shown["AppendEntries / replies"] == f"{rpcs['AppendEntries']} / {rpcs['AppendEntriesReply']}"
    completed = sum(c.completed for c in engine.clients.values())
    assert shown["Client ops"].startswith(f"{completed} completed")
    logged = diagrams.metrics(play(1.0, ("read_mode", "log")))
    assert logged["Read mode"] == "reads: through the log"


# -- text and determinism -------------------------------------------------------------------------------------------
@given(st.text(max_size=40))
def test_labels_carry_no_mermaid_syntax(value):
    shown = text(value)
    assert not (set(shown) & (SYNTAX - {"#", ";"})) and "\n" not in shown
    assert re.sub(r"#\d+;", "", shown).count("#") == 0


DRAW_IN_A_PROCESS = """
import dataclasses, json, django
django.setup()
from tests.raft.test_diagrams import draw_all, play
from patterns.raft.diagrams import metrics
script = (("do", "1.5:partition:groups=s1|s2.s3"), ("do", "2:crash:server=s4"))
engine = play(3.0, ("seed", "5"), ("clients", "2"), *script)
drawn = {name: dataclasses.asdict(d) for name, d in draw_all(engine).items()}
print(json.dumps({"drawn": drawn, "metrics": metrics(engine)}))
"""


def test_the_same_run_draws_the_same_text_whatever_the_hash_seed():
    """Two processes with different PYTHONHASHSEED draw the same diagrams, details and metrics, byte for byte."""
    outputs = outputs_under_hash_seeds(DRAW_IN_A_PROCESS, env={"DJANGO_SETTINGS_MODULE": "playground.settings"})
    assert outputs[0] == outputs[1]
    drawn = json.loads(outputs[0])["drawn"]
    assert "partitions: s1  |  s2 s3" in drawn["cluster"]["svg"] and "s4: crashed" in drawn["cluster"]["details"]["s4"]


def test_the_explanation_renders_and_links_only_to_presets_that_exist():
    page = render_to_string(PATTERN.explain_template)
    linked = re.findall(r'href="\?preset=([\w-]+)"', page)
    assert linked and set(linked) <= {p.slug for p in PATTERN.presets}
    for words in ("Persistent", "Volatile", "read index", "learner", "InstallSnapshot", "pre-vote"):
        assert words.lower() in page.lower()
