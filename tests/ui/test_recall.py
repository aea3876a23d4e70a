"""The Recall tab: the whole history, paged from the newest page, searchable, also what was summarized out."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.conftest import SCREENSHOTS
from tests.ui.helpers import create_agent, open_tab, say


def test_browse_and_search_the_whole_history(page: Page, served):
    from engine.api import MemGPT

    fake, api = served["fake"], MemGPT(runtime=served["runtime"])
    create_agent(page, "Ada")
    for i in range(12):
        fake.queue_chat(say(f"Reply number {i}.", call_id=f"r{i}"))
        api.user_message("Ada", "My owl is called Hoot." if i == 2 else f"Message number {i}.")
    fake.queue_chat({"content": "Kim talked about a pet bird and counted messages."})
    api.run_command("Ada", "/summarize")
    listing = api.find_recall("Ada", "", k=20)
    assert listing.total > 20 and not all(m.in_context for m in listing.messages)

    open_tab(page, "Recall")
    position = page.locator("#recall-position")
    table = page.locator("#recall-results")
    expect(position).to_contain_text(f"Page {listing.last + 1} of {listing.last + 1} · {listing.total} messages")
    expect(table.get_by_role("gridcell", name="Reply number 11.")).to_be_visible()  # the newest page first
    page.get_by_role("button", name="◀ Earlier").click()
    expect(position).to_contain_text(f"Page {listing.last} of {listing.last + 1}")
    expect(table.get_by_role("gridcell", name="My owl is called Hoot.")).to_be_visible()
    expect(table.get_by_role("gridcell", name="no (summarized out)").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "recall.png"), full_page=True)

    page.get_by_label("Search the conversation history").fill("Hoot")
    page.get_by_label("Exact words").check()
    page.get_by_role("button", name="Search history").click()
    expect(position).to_contain_text("Page 1 of 1 · 1 match")
    expect(table.get_by_role("gridcell", name="My owl is called Hoot.")).to_be_visible()
    expect(table.get_by_role("gridcell", name="no (summarized out)")).to_be_visible()  # found though out of the window

    page.get_by_label("Search the conversation history").fill("")
    page.get_by_label("From (YYYY-MM-DD)").fill("2999-01-01")
    page.get_by_role("button", name="Search history").click()
    expect(position).to_contain_text("No messages match.")
    page.get_by_label("From (YYYY-MM-DD)").fill("yesterday")
    page.get_by_role("button", name="Search history").click()
    expect(page.get_by_text(re.compile("is not a valid date")).first).to_be_visible()
