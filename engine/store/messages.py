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

import numpy as np

from engine.store import fts, pg_search, scan
from engine.store.db import Store, now

ROLES = ("system", "user", "assistant", "tool")
SEARCHABLE_ROLES = ("user", "assistant")  # what people said and the agent thought or said; not tool output
_SEARCHABLE = "m.role IN ('user', 'assistant') AND m.text <> ''"


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
    if "text" in fields:  # the old vector no longer says what the message does; it is embedded again
        sets += ", embedding = NULL, embedding_model = NULL"
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
    # CROSS JOIN keeps the full-text index the outer loop: left to itself, SQLite's planner walked
    # the agent's messages and ran the MATCH once per message (0.2 s a search at 1,000 messages).
    for expression in (fts.match_all(words), fts.match_any(words)):
        base = (
            "FROM messages_fts CROSS JOIN messages m ON m.id = messages_fts.rowid "
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


# --- vectors (hybrid recall search) ----------------------------------------------------------
#
# A message's vector is written after the fact by engine/recall_index.py, never while a
# step runs; until then keyword search finds it. `embedding_model` records which
# embedder made it, so a search only compares vectors of the agent's current model.


def pending_vectors(store: Store, agent_id: int, limit: int) -> list[tuple[int, str]]:
    """(id, text) of the agent's searchable messages with no vector yet, newest first."""
    rows = store.db.execute(
        f"SELECT m.id, m.text FROM messages m WHERE m.agent_id = ? AND m.embedding IS NULL AND {_SEARCHABLE} "
        "ORDER BY m.id DESC LIMIT ?",
        [agent_id, limit],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def put_vectors(store: Store, model: str, rows: list[tuple[int, bytes]]) -> None:
    """Store (message id, float32 blob) vectors made by `model`."""
    with store.atomic() as db:
        db.conn.executemany(
            "UPDATE messages SET embedding = ?, embedding_model = ? WHERE id = ?",
            [(blob, model, mid) for mid, blob in rows],
        )


def forget_vectors(store: Store, agent_id: int, message_id: int | None = None) -> None:
    """Drop vectors (of one message, or all of the agent's) so they are embedded again."""
    where, params = "agent_id = ?", [agent_id]
    if message_id is not None:
        where, params = where + " AND id = ?", params + [message_id]
    store.db.execute(f"UPDATE messages SET embedding = NULL, embedding_model = NULL WHERE {where}", params)


def _time_clause(since: str | None, until: str | None) -> tuple[str, list[str]]:
    clause, params = "", []  # type: tuple[str, list[str]]
    if since is not None:
        clause, params = clause + " AND m.created_at >= ?", params + [since]
    if until is not None:
        clause, params = clause + " AND m.created_at < ?", params + [until]
    return clause, params


def vector_search(store: Store, agent_id: int, model: str, query_vector, k: int, *, since: str | None = None,
                  until: str | None = None) -> list[tuple[int, float]]:
    """The k searchable messages nearest to `query_vector` (in [since, until)), as (id, cosine distance)."""
    if k <= 0:
        return []
    where, params = _time_clause(since, until)
    cursor = store.db.execute(
        f"SELECT m.id, m.embedding FROM messages m WHERE m.agent_id = ? AND m.embedding_model = ? AND {_SEARCHABLE}"
        f"{where}",
        [agent_id, model, *params],
    )
    return scan.nearest(cursor, np.asarray(query_vector, dtype=np.float32), k)


def keyword_scored(store: Store, agent_id: int, words: list[str], limit: int, *, since: str | None = None,
                   until: str | None = None) -> list[tuple[int, float]]:
    """(id, score) of searchable messages holding any of `words` (in [since, until)), best first."""
    if not words or limit <= 0:
        return []
    where, params = _time_clause(since, until)
    if store.dialect == "postgres":
        return pg_search.keyword_messages(store, agent_id, words, limit, f"{_SEARCHABLE}{where}", params)
    rows = store.db.execute(
        "SELECT m.id, messages_fts.rank FROM messages_fts CROSS JOIN messages m ON m.id = messages_fts.rowid "
        f"WHERE messages_fts MATCH ? AND m.agent_id = ? AND {_SEARCHABLE}{where} "
        "ORDER BY messages_fts.rank, m.id LIMIT ?",
        [fts.match_any(words), agent_id, *params, limit],
    ).fetchall()
    return [(r[0], -float(r[1])) for r in rows]  # FTS5's rank is BM25 negated


def term_counts(store: Store, words: list[str], *, rows_up_to: int = 0) -> fts.TermCounts:
    """(how many messages hold each of `words`, messages stored): term_stats' totals, read on their own;
    with `rows_up_to`, also the messages holding each word held by at most that many."""
    return fts.store_term_counts(store, "messages", "message_counts", words, rows_up_to=rows_up_to)


def term_stats(store: Store, ids: list[int], words: list[str], counts: fts.TermCounts | None = None
               ) -> tuple[dict[int, frozenset[str]], dict[str, int], int]:
    """(which of `words` each message of `ids` holds, how many messages hold each word, messages stored).

    "Messages stored" is recall memory's kept count (system messages aside): close
    enough to the number of indexed texts for an IDF, and read in one row. `counts`
    gives the totals when term_counts read them already.
    """
    return fts.store_term_stats(store, "messages", "message_counts", ids, words, counts)


NEIGHBOUR_REACH = 4  # rows looked at each side: tool results and heartbeats sit between two turns


def neighbours(store: Store, agent_id: int, ids: list[int]) -> dict[int, tuple[int | None, int | None]]:
    """For each message, (the searchable message before it, the one after it) among the next few rows."""
    if not ids:
        return {}
    wanted = sorted({i + d for i in ids for d in range(-NEIGHBOUR_REACH, NEIGHBOUR_REACH + 1)})
    searchable: set[int] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        rows = store.db.execute(
            f"SELECT m.id FROM messages m WHERE m.agent_id = ? AND {_SEARCHABLE} "
            f"AND m.id IN ({','.join('?' * len(chunk))})",
            [agent_id, *chunk],
        ).fetchall()
        searchable.update(r[0] for r in rows)

    def first(candidates: range) -> int | None:
        return next((n for n in candidates if n in searchable), None)

    return {
        i: (first(range(i - 1, i - NEIGHBOUR_REACH - 1, -1)), first(range(i + 1, i + NEIGHBOUR_REACH + 1)))
        for i in ids
    }


def fetch(store: Store, ids: list[int]) -> dict[int, Message]:
    if not ids:
        return {}
    found: dict[int, Message] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        rows = store.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ).fetchall()
        found.update((r[0], _from_tuple(r)) for r in rows)
    return found
