"""The exact message list sent to the LLM, and what each part of it costs in tokens.

Order, as MemGPT has it: one system message (the preset's prompt followed by the
memory section), then the recursive summary when there is one, then the
in-context messages oldest first. Function schemas travel beside the messages
and are counted too. `Context.breakdown` is what the UI's context view draws.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from engine import tokens
from engine.agents import memory_section
from engine.store import Store
from engine.store import messages as messages_store
from engine.store.agents import AgentRow
from engine.store.messages import Message

PER_MESSAGE_OVERHEAD = 4  # role and separators, as OpenAI's chat format counts them
SUMMARY = "summary"
PARTS = ("system", "core_memory", "functions", "summary", "messages")


@dataclasses.dataclass
class Context:
    messages: list[dict[str, Any]]
    functions: list[dict[str, Any]]
    rows: list[Message]  # in-context rows in prompt order (summary first)
    breakdown: dict[str, int]
    window: int

    @property
    def total(self) -> int:
        return sum(self.breakdown[p] for p in PARTS)

    @property
    def free(self) -> int:
        return self.window - self.total


def to_openai(row: Message) -> dict[str, Any]:
    """A stored message in the chat-completions wire format."""
    if row.role == "assistant":
        if not row.tool_calls:
            return {"role": "assistant", "content": row.content or ""}
        return {"role": "assistant", "content": row.content, "tool_calls": row.tool_calls}
    if row.role == "tool":
        return {"role": "tool", "tool_call_id": row.tool_call_id, "content": row.content or ""}
    return {"role": row.role, "content": row.content or ""}


class TokenCache:
    """Token counts of stored messages by id: a message's tokens never change unless it is edited."""

    def __init__(self, size: int = 4096):
        self._counts: dict[int, tuple[str, int]] = {}
        self._texts: dict[str, int] = {}
        self._size = size

    def text(self, text: str) -> int:
        """Tokens of a text that recurs unchanged step after step (the prompt, the schemas)."""
        n = self._texts.get(text)
        if n is None:
            if len(self._texts) >= 16:
                self._texts.pop(next(iter(self._texts)))
            n = self._texts[text] = tokens.count(text)
        return n

    def count(self, row: Message) -> int:
        payload = (row.content or "") + (json.dumps(row.tool_calls) if row.tool_calls else "")
        cached = self._counts.get(row.id)
        if cached is not None and cached[0] == payload:
            return cached[1]
        n = tokens.count(payload) + PER_MESSAGE_OVERHEAD
        if len(self._counts) >= self._size:
            self._counts.pop(next(iter(self._counts)))
        self._counts[row.id] = (payload, n)
        return n


def in_context_rows(store: Store, agent_id: int) -> list[Message]:
    """The agent's in-context messages in prompt order: the summary first, system rows left out.

    Tool results sit right after the call they answer (OpenAI refuses anything
    else): a result stored late, such as the "interrupted" result written after
    a crash, moves up to its call, and a result whose call left the window goes.
    """
    rows = [r for r in messages_store.list_messages(store, agent_id, in_context=True) if r.role != "system"]
    summaries = [r for r in rows if r.name == SUMMARY]
    return summaries + _calls_then_results([r for r in rows if r.name != SUMMARY])


def pair_results(rows: list[Message]) -> tuple[dict[int, list[Message]], list[dict[str, Any]]]:
    """Which tool results answer which call: ({index of the assistant row: its results}, unanswered calls).

    A result answers the latest call with its id that is still waiting, so ids a
    model reuses across turns ("call_0" every time) still pair up correctly.
    """
    attached: dict[int, list[Message]] = {}
    waiting: dict[str | None, tuple[int, dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        if row.role == "assistant" and row.tool_calls:
            attached[i] = []
            for call in row.tool_calls:
                waiting[call.get("id")] = (i, call)
        elif row.role == "tool":
            hit = waiting.pop(row.tool_call_id, None)
            if hit is not None:
                attached[hit[0]].append(row)
    return attached, [call for _, call in sorted(waiting.values(), key=lambda item: item[0])]


def _calls_then_results(rows: list[Message]) -> list[Message]:
    attached, _ = pair_results(rows)
    out = []
    for i, row in enumerate(rows):
        if row.role != "tool":
            out.append(row)
            out.extend(attached.get(i, ()))
    return out


def build_context(
    store: Store, agent: AgentRow, functions: list[dict[str, Any]], window: int, cache: TokenCache | None = None
) -> Context:
    cache = cache or TokenCache()
    memory = memory_section(store, agent.id)
    system_text = f"{agent.system_prompt}\n\n{memory}"
    rows = in_context_rows(store, agent.id)
    breakdown = {
        "system": cache.text(agent.system_prompt) + PER_MESSAGE_OVERHEAD,
        "core_memory": cache.text(memory),
        "functions": cache.text(json.dumps(functions)) if functions else 0,
        "summary": sum(cache.count(r) for r in rows if r.name == SUMMARY),
        "messages": sum(cache.count(r) for r in rows if r.name != SUMMARY),
    }
    messages = [{"role": "system", "content": system_text}] + [to_openai(r) for r in rows]
    return Context(messages, functions, rows, breakdown, window)
