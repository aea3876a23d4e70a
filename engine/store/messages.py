"""Recall memory on disk: every message an agent ever exchanged.

Messages are stored as they are sent to the LLM (`content`, `tool_calls`), plus a
plain `text` for search (the user's words without the JSON packaging, say), which
an external-content FTS5 index follows through triggers. `in_context` marks the
messages currently in the agent's window; summarization clears it but never
deletes, so recall search still finds them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from engine.store import fts, pg_search
from engine.store.db import Store, now

ROLES = ("system", "user", "assistant", "tool")


@dataclasses.dataclass(frozen=True)
class Message:
    id: int
    agent_id: int
    role: str
    content: str | None
    name: str | None
    tool_calls: list[dict[str, Any]] | None
    tool_call_id: str | None
    text: str
    in_context: bool
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Message:
        return cls(
            id=row["id"],
            agent_id=row["agent_id"],
            role=row["role"],
            content=row["content"],
            name=row["name"],
            tool_calls=json.loads(row["tool_calls"]) if row["tool_calls"] else None,
            tool_call_id=row["tool_call_id"],
            text=row["text"],
            in_context=bool(row["in_context"]),
            created_at=row["created_at"],
        )


_COLUMNS = "id, agent_id, role, content, name, tool_calls, tool_call_id, text, in_context, created_at"


def add(
    store: Store,
    agent_id: int,
    role: str,
    content: str | None,
    *,
    text: str | None = None,
    name: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_call_id: str | None = None,
    in_context: bool = True,
    created_at: str | None = None,
) -> Message:
    """Persist one message (committed before this returns, unless inside a transaction)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    row = {
        "agent_id": agent_id,
        "role": role,
        "content": content,
        "name": name,
        "tool_calls": json.dumps(tool_calls) if tool_calls else None,
        "tool_call_id": tool_call_id,
        "text": text if text is not None else (content or ""),
        "in_context": int(in_context),
        "created_at": created_at or now(),
    }
    cursor = store.db.execute(
        f"INSERT INTO messages ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        list(row.values()),
    )
    return Message.from_row({"id": cursor.lastrowid, **row})


def get(store: Store, message_id: int) -> Message | None:
    row = store.db.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", [message_id]).fetchone()
    return _from_tuple(row) if row else None


def _from_tuple(row: tuple) -> Message:
    return Message.from_row(dict(zip(_COLUMNS.split(", "), row)))


def list_messages(
    store: Store, agent_id: int, *, in_context: bool | None = None, last: int | None = None
) -> list[Message]:
    """An agent's messages, oldest first; `last` keeps only the newest N."""
    where = "agent_id = ?"
    params: list[Any] = [agent_id]
    if in_context is not None:
        where += " AND in_context = ?"
        params.append(int(in_context))
    if last is not None:
        sql = f"SELECT * FROM (SELECT {_COLUMNS} FROM messages WHERE {where} ORDER BY id DESC LIMIT ?) ORDER BY id"
        params.append(last)
    else:
        sql = f"SELECT {_COLUMNS} FROM messages WHERE {where} ORDER BY id"
    return [_from_tuple(r) for r in store.db.execute(sql, params).fetchall()]


def count(store: Store, agent_id: int) -> int:
    """How many messages recall memory holds for the agent (system messages aside)."""
    row = store.db.execute("SELECT n FROM message_counts WHERE agent_id = ?", [agent_id]).fetchone()
    return row[0] if row else 0


def set_in_context(store: Store, message_ids: list[int], in_context: bool) -> None:
    with store.atomic() as db:
        db.conn.executemany(
            "UPDATE messages SET in_context = ? WHERE id = ?",
            [(int(in_context), mid) for mid in message_ids],
        )


def update(store: Store, message_id: int, **fields: Any) -> None:
    """Change content, tool_calls or text of a stored message (rethink / rewrite)."""
    allowed = {"content", "tool_calls", "text", "in_context"}
    if set(fields) - allowed:
        raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
    if "tool_calls" in fields and fields["tool_calls"] is not None:
        fields["tool_calls"] = json.dumps(fields["tool_calls"])
    sets = ", ".join(f"{k} = ?" for k in fields)
    store.db.execute(f"UPDATE messages SET {sets} WHERE id = ?", [*fields.values(), message_id])


def delete(store: Store, message_ids: list[int]) -> None:
    with store.atomic() as db:
        db.conn.executemany("DELETE FROM messages WHERE id = ?", [(mid,) for mid in message_ids])


def search_text(
    store: Store, agent_id: int, query: str, offset: int, limit: int
) -> tuple[list[Message], int]:
    """Messages matching `query`, best first, and the total number of matches.

    A message matches when it holds every word of the query; when none holds them
    all, any word will do. An empty query (no words) matches every message.
    """
    words = fts.terms(query)
    db = store.db
    if not words:
        total = count(store, agent_id)
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE agent_id = ? AND role != 'system' "
            "ORDER BY id LIMIT ? OFFSET ?",
            [agent_id, limit, offset],
        ).fetchall()
        return [_from_tuple(r) for r in rows], total
    cols = ", ".join(f"m.{c}" for c in _COLUMNS.split(", "))
    if store.dialect == "postgres":
        found, total = pg_search.search_messages(store, agent_id, words, offset, limit, cols)
        return [_from_tuple(r) for r in found], total
    for expression in (fts.match_all(words), fts.match_any(words)):
        base = (
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "WHERE messages_fts MATCH ? AND m.agent_id = ? AND m.role != 'system'"
        )
        total = db.execute(f"SELECT count(*) {base}", [expression, agent_id]).fetchone()[0]
        if total or len(words) == 1:
            break
    rows = db.execute(
        f"SELECT {cols} {base} ORDER BY messages_fts.rank, m.id LIMIT ? OFFSET ?",
        [expression, agent_id, limit, offset],
    ).fetchall()
    return [_from_tuple(r) for r in rows], total


def search_date(
    store: Store, agent_id: int, start: str, end_exclusive: str, offset: int, limit: int
) -> tuple[list[Message], int]:
    """Messages with start <= created_at < end_exclusive (ISO strings), oldest first."""
    where = "agent_id = ? AND role != 'system' AND created_at >= ? AND created_at < ?"
    params = [agent_id, start, end_exclusive]
    db = store.db
    total = db.execute(f"SELECT count(*) FROM messages WHERE {where}", params).fetchone()[0]
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM messages WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [_from_tuple(r) for r in rows], total
