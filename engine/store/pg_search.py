"""The PostgreSQL halves of search: pgvector tables and `tsvector` full-text queries.

Vectors. One table per dimension, `passages_vec_<dim>` (id, owner, embedding
vector(dim)), rows deleted with their passage by the foreign key. Up to
EXACT_LIMIT visible vectors the search is exact (the owner index, then every
distance); above it an HNSW index (cosine) answers, with pgvector's iterative
scan so the owner filter cannot starve the result, and `ef_search` sized like
SQLite's candidate pool. pgvector indexes at most 2,000 dimensions; a larger
model's table has no index and every search is exact.

Full text. `tsv` columns are generated from `text` in the `memgpt` text-search
configuration (English stemming, no stop words; see pg_migrations.py). The
words of a query come from engine/store/fts.py and go in as bound parameters
through `plainto_tsquery`, so no query text is ever parsed as tsquery syntax;
"any word" is the same query with its ANDs turned into ORs.
"""

from __future__ import annotations

import numpy as np

from engine.store.fts import id_array

HNSW_MAX_DIM = 2000
MAX_EF_SEARCH = 1000  # pgvector's ceiling

_ALL = "plainto_tsquery('memgpt', ?)"
_ANY = "CAST(replace(CAST(plainto_tsquery('memgpt', ?) AS text), ' & ', ' | ') AS tsquery)"


def has_table(db, name: str) -> bool:
    row = db.execute("SELECT to_regclass(?) IS NOT NULL", [name]).fetchone()
    return bool(row and row[0])


def create_vec_table(store, table: str, dim: int) -> None:
    with store.atomic() as db:  # the store's write lock: two processes never both create it
        if has_table(db, table):
            return
        db.execute(
            f"CREATE TABLE {table} (id BIGINT PRIMARY KEY REFERENCES passages(id) ON DELETE CASCADE, "
            f"owner TEXT NOT NULL, embedding vector({int(dim)}) NOT NULL)"
        )
        db.execute(f"CREATE INDEX {table}_owner ON {table} (owner)")
        if dim <= HNSW_MAX_DIM:
            db.execute(f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)")


def put_vectors(db, table: str, owner: str, rows: list[tuple[int, bytes]]) -> None:
    from engine.store.pg import Vector

    db.executemany(
        f"INSERT INTO {table} (id, owner, embedding) VALUES (?, ?, ?)",
        [(pid, owner, Vector(np.frombuffer(blob, dtype=np.float32))) for pid, blob in rows],
    )


def vector_search(store, table: str, owners: list[str], query: bytes, k: int, candidates: int, *, exact: bool):
    """(id, cosine distance) of the k nearest, nearest first; `candidates` sizes HNSW's search list."""
    from engine.store.pg import Vector

    vector = Vector(np.frombuffer(query, dtype=np.float32))
    if exact:
        # OFFSET 0 keeps the subquery whole, so the planner sorts the owners' rows
        # by exact distance instead of walking the approximate index.
        rows = store.db.execute(
            f"SELECT id, d FROM (SELECT id, embedding <=> ? AS d FROM {table} WHERE owner = ANY(?) OFFSET 0) s "
            "ORDER BY d, id LIMIT ?",
            [vector, owners, k],
        ).fetchall()
        return [(r[0], float(r[1])) for r in rows]
    ef = min(max(candidates, 40), MAX_EF_SEARCH)
    with store.read_transaction() as db:  # SET LOCAL lasts until this transaction ends
        db.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
        db.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows = db.execute(
            f"SELECT id, embedding <=> ? AS d FROM {table} WHERE owner = ANY(?) ORDER BY embedding <=> ? LIMIT ?",
            [vector, owners, vector, k],
        ).fetchall()
    found = [(r[0], float(r[1])) for r in rows]
    found.sort(key=lambda item: (item[1], item[0]))  # relaxed order: re-sort what came back
    return found


def keyword_passages(store, agent_id: int, words: list[str], limit: int, visible: str, *, any_word: bool = False,
                     where: str = "", params: dict | None = None) -> list[tuple[int, float]]:
    """(id, ts_rank_cd) of visible passages holding every word, best first; any word when none holds all
    (or `any_word`).

    `where` is an extra condition on `p` with its named `params` (a time range).
    """
    text = " ".join(words)
    for tsquery in (_ANY,) if any_word else (_ALL, _ANY):
        rows = store.db.execute(
            f"SELECT p.id, ts_rank_cd(p.tsv, q) AS r FROM passages p, {tsquery.replace('?', ':q')} q "
            f"WHERE p.tsv @@ q AND {visible}{where} ORDER BY r DESC, p.id LIMIT :limit",
            {"q": text, "agent": agent_id, "limit": limit, **(params or {})},
        ).fetchall()
        if rows or len(words) == 1:
            return [(r[0], float(r[1])) for r in rows]
    return []


def keyword_count(store, agent_id: int, words: list[str], visible: str, *, where: str = "",
                  params: dict | None = None) -> int:
    """How many visible passages hold any of the words (and meet `where`)."""
    return store.db.execute(
        f"SELECT count(*) FROM passages p, {_ANY.replace('?', ':q')} q WHERE p.tsv @@ q AND {visible}{where}",
        {"q": " ".join(words), "agent": agent_id, **(params or {})},
    ).fetchone()[0]


def search_messages(store, agent_id: int, words: list[str], offset: int, limit: int, columns: str):
    """(rows, total) of the agent's non-system messages matching the words, best first."""
    text = " ".join(words)
    db = store.db
    for tsquery in (_ALL, _ANY):
        base = f"FROM messages m, {tsquery} q WHERE m.tsv @@ q AND m.agent_id = ? AND m.role != 'system'"
        total = db.execute(f"SELECT count(*) {base}", [text, agent_id]).fetchone()[0]
        if total or len(words) == 1:
            break
    rows = db.execute(
        f"SELECT {columns} {base} ORDER BY ts_rank_cd(m.tsv, q) DESC, m.id LIMIT ? OFFSET ?",
        [text, agent_id, limit, offset],
    ).fetchall()
    return rows, total


def keyword_messages(store, agent_id: int, words: list[str], limit: int, where: str,
                     params: list) -> list[tuple[int, float]]:
    """(id, ts_rank_cd) of the agent's messages holding any of the words and meeting `where`, best first."""
    rows = store.db.execute(
        f"SELECT m.id, ts_rank_cd(m.tsv, q) AS r FROM messages m, {_ANY} q "
        f"WHERE m.tsv @@ q AND m.agent_id = ? AND {where} ORDER BY r DESC, m.id LIMIT ?",
        [" ".join(words), agent_id, *params, limit],
    ).fetchall()
    return [(r[0], float(r[1])) for r in rows]


def term_frequencies(db, table: str, words: list[str]) -> dict[str, int]:
    """fts.term_frequencies for PostgreSQL: rows of `table` whose `tsv` holds each word."""
    return {w: db.execute(f"SELECT count(*) FROM {table} WHERE tsv @@ {_ALL}", [w]).fetchone()[0] for w in words}


def term_rows(db, table: str, word: str) -> np.ndarray:
    """fts.term_rows for PostgreSQL: every row of `table` whose `tsv` holds `word`, as a sorted array of ids."""
    return id_array(db.execute(f"SELECT string_agg(id::text, ',') FROM {table} WHERE tsv @@ {_ALL}", [word]).fetchone()[0])


def term_holders(db, table: str, ids: list[int], words: list[str], frequency: dict[str, int]
                 ) -> dict[int, frozenset[str]]:
    """fts.term_holders for PostgreSQL: `table` (passages or messages) through its `tsv` column."""
    held: dict[int, set[str]] = {}
    for word in words:
        if frequency.get(word) and ids:
            for (rowid,) in db.execute(f"SELECT id FROM {table} WHERE id = ANY(?) AND tsv @@ {_ALL}", [list(ids), word]):
                held.setdefault(rowid, set()).add(word)
    return {rowid: frozenset(found) for rowid, found in held.items()}
