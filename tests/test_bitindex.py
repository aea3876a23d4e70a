"""SQLite's in-memory bit arrays for approximate archival search stay true to the database.

With EXACT_LIMIT lowered every search takes the approximate path, and with the
candidate pool at least as large as an owner's passages the bit filter keeps them
all, so the results must be exactly those of the exact search: any stale array
(a deleted passage, an old embedding, a missed insert, another owner's rows)
shows up as a wrong answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import EmbeddingConfig
from engine.memory import ArchivalMemory
from engine.store import bitindex
from engine.store import passages as passages_store
from tests.support.embedder import HashEmbedder

pytestmark = pytest.mark.sqlite_only

TEXTS = [f"note {i}: {word} and {other}" for i, (word, other) in enumerate(
    zip("apple river stone cloud violin garden lantern harbor meadow falcon copper orchid".split(),
        "winter summer autumn spring night noon dawn dusk rain snow wind fog".split()))]


@pytest.fixture
def approximate(monkeypatch):
    monkeypatch.setattr(passages_store, "EXACT_LIMIT", 2)
    monkeypatch.setattr(passages_store, "BIT_CANDIDATES", 1000)
    builds: list[int] = []
    rows = bitindex.BitIndex._rows

    def recording(self, db, owner, dim, after):
        builds.append(after)
        return rows(self, db, owner, dim, after)

    monkeypatch.setattr(bitindex.BitIndex, "_rows", recording)
    return builds


def items(texts: list[str]) -> list[tuple[str, None, None]]:
    return [(text, None, None) for text in texts]


def exact(store, agent_id: int, vector, k: int) -> list[int]:
    rows = store.db.execute("SELECT id, embedding FROM passages WHERE agent_id = ?", [agent_id]).fetchall()
    matrix = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    query = np.asarray(vector, dtype=np.float32)
    scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
    return [rows[i][0] for i in np.argsort(-scores, kind="stable")[:k]]


def search(store, agent_id: int, embedder, text: str, k: int = 5) -> list[int]:
    found = passages_store.vector_search(store, embedder.dimension, [f"a{agent_id}"], embedder.embed([text])[0], k)
    return [pid for pid, _ in found]


@pytest.mark.parametrize("dim", [64, 24])  # 64 bits a word, and a width numpy scans byte by byte
def test_inserts_deletes_and_new_embeddings_are_seen(store, make_agent, approximate, dim):
    embedder = HashEmbedder(dim)
    agent = make_agent("bits", embedding=EmbeddingConfig("openai-compatible", embedder.name, dim))
    memory = ArchivalMemory(store, agent.id, embedder)
    memory.insert_many(items(TEXTS[:6]))
    query = "apple river winter"
    assert search(store, agent.id, embedder, query) == exact(store, agent.id, embedder.embed([query])[0], 5)
    assert approximate == [0]  # built once from the start

    new = memory.insert("apple river winter, again")[0]
    assert search(store, agent.id, embedder, query)[0] == new  # an insert is appended, not rebuilt
    assert len(approximate) == 2 and approximate[1] > 0

    memory.delete(new)
    assert new not in search(store, agent.id, embedder, query, k=20)
    assert approximate[-1] == 0  # a delete rebuilds

    # A new embedding under the same id (what a re-embed does) moves the passage.
    target = search(store, agent.id, embedder, query, k=20)[-1]
    store.db.execute("UPDATE passages SET embedding = ? WHERE id = ?",
                     [np.asarray(embedder.embed([query])[0], dtype=np.float32).tobytes(), target])
    store.db.conn.commit()
    assert search(store, agent.id, embedder, query)[0] == target
    assert search(store, agent.id, embedder, query) == exact(store, agent.id, embedder.embed([query])[0], 5)


def test_an_agent_deleted_and_made_again_never_sees_the_old_passages(store, make_agent, embedder, approximate):
    from engine import agents as agents_mod

    first = make_agent("first")
    ArchivalMemory(store, first.id, embedder).insert_many(items(TEXTS))
    assert len(search(store, first.id, embedder, "violin garden", k=20)) == len(TEXTS)  # its array is built
    agents_mod.delete_agent(store, first.id)
    again = make_agent("again")  # SQLite hands out the freed id again
    assert again.id == first.id
    ArchivalMemory(store, again.id, embedder).insert_many(items(TEXTS[:3]))
    found = search(store, again.id, embedder, "violin garden", k=20)
    assert len(found) == 3 and set(found) == {pid for pid, in store.db.execute(
        "SELECT id FROM passages WHERE agent_id = ?", [again.id]).fetchall()}


def test_only_the_owners_passages_come_back(store, make_agent, embedder, approximate):
    ada, bob = make_agent("ada"), make_agent("bob")
    ArchivalMemory(store, ada.id, embedder).insert_many(items(TEXTS[:6]))
    ArchivalMemory(store, bob.id, embedder).insert_many(items(TEXTS))
    bobs = {pid for pid, in store.db.execute("SELECT id FROM passages WHERE agent_id = ?", [bob.id]).fetchall()}
    assert not set(search(store, ada.id, embedder, "apple river", k=50)) & bobs


def test_passages_changing_while_read_fall_back_to_sqlite_vec(store, agent, embedder, approximate, monkeypatch):
    ArchivalMemory(store, agent.id, embedder).insert_many(items(TEXTS))
    states = iter(range(100))
    monkeypatch.setattr(bitindex.BitIndex, "_state", lambda self, db, owner: (next(states), 1))
    assert store.bit_index.candidates(store.db, f"a{agent.id}", embedder.dimension, b"\0" * (embedder.dimension // 8), 5) is None
    assert search(store, agent.id, embedder, "apple river")[0] == exact(
        store, agent.id, embedder.embed(["apple river"])[0], 1)[0]


def test_arrays_beyond_the_budget_are_dropped(store, make_agent, embedder, approximate):
    store.bit_index = bitindex.BitIndex(budget_bytes=1)
    for name in ("one", "two", "three"):
        row = make_agent(name)
        ArchivalMemory(store, row.id, embedder).insert_many(items(TEXTS))
        search(store, row.id, embedder, "copper orchid")
    assert len(store.bit_index._arrays) == 1  # the most recent owner's array alone


@pytest.mark.parametrize("dim", [64, 24, 384])  # 64-bit words, bytes, and the 6 words of MiniLM's 384-d
def test_candidates_are_the_nearest_in_hamming_distance(store, make_agent, dim):
    """The word-major scan must rank by the same Hamming distance sqlite-vec's own bits give."""
    agent = make_agent("hamming", embedding=EmbeddingConfig("openai-compatible", "random", dim))
    rng = np.random.default_rng(dim)
    vectors = rng.standard_normal((300, dim)).astype(np.float32)
    ids = passages_store.insert_many(store, [(f"p{i}", v, None) for i, v in enumerate(vectors)],
                                     embedding_model="random", embedding_dim=dim, agent_id=agent.id)
    query = rng.standard_normal(dim).astype(np.float32).tobytes()
    query_bits, = store.db.execute("SELECT vec_quantize_binary(?)", [query]).fetchone()
    rows = store.db.execute("SELECT id, vec_quantize_binary(embedding) FROM passages WHERE agent_id = ?",
                            [agent.id]).fetchall()
    reference = {pid: int(np.unpackbits(np.frombuffer(bits, np.uint8) ^ np.frombuffer(query_bits, np.uint8)).sum())
                 for pid, bits in rows}
    assert sorted(reference) == ids
    picked = store.bit_index.candidates(store.db, f"a{agent.id}", dim, query_bits, 20)
    assert len(picked) == len(set(picked)) == 20
    cutoff = sorted(reference.values())[19]
    assert all(reference[pid] <= cutoff for pid in picked)
    assert {pid for pid, d in reference.items() if d < cutoff} <= set(picked)
