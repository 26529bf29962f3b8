"""Helpers shared by the page tests: the forms of the "All commands" panel, the open node box, and playing a run
through its story's pauses."""

import time

FRAME = "JSON.parse(document.getElementById('frame-data').dataset.frame)"


def play_until(page, condition: str, timeout: float = 20.0) -> dict:
    """The first frame meeting ``condition`` (JavaScript over ``f``), pressing the story's Next whenever one of its
    chapters paused the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(f"(() => {{ const f = {FRAME}; return Boolean({condition}); }})()"):
            return page.evaluate(FRAME)
        following = page.locator("#story-next")
        if not page.evaluate(f"{FRAME}.playing") and following.count() and following.is_enabled():
            following.click()
        page.wait_for_timeout(200)
    raise AssertionError(f"no frame with {condition} in {timeout:g} s (last: {page.evaluate(FRAME)})")


def command_form(page, command: str):
    """A command's form in the "All commands" panel, which is opened first if it is closed."""
    panel = page.locator("#perturb")
    if not panel.evaluate("el => el.open"):
        panel.locator("summary").click()
    return page.locator("#perturb form.command", has=page.locator(f"input[value={command}]"))


def node_box(page):
    """The open details-and-actions box of a clicked node (in the side panel on wide screens)."""
    return page.locator(".diagram-details:not([hidden])")
