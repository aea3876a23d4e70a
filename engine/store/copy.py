"""Moving a whole store to another database: SQLite to PostgreSQL and back.

`copy_store` copies every row of every table, ids included (messages name
tool calls, edits name blocks, attachments name agents and sources: keeping ids
keeps all of that true without remapping), in foreign-key order, in batches.
The source is read in one snapshot, so an app still writing to it cannot make
the copy inconsistent (what it writes later is simply not in the copy); the
target is written in ONE transaction, so a copy that fails or does not check
out leaves the target as empty as it was, and running it again just works.

What the databases derive themselves is not copied but re-derived and then
checked: the trigger-kept counts (message_counts, passage_counts), full-text
search (SQLite's FTS5 triggers, PostgreSQL's generated `tsv`), and the
per-dimension vector tables, filled from `passages.embedding` through the same
`passages.put_vectors` every insert uses.

`copy_to_new_sqlite` builds a new SQLite file that way (a PostgreSQL store's
backup, or a move back to SQLite) and seals it into place like `db.backup`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlite_utils.utils import sqlite3

from engine.errors import MemGPTError
from engine.store import passages
from engine.store.base import Store, integrity_errors

# Parents before children, so every foreign key finds its row (SQLite checks them per statement).
TABLES = ("agents", "memory_blocks", "memory_edits", "messages", "sources", "agent_sources", "passages", "llm_calls")
BATCH = 500

Progress = Callable[[int, int], None]  # (rows copied, rows in all)


class CopyError(MemGPTError):
    """A copy refused (the target holds data) or one whose result does not match its source."""


@contextlib.contextmanager
def _snapshot(store: Store) -> Iterator[None]:
    """Every read on this thread's connection sees one moment of the store, whatever others write meanwhile."""
    db = store.db
    # SQLite in WAL mode: a read transaction keeps the snapshot of its first read.
    db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if store.dialect == "postgres" else "BEGIN")
    try:
        yield
    finally:
        db.execute("ROLLBACK")


def _columns(store: Store, table: str) -> list[str]:
    """The columns a row is made of; generated ones (PostgreSQL's `tsv`) are the database's to fill."""
    if store.dialect == "postgres":
        sql = (
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? AND is_generated = 'NEVER' ORDER BY ordinal_position"
        )
    else:
        sql = "SELECT name FROM pragma_table_xinfo(?) WHERE hidden = 0 ORDER BY cid"
    return [r[0] for r in store.db.execute(sql, [table]).fetchall()]


def _count(store: Store, table: str) -> int:
    return int(store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _batches(store: Store, table: str, columns: list[str]) -> Iterator[list[tuple]]:
    """The table's rows, BATCH at a time, by id (keyset paging: the last batch costs what the first did)."""
    if "id" not in columns:  # agent_sources: one row per attachment, few enough to read at once
        rows = store.db.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
        for start in range(0, len(rows), BATCH):
            yield [tuple(r) for r in rows[start : start + BATCH]]
        return
    key, last = columns.index("id"), None
    while True:
        where = "" if last is None else "WHERE id > ? "
        rows = store.db.execute(
            f"SELECT {', '.join(columns)} FROM {table} {where}ORDER BY id LIMIT {BATCH}", [] if last is None else [last]
        ).fetchall()
        if not rows:
            return
        yield [tuple(r) for r in rows]
        last = rows[-1][key]


def _put_vectors(target: Store, db, columns: list[str], rows: list[tuple], made: set[int]) -> None:
    """The vectors of a batch of passages, into the target's table for each dimension and owner."""
    at = {name: columns.index(name) for name in ("id", "agent_id", "source_id", "embedding_dim", "embedding")}
    groups: dict[tuple[int, str], list[tuple[int, bytes]]] = {}
    for row in rows:
        owner = passages.owner_key(agent_id=row[at["agent_id"]], source_id=row[at["source_id"]])
        groups.setdefault((row[at["embedding_dim"]], owner), []).append((row[at["id"]], bytes(row[at["embedding"]])))
    for (dim, owner), vectors in groups.items():
        if dim not in made:
            passages.ensure_vec_table(target, dim)
            made.add(dim)
        passages.put_vectors(target, db, dim, owner, vectors)


def _advance_sequences(db) -> None:
    """PostgreSQL hands out ids from a sequence that explicit ids never moved: start it after the copied ones."""
    for table in TABLES:
        if table != "agent_sources":
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL) "
                f"FROM {table}"
            )


def _check(target: Store, expected: dict[str, int]) -> None:
    """Raise CopyError unless the target holds what the source did, with its derived data in step."""
    db = target.db
    problems = [
        f"{table}: {n:,} in the source, {got:,} copied"
        for table, n in expected.items()
        if (got := _count(target, table)) != n
    ]
    for dim, n in db.execute("SELECT embedding_dim, count(*) FROM passages GROUP BY embedding_dim").fetchall():
        vectors = _count(target, passages.vec_table(dim))
        if vectors != n:
            problems.append(f"{dim}-d vectors: {n:,} passages but {vectors:,} vectors")
    # The counts every step reads, kept by triggers: they must agree with the rows they count (zeros aside).
    derived = {
        "message_counts": (
            "SELECT agent_id, n FROM message_counts WHERE n <> 0",
            "SELECT agent_id, count(*) FROM messages WHERE role <> 'system' GROUP BY agent_id",
        ),
        "passage_counts": (
            "SELECT owner, n FROM passage_counts WHERE n <> 0",
            "SELECT CASE WHEN agent_id IS NOT NULL THEN 'a' || agent_id ELSE 's' || source_id END, count(*) "
            "FROM passages GROUP BY 1",
        ),
    }
    for name, (kept, actual) in derived.items():
        if dict(db.execute(kept).fetchall()) != dict(db.execute(actual).fetchall()):
            problems.append(f"{name} disagree with the rows they count")
    if target.dialect == "sqlite":  # FTS5 compares its index with the rows it indexes (rank 1: content too)
        for table in ("messages_fts", "passages_fts"):
            try:
                db.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)")
            except sqlite3.DatabaseError as e:  # "database disk image is malformed": index and rows differ
                problems.append(f"{table}: {e}")
    if problems:
        raise CopyError(
            f"The copy in {target.describe()} does not match its source, so none of it was kept: "
            + "; ".join(problems)
            + "."
        )


def copy_store(source: Store, target: Store, on_progress: Progress | None = None) -> dict[str, int]:
    """Copy everything in `source` into the empty `target`; return the rows copied per table.

    Refused (CopyError) when the target already holds agents or sources. On
    error nothing stays in the target. `on_progress(done, total)` follows the rows.
    """
    with _snapshot(source):
        columns = {table: _columns(source, table) for table in TABLES}
        counts = {table: _count(source, table) for table in TABLES}
        total, done = sum(counts.values()), 0
        with target.atomic() as db:  # the write lock too: nobody adds rows between the check and the copy
            held = {table: _count(target, table) for table in ("agents", "sources")}
            if any(held.values()):
                raise CopyError(
                    f"{target.describe()} already holds {held['agents']} agent(s) and {held['sources']} source(s); "
                    "copy only into an empty database (a new PostgreSQL database or a new SQLite file)."
                )
            for table in TABLES:
                missing = sorted(set(columns[table]) - set(_columns(target, table)))
                if missing:
                    raise CopyError(
                        f"{target.describe()} has no column {', '.join(missing)} in {table}; "
                        "run this version of the app on both databases first, so their schemas match."
                    )
            if on_progress:
                on_progress(0, total)
            made: set[int] = set()
            for table in TABLES:
                cols = columns[table]
                insert = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                for rows in _batches(source, table, cols):
                    try:
                        db.conn.executemany(insert, rows)
                    except integrity_errors() as e:
                        # e.g. two source names one database's case folding tells apart and the other's does not
                        raise CopyError(
                            f"A row of {table} does not fit in {target.describe()} ({str(e).splitlines()[0]}); "
                            "nothing was copied."
                        ) from e
                    if table == "passages":
                        _put_vectors(target, db, cols, rows, made)
                    done += len(rows)
                    if on_progress:
                        on_progress(done, total)
            if target.dialect == "postgres":
                _advance_sequences(db)
            _check(target, counts)
    return counts


def copy_to_new_sqlite(
    source: Store, target: str | Path, *, replace: bool = False, on_progress: Progress | None = None
) -> dict[str, int]:
    """Copy `source` into a new SQLite file at `target` (an existing one only when `replace`); rows per table.

    The file is built beside `target` under a temporary name, closed (which
    checkpoints its log into it) and sealed into place, so `target` is either
    absent or complete.
    """
    from engine.store.db import SqliteStore, partial_name, seal

    target = Path(target)
    if target.exists() and not replace:
        raise FileExistsError(f"{target} already exists; pass --force to overwrite it.")
    partial = partial_name(target)
    leftovers = [partial, *(partial.with_name(partial.name + s) for s in ("-wal", "-shm", "-journal"))]
    for path in leftovers:
        path.unlink(missing_ok=True)
    try:
        copy = SqliteStore(partial)
        try:
            counts = copy_store(source, copy, on_progress)
        finally:
            copy.close()
        seal(partial, target, force=replace, origin=source.describe())
    finally:
        for path in leftovers:
            path.unlink(missing_ok=True)
    return counts
