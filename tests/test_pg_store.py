"""What only the PostgreSQL store has: SQL translation, a lost server, migrations racing, URLs shown safely."""

from __future__ import annotations

import threading

import numpy as np
import psycopg
import pytest

from engine.errors import StoreUnavailable
from engine.store import agents as agents_store
from engine.store import messages as messages_store
from engine.store.pg import PgStore, Vector, safe_url, to_pg
from tests.support import postgres


@pytest.fixture
def url():
    url = postgres.fresh_database()
    yield url
    postgres.drop_database(url)


def _agent(store) -> int:
    return agents_store.insert(
        store, name="Pat", preset="memgpt_chat", system_prompt="s", functions=[], persona="p", human="h",
        llm_config={}, embedding_config={}, embedding_model="m", embedding_dim=4)


def test_placeholders_are_rewritten_outside_string_literals():
    assert to_pg("SELECT ? , :agent FROM t WHERE a = 'x?:y %' AND b::text LIKE '%z'") == (
        "SELECT %s , %(agent)s FROM t WHERE a = 'x?:y %%' AND b::text LIKE '%%z'")
    assert to_pg("SELECT 'it''s ?' , ?") == "SELECT 'it''s ?' , %s"
    assert to_pg("SELECT 5 % 3") == "SELECT 5 %% 3"


def test_strings_that_look_like_sql_are_stored_as_they_are(url):
    store = PgStore(url)
    try:
        agent_id = _agent(store)
        for text in ("100% sure? yes: :name ?", "%s %(x)s", "'; DROP TABLE agents; --", "\\x00 not a nul"):
            stored = messages_store.add(store, agent_id, "user", text)
            assert messages_store.get(store, stored.id).content == text
        # A real NUL, which PostgreSQL's text cannot hold, is kept visible as U+FFFD instead of failing the write.
        stored = messages_store.add(store, agent_id, "user", "before\x00after")
        assert messages_store.get(store, stored.id).content == "before\ufffdafter"
        found, total = messages_store.search_text(store, agent_id, "DROP TABLE; --", 0, 10)
        assert total == 1 and found[0].content.startswith("';")
        assert messages_store.search_text(store, agent_id, "after", 0, 10)[1] == 1
    finally:
        store.close()


def test_vectors_go_in_as_binary_and_come_back_equal(url):
    store = PgStore(url)
    try:
        values = np.array([0.25, -1.5, 3.0e-8, 12345.678], dtype=np.float32)
        row = store.db.execute("SELECT CAST(? AS vector)::text", [Vector(values)]).fetchone()
        assert np.allclose(np.array(row[0].strip("[]").split(","), dtype=np.float32), values)
    finally:
        store.close()


def test_a_lost_server_connection_is_a_readable_error_and_the_next_call_reconnects(url):
    store = PgStore(url)
    try:
        agent_id = _agent(store)
        pid = store.db.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(StoreUnavailable, match="Lost the connection to postgresql://"):
            messages_store.add(store, agent_id, "user", "first try")
        messages_store.add(store, agent_id, "user", "second try")  # a fresh connection
        assert [m.content for m in messages_store.list_messages(store, agent_id)] == ["second try"]
        pid = store.db.execute("SELECT pg_backend_pid()").fetchone()[0]
        with pytest.raises(StoreUnavailable):
            with store.atomic() as db:
                db.execute("INSERT INTO llm_calls (agent_id, model, prompt_tokens, completion_tokens, created_at) "
                           "VALUES (?, 'm', 1, 1, 'now')", [agent_id])
                with psycopg.connect(url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", [pid])
                db.execute("SELECT 1")
        assert agents_store.usage_totals(store, agent_id) == (0, 0, 0)  # the half-done transaction left nothing
    finally:
        store.close()


def test_an_unreachable_server_says_where_without_the_password():
    with pytest.raises(StoreUnavailable) as caught:
        PgStore("postgresql://someone:s3cret@127.0.0.1:1/nowhere")
    assert "postgresql://someone@127.0.0.1:1/nowhere" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert safe_url("postgresql://u:pw@db.example.com:5433/memgpt?sslmode=require") == (
        "postgresql://u@db.example.com:5433/memgpt")


def test_two_processes_opening_an_empty_database_migrate_it_once():
    url = postgres.fresh_database(empty=True)
    stores: list[PgStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def open_one():
        start.wait()
        try:
            stores.append(PgStore(url))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        applied = sorted(name for s in stores for name in s.applied_migrations)
        assert applied == ["p001_initial", "p002_recall_vectors", "p003_block_removal"]  # one of them applied them, the others found them done
        again = PgStore(url)
        assert again.applied_migrations == []
        again.close()
    finally:
        for s in stores:
            s.close()
        postgres.drop_database(url)


def test_a_finished_threads_connection_serves_the_next_thread(url):
    """Servers run each step on a new thread; they should not pay a new connection per step."""
    store = PgStore(url)
    pids: list[int] = []

    def step():
        pids.append(store.db.execute("SELECT pg_backend_pid()").fetchone()[0])

    def leaves_a_transaction_open():
        store.db.execute("BEGIN")
        pids.append(store.db.execute("SELECT pg_backend_pid()").fetchone()[0])

    try:
        for work in (step, step, step, leaves_a_transaction_open, step, step):
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
        assert pids[0] == pids[1] == pids[2] == pids[3]  # reused
        assert pids[4] != pids[3]  # a connection left mid-transaction is closed, never handed on
        assert pids[4] == pids[5]
        with psycopg.connect(url, autocommit=True) as admin:
            alive = {r[0] for r in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")}
        assert pids[3] not in alive
    finally:
        store.close()
