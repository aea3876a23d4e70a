"""Integration: agent steps through a real OpenAI-compatible server on loopback.

The server is llama-cpp-python's (`python -m llama_cpp.server`, the `[server]`
extra) running the shipped SmolLM2 GGUF, started through tests/support/llama_server.py
so the CPU workarounds apply (llama.cpp's AMX kernels crash on some machines).
The same server is driven two ways:
(a) the openai provider in chat mode, with tools. The server's
    `chatml-function-calling` format lets the model answer with text or a call,
    and a 135M model rarely calls anything, so what is checked is what is
    reliably true: every step ends without an error and any call it makes is valid;
(b) the completions provider with the chatml wrapper and a grammar: every call
    the model makes is a valid call of the agent's functions.
Slow (2-4 minutes on 2 cores): marked `slow`; CI installs the extra and runs it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

for module in ("llama_cpp.server", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings"):
    pytest.importorskip(module)

from engine.agent import Agent, AgentOptions  # noqa: E402
from engine.config import LLMConfig  # noqa: E402
from engine.errors import ConfigError  # noqa: E402
from engine.events import Error, ToolCall, Usage  # noqa: E402
from engine.llm.client import make_client  # noqa: E402
from engine.llm.completions_provider import CompletionsProvider  # noqa: E402
from engine.llm.local import default_model_path  # noqa: E402
from engine.llm.openai_provider import OpenAIProvider  # noqa: E402
from engine.tools.runner import check_arguments  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 4096
STARTUP_TIMEOUT = 90.0
REQUEST_TIMEOUT = 300.0  # the first request reads a ~2,500-token prompt at ~100 tokens/s
MESSAGES = ["Hi! My name is Kim and I work as a night nurse.", "Please remember that I love green tea.",
            "What do you remember about me?"]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    try:
        model = default_model_path()
    except ConfigError as e:
        pytest.skip(str(e))
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    command = [sys.executable, "tests/support/llama_server.py", "--model", str(model), "--port", str(port),
               "--host", "127.0.0.1", "--n_ctx", str(WINDOW),
               # Lets the chat endpoint answer `tools` with tool_choice "auto" (text or a grammar-bound call).
               "--chat_format", "chatml-function-calling"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"the llama server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no answer from the llama server in {STARTUP_TIMEOUT:.0f} s:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_agent(runtime, make_agent, embedder, name, endpoint_type, url, provider, messages) -> list[list]:
    make_agent(name, llm=LLMConfig(endpoint_type=endpoint_type, model="smollm2", endpoint=url,
                                   context_window=WINDOW, wrapper="chatml" if endpoint_type == "completions" else None))
    agent = Agent.load(runtime, name, provider=provider, embedder=embedder,
                       options=AgentOptions(verify_first_message=False, chain_limit=2))
    schemas = {f["name"]: f for f in agent.functions()}
    steps = []
    for text in messages:
        started = time.monotonic()
        events = list(agent.step(text))
        tokens = [(e.prompt_tokens, e.completion_tokens) for e in events if isinstance(e, Usage)]
        print(f"{name}: step took {time.monotonic() - started:.1f} s, (prompt, completion) tokens per call "
              f"{tokens}: {[e.kind for e in events]}")
        errors = [e.message for e in events if isinstance(e, Error)]
        assert errors == [], f"{text!r}: {errors}"
        for call in (e for e in events if isinstance(e, ToolCall)):
            assert call.name in schemas, f"{text!r}: unknown function {call.name}"
            assert check_arguments(schemas[call.name], call.arguments) is None, f"{text!r}: {call}"
        steps.append(events)
    return steps


def test_openai_provider_in_chat_mode(server_url, runtime, make_agent, embedder):
    provider = OpenAIProvider(make_client("openai-compatible", server_url, timeout=REQUEST_TIMEOUT), "smollm2", WINDOW)
    # Two steps: this prompt is re-read almost whole on every call (30-50 s each here).
    steps = run_agent(runtime, make_agent, embedder, "chat", "openai-compatible", server_url, provider, MESSAGES[:2])
    assert all(any(isinstance(e, Usage) for e in events) for events in steps)  # the model answered every step


def test_completions_provider_with_chatml_and_grammar(server_url, runtime, make_agent, embedder):
    client = make_client("completions", server_url, timeout=REQUEST_TIMEOUT)
    provider = CompletionsProvider(client, "smollm2", WINDOW, wrapper="chatml", grammar=True)
    steps = run_agent(runtime, make_agent, embedder, "wrapped", "completions", server_url, provider, MESSAGES)
    for events in steps:
        # Every model call ended in exactly one call (validated in run_agent).
        calls = [e for e in events if isinstance(e, ToolCall)]
        assert calls and len(calls) == len([e for e in events if isinstance(e, Usage)])
