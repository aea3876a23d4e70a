"""The one protocol every LLM provider speaks, and its errors.

`complete(messages, functions)` takes OpenAI-style chat messages and function
schemas and returns a `Completion`: the assistant's plain content (its inner
monologue), the function calls it made, and token usage.

Providers that can stream also have `stream_complete(messages, functions,
on_delta)`: the same `Completion` in the end, with each `Delta` handed to
`on_delta` as it arrives (on the calling thread). Providers that cannot (the
embedded model, the completions wrappers) simply lack it; `streams()` asks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from engine.errors import MemGPTError


@dataclasses.dataclass(frozen=True)
class FunctionCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model wrote it; the runner parses and validates


MAX_CALL_ID = 256


def call_id(value: object, index: int) -> str:
    """The id a server gave a tool call, if it is a usable one; else one made up from its place.

    The id pairs the call with its result in the stored history. An id that is not a
    short string (a JSON object, say, from a hostile server) could not be stored with
    the result and made the history unloadable for good, so it is never kept.
    """
    return value if isinstance(value, str) and 0 < len(value) <= MAX_CALL_ID else f"call_{index}"


@dataclasses.dataclass(frozen=True)
class Completion:
    content: str | None
    calls: list[FunctionCall]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""


@dataclasses.dataclass(frozen=True)
class Delta:
    """A piece of a reply as it streams: plain content, or a fragment of one tool call's argument text."""

    content: str = ""
    call_index: int | None = None  # which tool call of the reply the fragment belongs to
    name: str | None = None  # the call's function name, once the stream has said it
    arguments: str = ""


class LLMProvider(Protocol):
    model: str
    context_window: int

    def complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> Completion: ...


class StreamingProvider(LLMProvider, Protocol):
    def stream_complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]],
                        on_delta: Callable[[Delta], None]) -> Completion: ...


def streams(provider: object) -> bool:
    """Whether `provider` can stream its replies (and has not found out that its server cannot)."""
    return callable(getattr(provider, "stream_complete", None)) and getattr(provider, "streaming", True)


class LLMError(MemGPTError):
    """A failed LLM call. `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ContextWindowExceeded(LLMError):
    """The provider refused the prompt as too long: summarize, do not retry as is."""
