"""Archival vectors in a LanceDB directory (`archival_storage: lancedb`, as in MemGPT 0.2).

Only the vectors move here. Passage rows, their float32 blobs, full-text search,
counts, sources and agents stay in the main store, so keyword search, export,
re-embedding and dedup work unchanged; `passages.py` hands its four vector calls
(ensure, put, drop, search) to a store's `vectors` when it has one.

One table per dimension, `passages_<dim>` (id int64, owner string, vector
fixed_size_list<float32>[dim]), searched exactly (flat, cosine). Measured on a
2-CPU box at 384-d through `passages.vector_search`: 10 ms at 1k vectors (mostly
LanceDB's fixed cost per query), 19 ms at 10k, 115-135 ms at 100k (sqlite-vec:
1, 5 and 13-16 ms, approximate above its EXACT_LIMIT). A BITMAP index on owner
was 5x faster for an owner holding 0.5% of 100k rows but 2x slower for one
holding 20%, and an IVF index trades recall under the owner prefilter, so
there is no index.

LanceDB and the main store do not share transactions, so this side tolerates
drift instead of preventing it: `put` upserts by id (SQLite reuses the highest
id after a delete or a rolled-back insert), `passages.vector_search` drops ids
the main store no longer holds for that owner and dimension, and
`passages.sync_vectors` (run when the store opens) puts back vectors a crash
lost and removes leftovers.

Every LanceDB write is a new table version and a new small file; searching
1,000 single-row fragments took 340 ms against 19 ms once compacted, so a
table is compacted (`optimize`). Compaction rewrites the whole table while it is
under LanceDB's 1M-row fragment target (0.7-1.2 s at 100k 384-d rows), and 100
small fragments did not measurably slow a search at that size, so it runs every
COMPACT_EVERY writes or every rows/COMPACT_SHARE writes, whichever is rarer:
about 10 ms a write amortized, at any size.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError

log = logging.getLogger(__name__)

OWNER = re.compile(r"[as][0-9]+")  # passages.owner_key: `a<agent id>` or `s<source id>`, nothing else
COMPACT_EVERY = 64  # writes to a table between compactions, at least...
COMPACT_SHARE = 1000  # ...and at least one per this many rows (see the module docstring)
DELETE_BATCH = 1000  # ids per `id IN (...)` filter


def _owner(owner: str) -> str:
    """`owner` quoted for a LanceDB filter; only our own keys pass, so nothing else is ever interpolated."""
    if not isinstance(owner, str) or not OWNER.fullmatch(owner):
        raise ValueError(f"not an archival owner key: {owner!r}")
    return f"'{owner}'"


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)


class LanceVectors:
    """The vectors of archival passages, one LanceDB table per dimension, under `directory`."""

    def __init__(self, directory: str | Path):
        try:
            import lancedb
            import pyarrow
        except ImportError as e:
            raise ConfigError(
                "archival_storage: lancedb needs the lancedb package: pip install 'lancedb>=0.40' "
                "(or pip install '.[lancedb]' from the checkout)."
            ) from e
        self._pa = pyarrow
        self.path = Path(directory).expanduser()
        self.path.mkdir(parents=True, exist_ok=True)
        # Zero: every read sees what another process (a CLI load next to the web app) wrote.
        self._db = lancedb.connect(str(self.path), read_consistency_interval=dt.timedelta(0))
        self._tables: dict[int, Any] = {}
        self._writes: dict[int, int] = {}
        self._lock = threading.Lock()  # LanceDB commits are optimistic; one writer per process avoids retries

    def describe(self) -> str:
        return f"LanceDB at {self.path}"

    def _schema(self, dim: int):
        pa = self._pa
        return pa.schema([
            pa.field("id", pa.int64(), nullable=False),
            pa.field("owner", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), int(dim)), nullable=False),
        ])

    def _table(self, dim: int, create: bool = False):
        """The table for `dim`, or None when it does not exist (and `create` is false)."""
        table = self._tables.get(dim)
        if table is None:
            try:
                table = self._db.open_table(f"passages_{int(dim)}")
            except ValueError:  # "Table ... was not found"; another process may make it later, so not cached
                if not create:
                    return None
                table = self._db.create_table(f"passages_{int(dim)}", schema=self._schema(dim), exist_ok=True)
            self._tables[dim] = table
        return table

    def dimensions(self) -> list[int]:
        names = self._db.list_tables().tables
        return sorted(int(n.split("_", 1)[1]) for n in names if re.fullmatch(r"passages_[0-9]+", n))

    def ensure(self, dim: int) -> None:
        with self._lock:
            self._table(dim, create=True)

    def _wrote(self, dim: int, table) -> None:
        """Count a write (under the lock); compact when due (a failure only delays it)."""
        self._writes[dim] = self._writes.get(dim, 0) + 1
        if self._writes[dim] < COMPACT_EVERY or self._writes[dim] < table.count_rows() // COMPACT_SHARE:
            return
        self._writes[dim] = 0
        try:
            table.optimize()  # also prunes versions older than LanceDB's default week
        except Exception as e:  # noqa: BLE001 - compaction is housekeeping, never the caller's failure
            log.warning("LanceDB compaction of passages_%d failed: %s", dim, e)

    def put(self, dim: int, owner: str, rows: list[tuple[int, bytes]]) -> None:
        """Add or replace (passage id, float32 blob) rows of one owner."""
        _owner(owner)
        if not rows:
            return
        pa = self._pa
        flat = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32)
        if flat.size != len(rows) * dim:
            raise ValueError(f"expected {dim}-d float32 vectors")
        data = pa.table(
            {
                "id": pa.array([int(pid) for pid, _ in rows], pa.int64()),
                "owner": pa.array([owner] * len(rows), pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), int(dim)),
            },
            schema=self._schema(dim),
        )
        with self._lock:
            table = self._table(dim, create=True)
            # An upsert, not an append: an id can come back (see the module docstring).
            table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data)
            self._wrote(dim, table)

    def drop(self, dim: int, ids: list[int]) -> None:
        ids = list(ids)
        with self._lock:
            table = self._table(dim)
            if table is None or not ids:
                return
            for start in range(0, len(ids), DELETE_BATCH):
                table.delete(f"id IN ({_ids(ids[start:start + DELETE_BATCH])})")
            self._wrote(dim, table)

    def drop_owner(self, owner: str) -> None:
        """Every vector of an agent or a data source, in every dimension (the owner is being deleted)."""
        where = f"owner = {_owner(owner)}"
        with self._lock:
            for dim in self.dimensions():
                table = self._table(dim)
                if table is not None:
                    table.delete(where)
                    self._wrote(dim, table)

    def count(self, dim: int) -> int:
        table = self._table(dim)
        return 0 if table is None else table.count_rows()

    def ids(self, dim: int) -> set[int]:
        table = self._table(dim)
        if table is None:
            return set()
        # A plain query reads the id column only (whole rows: 10x slower at 100k 384-d vectors).
        return set(table.search().select(["id"]).limit(None).to_arrow().column("id").to_pylist())

    def search(self, dim: int, owners: list[str], query: bytes, k: int) -> list[tuple[int, float]]:
        """(id, cosine distance) of the k nearest vectors among `owners`, nearest first."""
        table = self._table(dim)
        if table is None or k <= 0 or not owners:
            return []
        where = f"owner IN ({', '.join(_owner(o) for o in owners)})"
        vector = np.frombuffer(query, dtype=np.float32)
        result = (
            table.search(vector, vector_column_name="vector")
            .distance_type("cosine")
            .where(where, prefilter=True)  # filter first: never k neighbours of which none are visible
            .limit(int(k))
            .select(["id", "_distance"])
            .to_arrow()
        )
        found = [(int(i), float(d)) for i, d in zip(result.column("id").to_pylist(), result.column("_distance").to_pylist())]
        found.sort(key=lambda item: (item[1], item[0]))  # ties in id order, as the SQL tables return them
        return found
