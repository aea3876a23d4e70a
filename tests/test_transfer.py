"""Export / import of one agent as one JSON file: a round trip loses nothing, a bad file writes nothing."""

from __future__ import annotations

import json

import pytest

from engine.agent import Agent
from engine.memory import ArchivalMemory
from engine.store import agents as agents_store
from engine.store import blocks as blocks_store
from engine.store import messages as messages_store
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from engine.transfer import TransferError, export_agent, import_agent
from tests.support.scripted import say, use


@pytest.fixture
def rich(make_live_agent, scripted, store, embedder, runtime):
    """An agent with edited memory, tool calls, a summarized-out message, passages and a source."""
    agent = make_live_agent(scripted, name="ada")
    scripted.enqueue(use("core_memory_append", "Noting it.", label="human", content="Likes owls."),
                     say("Owls, noted."))
    list(agent.step("I like owls"))
    scripted.enqueue(use("archival_memory_insert", "Filing.", content="The owl's name is Hoot."),
                     say("Filed."))
    list(agent.step("Remember my owl is called Hoot"))
    agent.core.set("persona", "I am Sam, keeper of owls.", actor="user", cause="edited in test")
    first_user = [m for m in messages_store.list_messages(store, agent.row.id) if m.name == "user_message"][0]
    messages_store.set_in_context(store, [first_user.id], False)
    source = sources_store.create(store, "birds", embedder.name, embedder.dimension)
    passages_store.insert_many(store, [("Barn owls hunt by sound.", embedder.embed(["Barn owls"])[0], {})],
                               embedding_model=embedder.name, embedding_dim=embedder.dimension,
                               source_id=source.id)
    sources_store.attach(store, agent.row.id, source.id)
    agents_store.update(store, agent.row.id, memory_warning=1)
    return agent


def _messages(store, agent_id):
    return [(m.role, m.content, m.name, m.tool_calls, m.tool_call_id, m.text, m.in_context, m.created_at)
            for m in messages_store.list_messages(store, agent_id)]


def _history(store, agent_id):
    return [(e.label, e.actor, e.cause, e.old_value, e.new_value, e.created_at)
            for e in blocks_store.history(store, agent_id)]


def _own_passages(store, agent_id):
    return store.db.execute(
        "SELECT text, metadata, embedding, created_at FROM passages WHERE agent_id = ? ORDER BY id", [agent_id]
    ).fetchall()


def test_round_trip_preserves_everything(rich, store, runtime, embedder, tmp_path):
    path = tmp_path / "ada.json"
    counts = export_agent(store, rich.row.id, path)
    assert counts["messages"] > 8 and counts["passages"] == 1 and counts["sources"] == 1

    result = import_agent(store, path)
    new, old = result.agent, agents_store.get(store, rich.row.id)
    assert new.name == "ada (2)" and new.id != old.id
    for field in ("preset", "system_prompt", "functions", "persona", "human", "llm_config", "embedding_config",
                  "embedding_model", "embedding_dim", "created_at", "updated_at", "memory_warning"):
        assert getattr(new, field) == getattr(old, field), field
    assert [(b.label, b.value, b.limit, b.position, b.updated_at) for b in blocks_store.list_blocks(store, new.id)] == \
           [(b.label, b.value, b.limit, b.position, b.updated_at) for b in blocks_store.list_blocks(store, old.id)]
    assert _history(store, new.id) == _history(store, old.id)
    assert len(_history(store, new.id)) >= 4  # two creations, the agent's append, the user's edit
    assert _messages(store, new.id) == _messages(store, old.id)
    assert any(m[3] for m in _messages(store, new.id))  # tool calls came along, ids unchanged
    assert [m[6] for m in _messages(store, new.id)].count(False) == 1
    assert _own_passages(store, new.id) == _own_passages(store, old.id)  # identical vector bytes
    assert [s.name for s in sources_store.attached(store, new.id)] == ["birds"] and not result.missing_sources
    assert agents_store.usage_totals(store, new.id) == agents_store.usage_totals(store, old.id)

    archival = ArchivalMemory(store, new.id, embedder)
    found = archival.search("owl name Hoot", mode="vector")
    assert "Hoot" in found.hits[0].passage.text and found.hits[0].passage.agent_id == new.id
    assert "Barn owls" in archival.search("barn owls hunt").format()

    # The imported agent runs: its window is the original's, nothing is re-booted.
    loaded = Agent.load(runtime, new.name, embedder=embedder)
    assert [r.id for r in loaded.context().rows] != []
    assert loaded.context().breakdown["messages"] == rich.context().breakdown["messages"]


def test_importing_twice_gives_two_agents(rich, store, tmp_path):
    path = tmp_path / "ada.json"
    export_agent(store, rich.row.id, path)
    first, second = import_agent(store, path).agent, import_agent(store, path).agent
    assert (first.name, second.name) == ("ada (2)", "ada (3)")
    assert len(_messages(store, first.id)) == len(_messages(store, second.id)) == len(_messages(store, rich.row.id))
    assert {a.name for a in agents_store.list_all(store)} == {"ada", "ada (2)", "ada (3)"}


def test_into_another_store_without_the_source(rich, store, tmp_path):
    from engine.store import Store

    path = tmp_path / "ada.json"
    export_agent(store, rich.row.id, path)
    other = Store(tmp_path / "other.db")
    try:
        result = import_agent(other, path)
        assert result.agent.name == "ada" and result.missing_sources == ["birds"]
        assert len(_own_passages(other, result.agent.id)) == 1
    finally:
        other.close()


def _agents(store):
    return [a.name for a in agents_store.list_all(store)]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d.pop("format"), "not a valid agent export"),
    (lambda d: d["messages"].append({"role": "wizard"}), "role"),
    (lambda d: d["passages"][0].update(embedding="AAAA"), "float32"),
    (lambda d: d["blocks"][0]["history"][0].update(actor="hacker"), "edit of block"),
])
def test_bad_files_are_refused_and_write_nothing(rich, store, tmp_path, mutate, message):
    path = tmp_path / "ada.json"
    export_agent(store, rich.row.id, path)
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    before = (_agents(store), store.db.execute("SELECT count(*) FROM messages").fetchone()[0])
    with pytest.raises(TransferError, match=message):
        import_agent(store, path)
    assert (_agents(store), store.db.execute("SELECT count(*) FROM messages").fetchone()[0]) == before


def test_corrupt_and_missing_files(store, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "memgpt-agent", "vers')
    with pytest.raises(TransferError, match="not valid JSON"):
        import_agent(store, broken)
    with pytest.raises(TransferError, match="Cannot read"):
        import_agent(store, tmp_path / "nope.json")


def test_failure_mid_import_rolls_back(rich, store, tmp_path, monkeypatch):
    path = tmp_path / "ada.json"
    export_agent(store, rich.row.id, path)
    before = store.db.execute("SELECT count(*) FROM messages").fetchone()[0]

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(passages_store, "insert_many", boom)
    with pytest.raises(RuntimeError):
        import_agent(store, path)
    assert _agents(store) == ["ada"]
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == before
