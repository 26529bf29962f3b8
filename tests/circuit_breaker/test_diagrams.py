"""Diagrams and metrics: valid Mermaid whose highlighted ids exist, sources that change only when they should, the
flow path of the latest call, and the numbers of the metrics table."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from patterns.circuit_breaker import diagrams
from patterns.circuit_breaker.diagrams import TIMES
from patterns.circuit_breaker.pattern import PATTERN

from .test_engine import QUIET, outcome_script, preset_script, run
from .test_policies import COUNT10, TRIP10

ROOT = Path(__file__).resolve().parents[2]


def draw(engine: Any, name: str):
    return next(d for d in PATTERN.diagrams if d.name == name).draw(engine)


def declared_edges(source: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^\s*(\w+) (\w+)@-->(?:\|\"[^\"]*\"\|)? (\w+)$", source, flags=re.M)


def declared_nodes(source: str) -> set[str]:
    return set(re.findall(r"^\s*(\w+)[\[({]", source, flags=re.M))


def scenarios() -> list[tuple[str, Any]]:
    """Engines in many situations: every preset at a few times, manual states, retries, both topologies."""
    out = []
    for preset in PATTERN.presets:
        for t in (0.0, 6.0, 13.0, 45.0):
            out.append((f"{preset.slug}@{t}", run(t, preset_script(preset.slug), seed=preset.seed, **preset.params)[1]))
    manual = (
        (1.0, "metrics_only", {}),
        (2.0, "set_failure_probability", {"probability": 1.0}),
        (4.0, "force_open", {}),
        (5.0, "disable", {}),
        (6.0, "reset_breaker", {}),
    )
    for topology in ("single", "chain"):
        for until in (3.0, 4.5, 5.5, 8.0):
            engine = run(
                until,
                manual,
                topology=topology,
                retries=2,
                backoff_multiplier=3.0,
                half_open_rule="any_failure",
                half_open_transition="automatic",
            )[1]
            out.append((f"manual-{topology}@{until}", engine))
    return out


SCENARIOS = scenarios()


# -- state ---------------------------------------------------------------------------------------------------------
def test_state_diagram_marks_the_current_state_and_counts_transitions():
    _, engine, _ = run(17.0, outcome_script(TRIP10 + "    S"), **COUNT10)
    drawing = draw(engine, "state")
    assert drawing.mermaid.splitlines() == [
        "stateDiagram-v2",
        "    [*] --> CLOSED",
        f"    CLOSED --> OPEN: trip {TIMES}1",
        f"    OPEN --> HALF_OPEN: wait over {TIMES}1",
        "    HALF_OPEN --> CLOSED: trials pass",
        "    HALF_OPEN --> OPEN: trial fails",
    ]
    assert drawing.nodes == ("HALF_OPEN",)


def test_state_diagram_shows_manual_states_once_used_and_changes_only_with_transitions():
    script = ((1.0, "force_open", {}), (2.0, "reset_breaker", {}), (3.0, "disable", {}))
    sources = [draw(run(t, script, **QUIET)[1], "state").mermaid for t in (0.5, 1.5, 2.5, 3.5, 9.0)]
    assert "FORCED_OPEN" not in sources[0] and "DISABLED" not in sources[0]
    assert f"CLOSED --> FORCED_OPEN: force open {TIMES}1" in sources[1]
    assert f"FORCED_OPEN --> CLOSED: reset {TIMES}1" in sources[2]
    assert f"CLOSED --> DISABLED: disable {TIMES}1" in sources[3]
    assert sources[3] == sources[4]
    assert draw(run(5.0, breakers=False)[1], "state").mermaid.splitlines()[1] == "    [*] --> DISABLED"


# -- flow ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "engine"), SCENARIOS, ids=[name for name, _ in SCENARIOS])
def test_flow_highlights_a_connected_path_of_declared_edges(name, engine):
    drawing = draw(engine, "flow")
    edges = {edge_id: (source, target) for source, edge_id, target in declared_edges(drawing.mermaid)}
    nodes = declared_nodes(drawing.mermaid)
    assert drawing.mermaid.startswith("flowchart TD\n")
    assert all(source in nodes and target in nodes for source, target in edges.values())
    assert set(drawing.edges) <= set(edges) and set(drawing.nodes) <= nodes
    if engine.primary.last is None:
        assert drawing.edges == ()
        return
    path = [edges[e] for e in drawing.edges]
    assert path[0][0] == "nStart"
    assert all(a[1] == b[0] for a, b in itertools.pairwise(path)), path
    assert path[-1][1] in ("nOk", "nErr", "nState")  # nState: the call is retried
    assert set(drawing.nodes) == {n for edge in path for n in edge}


def flow_after(codes: str, **params: Any):
    _, engine, _ = run(len(codes) + 3.0, outcome_script(codes), **{**COUNT10, **params})
    return draw(engine, "flow")


@pytest.mark.parametrize(
    ("codes", "params", "expected"),
    [
        ("S", {}, ["eStart", "eClosed", "eRun", "eCountClosed", "eJudge", "eJudgeNo", "eAnswerYes"]),
        (TRIP10, {}, ["eStart", "eClosed", "eRun", "eCountClosed", "eJudge", "eJudgeYes", "eOpened", "eAnswerNo"]),
        (TRIP10 + "F", {}, ["eStart", "eOpen", "eWaitNo", "eReject"]),
        (
            TRIP10 + "   S",
            {"half_open_calls": 1},
            [
                "eStart",
                "eOpen",
                "eWaitYes",
                "eHalf",
                "eTrialsYes",
                "eRun",
                "eCountHalf",
                "eTrialJudge",
                "eAllInYes",
                "eFailedNo",
                "eClosedAgain",
                "eAnswerYes",
            ],
        ),
        (
            TRIP10 + "   F",
            {"half_open_rule": "any_failure"},
            [
                "eStart",
                "eOpen",
                "eWaitYes",
                "eHalf",
                "eTrialsYes",
                "eRun",
                "eCountHalf",
                "eTrialJudge",
                "eFailedYes",
                "eReopened",
                "eAnswerNo",
            ],
        ),
        (
            "F",
            {"retries": 1, "caller_limit": 5},
            ["eStart", "eLimitYes", "eClosed", "eRun", "eCountClosed", "eJudge", "eJudgeNo", "eAnswerNo", "eRetryNo"],
        ),
    ],
)
def test_flow_path_of_the_latest_call(codes, params, expected):
    assert list(flow_after(codes, **params).edges) == expected


def test_flow_follows_the_configuration_not_the_traffic():
    base = flow_after("SFS")
    assert flow_after("FFSSFSS").mermaid == base.mermaid
    assert flow_after("S").edges != flow_after("F").edges
    consecutive = flow_after("S", policy="consecutive", consecutive_failures=4).mermaid
    assert "4 failures in a row?" in consecutive and consecutive != base.mermaid
    assert "Record in the last 10 seconds" in flow_after("S", policy="time_window").mermaid
    assert "Record in the last 10 calls" in base.mermaid
    assert 'nFailed{"Failed?"}' in flow_after("S", half_open_rule="any_failure").mermaid
    assert "Retries left?" in flow_after("S", retries=2).mermaid and "Retries left?" not in base.mermaid
    assert "per reopen, max 60 s" in flow_after("S", backoff_multiplier=2.0).mermaid


# -- rates and services --------------------------------------------------------------------------------------------
def test_rates_chart_counts_the_last_whole_seconds():
    _, engine, _ = run(5.5, ((1.0, "burst", {"count": 3}), (2.2, "burst", {"count": 2})), **QUIET)
    drawing = draw(engine, "rates")
    assert drawing.mermaid == "" and drawing.svg.startswith("<svg") and 'role="img"' in drawing.svg
    assert "<title>Calls to S per second</title>" in drawing.svg
    counts = engine.entry.stats.per_second(4, 5)
    assert counts["success"] == [0, 3, 2, 0, 0]
    assert draw(engine, "rates").svg == drawing.svg


def test_cascade_diagram_shows_breaker_states_and_saturated_services():
    preset = PATTERN.preset("cascade")
    _, engine, _ = run(20.0, preset_script("cascade"), seed=preset.seed, **preset.params)
    drawing = draw(engine, "cascade")
    lines = drawing.mermaid.splitlines()
    assert lines[:3] == ["flowchart LR", '    users(["Users"])', '    svcA["A<br/>queueing"]']
    assert lines[4:] == [
        '    svcC["C<br/>down: hang"]',
        '    users eA@-->|"no breaker"| svcA',
        '    svcA eB@-->|"DISABLED"| svcB',
        '    svcB eC@-->|"DISABLED"| svcC',
    ]
    assert "svcA" in drawing.nodes and drawing.edges == ()
    assert re.match(r"A: \d+ in flight, 10/10 busy, \d+ queued; B: \d+ in flight, \d+/10 busy", drawing.caption)
    preset = PATTERN.preset("cascade-breakers")
    _, engine, _ = run(8.0, preset_script("cascade-breakers"), seed=preset.seed, **preset.params)
    assert set(draw(engine, "cascade").edges) == {"eB", "eC"}


# -- metrics -------------------------------------------------------------------------------------------------------
def test_metrics_are_ordered_labelled_and_formatted():
    _, engine, _ = run(12.5, outcome_script(TRIP10 + "F"), **COUNT10)
    values = diagrams.metrics(engine)
    assert list(values)[:6] == ["State", "Time in state", "Next half-open", "Open wait", "Transitions", "Window"]
    assert values["State"] == "OPEN"
    assert values["Time in state"] == "2.5 s"
    assert values["Next half-open"] == "in 0.5 s (at 13.0 s)"
    assert values["Transitions"] == 1
    assert values["Window"] == "-"
    assert values["Rejected (total)"] == 1 and values["Failure (total)"] == 10
    assert values["Latency p50 / p90 / p99"] == "10 ms / 10 ms / 10 ms"
    assert values["Failure /s"] == 0.84  # the 8 failures since second 3 began, 9.5 s ago
    assert values["Error % (10 s)"] == "100.0%"
    assert values["Caller saturated"] == "-"  # QUIET has no caller limit
    assert all(isinstance(v, (str, int, float)) for v in values.values())
    _, engine, _ = run(3.5, outcome_script("SF"), **COUNT10)
    assert diagrams.metrics(engine)["Window"] == "2 calls, 50.0% failed, 0.0% slow"


def test_metrics_of_a_chain_name_each_hop():
    preset = PATTERN.preset("cascade")
    _, engine, _ = run(20.0, preset_script("cascade"), seed=preset.seed, **preset.params)
    values = diagrams.metrics(engine)
    assert values["Breaker to B"] == values["Breaker to C"] == "DISABLED"
    assert values["Transitions (to C)"] == 0 and values["Window (to C)"] == "-"
    assert re.fullmatch(r"A \d+ / B \d+ / C \d+", values["In flight"])
    assert re.fullmatch(r"A 10/10 / B \d+/10 / C 0/10", values["Busy slots"])
    assert values["Caller saturated"] == "B 0 / C 0"
    assert "Users: latency p50 / p90 / p99" in values


# -- real Mermaid --------------------------------------------------------------------------------------------------
@pytest.mark.browser
def test_every_diagram_renders_in_the_vendored_mermaid_and_its_marked_ids_exist(page):
    """Render with the site's Mermaid in Chromium: a syntax error or an id the page cannot find fails here."""
    page.set_content("<!doctype html><html><body></body></html>")
    page.add_script_tag(path=str(ROOT / "static" / "vendor" / "mermaid.min.js"))
    page.evaluate("mermaid.initialize({startOnLoad: false})")
    seen: dict[str, dict[str, Any]] = {}
    for name, engine in SCENARIOS:
        for diagram in PATTERN.diagrams:
            drawing = diagram.draw(engine)
            if drawing.mermaid and drawing.mermaid not in seen:
                result = page.evaluate(RENDER, [f"d{len(seen)}", drawing.mermaid])
                assert result["ok"], (name, diagram.name, result.get("error"), drawing.mermaid)
                seen[drawing.mermaid] = result
            if drawing.mermaid:
                rendered = seen[drawing.mermaid]
                assert set(drawing.edges) <= set(rendered["edges"]), (name, diagram.name)
                assert set(drawing.nodes) <= set(rendered["nodes"]), (name, diagram.name, rendered["nodes"])
    assert len(seen) > 20


RENDER = """async ([id, source]) => {
  try {
    const {svg} = await mermaid.render(id, source);
    const box = document.createElement("div");
    box.innerHTML = svg;
    const edges = [...box.querySelectorAll("[data-edge][data-id]")].map(e => e.getAttribute("data-id"));
    const prefix = new RegExp("^" + id + "-(?:flowchart|state)-(.*)-\\\\d+$");
    const nodes = [...box.querySelectorAll("g.node")].map(e => (e.id.match(prefix) || [])[1]).filter(Boolean);
    return {ok: true, edges, nodes};
  } catch (error) {
    return {ok: false, error: String(error)};
  }
}"""


@pytest.mark.parametrize(("name", "engine"), SCENARIOS[::5], ids=[n for n, _ in SCENARIOS[::5]])
def test_the_flow_comes_in_two_parts_holding_every_node_once(name, engine):
    drawing = draw(engine, "flow")
    assert list(drawing.views) == ["before", "after"]
    parts = re.split(r"^    subgraph (\w+)\[.*$", drawing.mermaid, flags=re.M)
    held = {
        part: declared_nodes(body.split("\n    end")[0]) for part, body in zip(parts[1::2], parts[2::2], strict=True)
    }
    assert set(held) == set(drawing.views) and all(held.values())
    assert not held["before"] & held["after"]
    assert held["before"] | held["after"] == declared_nodes(drawing.mermaid) - {"subgraph"}
