"""Target fields are pickers of the nodes that exist now, in real Chromium: a Raft server's box offers "Cut a link"
with its other end chosen from a labelled list of the other nodes there (never the server itself, never a server
the cluster does not have, a server added since included), reached and changed by keyboard; the cut it sends is
applied and lands in the link."""

import pytest

from .steering import FRAME, command_form, node_box

pytestmark = pytest.mark.browser


def wait_for_frame(page, condition, timeout=30000):
    page.wait_for_function(f"(() => {{ const f = {FRAME}; return {condition}; }})()", timeout=timeout)
    return page.evaluate(FRAME)


def other_end(page):
    """The "Other end" picker in the box of server s1 of the cluster diagram, opened by a click on s1."""
    page.locator("figure[data-diagram=cluster] [aria-label='Details of s1']").first.click()
    box = node_box(page)
    box.wait_for(state="visible")
    return box, box.get_by_label("Other end")  # its name also holds the chosen node


def test_the_other_end_of_a_cut_is_picked_among_the_nodes_there(page, live_server_url):
    page.goto(f"{live_server_url}/patterns/raft/?servers=3&clients=1")
    page.get_by_role("button", name="Start", exact=True).click()
    wait_for_frame(page, "f.run")
    page.get_by_role("button", name="Pause", exact=True).click()
    wait_for_frame(page, "!f.playing")

    box, picker = other_end(page)
    assert picker.is_visible() and picker.evaluate("el => el.tagName") == "SELECT"
    assert picker.locator("option").all_inner_texts() == ["s2", "s3", "c1"]

    form = command_form(page, "add_server")  # a fourth server joins: the picker offers it
    form.get_by_role("button", name="Add server", exact=True).click()
    wait_for_frame(page, "(f.targets.node || []).includes('s4')")
    box, picker = other_end(page)
    page.wait_for_function("el => el.options.length === 4", arg=picker.element_handle())
    assert picker.locator("option").all_inner_texts() == ["s2", "s3", "s4", "c1"]

    picker.focus()  # the keyboard reaches it and changes it
    page.keyboard.press("ArrowDown")
    assert picker.input_value() == "s3"
    box.get_by_role("button", name="Cut a link", exact=True).click()
    wait_for_frame(page, "f.link.includes(':cut:a=s1,b=s3')")
    assert not page.locator(".control-error").count()
