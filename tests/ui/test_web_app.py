"""The web app in a real Chromium: create, chat, memory, archival, config, context, failures."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import SCREENSHOTS
from tests.ui.helpers import create_agent, open_tab, tool_call


@pytest.mark.both_stores
def test_create_chat_memory_context(page: Page, served):
    fake = served["fake"]
    create_agent(page, "Ada")
    expect(page.get_by_text(re.compile(r"embedder test-hash \(64-d"))).to_be_visible()
    fake.queue_chat({"content": "A new person. Greet them.",
                     "tool_calls": [tool_call("send_message", {"message": "Hello there!"}, "c0")]})
    page.get_by_role("textbox", name="Message").fill("Hi")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Hello there!")).to_be_visible()
    fake.queue_chat({"content": "They told me their name; I should remember it.",
                     "tool_calls": [tool_call("core_memory_append",
                                              {"name": "human", "content": "Name: Kim", "request_heartbeat": True},
                                              "c1")]})
    fake.queue_chat({"content": "Now I greet them.",
                     "tool_calls": [tool_call("send_message", {"message": "Lovely to meet you, Kim!"}, "c2")]})
    page.get_by_role("textbox", name="Message").fill("Hi, I'm Kim")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Lovely to meet you, Kim!")).to_be_visible()
    expect(page.get_by_text("💭 Inner monologue").first).to_be_visible()
    expect(page.get_by_text("🛠️ core_memory_append")).to_be_visible()
    expect(page.get_by_text(re.compile("this turn"))).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "chat.png"), full_page=True)

    open_tab(page, "Memory")
    human = page.locator("#block-human textarea")
    expect(human).to_have_value(re.compile("Name: Kim"))
    human.fill("Name: Kim\nLikes: owls")
    expect(page.locator("#count-human")).to_contain_text("21/2000")
    page.get_by_role("button", name="Save human").click()
    expect(page.get_by_role("gridcell", name="edited in the UI")).to_be_visible()
    expect(page.get_by_role("gridcell", name="core_memory_append")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "memory.png"), full_page=True)
    human.fill("x" * 2001)
    expect(page.locator("#count-human")).to_contain_text("over the limit by 1")
    expect(page.get_by_role("button", name="Save human")).to_be_disabled()  # the counter says why
    expect(page.get_by_role("gridcell", name="edited in the UI")).to_be_visible()  # history still shown

    open_tab(page, "Context")
    page.get_by_role("button", name="↻ Refresh").last.click()
    expect(page.get_by_text(re.compile(r"of 8,192 tokens used"))).to_be_visible()
    page.get_by_role("button", name="Show the raw prompt").click()
    expect(page.get_by_label("Raw prompt (messages and functions, as sent)")).to_have_value(re.compile("Likes: owls"))
    page.screenshot(path=str(SCREENSHOTS / "context.png"), full_page=True)


@pytest.mark.both_stores
def test_archival_insert_and_search(page: Page, served):
    create_agent(page, "Bea")
    open_tab(page, "Archival")
    page.get_by_label("New passage").fill("The lighthouse keeper's cat is called Miso.")
    page.get_by_role("button", name="Insert").click()
    expect(page.get_by_text(re.compile("Inserted as passage"))).to_be_visible()
    page.get_by_label("Search archival memory").fill("what is the cat called")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("gridcell", name=re.compile("Miso"))).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "archival.png"), full_page=True)
    open_tab(page, "Config")
    where = "a PostgreSQL server" if served["runtime"].store.dialect == "postgres" else "the SQLite file"
    expect(page.get_by_text(f"archival memory are stored in {where}")).to_be_visible()


def test_config_persists_and_dead_endpoint_is_readable(page: Page, served):
    open_tab(page, "Config")
    endpoint = page.get_by_label("Base URL (or GGUF path for local)")
    expect(endpoint).to_have_value(served["runtime"].settings.llm.endpoint)  # the page's load event filled it first
    endpoint.fill("http://127.0.0.1:9/v1")
    page.get_by_label("API key for this provider (write-only; empty keeps the current one)").fill("sk-secret-123")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text(re.compile("Connection failed"))).to_be_visible(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "config.png"), full_page=True)
    assert "sk-secret-123" not in page.content()
    page.reload()
    open_tab(page, "Config")
    expect(page.get_by_label("Base URL (or GGUF path for local)")).to_have_value("http://127.0.0.1:9/v1")
    expect(page.get_by_label("API key for this provider (write-only; empty keeps the current one)")).to_have_value("")
    assert "sk-secret-123" not in (served["home"] / "config.yaml").read_text()

    # A new agent now points at the dead port: the turn fails readably and the app keeps working.
    open_tab(page, "Chat")
    create_agent_dead(page)
    page.get_by_role("textbox", name="Message").fill("hello?")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text(re.compile("Cannot reach the model server"))).to_be_visible(timeout=90_000)
    open_tab(page, "Memory")
    expect(page.locator("#block-persona textarea")).to_be_visible()


def create_agent_dead(page: Page) -> None:
    page.get_by_label("Name", exact=True).fill("Dead End")
    page.get_by_label("Base URL (servers; GGUF path for local)").fill("http://127.0.0.1:9/v1")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text(re.compile(r"Dead End · model gpt-test \(openai-compatible at http://127.0.0.1:9/v1"))).to_be_visible()


def test_upload_a_file_and_watch_it_load(page: Page, served, tmp_path):
    create_agent(page, "Cy")
    notes = tmp_path / "garden-notes.txt"
    notes.write_text("The tomatoes go in the south bed.\n\n" + "Compost every spring. " * 400)
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"\x00\x01\x02 binary junk")
    open_tab(page, "Archival")
    page.locator("input[type=file][multiple]").set_input_files([str(notes), str(broken)])
    page.get_by_label("Data source name").fill("garden")
    page.get_by_role("button", name="Load into the source").click()
    expect(page.get_by_text(re.compile(r"skipped .*broken\.txt"))).to_be_visible(timeout=60_000)
    expect(page.get_by_role("gridcell", name="garden", exact=True)).to_be_visible()
    page.get_by_label("Source", exact=True).click()
    page.get_by_role("option", name="garden").click()
    page.get_by_role("button", name="Attach to this agent").click()
    expect(page.get_by_text("Attached garden.")).to_be_visible()
    page.get_by_label("Search archival memory").fill("where do the tomatoes go")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("gridcell", name=re.compile("south bed"))).to_be_visible()
