"""The load-balancing page end to end: a compare preset in real Chromium, a server removed through the command
form, the moved-key figures shown for every hashing lane."""

import re

import pytest

from .steering import command_form, play_until

pytestmark = pytest.mark.browser

FRAME = "JSON.parse(document.getElementById('frame-data').dataset.frame)"


def wait_for_frame(page, condition, timeout=15000):
    page.wait_for_function(f"(() => {{ const f = {FRAME}; return {condition}; }})()", timeout=timeout)
    return page.evaluate(FRAME)


def test_a_compare_run_shows_the_keys_each_scheme_moves_when_a_server_leaves(page, live_server_url):
    page.goto(f"{live_server_url}/patterns/load-balancing/?preset=server-leaves")
    page.get_by_role("button", name="Start", exact=True).click()
    play_until(page, "f.run && f.t > 0.5")
    for lane in ("ring_hash-3", "ring_hash-100", "maglev", "rendezvous"):  # one lane each, side by side
        page.wait_for_selector(f"figure[data-diagram=ring] svg[data-lane='{lane}']")
    page.wait_for_selector("figure[data-diagram=topology] .diagram-view svg")

    form = command_form(page, "remove_server")
    form.locator("select[name=server]").select_option("s5")
    form.get_by_role("button").click()
    acted = wait_for_frame(page, "f.link.includes('server=s5')")
    assert re.search(r"do=[0-9.]+:remove_server:server=s5", acted["link"])

    metrics = page.locator("#metrics")
    page.wait_for_function("document.getElementById('metrics').innerText.includes('at remove s5')")
    text = metrics.inner_text()
    for lane in ("ring_hash-3", "ring_hash-100", "maglev", "rendezvous"):
        assert re.search(rf"{re.escape(lane)}: keys moved\s+at remove s5: moved [0-9.]+% of keys; ideal [0-9.]+%", text)
    caption = page.locator("figure[data-diagram=ring] .diagram-caption").inner_text()
    assert "at remove s5" in caption or "remove s5" in caption
    page.get_by_role("button", name="Pause").click()
    wait_for_frame(page, "!f.playing")
