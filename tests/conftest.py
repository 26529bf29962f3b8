"""Shared fixtures: the toy pattern registered, a daphne server, Chromium and Redis (skipped with a reason, or
failing in CI, when missing)."""

import os

import pytest
from hypothesis import settings

from patterns.core.registry import register

from .core.toy import TOY
from .support import CHROMIUM, CHROMIUM_ARGS, free_port, start_daphne

register(TOY)

# CI replays the same examples every run, so that a landing never hinges on the draw; runs elsewhere explore.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


def missing(what: str) -> None:
    """Skip with a visible reason, except in CI where a missing service is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available here")


@pytest.fixture(scope="session")
def live_server_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daphne")
    port = free_port()
    proc = start_daphne(tmp, port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def browser():
    """One Chromium per module: Playwright's sync API holds an event loop that async tests must not meet."""
    if not os.path.exists(CHROMIUM):
        missing("Chromium (/usr/bin/chromium, Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    # Playwright's wait_for_function evaluates its string in the page, which the site's CSP forbids (no eval):
    # tests drive pages with the CSP bypassed; tests/browser/test_csp.py checks the pages under it.
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
    except redis.RedisError:
        missing(f"Redis at {url}")
    # The tests own this database. Runs an earlier suite left there would be orphans that these tests' workers
    # take over and replay, slowing the runs under test: start empty.
    client.flushdb()
    return url
