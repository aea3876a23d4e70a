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


@pytest.mark.parametrize("label", ["", "   ", "a b", "<persona>", "x" * 41, "9lives", "naïve", "ｎotes", "a\nb",
                                   'x" y="1', "notes\u200b"])
def test_block_labels_are_short_plain_words(store, agent, label):
    # A label becomes a tag in the system prompt: anything that could break out of it is refused.
    with pytest.raises(InvalidName):
        CoreMemory(store, agent.id).add_block(label)
    assert [b.label for b in CoreMemory(store, agent.id).blocks()] == ["persona", "human"]


def test_labels_are_lowercased_and_duplicates_found_in_any_case(store, agent):
    core = CoreMemory(store, agent.id)
    assert core.add_block("  Projects ").label == "projects"
    with pytest.raises(InvalidName, match="already exists"):
        core.add_block("PROJECTS")
    with pytest.raises(InvalidName, match="already exists"):
        core.add_block("Human")
    # The model may write the label with a capital: the block is still found.
    core.append("Projects", "garden", actor="agent")
    assert core.get("projects").value == "garden"


def test_limits_are_bounded_and_never_cut_text(store, agent):
    core = CoreMemory(store, agent.id)
    core.set("human", "x" * 50)
    for bad in (0, -1, 10**9, 2.5, True, "100"):
        with pytest.raises(MemoryLimitExceeded):
            core.set_limit("human", bad)  # type: ignore[arg-type]
    with pytest.raises(MemoryLimitExceeded, match="holds 50 characters"):
        core.set_limit("human", 49)
    assert core.get("human").limit == 2000 and core.get("human").value == "x" * 50
    assert core.set_limit("human", 50).limit == 50
    made = core.history("human")[0]
    assert made.cause == "limit 2000 → 50" and made.old_value == made.new_value == "x" * 50
    with pytest.raises(MemoryLimitExceeded):
        core.append("human", "y")


def test_removing_a_block_keeps_its_history_and_adding_it_again_restores_it(store, agent):
    core = CoreMemory(store, agent.id)
    core.add_block("projects", "garden plan", limit=100)
    core.append("projects", "tomatoes", actor="agent")
    core.remove_block("projects")
    assert [b.label for b in core.blocks()] == ["persona", "human"]
    assert "projects" not in memory_section(store, agent.id)
    edits = core.history("projects")
    assert [e.cause for e in edits] == ["block removed", "core_memory_append", "created"]
    assert edits[0].old_value == "garden plan\ntomatoes" and edits[0].new_value == ""
    with pytest.raises(NotFound):
        core.append("projects", "more", actor="agent")
    with pytest.raises(NotFound, match="was removed"):
        core.revert(edits[1].id)
    with pytest.raises(NotFound):
        core.remove_block("projects")
    back = core.add_block("projects", "", limit=300)
    assert back.limit == 300 and core.history("projects")[0].cause == "added again"
    assert len(core.history("projects")) == 4


@pytest.mark.parametrize("label", ["persona", "human", "Human"])
def test_persona_and_human_cannot_be_removed(store, agent, label):
    core = CoreMemory(store, agent.id)
    with pytest.raises(InvalidName, match="cannot be removed"):
        core.remove_block(label)
    assert [b.label for b in core.blocks()] == ["persona", "human"]


def test_at_most_max_blocks(store, agent):
    from engine.memory import MAX_BLOCKS

    core = CoreMemory(store, agent.id)
    for i in range(MAX_BLOCKS - 2):
        core.add_block(f"b{i}", limit=10)
    with pytest.raises(InvalidName, match="at most"):
        core.add_block("onemore")


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
