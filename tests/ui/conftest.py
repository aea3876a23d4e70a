"""Serving the real app on loopback, with the LLM faked at the HTTP edge, for a real Chromium."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.servers import app_home, launch_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]
TRACKED_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# The README's screenshots are refreshed only by scripts/screenshots.py (UPDATE_SCREENSHOTS=1), so a test run
# leaves the tree as it was.
UPDATING_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"
SCREENSHOTS = TRACKED_SCREENSHOTS if UPDATING_SCREENSHOTS else Path(tempfile.gettempdir()) / "memgpt-ui-screenshots"
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
# expect() has its own 5 s default that page.set_default_timeout does not change; on two cores shared with other
# work a Gradio round trip sometimes took longer, so each full run timed out somewhere else.
EXPECT_TIMEOUT_MS = 20_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def _digest(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.glob("*")) if f.is_file()}


@pytest.fixture(autouse=True)
def leaves_no_trace():
    """Each UI test must leave os.environ and the tracked screenshots as it found them.

    Autouse, so it is set up before (and checked after) every other fixture's teardown.
    """
    environ = dict(os.environ)
    shots = _digest(TRACKED_SCREENSHOTS)
    yield
    changed = sorted(k for k in environ.keys() | os.environ.keys()
                     if environ.get(k) != os.environ.get(k) and k != "PYTEST_CURRENT_TEST")  # pytest's own
    os.environ.clear()
    os.environ.update(environ)  # so one leak does not fail every later test too
    assert not changed, f"the test left environment variables changed: {changed}"
    if not UPDATING_SCREENSHOTS:
        assert _digest(TRACKED_SCREENSHOTS) == shots, "the test rewrote docs/screenshots"


@pytest.fixture
def served(tmp_path, monkeypatch, fake_openai, database_url):
    """The app over a fresh data home whose defaults point at the fake OpenAI server.

    In tests marked both_stores it runs once more on PostgreSQL (`database_url`
    puts MEMGPT_DATABASE_URL in the environment the runtime opens from).
    """
    pytest.importorskip("playwright")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is not installed (apt-get install chromium); the UI tests need it.")
    from engine.runtime import open_runtime
    from webapp.app import build_demo
    from webapp.serve import QUEUE_CONCURRENCY

    home = app_home(tmp_path, monkeypatch, fake_openai)
    # The app puts keys saved in the Config tab into the process environment (that is how the
    # providers read them); the server is gone after the test, so are they.
    environ = dict(os.environ)
    runtime = open_runtime(home)
    demo = build_demo(runtime)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY)  # as served: two turns can run at once
    port = launch_app(demo)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "runtime": runtime, "fake": fake_openai, "home": home}
    finally:
        demo.close()
        runtime.close()
        os.environ.clear()
        os.environ.update(environ)


@pytest.fixture(scope="package")
def browser():
    """One Chromium for every browser test (they run together, on one worker: tests/conftest.py).

    Starting Playwright and Chromium took ~2 s a test; each test still gets a context of its
    own (cookies, storage, viewport), which is what a fresh browser gave it.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts, `new_page(url, **context options)`; closed after the test."""
    contexts = []

    def open_page(url: str, **options):
        if not browser.is_connected():
            pytest.fail("Chromium is gone (it crashed in an earlier test)")
        context = browser.new_context(**({"viewport": {"width": 1280, "height": 1000}} | options))
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(url)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(served, new_page):
    return new_page(served["url"])
