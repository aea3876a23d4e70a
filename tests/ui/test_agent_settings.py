"""The Agent tab: change the model and embedder (re-embedding with progress), rename, copy, export, import, delete."""

from __future__ import annotations

import json
import re

import gradio as gr
import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import SCREENSHOTS
from tests.ui.helpers import create_agent, open_tab, say


def test_model_and_embedder_change_reembeds_with_progress(page: Page, served):
    from engine.api import MemGPT

    fake, api = served["fake"], MemGPT(runtime=served["runtime"])
    create_agent(page, "Ada")
    api.insert_archival("Ada", ["The spare key is under the blue pot.", "Kim's owl is called Hoot.",
                                "The boat leaves at noon."])
    open_tab(page, "Agent")
    model = page.get_by_label("Agent's model", exact=True)
    expect(model).to_have_value("gpt-test")
    expect(page.get_by_label("Agent's embedding model", exact=True)).to_have_value("test-hash")
    model.fill("gpt-test-2")
    page.get_by_label("Agent's embedding model", exact=True).fill("test-hash-b")
    fake.embedding_delay = 2.0  # long enough to see the bar
    page.get_by_role("button", name="Save model settings").click()
    # The bar shows over every output, the hidden Chat tab's header too: the visible one counts.
    expect(page.get_by_text(re.compile("re-embedded 0 of 3 passages")).locator("visible=true").first).to_be_visible()
    expect(page.locator("#agent-status")).to_contain_text("Re-embedded 3 passages.")
    agent = api.get_agent("Ada")
    assert (agent.llm.model, agent.embedding.model) == ("gpt-test-2", "test-hash-b")
    assert agent.llm.endpoint == fake.base_url  # the fields not changed are kept
    open_tab(page, "Chat")
    expect(page.get_by_text(re.compile(r"Ada · model gpt-test-2 .* embedder test-hash-b"))).to_be_visible()


def test_a_local_model_file_cannot_be_typed(page: Page, served):
    create_agent(page, "Bea")
    open_tab(page, "Agent")
    page.get_by_label("Agent's model provider", exact=True).click()
    page.get_by_role("option", name="local", exact=True).click()
    page.get_by_label("Agent's base URL", exact=True).fill("/etc/passwd")
    page.get_by_role("button", name="Save model settings").click()
    expect(page.get_by_text(re.compile("A local model's file cannot be chosen from the page"))).to_be_visible()
    from engine.api import MemGPT

    assert MemGPT(runtime=served["runtime"]).get_agent("Bea").llm.endpoint_type == "openai-compatible"


def test_rename_duplicate_export_import_delete(page: Page, served, tmp_path):
    from engine.api import MemGPT

    fake, api = served["fake"], MemGPT(runtime=served["runtime"])
    create_agent(page, "Ada")
    fake.queue_chat(say("Hello Kim."))
    page.get_by_role("textbox", name="Message").fill("I am Kim")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Hello Kim.")).to_be_visible()

    open_tab(page, "Agent")
    page.get_by_label("New name", exact=True).fill("Ada Lovelace")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#agent-status")).to_contain_text("Renamed to Ada Lovelace.")
    assert [a.name for a in api.list_agents()] == ["Ada Lovelace"]

    page.get_by_label("Name of the copy", exact=True).fill("Ada twin")
    page.get_by_role("button", name="Duplicate").click()
    expect(page.locator("#agent-status")).to_contain_text("Copied as Ada twin")
    assert "I am Kim" in " ".join(m.content or "" for m in api.messages("Ada twin"))

    page.get_by_role("button", name="Export this agent").click()
    link = page.locator("#export-file a").first
    expect(link).to_have_attribute("download", "Ada-Lovelace.memgpt.json")
    page.screenshot(path=str(SCREENSHOTS / "agent.png"), full_page=True)
    with page.expect_download() as download:
        link.click()
    exported = tmp_path / "exported.json"
    download.value.save_as(exported)
    assert "Ada Lovelace" in json.dumps(json.loads(exported.read_text()))

    page.locator("#import-file input[type=file]").set_input_files(str(exported))
    page.get_by_role("button", name="Import as a new agent").click()
    expect(page.locator("#agent-status")).to_contain_text("Imported as Ada Lovelace (2)")
    expect(page.get_by_label("New name", exact=True)).to_have_value("Ada Lovelace (2)")  # the import is picked

    page.get_by_role("button", name="Delete this agent").click()
    expect(page.locator("#delete-confirm")).to_contain_text("Delete Ada Lovelace (2)")
    page.get_by_role("button", name="Keep it").click()
    expect(page.locator("#delete-confirm")).to_be_hidden()
    assert len(api.list_agents()) == 3
    page.get_by_role("button", name="Delete this agent").click()
    page.get_by_role("button", name="Confirm delete").click()
    expect(page.locator("#agent-status")).to_contain_text("Deleted Ada Lovelace (2).")
    assert sorted(a.name for a in api.list_agents()) == ["Ada Lovelace", "Ada twin"]
    open_tab(page, "Chat")
    expect(page.get_by_text("Pick an agent, or create one below.")).to_be_visible()


def test_the_handlers_never_take_a_path_from_the_request():
    from engine.api import AgentInfo
    from engine.config import EmbeddingConfig, LLMConfig
    from webapp.agent_tab import safe_file_name, typed_configs
    from webapp.exposure import Exposure, Refused

    agent = AgentInfo(1, "x", "p", None, None, [], LLMConfig("openai-compatible", "m", "http://h/v1"),
                      EmbeddingConfig("openai-compatible", "e", 8, "http://h/v1"), "", "")
    with pytest.raises(gr.Error):
        typed_configs(agent, "local", "m", "/home/me/model.gguf", "local", "e", 8, "")
    assert safe_file_name("../../etc/passwd") == "etc-passwd.memgpt.json"
    assert "/" not in safe_file_name("a/b\\c")
    with pytest.raises(Refused):
        Exposure.check_upload("/etc/passwd")  # an import reads only Gradio's uploads
