"""Recall memory: text search that survives anything a model types, date search, paging."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.errors import ToolError
from engine.memory import RecallMemory
from engine.store import messages

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL

HOSTILE = [
    '"',
    '"unbalanced',
    "*",
    "cat*",
    "NEAR",
    "NEAR(cat dog)",
    "cat NEAR dog",
    "(cat",
    "cat)",
    "cat OR",
    "AND",
    "NOT cat",
    "text:cat",
    "^cat",
    "cat + dog",
    "{text}: cat",
    "'; DROP TABLE messages; --",
    "\x00\x01",
    "🐈",
    "",
    "   ",
    "x" * 10_000,
    "cat " * 2_500,
]


@pytest.fixture
def recall(store, agent):
    messages.add(store, agent.id, "system", "system prompt mentions cat")  # never searched
    for i in range(12):
        messages.add(store, agent.id, "user", f'{{"type": "user_message", "message": "m{i}"}}', text=f"my cat number {i}")
    messages.add(store, agent.id, "assistant", "thinking about dogs", text="thinking about dogs")
    messages.add(store, agent.id, "user", "x", text="Café crème with the dog")
    return RecallMemory(store, agent.id)


@pytest.mark.parametrize("query", HOSTILE)
def test_any_query_works(recall, query):
    result = recall.search(query)
    assert result == "No results found." or result.startswith("Showing ")


def test_operators_are_plain_words(recall):
    # "NOT cat" must not exclude cats: every word is just a word.
    assert recall.search("NOT cat").startswith("Showing 5 of 12 results")
    assert "of 12 results" in recall.search("cat*")
    assert "of 12 results" in recall.search('"cat"')


def test_paging_totals(recall):
    first = recall.search("cat")
    assert first.startswith("Showing 5 of 12 results (page 0/2):")
    last = recall.search("cat", page=2)
    assert last.startswith("Showing 2 of 12 results (page 2/2):")
    seen = set()
    for page in range(3):
        for line in recall.search("cat", page=page).splitlines()[1:]:
            seen.add(line.split("] ", 1)[1])
    assert len(seen) == 12
    with pytest.raises(ToolError, match="only 3 pages"):
        recall.search("cat", page=3)
    with pytest.raises(ToolError, match="whole number"):
        recall.search("cat", page=-1)


def test_case_diacritics_and_stems(recall):
    assert "Café crème" in recall.search("CAFE")
    assert "of 2 results" in recall.search("dogs")  # "dogs" and, by its stem, "dog"
    assert "No results found." == recall.search("zebra")


def test_all_words_first_then_any(recall):
    assert recall.search("cat number 3").startswith("Showing 1 of 1 results")  # only "my cat number 3" holds all three
    fallback = recall.search("cat zebra")
    assert fallback.startswith("Showing 5 of 12 results")


def test_empty_query_lists_everything_in_order(recall):
    text = recall.search("")
    assert text.startswith("Showing 5 of 14 results (page 0/2):")
    assert "my cat number 0" in text.splitlines()[1]


def test_search_shows_plain_text_not_packaging(recall):
    assert "user_message" not in recall.search("cat")


def test_date_search(store, agent):
    recall = RecallMemory(store, agent.id)
    messages.add(store, agent.id, "user", "old", created_at="2024-03-09T23:59:59.000+00:00")
    messages.add(store, agent.id, "user", "older", created_at="2024-03-08T10:00:00.000+00:00")
    messages.add(store, agent.id, "user", "newer", created_at="2024-03-10T00:00:00.000+00:00")
    assert recall.search_date("2024-03-09", "2024-03-09").startswith("Showing 1 of 1 results")
    assert recall.search_date("2024-03-08", "2024-03-10").startswith("Showing 3 of 3 results")
    assert recall.search_date("2020-01-01", "2020-12-31") == "No results found."
    today = dt.datetime.now(dt.UTC).date().isoformat()
    messages.add(store, agent.id, "user", "today")
    assert "today" in recall.search_date(today, today)


@pytest.mark.parametrize(
    "start,end",
    [("yesterday", "2024-01-01"), ("2024-1-1", "2024-01-02"), ("2024-02-30", "2024-03-01"),
     ("2024-01-01T00:00", "2024-01-02"), ("", ""), ("01/02/2024", "2024-01-03")],
)
def test_bad_dates_explain_the_format(store, agent, start, end):
    with pytest.raises(ToolError, match="YYYY-MM-DD"):
        RecallMemory(store, agent.id).search_date(start, end)


def test_reversed_range(store, agent):
    with pytest.raises(ToolError, match="before"):
        RecallMemory(store, agent.id).search_date("2024-03-10", "2024-03-09")


def test_in_context_flag_does_not_hide_from_search(store, agent):
    m = messages.add(store, agent.id, "user", "remember the lighthouse")
    messages.set_in_context(store, [m.id], False)
    assert "lighthouse" in RecallMemory(store, agent.id).search("lighthouse")
    assert messages.list_messages(store, agent.id, in_context=True) == []
