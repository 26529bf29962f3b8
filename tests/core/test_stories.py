"""Stories: every chapter of every preset's story is reached and says what happened; the checker and the tracker
catch a story that does not (a wrong count, a wrong leader, a chapter never reached, a run perturbed live)."""

import json
import pickle
from dataclasses import replace
from io import StringIO
from urllib.parse import parse_qsl

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from patterns.core.player import Player
from patterns.core.registry import all_patterns, get_pattern
from patterns.core.scenario import decode, encode
from patterns.core.story import (
    OFF_SCRIPT,
    Chapter,
    Match,
    StoryTracker,
    check,
    count,
    frame,
    latest,
    tracker_for,
    where,
    with_chapters,
)

from .toy import LIMITS, TOY

STORIED = [(p, preset) for p in all_patterns() if p.slug != "toy" for preset in p.presets if preset.chapters]
MARGIN = 30.0  # virtual seconds played after the last time-pinned chapter, for the chapters pinned to events


def play(pattern, scenario, until, limits=LIMITS):
    player = Player(pattern, scenario, limits)
    player.advance_to(until)
    return player, player.drain()


@pytest.mark.parametrize(("pattern", "preset"), STORIED, ids=[f"{p.slug}:{s.slug}" for p, s in STORIED])
def test_every_chapter_is_reached_and_every_claim_is_true(pattern, preset):
    until = max(c.at or 0.0 for c in preset.chapters) + MARGIN
    player, events = play(pattern, decode(pattern, [("preset", preset.slug)]), until, settings.PLAYGROUND)
    assert check(preset, events, player.now) == []
    tracker = StoryTracker(preset)
    tracker.feed(events, player.now)
    diagrams = {d.name: d for d in pattern.diagrams}
    for chapter, reached in zip(preset.chapters, tracker.reached, strict=True):
        player.seek(reached.t)  # what the page shows when it stops at this chapter
        for name, ids in chapter.highlight:
            drawing = diagrams[name].draw(player.engine)
            assert all(i in drawing.mermaid + drawing.svg for i in ids), (chapter.text[:40], name, ids)


@pytest.mark.parametrize("pattern", [p for p in all_patterns() if p.slug != "toy"], ids=lambda p: p.slug)
def test_every_pattern_tells_four_stories_whose_chapters_all_claim_something(pattern):
    stories = [p for p in pattern.presets if p.chapters]
    assert len(stories) >= 4
    diagrams = {d.name for d in pattern.diagrams}
    for preset in stories:
        assert len(preset.chapters) >= 2, preset.slug
        for chapter in preset.chapters:
            assert chapter.claims, f"{preset.slug}: {chapter.text[:40]!r} claims nothing that a test could check"
            names = [name for name, _ids in chapter.highlight]
            assert set(names) <= diagrams and len(set(names)) == len(names), preset.slug
        assert pickle.loads(pickle.dumps(preset)) == preset


# -- the checker and the tracker, on the toy pattern ---------------------------------------------------------------
BUMPED = where("echo", node=1)
TRUE_STORY = (
    Chapter("Ticks begin.", at=0.5, claims=(count(Match("tick"), ">", 5),)),
    Chapter("Node 1 is bumped by 5.", after=BUMPED, claims=(count(where("command", command="bump"), "==", 1),)),
    Chapter("Node 2 ticks next.", after=where("tick", node=2), claims=(latest(Match("tick"), node=2),)),
    Chapter("Two seconds in.", at=2.0, claims=(count(Match("tick"), ">", 10, since_previous=True),), pause=False),
)
STORY = replace(TOY, presets=with_chapters(TOY.presets, {"busy": TRUE_STORY}))
BUSY = STORY.preset("busy")


def busy_run(until=3.0, scenario=None):
    return play(STORY, scenario or decode(STORY, [("preset", "busy")]), until)


def test_a_true_story_passes_and_its_chapters_are_reached_where_the_events_say():
    player, events = busy_run()
    assert check(BUSY, events, player.now) == []
    tracker = StoryTracker(BUSY)
    assert tracker.feed(events, player.now) == [0, 1, 2, 3]
    echo = next(e for e in events if e.type == "echo")
    tick = next(e for e in events if e.seq > echo.seq and e.type == "tick" and e.fields["node"] == 2)
    assert [r.t for r in tracker.reached] == [0.5, echo.t, tick.t, 2.0]


@pytest.mark.parametrize(
    ("wrong", "problem"),
    [
        (Chapter("Seven bumps.", at=1.5, claims=(count(where("command", command="bump"), "==", 7),)), "false claim"),
        (Chapter("Node 0 bumped.", at=1.5, claims=(latest(where("echo"), node=0),)), "false claim"),
        (Chapter("Node 9 ticks.", after=where("tick", node=9), claims=(count(Match("tick")),)), "not reached"),
        (Chapter("Much later.", at=99.0, claims=(count(Match("tick")),)), "not reached by 3 s"),
    ],
)
def test_a_wrong_chapter_fails_the_check(wrong, problem):
    preset = replace(BUSY, chapters=(*TRUE_STORY[:2], wrong))
    player, events = busy_run()
    problems = check(preset, events, player.now)
    assert len(problems) == 1 and problem in problems[0] and "chapter 3" in problems[0], problems


def test_claims_speak_only_of_the_events_before_their_chapter():
    """A count that is true at the end of the run but not yet when the chapter is reached is false."""
    player, events = busy_run()
    early = replace(BUSY, chapters=(Chapter("Bumped already.", at=0.5, claims=(count(BUMPED, "==", 1),)),))
    assert "false claim" in check(early, events, player.now)[0]


def test_the_tracker_is_fed_piece_by_piece_as_a_live_run_plays():
    player = Player(STORY, decode(STORY, [("preset", "busy")]), LIMITS)
    tracker = tracker_for(STORY, player.scenario)
    reached = []
    for step in range(1, 31):
        player.advance_to(step / 10)
        reached += tracker.feed(player.drain(), player.now)
    assert reached == [0, 1, 2, 3] and not tracker.off_script
    shown = frame(tracker)
    assert shown["current"] == 3 and shown["next"] is None and shown["text"] == "Two seconds in."
    assert [c["t"] for c in shown["chapters"]] == [r.t for r in tracker.reached]
    assert shown["notice"] == "" and shown["count"] == 4


def test_a_live_perturbation_takes_the_run_off_the_script_but_the_scripted_ones_do_not():
    player = Player(STORY, decode(STORY, [("preset", "busy")]), LIMITS)
    tracker = tracker_for(STORY, player.scenario)
    player.advance_to(1.2)  # past the scripted bump at 1 s
    tracker.feed(player.drain(), player.now)
    assert not tracker.off_script and tracker.current == 2
    player.act("pause", (("node", 2), ("on", True)))
    player.advance_to(2.5)
    tracker.feed(player.drain(), player.now)
    assert tracker.off_script and frame(tracker)["notice"] == OFF_SCRIPT
    assert tracker_for(STORY, player.scenario).off_script  # the link it leaves behind says so too


def test_a_seek_back_forgets_the_chapters_after_it():
    player = Player(STORY, decode(STORY, [("preset", "busy")]), LIMITS)
    tracker = tracker_for(STORY, player.scenario)
    player.advance_to(3.0)
    tracker.feed(player.drain(), player.now)
    player.seek(0.7)
    tracker.rewind(player.now, player.last_seq)
    assert tracker.current == 0
    player.drain()
    player.advance_to(3.0)
    tracker.feed(player.drain(), player.now)
    assert tracker.current == 3


def test_a_story_for_a_preset_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match="nope"):
        with_chapters(TOY.presets, {"nope": TRUE_STORY})
    with pytest.raises(ValueError, match="exactly one"):
        Chapter("Both.", at=1.0, after=Match("tick"))


# -- links keep the preset, so that a shared link opens the same story ---------------------------------------------
def test_a_preset_link_keeps_its_slug_through_encode_and_decode():
    scenario = decode(STORY, [("preset", "busy")])
    assert scenario.preset == "busy" and encode(STORY, scenario) == "preset=busy"
    assert decode(STORY, parse_qsl("preset=busy&rate=7")).preset == "busy"


def test_a_perturbed_preset_link_is_the_preset_and_what_was_added():
    player = Player(STORY, decode(STORY, [("preset", "busy")]), LIMITS)
    player.advance_to(2.0)
    player.act("pause", (("node", 2), ("on", True)))
    query = encode(STORY, player.scenario)
    assert query == "preset=busy&do=2:pause:node=2,on=true"
    assert decode(STORY, parse_qsl(query)) == player.scenario


def test_a_preset_whose_scripted_step_was_cut_keeps_its_story_in_the_link():
    scenario = decode(STORY, [("preset", "busy"), ("seed", "4")])
    scenario = replace(scenario, script=tuple(a for a in scenario.script if a.t <= 0.5))
    assert scenario.preset == "busy" and scenario.script == ()
    query = encode(STORY, scenario)
    assert query.startswith("preset=busy&skip=") and decode(STORY, parse_qsl(query)) == scenario
    assert tracker_for(STORY, scenario).off_script  # the story knows the run is not the one it tells


def test_every_real_preset_link_round_trips_with_its_story():
    for pattern, preset in STORIED:
        scenario = decode(pattern, [("preset", preset.slug)])
        assert encode(pattern, scenario) == f"preset={preset.slug}"


# -- the command line ------------------------------------------------------------------------------------------------
def story_cli(*args):
    out = StringIO()
    call_command("simulate", *args, "--format", "story", stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()


def test_the_cli_prints_each_chapter_with_the_time_it_was_reached():
    lines = story_cli("raft", "--preset", "leader-crash", "--until", "3")
    assert lines[0] == "Leader crash and re-election (leader-crash): 6 chapters"
    assert lines[3].startswith("  3.     2.000 s  At 2 s s1 crashes.")
    assert lines[6].startswith("  6. not reached  At 4 s s1 restarts")
    assert OFF_SCRIPT not in lines


def test_the_cli_says_when_the_run_left_the_script():
    lines = story_cli("raft", "--preset", "leader-crash", "--until", "3", "--do", "2.5 crash server=s2")
    assert lines[-1] == OFF_SCRIPT


def test_the_cli_refuses_a_story_format_without_a_story():
    with pytest.raises(CommandError, match="leader-crash"):
        story_cli("raft", "--preset", "split-vote")


def test_describe_includes_the_stories():
    out = StringIO()
    call_command("simulate", "raft", "--describe", stdout=out)
    presets = {p["slug"]: p for p in json.loads(out.getvalue())["presets"]}
    chapters = presets["leader-crash"]["chapters"]
    assert len(chapters) == len(get_pattern("raft").preset("leader-crash").chapters)
    assert chapters[2]["when"] == "at 2 s" and chapters[2]["claims"]
    assert "chapters" not in presets["split-vote"]
