"""1-bit vectors of each owner's passages held in memory, for approximate archival search on SQLite.

Above `passages.EXACT_LIMIT` passages an archival search first picks candidates by
the Hamming distance of 1-bit quantized vectors, then rescores them exactly from the
floats. sqlite-vec's bit KNN reads its vec0 chunks row by row (30 ms at 100k
vectors); the same scan in numpy over an array already in memory takes ~4 ms, so
a search can afford several times more candidates and still beat a brute-force
float scan (docs/benchmarks.md).

The array of an owner (`a<agent id>` or `s<source id>`) is built on its first
search from `vec_quantize_binary(embedding)` of its passages and kept up to date
by what migration m007 records in `passage_counts`:
- `n`, the owner's passage count (inserts add to it);
- `changes`, a value from a database-wide counter (which also moves when an owner
  is deleted) taken when the owner's row is created and whenever one of its
  passages is deleted or gets a new embedding.
A cached array whose `changes` still matches only lacks the passages inserted
since: those with an id above the largest it holds (ids only grow while that row
exists). Anything else rebuilds it. Nothing here can return another owner's
passage: the caller rescores candidates with a query filtered by owner.

Memory: (dim/8 + 8) bytes per passage, 56 bytes at 384 dimensions (5.6 MB per
100k passages); arrays beyond `BUDGET_BYTES` in all are dropped least recently
used first.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

import numpy as np

BUDGET_BYTES = 256 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class _Bits:
    changes: int
    count: int
    ids: np.ndarray  # int64, ascending
    words: np.ndarray  # (words per vector, n): word i of every vector side by side (see _columns)

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.words.nbytes


def _words(bits: np.ndarray) -> np.ndarray:
    """Bit vectors (..., dim / 8 bytes) as 64-bit words when they divide evenly (6 a vector at 384-d), else bytes."""
    return bits.view(np.uint64) if bits.shape[-1] % 8 == 0 else bits


def _columns(bits: np.ndarray) -> np.ndarray:
    """(n, dim / 8) bit vectors stored word-major, (words, n).

    The Hamming scan then runs over a few long contiguous rows instead of summing
    6 words in each of n short ones: 3.5x faster at 100k vectors (2.6 ms against
    9.3 ms, docs/benchmarks.md).
    """
    return np.ascontiguousarray(_words(bits).T)


def _owner_column(owner: str) -> tuple[str, int]:
    return ("agent_id" if owner[0] == "a" else "source_id"), int(owner[1:])


class BitIndex:
    """The in-memory bit arrays of one store (one per store, shared by its threads)."""

    def __init__(self, budget_bytes: int = BUDGET_BYTES):
        self._arrays: OrderedDict[tuple[int, str], _Bits] = OrderedDict()
        self._lock = threading.Lock()
        self._budget = budget_bytes

    def _state(self, db, owner: str) -> tuple[int, int] | None:
        row = db.execute("SELECT changes, n FROM passage_counts WHERE owner = ?", [owner]).fetchone()
        return (row[0], row[1]) if row else None

    def _rows(self, db, owner: str, dim: int, after: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, words) of the owner's passages above id `after`, words as `_columns` lays them out."""
        column, value = _owner_column(owner)
        rows = db.execute(
            f"SELECT id, vec_quantize_binary(embedding) FROM passages "
            f"WHERE {column} = ? AND embedding_dim = ? AND id > ? ORDER BY id",
            [value, dim, after],
        ).fetchall()
        width = dim // 8
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        bits = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(len(rows), width)
        return ids, _columns(bits)

    def _current(self, db, owner: str, dim: int) -> _Bits | None:
        """The owner's array as the database now holds it, or None if it changed while being read."""
        key = (dim, owner)
        state = self._state(db, owner)
        if state is None:
            with self._lock:
                self._arrays.pop(key, None)
            return _Bits(0, 0, np.empty(0, np.int64), _columns(np.empty((0, dim // 8), np.uint8)))
        changes, count = state
        with self._lock:
            cached = self._arrays.get(key)
        if cached is not None and cached.changes == changes and cached.count == count:
            with self._lock:
                if key in self._arrays:
                    self._arrays.move_to_end(key)
            return cached
        if cached is not None and cached.changes == changes and cached.count < count:
            after = int(cached.ids[-1]) if len(cached.ids) else 0
            ids, words = self._rows(db, owner, dim, after)
            fresh = _Bits(changes, count, np.concatenate([cached.ids, ids]),
                          np.concatenate([cached.words, words], axis=1))
        else:
            ids, words = self._rows(db, owner, dim, 0)
            fresh = _Bits(changes, count, ids, words)
        # Read without a transaction: the state must be the same after the rows as before them.
        # (`count` includes passages of another dimension, so it is compared, not the rows' number.)
        if self._state(db, owner) != state:
            return None
        with self._lock:
            self._arrays[key] = fresh
            self._arrays.move_to_end(key)
            used = sum(a.nbytes for a in self._arrays.values())
            while used > self._budget and len(self._arrays) > 1:
                _, dropped = self._arrays.popitem(last=False)
                used -= dropped.nbytes
        return fresh

    def candidates(self, db, owner: str, dim: int, query_bits: bytes, count: int) -> list[int] | None:
        """Ids of the `count` passages of `owner` nearest `query_bits` in Hamming distance.

        None when the owner's passages kept changing while being read: the caller
        falls back to sqlite-vec's own bit search.
        """
        array = self._current(db, owner, dim) or self._current(db, owner, dim)
        if array is None:
            return None
        if len(array.ids) == 0:
            return []
        words, query = array.words, _words(np.frombuffer(query_bits, dtype=np.uint8))
        # Word by word into one running sum, reusing two scratch rows: no (words, n) temporaries.
        distance = np.zeros(len(array.ids), dtype=np.uint16 if dim < 2**16 else np.uint32)
        xor, ones = np.empty_like(words[0]), np.empty(len(array.ids), dtype=np.uint8)
        for row, word in zip(words, query):
            np.bitwise_xor(row, word, out=xor)
            np.add(distance, np.bitwise_count(xor, out=ones), out=distance)
        if count < len(distance):
            picked = np.argpartition(distance, count)[:count]
        else:
            picked = np.arange(len(distance))
        return array.ids[picked].tolist()

    def clear(self) -> None:
        with self._lock:
            self._arrays.clear()
