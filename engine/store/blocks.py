"""Core memory blocks and the history of every edit made to them.

A block's value and the edit that produced it are written in one transaction,
so the history always explains the current value and any edit can be reverted.
A removed block keeps its row, marked `removed_at`, because its edits reference
it (and cascade with it): the removal is itself an edit, and adding the label
again brings the same row back, history and all.
"""

from __future__ import annotations

import dataclasses

from engine.errors import NotFound
from engine.store.db import Store, now

ACTORS = ("agent", "user", "system")


@dataclasses.dataclass(frozen=True)
class Block:
    id: int
    agent_id: int
    label: str
    value: str
    limit: int
    position: int
    updated_at: str


@dataclasses.dataclass(frozen=True)
class Edit:
    id: int
    block_id: int
    agent_id: int
    label: str
    actor: str
    cause: str
    old_value: str
    new_value: str
    created_at: str


_BLOCK_COLUMNS = "id, agent_id, label, value, char_limit, position, updated_at"
_EDIT_COLUMNS = "id, block_id, agent_id, label, actor, cause, old_value, new_value, created_at"


def _block(row: tuple) -> Block:
    return Block(*row)


def list_blocks(store: Store, agent_id: int) -> list[Block]:
    rows = store.db.execute(
        f"SELECT {_BLOCK_COLUMNS} FROM memory_blocks WHERE agent_id = ? AND removed_at IS NULL "
        "ORDER BY position, id",
        [agent_id],
    ).fetchall()
    return [_block(r) for r in rows]


def get(store: Store, agent_id: int, label: str) -> Block:
    row = store.db.execute(
        f"SELECT {_BLOCK_COLUMNS} FROM memory_blocks WHERE agent_id = ? AND label = ? AND removed_at IS NULL",
        [agent_id, label],
    ).fetchone()
    if row is None:
        raise NotFound(f"No memory block {label!r}.")
    return _block(row)


def list_removed(store: Store, agent_id: int) -> list[tuple[Block, str]]:
    """The agent's removed blocks as they were when removed, each with its `removed_at`."""
    rows = store.db.execute(
        f"SELECT {_BLOCK_COLUMNS}, removed_at FROM memory_blocks WHERE agent_id = ? AND removed_at IS NOT NULL "
        "ORDER BY id",
        [agent_id],
    ).fetchall()
    return [(_block(r[:-1]), r[-1]) for r in rows]


def removed_labels(store: Store, agent_id: int) -> list[str]:
    """Labels of the agent's removed blocks (their history is still there)."""
    rows = store.db.execute(
        "SELECT label FROM memory_blocks WHERE agent_id = ? AND removed_at IS NOT NULL ORDER BY id", [agent_id]
    ).fetchall()
    return [r[0] for r in rows]


def add(store: Store, agent_id: int, label: str, value: str, limit: int, actor: str, cause: str) -> Block:
    """Create a block (or bring back a removed one of that label); this is an entry of its history."""
    with store.atomic() as db:
        position = db.execute(
            "SELECT coalesce(max(position) + 1, 0) FROM memory_blocks WHERE agent_id = ? AND removed_at IS NULL",
            [agent_id],
        ).fetchone()[0]
        stamp = now()
        removed = db.execute(
            "SELECT id FROM memory_blocks WHERE agent_id = ? AND label = ? AND removed_at IS NOT NULL",
            [agent_id, label],
        ).fetchone()
        if removed is not None:
            block_id = removed[0]
            db.execute(
                "UPDATE memory_blocks SET value = ?, char_limit = ?, position = ?, updated_at = ?, removed_at = NULL "
                "WHERE id = ?",
                [value, limit, position, stamp, block_id],
            )
        else:
            cursor = db.execute(
                "INSERT INTO memory_blocks (agent_id, label, value, char_limit, position, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [agent_id, label, value, limit, position, stamp],
            )
            block_id = cursor.lastrowid
        _record(db, block_id, agent_id, label, actor, cause, "", value, stamp)
    return get(store, agent_id, label)


def remove(store: Store, block: Block, actor: str, cause: str) -> None:
    """Take a block out of core memory; the removal is recorded as an edit that empties it."""
    stamp = now()
    with store.atomic() as db:
        current = db.execute(
            "SELECT value FROM memory_blocks WHERE id = ? AND removed_at IS NULL", [block.id]
        ).fetchone()
        if current is None:
            raise NotFound(f"No memory block {block.label!r}.")
        db.execute("UPDATE memory_blocks SET removed_at = ?, updated_at = ? WHERE id = ?", [stamp, stamp, block.id])
        _record(db, block.id, block.agent_id, block.label, actor, cause, current[0], "", stamp)


def set_value(store: Store, block: Block, new_value: str, actor: str, cause: str) -> Block:
    """Write a block's new value and the edit record together."""
    if actor not in ACTORS:
        raise ValueError(f"unknown actor {actor!r}")
    stamp = now()
    with store.atomic() as db:
        current = db.execute("SELECT value FROM memory_blocks WHERE id = ?", [block.id]).fetchone()
        if current is None:
            raise NotFound(f"No memory block {block.label!r}.")
        db.execute(
            "UPDATE memory_blocks SET value = ?, updated_at = ? WHERE id = ?",
            [new_value, stamp, block.id],
        )
        _record(db, block.id, block.agent_id, block.label, actor, cause, current[0], new_value, stamp)
    return get(store, block.agent_id, block.label)


def set_limit(store: Store, block: Block, limit: int, actor: str = "user") -> Block:
    """Change a block's limit; recorded as an edit (the text unchanged) so the history shows when and who."""
    stamp = now()
    with store.atomic() as db:
        db.execute("UPDATE memory_blocks SET char_limit = ?, updated_at = ? WHERE id = ?", [limit, stamp, block.id])
        _record(db, block.id, block.agent_id, block.label, actor, f"limit {block.limit} → {limit}",
                block.value, block.value, stamp)
    return get(store, block.agent_id, block.label)


def _record(db, block_id, agent_id, label, actor, cause, old, new, stamp) -> None:
    db.execute(
        "INSERT INTO memory_edits (block_id, agent_id, label, actor, cause, old_value, new_value, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [block_id, agent_id, label, actor, cause, old, new, stamp],
    )


def history(store: Store, agent_id: int, label: str | None = None) -> list[Edit]:
    """Edits, newest first; all blocks of the agent unless `label` is given."""
    sql = f"SELECT {_EDIT_COLUMNS} FROM memory_edits WHERE agent_id = ?"
    params: list = [agent_id]
    if label is not None:
        sql += " AND label = ?"
        params.append(label)
    rows = store.db.execute(sql + " ORDER BY id DESC", params).fetchall()
    return [Edit(*r) for r in rows]


def get_edit(store: Store, agent_id: int, edit_id: int) -> Edit:
    row = store.db.execute(
        f"SELECT {_EDIT_COLUMNS} FROM memory_edits WHERE agent_id = ? AND id = ?", [agent_id, edit_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"No memory edit #{edit_id}.")
    return Edit(*row)


def last_modified(store: Store, agent_id: int) -> str | None:
    return store.db.execute(
        "SELECT max(updated_at) FROM memory_blocks WHERE agent_id = ?", [agent_id]  # a removal counts too
    ).fetchone()[0]
