"""The `openai` provider: OpenAI, Azure OpenAI and any OpenAI-compatible server.

Functions are sent as `tools`; the reply's tool calls come back as
`FunctionCall`s with the raw argument text. Errors are sorted into retryable
(rate limits, timeouts, connection errors, 5xx), context-length (summarize
first) and the rest (shown to the user as they are). Replies that are not
JSON arrive already explained by the client (`NotJSONReply`).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import openai

from engine.llm import retry
from engine.llm.base import Completion, ContextWindowExceeded, Delta, FunctionCall, LLMError, call_id
from engine.llm.client import NO_KEY, NotJSONReply

log = logging.getLogger(__name__)

_CONTEXT_PATTERNS = re.compile(
    r"context[_ ]length|maximum context|context window|too many tokens|prompt is too long|exceeds the context",
    re.IGNORECASE,
)


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after") if error.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify(error: Exception, client: openai.OpenAI | None = None) -> LLMError:
    """Our error for an `openai` exception; `client` lets a refused placeholder key be explained."""
    if isinstance(error, NotJSONReply):
        # A wrong URL answers 200 every time; a proxy's 5xx page may pass.
        return LLMError(str(error), retryable=error.status >= 500 or error.status == 429)
    if isinstance(error, openai.APITimeoutError):
        return LLMError(f"The model did not answer in time ({error}).", retryable=True)
    if isinstance(error, openai.APIConnectionError):
        return LLMError(f"Cannot reach the model server: {error}", retryable=True)
    if isinstance(error, openai.APIStatusError):
        text = str(error.message or error)
        if error.status_code in (400, 413, 422) and (
            error.code == "context_length_exceeded" or _CONTEXT_PATTERNS.search(text)
        ):
            return ContextWindowExceeded(f"The prompt does not fit the model's context window: {text}")
        if error.status_code == 429:
            return LLMError(f"Rate limited by the provider: {text}", retryable=True, retry_after=_retry_after(error))
        if error.status_code >= 500:
            return LLMError(f"The model server failed ({error.status_code}): {text}", retryable=True)
        if error.status_code in (401, 403) and client is not None and client.api_key == NO_KEY:
            return LLMError(
                f"The server at {client.base_url} wants an API key ({error.status_code}), and no key is bound to "
                "that URL: stored keys go only to the endpoints they were configured for. Save a key together "
                "with this URL in the Config tab, or set the environment variable that binds it."
            )
        if error.status_code in (401, 403):
            return LLMError(f"The provider refused the API key ({error.status_code}). Check your key.")
        return LLMError(f"The provider refused the request ({error.status_code}): {text}")
    return LLMError(f"Unexpected error from the model client: {type(error).__name__}: {error}")


_TOOLS_REFUSED = re.compile(r"\btools?\b|tool_choice|tool_calls|unrecognized request argument|extra (fields|inputs)",
                            re.IGNORECASE)


def request_body(messages: list[dict[str, Any]], functions: list[dict[str, Any]], *, legacy: bool) -> dict[str, Any]:
    """The conversation and the schemas of a chat request, sent as `extra_body`.

    The client sends `extra_body` as it is; passed to `create()` as arguments, every
    message would first go through the package's typed transform, which cost more CPU
    than the rest of a step (38% of a loaded server's Python time). It is plain JSON already.
    """
    body: dict[str, Any] = {"messages": legacy_messages(messages) if legacy else messages}
    if functions and legacy:
        body["functions"] = functions
        body["function_call"] = "auto"
    elif functions:
        body["tools"] = [{"type": "function", "function": f} for f in functions]
        body["tool_choice"] = "auto"
    return body


class _ToolsRefused(Exception):
    """The server refused the `tools` field: it speaks only the older `functions` one."""


def _refuses_tools(error: Exception) -> bool:
    text = str(error)
    return (isinstance(error, openai.APIStatusError) and error.status_code in (400, 422)
            and bool(_TOOLS_REFUSED.search(text)) and not _CONTEXT_PATTERNS.search(text))


def legacy_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation in the pre-`tools` shape: `function_call` on the assistant, role "function" results."""
    names: dict[str | None, str] = {}
    out = []
    for m in messages:
        if m.get("role") == "assistant" and m.get("tool_calls"):
            first = m["tool_calls"][0]["function"]  # the older API has one call per message
            for call in m["tool_calls"]:
                names[call.get("id")] = call["function"]["name"]
            out.append({"role": "assistant", "content": m.get("content"),
                        "function_call": {"name": first["name"], "arguments": first.get("arguments", "")}})
        elif m.get("role") == "tool":
            out.append({"role": "function", "name": names.get(m.get("tool_call_id"), "function"),
                        "content": m.get("content") or ""})
        else:
            out.append(m)
    return out


_STREAM_OPTIONS_REFUSED = re.compile(r"stream_options|include_usage", re.IGNORECASE)
_STREAM_REFUSED = re.compile(r"\bstream(ing)?\b", re.IGNORECASE)


def _refused(error: Exception, pattern: re.Pattern[str]) -> bool:
    return (isinstance(error, openai.APIStatusError) and error.status_code in (400, 422)
            and bool(pattern.search(str(error))) and not _CONTEXT_PATTERNS.search(str(error)))


class _Streaming:
    """`stream_complete` for OpenAIProvider: the same request with `stream: true`, read as server-sent events.

    Kept apart from `complete` so either can change without the other. What the
    server turns out not to support is learned once per provider (providers live
    per process): `stream_options` (usage in the stream) is dropped when refused,
    and a server that refuses `stream` altogether is asked without it from then
    on. A server that ignores `stream` and answers one JSON body is read as such.
    """

    streaming = True  # False once the server refused `stream`; engine.llm.base.streams() asks
    stream_usage = True  # False once the server refused `stream_options`
    _client: openai.OpenAI
    model: str
    temperature: float | None
    legacy_functions: bool

    def complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> Completion:
        raise NotImplementedError

    def stream_complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]],
                        on_delta: Callable[[Delta], None]) -> Completion:
        if not self.streaming:
            return self.complete(messages, functions)
        if functions and not self.legacy_functions:
            try:
                return self._stream(messages, functions, on_delta, legacy=False)
            except _ToolsRefused:
                log.info("%s refused `tools`; using the older `functions` field from now on", self._client.base_url)
                self.legacy_functions = True
        if not self.streaming:
            return self.complete(messages, functions)
        return self._stream(messages, functions, on_delta, legacy=self.legacy_functions)

    def _stream(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]],
                on_delta: Callable[[Delta], None], *, legacy: bool) -> Completion:
        body = request_body(messages, functions, legacy=legacy) | {"stream": True}
        if self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        extra: dict[str, Any] = {"temperature": self.temperature} if self.temperature is not None else {}
        try:
            # As in complete(): plain JSON in `extra_body` (see request_body).
            with self._client.chat.completions.with_streaming_response.create(
                    model=self.model, messages=[], extra_body=body, **extra) as response:
                content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if content_type != "text/event-stream":  # a server that does not stream answers in one piece
                    return self._whole(response.json())
                return self._read(response.iter_lines(), on_delta)
        except LLMError:
            raise
        except (openai.OpenAIError, httpx2.HTTPError, httpx2.StreamError, json.JSONDecodeError) as e:
            if self.stream_usage and _refused(e, _STREAM_OPTIONS_REFUSED):
                log.info("%s refused stream_options; streaming without usage from now on", self._client.base_url)
                self.stream_usage = False
                return self._stream(messages, functions, on_delta, legacy=legacy)
            if functions and not legacy and _refuses_tools(e):
                raise _ToolsRefused() from e
            if _refused(e, _STREAM_REFUSED):
                log.info("%s refused `stream`; asking for whole replies from now on", self._client.base_url)
                self.streaming = False
                return self.complete(messages, functions)
            if isinstance(e, (httpx2.HTTPError, httpx2.StreamError)):
                raise LLMError(f"The reply stream from {self._client.base_url} broke off: {e}", retryable=True) from e
            if isinstance(e, json.JSONDecodeError):
                raise LLMError(f"The server at {self._client.base_url} sent a reply that is not JSON: {e}",
                               retryable=True) from e
            raise classify(e, self._client) from e

    def _read(self, lines: Iterator[str], on_delta: Callable[[Delta], None]) -> Completion:
        """A Completion assembled from the stream's chunks, each piece handed to `on_delta` on the way."""
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}  # by the index the stream gives each tool call
        legacy_call: dict[str, str] | None = None
        usage: dict[str, Any] = {}
        model = ""
        finished = False
        for data in _events(lines):
            if data == "[DONE]":
                finished = True
                break
            left = retry.time_left()
            if left is not None and left <= 0:
                raise LLMError("The reply kept streaming past the call's time limit.", retryable=True)
            chunk = json.loads(data)
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error"):
                error = chunk["error"]
                text = error.get("message") if isinstance(error, dict) else error
                raise LLMError(f"The model server failed while streaming: {text}", retryable=True)
            model = chunk.get("model") or model
            usage = chunk["usage"] if isinstance(chunk.get("usage"), dict) else usage
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                finished = finished or bool(choice.get("finish_reason"))
                delta = choice.get("delta") or {}
                piece = delta.get("content")
                if isinstance(piece, str) and piece:
                    content.append(piece)
                    on_delta(Delta(content=piece))
                for i, call in enumerate(delta.get("tool_calls") or []):
                    index = call.get("index", i)
                    slot = calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
                    slot["id"] = call.get("id") or slot["id"]
                    function = call.get("function") or {}
                    slot["name"] += function.get("name") or ""
                    fragment = function.get("arguments") or ""
                    slot["arguments"] += fragment
                    on_delta(Delta(call_index=index, name=slot["name"] or None, arguments=fragment))
                old = delta.get("function_call")
                if isinstance(old, dict):
                    legacy_call = legacy_call or {"name": "", "arguments": ""}
                    legacy_call["name"] += old.get("name") or ""
                    legacy_call["arguments"] += old.get("arguments") or ""
                    on_delta(Delta(call_index=0, name=legacy_call["name"] or None, arguments=old.get("arguments") or ""))
        if not finished:
            raise LLMError(f"The reply stream from {self._client.base_url} ended before the reply did.", retryable=True)
        found = [FunctionCall(call_id(c["id"], i), c["name"], c["arguments"])
                 for i, c in sorted(calls.items()) if c["name"]]
        if not found and legacy_call and legacy_call["name"]:
            found = [FunctionCall(f"call_{uuid.uuid4().hex[:12]}", legacy_call["name"], legacy_call["arguments"])]
        return Completion(
            content="".join(content) or None,
            calls=found,
            # Passed on as the server sent them, as complete() does.
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            model=model or self.model,
        )

    def _whole(self, body: Any) -> Completion:
        """A Completion from one JSON chat completion (the reply of a server that ignored `stream`)."""
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list):
            raise LLMError(f"The server at {self._client.base_url} did not answer with a chat completion: "
                           f"{str(body)[:200]!r}; check the base URL.")
        if not choices:
            raise LLMError("The model returned no choices.", retryable=True)
        message = choices[0].get("message") or {}
        calls = [FunctionCall(call_id(c.get("id"), i), c["function"].get("name") or "",
                              c["function"].get("arguments") or "")
                 for i, c in enumerate(message.get("tool_calls") or []) if isinstance(c.get("function"), dict)]
        old = message.get("function_call")
        if not calls and isinstance(old, dict) and old.get("name"):
            calls = [FunctionCall(f"call_{uuid.uuid4().hex[:12]}", old["name"], old.get("arguments") or "")]
        usage = body["usage"] if isinstance(body.get("usage"), dict) else {}
        return Completion(content=message.get("content"), calls=calls,
                          prompt_tokens=usage.get("prompt_tokens") or 0,
                          completion_tokens=usage.get("completion_tokens") or 0,
                          model=body.get("model") or self.model)


class OpenAIProvider(_Streaming):
    def __init__(self, client: openai.OpenAI, model: str, context_window: int, *, temperature: float | None = None):
        self._client = client
        self.model = model
        self.context_window = context_window
        self.temperature = temperature
        self.legacy_functions = False  # learned from the server's first refusal of `tools`

    @property
    def call_timeout(self) -> float | None:
        """Seconds one request may take (the client's timeout), for the deadline over retries."""
        timeout = self._client.timeout
        return float(timeout) if isinstance(timeout, (int, float)) else None

    def complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> Completion:
        if functions and not self.legacy_functions:
            try:
                return self._complete(messages, functions, legacy=False)
            except _ToolsRefused:
                log.info("%s refused `tools`; using the older `functions` field from now on", self._client.base_url)
                self.legacy_functions = True
        return self._complete(messages, functions, legacy=self.legacy_functions)

    def _complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]], *, legacy: bool) -> Completion:
        extra: dict[str, Any] = {"temperature": self.temperature} if self.temperature is not None else {}
        try:
            response = self._client.chat.completions.create(
                model=self.model, messages=[], extra_body=request_body(messages, functions, legacy=legacy), **extra)
        except LLMError:  # raised under the client by our own transport (engine/llm/public_only.py)
            raise
        except Exception as e:
            if functions and not legacy and _refuses_tools(e):
                raise _ToolsRefused() from e
            raise classify(e, self._client) from e
        if not hasattr(response, "choices"):  # the client hands back raw text when it could not parse the reply
            raise LLMError(f"The server at {self._client.base_url} did not answer with a chat completion: "
                           f"{str(response)[:200]!r}; check the base URL.")
        if not response.choices:
            raise LLMError("The model returned no choices.", retryable=True)
        message = response.choices[0].message
        calls = [
            FunctionCall(call_id(call.id, i), call.function.name, call.function.arguments or "")
            for i, call in enumerate(message.tool_calls or [])
            if getattr(call, "function", None) is not None
        ]
        legacy_call = getattr(message, "function_call", None)
        if not calls and legacy_call is not None and getattr(legacy_call, "name", None):
            # The older API gives no call id; a fresh one keeps each call paired with its result.
            calls = [FunctionCall(f"call_{uuid.uuid4().hex[:12]}", legacy_call.name, legacy_call.arguments or "")]
        usage = response.usage
        return Completion(
            content=message.content,
            calls=calls,
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            model=response.model or self.model,
        )


def _events(lines: Iterator[str]) -> Iterator[str]:
    """The data of each server-sent event (several `data:` lines of one event joined by newlines)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # a comment, some servers' keep-alive
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)
