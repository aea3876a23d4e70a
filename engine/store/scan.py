"""Exact nearest neighbours by reading float blobs: for searches the vector indexes cannot answer.

A time-filtered archival search and every recall search read (id, float32 blob) rows
from the database a block at a time and score them in numpy. Exact, bounded in
memory by the block size, and fast enough for the spans these searches cover
(docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np

BLOCK = 4096  # rows scored per numpy block


def distances(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine distances of the rows of `matrix` to `query` (a zero vector is at distance 1)."""
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
    norms[norms == 0] = 1.0
    return 1.0 - (matrix @ query) / norms


def nearest(cursor, query: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k (id, cosine distance) rows of `cursor` nearest to `query`, nearest first.

    `cursor` yields (id, blob) rows through `fetchmany`; blobs of another dimension
    than the query's are skipped (an embedder changed under old rows).
    """
    best: list[tuple[int, float]] = []
    width = query.shape[0] * 4
    while rows := cursor.fetchmany(BLOCK):
        rows = [(r[0], bytes(r[1])) for r in rows if r[1] is not None and len(r[1]) == width]
        if not rows:
            continue
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), -1)
        best.extend(zip((pid for pid, _ in rows), distances(matrix, query).tolist()))
        best.sort(key=lambda item: (item[1], item[0]))
        del best[k:]
    return best
