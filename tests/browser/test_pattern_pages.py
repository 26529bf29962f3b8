"""Every pattern page as a learner meets it, in real Chromium at 1366x800: the first screen holds the main
diagrams, the run controls and the preset's story without scrolling; a node clicked in the diagram offers its
actions and one of them changes its state; a refused action's error sits by its control and goes with the next
action; Escape closes the box; a preset perturbed live keeps its later steps; and no page logs a console error."""

import pytest

from .steering import command_form, node_box

pytestmark = pytest.mark.browser

FRAME = "JSON.parse(document.getElementById('frame-data').dataset.frame)"

# slug, preset, diagram, node id, action button, text the node's box or picture shows afterwards
STEERING = [
    ("raft", "leader-crash", "cluster", "s2", "Crash", "crashed"),
    ("load-balancing", "slow-server", "topology", "l0_s2", "Fail a server", "failing 100%"),
    ("messaging", "fair-dispatch", "topology", "nW1", "Crash", "crashed"),
    ("circuit-breaker", "flaky", "cascade", "svcS", "Slow mode", "slow"),
]


@pytest.fixture
def screen(browser):
    """A 1366x800 page that records console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1366, "height": 800}, bypass_csp=True)  # for wait_for_function
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def wait_for_frame(page, condition, timeout=30000):
    page.wait_for_function(f"(() => {{ const f = {FRAME}; return {condition}; }})()", timeout=timeout)
    return page.evaluate(FRAME)


def in_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["x"] >= 0 and box["y"] + box["height"] <= 800 + 0.5


def start(page):
    page.get_by_role("button", name="Start", exact=True).click()
    wait_for_frame(page, "f.run")


def open_node(page, diagram, node):
    figure = page.locator(f"figure[data-diagram={diagram}]")
    target = figure.locator(f"[aria-label='Details of {node}']").first
    target.wait_for()
    target.click()
    box = node_box(page)
    box.wait_for(state="visible")
    return box


@pytest.mark.parametrize("slug, preset, diagram, node, action, shown", STEERING, ids=[s[0] for s in STEERING])
def test_first_screen_and_steering_by_the_diagram(live_server_url, screen, slug, preset, diagram, node, action, shown):
    page = screen
    page.goto(f"{live_server_url}/patterns/{slug}/?preset={preset}")
    # One screen: the main diagrams, the run controls and the preset's story, with nothing to scroll to.
    story = page.locator("#story-text, #preset-story:not([hidden])").first  # a chapter, or the description
    assert page.locator("#preset-select").input_value() == preset
    assert len(story.inner_text()) > 40
    controls = [page.get_by_role("button", name=n, exact=True) for n in ("Start", "Pause", "Resume", "Step", "Share")]
    for element in (*controls, page.locator("select[name=speed]"), page.locator("#timeline"), story):
        assert in_viewport(page, element), element
    for figure in page.locator(".diagrams.focus figure.diagram").all():
        assert in_viewport(page, figure)
    assert page.evaluate("window.scrollY") == 0

    # An action before Start is refused beside the control that sent it; Start clears it.
    box = open_node(page, diagram, node)
    box.get_by_role("button", name=action, exact=True).click()
    error = box.locator(".control-error")
    error.wait_for()
    assert "Start" in error.inner_text()
    start(page)
    error.wait_for(state="detached")
    page.get_by_role("button", name="Pause", exact=True).click()
    wait_for_frame(page, "!f.playing")

    # Steer by touching the picture: the same node's action now changes its state.
    box = open_node(page, diagram, node)
    box.get_by_role("button", name=action, exact=True).click()
    page.wait_for_function(
        "([d, n, text]) => document.querySelector(`figure[data-diagram=${d}]`).innerText.includes(text)",
        arg=[diagram, node, shown],
        timeout=30000,
    )
    assert not page.locator(".control-error").count()
    page.keyboard.press("Escape")
    box.wait_for(state="detached")
    assert page.errors == []


def test_a_preset_perturbed_live_keeps_its_later_steps(live_server_url, screen):
    page = screen
    page.goto(f"{live_server_url}/patterns/raft/?preset=leader-crash")
    start(page)
    page.get_by_role("button", name="Pause", exact=True).click()
    f = wait_for_frame(page, "!f.playing")
    assert f["t"] < 2.0
    box = open_node(page, "cluster", "s3")
    box.get_by_role("button", name="Time out", exact=True).click()
    f = wait_for_frame(page, "f.link.includes(':timeout:server=s3')")
    assert "preset=leader-crash" in f["link"]  # the preset's steps (crash s1 at 2 s, restart at 4 s) stay
    page.locator("select[name=speed]").select_option("2")
    page.get_by_role("button", name="Resume", exact=True).click()
    up = page.locator("#metrics tr", has=page.locator("th", has_text="Up")).locator("td")
    # The story pauses the run at its chapters: Next goes on through them.
    through = "el => { if (document.body.dataset.playing === 'false') document.getElementById('story-next').click(); "
    page.wait_for_function(
        through + "return el.textContent.includes('4 of 5'); }", arg=up.element_handle(), timeout=30000
    )
    page.wait_for_function(
        through + "return el.textContent.includes('5 of 5'); }", arg=up.element_handle(), timeout=30000
    )
    # Routine events are hidden by default, and counted.
    assert "routine event" in page.locator("#log-hidden").text_content()
    assert page.locator("#event-log li.routine:not([hidden])").count() == 0
    # A partition is made by clicking servers into groups, among the servers that exist.
    groups = command_form(page, "partition")
    assert groups.locator(".group-picker button").all_inner_texts() == ["s1: A", "s2: A", "s3: B", "s4: B", "s5: B"]
    groups.locator(".group-picker button", has_text="s5").click()
    assert groups.locator("input[name=groups]").input_value() == "s1.s2|s3.s4|s5"
    assert page.errors == []


def test_narrow_dark_page_stacks_and_keyboard_reaches_a_node(live_server_url, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", bypass_csp=True)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{live_server_url}/patterns/raft/")
    start(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    node = page.locator("figure[data-diagram=cluster] [aria-label='Details of s1']").first
    node.wait_for()
    node.focus()
    page.keyboard.press("Enter")
    box = page.locator("figure[data-diagram=cluster] .diagram-details:not([hidden])")
    box.wait_for(state="visible")
    assert box.get_by_role("button", name="Crash", exact=True).is_visible()
    page.keyboard.press("Escape")
    box.wait_for(state="detached")
    assert errors == []
    context.close()
