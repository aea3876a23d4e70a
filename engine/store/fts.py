"""Turning anything a model or user types into a safe FTS5 MATCH expression.

FTS5 has its own query language (quotes, `*`, `NEAR`, `AND`/`OR`/`NOT`, column
filters, parentheses); passing text through raw lets a stray quote raise a syntax
error or a word like NEAR change the meaning. So we never do: the query is split
into words, each word becomes a quoted string with no operators left in it, and
the words are joined with an explicit operator.
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 32  # a 10,000-character query must not become a 2,000-term MATCH
MAX_TERM_CHARS = 64
ID_BATCH = 900


def terms(query: str | None) -> list[str]:
    """The distinct words of `query`, lower-cased, in order, at most MAX_TERMS."""
    seen: dict[str, None] = {}
    for word in WORD.findall(query or ""):
        word = word.lower()[:MAX_TERM_CHARS]
        if word not in seen:
            seen[word] = None
            if len(seen) == MAX_TERMS:
                break
    return list(seen)


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def match_all(words: list[str]) -> str:
    """A MATCH expression requiring every word."""
    return " AND ".join(_quote(w) for w in words)


def match_any(words: list[str]) -> str:
    """A MATCH expression requiring at least one word."""
    return " OR ".join(_quote(w) for w in words)


def term_stats(db, table: str, ids: list[int], words: list[str]) -> tuple[dict[int, frozenset[str]], dict[str, int]]:
    """For an FTS5 `table` (one of ours, never user input): which of `words` each row of `ids`
    holds, and how many indexed rows hold each word (the statistic FTS5's BM25 uses).

    The stemmer inside FTS5 decides what matches, so "exercises" finds "exercise"
    exactly as the keyword search does. `+rowid` keeps the id list away from FTS5,
    which would otherwise run the MATCH once per id (8x slower at 100 ids, 10k rows):
    SQLite walks the word's matches once and checks each against the list.
    """
    held: dict[int, set[str]] = {}
    frequency: dict[str, int] = {}
    for word in words:
        expression = _quote(word)
        frequency[word] = db.execute(f"SELECT count(*) FROM {table} WHERE {table} MATCH ?", [expression]).fetchone()[0]
        for start in range(0, len(ids) if frequency[word] else 0, ID_BATCH):  # SQLite caps bound parameters
            chunk = ids[start : start + ID_BATCH]
            for (rowid,) in db.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ? "
                                       f"AND +rowid IN ({','.join('?' * len(chunk))})", [expression, *chunk]):
                held.setdefault(rowid, set()).add(word)
    return {rowid: frozenset(found) for rowid, found in held.items()}, frequency


def store_term_stats(store, base: str, counts: str, ids: list[int], words: list[str]
                     ) -> tuple[dict[int, frozenset[str]], dict[str, int], int]:
    """`term_stats` of the rows `ids` of `base` ("passages" or "messages") on either backend, with the
    row total from the trigger-kept `counts` table: what a coverage reward's IDF needs."""
    db = store.db
    if store.dialect == "postgres":
        from engine.store import pg_search

        held, frequency = pg_search.term_stats(db, base, ids, words)
    else:
        held, frequency = term_stats(db, f"{base}_fts", ids, words)
    documents = db.execute(f"SELECT coalesce(sum(n), 0) FROM {counts}").fetchone()[0]
    return held, frequency, int(documents)
