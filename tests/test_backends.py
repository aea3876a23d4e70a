"""MemGPT's local backends through their own endpoints: each request's exact shape, against a fake server."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.agent import Agent, AgentOptions
from engine.config import LLMConfig
from engine.events import AssistantMessage
from engine.llm.backends import BACKENDS
from engine.llm.providers import make_provider

CALL_TEXT = ' "inner_thoughts": "Greet them.", "function": "send_message", "params": {"message": "Hello from %s!"}}'


def native_reply(backend: str, text: str) -> dict:
    if backend == "llamacpp":
        return {"content": text, "tokens_evaluated": 321, "tokens_predicted": 12}
    if backend in ("koboldcpp", "webui-legacy"):
        return {"results": [{"text": text}]}
    if backend == "ollama":
        return {"response": text, "done": True, "prompt_eval_count": 321, "eval_count": 12}
    return {"choices": [{"text": text, "index": 0}], "usage": {"prompt_tokens": 321, "completion_tokens": 12}}


class NativeServer:
    """Records every request (path, JSON body, headers) and answers with queued JSON bodies."""

    def __init__(self):
        self.requests: list[tuple[str, dict, dict]] = []
        self.replies: deque = deque()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                server.requests.append((self.path, body, {k.lower(): v for k, v in self.headers.items()}))
                status, reply = server.replies.popleft() if server.replies else (404, {"error": "nothing queued"})
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def stop(self):
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def native():
    server = NativeServer()
    yield server
    server.stop()


# backend -> (path, the fields its native endpoint needs that an OpenAI-style request would not carry)
EXPECTED = {
    "llamacpp": ("/completion", {"n_predict": 512, "grammar": True}),
    "koboldcpp": ("/api/v1/generate", {"max_length": 512, "max_context_length": 4096, "grammar": True}),
    "ollama": ("/api/generate", {"model": "local-model", "raw": True, "stream": False}),
    "webui": ("/v1/completions", {"truncation_length": 4096, "grammar_string": True}),
    "webui-legacy": ("/api/v1/generate", {"max_new_tokens": 512, "truncation_length": 4096, "grammar_string": True}),
    "lmstudio": ("/v1/completions", {"max_tokens": 512}),
    "vllm": ("/v1/completions", {"model": "local-model", "guided_grammar": True}),
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_each_backend_speaks_its_own_endpoint(backend, native, runtime, make_agent, embedder):
    assert set(EXPECTED) == set(BACKENDS)
    config = LLMConfig(endpoint_type=backend, model="local-model", endpoint=native.url + "/v1", context_window=4096,
                       wrapper="chatml", grammar=True)
    make_agent("native", llm=config)
    agent = Agent.load(runtime, "native", embedder=embedder, options=AgentOptions(verify_first_message=False))
    native.replies.append((200, native_reply(backend, CALL_TEXT % backend)))
    events = list(agent.step("Hi there"))
    assert AssistantMessage(f"Hello from {backend}!") in events, events

    path, body, headers = native.requests[0]
    expected_path, fields = EXPECTED[backend]
    assert path == expected_path  # the "/v1" a user may add to the URL is not doubled into the path
    assert "authorization" not in headers  # no key ever goes to a local backend
    assert body["prompt"].startswith("<|im_start|>system\n") and "Hi there" in body["prompt"]
    for key, value in fields.items():
        got = body
        if backend == "ollama" and key not in body:
            got = body["options"]
        if value is True and key in ("grammar", "grammar_string", "guided_grammar"):
            assert got[key].startswith("root ::= "), key  # a GBNF grammar under the name this server reads
        else:
            assert got[key] == value, (key, got.get(key))
    if backend == "ollama":
        assert body["options"]["num_ctx"] == 4096  # never Ollama's small default window
    stops = body.get("stop") or body.get("stop_sequence") or body.get("stopping_strings") or body["options"]["stop"]
    assert "<|im_end|>" in stops


def test_default_urls_and_readable_failures(native):
    from engine.errors import MemGPTError

    assert BACKENDS["ollama"].default_url == "http://localhost:11434"
    assert BACKENDS["koboldcpp"].default_url == "http://localhost:5001"
    provider = make_provider(LLMConfig(endpoint_type="llamacpp", model="m", endpoint=native.url, context_window=4096))
    native.replies.append((500, {"error": "out of memory"}))
    with pytest.raises(MemGPTError, match="refused the request \\(500\\)") as failure:
        provider.complete([{"role": "user", "content": "hi"}], [])
    assert failure.value.retryable
    dead = make_provider(LLMConfig(endpoint_type="ollama", model="m", endpoint="http://127.0.0.1:9", context_window=4096))
    with pytest.raises(MemGPTError, match="Cannot reach the model server"):
        dead.complete([{"role": "user", "content": "hi"}], [])
