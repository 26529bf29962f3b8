"""Every page under the Content-Security-Policy in real Chromium: no violation, no console error, Mermaid draws,
htmx's websocket starts a run, and the saved theme (now a script file, not an inline one) still applies."""

import time

import pytest

pytestmark = pytest.mark.browser

FRAME = "JSON.parse(document.getElementById('frame-data').dataset.frame)"
WATCH_CSP = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.fixture
def page(browser):
    """A page that enforces the CSP (the shared fixture bypasses it so that wait_for_function can eval)."""
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    yield context.new_page()
    context.close()


def wait_until(page, expression, timeout=20.0):
    """Poll with evaluate(), which the page's CSP does not govern, unlike wait_for_function's eval."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


def watched(page):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(WATCH_CSP)
    return errors


@pytest.mark.parametrize("slug", ["circuit-breaker", "raft", "load-balancing", "messaging"])
def test_a_pattern_page_runs_under_the_csp_without_violations(page, live_server_url, slug):
    errors = watched(page)
    response = page.goto(f"{live_server_url}/patterns/{slug}/")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    page.wait_for_selector("figure svg", timeout=15000)  # Mermaid rendered (it injects <style>: allowed)
    page.get_by_role("button", name="Start", exact=True).click()
    wait_until(page, f"(() => {{ const f = {FRAME}; return f.run && f.t > 0.3; }})()")
    assert page.evaluate("window.__violations") == []
    assert errors == []


def test_the_saved_theme_applies_from_the_script_file(page, live_server_url):
    errors = watched(page)
    page.goto(f"{live_server_url}/")
    page.evaluate("localStorage.setItem('pg-theme', 'dark')")
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.evaluate("window.__violations") == [] and errors == []
