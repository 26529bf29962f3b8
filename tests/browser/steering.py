"""Helpers shared by the page tests: the forms of the "All commands" panel and the open node box."""


def command_form(page, command: str):
    """A command's form in the "All commands" panel, which is opened first if it is closed."""
    panel = page.locator("#perturb")
    if not panel.evaluate("el => el.open"):
        panel.locator("summary").click()
    return page.locator("#perturb form.command", has=page.locator(f"input[value={command}]"))


def node_box(page):
    """The open details-and-actions box of a clicked node (in the side panel on wide screens)."""
    return page.locator(".diagram-details:not([hidden])")
