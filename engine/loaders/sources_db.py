"""Readers for structured sources: SQL queries, vector tables and JSON-lines files.

Databases are opened read-only: a SQLite file through a `mode=ro` URI with
`query_only` on; PostgreSQL (`postgresql://` DSN) only when `psycopg` is
installed, in a read-only session. Precomputed embeddings (vector tables,
jsonl) come back as documents carrying their vector, which `ingest` stores as
is; a vector table whose dimension differs from the embedder's is refused whole.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from engine.errors import EmbeddingMismatch
from engine.loaders.readers import Document, Item, LoaderError, Skipped
from engine.store import live

FETCH_ROWS = 500


# ---------------------------------------------------------------- connections

def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for metadata and messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}@{host}" if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextlib.contextmanager
def open_database(*, sqlite: str | Path | None = None, dsn: str | None = None) -> Iterator[tuple[Any, str]]:
    """(DB-API connection, label) for a SQLite file or a PostgreSQL DSN, read-only."""
    if (sqlite is None) == (dsn is None):
        raise LoaderError("Give exactly one database: a SQLite file or a postgresql:// DSN.")
    if sqlite is not None:
        path = Path(sqlite)
        refused = live.refusal(path)  # opening the app's own database would drop its locks
        if refused:
            raise LoaderError(f"{sqlite} is not read: {refused}.")
        if not path.is_file():
            raise LoaderError(f"No SQLite database at {sqlite}.")
        path = path.resolve()
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            conn.close()
            raise LoaderError(f"{sqlite} is not a readable SQLite database: {e}") from e
        try:
            yield conn, f"sqlite:{path}"
        finally:
            conn.close()
        return
    assert dsn is not None
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise LoaderError("Only postgresql:// DSNs are supported (or use a SQLite file).")
    try:
        import psycopg
    except ImportError:
        raise LoaderError(
            "PostgreSQL is not supported yet in this install: pip install 'psycopg[binary]' to load from a DSN."
        ) from None
    try:
        pg: Any = psycopg.connect(dsn)
        pg.read_only = True
    except Exception as e:
        raise LoaderError(f"Cannot connect to {_safe_dsn(dsn)}: {e}") from e
    try:
        yield pg, _safe_dsn(dsn)
    finally:
        pg.close()


def _rows(conn, sql: str) -> Iterator[tuple[list[str], tuple]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
    except Exception as e:
        raise LoaderError(f"The query failed: {e}") from e
    if cursor.description is None:
        raise LoaderError("The query returns no rows (is it a SELECT?).")
    names = [d[0] for d in cursor.description]
    while True:
        batch = cursor.fetchmany(FETCH_ROWS)
        if not batch:
            return
        for row in batch:
            yield names, row


def _quote(identifier: str) -> str:
    """A table or column name (dotted for schema.table) quoted for SQL."""
    if not identifier or not identifier.strip():
        raise LoaderError("A table or column name is empty.")
    return ".".join('"' + part.replace('"', '""') + '"' for part in identifier.split("."))


# ---------------------------------------------------------------- SQL query

def row_text(names: list[str], row: tuple) -> str:
    """One column: its value. Several: "column: value" lines (NULLs and blobs left out)."""
    cells = [(n, v) for n, v in zip(names, row) if v is not None and not isinstance(v, (bytes, bytearray, memoryview))]
    if len(names) == 1:
        return str(cells[0][1]) if cells else ""
    return "\n".join(f"{n}: {v}" for n, v in cells if str(v).strip())


def read_sql_query(query: str, *, sqlite: str | Path | None = None, dsn: str | None = None) -> Iterator[Item]:
    """One document per row of `query`'s result."""
    if not query or not query.strip():
        raise LoaderError("The query is empty.")
    empty = 0
    with open_database(sqlite=sqlite, dsn=dsn) as (conn, label):
        for number, (names, row) in enumerate(_rows(conn, query), 1):
            text = row_text(names, row)
            if not text.strip():
                empty += 1
                continue
            yield Document(text, {"source": label, "query": query, "row": number})
    if empty:
        yield Skipped(f"{label}: {empty} row(s)", "no text in the row")


# ---------------------------------------------------------------- vectors

def parse_vector(value: Any) -> list[float] | None:
    """A vector from a JSON array (text or bytes), a float32 blob or a sequence; None if it is none of these."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if raw.lstrip()[:1] == b"[":
            with contextlib.suppress(ValueError):
                return parse_vector(raw.decode("utf-8"))
        if not raw or len(raw) % 4:
            return None
        array = np.frombuffer(raw, dtype="<f4")
    elif isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
        if not isinstance(value, list):
            return None
        return parse_vector(value)
    else:
        if isinstance(value, (list, tuple)) and not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            return None
        try:
            array = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            return None
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        return None
    return array.astype(np.float32).tolist()


def dimension_mismatch(vector: list[float], dimension: int | None) -> str | None:
    """Why a precomputed vector cannot go into a source embedded with `dimension`, or None."""
    if dimension is not None and len(vector) != dimension:
        return f"embedding has {len(vector)} dimensions; the embedder uses {dimension}"
    return None


def _check_columns(conn, table: str, columns: list[str]) -> None:
    """Refuse unknown columns up front (SQLite would read a mistyped "name" as a string literal)."""
    cursor = conn.cursor()
    try:
        cursor.execute(f"SELECT * FROM {_quote(table)} LIMIT 0")
    except Exception as e:
        raise LoaderError(f"Cannot read table {table!r}: {e}") from e
    present = {d[0].lower() for d in cursor.description or ()}
    for column in columns:
        if column.lower() not in present:
            raise LoaderError(
                f"Table {table!r} has no column {column!r}; it has {', '.join(sorted(present)) or 'none'}."
            )


def read_vector_table(
    table: str,
    text_column: str,
    embedding_column: str,
    *,
    dimension: int,
    sqlite: str | Path | None = None,
    dsn: str | None = None,
) -> Iterator[Item]:
    """One document per row, carrying its precomputed embedding (JSON array or float32 blob).

    `dimension` is the embedder's; a row of another dimension refuses the whole table
    (EmbeddingMismatch), and since `ingest` reads everything before writing, nothing
    is stored. Rows with no text or an unreadable embedding are skipped.
    """
    sql = f"SELECT {_quote(text_column)}, {_quote(embedding_column)} FROM {_quote(table)}"
    no_text = 0
    with open_database(sqlite=sqlite, dsn=dsn) as (conn, label):
        _check_columns(conn, table, [text_column, embedding_column])
        for number, (_, (text, raw)) in enumerate(_rows(conn, sql), 1):
            if text is None or not str(text).strip():
                no_text += 1
                continue
            vector = parse_vector(raw)
            if vector is None:
                yield Skipped(f"{label} {table} row {number}", f"{embedding_column} is not a vector")
                continue
            if len(vector) != dimension:
                raise EmbeddingMismatch(
                    f"{table}.{embedding_column} holds {len(vector)}-d vectors (row {number}) but the "
                    f"embedder uses {dimension}-d; load it with an embedder of the same dimension."
                )
            yield Document(str(text), {"source": label, "table": table, "row": number}, embedding=vector)
    if no_text:
        yield Skipped(f"{label} {table}: {no_text} row(s)", f"no text in {text_column}")


# ---------------------------------------------------------------- jsonl

def read_jsonl(path: str | Path, *, dimension: int | None = None) -> Iterator[Item]:
    """`{"text": ..., "embedding": [...]?, "metadata": {...}?}` a line; bad lines are skipped.

    A line's own metadata is kept (its "source" wins over the file's name).
    """
    path = Path(path)
    if not path.is_file():
        raise LoaderError(f"No file at {path}.")
    name = str(path.resolve())
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{name}:{number}"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield Skipped(where, "not UTF-8")
                continue
            except ValueError as e:
                yield Skipped(where, f"invalid JSON: {e}")
                continue
            if not isinstance(record, dict):
                yield Skipped(where, "not a JSON object")
                continue
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                yield Skipped(where, 'no "text" string')
                continue
            metadata = record.get("metadata") or {}
            if not isinstance(metadata, dict):
                yield Skipped(where, '"metadata" is not an object')
                continue
            vector = None
            if record.get("embedding") is not None:
                vector = parse_vector(record["embedding"])
                if vector is None:
                    yield Skipped(where, '"embedding" is not an array of numbers')
                    continue
                mismatch = dimension_mismatch(vector, dimension)
                if mismatch:
                    yield Skipped(where, mismatch)
                    continue
            yield Document(text, {"source": name, "line": number, **metadata}, embedding=vector)
