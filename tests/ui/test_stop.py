"""Stop ends a turn cleanly: what was said stays stored and shown, the agent is free, the next turn works."""

from __future__ import annotations

import json
import threading

from playwright.sync_api import Page, expect

from tests.ui.helpers import create_agent, say, tool_call, wait_until


def test_stop_ends_the_turn_and_keeps_what_was_said(page: Page, served):
    from engine.api import MemGPT

    fake, api = served["fake"], MemGPT(runtime=served["runtime"])
    create_agent(page, "Ada")
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_hidden()
    chatbot = page.locator("#chatbot")
    fake.queue_chat(say("Hello."))  # a first reply must send a message (it is verified)
    page.get_by_role("textbox", name="Message").fill("Hi")
    page.get_by_role("button", name="Send").click()
    expect(chatbot.get_by_text("Hello.")).to_be_visible()
    expect(stop).to_be_hidden()

    fake.queue_chat({"content": "Let me note that, then look further.", "tool_calls": [tool_call(
        "core_memory_append", {"name": "human", "content": "Lost a key.", "request_heartbeat": True}, "c0")]})
    gate = threading.Event()
    fake.queue_chat(gate)  # the chained call thinks until Stop has been pressed (a fixed stall ran out on a loaded machine)
    fake.queue_chat({"content": "Found it.", "tool_calls": [tool_call(
        "send_message", {"message": "A late answer nobody waits for."}, "c1")]})
    page.get_by_role("textbox", name="Message").fill("Where is the key?")
    page.get_by_role("button", name="Send").click()
    expect(chatbot.get_by_text("🛠️ core_memory_append")).to_be_visible()
    expect(page.get_by_text("Working…")).to_be_visible()  # the agent is still thinking
    stop.click()
    expect(page.get_by_text("⏹️ Stopping")).to_be_visible()
    gate.set()
    expect(page.get_by_text("Stopped.")).to_be_visible()
    expect(stop).to_be_hidden()
    expect(page.get_by_text("Working…")).to_have_count(0)
    expect(chatbot.get_by_text("🛠️ core_memory_append")).to_be_visible()
    stored = " ".join(f"{m.content} {json.dumps(m.tool_calls)}" for m in api.messages("Ada"))
    assert "Where is the key?" in stored and "Let me note that" in stored
    assert "Lost a key." in api.get_core_memory("Ada")[1].value
    assert "A late answer" not in stored
    wait_until(lambda: not api.open_agent("Ada").busy)

    # The store is whole: the fake refuses a history with a call left unanswered, as OpenAI does.
    fake.queue_chat({"content": "Answer.", "tool_calls": [tool_call("send_message", {"message": "Under the pot."},
                                                                    "c2")]})
    page.get_by_role("textbox", name="Message").fill("And now?")
    page.get_by_role("button", name="Send").click()
    expect(chatbot.get_by_text("Under the pot.")).to_be_visible()
    expect(chatbot.get_by_text("A late answer nobody waits for.")).to_have_count(0)
