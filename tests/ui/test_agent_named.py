"""The New agent form folds once an agent exists, and every tab names the agent it shows."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.helpers import create_agent, open_tab


def test_the_form_folds_and_each_tab_names_the_agent(page: Page, served):
    name = page.get_by_label("Name", exact=True)
    expect(name).to_be_visible()  # no agent yet: the form is open
    open_tab(page, "Memory")
    expect(page.get_by_text("No agent picked: pick or create one in the Chat tab.").first).to_be_visible()
    open_tab(page, "Chat")
    create_agent(page, "Ada")
    expect(name).to_be_hidden()  # folded: the conversation starts near the top
    for tab in ("Memory", "Recall", "Archival", "Context"):
        open_tab(page, tab)
        expect(page.get_by_role("tabpanel").get_by_text("Agent: Ada")).to_be_visible()

    open_tab(page, "Agent")
    page.get_by_label("New name", exact=True).fill("Ada Two")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#agent-status")).to_contain_text("Renamed to Ada Two.")
    open_tab(page, "Archival")
    expect(page.get_by_role("tabpanel").get_by_text("Agent: Ada Two")).to_be_visible()

    page.reload()  # agents exist: the form starts folded
    expect(page.get_by_role("button", name=re.compile("^New agent"))).to_be_visible()
    expect(name).to_be_hidden()
    create_agent(page, "Bob")  # opening it first
    expect(page.get_by_role("tabpanel").get_by_text(re.compile(r"Bob · model gpt-test"))).to_be_visible()
