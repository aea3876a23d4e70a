"""A whole LLM call (attempts and waits) ends by its deadline; a reply that is not JSON is explained in words."""

from __future__ import annotations

import time

import pytest

from engine.agent import AgentOptions
from engine.events import Error
from engine.llm.base import LLMError
from engine.llm.client import make_client
from engine.llm.openai_provider import OpenAIProvider
from engine.llm.retry import RetryPolicy, call_with_retries

DEADLINE = 2.0
BOUND = DEADLINE * 1.5 + 2  # generous: CI machines are slow, a hang is not
POLICY = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=0.5, max_elapsed=DEADLINE, jitter=0.0)
HELLO = [{"role": "user", "content": "hi"}]
PAGE = ("<!DOCTYPE html><html><head><title>502</title><style>body{color:red}</style>"
        "<script>var x = 1;</script></head><body><h1>Welcome to nginx!</h1><p>The proxy &amp; friends.</p>"
        "</body></html>")


def run(call, policy=POLICY):
    calls = call_with_retries(call, policy)
    events = []
    try:
        while True:
            events.append(next(calls))
    except StopIteration as done:
        return done.value, events


def provider(server, timeout=60.0):
    # The client's own timeout is far beyond the deadline, as in production (60 s vs 90 s).
    return OpenAIProvider(make_client("openai-compatible", server.base_url, timeout=timeout), "m", 8192)


def test_a_hung_server_fails_by_the_deadline(fake_openai):
    for _ in range(5):
        fake_openai.queue_chat(30.0)  # longer than the whole budget
    llm = provider(fake_openai)
    start = time.monotonic()
    with pytest.raises(LLMError) as caught:
        run(lambda: llm.complete(HELLO, []))
    elapsed = time.monotonic() - start
    assert elapsed < BOUND, f"took {elapsed:.1f} s with a {DEADLINE} s deadline"
    assert f"No answer within the {DEADLINE:g} s limit" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_a_retry_gets_only_the_time_left(fake_openai):
    # A first attempt times out at 3.5 s of a 5 s budget; a second with its own full 3.5 s would end near 7.2 s.
    for _ in range(5):
        fake_openai.queue_chat(30.0)
    llm = provider(fake_openai, timeout=3.5)
    policy = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=0.2, max_elapsed=5.0, jitter=0.0)
    start = time.monotonic()
    with pytest.raises(LLMError, match="2 attempts"):
        run(lambda: llm.complete(HELLO, []), policy)
    assert time.monotonic() - start < 5.0 + 1.2


def test_an_agent_step_reports_a_hang_by_the_deadline(make_live_agent, fake_openai):
    for _ in range(5):
        fake_openai.queue_chat(30.0)
    # Attempts shorter than the deadline, as in production (60 s each within 90 s).
    agent = make_live_agent(provider(fake_openai, timeout=DEADLINE * 0.75),
                            options=AgentOptions(verify_first_message=False, retry=POLICY))
    start = time.monotonic()
    errors = [e for e in agent.step("hello") if isinstance(e, Error)]
    assert time.monotonic() - start < BOUND
    assert errors and "limit" in errors[0].message


@pytest.mark.parametrize("status, retryable", [(200, False), (502, True)])
def test_an_html_reply_is_explained(fake_openai, status, retryable):
    fake_openai.queue_raw(status, "text/html; charset=utf-8", PAGE)
    with pytest.raises(LLMError) as caught:
        provider(fake_openai).complete(HELLO, [])
    text = str(caught.value)
    assert f"answered with an HTML page instead of JSON (status {status})" in text
    assert fake_openai.base_url in text and "check the base URL" in text
    assert "Welcome to nginx! The proxy & friends." in text
    assert "<h1>" not in text and "color:red" not in text and "var x" not in text
    assert "AttributeError" not in text
    assert caught.value.retryable is retryable


def test_an_agent_step_explains_an_html_reply(make_live_agent, fake_openai):
    fake_openai.queue_raw(200, "text/html", PAGE * 20)
    agent = make_live_agent(provider(fake_openai), options=AgentOptions(verify_first_message=False, retry=POLICY))
    start = time.monotonic()
    errors = [e for e in agent.step("hello") if isinstance(e, Error)]
    assert time.monotonic() - start < BOUND
    assert len(errors) == 1 and "HTML page instead of JSON (status 200)" in errors[0].message
    assert "Internal error" not in errors[0].message and errors[0].message.count("Welcome") <= 5


def test_plain_text_reply_is_named(fake_openai):
    fake_openai.queue_raw(200, "text/plain", "hello from a web server")
    with pytest.raises(LLMError, match=r"answered with 'text/plain' instead of JSON \(status 200\): hello"):
        provider(fake_openai).complete(HELLO, [])


def test_a_slow_local_server_gets_its_whole_per_call_timeout(make_live_agent, fake_openai):
    """A CPU server reading a long first prompt: one attempt may take the provider's own timeout (300 s for
    local servers), longer than the deadline over retries (90 s); the deadline must not cut it short."""
    from engine.events import AssistantMessage

    fake_openai.queue_chat(DEADLINE + 1.0)  # answers, late
    fake_openai.queue_chat({"content": "Reading.", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "send_message", "arguments": '{"message": "Here I am."}'}}]})
    agent = make_live_agent(provider(fake_openai, timeout=DEADLINE * 3),
                            options=AgentOptions(verify_first_message=False, retry=POLICY))
    events = list(agent.step("hello"))
    assert AssistantMessage("Here I am.") in events, events
