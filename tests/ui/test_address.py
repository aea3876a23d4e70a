"""The agent in the address: `?agent=NAME` opens it, a pick writes it, a reload keeps it; the list follows new agents."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def test_the_address_names_the_agent(page: Page, served):
    from engine.api import MemGPT

    api = MemGPT(runtime=served["runtime"])
    api.create_agent("Ada")
    api.create_agent("Bob")
    page.goto(served["url"] + "?agent=bob")  # any letter case, as everywhere
    expect(page.get_by_text(re.compile(r"Bob · model gpt-test"))).to_be_visible()
    expect(page.get_by_label("Agent", exact=True)).to_have_value("Bob")

    page.get_by_label("Agent", exact=True).click()
    page.get_by_role("option", name="Ada").click()
    expect(page.get_by_text(re.compile(r"Ada · model gpt-test"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"\?agent=Ada$"))
    page.reload()
    expect(page.get_by_text(re.compile(r"Ada · model gpt-test"))).to_be_visible()

    page.goto(served["url"] + "?agent=%3Cscript%3Enobody")  # a name that is no agent picks none
    expect(page.get_by_text("Pick an agent, or create one below.")).to_be_visible()
    expect(page.get_by_label("Agent", exact=True)).to_have_value("")


def test_the_agent_list_refreshes_itself(page: Page, served):
    from engine.api import MemGPT

    api = MemGPT(runtime=served["runtime"])
    expect(page.get_by_text("Pick an agent, or create one below.")).to_be_visible()
    api.create_agent("Cy")  # made elsewhere: another tab, the terminal
    picker = page.get_by_label("Agent", exact=True)
    picker.click()
    expect(page.get_by_role("option", name="Cy")).to_be_visible()  # within a tick, without ↻ Refresh
    page.get_by_role("option", name="Cy").click()
    expect(page.get_by_text(re.compile(r"Cy · model gpt-test"))).to_be_visible()
