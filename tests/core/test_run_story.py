"""A live run tells its preset's story: it pauses at chapters that pause, its frames carry the chapter, a seek
back forgets the chapters after it, a takeover's replay finds them again, and a live action leaves the script."""

import json
import re
from html import unescape

import pytest

from patterns.core.registry import get_pattern
from patterns.core.runs import LiveRun


def story_preset(slug):
    pattern = get_pattern(slug)
    return pattern, next(p for p in pattern.presets if p.chapters)


def play_until_paused(run, limit=400):
    run.speed = 20.0  # a slice of 0.04 virtual s: the pause lands within it
    for _ in range(limit):
        run.advance(0.5, 0.2)
        if not run.playing:
            return
    raise AssertionError("the run never paused")


def frame_story(run):
    html = run.render(full=True)
    data = json.loads(unescape(re.search(r'data-frame="([^"]*)"', html).group(1)))
    return data["story"]


@pytest.mark.parametrize("slug", ["raft", "circuit-breaker", "load-balancing", "messaging"])
def test_the_run_pauses_at_each_chapter_that_pauses_and_its_frame_says_which(slug):
    _pattern, preset = story_preset(slug)
    state = {"pattern": slug, "query": f"preset={preset.slug}", "client": "c", "t": 0.0, "playing": True}
    run = LiveRun.resume("r1", {**state, "speed": 1.0, "frame": 0})  # as a worker starts a run
    pausing = [index for index, chapter in enumerate(preset.chapters) if chapter.pause][:3]
    assert len(pausing) >= 2
    for index in pausing:
        play_until_paused(run)
        story = frame_story(run)
        chapter = preset.chapters[index]
        assert story["current"] == index and story["text"] == chapter.text and not story["off_script"]
        assert story["highlight"] == {name: list(ids) for name, ids in chapter.highlight}
        assert run.player.now - story["chapters"][index]["t"] < 0.05  # paused right at it
        run.apply({"action": "play"})


def test_a_seek_back_forgets_the_later_chapters_and_the_replay_finds_them_again():
    pattern, preset = story_preset("raft")
    run = LiveRun("r1", pattern, f"preset={preset.slug}", "client")
    for _ in range(3):
        play_until_paused(run)
        run.apply({"action": "play"})
    play_until_paused(run)
    reached = list(run.story.reached)
    back_to = reached[1].t
    run.apply({"action": "seek", "t": back_to})
    while run.replay_to is not None:
        run.advance(0.5, 0.05)
    assert run.story.current == 1 and run.story.reached == reached[:2]
    run.apply({"action": "play"})
    play_until_paused(run)
    assert run.story.reached == reached[:3]  # the same chapter at the same time, not a second copy

    taken_over = LiveRun.resume("r1", run.state())  # another worker replays to where this one is
    while taken_over.replay_to is not None:
        taken_over.advance(0.5, 0.05)
    assert taken_over.story.reached == run.story.reached and taken_over.playing == run.playing


def test_a_live_action_takes_the_run_off_the_script_and_a_bad_one_does_not():
    pattern, preset = story_preset("circuit-breaker")
    run = LiveRun("r1", pattern, f"preset={preset.slug}", "client")
    play_until_paused(run)
    assert run.apply({"action": "command", "command": "no-such-command"})  # refused, the story unchanged
    assert not frame_story(run)["off_script"]
    command = pattern.commands[0]
    args = {a.name: a.default for a in command.args}
    problem = run.apply({"action": "command", "command": command.name, "args": args})
    story = frame_story(run)
    assert problem or story["off_script"]
    if not problem:
        assert "changed the run" in story["notice"]


def test_removing_a_scripted_step_leaves_the_script_and_the_run_never_takes_it():
    pattern = get_pattern("raft")
    run = LiveRun("r1", pattern, "preset=leader-crash", "client")  # crash s1 at 2 s, restart at 4 s
    run.apply({"action": "seek", "t": 3.0})  # past the time reached: the run simulates on to it
    assert run.replay_to == 3.0
    crashes = []
    while run.replay_to is not None:
        run.advance(0.5, 0.05)
        crashes += [e for e in run.player.recent if e.type == "raft.crash"]
    assert run.player.now == 3.0 and crashes and not frame_story(run)["off_script"]
    assert run.apply({"action": "remove", "index": 0, "step": "2:restart:server=s1"})  # not that step: refused
    assert run.apply({"action": "remove", "index": 0, "step": "2:crash:server=s1"}) is None
    assert run.replay_to == 3.0 and run.player.now < 2.0  # back before the crash, to re-simulate without it
    seen = []
    while run.replay_to is not None:
        run.advance(0.5, 0.05)
        seen += list(run.player.recent)
    assert run.player.now == 3.0 and not [e for e in seen if e.type == "raft.crash"]
    assert [a.text(pattern) for a in run.player.scenario.script] == ["4:restart:server=s1"]
    assert frame_story(run)["off_script"] and "changed the run" in frame_story(run)["notice"]
