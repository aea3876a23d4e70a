"""The PostgreSQL store: psycopg 3 + pgvector, for teams and several app processes.

It offers what `SqliteStore` offers (engine/store/base.py), so the store modules
run unchanged: their SQL, written once with `?` and `:name` placeholders, is
rewritten to psycopg's `%s` / `%(name)s` here (`to_pg`), skipping string
literals and `::` casts. An INSERT into a table with an `id` column gets
`RETURNING id`, which the cursor exposes as `lastrowid`, as sqlite3's does.

Concurrency, the reason to be on a server:
- every thread gets its own connection (autocommit; `atomic()` is a
  transaction, a savepoint when nested); a connection the server dropped is
  replaced on next use;
- `atomic()` takes one transaction-level advisory lock, so write transactions
  run one at a time, as under SQLite's BEGIN IMMEDIATE: read-modify-write code
  (core memory edits, "create the source unless it exists") stays correct with
  several processes, and these transactions are milliseconds long;
- an agent's lock is a session-level advisory lock held on a connection of its
  own for the whole step, so two processes (web + ws, or replicas) never
  interleave one agent's steps; if a process dies, its session ends and the lock
  goes with it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import StoreUnavailable
from engine.store import live
from engine.store.base import Store, ThreadConnections

WRITE_KEY = 0x4D454D48  # advisory lock: one write transaction at a time
AGENT_NAMESPACE = 0x4D454D41  # advisory lock pair (namespace, agent id): one step per agent
LOCK_POLL = 0.05  # seconds between tries for an agent held by another process
CONNECT_TIMEOUT = 10
MAX_IDLE = 8  # idle connections kept for reuse per store

# Tables whose rows have an `id` the caller may want back (cursor.lastrowid).
_ID_TABLES = frozenset({"agents", "memory_blocks", "memory_edits", "messages", "sources", "passages", "llm_calls"})
_INSERT = re.compile(r"\s*INSERT\s+INTO\s+(\w+)", re.I)


def _psycopg():
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover - psycopg is a dependency
        raise StoreUnavailable("PostgreSQL needs psycopg: pip install 'psycopg[binary]'") from e
    return psycopg


@functools.lru_cache(maxsize=1024)
def to_pg(sql: str) -> str:
    """SQLite-style placeholders to psycopg's, outside string literals; `%` doubled."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "'":
            end = i + 1
            while end < n:
                if sql[end] == "'":
                    if end + 1 < n and sql[end + 1] == "'":
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1].replace("%", "%%"))
            i = end + 1
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == ":" and i + 1 < n and sql[i + 1] == ":":
            out.append("::")
            i += 2
        elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            match = re.match(r"\w+", sql[i + 1 :])
            assert match is not None
            out.append(f"%({match.group(0)})s")
            i += 1 + match.end()
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _returning(sql: str) -> tuple[str, bool]:
    match = _INSERT.match(sql)
    if match and match.group(1).lower() in _ID_TABLES and "RETURNING" not in sql.upper():
        return f"{sql} RETURNING id", True
    return sql, False


class Vector:
    """A float32 vector bound as pgvector's binary `vector` (no text formatting of 384 floats)."""

    __slots__ = ("array",)

    def __init__(self, values):
        self.array = np.asarray(values, dtype=np.float32)


def _vector_dumper(oid: int):
    from psycopg import adapt, pq

    class VectorDumper(adapt.Dumper):
        format = pq.Format.BINARY

        def dump(self, obj: Vector) -> bytes:
            # pgvector's binary form: int16 dimensions, int16 unused, big-endian float32s.
            return struct.pack(">HH", obj.array.shape[0], 0) + obj.array.astype(">f4").tobytes()

    VectorDumper.oid = oid
    return VectorDumper


def _no_nul(value):
    # PostgreSQL's text cannot hold U+0000 (SQLite's can); a NUL from a model's reply or a
    # user's message would otherwise fail the whole write. It is stored as U+FFFD instead.
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


def _clean(parameters):
    if isinstance(parameters, dict):
        return {key: _no_nul(value) for key, value in parameters.items()}
    return [_no_nul(value) for value in parameters]


class PgCursor:
    """The few things store code reads from a cursor, with sqlite3's names."""

    def __init__(self, cursor, returned_id: bool):
        self._cursor = cursor
        self.lastrowid: int | None = None
        if returned_id:
            row = cursor.fetchone()
            self.lastrowid = row[0] if row else None
        self.rowcount = cursor.rowcount

    @property
    def description(self):
        return self._cursor.description

    def fetchone(self):
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self):
        return self._cursor.fetchall() if self._cursor.description else []

    def fetchmany(self, size: int):
        return self._cursor.fetchmany(size) if self._cursor.description else []

    def __iter__(self):
        return iter(self.fetchall())


class PgDatabase:
    """One thread's connection, answering the calls store code makes on sqlite-utils' Database."""

    dialect = "postgres"

    def __init__(self, conn, where: str = "the database server"):
        self.raw = conn
        self.where = where

    @contextlib.contextmanager
    def _readable(self) -> Iterator[None]:
        """A lost server becomes StoreUnavailable (a MemGPTError faces show); the next use reconnects."""
        psycopg = _psycopg()
        try:
            yield
        except psycopg.OperationalError as e:
            if not (self.raw.closed or self.raw.broken):
                raise
            raise StoreUnavailable(
                f"Lost the connection to {self.where} ({_reason(e)}); what was not yet committed was not "
                "stored. The app reconnects on the next request; check that the server is running."
            ) from e

    @property
    def conn(self) -> PgDatabase:  # store code reaches `db.conn.executemany` / `db.conn.in_transaction`
        return self

    @property
    def in_transaction(self) -> bool:
        from psycopg import pq

        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Any = None) -> PgCursor:
        sql, returned = _returning(sql)
        with self._readable():
            # Always bound (an empty list at least): psycopg then turns the doubled %% back into %.
            return PgCursor(self.raw.execute(to_pg(sql), _clean(parameters) if parameters is not None else []), returned)

    def executemany(self, sql: str, rows) -> None:
        rows = list(rows)
        if rows:
            with self._readable(), self.raw.cursor() as cursor:
                cursor.executemany(to_pg(sql), [_clean(row) for row in rows])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


def safe_url(url: str) -> str:
    """The URL without its password, for messages and the UI."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://(unreadable URL)"
    host = parts.get("host") or "localhost"
    if str(host).startswith("/"):
        host = f"[socket {host}]"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


class PgAgentLock:
    """An agent's lock: a thread lock for this process, then an advisory lock for every process."""

    def __init__(self, store: PgStore, agent_id: int):
        self._store = store
        self._agent_id = agent_id
        self._local = threading.Lock()
        self._held: PgDatabase | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        if not (self._local.acquire(blocking, timeout) if blocking else self._local.acquire(False)):
            return False
        try:
            db = self._store._lock_connection()
            while True:
                row = db.execute("SELECT pg_try_advisory_lock(?, ?)", [AGENT_NAMESPACE, self._agent_id]).fetchone()
                if row and row[0]:
                    self._held = db
                    return True
                if not blocking or (deadline is not None and time.monotonic() >= deadline):
                    self._store._return_lock_connection(db)
                    self._local.release()
                    return False
                time.sleep(LOCK_POLL)
        except BaseException:
            if self._held is None:
                self._local.release()
            raise

    def release(self) -> None:
        db, self._held = self._held, None
        try:
            if db is not None:
                try:
                    db.execute("SELECT pg_advisory_unlock(?, ?)", [AGENT_NAMESPACE, self._agent_id])
                except Exception:
                    db.close()  # the session's end frees the lock
                else:
                    self._store._return_lock_connection(db)
        finally:
            self._local.release()

    def locked(self) -> bool:
        """Whether a step of this agent runs here or in another process on the same database."""
        if self._local.locked():
            return True
        row = self._store.db.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = ? AND objid = ? AND objsubid = 2)",
            [AGENT_NAMESPACE, self._agent_id],
        ).fetchone()
        return bool(row and row[0])

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any, /) -> None:
        self.release()


class PgStore(Store):
    """The store on a PostgreSQL server with pgvector; migrations run on open."""

    dialect = "postgres"
    url: str

    def __init__(self, url: str, *, home: str | Path | None = None):
        super().__init__()
        self.url = url
        self.home = Path(home) if home is not None else None
        self._threads: ThreadConnections[PgDatabase] = ThreadConnections(self._retire)
        self._lock = threading.Lock()
        self._idle_lock_connections: list[PgDatabase] = []
        self._idle: list[PgDatabase] = []  # connections of finished threads, reused (a TLS connect costs ~50 ms)
        self._vector_oid: int | None = None
        self._closed = False
        from engine.store.pg_migrations import migrate

        first = self._connect()
        try:
            self.applied_migrations = migrate(first.raw)
            from psycopg.types import TypeInfo

            info = TypeInfo.fetch(first.raw, "vector")
            if info is None:
                raise StoreUnavailable(f"The pgvector extension is missing in {self.describe()}.")
            self._vector_oid = info.oid
        except _psycopg().Error as e:
            first.close()
            hint = ""
            if "vector" in str(e):
                hint = (" The app needs the pgvector extension: have a superuser (or your provider's console) "
                        "run CREATE EXTENSION vector in this database.")
            raise StoreUnavailable(f"Cannot prepare the database {self.describe()}: {_reason(e)}.{hint}") from e
        except BaseException:
            first.close()
            raise
        first.close()
        self._live_token = live.register(None, self.home) if self.home is not None else None

    def describe(self) -> str:
        return safe_url(self.url)

    def _connect(self) -> PgDatabase:
        psycopg = _psycopg()
        try:
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name="memgpt"
            )
        except psycopg.Error as e:
            raise StoreUnavailable(f"Cannot connect to {self.describe()}: {_reason(e)}") from e
        if self._vector_oid is not None:
            conn.adapters.register_dumper(Vector, _vector_dumper(self._vector_oid))
        return PgDatabase(conn, self.describe())

    @property
    def db(self) -> PgDatabase:
        db = self._threads.current()
        if db is not None and not _dead(db):
            return db
        self._closed = False  # used again after close(), like SqliteStore
        return self._threads.bind(self._reuse(self._idle) or self._connect())

    def _retire(self, db: PgDatabase) -> None:
        """A thread ended: keep its connection for the next thread (servers start one per step)."""
        from psycopg import pq

        with self._lock:
            if (not self._closed and len(self._idle) < MAX_IDLE and not db.raw.closed
                    and db.raw.info.transaction_status == pq.TransactionStatus.IDLE):
                self._idle.append(db)
                return
        db.close()

    def _reuse(self, pool: list[PgDatabase]) -> PgDatabase | None:
        """A live connection from one of the idle pools, or None."""
        with self._lock:
            while pool:
                db = pool.pop()
                if not _dead(db):
                    return db
        return None

    def _lock_connection(self) -> PgDatabase:
        return self._reuse(self._idle_lock_connections) or self._connect()

    def _return_lock_connection(self, db: PgDatabase) -> None:
        with self._lock:
            if not self._closed:
                self._idle_lock_connections.append(db)
                return
        db.close()

    def _new_agent_lock(self, agent_id: int) -> PgAgentLock:
        return PgAgentLock(self, agent_id)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[PgDatabase]:
        """A write transaction on this thread's connection (a savepoint when nested); see the module docstring."""
        db = self.db
        outermost = not db.in_transaction
        with db._readable(), db.raw.transaction():
            if outermost:
                db.raw.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_KEY])
            yield db

    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[PgDatabase]:
        """A transaction without the write lock, for settings that must last one query (`SET LOCAL`)."""
        db = self.db
        with db._readable(), db.raw.transaction():
            yield db

    def close(self) -> None:
        self._run_close_hooks()
        connections = self._threads.take_all()
        with self._lock:
            connections += self._idle_lock_connections + self._idle
            self._idle, self._idle_lock_connections = [], []
            # A lock still held (a step cut off by shutdown) ends with its session, as when a process dies.
            connections += [lock._held for lock in self._agent_locks.values()
                            if isinstance(lock, PgAgentLock) and lock._held is not None]
            self._closed = True
        for db in connections:
            db.close()
        if self._live_token is not None:
            live.unregister(self._live_token)
            self._live_token = None


def _dead(db: PgDatabase) -> bool:
    return bool(db.raw.closed or db.raw.broken)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
