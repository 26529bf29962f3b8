"""The Raft page end to end in real Chromium: every diagram renders, the leader is crashed from the page's command
form, a new leader with a higher term takes over, a click on a server shows its persistent and volatile state, and
the shared link replays the same scenario."""

import pytest

from .steering import command_form, node_box

pytestmark = pytest.mark.browser

FRAME = "JSON.parse(document.getElementById('frame-data').dataset.frame)"
DIAGRAMS = ("cluster", "states", "rpcs", "logs", "invariants")
# A frame carries only the diagrams that changed since the one before: keep the latest drawing of each.
KEEP_DRAWINGS = """
window.drawn = {};
document.addEventListener("htmx:wsAfterMessage", () => {
  const el = document.getElementById("frame-data");
  if (el) Object.assign(window.drawn, JSON.parse(el.dataset.frame).diagrams || {});
});
"""
LEADERS = "(window.drawn.cluster || {nodes: []}).nodes"


@pytest.fixture
def open_page(page):
    """A new page of the test's browser context that keeps the latest drawings."""

    def opened():
        new = page.context.new_page()
        new.add_init_script(KEEP_DRAWINGS)
        return new

    return opened


def frame(page):
    return page.evaluate(FRAME)


def wait_for_frame(page, condition, timeout=30000):
    page.wait_for_function(f"(() => {{ const f = {FRAME}; return {condition}; }})()", timeout=timeout)
    return frame(page)


def leader_and_term(page) -> tuple[str, int]:
    """The leader the cluster diagram highlights, and its term as the metrics table shows it."""
    shown = page.evaluate(LEADERS)
    assert len(shown) == 1, shown
    row = page.locator("#metrics tr", has=page.locator("th", has_text="Leader")).first.locator("td").inner_text()
    assert row.startswith(f"{shown[0]} (term "), row
    return shown[0], int(row.split("term ")[1].rstrip(")"))


def wait_for_one_leader(page, other_than: str = ""):
    """Until the cluster diagram marks one leader, not ``other_than``."""
    wait_for_frame(page, f"f.run && {LEADERS}.length === 1 && {LEADERS}[0] !== '{other_than}'")


def all_drawn(page):
    """Each diagram has its picture on screen and no render error; the invariant panel says all is well."""
    page.evaluate("() => window.playground.idle()")
    for name in DIAGRAMS:
        figure = page.locator(f"figure[data-diagram={name}]")
        assert figure.locator(".diagram-view svg").count() == 1, name
        assert figure.locator(".diagram-error").count() == 0, figure.locator(".diagram-caption").inner_text()
    assert page.evaluate("window.playground.stats.renderErrors") == 0
    assert "VIOLATED" not in page.locator("figure[data-diagram=invariants]").inner_text()


def crash_the_leader(page) -> tuple[str, int]:
    leader, term = leader_and_term(page)
    form = command_form(page, "crash")
    form.locator("select[name=server]").select_option(leader)
    form.get_by_role("button").click()
    wait_for_frame(page, f"f.link.includes(':crash:server={leader}')")
    return leader, term


def pause(page):
    page.get_by_role("button", name="Pause").click()
    return wait_for_frame(page, "!f.playing")


def test_crash_the_leader_a_new_one_takes_over_and_the_link_replays_it(open_page, live_server_url):
    page = open_page()
    page.goto(f"{live_server_url}/patterns/raft/?seed=4")
    page.get_by_role("button", name="Start", exact=True).click()
    wait_for_one_leader(page)
    old, old_term = crash_the_leader(page)
    wait_for_one_leader(page, other_than=old)
    pause(page)
    new, new_term = leader_and_term(page)
    assert new != old and new_term > old_term
    all_drawn(page)
    figure = page.locator("figure[data-diagram=cluster]")
    assert "crashed" in figure.locator(f"g[data-id={old}]").get_attribute("class").split()
    box = node_box(page)
    figure.locator(f"g[data-id={new}]").click()  # a server's persistent and volatile state
    assert box.locator(".details-title").inner_text() == f"{new}: leader"
    shown = box.locator(".details-text").inner_text()
    assert f"currentTerm {new_term}" in shown and "Volatile (lost in a crash)" in shown and "nextIndex" in shown
    figure.locator(f"g[data-id={old}]").click()
    assert "Volatile: lost in the crash" in box.locator(".details-text").inner_text()

    page.get_by_role("button", name="Share").click()
    link = page.locator("#share-output").input_value()
    assert link.startswith(live_server_url) and "seed=4" in link and f":crash:server={old}" in link

    other = open_page()
    other.goto(link)
    other.get_by_role("button", name="Start", exact=True).click()
    other.locator("select[name=speed]").select_option("10")  # replay up to the crash quickly
    wait_for_one_leader(other, other_than=old)  # the same first leader, crashed at the same time, then the same
    pause(other)
    assert leader_and_term(other) == (new, new_term)
    assert frame(other)["link"] == frame(page)["link"]
    all_drawn(other)
