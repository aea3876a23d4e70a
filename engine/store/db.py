"""Opening the one SQLite file: extension loading, pragmas, per-thread connections.

Every connection comes from `connect()`, the only place sqlite-vec is loaded.
SQLite connections must not be shared across threads, so `Store` hands each
thread its own connection to the same file; WAL lets readers run beside the one
writer, and `busy_timeout` makes a second writer wait instead of failing. A
thread's connection is closed when the thread ends (the terminal starts one per
turn), so descriptors do not pile up.

Safety against silent loss. SQLite's locks are POSIX fcntl locks, and POSIX drops
all of a process's locks on a file when *any* descriptor to that file is closed,
even one SQLite never saw. Another process then believes it is alone, and on
closing it checkpoints and deletes the write-ahead log that this process is still
appending to: every later commit here lands in an unlinked file. SQLite cannot
notice, so the store does. It keeps one "anchor" connection open for its whole
life (so the log is never legitimately deleted while the store is open),
remembers the identity (device, inode) of the database file and of its `-wal`
when it opens, and compares them with `os.stat` (which opens nothing, so it
cannot drop locks itself) around every commit. A mismatch marks the store broken
and every write after that raises `StoreBroken`.

Opening also runs `PRAGMA quick_check`, and SQLite's read-only and damaged-file
errors become messages that say what is wrong with which file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils
from sqlite_utils.utils import sqlite3  # pysqlite3 when installed: the same module sqlite-utils uses

from engine.errors import MemGPTError, StoreBroken, StoreUnavailable
from engine.store import live
from engine.store.base import AGENT_WAIT, Store, ThreadConnections  # noqa: F401 - AGENT_WAIT kept importable here

BUSY_TIMEOUT_MS = 15_000
CLOSE_CHECKPOINT_WAIT_MS = 500
MMAP_BYTES = 1 << 30  # vector scans read the whole table; mmap keeps them off the page cache copy path

# SQLite primary result codes (the low byte of the extended code).
_SQLITE_CORRUPT = 11
_SQLITE_READONLY = 8
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


def now() -> str:
    """The current time as stored everywhere: ISO 8601, UTC, milliseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------- errors that name the problem


def explain(path: Path, error: sqlite3.Error) -> StoreUnavailable:
    """The readable error for an SQLite failure while opening or writing `path`."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(error)
    if primary == _SQLITE_READONLY or "readonly" in text or "read-only" in text:
        return StoreUnavailable(
            f"The database {path} is read-only: {text}. The app must write the file and create "
            f"{path.name}-wal and {path.name}-shm beside it; make the file and its folder writable "
            "for this user, or choose another data home (--home or MEMGPT_HOME)."
        )
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return StoreUnavailable(
            f"Cannot open database {path}: it is damaged or not an SQLite database ({text}). "
            "Nothing was changed. Restore a copy made with `python app.py backup FILE` "
            f"(with the app stopped, put the copy in place of {path.name} and remove "
            f"{path.name}-wal and {path.name}-shm), or try `sqlite3 {path} .recover`."
        )
    if primary == _SQLITE_CANTOPEN:
        return StoreUnavailable(
            f"Cannot open database {path}: {text}. Check that its folder exists and that this user "
            "may create files in it."
        )
    return StoreUnavailable(f"Cannot open database {path}: {text}")


def _quick_check(db: sqlite_utils.Database, path: Path) -> None:
    problems = [row[0] for row in db.execute("PRAGMA quick_check(5)").fetchall()]
    if problems != ["ok"]:
        raise StoreUnavailable(
            f"The database {path} is damaged ({'; '.join(problems)}), so the app will not run on it. "
            "Nothing was changed. Restore a copy made with `python app.py backup FILE` "
            f"(with the app stopped, put the copy in place of {path.name} and remove "
            f"{path.name}-wal and {path.name}-shm), or try `sqlite3 {path} .recover`."
        )


def _probe_write(db: sqlite_utils.Database) -> None:
    """Fail now, not at the first user action, when the file cannot be written.

    A read-only file still grants BEGIN IMMEDIATE; only changing a page fails,
    so the probe creates a table and rolls it back.
    """
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):  # another process is writing: that proves nothing
            return
        raise
    try:
        db.conn.execute("CREATE TABLE main._memgpt_write_probe (x)")
    finally:
        db.conn.execute("ROLLBACK")


# ---------------------------------------------------------------- the file guard


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class _FileGuard:
    """The identities of the database file and its WAL, as they were when the store opened."""

    def __init__(self, path: Path):
        self.path = path
        self.wal = Path(f"{path}-wal")
        self.expected: tuple | None = None
        self.broken: str | None = None

    def arm(self) -> None:
        self.expected = (_identity(self.path), _identity(self.wal))

    def check(self) -> None:
        if self.broken is None and self.expected is not None:
            if (_identity(self.path), _identity(self.wal)) != self.expected:
                self.broken = (
                    f"The database file {self.path} was changed underneath this process (its write-ahead "
                    f"log {self.wal.name} was removed or replaced), so further writes could be lost. "
                    "Nothing more will be written; restart the app. This happens when another program "
                    "opens and closes the database files while the app runs, or replaces them."
                )
        if self.broken is not None:
            raise StoreBroken(self.broken)


_COMMENT = re.compile(r"\s*(?:--[^\n]*\n?|/\*.*?\*/)", re.S)
_READS = frozenset({"SELECT", "EXPLAIN", "VALUES", "ROLLBACK", "SAVEPOINT"})
_COMMITS = frozenset({"COMMIT", "END"})


def _keyword(sql: str) -> str:
    pos = 0
    while match := _COMMENT.match(sql, pos):
        if match.end() == pos:
            break
        pos = match.end()
    word = re.match(r"\s*([A-Za-z]+)", sql[pos:])
    return word.group(1).upper() if word else ""


def _is_read(keyword: str, sql: str) -> bool:
    if keyword == "PRAGMA":
        return "checkpoint" not in sql.lower()
    return keyword in _READS


class _GuardedConnection(sqlite3.Connection):
    """A connection that checks the store's file guard wherever a commit can happen.

    Inside an explicit transaction only its COMMIT is checked; a write outside
    one (autocommit) is checked before and after.
    """

    guard: _FileGuard | None = None

    def _check(self, *, undo: bool = False) -> None:
        if self.guard is None:
            return
        try:
            self.guard.check()
        except StoreBroken:
            if undo and self.in_transaction:
                super().rollback()
            raise

    def _around(self, run, sql: str):
        if self.guard is None:
            return run()
        keyword = _keyword(sql)
        if _is_read(keyword, sql):
            return run()
        committing = keyword in _COMMITS or (keyword == "RELEASE")
        if committing or not self.in_transaction:
            self._check(undo=committing)
        result = run()
        if keyword == "BEGIN" or not self.in_transaction:
            self._check(undo=True)
        return result

    def execute(self, sql, parameters=(), /):
        return self._around(lambda: super(_GuardedConnection, self).execute(sql, parameters), sql)

    def executemany(self, sql, parameters, /):
        return self._around(lambda: super(_GuardedConnection, self).executemany(sql, parameters), sql)

    def executescript(self, script, /):
        if self.guard is not None:
            self._check(undo=True)
        cursor = super().executescript(script)
        if self.guard is not None:
            self._check()
        return cursor

    def commit(self):
        if self.guard is not None and self.in_transaction:
            self._check(undo=True)
            super().commit()
            self._check()
        else:
            super().commit()

    def __exit__(self, exc_type, exc, tb):
        if self.guard is not None and exc_type is None and self.in_transaction:
            self._check(undo=True)
            result = super().__exit__(exc_type, exc, tb)
            self._check()
            return result
        return super().__exit__(exc_type, exc, tb)


# ---------------------------------------------------------------- connections


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


def _close_quietly(db: sqlite_utils.Database) -> None:
    with contextlib.suppress(Exception):
        db.close()


def connect(path: str | Path, *, guard: _FileGuard | None = None) -> sqlite_utils.Database:
    """Open (creating if needed) the database file at `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreUnavailable(f"Cannot create the folder for database {path}: {e}") from e
    try:
        # check_same_thread=False only so that Store.close() and a finished thread's
        # finalizer may close it; Store still gives each thread its own connection.
        conn = sqlite3.connect(
            str(path), factory=_GuardedConnection, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as e:
        raise explain(path, e) from e
    try:
        db = sqlite_utils.Database(conn)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        _load_sqlite_vec(db)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        db.enable_wal()
        # NORMAL in WAL mode survives a killed process; only a power cut can lose the last commit.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    except sqlite3.Error as e:
        conn.close()
        raise explain(path, e) from e
    except BaseException:
        conn.close()
        raise
    conn.guard = guard
    return db


class SqliteStore(Store):
    """The embedded store: one SQLite file, a connection per thread, migrations run on open."""

    dialect = "sqlite"
    path: Path

    def __init__(self, path: str | Path, *, home: str | Path | None = None):
        """`home`: the data home this database belongs to; no loader may read it while the store is open."""
        super().__init__()
        self.path = Path(path)
        self.home = Path(home) if home is not None else None
        self._guard = _FileGuard(self.path)
        self._threads: ThreadConnections[sqlite_utils.Database] = ThreadConnections(_close_quietly)
        self._lock = threading.Lock()
        self._anchor: sqlite_utils.Database | None = None
        self._live_token: int | None = None
        from engine.store.migrations import migrate

        anchor = self._open_anchor()
        try:
            self.applied_migrations = migrate(anchor)
        except sqlite3.Error as e:
            self.close()
            raise explain(self.path, e) from e
        except BaseException:
            self.close()
            raise

    def _open_anchor(self) -> sqlite_utils.Database:
        anchor = connect(self.path, guard=self._guard)
        try:
            _quick_check(anchor, self.path)
            _probe_write(anchor)
        except sqlite3.Error as e:
            _close_quietly(anchor)
            raise explain(self.path, e) from e
        except BaseException:
            _close_quietly(anchor)
            raise
        # The -wal file exists from the first read in WAL mode until the last
        # connection of the last process closes; the anchor keeps it alive.
        self._guard.arm()
        self._anchor = anchor
        if self._live_token is None:
            self._live_token = live.register(self.path, self.home)
        return anchor

    @property
    def broken(self) -> str | None:
        """Why the store refuses writes, once the files changed underneath it."""
        return self._guard.broken

    @property
    def db(self) -> sqlite_utils.Database:
        db = self._threads.current()
        if db is not None:
            return db
        with self._lock:
            if self._anchor is None:  # used again after close()
                self._open_anchor()
        return self._threads.bind(connect(self.path, guard=self._guard))

    def check(self) -> None:
        """Raise StoreBroken if the files changed underneath this store."""
        self._guard.check()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction on this thread's connection (a savepoint when nested).

        BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that
        reads and then writes can fail at once with "database is locked" when
        another connection wrote in between, and busy_timeout cannot save it.
        The connection checks the file guard after BEGIN and around COMMIT.
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

    def describe(self) -> str:
        return str(self.path)

    def close(self) -> None:
        """Close every connection, first moving the WAL's content into the database file.

        After a clean close the database file alone holds everything (a copy of
        it is complete). A broken store skips the checkpoint: its log is not the
        one other processes see.
        """
        self._run_close_hooks()
        connections = self._threads.take_all()
        with self._lock:
            anchor, self._anchor = self._anchor, None
        for db in connections:
            _close_quietly(db)
        if anchor is not None:
            if self._guard.broken is None:
                with contextlib.suppress(sqlite3.Error, MemGPTError):
                    # TRUNCATE waits for every reader to leave the log. Another process holding a long
                    # read (a server beside this CLI command) would make close wait out the whole busy
                    # timeout; when the log cannot be emptied now, that process's own close empties it.
                    anchor.execute(f"PRAGMA busy_timeout = {CLOSE_CHECKPOINT_WAIT_MS}")
                    anchor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _close_quietly(anchor)
        if self._live_token is not None:
            live.unregister(self._live_token)
            self._live_token = None


# ---------------------------------------------------------------- backup

COUNTED_TABLES = ("agents", "messages", "memory_blocks", "passages", "sources")


def backup(db_path: str | Path, target: str | Path, *, force: bool = False) -> dict[str, int]:
    """Copy the live database into one self-contained file; return row counts of the copy.

    SQLite's online backup reads a consistent snapshot while other processes
    keep writing. The copy is written beside `target` under a temporary name and
    sealed (`seal`) into place. An existing `target` is refused unless `force`.
    """
    db_path, target = Path(db_path), Path(target)
    if not db_path.is_file():
        raise StoreUnavailable(f"There is no database at {db_path}.")
    if Path(os.path.realpath(target)) in live.database_files(db_path):
        raise StoreUnavailable("The backup file cannot be the database itself or one of its -wal/-shm files.")
    if target.exists() and not force:
        raise FileExistsError(f"{target} already exists; pass --force to overwrite it.")
    partial = partial_name(target)
    partial.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            copy = sqlite3.connect(str(partial))
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
        return seal(partial, target, force=force, origin=str(db_path))
    except sqlite3.Error as e:
        raise explain(db_path, e) from e
    finally:
        partial.unlink(missing_ok=True)


def partial_name(target: Path) -> Path:
    """Where a copy is built before it is put at `target`: hidden, beside it (so a rename cannot cross disks)."""
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def seal(partial: Path, target: Path, *, force: bool, origin: str) -> dict[str, int]:
    """Turn the finished copy `partial` into one checked file at `target`; return its row counts.

    It is switched out of WAL mode (so it needs no -wal file), checked with
    integrity_check and synced before it is put in place: `os.link` never
    overwrites (a target that appeared meanwhile fails), `force` replaces.
    """
    copy = sqlite3.connect(str(partial))
    try:
        copy.execute("PRAGMA journal_mode = DELETE")
        problems = [r[0] for r in copy.execute("PRAGMA integrity_check").fetchall()]
        if problems != ["ok"]:
            raise StoreUnavailable(
                f"The copy of {origin} fails integrity_check ({'; '.join(problems[:5])}); "
                "the database itself is damaged. No backup was written."
            )
        names = {r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        counts = {
            table: copy.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in COUNTED_TABLES
            if table in names
        }
    finally:
        copy.close()
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if force:
        os.replace(partial, target)
    else:
        os.link(partial, target)  # fails if the target appeared meanwhile, never overwrites
        partial.unlink()
    return counts
