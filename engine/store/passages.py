"""Archival memory on disk: passages, their FTS5 index and their vectors.

Vectors live twice, on purpose. `passages.embedding` holds the float32 blob (for
export, re-embedding and exact rescoring); a `vec0` table per dimension,
`passages_vec_<dim>`, holds the same vector for sqlite-vec KNN plus its 1-bit
quantization. The vec0 table is partitioned by owner (`a<agent id>` or
`s<source id>`), so an agent's search scans only its own passages and those of
the sources attached to it, never anyone else's.

Search strategy, measured in benchmarks/archival_search.py: up to EXACT_LIMIT
vectors, KNN is exact over the floats; above it, the Hamming distances of 1-bit
vectors pick at least BIT_CANDIDATES candidates and they are rescored exactly
from the float blobs. The bit vectors of each owner are held in memory
(bitindex.py), where a numpy scan is ~8x faster than sqlite-vec's bit KNN over
its vec0 chunks; the vec0 `bits` column is the fallback while an owner's
passages change under the scan.

On PostgreSQL (engine/store/pg_search.py) the per-dimension table is a pgvector
table with an HNSW index, and full-text search uses `tsvector`; this module
hands those parts over when `store.dialect` says so.

With `archival_storage: lancedb` the store has `vectors` (engine/store/lance.py):
the vector calls here (ensure_vec_table, put_vectors, drop_vectors,
vector_search) go to LanceDB instead of a table in the database, and
everything else (rows, blobs, full text, counts) stays where it was. LanceDB is
outside the store's transactions, so what it returns is checked against the
passages (`_lance_search`), deletions drop vectors after the rows
(`_forget`), and `sync_vectors` repairs what a crash left behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from typing import Any

import numpy as np

from engine.errors import EmbeddingMismatch, NotFound
from engine.store import fts, pg_search, scan
from engine.store.db import Store, now

EXACT_LIMIT = 2_000
OVERSAMPLE = 4
MIN_CANDIDATES = 200  # fewer bit-vector candidates lost ~40% of the true top 5 at 100k (docs/benchmarks.md)
# Candidates from the in-memory bit arrays (bitindex.py): their scan is cheap, so the pool can be larger.
BIT_CANDIDATES = 600
MAX_K = 4096  # sqlite-vec's own ceiling on k
LANCE_SLACK = 8  # extra LanceDB neighbours per search, standing in for vectors of deleted passages
SYNC_BATCH = 1000
# Rows per INSERT on SQLite: 5 parameters each, under the 32,766 SQLite allows since 3.32.
INSERT_ROWS = 1000

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Passage:
    id: int
    agent_id: int | None
    source_id: int | None
    source_name: str | None
    text: str
    metadata: dict[str, Any]
    embedding_model: str
    embedding_dim: int
    created_at: str


@dataclasses.dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # fused score (hybrid) or cosine similarity (vector)
    vector_rank: int | None = None
    keyword_rank: int | None = None
    distance: float | None = None


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vec_table(dim: int) -> str:
    return f"passages_vec_{int(dim)}"


def _has_vec_table(store: Store, dim: int) -> bool:
    if dim in store.vector_tables:
        return True
    if store.dialect == "postgres":
        found = pg_search.has_table(store.db, vec_table(dim))
    else:
        found = store.db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [vec_table(dim)]).fetchone() is not None
    if found:  # only a positive answer is kept: another process may create the table later
        store.vector_tables.add(dim)
    return found


def ensure_vec_table(store: Store, dim: int) -> None:
    """Create the vector table for `dim` (and what keeps it in step with `passages`) once."""
    if store.vectors is not None:
        store.vectors.ensure(dim)
        return
    if _has_vec_table(store, dim):
        return
    if store.dialect == "postgres":
        pg_search.create_vec_table(store, vec_table(dim), dim)
        return
    db = store.db
    table = vec_table(dim)
    bits = f", bits bit[{dim}]" if dim % 8 == 0 else ""
    with store.atomic():
        if _has_vec_table(store, dim):
            return
        db.execute(
            f"CREATE VIRTUAL TABLE {table} USING vec0("
            f"owner text partition key, embedding float[{dim}] distance_metric=cosine{bits})"
        )
        db.execute(
            f"CREATE TRIGGER {table}_ad AFTER DELETE ON passages WHEN old.embedding_dim = {int(dim)} "
            f"BEGIN DELETE FROM {table} WHERE rowid = old.id; END"
        )


def _pack(vector, dim: int) -> bytes:
    array = np.asarray(vector, dtype=np.float32)
    if array.shape != (dim,):
        raise EmbeddingMismatch(f"Expected a {dim}-d vector, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise EmbeddingMismatch("The embedding contains NaN or infinite values.")
    return array.tobytes()


def _pack_all(vectors: list, dim: int) -> list[bytes]:
    """`_pack` of every vector, checked as one matrix (a per-vector check was an eighth of an insert's time)."""
    try:
        matrix = np.asarray(vectors, dtype=np.float32)
    except (ValueError, TypeError):  # ragged or not numbers: let the per-vector check name the problem
        matrix = None
    if matrix is None or matrix.shape != (len(vectors), dim) or not np.all(np.isfinite(matrix)):
        return [_pack(vector, dim) for vector in vectors]
    raw, width = matrix.tobytes(), dim * 4
    return [raw[i : i + width] for i in range(0, len(raw), width)]


def _metadata(meta: dict[str, Any] | None) -> str:
    return json.dumps(meta) if meta else "{}"


def owner_key(*, agent_id: int | None = None, source_id: int | None = None) -> str:
    return f"a{agent_id}" if agent_id is not None else f"s{source_id}"


def insert_many(
    store: Store,
    items: list[tuple],
    *,
    embedding_model: str,
    embedding_dim: int,
    agent_id: int | None = None,
    source_id: int | None = None,
) -> list[int]:
    """Store (text, vector, metadata[, created_at]) items for one owner in one transaction; return the new ids.

    `created_at` (ISO 8601 UTC, as `db.now()` writes it) is when the text was said or
    written, for time-filtered searches; it defaults to now.

    A data source holds each text once (a UNIQUE index on source and content
    hash): an item whose text the source already has is skipped, so its id is
    not in the result. An agent's own archival memory may repeat a text.
    """
    if (agent_id is None) == (source_id is None):
        raise ValueError("a passage belongs to exactly one agent or one source")
    _check_owner_embedding(store, embedding_model, embedding_dim, agent_id=agent_id, source_id=source_id)
    if not items:
        return []
    ensure_vec_table(store, embedding_dim)
    owner = owner_key(agent_id=agent_id, source_id=source_id)
    stamp = now()
    blobs = _pack_all([item[1] for item in items], embedding_dim)
    rows = [
        (item[0], _metadata(item[2]), content_hash(item[0]), blob, (item[3] if len(item) > 3 else None) or stamp)
        for item, blob in zip(items, blobs)
    ]
    owned = (agent_id, source_id, embedding_model, embedding_dim)
    stored: list[tuple[int, bytes]] = []
    with store.atomic() as db:
        insert = _insert_rows if store.dialect == "sqlite" else _insert_rows_one_by_one
        for start in range(0, len(rows), INSERT_ROWS):
            stored += insert(db, owned, rows[start : start + INSERT_ROWS])
        put_vectors(store, db, embedding_dim, owner, stored)
    return [pid for pid, _ in stored]


_INSERT = (
    "INSERT INTO passages (agent_id, source_id, embedding_model, embedding_dim, text, metadata, content_hash, "
    "embedding, created_at) VALUES "
)


def _insert_rows(db, owned: tuple, rows: list[tuple]) -> list[tuple[int, bytes]]:
    """Insert (text, metadata, hash, blob, created_at) rows in ONE statement; return (id, blob) of those stored.

    One statement, not one per row, because FTS5 writes its pending index data
    out as a new segment at the start of every statement that could fail halfway
    (every insert that fires triggers): row by row, that was a segment per
    passage and constant merging, half the cost of an insert. A statement per
    INSERT_ROWS rows makes one segment of each. The owner's four values are bound
    once (?1-?4), each row's five after them.
    """
    values = ", ".join(
        f"(?1, ?2, ?3, ?4, ?{i}, ?{i + 1}, ?{i + 2}, ?{i + 3}, ?{i + 4})" for i in range(5, 5 + 5 * len(rows), 5)
    )
    params = list(owned)
    for row in rows:
        params += row
    # DO NOTHING only for uniqueness conflicts: a CHECK or NOT NULL failure still raises.
    returned = db.execute(_INSERT + values + " ON CONFLICT DO NOTHING RETURNING id, content_hash", params).fetchall()
    returned.sort()  # RETURNING's order is unspecified; new ids grow in the order of the VALUES
    if len(returned) == len(rows):
        return [(pid, row[3]) for (pid, _), row in zip(returned, rows)]
    # Some texts the source already held (or held twice in this batch): the first of each hash went in.
    blob_of: dict[str, bytes] = {}
    for row in rows:
        blob_of.setdefault(row[2], row[3])
    return [(pid, blob_of[digest]) for pid, digest in returned]


def _insert_rows_one_by_one(db, owned: tuple, rows: list[tuple]) -> list[tuple[int, bytes]]:
    """`_insert_rows` for PostgreSQL, a statement per row (its full-text index has no per-statement cost)."""
    stored = []
    for row in rows:
        cursor = db.execute(_INSERT + "(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (*owned, *row))
        if cursor.rowcount == 1 and cursor.lastrowid is not None:
            stored.append((cursor.lastrowid, row[3]))
    return stored


def put_vectors(store: Store, db, dim: int, owner: str, rows: list[tuple[int, bytes]]) -> None:
    """Add (passage id, float32 blob) rows to the vector table of `dim` (inside the caller's transaction)."""
    if not rows:
        return
    if store.vectors is not None:
        # Written before the caller commits: if the LanceDB write fails, the passages roll back with it.
        store.vectors.put(dim, owner, rows)
        return
    table = vec_table(dim)
    if store.dialect == "postgres":
        pg_search.put_vectors(db, table, owner, rows)
    elif dim % 8 == 0:
        db.conn.executemany(
            f"INSERT INTO {table} (rowid, owner, embedding, bits) VALUES (?, ?, ?, vec_quantize_binary(?))",
            [(pid, owner, blob, blob) for pid, blob in rows],
        )
    else:
        db.conn.executemany(
            f"INSERT INTO {table} (rowid, owner, embedding) VALUES (?, ?, ?)",
            [(pid, owner, blob) for pid, blob in rows],
        )


def drop_vector(store: Store, db, dim: int, passage_id: int) -> None:
    """Remove a passage's vector from the table of `dim` (re-embedding moves it to another)."""
    drop_vectors(store, db, dim, [passage_id])


def drop_vectors(store: Store, db, dim: int, passage_ids: list[int]) -> None:
    """Remove these passages' vectors from the table of `dim`, in one LanceDB write when there."""
    if store.vectors is not None:
        store.vectors.drop(dim, passage_ids)
        return
    key = "id" if store.dialect == "postgres" else "rowid"
    if _has_vec_table(store, dim):
        for pid in passage_ids:
            db.execute(f"DELETE FROM {vec_table(dim)} WHERE {key} = ?", [pid])


def _forget(store: Store, drop) -> None:
    """Run a LanceDB drop that follows a deletion in the main store.

    The rows are already gone (and may be committed), so a failure here must not
    undo or fail the deletion: the leftover vectors are never shown (see
    `_lance_search`) and the next `sync_vectors` removes them.
    """
    try:
        drop(store.vectors)
    except Exception as e:  # noqa: BLE001 - see the docstring
        log.warning("Archival vectors of deleted passages stay in LanceDB until the next start: %s", e)


def forget_owner(store: Store, owner: str) -> None:
    """Drop an agent's or a source's vectors from LanceDB once its rows are deleted (the database cascades its own)."""
    if store.vectors is not None:
        _forget(store, lambda vectors: vectors.drop_owner(owner))


def sync_vectors(store: Store) -> None:
    """Bring `store.vectors` in step with the passages; run when the store opens.

    Puts back the vector of every passage LanceDB lacks (from `passages.embedding`:
    a first start with LanceDB, or a crash between a commit and its write) and
    drops vectors of passages that are gone. Vectors above the highest passage id
    may belong to an insert another process has not committed yet, so they stay
    (hidden by `_lance_search`, replaced if the id is used again); on PostgreSQL
    such an insert can also hold a lower id, and then the next start puts its
    vector back. Cheap when in step: two counts per dimension.
    """
    vectors = store.vectors
    if vectors is None:
        return
    db = store.db
    counts = {r[0]: r[1] for r in db.execute("SELECT embedding_dim, count(*) FROM passages GROUP BY embedding_dim")}
    top = db.execute("SELECT max(id) FROM passages").fetchone()[0] or 0
    for dim in sorted(set(counts) | set(vectors.dimensions())):
        if vectors.count(dim) == counts.get(dim, 0):
            continue
        have = vectors.ids(dim)
        stored = {r[0] for r in db.execute("SELECT id FROM passages WHERE embedding_dim = ?", [dim])}
        gone = sorted(pid for pid in have - stored if pid <= top)
        missing = sorted(stored - have)
        if gone:
            vectors.drop(dim, gone)
        for start in range(0, len(missing), SYNC_BATCH):
            chunk = missing[start : start + SYNC_BATCH]
            rows = db.execute(
                f"SELECT id, agent_id, source_id, embedding FROM passages WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            groups: dict[str, list[tuple[int, bytes]]] = {}
            for pid, agent_id, source_id, blob in rows:
                groups.setdefault(owner_key(agent_id=agent_id, source_id=source_id), []).append((pid, bytes(blob)))
            for owner, items in groups.items():
                vectors.put(dim, owner, items)
        if gone or missing:
            log.info("LanceDB %d-d vectors: %d put back, %d of deleted passages dropped", dim, len(missing), len(gone))


def _check_owner_embedding(store, model, dim, *, agent_id=None, source_id=None) -> None:
    table, key = ("agents", agent_id) if agent_id is not None else ("sources", source_id)
    row = store.db.execute(
        f"SELECT embedding_model, embedding_dim FROM {table} WHERE id = ?", [key]
    ).fetchone()
    if row is None:
        raise NotFound(f"No {'agent' if agent_id is not None else 'data source'} with id {key}.")
    if tuple(row) != (model, dim):
        raise EmbeddingMismatch(
            f"These vectors come from {model} ({dim}-d) but the "
            f"{'agent' if agent_id is not None else 'source'} uses {row[0]} ({row[1]}-d); "
            "dimensions are never mixed. Re-embed with the matching model."
        )


def owners_for_agent(store: Store, agent_id: int) -> list[str]:
    rows = store.db.execute("SELECT source_id FROM agent_sources WHERE agent_id = ?", [agent_id]).fetchall()
    return [owner_key(agent_id=agent_id)] + [owner_key(source_id=r[0]) for r in rows]


_VISIBLE = "(p.agent_id = :agent OR p.source_id IN (SELECT source_id FROM agent_sources WHERE agent_id = :agent))"


def _owner_count(db, owner: str) -> int:
    row = db.execute("SELECT n FROM passage_counts WHERE owner = ?", [owner]).fetchone()
    return row[0] if row else 0


def count_for_agent(store: Store, agent_id: int) -> int:
    """Passages the agent can search: its own plus those of attached sources (trigger-kept counts)."""
    return sum(_owner_count(store.db, owner) for owner in owners_for_agent(store, agent_id))


def count_for_source(store: Store, source_id: int) -> int:
    return _owner_count(store.db, owner_key(source_id=source_id))


def source_hashes(store: Store, source_id: int) -> set[str]:
    rows = store.db.execute("SELECT content_hash FROM passages WHERE source_id = ?", [source_id]).fetchall()
    return {r[0] for r in rows}


_PASSAGE_SELECT = (
    "SELECT p.id, p.agent_id, p.source_id, s.name, p.text, p.metadata, p.embedding_model, "
    "p.embedding_dim, p.created_at FROM passages p LEFT JOIN sources s ON s.id = p.source_id"
)


def _passage(row: tuple) -> Passage:
    pid, agent_id, source_id, source_name, text, meta, model, dim, created = row
    # Most passages carry no metadata; a hybrid search reads ~300 rows, so skip the parser for those.
    return Passage(pid, agent_id, source_id, source_name, text, {} if meta == "{}" else json.loads(meta), model, dim,
                   created)


def fetch(store: Store, ids: list[int]) -> dict[int, Passage]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = store.db.execute(f"{_PASSAGE_SELECT} WHERE p.id IN ({marks})", list(ids)).fetchall()
    return {r[0]: _passage(r) for r in rows}


def created_times(store: Store, ids: list[int]) -> dict[int, str]:
    """passage id -> created_at, for the ids that exist (lighter than `fetch` when only the time matters)."""
    found: dict[int, str] = {}
    for start in range(0, len(ids), SYNC_BATCH):  # batches: SQLite caps the number of parameters
        chunk = ids[start : start + SYNC_BATCH]
        found.update(store.db.execute(
            f"SELECT id, created_at FROM passages WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall())
    return found


def get(store: Store, passage_id: int) -> Passage:
    found = fetch(store, [passage_id]).get(passage_id)
    if found is None:
        raise NotFound(f"No archival passage #{passage_id}.")
    return found


def get_visible(store: Store, agent_id: int, passage_id: int) -> Passage:
    """A passage the agent can search (its own or an attached source's); NotFound otherwise."""
    row = store.db.execute(f"{_PASSAGE_SELECT} WHERE p.id = :id AND {_VISIBLE}",
                           {"id": passage_id, "agent": agent_id}).fetchone()
    if row is None:
        raise NotFound(f"No archival passage #{passage_id} for this agent.")
    return _passage(row)


def list_for_agent(store: Store, agent_id: int, offset: int, limit: int, *, since: str | None = None,
                   until: str | None = None) -> list[Passage]:
    """The agent's visible passages in insertion order (created in [since, until) when given)."""
    where, params = _time_clause(since, until)
    rows = store.db.execute(
        f"{_PASSAGE_SELECT} WHERE {_VISIBLE}{where} ORDER BY p.id LIMIT :limit OFFSET :offset",
        {"agent": agent_id, "limit": limit, "offset": offset, **params},
    ).fetchall()
    return [_passage(r) for r in rows]


def delete(store: Store, passage_id: int, *, agent_id: int | None = None, sources: bool = False) -> None:
    """Delete a passage: with `agent_id`, only the agent's own, or with `sources` also one of an attached source."""
    where, params = "id = ?", [passage_id]
    if agent_id is not None and sources:
        where += " AND (agent_id = ? OR source_id IN (SELECT source_id FROM agent_sources WHERE agent_id = ?))"
        params += [agent_id, agent_id]
    elif agent_id is not None:
        where += " AND agent_id = ?"
        params.append(agent_id)
    dim = None
    if store.vectors is not None:  # the database's own vector tables follow by trigger or foreign key; LanceDB not
        row = store.db.execute(f"SELECT embedding_dim FROM passages WHERE {where}", params).fetchone()
        dim = row[0] if row else None
    if store.db.execute(f"DELETE FROM passages WHERE {where}", params).rowcount == 0:
        raise NotFound(f"No archival passage #{passage_id} to delete.")
    if dim is not None:
        _forget(store, lambda vectors: vectors.drop(dim, [passage_id]))


def _count_in_owners(db, owners: list[str]) -> int:
    """Passages across owners, from the trigger-kept counts (an owner's passages share one dimension)."""
    return sum(_owner_count(db, owner) for owner in owners)


def vector_search(
    store: Store, dim: int, owners: list[str], query_vector, k: int, oversample: int = OVERSAMPLE
) -> list[tuple[int, float]]:
    """The k nearest passages to `query_vector` among `owners`, as (id, cosine distance).

    `oversample` is how many bit-vector candidates per wanted result go to exact
    rescoring when the search is approximate (more: better recall, slower).
    """
    db = store.db
    if store.vectors is not None:  # the same ceiling on k, so both kinds of storage page alike
        return _lance_search(store, dim, owners, _pack(query_vector, dim), min(k, MAX_K)) if k > 0 else []
    if k <= 0 or not _has_vec_table(store, dim):
        return []
    k = min(k, MAX_K)
    query = _pack(query_vector, dim)
    table = vec_table(dim)
    if store.dialect == "postgres":
        exact = _count_in_owners(db, owners) <= EXACT_LIMIT
        candidates = min(max(k * oversample, MIN_CANDIDATES), MAX_K)
        return pg_search.vector_search(store, table, owners, query, k, candidates, exact=exact)
    total = _count_in_owners(db, owners)
    approximate = dim % 8 == 0 and total > EXACT_LIMIT
    # 2% of the passages, at least MIN_CANDIDATES, at most BIT_CANDIDATES or 0.5%: rescoring is the costly
    # part, and at 10k a 200-candidate pool already kept the whole exact top 10, at 100k 600 did; at 1M,
    # 600 (0.06%) kept only 0.845 of it, since the true neighbours hide among more Hamming ties
    # (docs/benchmarks.md). Up to 120k passages the ceiling is BIT_CANDIDATES.
    pool = max(k * oversample, min(max(BIT_CANDIDATES, total // 200), max(MIN_CANDIDATES, total // 50)))
    query_bits = db.execute("SELECT vec_quantize_binary(?)", [query]).fetchone()[0] if approximate else b""
    found: list[tuple[int, float]] = []
    for owner in owners:
        if approximate:
            ids = store.bit_index.candidates(db, owner, dim, query_bits, pool)
            if ids is None:  # its passages kept changing while being read: sqlite-vec's own bit search
                rows = db.execute(
                    f"SELECT rowid FROM {table} WHERE bits MATCH vec_quantize_binary(?) AND k = ? AND owner = ?",
                    [query, min(max(k * oversample, MIN_CANDIDATES), MAX_K), owner],
                ).fetchall()
                ids = [r[0] for r in rows]
            found.extend(_rescore(db, ids, np.frombuffer(query, dtype=np.float32), owner, dim))
        else:
            rows = db.execute(
                f"SELECT rowid, distance FROM {table} WHERE embedding MATCH ? AND k = ? AND owner = ?",
                [query, k, owner],
            ).fetchall()
            found.extend((r[0], float(r[1])) for r in rows)
    found.sort(key=lambda item: (item[1], item[0]))
    return found[:k]


def _lance_search(store: Store, dim: int, owners: list[str], query: bytes, k: int) -> list[tuple[int, float]]:
    """LanceDB's k nearest (an exact search), keeping only passages the store holds for these owners.

    A vector LanceDB still has after its passage went (a drop that failed, an
    insert rolled back after its vector was written) is skipped, and is never
    attributed to another owner's passage that reused the id: each hit must be
    a passage of one of `owners` embedded at `dim`. LanceDB is asked for a few
    more than k to make up for skipped ones, and again for more if that fell short.
    """
    assert store.vectors is not None
    wanted, allowed = k + max(LANCE_SLACK, k // 4), set(owners)
    while True:
        found = store.vectors.search(dim, owners, query, wanted)
        live = _live_ids(store, dim, [pid for pid, _ in found], allowed)
        kept = [(pid, d) for pid, d in found if pid in live]
        if len(kept) >= k or len(found) < wanted:  # enough, or LanceDB has nothing more among these owners
            return kept[:k]
        wanted *= 4


def _live_ids(store: Store, dim: int, ids: list[int], owners: set[str]) -> set[int]:
    live: set[int] = set()
    for start in range(0, len(ids), SYNC_BATCH):  # batches: SQLite caps the number of parameters
        chunk = ids[start : start + SYNC_BATCH]
        rows = store.db.execute(
            f"SELECT id, agent_id, source_id FROM passages WHERE embedding_dim = ? AND id IN ({','.join('?' * len(chunk))})",
            [dim, *chunk],
        ).fetchall()
        live.update(r[0] for r in rows if owner_key(agent_id=r[1], source_id=r[2]) in owners)
    return live


def _rescore(db, ids: list[int], query: np.ndarray, owner: str, dim: int) -> list[tuple[int, float]]:
    """Exact distances of the candidates that are still `owner`'s passages at `dim`."""
    rows = []
    column = "agent_id" if owner[0] == "a" else "source_id"
    for start in range(0, len(ids), SYNC_BATCH):  # batches: SQLite caps the number of parameters
        chunk = ids[start : start + SYNC_BATCH]
        rows += db.execute(
            f"SELECT id, embedding FROM passages WHERE id IN ({','.join('?' * len(chunk))}) "
            f"AND {column} = ? AND embedding_dim = ?",
            [*chunk, int(owner[1:]), dim],
        ).fetchall()
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return [(r[0], float(d)) for r, d in zip(rows, scan.distances(matrix, query))]


def _time_clause(since: str | None, until: str | None) -> tuple[str, dict[str, str]]:
    """An extra WHERE condition on `p.created_at` (since <= created_at < until) and its parameters."""
    clause, params = "", {}
    if since is not None:
        clause, params["since"] = clause + " AND p.created_at >= :since", since
    if until is not None:
        clause, params["until"] = clause + " AND p.created_at < :until", until
    return clause, params


def keyword_search(store: Store, agent_id: int, query: str, limit: int, *, words: list[str] | None = None,
                   any_word: bool = False, since: str | None = None, until: str | None = None) -> list[int]:
    """Ids of the agent's visible passages matching `query` best first (BM25).

    All words are required first; if nothing holds them all, any word counts.
    `words` replaces the query's own words; `any_word` ranks every passage holding
    any of them (plain BM25, the best matches first anyway); `since`/`until` keep
    passages created in that range.
    """
    return [pid for pid, _ in keyword_scored(store, agent_id, query, limit, words=words, any_word=any_word,
                                             since=since, until=until)]


def keyword_scored(store: Store, agent_id: int, query: str, limit: int, *, words: list[str] | None = None,
                   any_word: bool = False, since: str | None = None,
                   until: str | None = None) -> list[tuple[int, float]]:
    """`keyword_search` with each passage's score, higher is better (BM25 here, ts_rank_cd on PostgreSQL)."""
    words = fts.terms(query) if words is None else words
    if not words or limit <= 0:
        return []
    where, params = _time_clause(since, until)
    if store.dialect == "postgres":
        return pg_search.keyword_passages(store, agent_id, words, limit, _VISIBLE, any_word=any_word,
                                          where=where, params=params)
    expressions = (fts.match_any(words),) if any_word else (fts.match_all(words), fts.match_any(words))
    db = store.db
    unfiltered = not where and _sees_everything(db, agent_id)
    for expression in expressions:
        rows = _best_of_all(db, agent_id, expression, limit) if unfiltered else None
        if rows is None:
            rows = db.execute(
                "SELECT p.id, passages_fts.rank FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid "
                f"WHERE passages_fts MATCH :q AND {_VISIBLE}{where} ORDER BY passages_fts.rank, p.id LIMIT :limit",
                {"q": expression, "agent": agent_id, "limit": limit, **params},
            ).fetchall()
        if rows or len(words) == 1:
            return [(r[0], -float(r[1])) for r in rows]  # FTS5's rank is BM25 negated: lower is better
    return []


def _sees_everything(db, agent_id: int) -> bool:
    """Whether every stored passage is one the agent may search (one agent, or its sources only), by the counts."""
    total, visible = db.execute(
        "SELECT coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE owner = :own OR owner IN "
        "(SELECT 's' || source_id FROM agent_sources WHERE agent_id = :agent)), 0) FROM passage_counts",
        {"own": owner_key(agent_id=agent_id), "agent": agent_id},
    ).fetchone()
    return total == visible


def _best_of_all(db, agent_id: int, expression: str, limit: int) -> list[tuple[int, float]] | None:
    """The best `limit` matches of all passages, when every one of them is the agent's to see; else None.

    Skips looking up each match's owner in `passages` (a third of a keyword search
    over 100k passages, docs/benchmarks.md). If the best of all are visible they
    are the best of the visible ones too, so this is checked on the rows returned,
    not trusted to the counts that chose this path.
    """
    rows = db.execute(
        "SELECT rowid, rank FROM passages_fts WHERE passages_fts MATCH :q ORDER BY rank, rowid LIMIT :limit",
        {"q": expression, "limit": limit},
    ).fetchall()
    if not rows:
        return rows
    seen = db.execute(
        f"SELECT count(*) FROM passages p WHERE p.id IN ({','.join('?' * len(rows))}) AND "
        "(p.agent_id = ? OR p.source_id IN (SELECT source_id FROM agent_sources WHERE agent_id = ?))",
        [*(r[0] for r in rows), agent_id, agent_id],
    ).fetchone()[0]
    return rows if seen == len(rows) else None


def term_counts(store: Store, words: list[str], *, rows_up_to: int = 0) -> fts.TermCounts:
    """(how many passages hold each of `words`, passages in all): term_stats' totals, read on their own;
    with `rows_up_to`, also the passages holding each word held by at most that many."""
    return fts.store_term_counts(store, "passages", "passage_counts", words, rows_up_to=rows_up_to)


def term_stats(store: Store, ids: list[int], words: list[str], counts: fts.TermCounts | None = None
               ) -> tuple[dict[int, frozenset[str]], dict[str, int], int]:
    """(which of `words` each passage of `ids` holds, how many passages hold each word, passages in all).

    The counts are over every passage in the store, as FTS5's own BM25 statistics are;
    `counts` gives them when term_counts read them already.
    """
    return fts.store_term_stats(store, "passages", "passage_counts", ids, words, counts)


def keyword_count(store: Store, agent_id: int, words: list[str], *, since: str | None = None,
                  until: str | None = None) -> int:
    """How many visible passages hold any of `words` (in the time range): a keyword search's total."""
    if not words:
        return 0
    where, params = _time_clause(since, until)
    if store.dialect == "postgres":
        return pg_search.keyword_count(store, agent_id, words, _VISIBLE, where=where, params=params)
    db = store.db
    if not where and _sees_everything(db, agent_id):  # a total to show, so the counts are trusted here
        return db.execute("SELECT count(*) FROM passages_fts WHERE passages_fts MATCH ?", [fts.match_any(words)]).fetchone()[0]
    return db.execute(
        "SELECT count(*) FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid "
        f"WHERE passages_fts MATCH :q AND {_VISIBLE}{where}",
        {"q": fts.match_any(words), "agent": agent_id, **params},
    ).fetchone()[0]


def count_in_range(store: Store, agent_id: int, since: str | None, until: str | None) -> int:
    """Visible passages created in [since, until)."""
    where, params = _time_clause(since, until)
    return store.db.execute(
        f"SELECT count(*) FROM passages p WHERE {_VISIBLE}{where}", {"agent": agent_id, **params}
    ).fetchone()[0]


def vector_search_in_range(store: Store, agent_id: int, query_vector, k: int, since: str | None,
                           until: str | None) -> list[tuple[int, float]]:
    """The k nearest visible passages created in [since, until), exact, as (id, cosine distance).

    The vector indexes know nothing of time, so the range is read from `passages`
    (indexed by owner and time) and its float blobs are scored exactly (scan.py).
    """
    if k <= 0:
        return []
    where, params = _time_clause(since, until)
    query = np.frombuffer(_pack(query_vector, len(query_vector)), dtype=np.float32)
    cursor = store.db.execute(
        f"SELECT p.id, p.embedding FROM passages p WHERE {_VISIBLE}{where} AND p.embedding_dim = :dim",
        {"agent": agent_id, "dim": len(query), **params},
    )
    return scan.nearest(cursor, query, k)


def neighbours(store: Store, ids: list[int], known: dict[int, tuple | None] | None = None, *, reach: int = 1
               ) -> dict[int, tuple[int | None, int | None]]:
    """For each passage id, (the passage stored right before it, right after it) by the same owner.

    "Right before" is the id just below: a passage deleted in between makes none, which
    is rare enough not to be worth a search for the next one down. `known` (id -> owner,
    None for no such passage) carries what earlier calls of one search read, so asking
    again for the neighbours of neighbours reads only the rows not seen yet; `reach` 2
    reads the rows two steps away too, in the same query, so that second call reads nothing.
    """
    if not ids:
        return {}
    owner: dict[int, tuple | None] = {} if known is None else known
    wanted = sorted({i + d for i in ids for d in range(-reach, reach + 1)} - owner.keys())
    for start in range(0, len(wanted), SYNC_BATCH):
        chunk = wanted[start : start + SYNC_BATCH]
        rows = store.db.execute(
            f"SELECT id, agent_id, source_id FROM passages WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ).fetchall()
        owner.update(dict.fromkeys(chunk))
        owner.update((r[0], (r[1], r[2])) for r in rows)

    def same(i: int, n: int) -> int | None:
        return n if owner.get(n) == owner[i] else None

    return {i: (same(i, i - 1), same(i, i + 1)) for i in ids if owner.get(i) is not None}


def similarity(distance: float) -> float:
    return 1.0 - distance if math.isfinite(distance) else 0.0
