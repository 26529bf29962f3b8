"""The page says when its connection is lost and when it is back, and its controls say they wait meanwhile."""

import signal

import pytest

from ..support import free_port, start_daphne

pytestmark = pytest.mark.browser
STATUS = "#connection-status"


def test_a_lost_connection_is_told_then_its_return_and_controls_wait_meanwhile(page, tmp_path):
    port = free_port()
    server = start_daphne(tmp_path, port)
    try:
        page.goto(f"http://127.0.0.1:{port}/patterns/circuit-breaker/?seed=5")
        page.get_by_role("button", name="Start", exact=True).click()
        page.wait_for_function("document.body.dataset.run", timeout=20000)
        assert page.locator(STATUS).is_hidden()

        server.send_signal(signal.SIGKILL)
        server.wait(10)
        status = page.get_by_role("status").filter(has_text="Connection lost")
        status.wait_for(timeout=10000)
        pause = page.get_by_role("button", name="Pause")
        pause.click()
        assert pause.get_attribute("aria-busy") == "true" and "waiting for the connection" in pause.inner_text()
        assert "waits until the connection is back" in page.locator(STATUS).inner_text()

        server = start_daphne(tmp_path, port)
        page.get_by_role("status").filter(has_text="Connection back").wait_for(timeout=30000)
        page.wait_for_function("!document.querySelector('#live [aria-busy=true]')", timeout=10000)
        page.screenshot(path=str(tmp_path / "connection-back.png"))
    finally:
        server.kill()
        server.wait(10)
