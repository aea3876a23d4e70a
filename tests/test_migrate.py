"""Moving a whole store between backends: SQLite -> PostgreSQL -> SQLite loses nothing, refusals write nothing.

Runs on the session's real PostgreSQL (tests/support/postgres.py) and real
SQLite files; the CLI is run as a subprocess the way tests/test_cli.py runs it.
"""

from __future__ import annotations

import pytest

from engine import recall_index
from engine.api import MemGPT
from engine.config import EmbeddingConfig
from engine.store import SqliteStore
from engine.store import agents as agents_store
from engine.store import blocks as blocks_store
from engine.store import copy as copy_mod
from engine.store import messages as messages_store
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from engine.store.copy import CopyError, copy_store, copy_to_new_sqlite
from engine.store.pg import PgStore, safe_url
from tests.support import postgres
from tests.support.embedder import HashEmbedder
from tests.support.scripted import say, use
from tests.test_cli import run as run_cli

SMALL = HashEmbedder(12, name="test-hash-12")  # a second dimension: 12 is no multiple of 8 (no bit vectors)


@pytest.fixture
def pg_url():
    url = postgres.fresh_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture
def rich(make_live_agent, make_agent, scripted, store, embedder):
    """On SQLite: an agent with edited memory, tool calls, usage, passages and a source; a gap in the ids."""
    agent = make_live_agent(scripted, name="ada")
    scripted.enqueue(use("core_memory_append", "Noting it.", name="human", content="Likes owls."), say("Owls, noted."))
    list(agent.step("I like owls"))
    scripted.enqueue(use("archival_memory_insert", "Filing.", content="The owl's name is Hoot."), say("Filed."))
    list(agent.step("Remember my owl is called Hoot"))
    agent.core.set("persona", "I am Sam, keeper of owls.", actor="user", cause="edited in test")
    first_user = [m for m in messages_store.list_messages(store, agent.row.id) if m.name == "user_message"][0]
    messages_store.set_in_context(store, [first_user.id], False)
    texts = ["Owls sleep by day.", "Crows remember faces.", "Hoot likes mice."]
    passages_store.insert_many(store, [(t, v, {"n": i}) for i, (t, v) in enumerate(zip(texts, embedder.embed(texts)))],
                               embedding_model=embedder.name, embedding_dim=embedder.dimension, agent_id=agent.row.id)
    source = sources_store.create(store, "birds", embedder.name, embedder.dimension, "bird facts")
    passages_store.insert_many(store, [("Barn owls hunt by sound.", embedder.embed(["Barn owls"])[0], {"page": 2})],
                               embedding_model=embedder.name, embedding_dim=embedder.dimension, source_id=source.id)
    sources_store.attach(store, agent.row.id, source.id)
    agents_store.update(store, agent.row.id, memory_warning=1)
    agents_store.delete(store, make_agent("gone").id)  # ids stay as they were, gaps included
    small = make_agent("bo", embedding=EmbeddingConfig(endpoint_type="openai-compatible", model=SMALL.name, dim=12))
    passages_store.insert_many(store, [("Tiny vectors too.", SMALL.embed(["Tiny vectors too."])[0], {})],
                               embedding_model=SMALL.name, embedding_dim=12, agent_id=small.id)
    assert agents_store.usage_totals(store, agent.row.id)[0] >= 4  # llm_calls rows from the steps
    # The steps' recall vectors are written in the background: wait, so every copy sees the same rows.
    assert recall_index.indexer(store).idle(30)
    return agent.row.id


def _rows(store, table):
    """Every stored column of every row, by name (PostgreSQL's generated `tsv` aside), in key order."""
    cursor = store.db.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in cursor.description]
    rows = [{n: bytes(v) if isinstance(v, memoryview) else v for n, v in zip(names, r) if n != "tsv"}
            for r in cursor.fetchall()]
    return sorted(rows, key=lambda r: (r.get("id", 0), r.get("agent_id", 0), r.get("source_id", 0)))


def _found(result):
    messages, total = result
    return sorted(m.id for m in messages), total


def _everything(store, agent_id):
    """What the app reads from a store, through the store modules, plus every raw row."""
    owners = passages_store.owners_for_agent(store, agent_id)
    query = HashEmbedder(64).embed(["owl name Hoot"])[0]
    return {
        "tables": {table: _rows(store, table) for table in copy_mod.TABLES},
        "agent": agents_store.get(store, agent_id),
        "agents": agents_store.list_all(store),
        "blocks": blocks_store.list_blocks(store, agent_id),
        "history": blocks_store.history(store, agent_id),
        "messages": messages_store.list_messages(store, agent_id),
        "passages": passages_store.list_for_agent(store, agent_id, 0, 100),
        "embeddings": store.db.execute("SELECT id, embedding FROM passages ORDER BY id").fetchall(),
        "attached": sources_store.attached(store, agent_id),
        "usage": agents_store.usage_totals(store, agent_id),
        "recall_count": messages_store.count(store, agent_id),
        "archival_count": passages_store.count_for_agent(store, agent_id),
        # BM25 (SQLite) and ts_rank_cd (PostgreSQL) may order equal-looking hits differently: several
        # hits are compared as sets, a single one exactly.
        "keyword": passages_store.keyword_search(store, agent_id, "mice", 10),
        "keyword_several": sorted(passages_store.keyword_search(store, agent_id, "hoot", 10)),
        "keyword_any": sorted(passages_store.keyword_search(store, agent_id, "owls crows", 10)),
        "recall_search": _found(messages_store.search_text(store, agent_id, "owls", 0, 10)),
        "vector": [pid for pid, _ in passages_store.vector_search(store, 64, owners, query, 3)],
        "vector_12": [pid for pid, _ in passages_store.vector_search(
            store, 12, [passages_store.owner_key(agent_id=agents_store.get_by_name(store, "bo").id)],
            SMALL.embed(["tiny"])[0], 3)],
    }


def test_sqlite_to_postgres_and_back_loses_nothing(rich, store, pg_url, tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(copy_mod, "BATCH", 3)  # every table spans several batches, as a big store's do
    before = _everything(store, rich)
    assert before["keyword"] and before["vector"] and before["vector_12"] and len(before["keyword_several"]) == 2
    assert before["recall_search"][1] > 0
    assert any(m.tool_calls for m in before["messages"]) and not all(m.in_context for m in before["messages"])
    assert len(before["history"]) >= 4 and before["attached"] and before["agent"].memory_warning

    seen: list[tuple[int, int]] = []
    server = PgStore(pg_url)
    try:
        counts = copy_store(store, server, lambda done, total: seen.append((done, total)))
        assert counts == {table: len(before["tables"][table]) for table in copy_mod.TABLES}
        assert seen[0][0] == 0 and seen[-1] == (sum(counts.values()),) * 2 and len(seen) > len(copy_mod.TABLES)
        assert _everything(server, rich) == before

        back = tmp_path / "back.db"
        assert copy_to_new_sqlite(server, back) == counts
        assert not (tmp_path / "back.db-wal").exists()  # sealed: one self-contained file
        again = SqliteStore(back)
        try:
            assert _everything(again, rich) == before
        finally:
            again.close()

        # The sequences moved past the copied ids: new rows get fresh ones (agents, messages, passages, sources).
        top = {t: max(r["id"] for r in before["tables"][t]) for t in ("agents", "messages", "passages", "sources")}
        cy = agents_store.insert(server, name="cy", preset="p", system_prompt="s", functions=[], persona=None,
                                 human=None, llm_config={}, embedding_config={}, embedding_model=embedder.name,
                                 embedding_dim=64)
        message = messages_store.add(server, cy, "user", "hello")
        [passage] = passages_store.insert_many(server, [("new", embedder.embed(["new"])[0], {})],
                                               embedding_model=embedder.name, embedding_dim=64, agent_id=cy)
        source = sources_store.create(server, "fresh", embedder.name, 64)
        assert cy > top["agents"] and message.id > top["messages"]
        assert passage > top["passages"] and source.id > top["sources"]
    finally:
        server.close()


def test_a_non_empty_target_is_refused_and_left_as_it_was(rich, store, pg_url, tmp_path):
    server = PgStore(pg_url)
    try:
        copy_store(store, server)
        held = _everything(server, rich)
        with pytest.raises(CopyError, match="already holds 2 agent"):
            copy_store(store, server)
        assert _everything(server, rich) == held
    finally:
        server.close()

    file = tmp_path / "taken.db"
    file.write_bytes(b"not empty")
    with MemGPT(store.home) as api:
        with pytest.raises(CopyError, match="not empty"):
            api.migrate(file)
        with pytest.raises(CopyError, match="runs on"):
            api.migrate(store.path)
        with pytest.raises(FileExistsError):
            api.backup(file)
    assert file.read_bytes() == b"not empty"


def test_a_copy_that_does_not_check_out_keeps_nothing(rich, store, pg_url, monkeypatch):
    real = passages_store.put_vectors

    def lose_one(target, db, dim, owner, rows):  # a vector table that misses a row
        real(target, db, dim, owner, rows[1:] if owner.startswith("a") and len(rows) > 1 else rows)

    monkeypatch.setattr(passages_store, "put_vectors", lose_one)
    server = PgStore(pg_url)
    try:
        with pytest.raises(CopyError, match="64-d vectors: 5 passages but 4 vectors") as caught:
            copy_store(store, server)
        assert "none of it was kept" in str(caught.value)
        assert all(not _rows(server, table) for table in copy_mod.TABLES)
        monkeypatch.setattr(passages_store, "put_vectors", real)
        copy_store(store, server)  # so running it again just works
        assert _everything(server, rich) == _everything(store, rich)
    finally:
        server.close()


def test_backup_of_a_postgresql_store_is_a_sqlite_file(rich, store, pg_url, tmp_path, monkeypatch):
    before = _everything(store, rich)
    server = PgStore(pg_url)
    try:
        copy_store(store, server)
    finally:
        server.close()
    monkeypatch.setenv("MEMGPT_DATABASE_URL", pg_url)
    target = tmp_path / "pg-backup.db"
    with MemGPT(store.home) as api:
        assert api.runtime.store.dialect == "postgres"
        counts = api.backup(target)
        assert counts == {t: len(before["tables"][t]) for t in ("agents", "messages", "memory_blocks", "passages",
                                                                  "sources")}
        with pytest.raises(FileExistsError):
            api.backup(target)
        assert api.backup(target, force=True) == counts
    copy = SqliteStore(target)
    try:
        assert _everything(copy, rich) == before
    finally:
        copy.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".pg-backup")) == []


def test_cli_migrate_round_trip(rich, store, home, pg_url, tmp_path):
    before = _everything(store, rich)
    output, status = run_cli(home, "migrate", "--to", pg_url)
    assert status == 0, output
    shown = safe_url(pg_url)
    assert shown.startswith("postgresql://") and "?" not in shown and ":@" not in shown
    assert f"to {shown}" in output and pg_url not in output
    assert "2 agents" in output and f"{len(before['tables']['messages'])} messages" in output
    assert "MEMGPT_DATABASE_URL" in output and "database:" in output

    back = tmp_path / "back.db"
    # --database-url before the command: the copy reads the server, not the home's file.
    output, status = run_cli(home, "--database-url", pg_url, "migrate", "--to", str(back))
    assert status == 0, output
    assert f"Copying {shown} to {back}" in output and pg_url not in output
    again = SqliteStore(back)
    try:
        assert _everything(again, rich) == before
    finally:
        again.close()

    output, status = run_cli(home, "migrate", "--to", str(back))
    assert status == 2 and "not empty" in output
    output, status = run_cli(home, "migrate", "--to", pg_url, "--database-url", pg_url)
    assert status == 2 and "runs on" in output and pg_url not in output


def test_cli_never_prints_the_password(home):
    url = "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere"  # nothing listens on port 1
    output, status = run_cli(home, "migrate", "--to", url)
    assert status == 2 and "postgresql://someone@127.0.0.1:1/nowhere" in output
    assert "s3cret-pw" not in output
