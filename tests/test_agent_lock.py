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


def test_concurrent_appends_lose_nothing(agent, settings):
    """Each thread has its own connection (as web workers do); no append may overwrite another."""
    stores = [SqliteStore(settings.db_path) for _ in range(4)]
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
