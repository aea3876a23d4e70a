"""Core memory blocks: limits, edits with history, revert, rendering."""

from __future__ import annotations

import re

import pytest

from engine.agents import memory_section
from engine.errors import InvalidName, MemoryLimitExceeded, NotFound, ToolError
from engine.memory import CoreMemory

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


def test_new_agent_has_persona_and_human(store, agent, library):
    core = CoreMemory(store, agent.id)
    labels = [b.label for b in core.blocks()]
    assert labels == ["persona", "human"]
    assert core.get("persona").value == library.text("personas", "sam")
    assert all(b.limit == 2000 for b in core.blocks())
    created = core.history("persona")
    assert len(created) == 1 and created[0].actor == "system" and created[0].old_value == ""


def test_append_replace_and_history(store, agent):
    core = CoreMemory(store, agent.id)
    core.set("human", "Name: Kim", actor="user")
    core.append("human", "Likes: chess 🐴", actor="agent")
    core.replace("human", "chess", "go", actor="agent")
    assert core.get("human").value == "Name: Kim\nLikes: go 🐴"
    edits = core.history("human")
    assert [e.cause for e in edits[:3]] == ["core_memory_replace", "core_memory_append", "edited"]
    assert [e.actor for e in edits[:3]] == ["agent", "agent", "user"]
    assert edits[0].old_value == "Name: Kim\nLikes: chess 🐴"
    assert edits[0].new_value == "Name: Kim\nLikes: go 🐴"
    assert re.match(r"\d{4}-\d\d-\d\dT", edits[0].created_at)


def test_limit_is_enforced_and_nothing_changes(store, agent):
    core = CoreMemory(store, agent.id)
    core.set("human", "x" * 1990)
    before = len(core.history("human"))
    with pytest.raises(MemoryLimitExceeded, match="2001 of 2000"):
        core.append("human", "yyyyyyyyyy")
    assert core.get("human").value == "x" * 1990
    assert len(core.history("human")) == before
    core.set("human", "x" * 2000)  # exactly at the limit is fine


def test_replace_needs_exact_text(store, agent):
    core = CoreMemory(store, agent.id)
    core.set("human", "Name: Kim")
    with pytest.raises(ToolError, match="not found"):
        core.replace("human", "name: kim", "Name: Lee")
    with pytest.raises(ToolError, match="empty"):
        core.replace("human", "", "x")


def test_unknown_block_names_the_existing_ones(store, agent):
    with pytest.raises(NotFound, match="persona, human"):
        CoreMemory(store, agent.id).append("nonsense", "x")


def test_revert_restores_and_is_itself_recorded(store, agent):
    core = CoreMemory(store, agent.id)
    core.set("human", "one")
    core.set("human", "two")
    edit = core.history("human")[0]
    core.revert(edit.id)
    assert core.get("human").value == "one"
    latest = core.history("human")[0]
    assert latest.cause == f"revert of edit #{edit.id}" and latest.new_value == "one"


def test_extra_blocks(store, agent):
    core = CoreMemory(store, agent.id)
    core.add_block("projects", "garden plan", limit=100)
    assert [b.label for b in core.blocks()] == ["persona", "human", "projects"]
    with pytest.raises(InvalidName):
        core.add_block("projects")
    with pytest.raises(InvalidName):
        core.add_block("bad label!")
    with pytest.raises(MemoryLimitExceeded):
        core.add_block("tiny", "abcdef", limit=3)


def test_memory_section_rendering(store, agent, embedder):
    from engine.memory import ArchivalMemory
    from engine.store import messages

    core = CoreMemory(store, agent.id)
    core.set("human", "Name: Kim")
    for i in range(3):
        messages.add(store, agent.id, "user", f"m{i}")
    messages.add(store, agent.id, "system", "the system prompt")  # not counted in recall
    ArchivalMemory(store, agent.id, embedder).insert("a fact")
    text = memory_section(store, agent.id)
    stamp = core.get("human").updated_at
    assert text.startswith(f"### Memory (last modified: {stamp[:10]} {stamp[11:16]} UTC)")
    assert "Recall memory holds 3 earlier messages" in text
    assert "Archival memory holds 1 passages" in text
    persona = core.get("persona")
    assert f'<persona characters="{len(persona.value)}/2000">\n{persona.value}\n</persona>' in text
    assert '<human characters="9/2000">\nName: Kim\n</human>' in text
    assert text.index("<persona") < text.index("<human")
