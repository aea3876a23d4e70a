"""The offline-demo banner: shown while new agents get the embedded 135M model, one click to Config, gone after Save."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.ui.helpers import open_tab

BASE_URL = "Base URL (or GGUF path for local)"


def pick(page: Page, label: str, option: str) -> None:
    page.locator("#config-tab").get_by_label(label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_banner_follows_the_default_model_and_opens_config(page: Page, served):
    banner = page.locator("#demo-banner")
    expect(page.get_by_role("button", name="Send")).to_be_visible()  # the page is drawn
    expect(banner).to_be_hidden()  # a real model (the fake server) is the default

    open_tab(page, "Config")
    tab = page.locator("#config-tab")
    pick(page, "LLM provider", "local")
    tab.get_by_label(BASE_URL).fill("")
    tab.get_by_role("button", name="Save settings").click()
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("SmolLM2-135M-Instruct")
    expect(banner).to_contain_text("a demo of the machinery (memory, tools, the agent loop), not a capable assistant")

    # On a fresh load too, and its button opens the Config tab.
    page.reload()
    expect(banner).to_be_visible()
    expect(page.get_by_role("tab", name="Chat")).to_have_attribute("aria-selected", "true")
    banner.get_by_role("button", name="Open Config").click()
    expect(page.get_by_role("tab", name="Config")).to_have_attribute("aria-selected", "true")
    expect(tab.get_by_role("button", name="Save settings")).to_be_visible()

    pick(page, "LLM provider", "openai-compatible")
    tab.get_by_label(BASE_URL).fill(served["fake"].base_url)
    tab.get_by_role("button", name="Save settings").click()
    expect(tab.get_by_text("Settings saved.")).to_be_visible()
    expect(banner).to_be_hidden()
