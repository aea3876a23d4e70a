"""Summarizing never runs away: a huge line, a deeply nested call, many lines, each a bounded number of calls."""

from __future__ import annotations

import json
import types

from engine import system, tokens
from engine.llm.base import Completion
from engine.summarize import summarize_rows


class CountingModel:
    """A summarizer that answers briefly and records what it was sent."""

    def __init__(self):
        self.prompts: list[str] = []

    def complete(self, messages, functions):
        self.prompts.append(messages[-1]["content"])
        return Completion(f"Summary {len(self.prompts)}.", [], prompt_tokens=1, completion_tokens=1)


def user(text: str):
    return types.SimpleNamespace(role="user", content=system.user_message(text), tool_calls=None)


def test_one_line_bigger_than_the_budget_costs_a_few_calls_not_a_thousand():
    # 20,000 characters that tokenize one token each: a message within the limit, ~3x an 8k window.
    huge = " ".join(["字"] * 10_000) * 2
    assert tokens.count(huge) > 8192
    model = CountingModel()
    summary, _, _ = summarize_rows(model, [user("hello"), user(huge), user("bye")], window=8192)
    assert summary.startswith("Summary") and len(model.prompts) <= 3  # it recursed ~1,000 times before
    assert all(tokens.count(p) <= int(8192 * 0.6) for p in model.prompts)  # each call fits its budget


def test_many_lines_split_until_they_fit_and_every_line_is_seen_once():
    model = CountingModel()
    rows = [user(f"line {i} " + "word " * 300) for i in range(60)]
    summarize_rows(model, rows, window=8192)
    assert 2 <= len(model.prompts) <= 20
    seen = "\n".join(model.prompts)
    assert all(f"line {i} " in seen for i in range(60))


def test_arguments_nested_too_deep_to_parse_are_summarized_as_text():
    nested = "[" * 5000 + "]" * 5000
    call = {"id": "c1", "type": "function", "function": {"name": "archival_memory_insert", "arguments": nested}}
    row = types.SimpleNamespace(role="assistant", content="thinking", tool_calls=[call])
    model = CountingModel()
    summary, _, _ = summarize_rows(model, [row, user("next")], window=8192)
    assert summary == "Summary 1." and "(called archival_memory_insert)" in model.prompts[0]
    json.dumps(model.prompts)  # plain text went out
