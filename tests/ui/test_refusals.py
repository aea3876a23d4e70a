"""A refused action says why in a toast; no red "Error" badge lands on the fields it used."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from engine import recall_index
from tests.ui.helpers import create_agent, error_badges, open_tab, say


def test_refusals_are_toasts_and_the_fields_stay_usable(page: Page, served):
    fake = served["fake"]
    name = page.get_by_label("Name", exact=True)
    page.get_by_role("button", name="Create agent").click()  # no name typed
    expect(page.get_by_text("An agent name cannot be empty.")).to_be_visible()
    expect(error_badges(page)).to_have_count(0)
    name.click()  # would time out if a badge covered the field
    name.fill("Dot")

    message = page.get_by_role("textbox", name="Message")
    message.fill("Anyone there?")
    page.get_by_role("button", name="Send").click()  # no agent picked yet
    expect(page.get_by_text("Pick or create an agent first (Chat tab).")).to_be_visible()
    expect(error_badges(page)).to_have_count(0)
    expect(message).to_have_value("Anyone there?")

    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text(re.compile(r"Dot · model gpt-test"))).to_be_visible()
    fake.queue_chat(say("Yes, I am here."))
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Yes, I am here.")).to_be_visible()

    open_tab(page, "Archival")
    passage = page.get_by_label("New passage")
    passage.fill("The spare key is under the blue pot.")
    # The failure goes to the next embedding request: wait until the chat's messages are embedded in the
    # background first, or that request took it and the Insert succeeded (a fresh-clone run on a busy machine).
    from engine.agents import get_agent
    from engine.store import messages as messages_store

    store = served["runtime"].store
    dot = get_agent(store, "Dot").id
    deadline = time.monotonic() + 20
    while messages_store.pending_vectors(store, dot, 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not messages_store.pending_vectors(store, dot, 1)
    recall_index.indexer(store).idle()
    fake.embedding_failures.append((400, {"error": {"message": "embedding model is asleep"}}))
    page.get_by_role("button", name="Insert").click()
    expect(page.get_by_text(re.compile("embedding model is asleep")).first).to_be_visible()
    expect(error_badges(page)).to_have_count(0)
    expect(passage).to_have_value("The spare key is under the blue pot.")
    page.get_by_role("button", name="Insert").click()  # the same text, now that the embedder answers
    expect(page.get_by_text(re.compile("Inserted as passage"))).to_be_visible()
    expect(error_badges(page)).to_have_count(0)


def test_a_later_success_leaves_no_trace_of_an_earlier_refusal(page: Page, served):
    page.get_by_role("textbox", name="Message").fill("hello?")
    page.get_by_role("button", name="Send").click()  # refused: no agent
    expect(page.get_by_text("Pick or create an agent first (Chat tab).")).to_be_visible()
    create_agent(page, "Eve")  # a success elsewhere on the page
    expect(error_badges(page)).to_have_count(0)
    page.get_by_role("textbox", name="Message").click()


def test_a_message_over_the_limit_stays_in_the_box(page: Page, served):
    create_agent(page, "Fay")
    message = page.get_by_role("textbox", name="Message")
    long_text = "word " * 4001  # 20,005 characters: over the 20,000 a message may have
    message.fill(long_text)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text(re.compile(r"Not sent: .*the limit is 20000\. Your text is still in the box"))).to_be_visible()
    expect(message).to_have_value(long_text)
    expect(error_badges(page)).to_have_count(0)
    message.fill("word " * 10)  # shortened, it goes through and the box empties
    served["fake"].queue_chat(say("Got it."))
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Got it.")).to_be_visible()
    expect(message).to_have_value("")
