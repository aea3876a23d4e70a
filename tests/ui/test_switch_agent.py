"""Picking another agent while a reply is streaming: each stream stays with the agent it started for."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from tests.ui.helpers import create_agent, say, wait_until


def stored_texts(api, name: str) -> str:
    return "\n".join(f"{m.content} {json.dumps(m.tool_calls)}" for m in api.messages(name))


def test_switching_agent_mid_reply_keeps_each_conversation_apart(page: Page, served):
    from engine.api import MemGPT

    fake, api = served["fake"], MemGPT(runtime=served["runtime"])
    create_agent(page, "Ada")
    create_agent(page, "Bob")
    page.get_by_label("Agent", exact=True).click()
    page.get_by_role("option", name="Ada").click()
    expect(page.get_by_text(re.compile(r"Ada · model gpt-test"))).to_be_visible()

    fake.queue_chat(3.0)  # Ada thinks for a while...
    fake.queue_chat(say("Ada's late answer"))
    chatbot = page.locator("#chatbot")
    page.get_by_role("textbox", name="Message").fill("Question for Ada")
    page.get_by_role("button", name="Send").click()
    expect(chatbot.get_by_text("Question for Ada")).to_be_visible()

    page.get_by_label("Agent", exact=True).click()
    page.get_by_role("option", name="Bob").click()
    expect(page.get_by_text(re.compile(r"Bob · model gpt-test"))).to_be_visible()
    expect(chatbot.get_by_text("Question for Ada")).to_have_count(0)
    wait_until(lambda: "Ada's late answer" in stored_texts(api, "Ada"))  # her turn ran to its end

    fake.queue_chat(say("Bob here."))
    page.get_by_role("textbox", name="Message").fill("Question for Bob")
    page.get_by_role("button", name="Send").click()
    expect(chatbot.get_by_text("Bob here.")).to_be_visible()
    expect(chatbot.get_by_text("Ada's late answer")).to_have_count(0)
    expect(chatbot.get_by_text("Question for Ada")).to_have_count(0)
    assert "Question for Ada" not in stored_texts(api, "Bob")
    last_request = [body for path, body in fake.requests if path.endswith("/chat/completions")][-1]
    assert "Question for Ada" not in str(last_request["messages"])

    page.get_by_label("Agent", exact=True).click()
    page.get_by_role("option", name="Ada").click()
    expect(chatbot.get_by_text("Ada's late answer")).to_be_visible()
    expect(chatbot.get_by_text("Bob here.")).to_have_count(0)
