"""The context sent to the LLM and its token breakdown."""

from __future__ import annotations

import json

import pytest

from engine import tokens
from engine.context import PARTS, build_context
from engine.llm.models import DEFAULT_CONTEXT_WINDOW, context_window
from tests.support.scripted import ScriptedModel, say

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


def test_breakdown_adds_up(make_live_agent):
    model = ScriptedModel(context_window=16_000)
    agent = make_live_agent(model.enqueue(say("hello")))
    list(agent.step("hi"))
    ctx = agent.context()
    assert set(ctx.breakdown) == set(PARTS)
    assert ctx.breakdown["summary"] == 0
    assert ctx.breakdown["functions"] == tokens.count(json.dumps(agent.functions()))
    assert ctx.breakdown["core_memory"] > 0 and ctx.breakdown["messages"] > 0
    assert ctx.total == sum(ctx.breakdown.values()) and ctx.free == 16_000 - ctx.total
    # The system message is the prompt followed by the memory section, then the messages in order.
    assert ctx.messages[0]["content"].startswith(agent.row.system_prompt)
    assert "### Memory" in ctx.messages[0]["content"]
    assert [m["role"] for m in ctx.messages[1:4]] == ["assistant", "tool", "user"]


def test_memory_edits_show_up_in_the_next_context(make_live_agent):
    agent = make_live_agent(ScriptedModel())
    agent.core.set("human", "Name: Kim", actor="user")
    assert '<human characters="9/2000">\nName: Kim\n</human>' in agent.context().messages[0]["content"]


def test_counting_survives_no_encoding(make_live_agent, monkeypatch):
    agent = make_live_agent(ScriptedModel())
    monkeypatch.setattr(tokens, "encoding", lambda: None)
    ctx = build_context(agent.store, agent.row, agent.functions(), 8192)
    assert ctx.total > 0


def test_context_windows():
    assert context_window("gpt-4o-mini-2024-07-18") == 128_000
    assert context_window("gpt-4") == 8_192
    assert context_window("some-local-model") == DEFAULT_CONTEXT_WINDOW
    assert context_window("gpt-4o", override=4096) == 4096
