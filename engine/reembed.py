"""Switching an agent to another embedder: re-embed its passages, never mix dimensions.

All new vectors are computed first (yielding progress as they come); only then,
in one transaction, are the old vectors replaced, the agent's embedding settings
changed, and sources embedded with the old model detached. Interrupting it
changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from engine.config import EmbeddingConfig
from engine.embeddings import Embedder
from engine.errors import EmbeddingMismatch
from engine.store import Store
from engine.store import agents as agents_store
from engine.store import messages as messages_store
from engine.store import passages as passages_store
from engine.store import sources as sources_store

BATCH = 64


@dataclasses.dataclass(frozen=True)
class Progress:
    done: int
    total: int


def reembed_agent(
    store: Store, agent_id: int, embedder: Embedder, config: EmbeddingConfig, batch: int = BATCH
) -> Iterator[Progress]:
    """Re-embed the agent's own passages with `embedder`; yields Progress, last one when switched.

    The agent is held throughout (its turns wait), so no passage can be added
    between reading the passages and switching the embedder.
    """
    if (embedder.name, embedder.dimension) != (config.model, config.dim):
        raise EmbeddingMismatch(
            f"The embedder is {embedder.name} ({embedder.dimension}-d) but the settings say {config.model} ({config.dim}-d)."
        )
    agents_store.get(store, agent_id)  # NotFound for an unknown agent
    with store.hold_agent(agent_id):
        yield from _reembed(store, agent_id, embedder, config, batch)


def _reembed(store: Store, agent_id: int, embedder: Embedder, config: EmbeddingConfig, batch: int) -> Iterator[Progress]:
    rows = store.db.execute(
        "SELECT id, text, embedding_dim FROM passages WHERE agent_id = ? ORDER BY id", [agent_id]
    ).fetchall()
    total = len(rows)
    vectors: list[bytes] = []
    yield Progress(0, total)
    for start in range(0, total, batch):
        chunk = rows[start : start + batch]
        for vector in embedder.embed([r[1] for r in chunk]):
            array = np.asarray(vector, dtype=np.float32)
            if array.shape != (embedder.dimension,):
                raise EmbeddingMismatch(f"{embedder.name} returned a {array.shape} vector.")
            vectors.append(array.tobytes())
        yield Progress(min(start + batch, total), total)
    dim = embedder.dimension
    passages_store.ensure_vec_table(store, dim)
    owner = passages_store.owner_key(agent_id=agent_id)
    old: dict[int, list[int]] = {}
    for pid, _, old_dim in rows:
        old.setdefault(old_dim, []).append(pid)
    with store.atomic() as db:
        for old_dim, pids in old.items():  # one drop per dimension: a LanceDB write is a table version
            passages_store.drop_vectors(store, db, old_dim, pids)
        for (pid, _, _), blob in zip(rows, vectors):
            db.execute(
                "UPDATE passages SET embedding = ?, embedding_model = ?, embedding_dim = ? WHERE id = ?",
                [blob, embedder.name, dim, pid],
            )
        passages_store.put_vectors(store, db, dim, owner, [(pid, blob) for (pid, _, _), blob in zip(rows, vectors)])
        for source in sources_store.attached(store, agent_id):
            if (source.embedding_model, source.embedding_dim) != (embedder.name, dim):
                sources_store.detach(store, agent_id, source.id)
        agents_store.update(
            store, agent_id, embedding_config=dataclasses.asdict(config), embedding_model=embedder.name, embedding_dim=dim
        )
        # Recall vectors of the old model are worthless now; engine/recall_index.py embeds them again.
        messages_store.forget_vectors(store, agent_id)
