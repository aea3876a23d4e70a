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
    passage_id = page.get_by_label("Passage id")
    expect(passage_id).to_have_value("")  # no passage is picked yet: no id, not a 0 to delete
    expect(passage_id).to_have_attribute("placeholder", re.compile("click a row"))
    passage_id.fill("1; DROP TABLE passages")  # typed by hand: a readable refusal, nothing deleted
    page.get_by_role("button", name="Delete passage").click()
    expect(page.get_by_text("A passage id is a whole number").first).to_be_visible()
    assert api.archival_count("Ada") == 25
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
    expect(passage_id).to_have_value("")  # the id of a deleted passage is not left to delete again
    expect(page.get_by_role("gridcell", name=text, exact=True)).to_have_count(0)  # redrawn

    page.get_by_label("Search archival memory").fill("")  # an empty search lists what the agent has
    open_tab(page, "Chat")
    page.get_by_label("Agent", exact=True).click()
    page.get_by_role("option", name="Bob").click()
    expect(page.get_by_text(re.compile(r"Bob · model gpt-test"))).to_be_visible()
    open_tab(page, "Archival")
    expect(page.get_by_role("gridcell", name=re.compile("Ada's note"))).to_have_count(0)
    expect(page.get_by_role("gridcell", name="Bob keeps the boat keys in the red tin.")).to_be_visible()


def test_a_source_passage_is_deletable_with_a_warning_and_matches_are_in_words(page: Page, served):
    from engine.api import MemGPT
    from engine.loaders.readers import Document

    api = MemGPT(runtime=served["runtime"])
    create_agent(page, "Bob")
    create_agent(page, "Ada")  # picked
    embedding = api.get_agent("Ada").embedding
    api.load("manual", [Document("The blue widget needs a 9 volt battery."),
                        Document("The red widget runs on sunlight.")], embedding=embedding)
    api.attach("Ada", "manual")
    api.attach("Bob", "manual")
    api.insert_archival("Ada", "Ada once owned a blue bicycle.")

    open_tab(page, "Archival")
    page.get_by_label("Search archival memory").fill("blue widget battery")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_text("3 results in all (all shown).")).to_be_visible()
    results = page.locator("#archival-results")
    expect(results.get_by_role("columnheader", name="match")).to_be_visible()
    expect(results.get_by_role("columnheader", name="score")).to_have_count(0)
    rows = results.get_by_role("row")
    expect(rows).to_have_count(4)  # the header and three results
    matches = [rows.nth(n).get_by_role("gridcell").nth(1) for n in (1, 2, 3)]
    expect(matches[0]).to_have_text(re.compile(r"^\s*High \((words and meaning|words|meaning)\)\s*$"))
    for cell in matches:  # words, not the raw fused numbers
        expect(cell).to_have_text(re.compile(r"^\s*(High|Medium|Low) \((words and meaning|words|meaning|stored next "
                                             r"to a match)\)\s*$"))

    page.get_by_role("gridcell", name="The blue widget needs a 9 volt battery.").click()
    page.get_by_role("button", name="Delete passage").click()
    confirm = page.locator("#passage-confirm")
    expect(confirm).to_contain_text("from the data source manual?")
    expect(confirm).to_contain_text("every agent attached to it loses it, not just this one (attached: Ada, Bob)")
    confirm.get_by_role("button", name="Confirm delete").click()
    expect(page.get_by_text(re.compile(r"Deleted passage \d+\. 2 results in all"))).to_be_visible()
    assert api.archival_count("Bob") == 1  # Bob's view of the source lost it too
    expect(page.get_by_role("gridcell", name="The blue widget needs a 9 volt battery.")).to_have_count(0)
