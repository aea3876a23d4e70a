"""The `completions` provider against a real local HTTP server speaking `/v1/completions`.

The server (tests/support/fake_completions.py) answers with raw texts queued the
way local models write them and records every request body.
"""

from __future__ import annotations

import json

import pytest

from engine import tokens
from engine.agent import Agent, AgentOptions
from engine.config import LLMConfig
from engine.errors import ConfigError
from engine.events import AssistantMessage, Error, Retrying, SystemAlert, Thought, ToolCall, ToolResult, Usage
from engine.llm import grammars
from engine.llm.base import ContextWindowExceeded, LLMError
from engine.llm.client import make_client
from engine.llm.completions_provider import PARSE_ATTEMPTS, CompletionsProvider
from engine.llm.retry import RetryPolicy
from tests.support.fake_completions import FakeCompletions

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_elapsed=5)
NO_RETRY = RetryPolicy(max_attempts=1)


def reply(message: str, thoughts: str = "Answering.") -> str:
    """A chatml reply as the model writes it after the prompt's opening brace."""
    return f' "inner_thoughts": "{thoughts}", "function": "send_message", "params": {{"message": "{message}"}}}}'


@pytest.fixture
def server(embedder):
    fake = FakeCompletions(embed=lambda text: embedder.embed([text])[0]).start()
    yield fake
    fake.stop()


@pytest.fixture
def provider(server):
    def make(window: int = 8192, **kwargs) -> CompletionsProvider:
        client = make_client("completions", server.base_url, timeout=5)
        return CompletionsProvider(client, "local-test", window, **kwargs)

    return make


@pytest.fixture
def live(runtime, make_agent, embedder, server, provider):
    def make(name: str = "local", retry: RetryPolicy = FAST_RETRY, **kwargs) -> Agent:
        make_agent(name, llm=LLMConfig(endpoint_type="completions", model="local-test", endpoint=server.base_url,
                                       wrapper=kwargs.get("wrapper")))
        options = AgentOptions(verify_first_message=False, retry=retry)
        return Agent.load(runtime, name, provider=provider(**kwargs), embedder=embedder, options=options)

    return make


def test_a_step_with_a_repaired_reply(live, server):
    agent = live(wrapper="chatml", grammar=True)
    server.queue_completion(' "inner_thoughts": "Greet Kim.", "function": "send_message", '
                            '"params": {"message": "Hello Kim!"}</s>')  # no closing brace, then an end token
    events = list(agent.step("Hi, I'm Kim"))
    assert Thought("Greet Kim.") in events and AssistantMessage("Hello Kim!") in events
    usage = [e for e in events if isinstance(e, Usage)][0]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.model) == (100, 20, "local-test")

    body = server.completion_requests()[0]
    assert body["model"] == "local-test" and body["max_tokens"] == 512 and body["temperature"] == 0.7
    assert body["stop"] == ["<|im_end|>", "<|im_start|>"]
    assert body["prompt"].startswith("<|im_start|>system\n")
    assert body["prompt"].endswith("<|im_start|>assistant\n{")
    assert "Hi, I'm Kim" in body["prompt"]
    # The grammar admits only the agent's functions, and starts after the prompt's "{".
    grammar = body["grammar"]
    assert grammar.startswith("root ::= call\n")
    for name in agent.row.functions:
        assert f'"\\"{name}\\""' in grammar
    assert "message_chatgpt" not in grammar


def test_calls_chain_and_come_back_in_the_prompt(live, server):
    agent = live(wrapper="airoboros-inner-monologue")
    # request_heartbeat left out: the repair adds it, so the agent gets control back.
    server.queue_completion('"inner_thoughts": "Save it.", "function": "core_memory_append", '
                            '"params": {"name": "human", "content": "Kim loves tea"}}')
    server.queue_completion(reply("Noted: tea!"))
    events = list(agent.step("I love tea"))
    assert [e.name for e in events if isinstance(e, ToolCall)] == ["core_memory_append", "send_message"]
    assert all(e.status == "OK" for e in events if isinstance(e, ToolResult))
    assert "Kim loves tea" in agent.core.get("human").value
    first, second = server.completion_requests()
    assert "grammar" not in first and first["stop"] == ["\nUSER:", "\nASSISTANT:", "</s>"]
    assert ('ASSISTANT: {"inner_thoughts": "Save it.", "function": "core_memory_append", "params": '
            '{"name": "human", "content": "Kim loves tea", "request_heartbeat": true}}') in second["prompt"]
    assert "USER: Function result: OK: None" in second["prompt"]


def test_unreadable_reply_is_asked_for_again(provider, server, registry):
    functions = registry.schemas(["send_message"])
    server.queue_completion("I'm not sure what you mean.")
    server.queue_completion(reply("Second time lucky."))
    completion = provider().complete([{"role": "system", "content": "Be kind."}], functions)
    assert [c.name for c in completion.calls] == ["send_message"]
    assert json.loads(completion.calls[0].arguments) == {"message": "Second time lucky."}
    assert (completion.prompt_tokens, completion.completion_tokens) == (200, 40)  # both requests count
    assert len(server.completion_requests()) == 2


def test_unreadable_replies_end_in_an_error_the_user_sees(live, provider, server, registry):
    for _ in range(PARSE_ATTEMPTS):
        server.queue_completion("Hello! How can I help you today?")
    with pytest.raises(LLMError, match="could not be read as a function call") as caught:
        provider().complete([{"role": "system", "content": "x"}], registry.schemas(["send_message"]))
    assert caught.value.retryable and "How can I help" in str(caught.value)
    assert len(server.completion_requests()) == PARSE_ATTEMPTS

    agent = live(retry=NO_RETRY)
    for _ in range(PARSE_ATTEMPTS):
        server.queue_completion("<|im_end|>")
    events = list(agent.step("hi"))
    assert isinstance(events[-1], Error) and events[-1].retryable and "could not be read" in events[-1].message
    assert "hi" in agent.recall.search("hi")  # the user message is kept for a retry


def test_a_prompt_that_does_not_fit_is_refused_before_sending(provider, server, registry):
    messages = [{"role": "system", "content": "word " * 500}]
    functions = registry.schemas(["send_message"])
    needed = tokens.count(provider().wrapper.render(messages, functions)) + 512
    with pytest.raises(ContextWindowExceeded, match=f"context window of {needed - 1}"):
        provider(window=needed - 1).complete(messages, functions)
    assert server.completion_requests() == []
    server.queue_completion(reply("ok"))  # exactly enough room: it goes out
    assert provider(window=needed).complete(messages, functions).calls


def test_a_prompt_too_long_for_the_model_makes_the_agent_summarize(live, server):
    # The agent keeps 512 tokens free for the reply; this model wants 3000, so once the
    # conversation grows the provider refuses before sending, and the agent summarizes.
    agent = live(window=8000, max_tokens=3000)
    for i in range(4):  # each step adds ~730 tokens; the fourth prompt still fits
        server.queue_completion(reply(f"answer {i}"))
        list(agent.step(f"Story part {i}: " + "the tea kettle sang on the stove all evening. " * 60))
    assert not [b for b in server.completion_requests() if b["prompt"].startswith("### Instruction")]
    server.queue_completion("I heard a long story about a singing tea kettle.")  # the summary
    server.queue_completion(reply("Still here."))
    events = list(agent.step("Story part 4: " + "the kettle went quiet at last. " * 90))
    assert "summarized" in [e.alert for e in events if isinstance(e, SystemAlert)]
    assert AssistantMessage("Still here.") in events
    summary = [b for b in server.completion_requests() if b["prompt"].startswith("### Instruction")]
    assert len(summary) == 1 and "grammar" not in summary[0] and summary[0]["stop"] == ["\n### "]
    assert "first person" in summary[0]["prompt"]
    for body in server.completion_requests():
        assert tokens.count(body["prompt"]) + body["max_tokens"] <= 8000


def test_server_errors_are_sorted_like_the_openai_provider(live, server):
    agent = live()
    server.queue_completion((429, {"error": {"message": "slow down"}}))
    server.queue_completion(reply("Made it."))
    events = list(agent.step("hi"))
    assert len([e for e in events if isinstance(e, Retrying)]) == 1
    assert AssistantMessage("Made it.") in events

    server.queue_completion((400, {"error": {"message": "This model's maximum context length is 4096 tokens"}}))
    server.queue_completion("I said hi and was answered.")
    server.queue_completion(reply("Fine."))
    events = list(agent.step("again"))
    assert [e.alert for e in events if isinstance(e, SystemAlert)] in (["summarized"], ["summarize_skipped"])

    server.queue_completion((401, {"error": {"message": "bad key"}}))
    events = list(agent.step("and again"))
    assert isinstance(events[-1], Error) and "API key" in events[-1].message and not events[-1].retryable


def test_summary_call_is_plain_text(provider, server):
    server.queue_completion(" I met Kim, who loves tea.\n")
    completion = provider(grammar=True).complete(
        [{"role": "system", "content": "Summarize."}, {"role": "user", "content": "user: I'm Kim."}], [])
    assert completion.content == "I met Kim, who loves tea." and completion.calls == []
    body = server.completion_requests()[0]
    assert body["prompt"].endswith("### Response:\n") and "grammar" not in body and body["max_tokens"] == 320


def test_a_ready_grammar_by_name(provider, server, registry):
    server.queue_completion(reply("hi"))
    provider(grammar="json_call_inner_thoughts").complete([{"role": "system", "content": "x"}],
                                                          registry.schemas(["send_message"]))
    body = server.completion_requests()[0]
    assert body["grammar"] == grammars.load("json_call_inner_thoughts", opened=True)
    with pytest.raises(ConfigError, match="no grammar named 'xml'"):
        provider(grammar="xml")
    with pytest.raises(ConfigError, match="no prompt wrapper named"):
        provider(wrapper="alpaca9")


# --- the grammars, read by llama.cpp's own grammar parser --------------------------------------

@pytest.fixture(scope="module")
def vocab():
    """A GGUF's vocabulary alone (no weights in memory): enough for llama.cpp to parse a grammar."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from engine.llm.local import apply_cpu_workarounds, default_model_path

    try:
        path = default_model_path()
    except ConfigError as e:  # the model package is not installed
        pytest.skip(str(e))
    apply_cpu_workarounds()
    model = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    return model._model.vocab


def parses(vocab, grammar: str) -> bool:
    from llama_cpp import llama_cpp as bindings

    sampler = bindings.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if sampler:
        bindings.llama_sampler_free(sampler)
    return bool(sampler)


def test_grammars_parse_in_llama_cpp(vocab, registry):
    assert not parses(vocab, 'root ::= "a" (')  # the check can fail
    functions = registry.schemas(registry.names())  # every built-in function, extras included
    for thoughts in (True, False):
        for opened in (True, False):
            assert parses(vocab, grammars.grammar_for(functions, thoughts, opened=opened))
    odd = [{"name": "pick", "description": "x", "parameters": {"type": "object", "properties": {
        "a": {"type": "string", "enum": ["x", 'say "y"']}, "b": {"type": "array", "items": {"type": "integer"}},
        "c": {"type": "object"}, "d": {"type": "number"}}, "required": ["c"]}},
        {"name": "nothing", "description": "y", "parameters": {"type": "object", "properties": {}, "required": []}}]
    assert parses(vocab, grammars.grammar_for(odd, True))
    for name in grammars.READY:
        assert parses(vocab, grammars.load(name)) and parses(vocab, grammars.load(name, opened=True))


def test_generated_grammar_keeps_argument_order_and_optionals(registry):
    grammar = grammars.grammar_for(registry.schemas(["send_message", "conversation_search"]), True)
    assert grammar.startswith('root ::= "{" call\n')
    assert 'call ::= ws "\\"inner_thoughts\\":" ws thought "," ws "\\"function\\":" ws ( fn0 | fn1 ) ws "}"' in grammar
    # conversation_search(query, page, start_date and end_date optional, request_heartbeat), in schema order.
    assert '"{" ws fn1-arg0 ( "," ws fn1-arg1 )? ( "," ws fn1-arg2 )? ( "," ws fn1-arg3 )? "," ws fn1-arg4 ws "}"' in grammar
    assert 'fn1-arg1 ::= "\\"page\\":" ws integer' in grammar
    assert 'fn1-arg2 ::= "\\"start_date\\":" ws text' in grammar
    assert 'fn1-arg4 ::= "\\"request_heartbeat\\":" ws boolean' in grammar
    with pytest.raises(ValueError):
        grammars.grammar_for([], True)
