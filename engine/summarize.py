"""Evicting old messages into a recursive summary when the window fills.

`plan_eviction` picks how many of the oldest in-context messages to take out:
enough to free the tokens asked for, never the last KEEP_LAST, and never a cut
that would leave a function result without the call that produced it. The
current summary, being first in the window, is always part of what is evicted,
so each new summary folds in the previous one (a recursive summary).
`summarize_rows` asks the same LLM for a first-person summary within a word
limit, splitting the span when it is itself too long for the window.
"""

from __future__ import annotations

import json

from engine import system, tokens
from engine.json_errors import UNPARSABLE
from engine.llm.base import LLMProvider
from engine.store.messages import Message

KEEP_LAST = 3
WORD_LIMIT = 100
SPAN_FRACTION = 0.6  # share of the window a span to summarize may take in one call

INSTRUCTIONS = (
    "You are the memory of an AI agent. Below is a stretch of its conversation that is about to "
    "leave its context window. Write a summary of it in the first person, as the agent "
    "remembering (\"I told them...\", \"They asked me...\"). Keep names, facts, promises and "
    f"open questions; drop pleasantries. Use at most {WORD_LIMIT} words. Reply with the summary only."
)


def plan_eviction(rows: list[Message], sizes: list[int], tokens_to_free: int, keep_last: int = KEEP_LAST) -> int:
    """How many leading rows to evict (0 when nothing can go)."""
    limit = len(rows) - keep_last
    freed = 0
    best = 0
    for cut in range(1, limit + 1):
        freed += sizes[cut - 1]
        # A cut is valid only where the next kept message is not a function result.
        if cut < len(rows) and rows[cut].role == "tool":
            continue
        best = cut
        if freed >= tokens_to_free:
            break
    return best


def transcript_line(row: Message) -> str:
    payload = system.unpack(row.content)
    if row.role == "assistant":
        parts = []
        if row.content:
            parts.append(f"(thinking) {row.content}")
        for call in row.tool_calls or []:
            fn = call.get("function", {})
            args = fn.get("arguments", "")
            try:
                parsed = json.loads(args)
            except (*UNPARSABLE, TypeError):
                parsed = None
            if fn.get("name") == "send_message" and isinstance(parsed, dict) and "message" in parsed:
                parts.append(f"(said) {parsed['message']}")
            else:
                parts.append(f"(called {fn.get('name')}) {args}")
        return "assistant: " + " ".join(parts)
    if row.role == "tool":
        message = payload.get("message") if payload else row.content
        return f"function result: {str(message)[:500]}"
    if payload:
        kind = payload.get("type")
        if kind == "user_message":
            return f"user: {payload.get('message')}"
        if kind == "system_alert":
            return f"system: {payload.get('message')}"
        return f"event: {kind}"
    return f"{row.role}: {row.content}"


def summarize_rows(provider: LLMProvider, rows: list[Message], window: int) -> tuple[str, int, int]:
    """(summary, prompt tokens, completion tokens) for `rows`, recursively if the span is too long."""
    budget = int(window * SPAN_FRACTION)
    # Each line at most half the budget: a span is halved until it fits, and the second half
    # carries the first's summary along, so a line bigger than the budget alone never shrank
    # and the halving recursed once per level (a model call each) into a RecursionError.
    lines = [_head(transcript_line(r), budget // 2) for r in rows]
    return _summarize_lines(provider, lines, budget)


def _head(text: str, limit: int) -> str:
    """`text` cut to its first `limit` tokens."""
    if tokens.count(text) <= limit:
        return text
    encoded = tokens.encode(text)
    return text[: limit * tokens.CHARS_PER_TOKEN] if encoded is None else tokens.encoding().decode(encoded[:limit])


def _summarize_lines(provider, lines: list[str], budget: int) -> tuple[str, int, int]:
    text = "\n".join(lines)
    if tokens.count(text) > budget and len(lines) > 2:
        half = (len(lines) + 1) // 2  # rounded up, so the second half plus the summary is shorter than `lines`
        first, p1, c1 = _summarize_lines(provider, lines[:half], budget)
        rest, p2, c2 = _summarize_lines(provider, [f"(earlier, summarized) {first}"] + lines[half:], budget)
        return rest, p1 + p2, c1 + c2
    text = _head(text, budget)  # two lines over the budget (never more than a little): keep the head
    completion = provider.complete(
        [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": text}], []
    )
    summary = (completion.content or "").strip()
    if not summary:
        summary = "I cannot recall the details of this part of the conversation."
    words = summary.split()
    if len(words) > WORD_LIMIT * 2:  # a model that ignores the limit does not get to fill the window
        summary = " ".join(words[: WORD_LIMIT * 2]) + " …"
    return summary, completion.prompt_tokens, completion.completion_tokens
