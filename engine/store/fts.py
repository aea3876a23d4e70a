"""Turning anything a model or user types into a safe FTS5 MATCH expression.

FTS5 has its own query language (quotes, `*`, `NEAR`, `AND`/`OR`/`NOT`, column
filters, parentheses); passing text through raw lets a stray quote raise a syntax
error or a word like NEAR change the meaning. So we never do: the query is split
into words, each word becomes a quoted string with no operators left in it, and
the words are joined with an explicit operator.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

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


def term_holders(db, table: str, ids: list[int], words: list[str], frequency: dict[str, int]
                 ) -> dict[int, frozenset[str]]:
    """For an FTS5 `table` (one of ours, never user input): which of `words` each row of `ids`
    holds. `frequency` (term_frequencies) skips the words no row holds.

    The stemmer inside FTS5 decides what matches, so "exercises" finds "exercise"
    exactly as the keyword search does. `+rowid` keeps the id list away from FTS5,
    which would otherwise run the MATCH once per id (8x slower at 100 ids, 10k rows):
    SQLite walks the word's matches once and checks each against the list.
    """
    held: dict[int, set[str]] = {}
    for word in words:
        expression = _quote(word)
        for start in range(0, len(ids) if frequency.get(word) else 0, ID_BATCH):  # SQLite caps bound parameters
            chunk = ids[start : start + ID_BATCH]
            for (rowid,) in db.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ? "
                                       f"AND +rowid IN ({','.join('?' * len(chunk))})", [expression, *chunk]):
                held.setdefault(rowid, set()).add(word)
    return {rowid: frozenset(found) for rowid, found in held.items()}


def term_frequencies(db, table: str, words: list[str]) -> dict[str, int]:
    """How many rows of the FTS5 `table` hold each of `words`."""
    return {w: db.execute(f"SELECT count(*) FROM {table} WHERE {table} MATCH ?", [_quote(w)]).fetchone()[0]
            for w in words}


def term_rows(db, table: str, word: str) -> np.ndarray:
    """Every row of the FTS5 `table` that holds `word`, as a sorted array of rowids.

    Joined into one string inside SQLite and parsed by numpy: this runs beside a
    query's embedding, and building thousands of Python tuples would hold the GIL
    the embedding needs between its matrix products (which measurably slowed it).
    """
    joined = db.execute(f"SELECT group_concat(rowid) FROM {table} WHERE {table} MATCH ?", [_quote(word)]).fetchone()[0]
    return id_array(joined)


def id_array(joined: str | None) -> np.ndarray:
    """Comma-joined ids (a group_concat or string_agg, None for no rows) as a sorted int64 array."""
    return np.sort(np.fromstring(joined or "", dtype=np.int64, sep=","))


def rows_holding(rows: np.ndarray, ids: np.ndarray) -> list[int]:
    """Which of `ids` are in the sorted array `rows`."""
    if not len(rows):
        return []
    at = np.minimum(np.searchsorted(rows, ids), len(rows) - 1)
    return ids[rows[at] == ids].tolist()


class TermCounts(NamedTuple):
    """What a coverage reward needs to know of the query's words before it has the candidates."""

    frequency: dict[str, int]  # word -> rows holding it
    documents: int  # rows in all
    rows: dict[str, np.ndarray] | None = None  # word -> every row holding it (sorted rowids), for the rarer words


def store_term_counts(store, base: str, counts: str, words: list[str], *, rows_up_to: int = 0) -> TermCounts:
    """How many rows of `base` ("passages" or "messages") hold each of `words` on either backend, and
    the row total from the trigger-kept `counts` table: the part of a coverage reward's IDF that does
    not depend on the candidates, so a search can read it before it has them.

    With `rows_up_to`, the rows themselves are read too for each word held by at most that many, so
    that telling later which candidates hold the word takes no query (a search reads them beside
    the query's embedding, where they cost nothing).
    """
    db = store.db
    if store.dialect == "postgres":
        from engine.store import pg_search

        frequency = pg_search.term_frequencies(db, base, words)
        rows = {w: pg_search.term_rows(db, base, w) for w in words if 0 < frequency[w] <= rows_up_to}
    else:
        frequency = term_frequencies(db, f"{base}_fts", words)
        rows = {w: term_rows(db, f"{base}_fts", w) for w in words if 0 < frequency[w] <= rows_up_to}
    return TermCounts(frequency, int(db.execute(f"SELECT coalesce(sum(n), 0) FROM {counts}").fetchone()[0]), rows)


def store_term_stats(store, base: str, counts: str, ids: list[int], words: list[str],
                     known: TermCounts | None = None) -> tuple[dict[int, frozenset[str]], dict[str, int], int]:
    """(which of `words` each row of `ids` of `base` holds, word -> rows holding it, rows in all) on either
    backend: what a coverage reward needs; `store_term_counts`' part is read here unless `known` gives it.
    Words whose rows `known` holds are looked up there; only the others are asked of the index."""
    frequency, documents, rows = store_term_counts(store, base, counts, words) if known is None else known
    listed = {w: rows[w] for w in words if w in rows} if rows else {}
    asked = [w for w in words if w not in listed]
    if store.dialect == "postgres":
        from engine.store import pg_search

        held = pg_search.term_holders(store.db, base, ids, asked, frequency)
    else:
        held = term_holders(store.db, f"{base}_fts", ids, asked, frequency)
    if listed:
        candidates = np.array(ids, dtype=np.int64)
        for word, holders in listed.items():
            for rowid in rows_holding(holders, candidates):
                held[rowid] = held.get(rowid, frozenset()) | {word}
    return held, frequency, documents
