"""The `openai` provider: OpenAI, Azure OpenAI and any OpenAI-compatible server.

Functions are sent as `tools`; the reply's tool calls come back as
`FunctionCall`s with the raw argument text. Errors are sorted into retryable
(rate limits, timeouts, connection errors, 5xx), context-length (summarize
first) and the rest (shown to the user as they are). Replies that are not
JSON arrive already explained by the client (`NotJSONReply`).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import openai

from engine.llm.base import Completion, ContextWindowExceeded, FunctionCall, LLMError
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


class OpenAIProvider:
    def __init__(self, client: openai.OpenAI, model: str, context_window: int, *, temperature: float | None = None):
        self._client = client
        self.model = model
        self.context_window = context_window
        self.temperature = temperature
        self.legacy_functions = False  # learned from the server's first refusal of `tools`

    def complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> Completion:
        if functions and not self.legacy_functions:
            try:
                return self._complete(messages, functions, legacy=False)
            except _ToolsRefused:
                log.info("%s refused `tools`; using the older `functions` field from now on", self._client.base_url)
                self.legacy_functions = True
        return self._complete(messages, functions, legacy=self.legacy_functions)

    def _complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]], *, legacy: bool) -> Completion:
        kwargs: dict[str, Any] = {"model": self.model, "messages": legacy_messages(messages) if legacy else messages}
        if functions and legacy:
            kwargs["functions"] = functions
            kwargs["function_call"] = "auto"
        elif functions:
            kwargs["tools"] = [{"type": "function", "function": f} for f in functions]
            kwargs["tool_choice"] = "auto"
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        # The conversation and the schemas go in `extra_body`, which the client sends as it is: `create()`
        # would first walk every message through the package's typed transform, which cost more CPU than
        # the rest of a step (38% of a loaded server's Python time). They are plain JSON already.
        body = {key: kwargs.pop(key) for key in ("messages", "tools", "tool_choice", "functions", "function_call")
                if key in kwargs}
        try:
            response = self._client.chat.completions.create(**kwargs, messages=[], extra_body=body)
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
            FunctionCall(call.id or f"call_{i}", call.function.name, call.function.arguments or "")
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
