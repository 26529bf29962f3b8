"""Links: canonical round-trips, clear messages for every bad part, and no crash on any input."""

from dataclasses import replace
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.core.scenario import Action, Scenario, ScenarioError, action_time, decode, decode_query, encode

from .toy import LABEL, LIMITS, TOY


def test_defaults_encode_to_just_the_seed():
    assert encode(TOY, decode(TOY, [])) == "seed=1"


def test_a_readable_link_round_trips():
    query = "seed=7&rate=2.5&mode=b&loud=true&do=1.5:bump:node=2,by=-3&do=4:pause:node=1,on=false"
    scenario = decode_query(TOY, query, limits=LIMITS)
    assert scenario.seed == 7
    assert scenario.values == {"nodes": 3, "rate": 2.5, "mode": "b", "loud": True}
    assert scenario.script == (
        Action(1.5, "bump", (("node", 2), ("by", -3))),
        Action(4.0, "pause", (("node", 1), ("on", False))),
    )
    assert encode(TOY, scenario) == query


def test_presets_are_a_base_that_the_link_extends():
    scenario = decode(TOY, [("preset", "busy"), ("rate", "7"), ("do", "3:bump")])
    assert scenario.seed == 9 and scenario.values["rate"] == 7.0
    assert [(a.t, a.command) for a in scenario.script] == [(1.0, "bump"), (3.0, "bump")]
    assert scenario.script[1].args == (("node", 0), ("by", 1))


def test_a_preset_s_step_left_out_is_a_skip_in_the_link_which_keeps_the_preset():
    busy = decode(TOY, [("preset", "busy")])
    added = Action(3.0, "bump", (("node", 0), ("by", 1)))
    cut = replace(busy, script=(added,))  # the preset's step at 1 s removed, one added at 3 s
    link = encode(TOY, cut)
    assert link.startswith("preset=busy&skip=1:bump") and link.endswith("do=3:bump:node=0,by=1")
    assert decode(TOY, parse_qsl(link)) == cut


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("rate=fast", "rate: expected a number, got 'fast'"),
        ("rate=1e9", "rate: 1000000000.0 is above the maximum 1000"),
        ("rate=nan", "rate: expected a finite number"),
        ("nodes=2.5", "nodes: expected a whole number, got '2.5'"),
        ("mode=c", "mode: expected one of a, b, got 'c'"),
        ("loud=maybe", "loud: expected true or false"),
        ("seed=-4", "seed: expected a whole number from 0 to 4294967295"),
        ("seed=%C2%B9", "seed: expected a whole number"),  # a superscript one is a digit to str.isdigit
        ("colour=red", "'colour': not a parameter of Toy ticker"),
        ("do=soon:bump", "do: time 'soon' should be a number of seconds >= 0"),
        ("do=3:explode", "do 3: command: 'explode' is not a command of Toy ticker"),
        ("do=3:bump:node=99", "do 3: bump node: 99 is above the maximum 7"),
        ("do=3:bump:colour=1", "do 3: bump has no argument 'colour'"),
        ("do=3:bump:node", "do: argument 'node' should look like NAME=VALUE"),
        ("do=bump", "do: 'bump' should look like TIME:COMMAND"),
        ("preset=nope", "preset: no preset 'nope' (known: busy, calm)"),
        ("preset=busy&skip=2:bump", "skip: 2:bump:node=0,by=1 is not a step of the preset"),
        ("skip=1:bump", "skip: 1:bump:node=0,by=1 is not a step of the preset"),
        ("preset=busy&skip=bump", "skip: 'bump' should look like TIME:COMMAND"),
        ("do=3:label:name=A.B", "do 3: label name: expected text like 'n1.n2|n3', got 'A.B'"),
        ("do=3:label:name=a%2Bb", "do 3: label name: expected text like 'n1.n2|n3', got 'a+b'"),
        ("rate=1&rate=2", "rate: given more than once"),
    ],
)
def test_bad_links_name_the_bad_part(query, message):
    with pytest.raises(ScenarioError) as info:
        decode_query(TOY, query, limits=LIMITS)
    assert message in str(info.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ScenarioError) as info:
        decode_query(TOY, "rate=x&mode=z&seed=q", limits=LIMITS)
    assert len(info.value.problems) == 3


def test_huge_links_and_too_many_actions_are_refused():
    with pytest.raises(ScenarioError, match="too long"):
        decode_query(TOY, "a" * 5000, limits=LIMITS)
    with pytest.raises(ScenarioError, match="too many perturbations"):
        decode_query(TOY, "&".join(["do=1:bump"] * 51), limits=LIMITS)


def test_live_action_times_are_whole_milliseconds_not_before_now():
    for now in (0.0, 0.1 + 0.2, 1.2345, 12.301, 599.9999999, 1e-9):
        t = action_time(now)
        assert t >= now and t - now < 0.0011 and float(f"{t:.3f}") == t


names = st.sampled_from(["bump", "pause", "label"])
labels = st.from_regex(LABEL, fullmatch=True).filter(lambda text: len(text) <= 64)


def _args(name, node, by, on, label):
    return {"bump": (("node", node), ("by", by)), "pause": (("node", node), ("on", on)), "label": (("name", label),)}[
        name
    ]


actions = st.builds(
    lambda t, name, node, by, on, label: Action(t / 1000, name, _args(name, node, by, on, label)),
    st.integers(0, 3_600_000),
    names,
    st.integers(0, 7),
    st.integers(-100, 100),
    st.booleans(),
    labels,
)
scenarios = st.builds(
    lambda seed, nodes, rate, mode, loud, script: Scenario(
        "toy",
        seed,
        (("nodes", nodes), ("rate", rate), ("mode", mode), ("loud", loud)),
        tuple(sorted(script, key=lambda a: a.t)),
    ),
    st.integers(0, 2**32 - 1),
    st.integers(1, 8),
    st.floats(0.1, 1000, allow_nan=False),
    st.sampled_from(["a", "b"]),
    st.booleans(),
    st.lists(actions, max_size=20),
)


@settings(max_examples=200, deadline=None)
@given(scenarios)
def test_every_scenario_round_trips_through_its_link(scenario):
    assert decode_query(TOY, encode(TOY, scenario), limits=LIMITS) == scenario


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_decoding_arbitrary_text_never_crashes(text):
    try:
        decode_query(TOY, text, limits=LIMITS)
    except ScenarioError as exc:
        assert exc.problems and all(isinstance(p, str) and len(p) < 300 for p in exc.problems)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["seed", "rate", "nodes", "mode", "loud", "do", "preset", "x"]), st.text(max_size=40)
        ),
        max_size=12,
    )
)
def test_decoding_arbitrary_fields_never_crashes(pairs):
    try:
        decode(TOY, pairs)
    except ScenarioError as exc:
        assert exc.problems
