"""Opening the one SQLite file: extension loading, pragmas, per-thread connections.

Every connection comes from `connect()`, the only place sqlite-vec is loaded.
SQLite connections must not be shared across threads, so `Store` hands each
thread its own connection to the same file; WAL lets readers run beside the one
writer, and `busy_timeout` makes a second writer wait instead of failing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from engine.errors import StoreUnavailable

BUSY_TIMEOUT_MS = 15_000
MMAP_BYTES = 1 << 30  # vector scans read the whole table; mmap keeps them off the page cache copy path


def now() -> str:
    """The current time as stored everywhere: ISO 8601, UTC, milliseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _load_sqlite_vec(db: sqlite_utils.Database) -> None:
    conn = db.conn
    if not hasattr(conn, "enable_load_extension"):
        raise StoreUnavailable(
            "This Python's sqlite3 module cannot load extensions, so sqlite-vec "
            "cannot run. On Linux: pip install pysqlite3-binary (sqlite-utils "
            "picks it up automatically). On macOS use a Python built with "
            "loadable extensions (for example Homebrew's or python.org's)."
        )
    try:
        import sqlite_vec
    except ImportError as e:  # pragma: no cover - a broken install
        raise StoreUnavailable("sqlite-vec is not installed: pip install sqlite-vec") from e
    try:
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
    except Exception as e:
        raise StoreUnavailable(f"Could not load sqlite-vec into SQLite: {e}") from e
    finally:
        with contextlib.suppress(Exception):
            conn.enable_load_extension(False)


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the database file at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite_utils.Database(path)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except Exception as e:
        raise StoreUnavailable(f"Cannot open database {path}: {e}") from e
    _load_sqlite_vec(db)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA foreign_keys = ON")
    db.enable_wal()
    # NORMAL in WAL mode survives a killed process; only a power cut can lose the last commit.
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    return db


class Store:
    """The store: one SQLite file, a connection per thread, migrations run on open."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()
        self._agent_locks: dict[int, threading.Lock] = {}
        from engine.store.migrations import migrate

        self.applied_migrations = migrate(self.db)

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction on this thread's connection (a savepoint when nested).

        BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that
        reads and then writes can fail at once with "database is locked" when
        another connection wrote in between, and busy_timeout cannot save it.
        """
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():
                yield db
            return
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        else:
            try:
                db.conn.execute("COMMIT")
            except BaseException:
                db.rollback()
                raise

    def agent_lock(self, agent_id: int) -> threading.Lock:
        """The lock that serializes steps and edits of one agent within this process.

        A plain Lock, not an RLock: a step is a generator, and servers resume a
        generator on whichever worker thread is free, so the thread that releases
        the lock is often not the one that took it. Never take it twice.
        """
        with self._lock:
            return self._agent_locks.setdefault(agent_id, threading.Lock())

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                with contextlib.suppress(Exception):
                    db.close()
            self._all.clear()
        self._local = threading.local()
