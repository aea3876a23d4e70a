"""Data sources: named collections of passages loaded by the user.

A source records the embedding model and dimension of its passages; attaching
it to an agent with another model or dimension is refused, never mixed.
"""

from __future__ import annotations

import dataclasses

from engine.errors import EmbeddingMismatch, InvalidName, NotFound
from engine.names import check_name
from engine.store import passages
from engine.store.db import Store, now


@dataclasses.dataclass(frozen=True)
class Source:
    id: int
    name: str
    description: str
    embedding_model: str
    embedding_dim: int
    created_at: str


_COLUMNS = "id, name, description, embedding_model, embedding_dim, created_at"


def create(store: Store, name: str, embedding_model: str, embedding_dim: int, description: str = "") -> Source:
    name = check_name(name, "data source")  # as agent names are: it is shown to every visitor
    # One write transaction for the check and the insert: two loads creating the
    # same source at once then meet as InvalidName, never as a raw IntegrityError.
    with store.atomic() as db:
        # Case-folded in Python, not lower() in SQL: SQLite folds ASCII only, so Éva and éva were two
        # sources here and a clash on PostgreSQL's unique index when migrated. Sources are few.
        if any(taken.casefold() == name.casefold() for (taken,) in db.execute("SELECT name FROM sources")):
            raise InvalidName(f"A data source named {name!r} already exists.")
        cursor = db.execute(
            "INSERT INTO sources (name, description, embedding_model, embedding_dim, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [name, description, embedding_model, embedding_dim, now()],
        )
    assert cursor.lastrowid is not None
    return get(store, cursor.lastrowid)


def get(store: Store, source_id: int) -> Source:
    row = store.db.execute(f"SELECT {_COLUMNS} FROM sources WHERE id = ?", [source_id]).fetchone()
    if row is None:
        raise NotFound(f"No data source with id {source_id}.")
    return Source(*row)


def get_by_name(store: Store, name: str) -> Source:
    # lower() folds ASCII only, as SQLite's NOCASE column does; PostgreSQL's unique index is on lower(name).
    row = store.db.execute(f"SELECT {_COLUMNS} FROM sources WHERE lower(name) = lower(?)", [name]).fetchone()
    if row is None:
        raise NotFound(f"No data source named {name!r}.")
    return Source(*row)


def list_all(store: Store) -> list[Source]:
    return [Source(*r) for r in store.db.execute(f"SELECT {_COLUMNS} FROM sources ORDER BY lower(name), id").fetchall()]


def delete(store: Store, source_id: int) -> None:
    get(store, source_id)
    store.db.execute("DELETE FROM sources WHERE id = ?", [source_id])  # its passages cascade
    passages.forget_owner(store, passages.owner_key(source_id=source_id))  # LanceDB is outside the cascade


def attach(store: Store, agent_id: int, source_id: int) -> None:
    source = get(store, source_id)
    row = store.db.execute(
        "SELECT embedding_model, embedding_dim FROM agents WHERE id = ?", [agent_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"No agent with id {agent_id}.")
    model, dim = row
    if (model, dim) != (source.embedding_model, source.embedding_dim):
        raise EmbeddingMismatch(
            f"Source {source.name!r} was embedded with {source.embedding_model} ({source.embedding_dim}-d) "
            f"but the agent uses {model} ({dim}-d); re-load the source with the agent's embedder."
        )
    store.db.execute(
        "INSERT INTO agent_sources (agent_id, source_id, attached_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [agent_id, source_id, now()],
    )


def detach(store: Store, agent_id: int, source_id: int) -> None:
    store.db.execute("DELETE FROM agent_sources WHERE agent_id = ? AND source_id = ?", [agent_id, source_id])


def attached_agents(store: Store, source_id: int) -> list[str]:
    """The names of the agents the source is attached to."""
    rows = store.db.execute(
        "SELECT g.name FROM agents g JOIN agent_sources a ON a.agent_id = g.id WHERE a.source_id = ? "
        "ORDER BY lower(g.name), g.id", [source_id]).fetchall()
    return [r[0] for r in rows]


def attached(store: Store, agent_id: int) -> list[Source]:
    rows = store.db.execute(
        f"SELECT {', '.join('s.' + c for c in _COLUMNS.split(', '))} FROM sources s "
        "JOIN agent_sources a ON a.source_id = s.id WHERE a.agent_id = ? ORDER BY lower(s.name), s.id",
        [agent_id],
    ).fetchall()
    return [Source(*r) for r in rows]
