"""A scripted LLM for tests: returns queued replies in order and records every call."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any

from engine.llm.base import Completion, FunctionCall, LLMError


def call(name: str, arguments: dict[str, Any] | str | None = None, call_id: str | None = None) -> FunctionCall:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return FunctionCall(call_id or f"call-{name}-{time.monotonic_ns()}", name, raw)


def say(message: str, thought: str | None = "Replying.", **extra) -> Completion:
    return Completion(thought, [call("send_message", {"message": message, **extra})], 100, 10, "scripted")


def use(function: str, /, thought: str | None = None, heartbeat: bool = True, **arguments) -> Completion:
    # `function` is positional-only, so a tool argument called `name` (core_memory_append's) can be passed.
    return Completion(thought, [call(function, {**arguments, "request_heartbeat": heartbeat})], 100, 10, "scripted")


class ScriptedModel:
    def __init__(self, context_window: int = 8192, delay: float = 0.0):
        self.model = "scripted"
        self.context_window = context_window
        self.delay = delay
        self.replies: deque = deque()
        self.calls: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def enqueue(self, *replies: Completion | Exception) -> ScriptedModel:
        self.replies.extend(replies)
        return self

    def complete(self, messages, functions) -> Completion:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append((json.loads(json.dumps(messages)), functions))
            if self.delay:
                time.sleep(self.delay)
            if not functions:  # a summarization call
                if self.replies and isinstance(self.replies[0], Completion) and not self.replies[0].calls:
                    return self.replies.popleft()
                return Completion("I talked with the user about several things.", [], 50, 10, "scripted")
            if not self.replies:
                raise LLMError("scripted model has no reply queued")
            reply = self.replies.popleft()
            if isinstance(reply, Exception):
                raise reply
            return reply
        finally:
            with self._lock:
                self.active -= 1
