"""Recall memory searched like archival memory: message vectors, hybrid ranking, date filters."""

from __future__ import annotations

import datetime as dt

import pytest

from engine import recall_index
from engine.errors import ToolError
from engine.memory import RecallMemory
from engine.store import messages as messages_store

pytestmark = pytest.mark.both_stores

CHAT = [
    ("2024-03-01T09:00:00.000+00:00", "user", "I adopted two kittens this weekend!"),
    ("2024-03-01T09:00:05.000+00:00", "assistant", "How lovely! What are their names?"),
    ("2024-03-01T09:01:00.000+00:00", "user", "Luna and Oliver."),
    ("2024-04-10T18:00:00.000+00:00", "user", "My sister is visiting from Lisbon next month."),
    ("2024-05-12T18:00:00.000+00:00", "user", "The kittens knocked over my plant again."),
    ("2024-05-12T18:00:05.000+00:00", "assistant", "Oh no, poor plant! Maybe move it higher."),
]


@pytest.fixture
def chat(store, agent):
    ids = []
    for at, role, text in CHAT:
        ids.append(messages_store.add(store, agent.id, role, text, text=text, created_at=at).id)
        # Packaging rows between turns (a heartbeat, a tool result) are never hits nor neighbours.
        messages_store.add(store, agent.id, "tool", '{"status": "OK"}', text="", tool_call_id="x", created_at=at)
    return ids


@pytest.fixture
def recall(store, agent, embedder, chat):
    return RecallMemory(store, agent.id, embedder)


def test_a_search_embeds_what_is_pending_first(store, agent, recall):
    assert len(messages_store.pending_vectors(store, agent.id, 100)) == len(CHAT)  # tool rows are not searchable
    recall.search("kittens")
    assert messages_store.pending_vectors(store, agent.id, 100) == []


def test_hybrid_finds_words_and_the_answer_after_the_question(recall):
    found, total, _, _ = recall.find("and their names?", k=3)
    # "Luna and Oliver." shares no content word with the query: it follows the question it answers,
    # and ranks above it, since a question matches questions well but holds no answer.
    assert [m.text for m in found][0] == "Luna and Oliver."
    assert "How lovely! What are their names?" in [m.text for m in found]
    everything, total, _, _ = recall.find("kittens names", k=100)
    assert len(everything) == total and all(m.role in ("user", "assistant") for m in everything)


def test_dates_narrow_every_kind_of_search(recall):
    may = {"start_date": "2024-05-01", "end_date": "2024-05-31"}
    shown = recall.search("kittens", **may)
    assert "plant" in shown and "adopted" not in shown
    assert "adopted" in recall.search("kittens", start_date="2024-03-01", end_date="2024-03-01")
    listed, total, _, _ = recall.find("", start=dt.date(2024, 5, 12), end=dt.date(2024, 5, 12))
    assert total == 4  # both turns and the tool rows of that day: a listing shows everything
    with pytest.raises(ToolError, match="YYYY-MM-DD"):
        recall.search("kittens", start_date="last week")
    with pytest.raises(ToolError, match="before"):
        recall.search("kittens", start_date="2024-05-02", end_date="2024-05-01")


def test_a_named_month_lifts_what_was_said_then(recall):
    found, _, _, _ = recall.find("kittens in May 2024")
    assert found[0].text == "The kittens knocked over my plant again."
    found, _, _, _ = recall.find("kittens in March 2024")
    assert found[0].text == "I adopted two kittens this weekend!"


def test_without_an_embedder_search_is_full_text(store, agent, chat):
    plain = RecallMemory(store, agent.id)
    found, total, _, _ = plain.find("kittens")
    assert total == 2 and {m.text for m in found} == {CHAT[0][2], CHAT[4][2]}
    assert messages_store.pending_vectors(store, agent.id, 100)  # nothing was embedded
    dated, _, _, _ = plain.find("kittens", start=dt.date(2024, 5, 1))  # dates work without vectors too
    assert dated[0].text == CHAT[4][2] and all(m.created_at >= "2024-05-01" for m in dated)


def test_changed_text_is_embedded_again(store, agent, recall, chat, embedder):
    recall.search("kittens")
    messages_store.update(store, chat[2], text="Pepper and Salt.", content="Pepper and Salt.")
    assert [mid for mid, _ in messages_store.pending_vectors(store, agent.id, 10)] == [chat[2]]
    recall.search("kittens")
    nearest = messages_store.vector_search(store, agent.id, embedder.name, embedder.embed(["Pepper and Salt."])[0], 1)
    assert nearest[0][0] == chat[2] and nearest[0][1] < 1e-5


def test_vectors_of_another_model_are_not_compared(store, agent, recall, embedder):
    recall.search("kittens")
    query = embedder.embed(["kittens"])[0]
    assert messages_store.vector_search(store, agent.id, embedder.name, query, 10)
    assert messages_store.vector_search(store, agent.id, "another-model", query, 10) == []
    messages_store.forget_vectors(store, agent.id)
    assert len(messages_store.pending_vectors(store, agent.id, 100)) == len(CHAT)


def test_background_indexer_drains_and_stops_with_its_store(store, agent, chat, embedder):
    recall_index.schedule(store, agent.id, embedder)
    assert recall_index.indexer(store).idle(30)
    assert messages_store.pending_vectors(store, agent.id, 100) == []
    messages_store.add(store, agent.id, "user", "one more", text="one more")
    recall_index.schedule(store, agent.id, embedder)
    store.close()  # stops the indexer first; nothing writes through the closed store afterwards
    assert recall_index.indexer(store) is not None  # a store used again gets a new indexer


def test_a_failing_embedder_leaves_keyword_search_working(store, agent, chat):
    class Broken:
        name, dimension = "broken", 64

        def embed(self, texts):
            raise ConnectionError("embedding endpoint is down")

    recall_index.schedule(store, agent.id, Broken())
    assert recall_index.indexer(store).idle(30)  # the thread logged it and ended; no busy loop
    assert "kittens" in RecallMemory(store, agent.id).search("kittens")


@pytest.mark.parametrize("query", ['"', "NEAR(", "*", "a" * 5000, "\x00", "kittens' OR 1=1 --", "😀"])
def test_hostile_queries(recall, query):
    assert isinstance(recall.search(query), str)


def test_term_stats_of_messages(store, agent, chat):
    held, frequency, documents = messages_store.term_stats(store, chat, ["kittens", "plant"])
    assert held == {chat[0]: {"kittens"}, chat[4]: {"kittens", "plant"}, chat[5]: {"plant"}}
    assert frequency == {"kittens": 2, "plant": 2}
    assert documents == messages_store.count(store, agent.id) == 2 * len(CHAT)  # tool rows are stored messages too
