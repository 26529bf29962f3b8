"""The run's script on the timeline, in real Chromium at 1366x800: the preset's steps and the story's chapters are
labelled markers on the slider's track (no new row: the page still fits one screen); a marker seeks just before
its step; a step removed from the timeline never happens; and acting after a seek back keeps the later steps
unless the learner chooses to cut them, which the timeline shows first."""

import pytest

from . import test_pattern_pages as pages
from .steering import play_until
from .test_pattern_pages import in_viewport, open_node, start, wait_for_frame

screen = pages.screen  # the 1366x800 page that records console errors

pytestmark = pytest.mark.browser

CRASH = "Step 1: 2 s: Crash (server=s1)"  # the leader-crash preset's steps, as their markers are named
RESTART = "Step 2: 4 s: Restart (server=s1)"


def marker(page, name):
    return page.get_by_role("button", name=name, exact=True)


def past_the_script(page):
    """Start leader-crash and play it through its story's pauses to its last chapter, past its restart of s1 at 4 s
    (the story pauses the run there)."""
    start(page)
    page.locator("select[name=speed]").select_option("5")
    return play_until(page, "f.t > 4 && f.story.next === null && !f.playing", timeout=40)


def test_the_script_and_the_chapters_are_markers_on_the_track_and_a_marker_seeks_just_before_it(
    live_server_url, screen
):
    page = screen
    page.goto(f"{live_server_url}/patterns/raft/?preset=leader-crash")
    track = page.locator(".track").bounding_box()
    for name in (CRASH, RESTART):  # before Start already: the preset's script
        mark = marker(page, name)
        box = mark.bounding_box()
        assert (
            in_viewport(page, mark)
            and track["x"] <= box["x"]
            and box["x"] + box["width"] <= track["x"] + track["width"]
        )
        assert track["y"] <= box["y"] and box["y"] + box["height"] <= track["y"] + track["height"] + 0.5  # on it
    crash = marker(page, CRASH).bounding_box()
    restart = marker(page, RESTART).bounding_box()
    assert restart["x"] > crash["x"] + 100  # 4 s twice as far along as 2 s
    marker(page, CRASH).focus()  # keyboard reachable; its label shows as a tooltip, in legible type
    tip = marker(page, CRASH).evaluate(
        "el => { const s = getComputedStyle(el, '::after'); return [s.display, s.fontSize, s.content]; }"
    )
    assert tip[0] == "block" and float(tip[1][:-2]) >= 12 and "Crash (server=s1)" in tip[2]

    f = past_the_script(page)
    chapters = page.locator("#timeline-chapters .mark:not([hidden])")
    assert chapters.count() == f["story"]["count"]  # every chapter reached, with its own look
    assert chapters.first.get_attribute("aria-label").startswith("Chapter 1, reached at")
    assert page.locator("#timeline-steps .mark").count() == 2
    marker(page, CRASH).click()
    f = wait_for_frame(page, "f.t === 1.999")  # just before the crash: s1 is still up
    assert "crashed" not in page.locator("figure[data-diagram=cluster]").inner_text()
    assert page.locator("#cut-later-choice").is_visible()  # steps are still to come
    second = f["story"]["chapters"][1]  # "Entry 2 is committed", reached at an event's time
    chapters.nth(1).click()
    wait_for_frame(page, f"f.story.current === 0 && Math.abs(f.t - {second['t'] - 0.001}) < 0.0006")
    # Still one screen: the markers sit on the track, not in a row of their own.
    assert page.evaluate("window.scrollY") == 0
    for figure in page.locator(".diagrams.focus figure.diagram").all():
        assert in_viewport(page, figure)
    assert page.errors == []


def test_a_scripted_crash_removed_from_the_timeline_never_happens(live_server_url, screen):
    page = screen
    page.goto(f"{live_server_url}/patterns/raft/?preset=leader-crash")
    start(page)
    wait_for_frame(page, "f.story.current === 0 && !f.playing")
    marker(page, CRASH).focus()
    page.keyboard.press("Delete")  # removes the step its marker stands for
    f = wait_for_frame(page, "f.link.includes('skip=2:crash:server=s1')")  # the link keeps the preset, less a step
    assert "preset=leader-crash" in f["link"] and "do=" not in f["link"]
    page.locator("#timeline-steps .mark").first.wait_for()
    assert page.locator("#timeline-steps .mark").count() == 1
    assert page.locator("#run-script li.step").count() == 1
    page.wait_for_function("document.activeElement.matches('#timeline-steps .mark')")  # the keyboard stays there
    page.locator("select[name=speed]").select_option("5")
    play_until(page, "f.t > 3", timeout=40)
    cluster = page.locator("figure[data-diagram=cluster]")
    assert "crashed" not in cluster.inner_text()  # s1 never crashes: the run changed
    up = page.locator("#metrics tr", has=page.locator("th", has_text="Up")).locator("td")
    assert up.inner_text() == "5 of 5"
    assert page.locator("#story-notice").is_visible()  # the story's remaining steps may not happen as told
    # A click on a marker goes just before its step and offers, in the run bar, to remove it.
    marker(page, "Step 1: 4 s: Restart (server=s1)").click()
    wait_for_frame(page, "f.t === 3.999")
    page.locator(".timebar").get_by_role("button", name="Remove step 1: 4 s: Restart (server=s1)").click()
    wait_for_frame(page, "f.link.includes('skip=4:restart:server=s1')")
    page.locator("#timeline-steps .mark").first.wait_for(state="detached")
    assert not page.locator("#remove-step").is_visible()
    assert page.errors == []


def test_acting_after_a_seek_back_keeps_the_later_steps_unless_cut(live_server_url, screen):
    page = screen
    page.goto(f"{live_server_url}/patterns/raft/?preset=leader-crash")
    past_the_script(page)
    choice = page.locator("#cut-later-choice")
    assert not choice.is_visible()  # no step is still to come
    marker(page, CRASH).click()
    wait_for_frame(page, "f.t === 1.999")
    choice.wait_for()
    box = open_node(page, "cluster", "s3")
    box.get_by_role("button", name="Time out", exact=True).click()  # the default: the later steps stay
    f = wait_for_frame(page, "f.link.includes(':timeout:server=s3')")
    assert "preset=leader-crash" in f["link"] and page.locator("#timeline-steps .mark").count() == 3
    assert page.locator("#timeline-steps .mark.live").count() == 1  # the live step has its own look

    page.get_by_label("Cut later steps").check()  # the timeline strikes out what a perturbation would cut
    assert page.locator("#timeline-steps .mark.cut").count() == 2
    assert page.locator("#run-script li.step.cut").count() == 2
    box = open_node(page, "cluster", "s4")
    box.get_by_role("button", name="Time out", exact=True).click()
    f = wait_for_frame(page, "f.link.includes(':timeout:server=s4')")
    # the link keeps the preset (and its story) and says which of its steps were cut
    assert "preset=leader-crash" in f["link"] and "do=2:crash" not in f["link"]
    assert "skip=2:crash:server=s1" in f["link"] and "skip=4:restart:server=s1" in f["link"]
    page.wait_for_function("document.querySelectorAll('#timeline-steps .mark').length === 2")
    choice.wait_for(state="hidden")  # nothing left to cut
    assert not page.get_by_label("Cut later steps").is_checked()
    # A row of the script list (under the workspace) removes its step too.
    page.locator("#run-script").get_by_role("button", name="Remove step 2: 1.999 s: Time out (server=s4)").click()
    f = wait_for_frame(page, "!f.link.includes(':timeout:server=s4')")
    assert ":timeout:server=s3" in f["link"] and page.locator("#timeline-steps .mark").count() == 1
    assert page.errors == []
