"""A preset's story on its page, in real Chromium: Next from the first chapter to the last in every pattern (each
text shown, the chapter's nodes highlighted in the diagram), Back to the previous chapter, a live action mid-story
shows the off-script notice while the later scripted steps still happen, and a Share link taken mid-story opens at
the same story."""

import pytest

from . import test_pattern_pages as pages
from .steering import play_until
from .test_pattern_pages import open_node, start, wait_for_frame

screen = pages.screen  # the 1366x800 page that records console errors

pytestmark = pytest.mark.browser


def chapter(page, index):
    """Wait until the run is paused at (or has reached) chapter ``index``; the frame."""
    return wait_for_frame(page, f"f.story && f.story.current === {index}")


def test_following_a_story_with_next_from_start_to_end_and_back(live_server_url, screen):
    page = screen
    page.goto(f"{live_server_url}/patterns/raft/?preset=initial-election")
    panel = page.get_by_role("region", name="Story:")
    assert "Chapter 1 of 4" in panel.inner_text()  # the first chapter is at 0 s: shown before Start
    nxt = panel.get_by_role("button", name="Next", exact=True)
    nxt.click()  # before a run, Next starts it; it pauses at the first chapter
    f = wait_for_frame(page, "f.run && f.story.current === 0 && !f.playing", timeout=60000)  # a worker starts
    texts = [f["story"]["text"]]
    for index in range(1, f["story"]["count"]):
        nxt.focus()
        page.keyboard.press("Enter")  # keyboard usable
        f = chapter(page, index)
        texts.append(f["story"]["text"])
        page.wait_for_function("t => document.getElementById('story-text').textContent === t", arg=f["story"]["text"])
        assert panel.get_by_text(f"Chapter {index + 1} of {f['story']['count']}").is_visible()
        if index == 1:  # the candidate is s1: its node in the cluster diagram carries the story's highlight
            assert f["story"]["highlight"]["cluster"] == ["s1"]
            page.locator("figure[data-diagram=cluster] .pg-story").first.wait_for()
    assert len(set(texts)) == len(texts) == 4
    page.wait_for_function("document.getElementById('story-next').disabled")  # the end of the story
    page.get_by_role("button", name="Back", exact=True).click()
    f = wait_for_frame(page, "f.story.current === 2 && !f.playing")
    assert f["t"] < 1.0
    assert page.errors == []


# slug, preset, speed: one story per pattern besides Raft's above, each with chapters that highlight nodes
STORIES = [
    ("circuit-breaker", "guide", "5"),
    ("load-balancing", "uneven-servers", "2"),
    ("messaging", "poison-dlq", "5"),
]


@pytest.mark.parametrize("slug, preset, speed", STORIES, ids=[s[0] for s in STORIES])
def test_following_each_patterns_story_with_next_to_its_end(live_server_url, screen, slug, preset, speed):
    page = screen
    page.goto(f"{live_server_url}/patterns/{slug}/?preset={preset}")
    nxt = page.locator("#story-next")
    nxt.click()  # starts the run, which pauses at the first chapter
    f = wait_for_frame(page, "f.run && f.story.current !== null && !f.playing", timeout=60000)
    page.locator("select[name=speed]").select_option(speed)
    shown = []
    while True:
        story = f["story"]
        index = story["current"]
        page.wait_for_function("t => document.getElementById('story-text').textContent === t", arg=story["text"])
        assert page.locator("#story-count").inner_text() == f"Chapter {index + 1} of {story['count']}"
        shown.append(story["text"])
        for name in story["highlight"]:  # the chapter's nodes carry the story's outline in its diagram
            page.locator(f"figure[data-diagram={name}] .pg-story").first.wait_for()
        if story["next"] is None:
            break
        nxt.click()  # on to the next chapter that pauses (or to the end of the story)
        f = wait_for_frame(page, f"f.story.current > {index} && (!f.playing || f.story.next === null)", timeout=60000)
    chapters = f["story"]["chapters"]
    assert all(c["t"] is not None for c in chapters)  # every chapter reached, in order
    assert [c["t"] for c in chapters] == sorted(c["t"] for c in chapters)
    pausing = [c["text"] for c in chapters if c["pause"]]
    assert [text for text in shown if text in pausing] == pausing and len(set(shown)) == len(shown)
    assert len(shown) >= 3
    assert nxt.is_disabled()
    assert page.errors == []


def test_perturbing_mid_story_shows_the_notice_and_share_opens_the_same_story(live_server_url, screen, browser):
    page = screen
    page.goto(f"{live_server_url}/patterns/raft/?preset=leader-crash")
    assert not page.locator("#story-notice").is_visible()
    start(page)
    f = wait_for_frame(page, "f.story.current === 0 && !f.playing")
    assert "preset=leader-crash" in f["link"] and "do=" not in f["link"]  # Start kept the preset, no copied steps
    box = open_node(page, "cluster", "s3")
    box.get_by_role("button", name="Time out", exact=True).click()
    f = wait_for_frame(page, "f.story.off_script")
    notice = page.locator("#story-notice")
    notice.wait_for()
    assert "You changed the run" in notice.inner_text()
    # The scripted crash of s1 (at 2 s) still happens after the live step.
    assert "preset=leader-crash" in f["link"] and ":timeout:server=s3" in f["link"]
    play_until(page, "f.t > 2.1")
    page.get_by_role("button", name="Pause", exact=True).click()
    cluster = page.locator("figure[data-diagram=cluster]")
    page.wait_for_function("el => el.innerText.includes('crashed')", arg=cluster.element_handle())
    assert notice.is_visible()
    page.get_by_role("button", name="Share", exact=True).click()
    link = page.locator("#share-output").input_value()

    other = browser.new_context(viewport={"width": 1366, "height": 800}, bypass_csp=True).new_page()
    other.goto(link)
    assert other.locator("#preset-select").input_value() == "leader-crash"
    assert other.get_by_role("region", name="Story:").is_visible()
    assert other.locator("#story-title").inner_text() == page.locator("#story-title").inner_text()
    other.context.close()
    assert page.errors == []
