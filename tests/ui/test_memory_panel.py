"""Core memory and the context bar beside the chat: beside it on a desktop, a drawer on a phone, current after each turn."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.helpers import create_agent, open_tab, say, tool_call


def test_the_panel_follows_the_agents_memory(page: Page, served):
    fake = served["fake"]
    create_agent(page, "Ada")
    panel = page.locator("#memory-panel")
    expect(panel).to_contain_text(re.compile(r"persona \d+/\d+"))
    expect(panel).to_contain_text(re.compile(r"Recall: \d+ messages · Archival: 0 passages"))
    chat_box, panel_box = page.locator("#chatbot").bounding_box(), panel.bounding_box()
    assert panel_box["x"] >= chat_box["x"] + chat_box["width"] - 1  # beside the conversation
    expect(page.get_by_role("button", name="Open core memory")).to_be_hidden()  # no drawer on a desktop
    bar = panel.get_by_role("img", name=re.compile("context window"))
    expect(bar).to_be_visible()
    before = _context(page)
    assert before["window"] == 8192 and before["used"] > 0
    for part in ("system", "core_memory", "functions"):
        expect(bar.locator(f"[data-part={part}]")).to_have_count(1)
    messages_before = _part(page, "messages")

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
    # The bar followed the turns: the messages take more room than before.
    assert _context(page)["used"] > before["used"]
    assert _part(page, "messages") > messages_before

    open_tab(page, "Memory")  # an edit made elsewhere shows once the chat is back
    page.locator("#block-persona textarea").fill("I am Ada, a careful gardener.")
    page.get_by_role("button", name="Save persona").click()
    expect(page.get_by_text("Saved persona.")).to_be_visible()
    open_tab(page, "Chat")
    expect(panel).to_contain_text("I am Ada, a careful gardener.")
    expect(panel).to_contain_text("persona 29/")


def _part(page: Page, part: str) -> int:
    title = page.locator(f"#memory-panel [data-part={part}]").get_attribute("title")
    return int(re.search(r": ([\d,]+) tokens", title).group(1).replace(",", ""))


def _context(page: Page) -> dict[str, int]:
    text = page.locator("#memory-panel .context-fill").inner_text()
    used, window = re.search(r"Context ([\d,]+) / ([\d,]+) tokens", text).groups()
    return {"used": int(used.replace(",", "")), "window": int(window.replace(",", ""))}


def test_on_a_phone_the_panel_is_a_drawer_over_the_conversation(served, new_page):
    from engine.api import MemGPT

    api = MemGPT(runtime=served["runtime"])
    api.create_agent("Ada")
    api.add_block("Ada", "projects", "kites and <b>gliders</b>")
    page = new_page(served["url"] + "?agent=Ada", viewport={"width": 390, "height": 844}, is_mobile=True)
    panel = page.locator("#memory-panel")
    expect(panel).to_contain_text(re.compile(r"persona \d+/\d+"))  # drawn, and hidden in the closed drawer
    expect(panel).to_be_hidden()
    chatbot = page.locator("#chatbot")
    expect(chatbot).to_be_visible()
    chat_box = chatbot.bounding_box()
    # The conversation is on the first screen, not under the panel (the picker and header above it are
    # the Chat tab's).
    assert chat_box["y"] + 250 < 844
    # Nothing of the panel sits under the conversation taking room: the page is the chat's height.
    below = page.evaluate("document.querySelector('#chatbot').getBoundingClientRect().bottom")
    page_height = page.evaluate("document.documentElement.scrollHeight")
    assert page_height - below < 844

    opener = page.get_by_role("button", name="Open core memory")
    expect(opener).to_be_visible()
    opener.click()
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("kites and <b>gliders</b>")  # the added block, as text
    expect(panel.locator("b")).to_have_count(0)
    expect(panel.get_by_role("img", name=re.compile("context window"))).to_be_visible()
    drawer = page.locator("#memory-drawer").bounding_box()
    assert drawer["x"] >= 0 and drawer["x"] + drawer["width"] <= 390 + 1 and drawer["y"] <= 1
    assert chatbot.bounding_box() == chat_box  # opening it moved nothing
    assert page.evaluate("window.scrollY") == 0
    page.get_by_role("button", name="Close core memory").click()
    expect(panel).to_be_hidden()
    page.get_by_role("button", name="Open core memory").click()
    expect(panel).to_be_visible()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
