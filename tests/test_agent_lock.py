"""Every change to an agent is serialized with its steps, and read-modify-write happens in one transaction."""

from __future__ import annotations

import threading
import time

import pytest

from engine.config import EmbeddingConfig
from engine.errors import AgentBusy
from engine.memory import CoreMemory
from engine.reembed import reembed_agent
from engine.store import SqliteStore
from tests.support.embedder import HashEmbedder

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


def _another_store(store, settings):
    """A second store on the same database, standing for another process (its own connections)."""
    if store.dialect == "postgres":
        from engine.store.pg import PgStore

        return PgStore(store.url)
    return SqliteStore(settings.db_path)


def test_concurrent_appends_lose_nothing(agent, store, settings):
    """Each thread has its own connection (as web workers do); no append may overwrite another."""
    stores = [_another_store(store, settings) for _ in range(4)]
    start = threading.Barrier(len(stores))
    errors = []

    def work(n, store):
        core = CoreMemory(store, agent.id)
        start.wait()
        try:
            for i in range(10):
                core.append("human", f"fact-{n}-{i}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(stores)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        value = CoreMemory(stores[0], agent.id).get("human").value
        missing = [f"fact-{n}-{i}" for n in range(4) for i in range(10) if f"fact-{n}-{i}" not in value]
        assert missing == []
    finally:
        for s in stores:
            s.close()


def test_a_face_edit_waits_for_the_running_step(agent, store):
    order = []
    lock = store.agent_lock(agent.id)
    lock.acquire()  # a step is running

    def edit():
        with store.hold_agent(agent.id):
            order.append("edit")

    t = threading.Thread(target=edit)
    t.start()
    time.sleep(0.3)
    order.append("step done")
    lock.release()
    t.join(timeout=10)
    assert order == ["step done", "edit"]


def test_a_face_edit_gives_up_with_a_clear_error(agent, store):
    lock = store.agent_lock(agent.id)
    lock.acquire()
    try:
        with pytest.raises(AgentBusy, match="busy with a turn"):
            with store.hold_agent(agent.id, timeout=0.2):
                pass
    finally:
        lock.release()


def test_reembedding_holds_the_agent(agent, store):
    bigger = HashEmbedder(32, "h32")
    steps = reembed_agent(store, agent.id, bigger, EmbeddingConfig("openai-compatible", "h32", 32))
    next(steps)  # started: the agent is held until it finishes
    assert store.agent_lock(agent.id).locked()
    list(steps)
    assert not store.agent_lock(agent.id).locked()


def test_the_agent_lock_spans_processes_on_postgresql(tmp_path):
    """What one process holds, another waits for: on PostgreSQL the agent lock is an advisory lock.

    (SQLite's is per process by design: one file is served by one process; see docs/ARCHITECTURE.md.)
    """
    from engine.store import agents as agents_store
    from engine.store.pg import PgStore
    from tests.support import postgres

    url = postgres.fresh_database()
    first, second = PgStore(url), PgStore(url)  # two processes' stores: separate connections
    try:
        agent_id = agents_store.insert(
            first, name="shared", preset="memgpt_chat", system_prompt="s", functions=[], persona="p", human="h",
            llm_config={}, embedding_config={}, embedding_model="m", embedding_dim=8)
        mine, theirs = first.agent_lock(agent_id), second.agent_lock(agent_id)
        assert not theirs.locked()
        assert mine.acquire(timeout=1)
        assert theirs.locked()  # the other process sees the step running
        started = time.monotonic()
        assert not theirs.acquire(timeout=0.3)
        assert time.monotonic() - started >= 0.3
        with pytest.raises(AgentBusy):
            with second.hold_agent(agent_id, timeout=0.2):
                pass
        mine.release()
        assert theirs.acquire(timeout=1)
        assert mine.locked()
        # A process that goes away mid-step frees the agent: its session ends and the lock with it.
        second.close()
        assert mine.acquire(timeout=5)
        mine.release()
    finally:
        first.close()
        second.close()
        postgres.drop_database(url)
