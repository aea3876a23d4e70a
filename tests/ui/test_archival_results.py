"""The Archival tab: one search of 20, results that follow the agent, deletes confirmed and redrawn."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.helpers import create_agent, open_tab


def test_results_follow_the_agent_and_deletes_are_confirmed(page: Page, served):
    from engine.api import MemGPT

    api = MemGPT(runtime=served["runtime"])
    create_agent(page, "Bob")
    create_agent(page, "Ada")  # picked
    ids = api.insert_archival("Ada", [f"Ada's note number {i} about the garden." for i in range(25)])
    api.insert_archival("Bob", "Bob keeps the boat keys in the red tin.")
    served["fake"].requests.clear()

    open_tab(page, "Archival")
    page.get_by_label("Search archival memory").fill("garden note")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_text("25 results in all (the first 20 shown).")).to_be_visible()
    searches = [b for path, b in served["fake"].requests if path.endswith("/embeddings")]
    assert len(searches) == 1  # one search (one query embedding), not a loop of four pages

    cell = page.get_by_role("gridcell", name=re.compile(r"Ada's note number \d+ about")).first
    number = int(re.search(r"number (\d+)", cell.inner_text()).group(1))
    text = f"Ada's note number {number} about the garden."
    cell.click()  # a row click picks its passage
    expect(page.get_by_label("Passage id")).to_have_value(str(ids[number]))
    page.get_by_role("button", name="Delete passage").click()
    confirm = page.locator("#passage-confirm")
    expect(confirm).to_contain_text(f"Delete passage {ids[number]}?")
    expect(confirm).to_contain_text(text)
    page.get_by_role("button", name="Keep it").last.click()
    expect(confirm).to_be_hidden()
    assert api.archival_count("Ada") == 25
    page.get_by_role("button", name="Delete passage").click()
    page.locator("#passage-confirm").get_by_role("button", name="Confirm delete").click()
    expect(page.get_by_text(f"Deleted passage {ids[number]}. 24 results in all (the first 20 shown).")).to_be_visible()
    assert api.archival_count("Ada") == 24
    expect(page.get_by_role("gridcell", name=text, exact=True)).to_have_count(0)  # redrawn

    page.get_by_label("Search archival memory").fill("")  # an empty search lists what the agent has
    open_tab(page, "Chat")
    page.get_by_label("Agent", exact=True).click()
    page.get_by_role("option", name="Bob").click()
    expect(page.get_by_text(re.compile(r"Bob · model gpt-test"))).to_be_visible()
    open_tab(page, "Archival")
    expect(page.get_by_role("gridcell", name=re.compile("Ada's note"))).to_have_count(0)
    expect(page.get_by_role("gridcell", name="Bob keeps the boat keys in the red tin.")).to_be_visible()
