"""Moving one agent between stores as one JSON file (export / import).

The file holds everything the agent owns: its row (preset, prompt, functions,
model and embedding settings), its core memory blocks with their full edit
history (removed blocks too, under `removed_blocks`, so their history stays and
adding the label again brings it back, as in the original), every message with its `in_context` flag, its own archival passages
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
from typing import Any, Literal, overload

import numpy as np

from engine import memory
from engine.config import ENDPOINT_TYPES, EmbeddingConfig, LLMConfig
from engine.errors import MemGPTError
from engine.store import Store, live, now
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
    def block(b: blocks_store.Block) -> dict[str, Any]:
        return {"label": b.label, "value": b.value, "limit": b.limit, "position": b.position,
                "updated_at": b.updated_at, "history": edits.get(b.id, [])}

    blocks = [block(b) for b in blocks_store.list_blocks(store, agent_id)]
    removed = [{**block(b), "removed_at": removed_at} for b, removed_at in blocks_store.list_removed(store, agent_id)]
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
        "agent": agent, "blocks": blocks, "removed_blocks": removed, "messages": messages, "passages": passages,
        "usage": usage,
        "sources": [s.name for s in sources_store.attached(store, agent_id)],
    }


def export_agent(store: Store, agent_id: int, path: str | Path) -> dict[str, int]:
    """Write agent `agent_id` to `path` (atomically); return how many of each thing went in."""
    path = Path(path)
    refused = live.refusal(path)  # replacing a file of the live database would destroy it
    if refused:
        raise TransferError(f"Cannot write {path}: {refused}; choose a file outside the data home.")
    data = dump_agent(store, agent_id)
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
        "edits": sum(len(b["history"]) for b in [*data["blocks"], *data.get("removed_blocks", [])]),
        "messages": len(data["messages"]),
        "passages": len(data["passages"]),
        "sources": len(data["sources"]),
    }


# ---------------------------------------------------------------- reading and checking a file

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_TEXT = 10_000_000  # characters in any one text field (a message, a prompt, a passage)
MAX_SHORT = 256  # names, models, presets, causes
# Blocks as the engine makes them (engine/memory.py): short lowercase labels, found in any case, so
# "Persona" beside "persona" would be two blocks no lookup tells apart; at most MAX_BLOCKS live ones.
_LABEL = re.compile(rf"^{memory.BLOCK_LABEL.pattern}$")
_FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_CONFIG_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "llm_config": {"endpoint_type": (str,), "model": (str,), "endpoint": (str, type(None)),
                   "context_window": (int, type(None)), "wrapper": (str, type(None)), "grammar": (bool, str)},
    "embedding_config": {"endpoint_type": (str,), "model": (str,), "dim": (int,), "endpoint": (str, type(None))},
}
_CONFIG_CLASSES = {"llm_config": LLMConfig, "embedding_config": EmbeddingConfig}
_ANY_SCALAR = (str, int, float, bool, type(None))  # a field added to a config class later, before listed above


def read_file(path: str | Path, max_bytes: int | None = None, *, shown: str | None = None) -> dict[str, Any]:
    """The checked contents of an export file. `shown` names the file in errors instead of its path
    (an upload's own name: a visitor has no business seeing where the server keeps uploads)."""
    path = Path(path)
    where = shown or str(path)
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    refused = live.refusal(path)  # opening the app's own database would drop its locks
    if refused:
        raise TransferError(f"{where} is not read: {refused}.")
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as e:
        raise TransferError(f"Cannot read {where}: {e.strerror or e}") from e
    if len(raw) > max_bytes:
        raise TransferError(f"{where} is larger than {max_bytes:,} bytes; it is not an agent export this MemGPT reads.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TransferError(f"{where} is not an agent export (not UTF-8 text: {e}).") from e
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise TransferError(f"{where} is not an agent export (not valid JSON: {e}).") from e
    return check(data, where)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


class _Invalid(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def _int_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(obj: dict, key: str, path: str, required: bool = True) -> Any:
    if key not in obj:
        if required:
            raise _Invalid(f"{path}.{key}" if path else key, "is missing")
        return None
    return obj[key]


def _object(value: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        raise _Invalid(path, "must be an object")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        raise _Invalid(path, f"unknown field(s) {', '.join(map(repr, unknown))[:200]}")
    for key in required:
        _field(value, key, path)
    return value


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise _Invalid(path, "must be a list")
    return value


@overload
def _string(value: Any, path: str, *, max_len: int = ..., nullable: Literal[False] = ..., nonempty: bool = ...,
            pattern: re.Pattern | None = ...) -> str: ...


@overload
def _string(value: Any, path: str, *, max_len: int = ..., nullable: Literal[True], nonempty: bool = ...,
            pattern: re.Pattern | None = ...) -> str | None: ...


def _string(value: Any, path: str, *, max_len: int = MAX_TEXT, nullable: bool = False, nonempty: bool = False,
            pattern: re.Pattern | None = None) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _Invalid(path, "must be a string" + (" or null" if nullable else ""))
    if len(value) > max_len:
        raise _Invalid(path, f"is longer than {max_len:,} characters")
    if nonempty and not value.strip():
        raise _Invalid(path, "must not be empty")
    if pattern is not None and not pattern.match(value):
        raise _Invalid(path, f"{value[:80]!r} is not an allowed value")
    return value


def _integer(value: Any, path: str, low: int, high: int) -> int:
    if not _int_ok(value):
        raise _Invalid(path, "must be an integer")
    if not low <= value <= high:
        raise _Invalid(path, f"must be between {low} and {high:,}")
    return value


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(path, "must be true or false")
    return value


def _stamp(value: Any, path: str) -> str:
    _string(value, path, max_len=64)
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(path, f"{value!r} is not an ISO date and time") from None
    return value


def _config(value: Any, path: str) -> dict:
    section = path.rsplit(".", 1)[-1]
    # The keys are those the dataclass accepts, so `LLMConfig(**row.llm_config)` cannot fail on load.
    types = {f.name: _CONFIG_TYPES[section].get(f.name, _ANY_SCALAR)
             for f in dataclasses.fields(_CONFIG_CLASSES[section])}
    _object(value, path, (), tuple(types))
    for key, val in value.items():
        if not isinstance(val, types[key]) or (bool not in types[key] and isinstance(val, bool)):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types[key])
            raise _Invalid(f"{path}.{key}", f"must be {names}")
    if "endpoint_type" in value and value["endpoint_type"] not in ENDPOINT_TYPES:
        raise _Invalid(f"{path}.endpoint_type", f"must be one of {', '.join(ENDPOINT_TYPES)}")
    for key in ("model", "wrapper", "endpoint"):
        if isinstance(value.get(key), str):
            _string(value[key], f"{path}.{key}", max_len=2048, nonempty=key == "model")
    if value.get("context_window") is not None:
        _integer(value["context_window"], f"{path}.context_window", 1, 100_000_000)
    if "dim" in value:
        _integer(value["dim"], f"{path}.dim", 1, 65_536)
    return value


def _check_agent(agent: Any) -> dict:
    _object(agent, "agent", _AGENT_FIELDS)
    name = _string(agent["name"], "agent.name", max_len=64)
    if _IMPORTED_NAME.match(name.strip()) is None:
        raise _Invalid("agent.name", f"{name!r} is not a valid agent name")
    _string(agent["preset"], "agent.preset", max_len=MAX_SHORT, nonempty=True)
    _string(agent["system_prompt"], "agent.system_prompt")
    for i, function in enumerate(_list(agent["functions"], "agent.functions")):
        _string(function, f"agent.functions[{i}]", max_len=64, pattern=_FUNCTION)
    for key in ("persona", "human"):
        _string(agent[key], f"agent.{key}", nullable=True)
    _config(agent["llm_config"], "agent.llm_config")
    embedding = _config(agent["embedding_config"], "agent.embedding_config")
    model = _string(agent["embedding_model"], "agent.embedding_model", max_len=2048, nonempty=True)
    dim = _integer(agent["embedding_dim"], "agent.embedding_dim", 1, 65_536)
    if embedding.get("dim", dim) != dim:
        raise _Invalid("agent.embedding_config.dim", f"is {embedding['dim']} but agent.embedding_dim is {dim}")
    if embedding.get("model", model) != model:
        raise _Invalid("agent.embedding_config.model", "differs from agent.embedding_model")
    _stamp(agent["created_at"], "agent.created_at")
    _stamp(agent["updated_at"], "agent.updated_at")
    _boolean(agent["memory_warning"], "agent.memory_warning")
    return agent


def _check_blocks(blocks: Any, where: str = "blocks", labels: set[str] | None = None) -> set[str]:
    """Check `blocks` (live, or removed with `removed_at`); the labels seen, added to `labels`."""
    labels = set() if labels is None else labels
    removed = where == "removed_blocks"
    listed = _list(blocks, where)
    if not removed and len(listed) > memory.MAX_BLOCKS:
        raise _Invalid(where, f"{len(listed)} blocks; an agent has at most {memory.MAX_BLOCKS}")
    for i, block in enumerate(listed):
        path = f"{where}[{i}]"
        _object(block, path, ("label", "value", "limit", "position", "updated_at", "history")
                + (("removed_at",) if removed else ()))
        label = _string(block["label"], f"{path}.label", pattern=_LABEL)
        if label in labels:
            # One row per label: a removed block comes back under its label, so it cannot share one.
            raise _Invalid(f"{path}.label", f"block {label!r} appears twice")
        labels.add(label)
        if removed:
            _stamp(block["removed_at"], f"{path}.removed_at")
        limit = _integer(block["limit"], f"{path}.limit", 1, memory.MAX_BLOCK_LIMIT)
        value = _string(block["value"], f"{path}.value")
        if len(value) > limit:
            raise _Invalid(f"{path}.value", f"holds {len(value)} characters, more than the block's limit {limit}")
        _integer(block["position"], f"{path}.position", 0, 1_000_000)
        _stamp(block["updated_at"], f"{path}.updated_at")
        for j, edit in enumerate(_list(block["history"], f"{path}.history")):
            where = f"{path}.history[{j}]"
            _object(edit, where, ("actor", "cause", "old_value", "new_value", "created_at"), ("seq",))
            if edit["actor"] not in blocks_store.ACTORS:
                raise _Invalid(f"{where}.actor", f"must be one of {', '.join(blocks_store.ACTORS)}")
            _string(edit["cause"], f"{where}.cause", max_len=MAX_SHORT)
            _string(edit["old_value"], f"{where}.old_value")
            _string(edit["new_value"], f"{where}.new_value")
            _stamp(edit["created_at"], f"{where}.created_at")
            if "seq" in edit:
                _integer(edit["seq"], f"{where}.seq", 0, 2**62)
    return labels


def _check_messages(messages: Any) -> None:
    call_ids: set[str] = set()
    for i, m in enumerate(_list(messages, "messages")):
        path = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if isinstance(m, dict) and role not in messages_store.ROLES:
            raise _Invalid(f"{path}.role", f"must be one of {', '.join(messages_store.ROLES)}")
        _object(m, path, ("role", "content", "name", "tool_calls", "tool_call_id", "text", "in_context",
                          "created_at"))
        _string(m["content"], f"{path}.content", nullable=True)
        _string(m["text"], f"{path}.text")
        _string(m["name"], f"{path}.name", max_len=MAX_SHORT, nullable=True)
        _boolean(m["in_context"], f"{path}.in_context")
        _stamp(m["created_at"], f"{path}.created_at")
        calls = m["tool_calls"]
        if calls is not None:
            if role != "assistant":
                raise _Invalid(f"{path}.tool_calls", "only assistant messages carry tool calls")
            if not _list(calls, f"{path}.tool_calls"):
                raise _Invalid(f"{path}.tool_calls", "must be null or a non-empty list")
            for j, call in enumerate(calls):
                where = f"{path}.tool_calls[{j}]"
                _object(call, where, ("id", "type", "function"))
                call_id = _string(call["id"], f"{where}.id", max_len=MAX_SHORT, nonempty=True)
                if call["type"] != "function":
                    raise _Invalid(f"{where}.type", 'must be "function"')
                function = _object(call["function"], f"{where}.function", ("name", "arguments"))
                _string(function["name"], f"{where}.function.name", max_len=MAX_SHORT)
                _string(function["arguments"], f"{where}.function.arguments")
                call_ids.add(call_id)
        call_id = m["tool_call_id"]
        if role == "tool":
            _string(call_id, f"{path}.tool_call_id", max_len=MAX_SHORT)
            if call_id not in call_ids:
                raise _Invalid(f"{path}.tool_call_id", f"{call_id[:80]!r} answers no earlier tool call")
            if m["content"] is None:
                raise _Invalid(f"{path}.content", "a tool result needs content")
        elif call_id is not None:
            raise _Invalid(f"{path}.tool_call_id", "only tool messages carry a tool_call_id")


def _check_passages(passages: Any, model: str, dim: int) -> None:
    for i, p in enumerate(_list(passages, "passages")):
        path = f"passages[{i}]"
        _object(p, path, ("text", "metadata", "embedding_model", "embedding_dim", "embedding", "created_at"))
        _string(p["text"], f"{path}.text")
        if not isinstance(p["metadata"], dict):
            raise _Invalid(f"{path}.metadata", "must be an object")
        if p["embedding_model"] != model or p["embedding_dim"] != dim:
            raise _Invalid(f"{path}.embedding_model", "was embedded by another model than the agent's")
        encoded = _string(p["embedding"], f"{path}.embedding", max_len=8 * 65_536)
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError:
            blob = b""
        if len(blob) != 4 * dim:
            raise _Invalid(f"{path}.embedding", f"is not {dim} float32 values in base64")
        if not np.isfinite(np.frombuffer(blob, dtype="<f4")).all():
            raise _Invalid(f"{path}.embedding", "holds values that are not finite numbers")
        _stamp(p["created_at"], f"{path}.created_at")


def _check_usage(usage: Any) -> None:
    for i, u in enumerate(_list(usage, "usage")):
        path = f"usage[{i}]"
        _object(u, path, ("model", "purpose", "prompt_tokens", "completion_tokens", "created_at"))
        _string(u["model"], f"{path}.model", max_len=2048)
        _string(u["purpose"], f"{path}.purpose", max_len=MAX_SHORT)
        for key in ("prompt_tokens", "completion_tokens"):
            _integer(u[key], f"{path}.{key}", 0, 2**62)
        _stamp(u["created_at"], f"{path}.created_at")


def check(data: Any, where: str = "The file") -> dict[str, Any]:
    """Refuse anything that is not a complete, well-formed export of a known version, before a row is written.

    The whole file is checked against the shape `dump_agent` writes, so whatever
    is imported can be loaded and run; the first problem is reported with its path.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TransferError(f"{where} is not a valid agent export: no \"format\": \"{FORMAT}\" marker.")
    version = data.get("version")
    if version != VERSION:
        raise TransferError(
            f"{where} has agent export format version {version!r}; this MemGPT reads version {VERSION} only."
        )
    try:
        _object(data, "(top level)", ("format", "version", "agent", "blocks", "messages", "passages", "sources"),
                ("exported_at", "usage", "removed_blocks"))
        agent = _check_agent(data["agent"])
        _check_blocks(data.get("removed_blocks", []), "removed_blocks", _check_blocks(data["blocks"]))
        _check_messages(data["messages"])
        _check_passages(data["passages"], agent["embedding_model"], agent["embedding_dim"])
        _check_usage(data.get("usage", []))
        for i, source in enumerate(_list(data["sources"], "sources")):
            _string(source, f"sources[{i}]", max_len=MAX_SHORT)
    except _Invalid as e:
        raise TransferError(f"{where} is not a valid agent export: {e}.") from None
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
        edits: list[tuple] = []
        for block in [*data["blocks"], *data.get("removed_blocks", [])]:
            cursor = db.execute(
                "INSERT INTO memory_blocks (agent_id, label, value, char_limit, position, updated_at, removed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [agent_id, block["label"], block["value"], block["limit"], block["position"], block["updated_at"],
                 block.get("removed_at")],
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
