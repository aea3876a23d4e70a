"""Export / import of one agent as one JSON file: a round trip loses nothing, a bad file writes nothing."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from engine import transfer
from engine.agent import Agent
from engine.memory import ArchivalMemory
from engine.store import agents as agents_store
from engine.store import blocks as blocks_store
from engine.store import messages as messages_store
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from engine.transfer import TransferError, export_agent, import_agent
from tests.support.scripted import say, use

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


@pytest.fixture
def rich(make_live_agent, scripted, store, embedder, runtime):
    """An agent with edited memory, tool calls, a summarized-out message, passages and a source."""
    agent = make_live_agent(scripted, name="ada")
    scripted.enqueue(use("core_memory_append", "Noting it.", name="human", content="Likes owls."),
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


def test_a_removed_blocks_history_comes_along(rich, store, tmp_path):
    blocks_store.add(store, rich.row.id, "projects", "Owl box build.", 500, "user", "added in test")
    blocks_store.remove(store, blocks_store.get(store, rich.row.id, "projects"), "user", "removed in test")
    path = tmp_path / "ada.json"
    counts = export_agent(store, rich.row.id, path)
    assert counts["edits"] == len(_history(store, rich.row.id))
    new = import_agent(store, path).agent
    assert _history(store, new.id) == _history(store, rich.row.id)  # the removed block's edits included
    assert blocks_store.removed_labels(store, new.id) == ["projects"]
    assert "projects" not in [b.label for b in blocks_store.list_blocks(store, new.id)]
    # Adding the label again brings the same block back, with its history, as in the original.
    blocks_store.add(store, new.id, "projects", "Owl box, second try.", 500, "user", "back again")
    assert [e.cause for e in blocks_store.history(store, new.id, "projects")] == \
        ["back again", "removed in test", "added in test"]


def test_a_removed_block_may_not_share_a_label_with_a_live_one(rich, store, tmp_path):
    blocks_store.add(store, rich.row.id, "projects", "Owl box build.", 500, "user", "added in test")
    blocks_store.remove(store, blocks_store.get(store, rich.row.id, "projects"), "user", "removed in test")
    path = tmp_path / "ada.json"
    export_agent(store, rich.row.id, path)
    data = json.loads(path.read_text())
    data["removed_blocks"][0]["label"] = "human"
    path.write_text(json.dumps(data))
    with pytest.raises(TransferError, match=r"removed_blocks\[0\]\.label"):
        import_agent(store, path)
    assert [a.name for a in agents_store.list_all(store)] == ["ada"]


def test_importing_twice_gives_two_agents(rich, store, tmp_path):
    path = tmp_path / "ada.json"
    export_agent(store, rich.row.id, path)
    first, second = import_agent(store, path).agent, import_agent(store, path).agent
    assert (first.name, second.name) == ("ada (2)", "ada (3)")
    assert len(_messages(store, first.id)) == len(_messages(store, second.id)) == len(_messages(store, rich.row.id))
    assert {a.name for a in agents_store.list_all(store)} == {"ada", "ada (2)", "ada (3)"}


def test_into_another_store_without_the_source(rich, store, tmp_path):
    from engine.store import SqliteStore

    path = tmp_path / "ada.json"
    export_agent(store, rich.row.id, path)
    other = SqliteStore(tmp_path / "other.db")
    try:
        result = import_agent(other, path)
        assert result.agent.name == "ada" and result.missing_sources == ["birds"]
        assert len(_own_passages(other, result.agent.id)) == 1
    finally:
        other.close()


def _agents(store):
    return [a.name for a in agents_store.list_all(store)]


def _first(data, predicate):
    return next(i for i, m in enumerate(data["messages"]) if predicate(m))


def _call(data):
    return data["messages"][_first(data, lambda m: m["tool_calls"])]["tool_calls"][0]


def _set_call(data, **changes):
    _call(data).update(changes)


def _set_function(data, **changes):
    _call(data)["function"].update(changes)


def _tool_row(data):
    return data["messages"][_first(data, lambda m: m["role"] == "tool")]


def _usage(data, **changes):
    data.setdefault("usage", []).append(
        {"model": "m", "purpose": "step", "prompt_tokens": 1, "completion_tokens": 1, "created_at": data["exported_at"]})
    data["usage"][-1].update(changes)


# Each names the field it breaks; paths with a message index are matched loosely.
BAD_FILES = [
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d.pop("format"), "not a valid agent export"),
    (lambda d: d.update(agent=None), r"agent: must be an object"),
    (lambda d: d.update(messages={}), r"messages: must be a list"),
    (lambda d: d["messages"].append({"role": "wizard"}), r"messages\[\d+\]\.role: must be one of"),
    (lambda d: d["messages"].__setitem__(0, []), r"messages\[0\]: must be an object"),
    (lambda d: d["messages"][0].pop("text"), r"messages\[0\]\.text: is missing"),
    (lambda d: d["messages"][0].update(in_context="yes"), r"messages\[0\]\.in_context: must be true or false"),
    (lambda d: d["messages"][0].update(created_at="yesterday"), r"messages\[0\]\.created_at: 'yesterday' is not"),
    (lambda d: d["messages"][0].update(tool_call_id="x"), r"messages\[0\]\.tool_call_id: only tool messages"),
    (lambda d: _set_function(d, name=5), r"messages\[\d+\]\.tool_calls\[0\]\.function\.name: must be a string"),
    (lambda d: _set_function(d, arguments={"a": 1}),
     r"messages\[\d+\]\.tool_calls\[0\]\.function\.arguments: must be a string"),
    (lambda d: _call(d).pop("function"), r"messages\[\d+\]\.tool_calls\[0\]\.function: is missing"),
    (lambda d: _set_call(d, type="code"), r"messages\[\d+\]\.tool_calls\[0\]\.type: must be \"function\""),
    (lambda d: _set_call(d, id=None), r"messages\[\d+\]\.tool_calls\[0\]\.id: must be a string"),
    (lambda d: d["messages"][_first(d, lambda m: m["tool_calls"])].update(tool_calls="call it"),
     r"messages\[\d+\]\.tool_calls: must be a list"),
    (lambda d: d["messages"][_first(d, lambda m: m["tool_calls"])].update(tool_calls=[]),
     r"messages\[\d+\]\.tool_calls: must be null or a non-empty list"),
    (lambda d: _tool_row(d).update(tool_call_id="call_nowhere"),
     r"messages\[\d+\]\.tool_call_id: 'call_nowhere' answers no earlier tool call"),
    (lambda d: _tool_row(d).update(tool_call_id=None), r"messages\[\d+\]\.tool_call_id: must be a string"),
    (lambda d: d["agent"]["llm_config"].update(evil=1), r"agent\.llm_config: unknown field\(s\) 'evil'"),
    (lambda d: d["agent"]["llm_config"].update(endpoint_type="pigeon"), r"agent\.llm_config\.endpoint_type: must be one"),
    (lambda d: d["agent"]["llm_config"].update(context_window="big"),
     r"agent\.llm_config\.context_window: must be int or null"),
    (lambda d: d["agent"]["llm_config"].update(model=None), r"agent\.llm_config\.model: must be str"),
    (lambda d: d["agent"]["embedding_config"].update(dim=3), r"agent\.embedding_config\.dim: is 3 but"),
    (lambda d: d["agent"].update(embedding_dim=True), r"agent\.embedding_dim: must be an integer"),
    (lambda d: d["agent"].update(embedding_dim=-1), r"agent\.embedding_dim: must be between"),
    (lambda d: d["agent"].update(name="x" * 500), r"agent\.name: is longer than 64"),
    (lambda d: d["agent"].update(functions=["send_message", 3]), r"agent\.functions\[1\]: must be a string"),
    (lambda d: d["agent"].update(memory_warning="no"), r"agent\.memory_warning: must be true or false"),
    (lambda d: d["blocks"][0].update(label="bad label!"), r"blocks\[0\]\.label: 'bad label!' is not an allowed"),
    (lambda d: d["blocks"][0].update(limit=0), r"blocks\[0\]\.limit: must be between 1"),
    (lambda d: d["blocks"][0].update(limit=1_000_000), r"blocks\[0\]\.limit: must be between 1 and 100,000"),
    (lambda d: d["blocks"][0].update(label="Persona"), r"blocks\[0\]\.label: 'Persona' is not an allowed"),
    (lambda d: d["blocks"].extend(dict(d["blocks"][0], label=f"extra_{i}") for i in range(20)),
     r"blocks: \d+ blocks; an agent has at most 16"),
    (lambda d: d["blocks"][0].update(value="x" * (d["blocks"][0]["limit"] + 1)), r"blocks\[0\]\.value: holds"),
    (lambda d: d["blocks"][0]["history"][0].update(actor="hacker"), r"blocks\[0\]\.history\[0\]\.actor: must be"),
    (lambda d: d["passages"][0].update(embedding="AAAA"), r"passages\[0\]\.embedding: is not 64 float32"),
    (lambda d: d["passages"][0].update(embedding=base64.b64encode(np.full(64, np.nan, "<f4").tobytes()).decode()),
     r"passages\[0\]\.embedding: holds values that are not finite"),
    (lambda d: _usage(d, prompt_tokens=-5), r"usage\[\d+\]\.prompt_tokens: must be between 0"),
    (lambda d: d.update(sources=[1]), r"sources\[0\]: must be a string"),
    (lambda d: d.update(extra=1), r"\(top level\): unknown field\(s\) 'extra'"),
]


@pytest.mark.parametrize("mutate, message", BAD_FILES)
def test_bad_files_are_refused_and_write_nothing(rich, store, tmp_path, mutate, message):
    path = tmp_path / "ada.json"
    export_agent(store, rich.row.id, path)
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    before = _everything(store)
    with pytest.raises(TransferError, match=message):
        import_agent(store, path)
    assert _everything(store) == before


def _everything(store):
    return (_agents(store),) + tuple(
        store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("messages", "memory_blocks", "memory_edits", "passages", "llm_calls"))


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe{\x00}\x00", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'{"format": "memgpt-agent", "version": NaN}', "not valid JSON: NaN is not a JSON number"),
    (b"[]", "not a valid agent export"),
])
def test_unreadable_files_are_refused(store, tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(TransferError, match=message):
        import_agent(store, path)
    assert _agents(store) == []


def test_huge_files_are_refused_before_parsing(rich, store, tmp_path, monkeypatch):
    path = tmp_path / "ada.json"
    export_agent(store, rich.row.id, path)
    monkeypatch.setattr(transfer, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(TransferError, match="is larger than"):
        import_agent(store, path)
    monkeypatch.setattr(transfer, "MAX_FILE_BYTES", path.stat().st_size)
    assert import_agent(store, path).agent.name == "ada (2)"


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
