"""The chat's own controls and boxes: tool boxes titled with their arguments, live and after a reload."""

from __future__ import annotations

import re
import threading

from playwright.sync_api import Page, expect

from tests.ui.helpers import create_agent, say, tool_call

HOSTILE = "<b>bold?</b> **stars** [link](http://evil.example) $$x^2$$ " + "z" * 400


def _boxes(page: Page) -> list[str]:
    """The titles of the chat's boxes, as the browser shows them."""
    return [t.strip() for t in page.locator("#chatbot .title").all_inner_texts()]


def test_tool_boxes_are_titled_with_their_arguments_live_and_after_reload(page: Page, served):
    fake = served["fake"]
    create_agent(page, "Ada")
    fake.queue_chat(say("Hello."))
    page.get_by_role("textbox", name="Message").fill("Hi")
    page.get_by_role("button", name="Send").click()
    chatbot = page.locator("#chatbot")
    expect(chatbot.get_by_text("Hello.")).to_be_visible()
    fake.queue_chat({"content": "Noting it.", "tool_calls": [tool_call(
        "core_memory_append", {"name": "human", "content": "likes tea", "request_heartbeat": True}, "c1")]})
    fake.queue_chat({"content": None, "tool_calls": [tool_call(
        "archival_memory_search", {"query": HOSTILE, "request_heartbeat": True}, "c2")]})
    fake.queue_chat(say("Noted.", "c3"))
    page.get_by_role("textbox", name="Message").fill("I like tea")
    page.get_by_role("button", name="Send").click()
    expect(chatbot.get_by_text("Noted.")).to_be_visible()
    expect(chatbot.get_by_text('🛠️ core_memory_append(human, "likes tea")')).to_be_visible()
    hostile = chatbot.get_by_text(re.compile(r'^🛠️ archival_memory_search\("<b>bold\?</b> \*\*stars\*\*'))
    expect(hostile).to_be_visible()  # the markup shows as typed: no bold, no link, no maths
    expect(chatbot.locator(".title b, .title strong, .title a, .title .katex")).to_have_count(0)
    assert "z" * 100 not in hostile.inner_text()  # cut short
    expect(page.get_by_text(re.compile("this turn"))).to_be_visible()  # the turn is over
    live = _boxes(page)
    assert '✅ archival_memory_search → OK' in live

    page.goto(served["url"] + "?agent=Ada")
    expect(chatbot.get_by_text("Noted.")).to_be_visible()
    expect(chatbot.get_by_text('🛠️ core_memory_append(human, "likes tea")')).to_be_visible()
    assert _boxes(page) == live


def test_developer_controls_are_folded_apart_from_retry(page: Page, served):
    fake = served["fake"]
    create_agent(page, "Ada")
    chatbot = page.locator("#chatbot")
    expect(page.get_by_role("button", name="Retry")).to_be_visible()  # everyday, beside Send
    for name in ("Heartbeat", "Pop last", "Summarize now", "Memory warning"):
        expect(page.get_by_role("button", name=name)).to_be_hidden()
    fake.queue_chat(say("Hello."))
    page.get_by_role("textbox", name="Message").fill("Hi")
    page.get_by_role("button", name="Send").click()
    expect(chatbot.get_by_text("Hello.")).to_be_visible()

    page.get_by_role("button", name="Developer").click()
    fake.queue_chat(say("Still here.", "h1"))
    page.get_by_role("button", name="Heartbeat").click()
    expect(chatbot.get_by_text("💓 Heartbeat")).to_be_visible()
    expect(chatbot.get_by_text("Still here.")).to_be_visible()
    expect(page.get_by_text(re.compile("this turn"))).to_be_visible()
    page.get_by_role("button", name="Pop last").click()
    expect(page.get_by_text(re.compile(r"Removed \d+ message"))).to_be_visible()
    expect(chatbot.get_by_text("Still here.")).to_have_count(0)


def test_a_second_enter_while_the_agent_replies_is_refused_and_kept(page: Page, served):
    from engine.api import MemGPT

    fake, api = served["fake"], MemGPT(runtime=served["runtime"])
    create_agent(page, "Ada")
    chatbot = page.locator("#chatbot")
    message = page.get_by_role("textbox", name="Message")
    gate = threading.Event()
    fake.queue_chat(gate)  # the model thinks until the test says...
    fake.queue_chat(say("First answer."))
    message.fill("First question")
    message.press("Enter")
    expect(page.get_by_text("Working…")).to_be_visible()
    expect(message).to_have_value("")  # the agent has the first message
    message.fill("Second question")
    message.press("Enter")
    expect(page.get_by_text("The agent is still replying; your message is kept in the box.")).to_be_visible()
    expect(message).to_have_value("Second question")
    gate.set()
    expect(chatbot.get_by_text("First answer.")).to_be_visible()
    expect(page.get_by_text(re.compile("this turn"))).to_be_visible()
    expect(message).to_have_value("Second question")  # the end of the first turn leaves the box alone
    assert "Second question" not in " ".join(m.text for m in api.messages("Ada"))

    fake.queue_chat(say("Second answer.", "s2"))
    message.press("Enter")
    expect(chatbot.get_by_text("Second answer.")).to_be_visible()
    expect(chatbot.get_by_text("First answer.")).to_be_visible()  # one conversation, in order
    expect(message).to_have_value("")
    said = [m.text for m in api.messages("Ada") if m.role == "user" and m.name == "user_message"]
    assert said == ["First question", "Second question"]


def test_a_streaming_reply_grows_in_the_chat(page: Page, served):
    fake = served["fake"]
    create_agent(page, "Ada")
    chatbot = page.locator("#chatbot")
    words = " ".join(f"word{i}" for i in range(60))
    fake.stream_chunk_chars = 8
    fake.stream_delay = 0.1  # about 8 s for the whole reply
    fake.queue_chat(say(words, thought="Let me answer at length."))
    page.get_by_role("textbox", name="Message").fill("Talk to me")
    page.get_by_role("button", name="Send").click()
    # The bubble shows part of the reply (its start, without its end) while the agent still works...
    expect(chatbot.get_by_text(re.compile(r"^word0 word1 (?![\s\S]*word59)"))).to_be_visible()
    expect(page.get_by_text("Working…")).to_be_visible()
    expect(chatbot.get_by_text(words, exact=True)).to_be_visible()  # and then whole, in the same bubble
    expect(page.get_by_text(re.compile("this turn"))).to_be_visible()
    expect(chatbot.get_by_text(re.compile(r"^word0 "))).to_have_count(1)
    assert _boxes(page).count("💭 Inner monologue") == 2  # the greeting's and this reply's: grown in place, once
