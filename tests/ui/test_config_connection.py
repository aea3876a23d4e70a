"""Config tab, Test connection in a real Chromium: the URL and the cause, the server's models, the probed dimension."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.servers import free_port
from tests.ui.helpers import error_badges, open_tab

BASE_URL = "Base URL (or GGUF path for local)"


def test_test_connection_names_the_url_and_the_cause_then_lists_models(page: Page, served):
    fake = served["fake"]
    open_tab(page, "Config")
    tab = page.locator("#config-tab")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    tab.get_by_label(BASE_URL).fill(dead)
    page.get_by_role("button", name="Test connection").click()
    probe = page.locator("#config-probe")
    expect(probe).to_contain_text(f"Could not reach {dead}")
    expect(probe).to_contain_text("connection was refused")
    # The embedder was tested too, at its own (working) URL, with its dimension.
    expect(probe).to_contain_text("Embedded a test text")
    expect(probe).to_contain_text("64 dimensions")
    expect(tab.get_by_label("Models on the server (pick one to use it)")).to_be_hidden()

    # A working server that lists its models; the typed dimension is wrong and gets the probed one.
    fake.models = ["gpt-test", "bigger-model", "test-hash"]
    fake.queue_chat({"content": "ready"})
    tab.get_by_label(BASE_URL).fill(fake.base_url)
    tab.get_by_label("Dimension").fill("1536")
    page.get_by_role("button", name="Test connection").click()
    expect(probe).to_contain_text(f"Connected to {fake.base_url}: model gpt-test answered: ready")
    expect(probe).to_contain_text("The configured dimension is 1536: it should be 64")
    expect(tab.get_by_label("Dimension")).to_have_value("64")
    models = tab.get_by_label("Models on the server (pick one to use it)")
    expect(models).to_be_visible()
    models.click()
    page.get_by_role("option", name="bigger-model").click()
    expect(tab.get_by_label("Model", exact=True)).to_have_value("bigger-model")
    expect(error_badges(page)).to_have_count(0)


def test_an_unknown_model_is_named_as_such(page: Page, served):
    served["fake"].models = ["llama-3"]
    open_tab(page, "Config")
    tab = page.locator("#config-tab")
    tab.get_by_label("Model", exact=True).fill("gpt-nope")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#config-probe")).to_contain_text(
        re.compile(r"has no model named 'gpt-nope' \(404\)\. It offers: llama-3"))
