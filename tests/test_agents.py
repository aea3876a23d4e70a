"""Agents: create, list, get, rename, delete; names; presets, personas and humans."""

from __future__ import annotations

import pytest

from engine.agents import create_agent, delete_agent, get_agent, list_agents, rename_agent
from engine.config import EmbeddingConfig, LLMConfig
from engine.errors import InvalidName, MemoryLimitExceeded, NotFound, PresetError
from engine.memory import CoreMemory
from engine.tools.registry import builtin_registry

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


def test_create_records_everything(store, agent, library):
    row = get_agent(store, "ada")
    assert row.id == agent.id
    assert row.preset == "memgpt_chat"
    assert row.system_prompt == library.text("system_prompts", "memgpt_chat")
    assert "send_message" in row.functions and "http_request" not in row.functions
    assert (row.embedding_model, row.embedding_dim) == ("test-hash", 64)
    assert row.llm_config["model"] == "scripted"
    assert get_agent(store, agent.id).name == "ada"


def test_the_embedded_model_gets_the_short_companion_prompt_unless_a_preset_is_chosen(make_agent, settings, library):
    embedded = LLMConfig()  # the shipped 135M model
    short = make_agent("small", llm=embedded)
    assert (short.preset, short.system_prompt) == ("memgpt_small", library.text("system_prompts", "memgpt_chat_compressed"))
    assert short.functions == library.preset("memgpt_chat", builtin_registry()).functions
    assert len(short.system_prompt) < len(library.text("system_prompts", "memgpt_chat")) / 2
    # A preset chosen for the agent, a GGUF file of the user's, or a configured default are kept as they are.
    assert make_agent("chosen", llm=embedded, preset="memgpt_chat").preset == "memgpt_chat"
    assert make_agent("gguf", llm=LLMConfig(endpoint="/models/big.gguf")).preset == "memgpt_chat"
    settings.default_preset = "memgpt_docs"
    assert make_agent("docs", llm=embedded).preset == "memgpt_docs"


def test_names_are_unique_case_insensitively(make_agent):
    make_agent("Ada Lovelace")
    with pytest.raises(InvalidName, match="already exists"):
        make_agent("ada lovelace")


@pytest.mark.parametrize("name", ["", "   ", "-dash", "a" * 65, "semi;colon", "new\nline", "../etc"])
def test_bad_names(make_agent, name):
    with pytest.raises(InvalidName):
        make_agent(name)


def test_list_rename_delete(store, make_agent):
    a = make_agent("zed")
    make_agent("amy")
    assert [r.name for r in list_agents(store)] == ["amy", "zed"]
    rename_agent(store, a.id, "Zed 2")
    assert get_agent(store, a.id).name == "Zed 2"
    with pytest.raises(InvalidName):
        rename_agent(store, a.id, "amy")
    rename_agent(store, a.id, "zed 2")  # a change of case only is allowed
    delete_agent(store, a.id)
    with pytest.raises(NotFound):
        get_agent(store, a.id)
    with pytest.raises(NotFound):
        delete_agent(store, a.id)


def test_presets_personas_humans(make_agent, store, library):
    extras = make_agent("x", preset="memgpt_extras", persona="coach", human="alex")
    assert "http_request" in extras.functions
    core = CoreMemory(store, extras.id)
    assert core.get("persona").value == library.text("personas", "coach")
    assert core.get("human").value == library.text("humans", "alex")
    with pytest.raises(PresetError, match="No persona named 'nobody'. Available:"):
        make_agent("y", persona="nobody")
    with pytest.raises(PresetError, match="No preset"):
        make_agent("y", preset="missing")


def test_create_is_all_or_nothing(make_agent, store, library, home):
    library.add_text("personas", "huge", "x" * 2500)
    with pytest.raises(MemoryLimitExceeded):
        make_agent("toolong", persona="huge")
    assert list_agents(store) == []


def test_embedding_is_fixed_at_creation(store, settings, library, registry):
    row = create_agent(
        store, settings, library, registry, "emb",
        embedding=EmbeddingConfig(endpoint_type="openai", model="text-embedding-3-small", dim=1536),
    )
    assert (row.embedding_model, row.embedding_dim) == ("text-embedding-3-small", 1536)
