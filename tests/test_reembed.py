"""Switching an agent's embedder re-embeds its passages and never mixes dimensions."""

from __future__ import annotations

import pytest

from engine.config import EmbeddingConfig
from engine.errors import EmbeddingMismatch
from engine.memory import ArchivalMemory
from engine.reembed import reembed_agent
from engine.store import agents as agents_store
from engine.store import sources as sources_store
from tests.support.embedder import HashEmbedder

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


def test_reembed_switches_dimension_with_progress(store, agent, embedder):
    old = ArchivalMemory(store, agent.id, embedder)
    for i in range(150):
        old.insert(f"fact number {i} about lighthouses and keepers")
    source = sources_store.create(store, "old-docs", embedder.name, embedder.dimension)
    sources_store.attach(store, agent.id, source.id)
    bigger = HashEmbedder(128, name="hash-128")
    steps = list(reembed_agent(store, agent.id, bigger, EmbeddingConfig("openai-compatible", "hash-128", 128), batch=50))
    assert [(p.done, p.total) for p in steps] == [(0, 150), (50, 150), (100, 150), (150, 150)]
    row = agents_store.get(store, agent.id)
    assert (row.embedding_model, row.embedding_dim) == ("hash-128", 128)
    assert sources_store.attached(store, agent.id) == []  # a 64-d source cannot stay attached
    new = ArchivalMemory(store, agent.id, bigger)
    assert new.count() == 150
    assert "fact number 7 about" in new.search("fact number 7", mode="vector").format()
    assert store.db.execute("SELECT count(*) FROM passages_vec_64").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM passages_vec_128").fetchone()[0] == 150
    with pytest.raises(EmbeddingMismatch):
        ArchivalMemory(store, agent.id, embedder)


def test_interrupted_reembed_changes_nothing(store, agent, embedder):
    ArchivalMemory(store, agent.id, embedder).insert("a fact")
    steps = reembed_agent(store, agent.id, HashEmbedder(32, "h32"), EmbeddingConfig("openai-compatible", "h32", 32))
    next(steps)
    steps.close()
    assert agents_store.get(store, agent.id).embedding_dim == 64
    assert "a fact" in ArchivalMemory(store, agent.id, embedder).search("fact").format()


def test_settings_must_match_the_embedder(store, agent):
    with pytest.raises(EmbeddingMismatch):
        list(reembed_agent(store, agent.id, HashEmbedder(32, "h32"), EmbeddingConfig("openai-compatible", "h32", 64)))
