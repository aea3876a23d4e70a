"""Creating, finding, renaming and deleting agents.

An agent is created from a preset (system prompt + function list), a persona and
a human (the initial core memory blocks), model settings and embedding settings.
The embedding model and dimension are fixed at creation: passages are never
mixed across dimensions.
"""

from __future__ import annotations

import dataclasses
import weakref

from engine.config import EmbeddingConfig, LLMConfig, Settings, default_preset_for
from engine.errors import InvalidName, MemoryLimitExceeded
from engine.memory import CoreMemory, RecallMemory, render_memory_section
from engine.names import check_name
from engine.presets import PresetLibrary
from engine.store import Store
from engine.store import agents as agents_store
from engine.store import blocks as blocks_store
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from engine.store.agents import AgentRow
from engine.tools.registry import ToolRegistry


def check_agent_name(name: str) -> str:
    """The name as it will be stored, or InvalidName saying what is wrong (engine/names.py)."""
    return check_name(name, "agent")


def create_agent(
    store: Store,
    settings: Settings,
    library: PresetLibrary,
    registry: ToolRegistry,
    name: str,
    *,
    preset: str | None = None,
    persona: str | None = None,
    human: str | None = None,
    llm: LLMConfig | None = None,
    embedding: EmbeddingConfig | None = None,
) -> AgentRow:
    name = check_agent_name(name)
    llm = llm or settings.llm
    preset_name = preset or default_preset_for(settings, llm)
    persona = persona or settings.default_persona
    human = human or settings.default_human
    embedding = embedding or settings.embedding
    chosen = library.preset(preset_name, registry)
    system_prompt = library.text("system_prompts", chosen.system_prompt)
    texts = {"persona": library.text("personas", persona), "human": library.text("humans", human)}
    limit = settings.block_char_limit
    for label, text in texts.items():
        if len(text) > limit:
            raise MemoryLimitExceeded(f"The {label} text has {len(text)} characters; a block holds at most {limit}.")
    with store.atomic():
        agent_id = agents_store.insert(
            store,
            name=name,
            preset=preset_name,
            system_prompt=system_prompt,
            functions=chosen.functions,
            persona=persona,
            human=human,
            llm_config=dataclasses.asdict(llm),
            embedding_config=dataclasses.asdict(embedding),
            embedding_model=embedding.model,
            embedding_dim=embedding.dim,
        )
        templates = {"persona": persona, "human": human}
        for label, text in texts.items():
            blocks_store.add(store, agent_id, label, text, limit, "system", f"created from {label} {templates[label]!r}")
    return agents_store.get(store, agent_id)


def list_agents(store: Store) -> list[AgentRow]:
    return agents_store.list_all(store)


def get_agent(store: Store, name_or_id: str | int) -> AgentRow:
    if isinstance(name_or_id, int):
        return agents_store.get(store, name_or_id)
    return agents_store.get_by_name(store, name_or_id)


def rename_agent(store: Store, agent_id: int, new_name: str) -> AgentRow:
    new_name = check_agent_name(new_name)
    current = agents_store.get(store, agent_id)
    same = agents_store.name_key(new_name) == agents_store.name_key(current.name)
    if not same and agents_store.exists(store, new_name):
        raise InvalidName(f"An agent named {new_name!r} already exists; pick another name.")
    agents_store.update(store, agent_id, name=new_name)
    return agents_store.get(store, agent_id)


def delete_agent(store: Store, agent_id: int) -> None:
    """Delete the agent and everything it owns (blocks, edits, messages, passages)."""
    with store.hold_agent(agent_id):
        agents_store.delete(store, agent_id)


def set_source_attached(store: Store, agent_id: int, source_name: str, attached: bool = True) -> sources_store.Source:
    """Attach (or detach) the data source named `source_name`, between the agent's turns."""
    source = sources_store.get_by_name(store, source_name)
    with store.hold_agent(agent_id):
        if attached:
            sources_store.attach(store, agent_id, source.id)
        else:
            sources_store.detach(store, agent_id, source.id)
    return source


# The memory section last rendered for each agent of a store (per process). Its recall count
# changes on every step, and a changed system message makes a local server (llama.cpp and
# the like) re-read the whole conversation after it, and a hosted one bill it uncached. So
# the section is rendered afresh only when core memory or the archival count changes (as
# MemGPT rebuilt its memory only on edits), and the recall count it shows is as of then.
_rendered: weakref.WeakKeyDictionary[Store, dict[int, tuple[tuple[str, str | None, int], str]]] = (
    weakref.WeakKeyDictionary())


def memory_section(store: Store, agent_id: int) -> str:
    """The rendered memory part of the agent's system message (unchanged while its memory is)."""
    core = CoreMemory(store, agent_id)
    archival = passages_store.count_for_agent(store, agent_id)
    key = (core.render_blocks(), core.last_modified(), archival)
    known = _rendered.setdefault(store, {})
    last = known.get(agent_id)
    if last is not None and last[0] == key:
        return last[1]
    text = render_memory_section(core, RecallMemory(store, agent_id).count(), archival)
    known[agent_id] = (key, text)
    return text
