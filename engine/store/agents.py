"""Agent rows: identity, preset, model and embedding settings.

Everything else an agent owns (blocks, edits, messages, passages, attachments)
references `agents.id` with ON DELETE CASCADE, so deleting the row deletes it all
(vectors kept in LanceDB are dropped by hand, after the row).

Names are shown as typed but compared by `name_key` (NFKC, then casefold, kept
in a UNIQUE column): `Éva`/`éva` and `K` (Kelvin sign)/`k` are one name, and a
lookup by any spelling finds the same agent.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from typing import Any

from engine.errors import InvalidName, NotFound
from engine.store import passages
from engine.store.base import integrity_errors
from engine.store.db import Store, now


def name_key(name: str) -> str:
    """The form two names are compared in: equal keys are the same agent."""
    # NFKC again after casefold: folding can yield sequences NFKC would compose.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name.strip()).casefold())

_COLUMNS = (
    "id, name, preset, system_prompt, functions, persona, human, llm_config, "
    "embedding_config, embedding_model, embedding_dim, created_at, updated_at, memory_warning"
)


@dataclasses.dataclass(frozen=True)
class AgentRow:
    id: int
    name: str
    preset: str
    system_prompt: str
    functions: list[str]
    persona: str | None
    human: str | None
    llm_config: dict[str, Any]
    embedding_config: dict[str, Any]
    embedding_model: str
    embedding_dim: int
    created_at: str
    updated_at: str
    memory_warning: bool = False


def _from_tuple(row: tuple) -> AgentRow:
    d = dict(zip(_COLUMNS.split(", "), row))
    d["functions"] = json.loads(d["functions"])
    d["llm_config"] = json.loads(d["llm_config"])
    d["embedding_config"] = json.loads(d["embedding_config"])
    d["memory_warning"] = bool(d["memory_warning"])
    return AgentRow(**d)


def insert(
    store: Store,
    *,
    name: str,
    preset: str,
    system_prompt: str,
    functions: list[str],
    persona: str | None,
    human: str | None,
    llm_config: dict[str, Any],
    embedding_config: dict[str, Any],
    embedding_model: str,
    embedding_dim: int,
) -> int:
    """Insert an agent row (call inside the transaction that also adds its blocks)."""
    if exists(store, name):
        raise InvalidName(f"An agent named {name!r} already exists; pick another name.")
    stamp = now()
    with _name_taken(name):
        cursor = store.db.execute(
            "INSERT INTO agents (name, name_key, preset, system_prompt, functions, persona, human, llm_config, "
            "embedding_config, embedding_model, embedding_dim, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                name,
                name_key(name),
            preset,
            system_prompt,
                json.dumps(functions),
                persona,
                human,
                json.dumps(llm_config),
                json.dumps(embedding_config),
                embedding_model,
                embedding_dim,
                stamp,
                stamp,
            ],
        )
    assert cursor.lastrowid is not None  # an INSERT always sets it
    return cursor.lastrowid


class _name_taken:
    """Turns a uniqueness failure on the name (another process won a race) into InvalidName."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, integrity_errors()) and "name" in str(exc):
            raise InvalidName(f"An agent named {self.name!r} already exists; pick another name.") from exc
        return False


def exists(store: Store, name: str) -> bool:
    """Whether an agent has this name, compared by `name_key`."""
    return store.db.execute("SELECT 1 FROM agents WHERE name_key = ?", [name_key(name)]).fetchone() is not None


def get(store: Store, agent_id: int) -> AgentRow:
    row = store.db.execute(f"SELECT {_COLUMNS} FROM agents WHERE id = ?", [agent_id]).fetchone()
    if row is None:
        raise NotFound(f"No agent with id {agent_id}.")
    return _from_tuple(row)


def get_by_name(store: Store, name: str) -> AgentRow:
    row = store.db.execute(f"SELECT {_COLUMNS} FROM agents WHERE name_key = ?", [name_key(name)]).fetchone()
    if row is None:
        raise NotFound(f"No agent named {name!r}.")
    return _from_tuple(row)


def list_all(store: Store) -> list[AgentRow]:
    rows = store.db.execute(f"SELECT {_COLUMNS} FROM agents ORDER BY lower(name), id").fetchall()
    return [_from_tuple(r) for r in rows]


def update(store: Store, agent_id: int, **fields: Any) -> None:
    """Change columns of an agent; JSON columns take Python values."""
    get(store, agent_id)
    for key in ("functions", "llm_config", "embedding_config"):
        if key in fields:
            fields[key] = json.dumps(fields[key])
    if "name" in fields:
        fields["name_key"] = name_key(fields["name"])
    fields["updated_at"] = now()
    sets = ", ".join(f"{k} = ?" for k in fields)
    with _name_taken(fields.get("name", "")):
        store.db.execute(f"UPDATE agents SET {sets} WHERE id = ?", [*fields.values(), agent_id])


def delete(store: Store, agent_id: int) -> None:
    get(store, agent_id)
    store.db.execute("DELETE FROM agents WHERE id = ?", [agent_id])
    passages.forget_owner(store, passages.owner_key(agent_id=agent_id))  # LanceDB is outside the cascade


def record_llm_call(store: Store, agent_id: int, model: str, prompt_tokens: int, completion_tokens: int, purpose: str = "step") -> None:
    store.db.execute(
        "INSERT INTO llm_calls (agent_id, model, purpose, prompt_tokens, completion_tokens, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [agent_id, model, purpose, prompt_tokens, completion_tokens, now()],
    )


def usage_totals(store: Store, agent_id: int) -> tuple[int, int, int]:
    """(calls, prompt tokens, completion tokens) over the agent's life."""
    row = store.db.execute(
        "SELECT count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) "
        "FROM llm_calls WHERE agent_id = ?",
        [agent_id],
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])
