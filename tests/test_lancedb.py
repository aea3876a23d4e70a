"""archival_storage: lancedb — vectors in a real LanceDB directory, everything else in the store."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pytest

from engine.agents import delete_agent
from engine.config import EmbeddingConfig, load_settings, save_settings
from engine.errors import ConfigError
from engine.memory import ArchivalMemory
from engine.reembed import reembed_agent
from engine.store import attach_lancedb, open_store
from engine.store import lance as lance_module
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from engine.store.lance import LanceVectors
from tests.support.embedder import HashEmbedder

pytestmark = pytest.mark.both_stores  # the LanceDB side is the same; the rows live in SQLite or PostgreSQL

DIM = 64
FACTS = [
    "Paris is the capital of France and sits on the Seine.",
    "The Eiffel Tower was finished in 1889.",
    "Bananas are berries, botanically speaking.",
    "Octopuses have three hearts and blue blood.",
    "The Great Barrier Reef lies off the coast of Queensland.",
    "Mount Everest is the highest mountain above sea level.",
    "Honey never spoils if it is sealed.",
    "Saturn would float in a bathtub big enough to hold it.",
]
QUERIES = ["capital of France", "hearts blood", "Saturn bathtub", "mountain sea", "lighthouse keeper 17"]


@pytest.fixture
def lance(store, tmp_path) -> LanceVectors:
    attach_lancedb(store, tmp_path / "lancedb")
    assert store.vectors is not None
    return store.vectors


def _vector_ids(store, owners, embedder, query, k=10):
    return passages_store.vector_search(store, DIM, owners, embedder.embed([query])[0], k)


def _ranked(found):
    """Ids nearest first, ties (equal to float32 rounding) in id order: two engines' last bits differ."""
    return [pid for pid, d in sorted(found, key=lambda item: (round(item[1], 5), item[0]))]


def _lance_owners(lance, dim=DIM) -> list[str]:
    table = lance._table(dim)
    return sorted(table.search().select(["owner"]).limit(None).to_arrow().column("owner").to_pylist())


def test_same_neighbours_as_the_store_vector_table(store, lance, agent, embedder):
    texts = FACTS + [f"fact number {i} about lighthouses and keepers {i % 7}" for i in range(40)]
    ArchivalMemory(store, agent.id, embedder).insert(texts[0])
    passages_store.insert_many(
        store, [(t, v, {}) for t, v in zip(texts[1:], embedder.embed(texts[1:]))],
        embedding_model=embedder.name, embedding_dim=DIM, agent_id=agent.id,
    )
    # Every vector went to LanceDB and none to the database's own table.
    assert lance.count(DIM) == len(texts)
    assert not passages_store._has_vec_table(store, DIM)
    owners = passages_store.owners_for_agent(store, agent.id)
    # Every passage ranked (k = all), and a short list, whose last place may be any of a tie.
    in_lance = {(q, k): _vector_ids(store, owners, embedder, q, k) for q in QUERIES for k in (len(texts), 5)}

    # The same passages into the store's own vector table, searched the usual way.
    store.vectors = None
    try:
        rows = store.db.execute("SELECT id, embedding FROM passages ORDER BY id").fetchall()
        passages_store.ensure_vec_table(store, DIM)
        with store.atomic() as db:
            passages_store.put_vectors(store, db, DIM, owners[0], [(r[0], bytes(r[1])) for r in rows])
        in_store = {(q, k): _vector_ids(store, owners, embedder, q, k) for q in QUERIES for k in (len(texts), 5)}
    finally:
        store.vectors = lance
    for query in QUERIES:
        whole, short = in_lance[query, len(texts)], in_lance[query, 5]
        assert len(whole) == len(texts) and len(short) == 5
        assert _ranked(whole) == _ranked(in_store[query, len(texts)]), query
        assert [d for _, d in whole] == pytest.approx([d for _, d in in_store[query, len(texts)]], abs=1e-5)
        assert _ranked(short) == _ranked(whole)[:5] or short[-1][1] == pytest.approx(short[-2][1], abs=1e-5)
        assert [d for _, d in short] == pytest.approx([d for _, d in in_store[query, 5]], abs=1e-5)


def test_hybrid_and_vector_search_through_archival_memory(store, lance, agent, embedder):
    memory = ArchivalMemory(store, agent.id, embedder)
    for fact in FACTS:
        memory.insert(fact)
    top = memory.search("capital of France").hits[0]
    assert top.passage.text == FACTS[0] and top.vector_rank == 1 and top.keyword_rank == 1
    assert memory.search("Queensland").hits[0].keyword_rank == 1  # the keyword side is the store's, unchanged
    vector = memory.search("hearts blood", mode="vector")
    assert vector.total == len(FACTS) and "Octopuses" in vector.hits[0].passage.text
    assert vector.hits[0].distance == pytest.approx(1 - vector.hits[0].score)
    second = memory.search("hearts blood", page=1, mode="vector")
    assert len(second.hits) == len(FACTS) - 5
    assert not {h.passage.id for h in vector.hits} & {h.passage.id for h in second.hits}


@pytest.mark.parametrize(
    "query", ['"', "NEAR(", "*", "x" * 10_000, "   ", "'; DROP TABLE passages; --", "a1') OR (owner != '", "owner = 's1'"]
)
def test_hostile_search_text_only_reaches_the_keyword_side(store, lance, agent, embedder, query):
    memory = ArchivalMemory(store, agent.id, embedder)
    for fact in FACTS:
        memory.insert(fact)
    seen = []
    search = lance.search

    def spy(dim, owners, vector, k):
        seen.append((owners, vector))
        return search(dim, owners, vector, k)

    lance.search = spy  # type: ignore[method-assign]
    assert memory.search(query).format().startswith(("Showing", "No results"))
    # LanceDB got a float32 query vector and our own owner keys, never the text.
    for owners, vector in seen:
        assert isinstance(vector, bytes) and len(vector) == 4 * DIM
        assert owners == [f"a{agent.id}"]
    assert lance.count(DIM) == len(FACTS) and memory.count() == len(FACTS)


def test_owner_keys_are_validated_before_any_filter(lance):
    lance.ensure(DIM)
    query = np.ones(DIM, dtype=np.float32).tobytes()
    for bad in ["a1') OR (1=1", "a1' --", "s", "x1", "a-1", "a1 ", "a１"]:
        with pytest.raises(ValueError, match="owner key"):
            lance.search(DIM, [bad], query, 5)
        with pytest.raises(ValueError, match="owner key"):
            lance.drop_owner(bad)
        with pytest.raises(ValueError, match="owner key"):
            lance.put(DIM, bad, [(1, query)])
    assert lance.count(DIM) == 0


def test_a_failed_lancedb_write_rolls_the_passages_back(store, lance, agent, embedder, monkeypatch):
    memory = ArchivalMemory(store, agent.id, embedder)
    memory.insert("Honey never spoils if it is sealed.")

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(lance, "put", broken)
    with pytest.raises(OSError, match="disk full"):
        memory.insert("Octopuses have three hearts and blue blood.")
    assert memory.count() == 1 and "Octopuses" not in memory.search("hearts blood").format()
    monkeypatch.setattr(lance, "drop", broken)  # a drop that fails after the row went: logged, not raised
    memory.delete(memory.list()[0].id)
    assert memory.count() == 0 and memory.search("honey", mode="vector").hits == []


def test_small_writes_are_compacted(lance, monkeypatch):
    monkeypatch.setattr(lance_module, "COMPACT_EVERY", 4)
    rng = np.random.default_rng(3)
    for pid in range(1, 11):  # one LanceDB write (one small fragment) each
        lance.put(DIM, "a1", [(pid, rng.standard_normal(DIM).astype(np.float32).tobytes())])
    query = rng.standard_normal(DIM).astype(np.float32).tobytes()
    before = lance.search(DIM, ["a1"], query, 10)
    assert lance._table(DIM).stats()["fragment_stats"]["num_fragments"] <= 4  # compacted after writes 4 and 8
    assert len(before) == 10 and lance.count(DIM) == 10


def test_deleting_a_passage_an_agent_or_a_source_removes_its_vectors(store, lance, agent, make_agent, embedder):
    mine = ArchivalMemory(store, agent.id, embedder)
    for fact in FACTS:
        mine.insert(fact)
    other = make_agent("bob")
    ArchivalMemory(store, other.id, embedder).insert("Bob's secret: the vault code is 4321")
    source = sources_store.create(store, "manual", embedder.name, DIM)
    text = "The blue widget needs a 9 volt battery."
    passages_store.insert_many(store, [(text, embedder.embed([text])[0], {})],
                               embedding_model=embedder.name, embedding_dim=DIM, source_id=source.id)
    sources_store.attach(store, agent.id, source.id)
    assert lance.count(DIM) == len(FACTS) + 2

    saturn = mine.search("Saturn bathtub", mode="vector").hits[0].passage
    mine.delete(saturn.id)
    assert saturn.id not in {h.passage.id for h in mine.search("Saturn bathtub", mode="vector").hits}
    assert lance.count(DIM) == len(FACTS) + 1

    delete_agent(store, other.id)
    assert f"a{other.id}" not in _lance_owners(lance)

    assert "widget" in mine.search("widget battery").format()
    sources_store.delete(store, source.id)
    assert "widget" not in mine.search("widget battery").format()
    assert _lance_owners(lance) == [f"a{agent.id}"] * (len(FACTS) - 1)


def test_leftover_vectors_never_surface_and_sync_clears_them(store, lance, agent, make_agent, embedder):
    mine = ArchivalMemory(store, agent.id, embedder)
    for fact in FACTS:
        mine.insert(fact)
    bob = make_agent("bob")
    ArchivalMemory(store, bob.id, embedder).insert("Bob's secret: the vault code is 4321")
    bobs = store.db.execute("SELECT id FROM passages WHERE agent_id = ?", [bob.id]).fetchone()[0]
    paris = store.db.execute("SELECT id FROM passages WHERE text LIKE 'Paris%'").fetchone()[0]
    query = embedder.embed(["vault code capital of France"])[0]
    blob = np.asarray(query, dtype=np.float32).tobytes()
    # What a failed drop or a rolled-back insert leaves: vectors right on the query for ids
    # the store does not hold, or holds for another owner (added raw: `put` would upsert).
    lance.put(DIM, f"a{agent.id}", [(99_999, blob)])
    stray = {"id": bobs, "owner": f"a{agent.id}", "vector": np.frombuffer(blob, dtype=np.float32).tolist()}
    lance._table(DIM).add(pa.Table.from_pylist([stray], schema=lance._schema(DIM)))
    store.db.execute("DELETE FROM passages WHERE id = ?", [paris])  # the row goes, its vector stays
    found = passages_store.vector_search(store, DIM, [f"a{agent.id}"], query, 5)
    assert len(found) == 5 and not {bobs, 99_999, paris} & {pid for pid, _ in found}
    assert passages_store.vector_search(store, DIM, [f"a{bob.id}"], query, 5)[0][0] == bobs

    passages_store.sync_vectors(store)
    assert paris not in lance.ids(DIM)  # gone from the store, below its highest id: dropped
    assert 99_999 in lance.ids(DIM)  # above it: perhaps another process's insert in flight, so kept (and hidden)
    assert passages_store.vector_search(store, DIM, [f"a{agent.id}"], query, 5) == found


def test_first_start_with_lancedb_fills_it_from_the_store(store, agent, embedder, tmp_path):
    memory = ArchivalMemory(store, agent.id, embedder)
    for fact in FACTS:
        memory.insert(fact)  # into the store's own vector table
    before = [h.passage.id for h in memory.search("capital of France").hits]
    attach_lancedb(store, tmp_path / "lancedb")
    assert store.vectors is not None and store.vectors.count(DIM) == len(FACTS)
    assert [h.passage.id for h in memory.search("capital of France").hits] == before
    attach_lancedb(store, tmp_path / "lancedb")  # in step: nothing to do, nothing doubled
    assert store.vectors.count(DIM) == len(FACTS)


def test_reembedding_moves_the_vectors(store, lance, agent, embedder):
    old = ArchivalMemory(store, agent.id, embedder)
    for i in range(30):
        old.insert(f"fact number {i} about lighthouses and keepers")
    bigger = HashEmbedder(128, name="hash-128")
    list(reembed_agent(store, agent.id, bigger, EmbeddingConfig("openai-compatible", "hash-128", 128), batch=8))
    assert (lance.count(DIM), lance.count(128)) == (0, 30)
    assert lance.dimensions() == [DIM, 128]
    new = ArchivalMemory(store, agent.id, bigger)
    assert "fact number 7 about" in new.search("fact number 7", mode="vector").format()
    assert not passages_store._has_vec_table(store, 128)


def test_attached_sources_are_searched(store, lance, agent, embedder):
    source = sources_store.create(store, "manual", embedder.name, DIM)
    text = "The blue widget needs a 9 volt battery."
    passages_store.insert_many(store, [(text, embedder.embed([text])[0], {"file": "manual.txt"})],
                               embedding_model=embedder.name, embedding_dim=DIM, source_id=source.id)
    mine = ArchivalMemory(store, agent.id, embedder)
    mine.insert("Honey never spoils if it is sealed.")
    assert "widget" not in mine.search("widget battery", mode="vector").format()
    sources_store.attach(store, agent.id, source.id)
    hit = mine.search("widget battery", mode="vector").hits[0]
    assert hit.passage.source_name == "manual" and hit.vector_rank == 1
    sources_store.detach(store, agent.id, source.id)  # the vector stays (the source still has it), unseen
    assert "widget" not in mine.search("widget battery", mode="vector").format()


def _write_config(home, text):
    (home / "config.yaml").write_text(text, encoding="utf-8")


def test_config_selects_lancedb(home, tmp_path, monkeypatch):
    monkeypatch.delenv("MEMGPT_ARCHIVAL_STORAGE", raising=False)
    monkeypatch.delenv("MEMGPT_DATABASE_URL", raising=False)
    assert load_settings(home, env={}).archival_storage == "store"
    store = open_store(load_settings(home, env={}))
    assert store.vectors is None
    store.close()

    _write_config(home, "archival_storage: lancedb\n")
    settings = load_settings(home, env={})
    assert (settings.archival_storage, settings.lancedb_path) == ("lancedb", home / "lancedb")
    store = open_store(settings)
    try:
        assert isinstance(store.vectors, LanceVectors) and store.vectors.path == home / "lancedb"
    finally:
        store.close()
    save_settings(settings)  # the web app's config tab rewrites config.yaml: the choice must survive it
    assert load_settings(home, env={}).archival_storage == "lancedb"

    _write_config(home, f"archival_storage: LanceDB\narchival_path: {tmp_path / 'vectors'}\n")
    assert load_settings(home, env={}).lancedb_path == tmp_path / "vectors"
    _write_config(home, "archival_storage: lancedb\narchival_path: vecs\n")
    assert load_settings(home, env={}).lancedb_path == home / "vecs"
    _write_config(home, "")
    assert load_settings(home, env={"MEMGPT_ARCHIVAL_STORAGE": "lancedb"}).archival_storage == "lancedb"


@pytest.mark.parametrize("value", ["chroma", "postgres", "1", "[lancedb]"])
def test_unknown_archival_storage_is_a_config_error(home, value):
    _write_config(home, f"archival_storage: {value}\n")
    with pytest.raises(ConfigError, match="Unknown archival_storage.*'lancedb'"):
        load_settings(home, env={})
    _write_config(home, "")
    with pytest.raises(ConfigError, match="Unknown archival_storage"):
        load_settings(home, env={"MEMGPT_ARCHIVAL_STORAGE": value})


def test_missing_lancedb_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lancedb", None)  # `import lancedb` now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'lancedb>=0.40'"):
        LanceVectors(tmp_path / "lancedb")
