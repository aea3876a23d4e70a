"""Memory tab: a draft outlives the agent's turn, and a revert says what it undoes before it does it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.helpers import create_agent, open_tab, say, tool_call, wait_until


def test_an_unsaved_draft_survives_the_agents_turn(page: Page, served):
    fake = served["fake"]
    create_agent(page, "Gus")
    open_tab(page, "Memory")
    human = page.locator("#block-human textarea")
    persona = page.locator("#block-persona textarea")
    expect(human).to_be_visible()
    draft = "Name: Gus\nLikes: kites"
    human.fill(draft)  # typed, not saved

    open_tab(page, "Chat")
    fake.queue_chat(say("Hello!"))  # a first reply must send a message (first-message verification)
    page.get_by_role("textbox", name="Message").fill("Hi")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Hello!")).to_be_visible()
    fake.queue_chat({"content": "Note both.", "tool_calls": [
        tool_call("core_memory_append", {"name": "persona", "content": "I like pilots.", "request_heartbeat": True},
                  "m1")]})
    fake.queue_chat({"content": "And the human.", "tool_calls": [
        tool_call("core_memory_append", {"name": "human", "content": "Job: pilot", "request_heartbeat": True},
                  "m2")]})
    fake.queue_chat(say("Noted."))
    page.get_by_role("textbox", name="Message").fill("I'm a pilot")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Noted.")).to_be_visible()

    open_tab(page, "Memory")
    expect(persona).to_have_value(re.compile("I like pilots."))  # no draft there: it follows the agent
    expect(page.locator("#note-human")).to_contain_text("The agent changed this block")
    expect(page.locator("#note-human")).to_contain_text("Job: pilot")
    expect(human).to_have_value(draft)
    page.get_by_role("button", name="Save human").click()  # the person saw the note: the draft wins
    expect(page.get_by_role("gridcell", name="edited in the UI")).to_be_visible()
    expect(page.locator("#note-human")).not_to_contain_text("The agent changed")
    from engine.api import MemGPT

    blocks = {b.label: b.value for b in MemGPT(runtime=served["runtime"]).get_core_memory("Gus")}
    assert blocks["human"] == draft


def test_revert_asks_first_and_is_recorded_as_a_new_edit(page: Page, served):
    from engine.api import MemGPT

    api = MemGPT(runtime=served["runtime"])
    create_agent(page, "Hal")
    open_tab(page, "Memory")
    human = page.locator("#block-human textarea")
    expect(human).to_be_visible()
    original = human.input_value()
    before = len(api.memory_history("Hal", "human"))
    for n, text in enumerate(("Name: Hal", "Name: Hal\nLikes: tea", "Name: Hal\nLikes: tea\nJob: cook"), 1):
        human.fill(text)
        page.get_by_role("button", name="Save human").click()
        wait_until(lambda n=n: len(api.memory_history("Hal", "human")) == before + n)
    first, *later = sorted(e.id for e in api.memory_history("Hal", "human")[:3])

    page.get_by_label("Edit number").fill(str(first))
    page.get_by_label("Edit number").press("Enter")
    page.get_by_role("button", name="Revert this edit").click()
    confirm = page.locator("#revert-confirm")
    expect(confirm).to_contain_text(f"2 later edits of human (#{later[0]}, #{later[1]}) are undone with it")
    expect(human).to_have_value("Name: Hal\nLikes: tea\nJob: cook")  # nothing changed yet
    page.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    assert len(api.memory_history("Hal", "human")) == before + 3

    page.get_by_role("button", name="Revert this edit").click()
    page.get_by_role("button", name="Confirm revert").click()
    expect(human).to_have_value(original)
    expect(page.get_by_role("gridcell", name=f"revert of edit #{first}")).to_be_visible()
    edits = api.memory_history("Hal", "human")
    assert len(edits) == before + 4 and edits[0].new_value == original  # the later edits stay in the history
    expect(page.get_by_label("Edit number")).to_have_value(str(edits[0].id))  # the new edit is the one shown
    expect(page.get_by_text("Job: cook").first).to_be_visible()  # its diff: what the revert took away
