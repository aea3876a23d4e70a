"""Recall vectors, written after the fact: a step never waits for an embedding.

Hybrid recall search (engine/memory.py `RecallMemory`) needs every searchable message
embedded. Embedding costs tens of milliseconds a message on the embedded model, far
over a step's overhead budget, so a step only schedules its agent here; one
background thread per store embeds what is pending, newest first, in batches.
A search embeds the few newest pending messages itself (SYNC_LIMIT), so what was
just said is found by meaning too; older ones are found by keyword until their turn.

The thread ends when nothing is pending. It stops before its store closes
(`Store.on_close`) and never writes after that: a write already under way finishes
first, an embedding still in flight is thrown away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from engine.embeddings import Embedder
from engine.store import Store
from engine.store import messages as messages_store

log = logging.getLogger(__name__)

BATCH = 32
# The thread starts on what is pending once no step has ended for QUIET seconds, so a burst
# of steps (a chat going back and forth quickly) never shares the CPU with the embedder;
# under a steady stream of steps it starts anyway once work has waited MAX_WAIT.
QUIET = 0.5
MAX_WAIT = 5.0
SYNC_LIMIT = 16  # pending messages a search embeds itself before it runs
MAX_CHARS = 4000  # embedded per message; the embedded model reads 256 tokens anyway


def embed_pending(store: Store, agent_id: int, embedder: Embedder, limit: int = BATCH,
                  write: Callable[[str, list[tuple[int, bytes]]], None] | None = None,
                  read: Callable[[], list[tuple[int, str]]] | None = None) -> int:
    """Embed up to `limit` of the agent's newest messages that have no vector; how many were.

    `read()` finds them and `write(model, rows)` stores the vectors (default: straight
    from and into the store).
    """
    pending = read() if read is not None else messages_store.pending_vectors(store, agent_id, limit)
    if not pending:
        return 0
    vectors = embedder.embed([text[:MAX_CHARS] for _, text in pending])
    blobs = [(mid, np.asarray(v, dtype=np.float32).tobytes()) for (mid, _), v in zip(pending, vectors)]
    if write is None:
        messages_store.put_vectors(store, embedder.name, blobs)
    else:
        write(embedder.name, blobs)
    return len(pending)


class _Stopped(Exception):
    pass


class Indexer:
    """The background embedder of one store: agents are scheduled, a thread drains them."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._wanted: dict[int, Embedder] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a schedule or stop(): the wait starts over
        self._last_schedule = 0.0
        self._waiting_since: float | None = None
        # Held while this thread uses the store (reading what is pending, writing vectors):
        # stop() waits on it, because closing a connection another thread is using crashes.
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        store.on_close.append(self.stop)

    def schedule(self, agent_id: int, embedder: Embedder) -> None:
        with self._lock:
            if self._stopped:
                return
            self._wanted[agent_id] = embedder
            now = time.monotonic()
            self._last_schedule = now
            if self._waiting_since is None:
                self._waiting_since = now
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="recall-index", daemon=True)
                self._thread.start()

    def _next(self) -> tuple[int, Embedder] | None:
        with self._lock:
            while not self._stopped and self._wanted:
                now = time.monotonic()
                due = min(self._last_schedule + QUIET, (self._waiting_since or now) + MAX_WAIT)
                if now >= due:
                    break
                self._changed.wait(due - now)
            if self._stopped or not self._wanted:
                self._thread = None
                self._waiting_since = None
                return None
            agent_id = next(iter(self._wanted))
            return agent_id, self._wanted[agent_id]

    def _drain(self) -> None:
        while (job := self._next()) is not None:
            agent_id, embedder = job
            try:
                done = embed_pending(self._store, agent_id, embedder, write=self._write,
                                     read=lambda: self._read(agent_id))  # noqa: B023 (called at once)
            except _Stopped:
                return
            except Exception as e:  # noqa: BLE001 - a failed batch must not kill the thread; keyword search still works
                log.warning("Recall vectors of agent %s not written (tried again after its next step): %s", agent_id, e)
                done = 0
            if done < BATCH:
                with self._lock:
                    if self._wanted.get(agent_id) is embedder:
                        del self._wanted[agent_id]
                    if not self._wanted:
                        self._waiting_since = None

    def _read(self, agent_id: int) -> list[tuple[int, str]]:
        with self._write_lock:
            if self._stopped:
                raise _Stopped
            return messages_store.pending_vectors(self._store, agent_id, BATCH)

    def _write(self, model: str, rows: list[tuple[int, bytes]]) -> None:
        with self._write_lock:
            if self._stopped:  # the store is closing: these vectors are simply made again next time
                raise _Stopped
            messages_store.put_vectors(self._store, model, rows)

    def stop(self) -> None:
        """No more work, and no use of the store after this returns (an embedding in flight is thrown away).

        It does not wait for an embedding call to end, which for a dead endpoint can
        take its retries; only for a write already under way.
        """
        with self._lock:
            self._stopped = True
            self._changed.notify_all()
        with self._write_lock:
            pass

    def idle(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is pending (for tests and benchmarks); whether it got there."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True


_indexers: dict[int, Indexer] = {}
_indexers_lock = threading.Lock()


def indexer(store: Store) -> Indexer:
    """The store's indexer, made on first use."""
    with _indexers_lock:
        found = _indexers.get(id(store))
        if found is None or found._store is not store:
            found = _indexers[id(store)] = Indexer(store)
            store.on_close.append(lambda: _forget(store))
        return found


def _forget(store: Store) -> None:
    with _indexers_lock:
        if (found := _indexers.get(id(store))) is not None and found._store is store:
            del _indexers[id(store)]


def schedule(store: Store, agent_id: int, embedder: Embedder | None) -> None:
    """Have the agent's pending messages embedded in the background (nothing without an embedder)."""
    if embedder is not None:
        indexer(store).schedule(agent_id, embedder)
