"""What every store offers, whichever database holds it.

Two stores implement this: `SqliteStore` (engine/store/db.py, one file, the
embedded default) and `PgStore` (engine/store/pg.py, PostgreSQL + pgvector, for
teams and replicas). The store modules (agents, blocks, messages, passages,
sources) are plain functions over a `Store`; they write SQL once, with `?` and
`:name` placeholders, and branch on `store.dialect` only where the databases
differ (full-text and vector search, catalogue lookups).

The connection a store hands out (`store.db`) answers `execute(sql, params)`
with a cursor (`fetchone`, `fetchall`, iteration, `rowcount`, `lastrowid`),
`conn.executemany(sql, rows)` and `conn.in_transaction`; `atomic()` is a write
transaction on it, a savepoint when nested.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from engine.errors import AgentBusy
from engine.store.bitindex import BitIndex

if TYPE_CHECKING:
    from engine.store.lance import LanceVectors

AGENT_WAIT = 30.0  # seconds an edit from a face waits for the agent's running turn


class AgentLock(Protocol):
    """`threading.Lock`'s shape: what an agent's step and a face's edit hold."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...
    def release(self) -> None: ...
    def locked(self) -> bool: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any, /) -> Any: ...


C = TypeVar("C")


class _Slot:
    """Holds one thread's connection; dropped with the thread's locals, which retires it."""

    __slots__ = ("db", "__weakref__")

    def __init__(self, db: Any):
        self.db = db


class ThreadConnections(Generic[C]):
    """One connection per thread, handed to `retire` when its thread ends.

    Connections must not be shared across threads (SQLite's refuse it; a
    PostgreSQL connection runs one transaction at a time), and servers start a
    thread per turn, so a finished thread's connection must not linger: `retire`
    closes it (SQLite) or keeps it for the next thread (PostgreSQL).
    """

    def __init__(self, retire: Callable[[C], None]):
        self._retire = retire
        self._local = threading.local()
        self._live: dict[int, C] = {}
        self._serial = itertools.count()
        self._lock = threading.Lock()

    def current(self) -> C | None:
        slot = getattr(self._local, "slot", None)
        return slot.db if slot is not None else None

    def bind(self, db: C) -> C:
        """Make `db` this thread's connection (a previous one is retired with its slot)."""
        slot = _Slot(db)
        key = next(self._serial)
        with self._lock:
            self._live[key] = db
        weakref.finalize(slot, self._release, key)
        self._local.slot = slot
        return db

    def _release(self, key: int) -> None:
        with self._lock:
            db = self._live.pop(key, None)
        if db is not None:
            self._retire(db)

    def take_all(self) -> list[C]:
        """Forget every thread's connection (the store is closing); the caller closes them."""
        with self._lock:
            connections = list(self._live.values())
            self._live.clear()
            old_local, self._local = self._local, threading.local()
        del old_local  # outside the lock: freeing it runs the slots' finalizers, which take it
        return connections


class Store:
    """The interface; see the module docstring. Subclasses set `dialect`."""

    dialect = "none"
    path: Path | None = None  # the database file, for a file-backed store
    url: str | None = None  # the server URL, for a store on a database server
    home: Path | None = None
    # Where archival vectors live when not in this database's own vector tables:
    # set by open_store for `archival_storage: lancedb` (engine/store/lance.py),
    # and engine/store/passages.py sends its vector calls there. None: in the store.
    vectors: LanceVectors | None = None

    def __init__(self) -> None:
        self._locks_guard = threading.Lock()
        self._agent_locks: dict[int, AgentLock] = {}
        # Dimensions whose vector table is known to exist (tables are never dropped), so
        # inserts and searches do not ask the catalogue every time.
        self.vector_tables: set[int] = set()
        # Run (once) first thing in close(): background writers stop before connections go.
        self.on_close: list[Callable[[], None]] = []
        # SQLite's approximate archival search keeps each owner's 1-bit vectors in memory (bitindex.py).
        self.bit_index = BitIndex()

    def _run_close_hooks(self) -> None:
        hooks, self.on_close = self.on_close, []
        for hook in hooks:
            hook()

    @property
    def db(self) -> Any:  # this thread's connection
        raise NotImplementedError

    @property
    def broken(self) -> str | None:
        """Why the store refuses writes, or None."""
        return None

    def check(self) -> None:
        """Raise StoreBroken when the store can no longer be trusted with writes."""

    def atomic(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """Where the data lives, for people (never a password)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _new_agent_lock(self, agent_id: int) -> AgentLock:
        return threading.Lock()

    def agent_lock(self, agent_id: int) -> AgentLock:
        """The lock that serializes steps and edits of one agent.

        Lock-shaped, not an RLock: a step is a generator, and servers resume a
        generator on whichever worker thread is free, so the thread that releases
        the lock is often not the one that took it. Never take it twice. On
        PostgreSQL it is also held in the database, so another process serving
        the same agents waits too.
        """
        with self._locks_guard:
            lock = self._agent_locks.get(agent_id)
            if lock is None:
                lock = self._agent_locks[agent_id] = self._new_agent_lock(agent_id)
            return lock

    @contextlib.contextmanager
    def hold_agent(self, agent_id: int, timeout: float = AGENT_WAIT) -> Iterator[None]:
        """Hold the agent's lock for one change made from outside a step (a face's edit, an attach).

        Such a change then never lands in the middle of a step that read the old
        state. Waits up to `timeout` for a running step, then raises AgentBusy.
        Not for code that runs inside a step (tools): the step already holds it.
        """
        lock = self.agent_lock(agent_id)
        if not lock.acquire(timeout=timeout):
            raise AgentBusy(f"The agent is busy with a turn; try again when it has answered (waited {timeout:g} s).")
        try:
            yield
        finally:
            lock.release()


def integrity_errors() -> tuple[type[BaseException], ...]:
    """The exception classes either database raises for a broken constraint."""
    from sqlite_utils.utils import sqlite3

    found: list[type[BaseException]] = [sqlite3.IntegrityError]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    else:
        found.append(psycopg.IntegrityError)
    return tuple(found)
