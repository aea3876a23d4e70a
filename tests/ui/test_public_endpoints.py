"""On an exposed app the page cannot point agents or the defaults into the server's own network: a toast says why."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from tests.support.servers import app_home, launch_app
from tests.ui.helpers import error_badges, open_tab


@pytest.fixture
def public_page(tmp_path, monkeypatch, fake_openai, new_page):
    """The app as a Space or a share link builds it (`exposed`), over defaults at the operator's loopback server."""
    from engine.runtime import open_runtime
    from webapp.app import build_demo
    from webapp.exposure import Exposure

    home = app_home(tmp_path, monkeypatch, fake_openai)
    environ = dict(os.environ)  # Gradio sets a few variables at launch; the server is gone after the test
    runtime = open_runtime(home)
    demo = build_demo(runtime, Exposure(exposed=True, home=home))
    port = launch_app(demo)
    try:
        yield new_page(f"http://127.0.0.1:{port}/"), runtime, home
    finally:
        demo.close()
        runtime.close()
        os.environ.clear()
        os.environ.update(environ)


def test_a_new_agent_at_the_metadata_address_is_refused_aloud(public_page):
    page, runtime, _ = public_page
    endpoint = page.get_by_label("Base URL (servers; GGUF path for local)")
    # Typed at once: the page's load event leaves typed fields alone (tests/test_web_page_load.py).
    page.get_by_label("Name", exact=True).fill("Mallory")
    endpoint.fill("http://169.254.169.254/latest")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text(re.compile(r"169\.254\.169\.254.*refused")).first).to_be_visible()
    expect(error_badges(page)).to_have_count(0)
    from engine.agents import list_agents

    assert list_agents(runtime.store) == []
    # The operator's own (loopback) default still makes an agent.
    page.get_by_label("Base URL (servers; GGUF path for local)").fill(runtime.settings.llm.endpoint)
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text(re.compile(r"Mallory · model gpt-test"))).to_be_visible()


def test_saving_a_private_default_is_refused_and_writes_nothing(public_page):
    page, runtime, home = public_page
    before = (home / "config.yaml").read_text()
    open_tab(page, "Config")
    endpoint = page.get_by_label("Base URL (or GGUF path for local)")
    endpoint.fill("http://10.0.0.7:11434/v1")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text(re.compile(r"10\.0\.0\.7.*refused")).first).to_be_visible()
    expect(error_badges(page)).to_have_count(0)
    assert (home / "config.yaml").read_text() == before
