"""The pure event -> chat message mapping the web app uses."""

from __future__ import annotations

import json

from engine import MemGPT
from engine.config import EmbeddingConfig, LLMConfig
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
from webapp.render import apply_event, call_title, event_to_messages, status_line, stored_to_messages


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
    # titled with its arguments (markdown-escaped), and closed by its result
    assert call["metadata"] == {"title": '🛠️ core\\_memory\\_append(human, "x")', "status": "done"}
    assert "request_heartbeat" not in call["content"] and '"label": "human"' in call["content"]
    assert history[3]["metadata"]["title"] == "✅ core\\_memory\\_append → OK"
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
    assert "about" not in status_line(Usage(12, 3, "gpt-test", 12, 3))
    counted = status_line(Usage(1200, 30, "gpt-test", 1200, 30, estimated=True))
    assert "about 1,200 prompt" in counted and "the server sent no usage" in counted
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
    assert any(m.get("metadata", {}).get("title") == '🛠️ conversation\\_search("x")' for m in shown)
    assert not any("heartbeat" in str(m["content"]) for m in shown)


def _turn(calls: list[dict], thought: str | None = None) -> dict:
    return {"content": thought, "tool_calls": calls}


def _call(function: str, call_id: str, /, **arguments) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": function, "arguments": json.dumps(arguments)}}


HOSTILE = "<img src=x onerror=alert(1)> **bold** [link](http://evil.example) " + "A" * 3_000


def test_a_step_renders_the_same_live_and_after_reload(runtime, fake_openai):
    """The real openai client over HTTP; the live events and the stored rows give the same chat."""
    api = MemGPT(runtime=runtime)
    api.create_agent("ada", llm=LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url),
                     embedding=EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url))
    fake_openai.queue_chat(_turn([_call("send_message", "s0", message="Hi!")]))
    list(api.open_agent("ada").step("hello"))
    before = stored_to_messages(api.messages("ada"))
    fake_openai.queue_chat(_turn([_call("core_memory_append", "c1", name="human", content="likes tea",
                                        request_heartbeat=True)], "Noting that."))
    fake_openai.queue_chat(_turn([_call("archival_memory_search", "c2", query="Luna's birthday",
                                        request_heartbeat=True)]))
    fake_openai.queue_chat(_turn([_call("conversation_search", "c3", query=HOSTILE, request_heartbeat=True)]))
    fake_openai.queue_chat(_turn([_call("no_such_tool", "c4", x=1, request_heartbeat=True)]))
    fake_openai.queue_chat(_turn([_call("send_message", "c5", message="Done.")], "All set."))
    live = list(before)
    for event in api.open_agent("ada").step("I like tea. When is Luna's birthday?"):
        live = apply_event(live, event)
    fake_openai.queue_chat(_turn([_call("send_message", "h1", message="Still here.")], "Woken up."))
    for event in api.open_agent("ada").heartbeat():  # the Developer group's Heartbeat
        live = apply_event(live, event)
    reloaded = stored_to_messages(api.messages("ada"))
    assert live == reloaded
    titles = [m["metadata"]["title"] for m in reloaded[len(before):] if m.get("metadata")]
    assert titles[:5] == [
        "💭 Inner monologue",
        '🛠️ core\\_memory\\_append(human, "likes tea")',
        "✅ core\\_memory\\_append → OK",
        '🛠️ archival\\_memory\\_search("Luna\'s birthday")',
        "✅ archival\\_memory\\_search → OK",
    ]
    hostile = titles[5]
    assert len(hostile) < 200 and "<" not in hostile and "**" not in hostile and "[link]" not in hostile
    assert hostile.startswith("🛠️ conversation\\_search(") and "…" in hostile
    assert "❌ no\\_such\\_tool → Failed" in titles
    assert {"role": "assistant", "content": "Done."} in reloaded
    assert "💓 Heartbeat" in titles and reloaded[-1] == {"role": "assistant", "content": "Still here."}


def test_titles_are_one_short_escaped_line():
    title = call_title("x<b>", {"q": "line one\n```\nline two", "n": 3, "deep": {"a": [1] * 100},
                                "request_heartbeat": True})
    assert "\n" not in title and "<b>" not in title and "```" not in title
    assert "request" not in title and len(title) < 200
    assert call_title("core_memory_replace", {"name": "<b>", "old_content": "a", "new_content": ""}) == \
        '🛠️ core\\_memory\\_replace("&lt;b&gt;", "a", "")'


def test_box_contents_are_bounded():
    box = event_to_messages(ToolCall("archival_memory_insert", {"content": "x" * 100_000}, "c"))[0]
    assert len(box["content"]) < 5_000 and box["content"].startswith("```json")


def _render(events) -> list:
    history: list = []
    for event in events:
        history = apply_event(history, event)
    return history


def test_a_streamed_reply_grows_in_place_and_ends_as_if_it_had_not_streamed():
    from engine.events import MessageDelta, ThoughtDelta

    whole = [
        UserMessage("hi"),
        Thought("Saving, then answering."),
        ToolCall("core_memory_append", {"name": "human", "content": "x", "request_heartbeat": False}, "c1"),
        ToolResult("core_memory_append", "OK", "Saved.", "c1"),
        ToolCall("send_message", {"message": "Hello there!"}, "c2"),
        AssistantMessage("Hello there!"),
        ToolResult("send_message", "OK", "None", "c2"),
    ]
    pieces = [ThoughtDelta("Saving, "), ThoughtDelta("then answering."), MessageDelta("Hello "), MessageDelta("there!")]
    history = _render(whole[:1] + pieces[:1])
    assert history[-1]["content"] == "Saving, " and history[-1]["metadata"]["status"] == "pending"
    history = _render(whole[:1] + pieces)
    assert [m["content"] for m in history[1:]] == ["Saving, then answering.", "Hello there!"]  # grown in place
    assert history[-1]["metadata"].get("title") is None  # a bubble, not a box
    streamed = _render(whole[:1] + pieces + [Usage(1, 1, "m", 1, 1)] + whole[1:])
    assert streamed == _render(whole)  # the boxes before the words, as the store has them


def test_a_retry_or_an_alert_drops_the_pieces_shown():
    from engine.events import MessageDelta, ThoughtDelta

    history = _render([UserMessage("hi"), ThoughtDelta("Half a thou"), MessageDelta("Half a sen")])
    assert len(history) == 3
    assert _render([UserMessage("hi"), ThoughtDelta("Half"), Retrying(1, 0.5, "cut")]) == [
        {"role": "user", "content": "hi"}]
    after = _render([UserMessage("hi"), MessageDelta("Half"), SystemAlert("verify_retry", "again"),
                     MessageDelta("Whole"), AssistantMessage("Whole")])
    assert [m["content"] for m in after] == ["hi", "again", "Whole"]
