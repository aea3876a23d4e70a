"""Archival memory: chunked inserts, hybrid search, paging totals, sources, dimensions."""

from __future__ import annotations

import pytest

from engine.errors import EmbeddingMismatch, NotFound, ToolError
from engine.memory import PAGE_SIZE, ArchivalMemory
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from tests.support.embedder import HashEmbedder

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL

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


@pytest.fixture
def archival(store, agent, embedder):
    memory = ArchivalMemory(store, agent.id, embedder)
    for fact in FACTS:
        memory.insert(fact)
    return memory


def test_insert_and_hybrid_search(archival):
    results = archival.search("capital of France")
    assert results.hits[0].passage.text == FACTS[0]
    assert results.hits[0].keyword_rank == 1 and results.hits[0].vector_rank == 1
    text = results.format()
    assert text.startswith(f"Showing 5 of {len(FACTS)} results (page 0/1):")
    assert "Paris is the capital of France" in text


def test_keyword_only_match_is_found(archival):
    # "Queensland" shares no other word with the query, but BM25 ranks it.
    hit = archival.search("Queensland").hits[0]
    assert "Queensland" in hit.passage.text and hit.keyword_rank == 1


def test_paging_visits_every_passage_once(archival):
    seen = []
    first = archival.search("the")
    for page in range(first.last + 1):
        seen += [h.passage.id for h in archival.search("the", page).hits]
    assert len(seen) == len(set(seen)) == first.total == len(FACTS)
    with pytest.raises(ToolError, match="page"):
        archival.search("the", first.last + 1)


def test_vector_mode_totals(archival):
    results = archival.search("hearts blood", mode="vector")
    assert results.total == len(FACTS)
    assert "Octopuses" in results.hits[0].passage.text
    assert 0 < results.hits[0].score <= 1.0
    second = archival.search("hearts blood", page=1, mode="vector")
    assert len(second.hits) == len(FACTS) - PAGE_SIZE
    assert not {h.passage.id for h in results.hits} & {h.passage.id for h in second.hits}


@pytest.mark.parametrize("query", ['"', "NEAR(", "*", "x" * 10_000, "   ", "'; DROP TABLE passages; --"])
def test_hostile_queries(archival, query):
    assert archival.search(query).format().startswith(("Showing", "No results"))


def test_empty_archive(store, agent, embedder):
    assert ArchivalMemory(store, agent.id, embedder).search("anything").format() == "No results found."


def test_long_text_is_chunked(store, agent, embedder):
    from engine import tokens

    memory = ArchivalMemory(store, agent.id, embedder)
    paragraph = " ".join(f"Sentence {i} talks about topic {i % 7} in some detail." for i in range(200))
    ids = memory.insert(paragraph)
    assert len(ids) > 3
    stored = passages_store.fetch(store, ids)
    assert all(tokens.count(stored[i].text) <= 320 for i in ids)
    assert " ".join(stored[i].text for i in ids).split() == paragraph.split()


def test_empty_insert_is_refused(store, agent, embedder):
    with pytest.raises(ToolError):
        ArchivalMemory(store, agent.id, embedder).insert("   ")


def test_dimension_mismatch_is_refused(store, agent, make_agent):
    with pytest.raises(EmbeddingMismatch, match="never mixed"):
        ArchivalMemory(store, agent.id, HashEmbedder(32, name="test-hash"))
    with pytest.raises(EmbeddingMismatch):
        ArchivalMemory(store, agent.id, HashEmbedder(64, name="other-model"))
    with pytest.raises(EmbeddingMismatch):
        passages_store.insert_many(
            store, [("t", [0.1] * 32, {})], embedding_model="test-hash", embedding_dim=32, agent_id=agent.id
        )
    with pytest.raises(EmbeddingMismatch, match="Expected a 64-d vector"):
        passages_store.insert_many(
            store, [("t", [0.1] * 32, {})], embedding_model="test-hash", embedding_dim=64, agent_id=agent.id
        )
    with pytest.raises(EmbeddingMismatch, match="NaN"):
        passages_store.insert_many(
            store, [("t", [float("nan")] * 64, {})], embedding_model="test-hash", embedding_dim=64, agent_id=agent.id
        )
    # In a batch (checked as one matrix) the bad vector is still named, and nothing is stored.
    for bad, message in (([0.1] * 32, "Expected a 64-d vector"), ([0.1] * 63 + [float("inf")], "infinite")):
        with pytest.raises(EmbeddingMismatch, match=message):
            passages_store.insert_many(store, [("good", [0.1] * 64, {}), ("bad", bad, {})],
                                       embedding_model="test-hash", embedding_dim=64, agent_id=agent.id)
    assert passages_store.list_for_agent(store, agent.id, 0, 10) == []


def test_sources_attach_detach_and_isolation(store, agent, make_agent, embedder):
    other = make_agent("bob")
    ArchivalMemory(store, other.id, embedder).insert("Bob's secret: the vault code is 4321")
    source = sources_store.create(store, "manual", embedder.name, embedder.dimension)
    vectors = embedder.embed(["The blue widget needs a 9 volt battery."])
    passages_store.insert_many(
        store, [("The blue widget needs a 9 volt battery.", vectors[0], {"file": "manual.txt"})],
        embedding_model=embedder.name, embedding_dim=embedder.dimension, source_id=source.id,
    )
    mine = ArchivalMemory(store, agent.id, embedder)
    assert "vault" not in mine.search("vault code").format()
    assert "widget" not in mine.search("widget battery").format()
    sources_store.attach(store, agent.id, source.id)
    hit = mine.search("widget battery").hits[0]
    assert hit.passage.source_name == "manual" and "(from manual)" in mine.search("widget battery").format()
    assert mine.count() == 1
    with pytest.raises(NotFound):
        mine.delete(hit.passage.id)  # a source's passage is not the agent's to delete
    sources_store.detach(store, agent.id, source.id)
    assert mine.count() == 0


def test_source_with_other_dimension_cannot_attach(store, agent):
    source = sources_store.create(store, "big", "text-embedding-3-small", 1536)
    with pytest.raises(EmbeddingMismatch, match="1536"):
        sources_store.attach(store, agent.id, source.id)


def test_delete_passage(archival):
    hit = archival.search("Saturn bathtub").hits[0]
    archival.delete(hit.passage.id)
    assert "Saturn" not in archival.search("Saturn bathtub").format()
    assert archival.count() == len(FACTS) - 1


def test_approximate_search_path(store, agent, embedder, monkeypatch):
    """Above EXACT_LIMIT the bit-vector prefilter and exact rescoring take over."""
    monkeypatch.setattr(passages_store, "EXACT_LIMIT", 3)
    memory = ArchivalMemory(store, agent.id, embedder)
    for fact in FACTS:
        memory.insert(fact)
    top = memory.search("capital of France", mode="vector").hits[0]
    assert top.passage.text == FACTS[0]
    assert top.distance == pytest.approx(1 - top.score)


def test_openai_embedder_against_local_server(store, make_agent, fake_openai, embedder):
    from engine.embeddings import OpenAIEmbedder
    from engine.llm.client import make_client

    client = make_client("openai-compatible", fake_openai.base_url)
    remote = OpenAIEmbedder(embedder.name, embedder.dimension, client)
    vectors = remote.embed(["hello", "", "world"] * 30)  # more than one batch
    assert len(vectors) == 90
    assert vectors[0] == pytest.approx(embedder.embed(["hello"])[0])
    batches = [body for path, body in fake_openai.requests if path.endswith("/embeddings")]
    assert len(batches) == 2 and "" not in batches[0]["input"]
    wrong = OpenAIEmbedder(embedder.name, 128, client)
    with pytest.raises(EmbeddingMismatch, match="128-d expected"):
        wrong.embed(["x"])


def _joined_keyword(store, agent_id: int, words: list[str], limit: int) -> list[tuple[int, float]]:
    """Keyword matches the long way: every match's owner checked in `passages` (what the shortcut must equal)."""
    from engine.store import fts

    rows = store.db.execute(
        "SELECT p.id, passages_fts.rank FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid "
        f"WHERE passages_fts MATCH :q AND {passages_store._VISIBLE} ORDER BY passages_fts.rank, p.id LIMIT :limit",
        {"q": fts.match_any(words), "agent": agent_id, "limit": limit},
    ).fetchall()
    return [(r[0], -float(r[1])) for r in rows]


@pytest.mark.sqlite_only
def test_keyword_search_of_an_agent_that_sees_everything_matches_the_owner_checked_one(store, agent, make_agent,
                                                                                       embedder):
    """With one agent (and its sources) the owner lookups are skipped; the ranking must not move."""
    memory = ArchivalMemory(store, agent.id, embedder)
    memory.insert_many([(f"{fact} Note {i} on paris and honey." if i % 3 else fact, None, None)
                        for i, fact in enumerate(FACTS * 4)])
    source = sources_store.create(store, "manual", embedder.name, embedder.dimension)
    sources_store.attach(store, agent.id, source.id)
    passages_store.insert_many(store, [("Honey from Paris, a manual.", embedder.embed(["x"])[0], {})],
                               embedding_model=embedder.name, embedding_dim=embedder.dimension, source_id=source.id)
    words = ["paris", "honey"]
    assert passages_store._sees_everything(store.db, agent.id)
    for limit in (1, 5, 100):
        found = passages_store.keyword_scored(store, agent.id, "paris honey", limit, words=words, any_word=True)
        assert found == _joined_keyword(store, agent.id, words, limit) and found
    assert passages_store.keyword_count(store, agent.id, words) == len(_joined_keyword(store, agent.id, words, 1000))

    # Another agent's passages: the owner check is back, and none of bob's passages comes through.
    bob = make_agent("bob")
    ArchivalMemory(store, bob.id, embedder).insert_many([("Paris honey paris honey, bob's secret.", None, None)] * 3)
    assert not passages_store._sees_everything(store.db, agent.id)
    found = passages_store.keyword_scored(store, agent.id, "paris honey", 100, words=words, any_word=True)
    assert found == _joined_keyword(store, agent.id, words, 100)
    assert "secret" not in " ".join(p.text for p in passages_store.fetch(store, [pid for pid, _ in found]).values())

    # Even if the counts lied (they are what chose the shortcut), the rows themselves are checked.
    store.db.execute("UPDATE passage_counts SET n = 0 WHERE owner = ?", [f"a{bob.id}"])
    store.db.conn.commit()
    assert passages_store._sees_everything(store.db, agent.id)
    found = passages_store.keyword_scored(store, agent.id, "paris honey", 100, words=words, any_word=True)
    assert found == _joined_keyword(store, agent.id, words, 100)
