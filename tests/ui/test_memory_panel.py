"""Core memory beside the chat: beside it on a desktop, below it (foldable) on a phone, current after each turn."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.ui.helpers import create_agent, open_tab, say, tool_call


def test_the_panel_follows_the_agents_memory(page: Page, served):
    fake = served["fake"]
    create_agent(page, "Ada")
    panel = page.locator("#memory-panel")
    expect(panel).to_contain_text(re.compile(r"persona \d+/\d+"))
    expect(panel).to_contain_text(re.compile(r"Recall: \d+ messages · Archival: 0 passages"))
    chat_box, panel_box = page.locator("#chatbot").bounding_box(), panel.bounding_box()
    assert panel_box["x"] >= chat_box["x"] + chat_box["width"] - 1  # beside the conversation

    fake.queue_chat(say("Hello."))
    page.get_by_role("textbox", name="Message").fill("Hi")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chatbot").get_by_text("Hello.")).to_be_visible()
    # What the agent stores is its text, never markup: a stranger can make it write anything.
    fake.queue_chat({"content": "Noting it.", "tool_calls": [tool_call(
        "core_memory_append", {"name": "human", "content": "Name: Kim <img src=x onerror=alert(1)>",
                               "request_heartbeat": True}, "c1")]})
    fake.queue_chat(say("Noted, Kim.", call_id="c2"))
    page.get_by_role("textbox", name="Message").fill("I'm Kim")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chatbot").get_by_text("Noted, Kim.")).to_be_visible()
    expect(panel).to_contain_text("Name: Kim <img src=x onerror=alert(1)>")
    expect(panel.locator("img")).to_have_count(0)

    open_tab(page, "Memory")  # an edit made elsewhere shows once the chat is back
    page.locator("#block-persona textarea").fill("I am Ada, a careful gardener.")
    page.get_by_role("button", name="Save persona").click()
    expect(page.get_by_text("Saved persona.")).to_be_visible()
    open_tab(page, "Chat")
    expect(panel).to_contain_text("I am Ada, a careful gardener.")
    expect(panel).to_contain_text("persona 29/")


def test_on_a_phone_the_panel_is_below_and_folds(served):
    from playwright.sync_api import sync_playwright

    from engine.api import MemGPT

    MemGPT(runtime=served["runtime"]).create_agent("Ada")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
        page.goto(served["url"] + "?agent=Ada")
        panel = page.locator("#memory-panel")
        expect(panel).to_contain_text(re.compile(r"persona \d+/\d+"))
        chat_box, panel_box = page.locator("#chatbot").bounding_box(), panel.bounding_box()
        assert panel_box["y"] >= chat_box["y"] + chat_box["height"] - 1  # below the conversation
        page.get_by_role("button", name="Core memory").click()
        expect(panel).to_be_hidden()
        browser.close()
