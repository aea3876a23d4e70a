"""The pure event -> chat message mapping the web app uses."""

from __future__ import annotations

from engine.events import (
    AssistantMessage,
    Error,
    Retrying,
    SystemAlert,
    Thought,
    ToolCall,
    ToolResult,
    Usage,
    UserMessage,
)
from webapp.render import apply_event, event_to_messages, status_line, stored_to_messages


def test_a_turn_maps_to_bubbles_and_boxes():
    history = []
    for event in [
        UserMessage("hi", "user_message"),
        Thought("They said hi."),
        ToolCall("core_memory_append", {"label": "human", "content": "x", "request_heartbeat": True}, "c1"),
        ToolResult("core_memory_append", "OK", "Block 'human' now holds 1 of 2000 characters.", "c1"),
        ToolCall("send_message", {"message": "Hello!"}, "c2"),
        AssistantMessage("Hello!"),
        ToolResult("send_message", "OK", "None", "c2"),
    ]:
        history = apply_event(history, event)
    assert history[0] == {"role": "user", "content": "hi"}
    assert history[1]["metadata"]["title"] == "💭 Inner monologue"
    call = history[2]
    assert call["metadata"] == {"title": "🛠️ core_memory_append", "status": "done"}  # closed by its result
    assert "request_heartbeat" not in call["content"] and '"label": "human"' in call["content"]
    assert history[3]["metadata"]["title"] == "✅ core_memory_append → OK"
    assert history[4] == {"role": "assistant", "content": "Hello!"}
    assert len(history) == 5


def test_failures_alerts_and_errors_are_marked():
    failed = event_to_messages(ToolResult("conversation_search", "Failed", "page must be a whole number", "c"))
    assert failed[0]["metadata"]["title"].startswith("❌")
    alert = event_to_messages(SystemAlert("memory_pressure", "80% full"))
    assert alert[0]["metadata"]["title"] == "⚠️ Memory pressure"
    error = event_to_messages(Error("Cannot reach the model server", retryable=True))
    assert "Retry" in error[0]["content"] and error[0]["metadata"]["title"] == "🚫 Error"


def test_status_lines():
    assert "12 prompt" in status_line(Usage(12, 3, "gpt-test", 12, 3))
    assert "Retrying in 2 s" in status_line(Retrying(1, 2.0, "rate limited"))
    assert status_line(Thought("x")) is None


def test_stored_history_round_trip(make_live_agent, scripted, store):
    from engine.context import in_context_rows
    from tests.support.scripted import say, use

    agent = make_live_agent(scripted.enqueue(use("conversation_search", "Looking.", query="x"), say("Found it.")))
    list(agent.step("find x"))
    shown = stored_to_messages(in_context_rows(store, agent.row.id))
    contents = [m["content"] for m in shown]
    assert "find x" in contents and "Found it." in contents
    assert any(m.get("metadata", {}).get("title") == "🛠️ conversation_search" for m in shown)
    assert not any("heartbeat" in str(m["content"]) for m in shown)
