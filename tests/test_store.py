"""The SQLite store: schema of a blank database, migrations, pragmas, cascades."""

from __future__ import annotations

import threading
import time

import pytest

from engine.store import SqliteStore
from engine.store import messages as messages_store
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from engine.store.migrations import migrations

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL

EXPECTED_COLUMNS = {
    "agents": [
        "id", "name", "preset", "system_prompt", "functions", "persona", "human", "llm_config",
        "embedding_config", "embedding_model", "embedding_dim", "created_at", "updated_at", "memory_warning",
        "name_key",
    ],
    "memory_blocks": ["id", "agent_id", "label", "value", "char_limit", "position", "updated_at", "removed_at"],
    "memory_edits": [
        "id", "block_id", "agent_id", "label", "actor", "cause", "old_value", "new_value", "created_at",
    ],
    "messages": [
        "id", "agent_id", "role", "content", "name", "tool_calls", "tool_call_id", "text", "in_context", "created_at",
        "embedding", "embedding_model",
    ],
    "sources": ["id", "name", "description", "embedding_model", "embedding_dim", "created_at"],
    "agent_sources": ["agent_id", "source_id", "attached_at"],
    "llm_calls": ["id", "agent_id", "model", "purpose", "prompt_tokens", "completion_tokens", "created_at"],
    "passages": [
        "id", "agent_id", "source_id", "text", "metadata", "content_hash", "embedding_model",
        "embedding_dim", "embedding", "created_at",
    ],
}

EXPECTED_OBJECTS = {
    ("index", "memory_edits_block"),
    ("index", "messages_agent"),
    ("index", "messages_agent_time"),
    ("index", "messages_agent_context"),
    ("index", "passages_agent"),
    ("index", "passages_source_hash"),
    ("index", "agents_name_key"),
    ("index", "llm_calls_agent"),
    ("index", "messages_agent_role"),
    ("index", "messages_unembedded"),
    ("index", "passages_agent_time"),
    ("table", "message_counts"),
    ("table", "passage_counts"),
    ("trigger", "messages_count_ai"),
    ("trigger", "passages_count_ad"),
    ("table", "messages_fts"),
    ("table", "passages_fts"),
    ("trigger", "messages_fts_ai"),
    ("trigger", "messages_fts_ad"),
    ("trigger", "messages_fts_au"),
    ("trigger", "passages_fts_ai"),
    ("trigger", "passages_fts_ad"),
    ("trigger", "passages_fts_au"),
}


def test_blank_database_schema(tmp_path):
    store = SqliteStore(tmp_path / "blank.db")
    db = store.db
    for table, columns in EXPECTED_COLUMNS.items():
        assert [c.name for c in db[table].columns] == columns, table
    objects = {(r[0], r[1]) for r in db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
    assert EXPECTED_OBJECTS <= objects
    # No vector table until a dimension is first used.
    assert not [name for _, name in objects if name.startswith("passages_vec_")]
    fks = {(fk.column, fk.other_table) for fk in db["passages"].foreign_keys}
    assert fks == {("agent_id", "agents"), ("source_id", "sources")}
    store.close()


def test_migrations_apply_once(tmp_path):
    path = tmp_path / "m.db"
    first = SqliteStore(path)
    assert first.applied_migrations == [m.name for m in migrations._migrations]
    first.close()
    second = SqliteStore(path)
    assert second.applied_migrations == []
    rows = second.db.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'memgpt'").fetchall()
    assert [r[0] for r in rows] == [m.name for m in migrations._migrations]
    second.close()


@pytest.mark.sqlite_only
def test_pragmas_and_vec(store):
    db = store.db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("SELECT vec_version()").fetchone()[0].startswith("v")


def test_each_thread_gets_its_own_connection(store):
    """Two running threads never share one (a finished thread's may be handed on: PostgreSQL reuses them)."""
    seen = []
    checked = threading.Event()

    def work():
        seen.append(store.db)
        seen.append(store.db.execute("SELECT count(*) FROM agents").fetchone()[0])
        checked.wait(timeout=10)  # still running while the main thread takes its own

    t = threading.Thread(target=work)
    t.start()
    while len(seen) < 2:
        time.sleep(0.01)
    mine = store.db
    checked.set()
    t.join()
    assert seen[0] is not mine
    assert seen[1] == 0


def test_delete_agent_removes_every_row(store, agent, make_agent, embedder):
    from engine.agents import delete_agent
    from engine.memory import ArchivalMemory, CoreMemory

    other = make_agent("bob")
    for who in (agent, other):
        messages_store.add(store, who.id, "user", f"hello from {who.name}")
        CoreMemory(store, who.id).append("human", "likes tea", actor="agent")
        ArchivalMemory(store, who.id, embedder).insert(f"a fact about {who.name}")
    source = sources_store.create(store, "docs", embedder.name, embedder.dimension)
    sources_store.attach(store, agent.id, source.id)
    table = passages_store.vec_table(embedder.dimension)
    before_vec = store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    assert before_vec == 2

    delete_agent(store, agent.id)

    db = store.db
    for name in ("memory_blocks", "memory_edits", "messages", "passages", "agent_sources", "llm_calls"):
        assert db.execute(f"SELECT count(*) FROM {name} WHERE agent_id = ?", [agent.id]).fetchone()[0] == 0, name
    # The other agent is untouched, and vectors and FTS rows went with their passages.
    assert db.execute("SELECT count(*) FROM messages WHERE agent_id = ?", [other.id]).fetchone()[0] == 1
    assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1
    if store.dialect == "sqlite":
        assert db.execute("SELECT count(*) FROM passages_fts WHERE passages_fts MATCH 'ada'").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'ada'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM sources").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM message_counts WHERE agent_id = ?", [agent.id]).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM passage_counts WHERE owner = ?", [f"a{agent.id}"]).fetchone()[0] == 0
    if store.dialect == "sqlite":
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_no_loadable_sqlite_is_a_clear_error(monkeypatch, tmp_path):
    from engine.errors import StoreUnavailable
    from engine.store import db as db_module

    class NoExtensions:
        def __init__(self, real):
            self._real = real

        def __getattr__(self, name):
            if name == "enable_load_extension":
                raise AttributeError(name)
            return getattr(self._real, name)

    real_connect = db_module.sqlite_utils.Database

    def fake_database(path):
        database = real_connect(path)
        database.conn = NoExtensions(database.conn)
        return database

    monkeypatch.setattr(db_module.sqlite_utils, "Database", fake_database)
    with pytest.raises(StoreUnavailable, match="pysqlite3-binary"):
        db_module.connect(tmp_path / "x.db")


def test_a_file_that_is_not_a_database(tmp_path):
    from engine.errors import StoreUnavailable

    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailable, match="Cannot open database"):
        SqliteStore(path)


def test_concurrent_writers_do_not_fail(store, agent):
    errors: list[BaseException] = []

    def writer(n):
        try:
            for i in range(30):
                with store.atomic():
                    messages_store.add(store, agent.id, "user", f"thread {n} message {i}")
        except BaseException as e:  # pragma: no cover - the assertion shows it
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert messages_store.count(store, agent.id) == 120


def test_counts_follow_inserts_and_deletes(store, agent, embedder):
    from engine.memory import ArchivalMemory

    def exact_messages():
        return store.db.execute(
            "SELECT count(*) FROM messages WHERE agent_id = ? AND role != 'system'", [agent.id]
        ).fetchone()[0]

    ids = [messages_store.add(store, agent.id, "user", f"m{i}").id for i in range(5)]
    messages_store.add(store, agent.id, "system", "not counted")
    messages_store.delete(store, ids[:2])
    assert messages_store.count(store, agent.id) == exact_messages() == 3
    archival = ArchivalMemory(store, agent.id, embedder)
    new = archival.insert("one fact") + archival.insert("another fact")
    archival.delete(new[0])
    assert archival.count() == 1
    source = sources_store.create(store, "s", embedder.name, embedder.dimension)
    passages_store.insert_many(store, [(t, embedder.embed([t])[0], {}) for t in "xyz"], embedding_model=embedder.name,
                               embedding_dim=embedder.dimension, source_id=source.id)
    sources_store.attach(store, agent.id, source.id)
    assert archival.count() == 4
    sources_store.delete(store, source.id)
    assert archival.count() == 1


def _stored_vectors(store, ids: list[int]) -> dict[int, tuple[str, list[float]]]:
    import numpy as np

    rows = store.db.execute(
        f"SELECT id, text, embedding FROM passages WHERE id IN ({','.join('?' * len(ids))})", ids
    ).fetchall()
    return {r[0]: (r[1], np.frombuffer(bytes(r[2]), dtype=np.float32).tolist()) for r in rows}


def test_insert_many_keeps_each_passage_with_its_own_vector(store, agent):
    """Rows go in many to a statement: the ids, blobs and vector rows must still pair up with their items."""
    dim = agent.embedding_dim
    agent_items = [("same words", [1.0] + [0.0] * (dim - 1), {"n": 1}), ("same words", [0.0, 1.0] + [0.0] * (dim - 2), {}),
                   ("other words", [0.0, 0.0, 1.0] + [0.0] * (dim - 3), {})]
    ids = passages_store.insert_many(store, agent_items, embedding_model=agent.embedding_model, embedding_dim=dim,
                                     agent_id=agent.id)
    assert len(ids) == 3 and ids == sorted(ids)
    stored = _stored_vectors(store, ids)
    assert [stored[i] for i in ids] == [(t, [float(x) for x in v]) for t, v, _ in agent_items]
    assert passages_store.get(store, ids[0]).metadata == {"n": 1}
    nearest = passages_store.vector_search(store, dim, [f"a{agent.id}"], agent_items[1][1], 1)
    assert nearest[0][0] == ids[1]

    source = sources_store.create(store, "docs", agent.embedding_model, dim)
    unit = [[1.0 if j == i else 0.0 for j in range(dim)] for i in range(6)]
    first = passages_store.insert_many(store, [("kept text", unit[0], {})], embedding_model=agent.embedding_model,
                                       embedding_dim=dim, source_id=source.id)
    # Already held, new, new again within the batch (the first one wins), another new one.
    batch = [("kept text", unit[1], {}), ("fresh text", unit[2], {}), ("fresh text", unit[3], {}),
             ("last text", unit[4], {})]
    new = passages_store.insert_many(store, batch, embedding_model=agent.embedding_model, embedding_dim=dim,
                                     source_id=source.id)
    assert len(new) == 2 and min(new) > first[0]
    stored = _stored_vectors(store, first + new)
    assert [stored[i] for i in first + new] == [("kept text", unit[0]), ("fresh text", unit[2]), ("last text", unit[4])]
    for pid, vector in zip(first + new, (unit[0], unit[2], unit[4])):
        assert passages_store.vector_search(store, dim, [f"s{source.id}"], vector, 1)[0][0] == pid


@pytest.mark.sqlite_only
def test_a_batch_of_passages_is_one_full_text_segment(store, agent, embedder):
    """FTS5 writes out a segment per statement: one per passage was half the cost of an insert (docs/benchmarks.md)."""
    texts = [f"passage {i} about word{i % 37} and thing{i % 11}" for i in range(500)]
    ids = passages_store.insert_many(store, list(zip(texts, embedder.embed(texts), [None] * len(texts))),
                                     embedding_model=embedder.name, embedding_dim=embedder.dimension, agent_id=agent.id)
    assert store.db.execute("SELECT count(DISTINCT segid) FROM passages_fts_idx").fetchone()[0] == 1
    assert passages_store.keyword_search(store, agent.id, "word7 thing3", 100) == sorted(
        pid for i, pid in enumerate(ids) if i % 37 == 7 and i % 11 == 3)
