"""Local model servers reached through their own endpoints, as MemGPT 0.2 did.

Each backend is the completions provider (a prompt wrapper renders the
conversation and functions into one prompt and reads the call back) with that
server's native request and reply shapes, so the options only the native
endpoint honours are sent: the context size (Ollama's OpenAI route silently
truncates to its small default), a GBNF grammar under the field name the server
reads, the stop strings. No API key is ever sent to these endpoints.

    endpoint_type   default base URL          request
    llamacpp        http://localhost:8080     POST /completion            {prompt, n_predict, stop, grammar}
    koboldcpp       http://localhost:5001     POST /api/v1/generate       {prompt, max_length, max_context_length, ...}
    ollama          http://localhost:11434    POST /api/generate          {model, prompt, raw, stream, options.num_ctx}
    webui           http://localhost:5000     POST /v1/completions        {prompt, grammar_string, truncation_length}
    webui-legacy    http://localhost:5000     POST /api/v1/generate       {prompt, max_new_tokens, stopping_strings}
    lmstudio        http://localhost:1234     POST /v1/completions        {prompt, max_tokens, stop}
    vllm            http://localhost:8000     POST /v1/completions        {model, prompt, guided_grammar}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx2

from engine import tokens
from engine.llm import retry
from engine.llm.base import LLMError
from engine.llm.completions_provider import CompletionsProvider
from engine.llm.public_only import PublicOnly

Payload = Callable[[dict[str, Any], int], dict[str, Any]]
Reply = Callable[[dict[str, Any]], tuple[str, int, int]]  # (text, prompt tokens, completion tokens); 0 = unknown


def _openai_text(reply: dict[str, Any]) -> tuple[str, int, int]:
    choice = (reply.get("choices") or [{}])[0]
    usage = reply.get("usage") or {}
    return str(choice.get("text") or ""), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _results_text(reply: dict[str, Any]) -> tuple[str, int, int]:
    return str((reply.get("results") or [{}])[0].get("text") or ""), 0, 0


@dataclasses.dataclass(frozen=True)
class Backend:
    name: str
    default_url: str
    path: str
    payload: Payload
    reply: Reply


def _llamacpp(r: dict[str, Any], window: int) -> dict[str, Any]:
    body = {"prompt": r["prompt"], "n_predict": r["max_tokens"], "temperature": r["temperature"], "stop": r["stop"],
            "cache_prompt": True}
    return body | ({"grammar": r["grammar"]} if r.get("grammar") else {})


def _koboldcpp(r: dict[str, Any], window: int) -> dict[str, Any]:
    body = {"prompt": r["prompt"], "max_length": r["max_tokens"], "max_context_length": window,
            "temperature": r["temperature"], "stop_sequence": r["stop"]}
    return body | ({"grammar": r["grammar"]} if r.get("grammar") else {})


def _ollama(r: dict[str, Any], window: int) -> dict[str, Any]:
    # raw: the wrapper already applied the prompt template; num_ctx: the agent's whole window.
    return {"model": r["model"], "prompt": r["prompt"], "raw": True, "stream": False,
            "options": {"num_ctx": window, "num_predict": r["max_tokens"], "temperature": r["temperature"],
                        "stop": r["stop"]}}


def _webui(r: dict[str, Any], window: int) -> dict[str, Any]:
    body = {"prompt": r["prompt"], "max_tokens": r["max_tokens"], "temperature": r["temperature"], "stop": r["stop"],
            "truncation_length": window}
    return body | ({"grammar_string": r["grammar"]} if r.get("grammar") else {})


def _webui_legacy(r: dict[str, Any], window: int) -> dict[str, Any]:
    body = {"prompt": r["prompt"], "max_new_tokens": r["max_tokens"], "temperature": r["temperature"],
            "stopping_strings": r["stop"], "truncation_length": window}
    return body | ({"grammar_string": r["grammar"]} if r.get("grammar") else {})


def _lmstudio(r: dict[str, Any], window: int) -> dict[str, Any]:
    return {"prompt": r["prompt"], "max_tokens": r["max_tokens"], "temperature": r["temperature"], "stop": r["stop"],
            "stream": False}


def _vllm(r: dict[str, Any], window: int) -> dict[str, Any]:
    body = {"model": r["model"], "prompt": r["prompt"], "max_tokens": r["max_tokens"], "temperature": r["temperature"],
            "stop": r["stop"]}
    return body | ({"guided_grammar": r["grammar"]} if r.get("grammar") else {})


def _ollama_reply(reply: dict[str, Any]) -> tuple[str, int, int]:
    return str(reply.get("response") or ""), int(reply.get("prompt_eval_count") or 0), int(reply.get("eval_count") or 0)


def _llamacpp_reply(reply: dict[str, Any]) -> tuple[str, int, int]:
    timings = reply.get("timings") or {}
    return (str(reply.get("content") or ""), int(reply.get("tokens_evaluated") or timings.get("prompt_n") or 0),
            int(reply.get("tokens_predicted") or timings.get("predicted_n") or 0))


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("llamacpp", "http://localhost:8080", "/completion", _llamacpp, _llamacpp_reply),
    Backend("koboldcpp", "http://localhost:5001", "/api/v1/generate", _koboldcpp, _results_text),
    Backend("ollama", "http://localhost:11434", "/api/generate", _ollama, _ollama_reply),
    Backend("webui", "http://localhost:5000", "/v1/completions", _webui, _openai_text),
    Backend("webui-legacy", "http://localhost:5000", "/api/v1/generate", _webui_legacy, _results_text),
    Backend("lmstudio", "http://localhost:1234", "/v1/completions", _lmstudio, _openai_text),
    Backend("vllm", "http://localhost:8000", "/v1/completions", _vllm, _openai_text),
)}


def base_url(backend: Backend, endpoint: str | None) -> str:
    """The server's root: the configured endpoint without a trailing `/v1`, or MemGPT's default for the backend."""
    url = (endpoint or backend.default_url).strip().rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


class NativeProvider(CompletionsProvider):
    """The completions provider over a local server's own endpoint."""

    def __init__(self, backend: str, endpoint: str | None, model: str, context_window: int, *,
                 timeout: float = 300.0, public_only: PublicOnly | None = None, **options: Any):
        super().__init__(None, model, context_window, **options)  # no openai client: _request is its own
        self.backend = BACKENDS[backend]
        root = base_url(self.backend, endpoint)
        self.url = root + self.backend.path
        self.timeout = timeout
        # A public app's rule: the call connects only to checked addresses (engine/llm/public_only.py).
        self._public_only = public_only if public_only is not None and public_only.applies(root) else None

    @property
    def call_timeout(self) -> float | None:
        return self.timeout

    def _request(self, request: dict[str, Any], counted_prompt: int) -> tuple[str, str, int, int]:
        grammar = (request.get("extra_body") or {}).get("grammar")
        body = self.backend.payload({**request, "grammar": grammar}, self.context_window)
        left = retry.time_left()
        timeout = self.timeout if left is None else max(0.1, min(self.timeout, left))
        try:
            # No redirects and no key: a local server that redirects is misconfigured, and says so.
            if self._public_only is None:
                response = httpx2.post(self.url, json=body, timeout=timeout, follow_redirects=False)
            else:
                with httpx2.Client(transport=self._public_only.transport(), follow_redirects=False) as client:
                    response = client.post(self.url, json=body, timeout=timeout)
        except httpx2.TimeoutException as e:
            raise LLMError(f"The model server at {self.url} did not answer in time ({e}).", retryable=True) from e
        except httpx2.HTTPError as e:
            raise LLMError(f"Cannot reach the model server at {self.url}: {e}", retryable=True) from e
        if response.status_code >= 400:
            text = response.text[:300]
            raise LLMError(f"The {self.backend.name} server at {self.url} refused the request "
                           f"({response.status_code}): {text}", retryable=response.status_code >= 500)
        try:
            reply = response.json()
        except ValueError:
            raise LLMError(f"The server at {self.url} did not answer with JSON: {response.text[:200]!r}; "
                           f"check that it is a {self.backend.name} server.") from None
        if not isinstance(reply, dict):
            raise LLMError(f"The server at {self.url} sent an unexpected reply: {str(reply)[:200]!r}")
        text, prompt_tokens, completion_tokens = self.backend.reply(reply)
        return (text, self.model, prompt_tokens or counted_prompt, completion_tokens or tokens.count(text))
