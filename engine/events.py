"""The typed events an agent step yields.

Faces render these and nothing else: the web app turns them into chat
messages, the WebSocket server into JSON frames, the terminal into coloured
lines. Each is a small frozen dataclass with a `kind` for easy dispatch.

While a provider streams, partial events (`partial` true: ThoughtDelta,
MessageDelta) come before the whole ones, which follow exactly as without
streaming; a face may ignore them. Partial text not yet made whole is void
once a Retrying, SystemAlert or Error event comes (the reply is being asked
for again, or was refused), and at the end of the step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar


@dataclasses.dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    partial: ClassVar[bool] = False  # a piece of a reply still streaming; the whole event follows

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class UserMessage(Event):
    """What the step started from (a user message, a heartbeat, an alert), as persisted."""

    kind: ClassVar[str] = "user_message"
    text: str
    message_type: str = "user_message"


@dataclasses.dataclass(frozen=True)
class Thought(Event):
    """Inner monologue: the assistant's plain content, never shown to the user as speech."""

    kind: ClassVar[str] = "thought"
    text: str


@dataclasses.dataclass(frozen=True)
class ThoughtDelta(Event):
    """The next piece of inner monologue while the reply streams; the whole comes as a Thought."""

    kind: ClassVar[str] = "thought_delta"
    partial: ClassVar[bool] = True
    text: str


@dataclasses.dataclass(frozen=True)
class MessageDelta(Event):
    """The next piece of what the agent is saying (a send_message call still being written).

    `call` numbers the send_message calls of one reply; the whole comes as an AssistantMessage.
    """

    kind: ClassVar[str] = "message_delta"
    partial: ClassVar[bool] = True
    text: str
    call: int = 0


@dataclasses.dataclass(frozen=True)
class ToolCall(Event):
    kind: ClassVar[str] = "tool_call"
    name: str
    arguments: dict[str, Any]
    call_id: str


@dataclasses.dataclass(frozen=True)
class ToolResult(Event):
    kind: ClassVar[str] = "tool_result"
    name: str
    status: str  # "OK" or "Failed"
    message: str
    call_id: str


@dataclasses.dataclass(frozen=True)
class AssistantMessage(Event):
    """What the agent said to the user through send_message."""

    kind: ClassVar[str] = "assistant_message"
    text: str


@dataclasses.dataclass(frozen=True)
class SystemAlert(Event):
    """Memory pressure, summarization, chain limit, first-message retries..."""

    kind: ClassVar[str] = "system_alert"
    alert: str  # memory_pressure | summarized | chain_limit | verify_retry | ...
    text: str


@dataclasses.dataclass(frozen=True)
class Usage(Event):
    """The tokens of one model call, and of the turn so far.

    `estimated`: the server gave no counts for this call (a stream without usage),
    so they were counted here with the app's tokenizer, which may differ from the model's.
    """

    kind: ClassVar[str] = "usage"
    prompt_tokens: int
    completion_tokens: int
    model: str
    step_prompt_tokens: int
    step_completion_tokens: int
    estimated: bool = False


@dataclasses.dataclass(frozen=True)
class Retrying(Event):
    """A transient LLM failure; the call is tried again after `wait` seconds."""

    kind: ClassVar[str] = "retrying"
    attempt: int
    wait: float
    reason: str


@dataclasses.dataclass(frozen=True)
class Error(Event):
    """The step could not finish. What was said so far is kept; the step can be retried."""

    kind: ClassVar[str] = "error"
    message: str
    retryable: bool = True
