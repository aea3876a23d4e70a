"""Moving one agent between stores as one JSON file (export / import).

The file holds everything the agent owns: its row (preset, prompt, functions,
model and embedding settings), its core memory blocks with their full edit
history, every message with its `in_context` flag, its own archival passages
with their vectors (base64 of the float32 bytes, so they come back bit for
bit), its LLM usage records, and the names of the data sources attached to it.
Sources themselves are shared data and are not copied: on import they are
re-attached by name when this store has them.

Import always creates a NEW agent (the name gets " (2)", " (3)"... when taken)
in one transaction, so a bad file leaves nothing behind and importing twice
gives two whole agents. Row ids are remapped; tool-call ids inside messages are
kept, since they pair calls with their results.

Restoring rows exactly as recorded (timestamps, edit history) is something the
store modules' "add now" functions do not offer, so the few inserts that need
it are written here, inside the same transaction.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import MemGPTError
from engine.store import Store, now
from engine.store import agents as agents_store
from engine.store import blocks as blocks_store
from engine.store import messages as messages_store
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from engine.store.agents import AgentRow

FORMAT = "memgpt-agent"
VERSION = 1
_AGENT_FIELDS = ("name", "preset", "system_prompt", "functions", "persona", "human", "llm_config",
                 "embedding_config", "embedding_model", "embedding_dim", "created_at", "updated_at",
                 "memory_warning")
# Like engine.agents' rule, plus the parentheses of the " (2)" suffix imports add.
_IMPORTED_NAME = re.compile(r"^[\w][\w .\-()]{0,63}$", re.UNICODE)


class TransferError(MemGPTError):
    """An export file that cannot be read or does not describe an agent."""


@dataclasses.dataclass(frozen=True)
class ImportResult:
    agent: AgentRow
    attached: list[str]
    missing_sources: list[str]  # attached where exported, absent (or incompatible) here
    counts: dict[str, int]


# ---------------------------------------------------------------- export

def dump_agent(store: Store, agent_id: int) -> dict[str, Any]:
    """Everything agent `agent_id` owns, as a JSON-ready dict."""
    row = agents_store.get(store, agent_id)
    agent = {f: getattr(row, f) for f in _AGENT_FIELDS}
    # `seq` orders edits across blocks, which timestamps alone cannot (two blocks made in one ms).
    edits: dict[int, list[dict[str, Any]]] = {}
    for seq, e in enumerate(reversed(blocks_store.history(store, agent_id))):
        edits.setdefault(e.block_id, []).append({
            "seq": seq, "actor": e.actor, "cause": e.cause, "old_value": e.old_value, "new_value": e.new_value,
            "created_at": e.created_at,
        })
    blocks = [
        {"label": b.label, "value": b.value, "limit": b.limit, "position": b.position, "updated_at": b.updated_at,
         "history": edits.get(b.id, [])}
        for b in blocks_store.list_blocks(store, agent_id)
    ]
    messages = [
        {"role": m.role, "content": m.content, "name": m.name, "tool_calls": m.tool_calls,
         "tool_call_id": m.tool_call_id, "text": m.text, "in_context": m.in_context, "created_at": m.created_at}
        for m in messages_store.list_messages(store, agent_id)
    ]
    # Only the agent's own passages: list_for_agent would add those of attached sources.
    passages = [
        {"text": text, "metadata": json.loads(meta), "embedding_model": model, "embedding_dim": dim,
         "embedding": base64.b64encode(blob).decode("ascii"), "created_at": created}
        for text, meta, model, dim, blob, created in store.db.execute(
            "SELECT text, metadata, embedding_model, embedding_dim, embedding, created_at "
            "FROM passages WHERE agent_id = ? ORDER BY id", [agent_id]).fetchall()
    ]
    usage = [
        {"model": model, "purpose": purpose, "prompt_tokens": p, "completion_tokens": c, "created_at": created}
        for model, purpose, p, c, created in store.db.execute(
            "SELECT model, purpose, prompt_tokens, completion_tokens, created_at FROM llm_calls "
            "WHERE agent_id = ? ORDER BY id", [agent_id]).fetchall()
    ]
    return {
        "format": FORMAT, "version": VERSION, "exported_at": now(),
        "agent": agent, "blocks": blocks, "messages": messages, "passages": passages, "usage": usage,
        "sources": [s.name for s in sources_store.attached(store, agent_id)],
    }


def export_agent(store: Store, agent_id: int, path: str | Path) -> dict[str, int]:
    """Write agent `agent_id` to `path` (atomically); return how many of each thing went in."""
    data = dump_agent(store, agent_id)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise TransferError(f"Cannot write {path}: {e.strerror or e}") from e
    return _counts(data)


def _counts(data: dict[str, Any]) -> dict[str, int]:
    return {
        "blocks": len(data["blocks"]),
        "edits": sum(len(b["history"]) for b in data["blocks"]),
        "messages": len(data["messages"]),
        "passages": len(data["passages"]),
        "sources": len(data["sources"]),
    }


# ---------------------------------------------------------------- reading and checking a file

def read_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TransferError(f"Cannot read {path}: {e.strerror or e}") from e
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise TransferError(f"{path} is not an agent export (not valid JSON: {e}).") from e
    return check(data, str(path))


def _need(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise TransferError(f"{where} is not a valid agent export: {problem}.")


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _stamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def check(data: Any, where: str = "The file") -> dict[str, Any]:
    """Refuse anything that is not a complete export of a known version, before writing a row."""
    _need(isinstance(data, dict) and data.get("format") == FORMAT, where, f"no \"format\": \"{FORMAT}\" marker")
    version = data.get("version")
    if version != VERSION:
        raise TransferError(
            f"{where} has agent export format version {version!r}; this MemGPT reads version {VERSION} only."
        )
    agent = data.get("agent")
    _need(isinstance(agent, dict) and all(f in agent for f in _AGENT_FIELDS), where, "the agent section is incomplete")
    _need(_text(agent["name"]) and _IMPORTED_NAME.match(agent["name"].strip()) is not None, where,
          f"bad agent name {agent.get('name')!r}")
    _need(all(_text(agent[f]) for f in ("preset", "system_prompt", "embedding_model")), where, "agent text fields")
    _need(isinstance(agent["functions"], list) and all(_text(f) for f in agent["functions"]), where, "functions")
    _need(isinstance(agent["llm_config"], dict) and isinstance(agent["embedding_config"], dict), where, "configs")
    dim = agent["embedding_dim"]
    _need(isinstance(dim, int) and not isinstance(dim, bool) and dim > 0, where, "embedding_dim")
    _need(_stamp(agent["created_at"]) and _stamp(agent["updated_at"]), where, "agent timestamps")
    for key in ("blocks", "messages", "passages", "sources"):
        _need(isinstance(data.get(key), list), where, f"\"{key}\" must be a list")
    _need(isinstance(data.get("usage", []), list), where, "\"usage\" must be a list")

    labels = set()
    for block in data["blocks"]:
        _need(isinstance(block, dict) and _text(block.get("label")) and _text(block.get("value")), where, "a block")
        _need(block["label"] not in labels, where, f"block {block['label']!r} appears twice")
        labels.add(block["label"])
        limit = block.get("limit")
        _need(isinstance(limit, int) and limit > 0 and isinstance(block.get("position"), int), where,
              f"block {block['label']!r} limit/position")
        _need(_stamp(block.get("updated_at")) and isinstance(block.get("history"), list), where,
              f"block {block['label']!r}")
        for edit in block["history"]:
            _need(isinstance(edit, dict) and edit.get("actor") in blocks_store.ACTORS and _text(edit.get("cause"))
                  and _text(edit.get("old_value")) and _text(edit.get("new_value")) and _stamp(edit.get("created_at"))
                  and isinstance(edit.get("seq", 0), int),
                  where, f"an edit of block {block['label']!r}")
    for i, m in enumerate(data["messages"]):
        _need(isinstance(m, dict) and m.get("role") in messages_store.ROLES, where, f"message {i} role")
        _need((m.get("content") is None or _text(m["content"])) and _text(m.get("text")), where, f"message {i} text")
        _need(m.get("tool_calls") is None or (isinstance(m["tool_calls"], list)
              and all(isinstance(c, dict) for c in m["tool_calls"])), where, f"message {i} tool_calls")
        _need(all(m.get(k) is None or _text(m[k]) for k in ("name", "tool_call_id")), where, f"message {i} name")
        _need(isinstance(m.get("in_context"), bool) and _stamp(m.get("created_at")), where, f"message {i} flags")
    for i, p in enumerate(data["passages"]):
        _need(isinstance(p, dict) and _text(p.get("text")) and isinstance(p.get("metadata"), dict)
              and _stamp(p.get("created_at")), where, f"passage {i}")
        _need((p.get("embedding_model"), p.get("embedding_dim")) == (agent["embedding_model"], dim), where,
              f"passage {i} was embedded by another model than the agent's")
        try:
            blob = base64.b64decode(p.get("embedding") or "", validate=True)
        except (ValueError, TypeError):
            blob = b""
        _need(len(blob) == 4 * dim, where, f"passage {i} embedding is not {dim} float32 values")
    for u in data.get("usage", []):
        _need(isinstance(u, dict) and _text(u.get("model")) and _text(u.get("purpose"))
              and all(isinstance(u.get(k), int) for k in ("prompt_tokens", "completion_tokens"))
              and _stamp(u.get("created_at")), where, "a usage record")
    _need(all(_text(s) for s in data["sources"]), where, "source names")
    return data


# ---------------------------------------------------------------- import

def free_name(store: Store, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`... whichever is free first (names compare case-insensitively)."""
    name = name.strip()
    if not agents_store.exists(store, name):
        return name
    base = re.sub(r" \(\d+\)$", "", name)
    n = 2
    while True:
        suffix = f" ({n})"
        candidate = base[: 64 - len(suffix)].rstrip() + suffix
        if not agents_store.exists(store, candidate):
            return candidate
        n += 1


def load_agent_data(store: Store, data: dict[str, Any]) -> ImportResult:
    """Create a new agent from checked export data, all in one transaction."""
    data = check(data)
    a = data["agent"]
    attached, missing = [], []
    with store.atomic() as db:
        name = free_name(store, a["name"])
        agent_id = agents_store.insert(
            store, name=name, preset=a["preset"], system_prompt=a["system_prompt"], functions=a["functions"],
            persona=a["persona"], human=a["human"], llm_config=a["llm_config"],
            embedding_config=a["embedding_config"], embedding_model=a["embedding_model"],
            embedding_dim=a["embedding_dim"],
        )
        db.execute("UPDATE agents SET created_at = ?, updated_at = ?, memory_warning = ? WHERE id = ?",
                   [a["created_at"], a["updated_at"], int(bool(a["memory_warning"])), agent_id])
        edits = []
        for block in data["blocks"]:
            cursor = db.execute(
                "INSERT INTO memory_blocks (agent_id, label, value, char_limit, position, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [agent_id, block["label"], block["value"], block["limit"], block["position"], block["updated_at"]],
            )
            edits.extend((cursor.lastrowid, block["label"], e) for e in block["history"])
        edits.sort(key=lambda item: (item[2].get("seq", 0), item[2]["created_at"]))
        db.conn.executemany(
            "INSERT INTO memory_edits (block_id, agent_id, label, actor, cause, old_value, new_value, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(block_id, agent_id, label, e["actor"], e["cause"], e["old_value"], e["new_value"], e["created_at"])
             for block_id, label, e in edits],
        )
        for m in data["messages"]:
            messages_store.add(
                store, agent_id, m["role"], m["content"], text=m["text"], name=m["name"],
                tool_calls=m["tool_calls"], tool_call_id=m["tool_call_id"], in_context=m["in_context"],
                created_at=m["created_at"],
            )
        passages = data["passages"]
        # The store's own insert keeps the vec0 table and its quantized bits in step.
        ids = passages_store.insert_many(
            store,
            [(p["text"], np.frombuffer(base64.b64decode(p["embedding"]), dtype="<f4"), p["metadata"])
             for p in passages],
            embedding_model=a["embedding_model"], embedding_dim=a["embedding_dim"], agent_id=agent_id,
        )
        db.conn.executemany("UPDATE passages SET created_at = ? WHERE id = ?",
                            [(p["created_at"], pid) for p, pid in zip(passages, ids)])
        db.conn.executemany(
            "INSERT INTO llm_calls (agent_id, model, purpose, prompt_tokens, completion_tokens, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(agent_id, u["model"], u["purpose"], u["prompt_tokens"], u["completion_tokens"], u["created_at"])
             for u in data.get("usage", [])],
        )
        for source_name in dict.fromkeys(data["sources"]):
            try:
                source = sources_store.get_by_name(store, source_name)
                sources_store.attach(store, agent_id, source.id)
                attached.append(source_name)
            except MemGPTError:  # absent here, or embedded with another model
                missing.append(source_name)
    return ImportResult(agents_store.get(store, agent_id), attached, missing, _counts(data))


def import_agent(store: Store, path: str | Path) -> ImportResult:
    return load_agent_data(store, read_file(path))
