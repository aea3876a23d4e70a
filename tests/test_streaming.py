"""Token streaming: the real openai client reading server-sent events from the fake server, into partial events."""

from __future__ import annotations

import json
import threading

import pytest

from engine import MemGPT
from engine.agent import Agent, AgentOptions
from engine.config import LLMConfig, load_settings
from engine.events import AssistantMessage, MessageDelta, Retrying, Thought, ThoughtDelta, ToolCall, ToolResult
from engine.llm.client import make_client
from engine.llm.openai_provider import OpenAIProvider
from engine.llm.retry import RetryPolicy
from engine.streaming import MessageField

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_elapsed=10)
LONG = "Owls hunt at night; their feathers make them nearly silent. " * 4


def tool_call(name, arguments, call_id="call_1"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def send(message, thought="Answering.", call_id="call_1"):
    return {"content": thought, "tool_calls": [tool_call("send_message", {"message": message}, call_id)]}


def provider_for(fake_openai) -> OpenAIProvider:
    return OpenAIProvider(make_client("openai-compatible", fake_openai.base_url, timeout=5.0), "gpt-test", 8192)


@pytest.fixture
def live(runtime, make_agent, embedder, fake_openai):
    def make(name: str = "remote", **options):
        make_agent(name, llm=LLMConfig(endpoint_type="openai-compatible", model="gpt-test",
                                       endpoint=fake_openai.base_url))
        return Agent.load(runtime, name, provider=provider_for(fake_openai), embedder=embedder,
                          options=AgentOptions(verify_first_message=False, retry=FAST_RETRY, **options))

    return make


def chat_bodies(fake_openai) -> list[dict]:
    return [body for path, body in fake_openai.requests if path.endswith("/chat/completions")]


def test_deltas_arrive_in_order_and_add_up_to_the_whole(live, fake_openai):
    agent = live()
    fake_openai.queue_chat(send(LONG, thought="They asked about owls; I know a fair bit."))
    events = list(agent.step("Tell me about owls"))
    thoughts = [e.text for e in events if isinstance(e, ThoughtDelta)]
    said = [e.text for e in events if isinstance(e, MessageDelta)]
    assert len(thoughts) > 3 and len(said) > 10  # it came in pieces
    assert "".join(thoughts) == "They asked about owls; I know a fair bit."
    assert "".join(said) == LONG
    kinds = [e.kind for e in events]
    # Every piece comes before the whole events, which are as without streaming.
    assert max(i for i, k in enumerate(kinds) if k.endswith("_delta")) < kinds.index("thought")
    assert Thought("They asked about owls; I know a fair bit.") in events and AssistantMessage(LONG) in events
    body = chat_bodies(fake_openai)[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert [e for e in events if e.kind == "usage"][0].prompt_tokens == 10  # usage came in the stream


def test_a_stream_without_usage_is_counted_here_and_says_so(live, fake_openai, runtime):
    from engine import tokens
    from engine.store import agents as agents_store

    fake_openai.refuse_stream_options = True  # a server that streams but sends no usage
    agent = live()
    fake_openai.queue_chat(send(LONG, thought="They asked about owls."))
    events = list(agent.step("Tell me about owls"))
    usage = next(e for e in events if e.kind == "usage")
    assert "stream_options" not in chat_bodies(fake_openai)[-1]
    assert usage.estimated
    # The prompt as the agent's context counts it, the reply as the tokenizer counts its text and call.
    assert usage.prompt_tokens > 500  # the system prompt, memory and function schemas alone are more
    said = json.dumps({"message": LONG})
    assert usage.completion_tokens == (tokens.count("They asked about owls.") + tokens.count("send_message")
                                       + tokens.count(said))
    calls, prompt, completion = agents_store.usage_totals(runtime.store, agent.row.id)
    assert (calls, prompt, completion) == (1, usage.prompt_tokens, usage.completion_tokens)


def test_usage_the_server_sends_is_not_an_estimate(live, fake_openai):
    agent = live()
    fake_openai.queue_chat(send("Hello."))
    usage = next(e for e in agent.step("hi") if e.kind == "usage")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.estimated) == (10, 5, False)


def test_tool_call_arguments_split_across_chunks_assemble(fake_openai):
    fake_openai.stream_chunk_chars = 3
    tricky = {"name": "human", "content": 'Says "hi" \\ 🦉 naïve\nline two', "request_heartbeat": True}
    fake_openai.queue_chat({"content": None, "tool_calls": [
        tool_call("core_memory_append", tricky, "c1"), tool_call("send_message", {"message": "é 🦉 \"ok\""}, "c2")]})
    pieces = []
    completion = provider_for(fake_openai).stream_complete(
        [{"role": "user", "content": "hi"}], [{"name": "send_message", "parameters": {}}], pieces.append)
    assert [(c.id, c.name) for c in completion.calls] == [("c1", "core_memory_append"), ("c2", "send_message")]
    assert json.loads(completion.calls[0].arguments) == tricky
    assert json.loads(completion.calls[1].arguments) == {"message": 'é 🦉 "ok"'}
    assert completion.content is None and completion.completion_tokens == 5
    assert len([p for p in pieces if p.call_index == 0]) > 10


def test_the_message_field_reads_every_split(fake_openai):
    raw = json.dumps({"message": 'Tabs\tand "quotes", \\ back, 🦉 and \u00e9', "other": 1})
    for cut in range(len(raw) + 1):  # one split at every position, escapes and surrogates included
        field = MessageField()
        assert field.feed(raw[:cut]) + field.feed(raw[cut:]) == 'Tabs\tand "quotes", \\ back, 🦉 and é'
    field = MessageField()
    assert "".join(field.feed(ch) for ch in raw) == 'Tabs\tand "quotes", \\ back, 🦉 and é'
    broken = MessageField()
    assert broken.feed('{"message": "a\\uZZZZb\\ud800x') == "a\ufffdb\ufffdx"  # never an exception
    assert MessageField().feed('{"text": "no message here"}') == ""


def test_a_server_that_ignores_stream_still_works(live, fake_openai):
    fake_openai.ignore_stream = True
    agent = live()
    fake_openai.queue_chat(send("Whole reply."))
    events = list(agent.step("hi"))
    assert AssistantMessage("Whole reply.") in events
    assert not [e for e in events if e.partial]
    assert chat_bodies(fake_openai)[0]["stream"] is True


def test_a_stream_cut_midway_is_retried_and_the_retry_replaces_the_pieces(live, fake_openai, runtime):
    agent = live()
    fake_openai.queue_chat({**send("First try that never ends.", thought="Thinking"), "cut_after": 6})
    fake_openai.queue_chat(send("Second try, whole."))
    events = list(agent.step("hi"))
    kinds = [e.kind for e in events]
    assert "retrying" in kinds
    retry_at = kinds.index("retrying")
    assert "broke off" in events[retry_at].reason or "ended before" in events[retry_at].reason
    before = "".join(e.text for e in events[:retry_at] if isinstance(e, (ThoughtDelta, MessageDelta)))
    assert before and "never ends" not in before  # a part was shown...
    after = "".join(e.text for e in events[retry_at:] if isinstance(e, MessageDelta))
    assert after == "Second try, whole."  # ...and what follows the Retrying is the new reply alone
    assert [e.text for e in events if isinstance(e, AssistantMessage)] == ["Second try, whole."]
    stored = [m.text for m in MemGPT(runtime=runtime).messages("remote")]
    assert not any("First try" in t for t in stored)


def test_refused_stream_options_and_refused_stream_fall_back(live, fake_openai):
    fake_openai.refuse_stream_options = True
    agent = live()
    fake_openai.queue_chat(send("Streamed, without usage."))
    fake_openai.queue_chat(send("Again."))
    events = list(agent.step("hi"))
    assert AssistantMessage("Streamed, without usage.") in events and [e for e in events if e.partial]
    list(agent.step("again"))
    bodies = chat_bodies(fake_openai)
    assert "stream_options" in bodies[0] and "stream_options" not in bodies[1] and "stream_options" not in bodies[2]

    provider = provider_for(fake_openai)
    fake_openai.chat_replies.append((400, {"error": {"message": "streaming is not supported by this server",
                                                      "type": "invalid_request_error"}}))
    fake_openai.queue_chat(send("Whole."))
    completion = provider.stream_complete([{"role": "user", "content": "hi"}], [], lambda d: None)
    assert json.loads(completion.calls[0].arguments) == {"message": "Whole."}
    assert provider.streaming is False and "stream" not in chat_bodies(fake_openai)[-1]


def test_stop_during_a_stream_ends_the_step_with_what_was_said_stored(runtime, fake_openai, embedder, make_agent):
    api = MemGPT(runtime=runtime)
    make_agent("ada", llm=LLMConfig(endpoint_type="openai-compatible", model="gpt-test",
                                    endpoint=fake_openai.base_url))
    agent = Agent.load(runtime, "ada", provider=provider_for(fake_openai), embedder=embedder,
                       options=AgentOptions(verify_first_message=False, retry=FAST_RETRY))
    fake_openai.queue_chat({"content": "Noting.", "tool_calls": [tool_call(
        "core_memory_append", {"name": "human", "content": "Lost a key.", "request_heartbeat": True}, "c0")]})
    fake_openai.queue_chat(send(LONG * 3, call_id="c1"))
    fake_openai.stream_delay = 0.02
    stop = threading.Event()
    seen = []
    for event in api.stoppable("ada", agent.step("Where is my key?"), stop.is_set):
        seen.append(event)
        if isinstance(event, MessageDelta):
            stop.set()  # mid-stream of the second call
    assert isinstance(seen[-1], MessageDelta)  # ended at once, not after the whole reply
    assert not any(isinstance(e, AssistantMessage) for e in seen)
    assert ToolResult("core_memory_append", "OK", seen[[e.kind for e in seen].index("tool_result")].message,
                      "c0") in seen
    assert not agent.busy
    stored = " ".join(f"{m.text} {json.dumps(m.tool_calls)}" for m in api.messages("ada"))
    assert "Where is my key?" in stored and "Lost a key." in stored and "Owls hunt" not in stored
    fake_openai.stream_delay = 0.0
    fake_openai.chat_replies.clear()
    fake_openai.queue_chat(send("Under the pot.", call_id="c2"))
    # The store is whole: the fake refuses a history with a call left unanswered, as OpenAI does.
    assert AssistantMessage("Under the pot.") in list(agent.step("And now?"))


@pytest.mark.parametrize("how", ["options", "settings"])
def test_streaming_can_be_turned_off(live, fake_openai, home, monkeypatch, how):
    if how == "settings":
        (home / "config.yaml").write_text("stream: false\n")
        agent = live()
        agent.settings = load_settings(home)
        assert agent.settings.stream is False
    else:
        agent = live(stream=False)
    fake_openai.queue_chat(send("Whole."))
    events = list(agent.step("hi"))
    assert AssistantMessage("Whole.") in events and not [e for e in events if e.partial]
    assert "stream" not in chat_bodies(fake_openai)[0]
    monkeypatch.setenv("MEMGPT_STREAM", "1")
    assert load_settings(home).stream is True  # the environment wins


def test_tool_calls_stream_too_without_message_pieces(live, fake_openai):
    agent = live()
    fake_openai.queue_chat({"content": None, "tool_calls": [tool_call(
        "conversation_search", {"query": "owls", "request_heartbeat": True}, "c0")]})
    fake_openai.queue_chat(send("Nothing found."))
    events = list(agent.step("hi"))
    assert ToolCall("conversation_search", {"query": "owls", "request_heartbeat": True}, "c0") in events
    assert "".join(e.text for e in events if isinstance(e, MessageDelta)) == "Nothing found."
    assert not [e for e in events if isinstance(e, Retrying)]
