"""The one protocol every LLM provider speaks, and its errors.

`complete(messages, functions)` takes OpenAI-style chat messages and function
schemas and returns a `Completion`: the assistant's plain content (its inner
monologue), the function calls it made, and token usage.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from engine.errors import MemGPTError


@dataclasses.dataclass(frozen=True)
class FunctionCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model wrote it; the runner parses and validates


@dataclasses.dataclass(frozen=True)
class Completion:
    content: str | None
    calls: list[FunctionCall]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""


class LLMProvider(Protocol):
    model: str
    context_window: int

    def complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> Completion: ...


class LLMError(MemGPTError):
    """A failed LLM call. `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ContextWindowExceeded(LLMError):
    """The provider refused the prompt as too long: summarize, do not retry as is."""
