#!/usr/bin/env python
"""Screenshots of each pattern page's first screen at 1366x800, light and dark, for the README.

Starts daphne on a free port of 127.0.0.1, opens each page with a preset in headless Chromium (/usr/bin/chromium),
starts the run, lets it play a few virtual seconds, pauses, opens one node's details and actions, and saves
docs/screenshots/<pattern>-<theme>.png. When `pngquant` is installed the files are quantized (about a third of
the size).

    .venv/bin/python docs/screenshots/take.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import CHROMIUM, CHROMIUM_ARGS, free_port, start_daphne  # noqa: E402

OUT = Path(__file__).resolve().parent
# pattern, preset, virtual seconds to play, the node whose box is open
PAGES = (
    ("raft", "leader-crash", 5.0, "s1"),
    ("circuit-breaker", "flaky", 8.0, "svcS"),
    ("load-balancing", "slow-server", 6.0, "l0_s1"),
    ("messaging", "crash-redelivery", 9.0, "nW2"),
)
FRAME = "JSON.parse(document.getElementById('frame-data').dataset.frame)"


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_daphne(Path(tmp), port)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                for theme in ("light", "dark"):
                    viewport = {"width": 1366, "height": 800}
                    # bypass_csp: wait_for_function evaluates strings, which the page's CSP forbids
                    context = browser.new_context(viewport=viewport, color_scheme=theme, bypass_csp=True)
                    for slug, preset, seconds, node in PAGES:
                        page = context.new_page()
                        page.goto(f"http://127.0.0.1:{port}/patterns/{slug}/?preset={preset}")
                        page.get_by_role("button", name="Start", exact=True).click()
                        page.locator("select[name=speed]").select_option("2")
                        for _ in range(240):  # a story pauses at its chapters: Next goes on through them
                            if page.evaluate(f"{FRAME}.t >= {seconds}"):
                                break
                            following = page.locator("#story-next")
                            paused = page.evaluate(f"!{FRAME}.playing")
                            if paused and following.count() and following.is_enabled():
                                following.click()
                            page.wait_for_timeout(250)
                        page.get_by_role("button", name="Pause", exact=True).click()
                        page.wait_for_function(f"!{FRAME}.playing")
                        page.evaluate("() => window.playground.idle()")
                        page.locator(f".diagrams.focus [aria-label='Details of {node}']").first.click()
                        page.mouse.move(0, 0)
                        path = OUT / f"{slug}-{theme}.png"
                        page.screenshot(path=str(path))
                        page.close()
                        if shutil.which("pngquant"):
                            subprocess.run(
                                ["pngquant", "--force", "--skip-if-larger", "--output", str(path), str(path)]
                            )
                        print(path.relative_to(ROOT), path.stat().st_size // 1024, "KB")
                    context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
