"""The agent loop, driven by a scripted model: events, persistence, heartbeats, failures."""

from __future__ import annotations

import json

import pytest

from engine import system
from engine.agent import AgentOptions
from engine.events import AssistantMessage, Error, SystemAlert, Thought, ToolCall, ToolResult, Usage, UserMessage
from engine.llm.base import Completion, LLMError
from engine.store import messages as messages_store
from tests.support.scripted import call, say, use

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


def kinds(events):
    return [e.kind for e in events]


def test_boot_sequence(make_live_agent, scripted, store):
    agent = make_live_agent(scripted)
    rows = messages_store.list_messages(store, agent.row.id)
    assert [r.role for r in rows] == ["system", "assistant", "tool", "user"]
    assert rows[0].content == agent.row.system_prompt
    assert rows[1].tool_calls[0]["function"]["name"] == "send_message"
    assert rows[2].tool_call_id == rows[1].tool_calls[0]["id"]
    assert system.unpack(rows[3].content)["type"] == "login"
    agent.boot()  # idempotent
    assert len(messages_store.list_messages(store, agent.row.id)) == 4


def test_a_simple_turn(make_live_agent, scripted, store):
    agent = make_live_agent(scripted.enqueue(say("Hello Kim!", thought="They said hi.")))
    events = list(agent.step("hi, I'm Kim"))
    assert kinds(events) == ["user_message", "usage", "thought", "tool_call", "assistant_message", "tool_result"]
    assert events[2] == Thought("They said hi.")
    assert events[4] == AssistantMessage("Hello Kim!")
    assert events[5].status == "OK"
    sent_messages, functions = scripted.calls[0]
    assert sent_messages[0]["role"] == "system"
    assert agent.row.system_prompt in sent_messages[0]["content"]
    assert '<human characters="' in sent_messages[0]["content"]
    last_user = json.loads(sent_messages[-1]["content"])
    assert last_user["type"] == "user_message" and last_user["message"] == "hi, I'm Kim" and last_user["time"]
    assert {f["name"] for f in functions} == set(agent.row.functions)
    rows = messages_store.list_messages(store, agent.row.id)
    assert [r.role for r in rows[-3:]] == ["user", "assistant", "tool"]
    assert json.loads(rows[-1].content)["status"] == "OK"
    assert "Hello Kim!" in agent.recall.search("Kim")


def test_heartbeat_chains_calls(make_live_agent, scripted):
    agent = make_live_agent(scripted.enqueue(
        use("core_memory_append", "Noting the name.", name="human", content="Name: Kim"),
        say("Nice to meet you, Kim."),
    ))
    events = list(agent.step("I'm Kim"))
    assert kinds(events).count("usage") == 2
    assert agent.core.get("human").value.endswith("Name: Kim")
    assert agent.core.history("human")[0].actor == "agent"
    second_call = scripted.calls[1][0]
    assert json.loads(second_call[-1]["content"])["type"] == "heartbeat"
    assert second_call[-2]["role"] == "tool"


@pytest.mark.parametrize(
    "bad_call,expect",
    [
        (call("teleport", {"where": "moon"}), "no function named 'teleport'"),
        (call("core_memory_append", '{"name": "human", "content": '), "not valid JSON"),
        (call("conversation_search", {"query": "x", "page": "two", "request_heartbeat": True}), "must be an integer"),
        (call("core_memory_append", {"name": "human"}), "missing required arguments: content"),
        (call("core_memory_append", {"name": "nope", "content": "x"}), "no core memory block named 'nope'"),
        (call("http_request", {"method": "GET", "url": "http://x"}), "no function named 'http_request'"),
    ],
)
def test_bad_calls_fail_softly_with_a_heartbeat(make_live_agent, scripted, store, bad_call, expect):
    agent = make_live_agent(scripted.enqueue(Completion("Trying.", [bad_call]), say("Sorry about that.")))
    events = list(agent.step("do something"))
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.status == "Failed" and expect in result.message
    assert isinstance(events[-1], ToolResult) and events[-1].status == "OK"  # the model got another turn
    heartbeat = json.loads(scripted.calls[1][0][-1]["content"])
    assert heartbeat["type"] == "heartbeat" and "failed" in heartbeat["reason"]


def test_exception_inside_a_function(runtime, make_live_agent, scripted, home):
    functions = home / "functions"
    functions.mkdir()
    (functions / "boom.py").write_text(
        'def explode(level: int) -> str:\n    """Explode.\n\n    Args:\n        level: How hard.\n    """\n'
        '    raise RuntimeError("kaboom " + str(level))\n'
    )
    runtime.registry.load_user_functions(functions)
    (home / "presets").mkdir()
    (home / "presets" / "boom.yaml").write_text("system_prompt: memgpt_chat\nfunctions: [send_message, explode]\n")
    agent = make_live_agent(scripted.enqueue(use("explode", level=3), say("That broke.")), preset="boom")
    events = list(agent.step("go"))
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.status == "Failed" and "RuntimeError: kaboom 3" in result.message


def test_reply_without_call_is_inner_monologue(make_live_agent, scripted, store):
    agent = make_live_agent(scripted.enqueue(Completion("Just thinking to myself.", [])))
    events = list(agent.step("hmm"))
    assert kinds(events) == ["user_message", "usage", "thought"]
    assert messages_store.list_messages(store, agent.row.id)[-1].content == "Just thinking to myself."


def test_chain_limit(make_live_agent, scripted):
    options = AgentOptions(chain_limit=3, verify_first_message=False)
    agent = make_live_agent(scripted.enqueue(*[use("conversation_search", query="x") for _ in range(5)]), options=options)
    events = list(agent.step("loop forever"))
    assert kinds(events).count("tool_call") == 3
    assert isinstance(events[-1], SystemAlert) and events[-1].alert == "chain_limit"
    assert len(scripted.replies) == 2


def test_first_message_verification(make_live_agent, scripted, store):
    agent = make_live_agent(
        scripted.enqueue(Completion("hm", []), Completion("hm again", []), say("Hello!")), options=AgentOptions()
    )
    events = list(agent.step("hi"))
    assert [e.alert for e in events if isinstance(e, SystemAlert)] == ["verify_retry", "verify_retry"]
    assert AssistantMessage("Hello!") in events
    # Rejected replies were never stored.
    assert not any(r.content == "hm" for r in messages_store.list_messages(store, agent.row.id))
    # Only the first exchange is verified.
    scripted.enqueue(Completion("no call this time", []))
    assert kinds(list(agent.step("again"))) == ["user_message", "usage", "thought"]


def test_first_message_verification_gives_up_and_can_be_off(make_live_agent, scripted):
    agent = make_live_agent(
        scripted.enqueue(*[Completion("x", [])] * 5), options=AgentOptions(first_message_retries=2)
    )
    events = list(agent.step("hi"))
    assert kinds(events).count("usage") == 3 and isinstance(events[-1], Thought)
    agent2 = make_live_agent(scripted.enqueue(Completion("y", [])), name="bob", options=AgentOptions(verify_first_message=False))
    assert kinds(list(agent2.step("hi"))).count("usage") == 1


def test_llm_failure_keeps_the_user_message(make_live_agent, scripted, store):
    agent = make_live_agent(scripted.enqueue(LLMError("the provider refused the request (400)")))
    events = list(agent.step("remember the lighthouse"))
    assert isinstance(events[-1], Error) and "400" in events[-1].message
    assert "lighthouse" in agent.recall.search("lighthouse")
    scripted.enqueue(say("Back again."))
    assert AssistantMessage("Back again.") in list(agent.retry())
    rows = messages_store.list_messages(store, agent.row.id)
    assert sum(1 for r in rows if r.name == "user_message") == 1  # the retry did not duplicate it


def test_empty_and_oversized_messages(make_live_agent, scripted):
    agent = make_live_agent(scripted, options=AgentOptions(max_user_message_chars=100))
    assert isinstance(next(iter(agent.step("   "))), Error)
    events = list(agent.step("x" * 101))
    assert isinstance(events[0], Error) and "limit is 100" in events[0].message
    assert scripted.calls == []


def test_usage_is_recorded(make_live_agent, scripted):
    agent = make_live_agent(scripted.enqueue(use("conversation_search", query="x"), say("done")))
    events = list(agent.step("hi"))
    usages = [e for e in events if isinstance(e, Usage)]
    assert usages[-1].step_prompt_tokens == 200 and usages[-1].step_completion_tokens == 20
    assert agent.usage_totals() == (2, 200, 20)


def test_user_message_event_first(make_live_agent, scripted):
    agent = make_live_agent(scripted.enqueue(say("ok")))
    first = next(iter(agent.step("hello there")))
    assert first == UserMessage("hello there", "user_message")


def test_tool_call_event_has_arguments(make_live_agent, scripted):
    agent = make_live_agent(scripted.enqueue(use("archival_memory_insert", content="Kim likes tea"), say("Noted.")))
    events = list(agent.step("I like tea"))
    tool_call = next(e for e in events if isinstance(e, ToolCall))
    assert tool_call.name == "archival_memory_insert" and tool_call.arguments["content"] == "Kim likes tea"
    assert "Kim likes tea" in agent._tool_context(None).archival.search("tea").format()


def test_one_reply_runs_at_most_so_many_calls_and_answers_every_one(make_live_agent, scripted, store):
    from engine.agent import MAX_CALLS_PER_REPLY
    from engine.context import in_context_rows

    agent = make_live_agent(scripted)
    many = [call("send_message", {"message": f"part {i}"}) for i in range(MAX_CALLS_PER_REPLY + 4)]
    scripted.enqueue(Completion("Saying a lot.", many, 100, 10, "scripted"), say("Done."))
    events = list(agent.step("talk"))
    said = [e.text for e in events if isinstance(e, AssistantMessage)]
    assert said[:MAX_CALLS_PER_REPLY] == [f"part {i}" for i in range(MAX_CALLS_PER_REPLY)]
    assert f"part {MAX_CALLS_PER_REPLY}" not in said  # not run ...
    ids = {c.id for c in many}
    results = [e for e in events if isinstance(e, ToolResult) and e.call_id in ids]
    assert len(results) == len(many)  # ... but answered, so each call keeps its result
    assert all("was not run" in r.message for r in results[MAX_CALLS_PER_REPLY:])
    assert said[-1] == "Done."  # the failures asked for a heartbeat: the model went on
    assert agent.context().total > 0 and in_context_rows(store, agent.row.id)  # the history still loads
