"""The circuit-breaker page end to end: daphne, the websocket, htmx, Mermaid and the pattern, in real Chromium."""

import json
from urllib.parse import urlsplit

import pytest

from patterns.core.registry import get_pattern
from patterns.core.runs import scenario_of

from .steering import command_form

pytestmark = pytest.mark.browser

FRAME = "JSON.parse(document.getElementById('frame-data').dataset.frame)"
ACTIVE_STATE = "[...document.querySelectorAll('figure[data-diagram=state] svg .pg-active')].map(e => e.textContent)"


def frame(page):
    return page.evaluate(FRAME)


def wait_for_frame(page, condition, timeout=15000):
    page.wait_for_function(f"(() => {{ const f = {FRAME}; return {condition}; }})()", timeout=timeout)
    return frame(page)


def test_start_break_share_and_replay(page, live_server_url):
    page.goto(f"{live_server_url}/patterns/circuit-breaker/?seed=5")
    page.get_by_role("button", name="Start", exact=True).click()
    wait_for_frame(page, "f.run && f.t > 0.5")
    page.wait_for_function(f"{ACTIVE_STATE}.some(text => text.includes('CLOSED'))")

    command_form(page, "outage_on").get_by_role("button").click()
    page.wait_for_function(f"{ACTIVE_STATE}.some(text => text.includes('OPEN'))", timeout=15000)
    opened = frame(page)
    assert ":outage_on" in opened["link"]
    assert "OPEN" in page.locator("#metrics").inner_text()

    page.get_by_role("button", name="Share").click()
    link = page.locator("#share-output").input_value()
    assert link == live_server_url + opened["link"] and "seed=5" in link

    other = page.context.new_page()
    other.goto(link)
    assert other.locator("input[name=seed]").input_value() == "5"
    assert [i.get_attribute("value") for i in other.locator("input[name=do]").all()] == [
        part.split("=", 1)[1] for part in urlsplit(link).query.split("&") if part.startswith("do=")
    ]
    other.get_by_role("button", name="Start", exact=True).click()
    other.wait_for_function(f"{ACTIVE_STATE}.some(text => text.includes('OPEN'))", timeout=15000)
    replayed = frame(other)
    assert replayed["run"] != opened["run"] and replayed["link"] == opened["link"]
    other.get_by_role("button", name="Pause").click()
    wait_for_frame(other, "!f.playing")


def test_replayed_link_gives_the_same_events_as_the_run(page, live_server_url):
    page.goto(f"{live_server_url}/patterns/circuit-breaker/?seed=9")
    page.get_by_role("button", name="Start", exact=True).click()
    wait_for_frame(page, "f.run && f.t > 0.3")
    command_form(page, "outage_on").get_by_role("button").click()
    acted = wait_for_frame(page, "f.link.includes('outage_on')")
    page.get_by_role("button", name="Pause").click()
    paused = wait_for_frame(page, "!f.playing")
    shown = [row.get_attribute("data-seq") for row in page.locator("#event-log li[data-seq]").all()]
    query = urlsplit(acted["link"]).query
    body = page.request.get(f"{live_server_url}/patterns/circuit-breaker/events.jsonl?{query}&until={paused['t']}")
    events = [json.loads(line) for line in body.text().splitlines()]
    assert events[-1]["seq"] == paused["last_seq"]
    assert [str(e["seq"]) for e in events[::-1][: len(shown)]] == shown


def test_keyboard_alone_starts_and_pauses_a_run(page, live_server_url):
    page.goto(f"{live_server_url}/patterns/circuit-breaker/")
    page.get_by_role("button", name="Start", exact=True).focus()
    page.keyboard.press("Enter")
    wait_for_frame(page, "f.run && f.playing")
    page.get_by_role("button", name="Pause").focus()
    page.keyboard.press("Space")
    wait_for_frame(page, "!f.playing")


def test_a_hostile_link_shows_an_error_not_a_traceback(page, live_server_url):
    response = page.goto(
        f"{live_server_url}/patterns/circuit-breaker/?seed=-1&do=1e999:nope&%3Cimg%20src=x%20onerror=alert(1)%3E=1"
    )
    assert response.status == 400
    text = page.locator("#messages").inner_text()
    assert "seed: expected a whole number" in text and "Traceback" not in page.content()
    assert page.locator("img[src=x]").count() == 0
    page.get_by_role("button", name="Start", exact=True).click()  # the defaults still run
    wait_for_frame(page, "f.run !== null")


def test_a_preset_with_a_script_starts_with_its_script(page, live_server_url):
    pattern = get_pattern("circuit-breaker")
    scripted = scenario_of(pattern, "preset=flaky").script
    assert len(scripted) >= 2
    page.goto(f"{live_server_url}/patterns/circuit-breaker/?preset=flaky")
    page.get_by_role("button", name="Start", exact=True).click()
    started = wait_for_frame(page, "f.run !== null")
    query = urlsplit(started["link"]).query
    assert "preset=flaky" in query.split("&")  # the run keeps its preset (and so its story) ...
    assert scenario_of(pattern, query).script == scripted  # ... and plays the preset's script


def test_the_page_says_when_events_went_unlisted_and_announces_the_state(page, live_server_url):
    page.goto(f"{live_server_url}/patterns/circuit-breaker/?request_rate=200")
    page.get_by_role("button", name="Start", exact=True).click()
    wait_for_frame(page, "f.run && f.playing")
    assert page.locator("#run-state").inner_text() == "Playing"
    page.locator("select[name=speed]").select_option("10")
    page.wait_for_function("/^\\d+ events went by/.test(document.getElementById('log-gap').textContent)")
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function("document.getElementById('run-state').textContent === 'Paused'")
    page.get_by_role("button", name="Rewind").click()
    wait_for_frame(page, "f.t === 0")
    assert page.locator("#log-gap").inner_text() == ""


def test_the_home_page_draws_each_patterns_diagram(page, live_server_url):
    page.goto(live_server_url)
    page.wait_for_selector("figure[data-diagram^=circuit-breaker-] .diagram-view svg")
    page.get_by_role("link", name="Open the circuit breaker playground").click()
    page.get_by_role("button", name="Start", exact=True).wait_for()
