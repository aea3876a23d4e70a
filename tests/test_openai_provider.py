"""The `openai` provider against a real local HTTP server speaking the chat-completions format."""

from __future__ import annotations

import json
import re

import pytest

from engine.agent import Agent, AgentOptions
from engine.config import LLMConfig
from engine.errors import ConfigError
from engine.events import AssistantMessage, Error, Retrying, SystemAlert, Usage
from engine.llm.client import make_client
from engine.llm.openai_provider import OpenAIProvider
from engine.llm.providers import make_provider
from engine.llm.retry import RetryPolicy

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_elapsed=5)


def tool_call(name, arguments, call_id="call_1"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def send(message, thought="Answering."):
    return {"content": thought, "tool_calls": [tool_call("send_message", {"message": message})]}


@pytest.fixture
def live(runtime, make_agent, embedder, fake_openai):
    def make(timeout: float = 5.0, name: str = "remote", window: int | None = None):
        make_agent(name, llm=LLMConfig(endpoint_type="openai-compatible", model="gpt-test",
                                       endpoint=fake_openai.base_url, context_window=window))
        provider = OpenAIProvider(make_client("openai-compatible", fake_openai.base_url, timeout=timeout),
                                  "gpt-test", window or 8192)
        options = AgentOptions(verify_first_message=False, retry=FAST_RETRY)
        return Agent.load(runtime, name, provider=provider, embedder=embedder, options=options)

    return make


def test_tool_calls_and_usage(live, fake_openai):
    agent = live()
    fake_openai.queue_chat({
        "content": "Saving that.",
        "tool_calls": [tool_call("core_memory_append", {"name": "human", "content": "Likes owls",
                                                        "request_heartbeat": True})],
        "usage": {"prompt_tokens": 1234, "completion_tokens": 56, "total_tokens": 1290},
    })
    fake_openai.queue_chat(send("Owls are great."))
    events = list(agent.step("I love owls"))
    assert AssistantMessage("Owls are great.") in events
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage[0].prompt_tokens == 1234 and usage[0].completion_tokens == 56 and usage[0].model == "gpt-test"
    assert "Likes owls" in agent.core.get("human").value
    path, body = [r for r in fake_openai.requests if r[0].endswith("/chat/completions")][0]
    assert body["model"] == "gpt-test"
    assert {t["function"]["name"] for t in body["tools"]} == set(agent.row.functions)
    assert body["messages"][0]["role"] == "system"
    # The second request carries the call, its result and the heartbeat, in order.
    second = [r for r in fake_openai.requests if r[0].endswith("/chat/completions")][1][1]["messages"]
    assert [m["role"] for m in second[-3:]] == ["assistant", "tool", "user"]
    assert second[-2]["tool_call_id"] == "call_1"


@pytest.mark.parametrize("bad_id", [{"not": "a string"}, ["x"], 7, "x" * 300])
def test_a_call_id_that_is_not_a_short_string_is_replaced_and_the_agent_lives_on(live, fake_openai, runtime,
                                                                                 embedder, bad_id):
    agent = live()
    call = tool_call("send_message", {"message": "Hello there."})
    call["id"] = bad_id  # a hostile or broken server; stored as given, it made the history unloadable
    fake_openai.queue_chat({"content": "Greeting.", "tool_calls": [call]})
    assert AssistantMessage("Hello there.") in list(agent.step("hi"))
    fake_openai.queue_chat(send("Still here."))
    assert AssistantMessage("Still here.") in list(agent.step("again"))
    reloaded = Agent.load(runtime, "remote", provider=agent.provider, embedder=embedder)
    assert reloaded.context().total > 0  # the history loads: every call is paired with its result


def test_rate_limit_then_success(live, fake_openai):
    agent = live()
    fake_openai.queue_chat((429, {"error": {"message": "slow down", "type": "rate_limit"}}))
    fake_openai.queue_chat(send("Made it."))
    events = list(agent.step("hi"))
    retries = [e for e in events if isinstance(e, Retrying)]
    assert len(retries) == 1 and "Rate limited" in retries[0].reason
    assert AssistantMessage("Made it.") in events


def test_server_error_storm_gives_up_cleanly(live, fake_openai):
    agent = live()
    for _ in range(5):
        fake_openai.queue_chat((500, {"error": {"message": "boom"}}))
    events = list(agent.step("hi"))
    assert len([e for e in events if isinstance(e, Retrying)]) == 2
    assert isinstance(events[-1], Error) and "500" in events[-1].message and events[-1].retryable
    assert "hi" in agent.recall.search("hi")  # the user message is kept
    fake_openai.chat_replies.clear()
    fake_openai.queue_chat(send("Recovered."))
    assert AssistantMessage("Recovered.") in list(agent.retry())


def test_context_length_error_summarizes(live, fake_openai):
    agent = live()
    for i in range(3):
        fake_openai.queue_chat(send(f"answer {i}"))
        list(agent.step(f"question {i}"))
    fake_openai.queue_chat((400, {"error": {"message": "This model's maximum context length is 8192 tokens.",
                                            "code": "context_length_exceeded", "type": "invalid_request_error"}}))
    fake_openai.queue_chat({"content": "I remember three questions."})  # the summary call
    fake_openai.queue_chat(send("Still here."))
    events = list(agent.step("one more"))
    assert [e.alert for e in events if isinstance(e, SystemAlert)] == ["summarized"]
    assert AssistantMessage("Still here.") in events
    summary_request = [b for p, b in fake_openai.requests if p.endswith("/chat/completions") and "tools" not in b]
    assert summary_request and "first person" in summary_request[0]["messages"][0]["content"]


def test_timeout_is_retried_then_reported(live, fake_openai):
    agent = live(timeout=0.3)
    for _ in range(3):
        fake_openai.queue_chat(1.0)  # stall longer than the client waits
    events = list(agent.step("hi"))
    assert isinstance(events[-1], Error) and "in time" in events[-1].message


def test_bad_key_is_not_retried(live, fake_openai):
    agent = live()
    fake_openai.queue_chat((401, {"error": {"message": "invalid api key"}}))
    events = list(agent.step("hi"))
    assert not [e for e in events if isinstance(e, Retrying)]
    assert isinstance(events[-1], Error) and "API key" in events[-1].message and not events[-1].retryable


def test_dead_endpoint_is_a_readable_error(runtime, make_agent, embedder):
    make_agent("dead", llm=LLMConfig(endpoint_type="openai-compatible", model="m", endpoint="http://127.0.0.1:9/v1"))
    provider = OpenAIProvider(make_client("openai-compatible", "http://127.0.0.1:9/v1", timeout=1), "m", 8192)
    agent = Agent.load(runtime, "dead", provider=provider, embedder=embedder,
                       options=AgentOptions(verify_first_message=False, retry=FAST_RETRY))
    events = list(agent.step("anyone there?"))
    assert isinstance(events[-1], Error) and "Cannot reach the model server" in events[-1].message


def test_provider_choice():
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_provider(LLMConfig(endpoint_type="openai", model="gpt-4o-mini"))
    with pytest.raises(ConfigError, match="base URL"):
        make_provider(LLMConfig(endpoint_type="openai-compatible", model="m"))
    provider = make_provider(LLMConfig(endpoint_type="openai-compatible", model="gpt-4o-mini", endpoint="http://x/v1"))
    assert provider.context_window == 128_000
    assert make_provider(LLMConfig(endpoint_type="openai-compatible", model="m", endpoint="http://x/v1",
                                   context_window=2048)).context_window == 2048


def test_agent_without_model_configured_says_what_to_do(runtime, make_agent, embedder, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    make_agent("offline", llm=LLMConfig(endpoint_type="openai", model="gpt-4o-mini"))
    agent = Agent.load(runtime, "offline", embedder=embedder, options=AgentOptions(verify_first_message=False))
    events = list(agent.step("hello"))
    assert isinstance(events[-1], Error) and "OPENAI_API_KEY" in events[-1].message


def test_a_server_that_knows_only_the_older_functions_field_still_works(live, fake_openai):
    """It refuses `tools` (HTTP 400); the provider switches to `functions` and the history's shape once."""
    fake_openai.legacy_only = True
    agent = live(name="legacy")
    fake_openai.queue_chat({"content": "Saving that.", "tool_calls": [
        tool_call("core_memory_append", {"name": "human", "content": "Likes owls", "request_heartbeat": True})]})
    fake_openai.queue_chat(send("Owls are great."))
    events = list(agent.step("I love owls"))
    assert AssistantMessage("Owls are great.") in events, events
    assert "Likes owls" in agent.core.get("human").value
    chats = [body for path, body in fake_openai.requests if path.endswith("/chat/completions")]
    assert "tools" in chats[0] and "functions" in chats[1] and "tools" not in chats[1]  # refused once, then legacy
    assert {f["name"] for f in chats[1]["functions"]} == set(agent.row.functions)
    last = chats[-1]["messages"]
    assert [m["role"] for m in last[-3:]] == ["assistant", "function", "user"]
    assert last[-3]["function_call"]["name"] == "core_memory_append" and last[-2]["name"] == "core_memory_append"
    assert all("tools" not in body for body in chats[2:])  # learned: no second refusal per call


def test_the_conversation_reaches_the_server_exactly_as_built(fake_openai):
    """Messages and schemas skip the client's typed transform: what the server gets is what we built."""
    messages = [
        {"role": "system", "content": "You are Sam. Ünïcode ✓ and \"quotes\"."},
        {"role": "assistant", "content": None, "tool_calls": [tool_call("send_message", {"message": "hi"}, "c1")]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "OK"}'},
        {"role": "user", "content": "What did I say?", "name": "user"},
    ]
    functions = [{"name": "send_message", "description": "Say it.",
                  "parameters": {"type": "object", "properties": {"message": {"type": "string"}},
                                 "required": ["message"]}}]
    fake_openai.queue_chat(send("You said hi."))
    provider = OpenAIProvider(make_client("openai-compatible", fake_openai.base_url, timeout=5), "gpt-test", 8192)
    completion = provider.complete(messages, functions)
    assert completion.calls[0].name == "send_message"
    body = fake_openai.requests[-1][1]
    assert body["messages"] == messages
    assert body["tools"] == [{"type": "function", "function": functions[0]}] and body["tool_choice"] == "auto"
    assert body["model"] == "gpt-test"


def test_the_system_message_stays_the_same_until_memory_changes(live, fake_openai):
    """A server's prompt cache then holds the whole conversation; the recall count moves with the memory."""
    agent = live(name="cached")
    for text in ("Hello!", "How are you?"):
        fake_openai.queue_chat(send("Fine."))
        list(agent.step(text))
    fake_openai.queue_chat({"content": "Noting.", "tool_calls": [tool_call(
        "core_memory_append", {"name": "human", "content": "Likes owls", "request_heartbeat": True})]})
    fake_openai.queue_chat(send("Noted."))
    list(agent.step("I love owls"))
    systems = [body["messages"][0]["content"] for path, body in fake_openai.requests
               if path.endswith("/chat/completions")]
    assert len(systems) == 4
    assert systems[0] == systems[1] == systems[2]  # two steps and a call later: byte for byte the same
    assert "Likes owls" in systems[3] and systems[3] != systems[2]
    held = [int(m) for m in re.findall(r"Recall memory holds (\d+) earlier", "\n".join(systems))]
    assert held[3] > held[0]  # rendered afresh with the edit, counting what was said since


@pytest.mark.parametrize("url, local", [
    ("http://127.0.0.1:8080/v1", True), ("http://localhost:11434/v1", True), ("http://[::1]:1234/v1", True),
    ("https://api.example.com/v1", False), ("http://10.0.0.5:8000/v1", False), ("http://127.0.0.1.example.com/v1", False),
])
def test_a_server_on_this_machine_gets_minutes_per_call(url, local):
    provider = make_provider(LLMConfig("openai-compatible", "m", url))
    assert provider.call_timeout == (300.0 if local else 60.0)
