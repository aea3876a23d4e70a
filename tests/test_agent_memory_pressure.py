"""A small context window: one warning, then summarization that keeps calls with results."""

from __future__ import annotations

import json

import pytest

from engine import system
from engine.agent import AgentOptions
from engine.context import in_context_rows
from engine.events import SystemAlert
from engine.llm.base import Completion, ContextWindowExceeded
from engine.store import messages as messages_store
from tests.support.scripted import ScriptedModel, say, use

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


def _base_tokens(make_live_agent):
    probe = make_live_agent(ScriptedModel(), name="probe")
    return probe.context().total


def _assert_pairs_intact(rows):
    """Every function result in the window follows the call that produced it."""
    open_ids: set[str] = set()
    for row in rows:
        if row.role == "assistant" and row.tool_calls:
            open_ids = {c["id"] for c in row.tool_calls}
        elif row.role == "tool":
            assert row.tool_call_id in open_ids, "a function result lost its call"
    first = rows[0] if rows[0].name != "summary" else rows[1]
    assert first.role != "tool"


def test_warning_once_then_summarize(make_live_agent, store):
    base = _base_tokens(make_live_agent)
    model = ScriptedModel(context_window=base + 1500)
    options = AgentOptions(verify_first_message=False, response_reserve=100)
    agent = make_live_agent(model, name="small", options=options)
    alerts: list[SystemAlert] = []
    for turn in range(14):
        model.enqueue(
            use("conversation_search", f"Turn {turn}: let me look that up.", query=f"topic{turn}"),
            say(f"Turn {turn}: here is a long answer about topic{turn} " + "blah " * 40),
        )
        events = list(agent.step(f"Tell me about topic{turn} please, " + "and more detail " * 10))
        alerts += [e for e in events if isinstance(e, SystemAlert)]
    kinds = [a.alert for a in alerts]
    assert "memory_pressure" in kinds and "summarized" in kinds
    first_summary = kinds.index("summarized")
    assert kinds[:first_summary].count("memory_pressure") == 1  # once until the summarization

    rows = in_context_rows(store, agent.row.id)
    assert rows[0].name == "summary"
    summary = json.loads(rows[0].content)["message"]
    assert "earlier messages were removed from your view" in summary
    assert "I talked with the user" in summary
    _assert_pairs_intact(rows)

    # What left the window is still in recall memory.
    evicted = messages_store.list_messages(store, agent.row.id, in_context=False)
    assert any("topic0" in (r.text or "") for r in evicted)
    assert "topic0" in agent.recall.search("topic0")

    # The window was kept within bounds throughout.
    for _sent, functions in model.calls:
        if functions:
            assert agent.context().window >= 0
    assert agent.context().total + options.response_reserve <= agent.context().window

    # The summary call was made in the first person with a word limit.
    summary_calls = [m for m, f in model.calls if not f]
    assert summary_calls and "first person" in summary_calls[0][0]["content"]


def test_provider_context_error_triggers_summarization(make_live_agent):
    model = ScriptedModel()
    agent = make_live_agent(model, options=AgentOptions(verify_first_message=False))
    for i in range(4):
        model.enqueue(say(f"answer {i}"))
        list(agent.step(f"question {i}"))
    model.enqueue(ContextWindowExceeded("maximum context length is 10 tokens"), say("after summary"))
    events = list(agent.step("one more"))
    assert [e.alert for e in events if isinstance(e, SystemAlert)] == ["summarized"]
    assert events[-1].kind == "tool_result" and events[-1].status == "OK"


def test_window_too_small_is_a_clear_error(make_live_agent):
    model = ScriptedModel(context_window=500)
    agent = make_live_agent(model, options=AgentOptions(verify_first_message=False))
    events = list(agent.step("hello"))
    assert events[-1].kind == "error" and "too small" in events[-1].message


def test_summarize_now_and_recursive_summary(make_live_agent, store):
    model = ScriptedModel()
    agent = make_live_agent(model, options=AgentOptions(verify_first_message=False))
    for i in range(6):
        model.enqueue(say(f"answer {i}"))
        list(agent.step(f"question {i}"))
    model.enqueue(Completion("First summary: we discussed questions 0 to 3.", []))
    events = list(agent.summarize_now())
    assert events[-1].alert == "summarized"
    for i in range(6, 9):
        model.enqueue(say(f"answer {i}"))
        list(agent.step(f"question {i}"))
    model.enqueue(Completion("Second summary, folding in the first.", []))
    list(agent.summarize_now())
    rows = in_context_rows(store, agent.row.id)
    summaries = [r for r in rows if r.name == "summary"]
    assert len(summaries) == 1 and "Second summary" in summaries[0].content
    # The second summary call saw the first summary among what it summarized.
    last_summary_call = [m for m, f in model.calls if not f][-1]
    assert "First summary" in last_summary_call[1]["content"]
    hidden = system.unpack(summaries[0].content)["message"]
    assert "To free space," in hidden
    _assert_pairs_intact(rows)


def test_memory_warning_operation(make_live_agent):
    model = ScriptedModel().enqueue(use("archival_memory_insert", content="Kim likes tea", heartbeat=False))
    agent = make_live_agent(model, options=AgentOptions(verify_first_message=False))
    events = list(agent.memory_warning())
    assert events[0].message_type == "memory_pressure"
    sent = model.calls[0][0][-1]["content"]
    assert "Memory pressure" in json.loads(sent)["message"]
