"""Pure functions from engine events and stored messages to chat messages.

Gradio's Chatbot takes dicts {"role", "content", "metadata"}; a message with a
metadata title shows as a collapsible box. Inner monologue and tool calls are
such boxes (closed once done); the agent's words are plain assistant bubbles;
alerts and errors are marked. Nothing here touches Gradio or the store.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine import system
from engine.api import Message
from engine.events import (
    AssistantMessage,
    Error,
    Event,
    MessageDelta,
    Retrying,
    SystemAlert,
    Thought,
    ThoughtDelta,
    ToolCall,
    ToolResult,
    Usage,
    UserMessage,
)
from engine.json_errors import UNPARSABLE

ChatMessage = dict[str, Any]

ALERT_TITLES = {
    "memory_pressure": "⚠️ Memory pressure",
    "summarized": "🗜️ Summarized older messages",
    "chain_limit": "⛔ Stopped a chain of calls",
    "verify_retry": "🔁 Asked again for a first message",
    "summarize_skipped": "🗜️ Nothing to summarize",
}


def _box(title: str, content: str, *, status: str = "done", log: str | None = None) -> ChatMessage:
    metadata: dict[str, Any] = {"title": title, "status": status}
    if log:
        metadata["log"] = log
    return {"role": "assistant", "content": content, "metadata": metadata}


# A box title is one line: each argument value is cut to VALUE_CHARS and all of them to TITLE_ARGS_CHARS.
VALUE_CHARS = 40
TITLE_ARGS_CHARS = 90
NAME_CHARS = 60
BOX_VALUE_CHARS = 4000  # a string argument shown in the box beyond this is cut (the store keeps it all)
# Arguments that name a thing (a memory block) read better bare: core_memory_append(human, "likes tea").
BARE_KEYS = {"name", "label"}
_IDENTIFIER = re.compile(r"[A-Za-z_][\w-]{0,31}")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:])")  # with ":" and ".", no autolinks


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape_markdown(text: str) -> str:
    """Text the Chatbot's markdown renderer shows literally: no emphasis, links, HTML or maths."""
    text = _MARKDOWN.sub(r"\\\1", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shown(arguments: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in arguments.items() if k != "request_heartbeat"}


def _title_value(key: str, value: Any) -> str:
    if isinstance(value, str):
        if key in BARE_KEYS and _IDENTIFIER.fullmatch(value):
            return value
        # json.dumps writes newlines and quotes as escapes, so the title stays one line.
        quoted = json.dumps(_clip(value, VALUE_CHARS), ensure_ascii=False)
        return quoted
    return _clip(json.dumps(value, ensure_ascii=False, default=str), VALUE_CHARS)


def call_title(name: Any, arguments: dict[str, Any]) -> str:
    """The title of a tool call box: the tool and a short rendering of what it was given.

    The model writes both, so both are cut short and escaped: a title is markdown
    to the Chatbot, and a model (or whoever fed it) can write HTML or markdown.
    """
    rendered = ", ".join(_title_value(k, v) for k, v in _shown(arguments).items())
    return f"🛠️ {_escape_markdown(_clip(str(name), NAME_CHARS))}({_escape_markdown(_clip(rendered, TITLE_ARGS_CHARS))})"


def _call_prefix(name: Any) -> str:
    return f"🛠️ {_escape_markdown(_clip(str(name), NAME_CHARS))}("


def result_title(name: Any, status: str) -> str:
    mark = "✅" if status == "OK" else "❌"
    return f"{mark} {_escape_markdown(_clip(str(name), NAME_CHARS))} → {_escape_markdown(_clip(str(status), 20))}"


def _arguments(arguments: dict[str, Any]) -> str:
    shown = {k: (_clip(v, BOX_VALUE_CHARS) if isinstance(v, str) else v) for k, v in _shown(arguments).items()}
    # Inside a code fence nothing renders as markdown; json.dumps keeps every value on one line, so no
    # value can start a line with ``` and close the fence early.
    return "```json\n" + json.dumps(shown, indent=2, ensure_ascii=False, default=str) + "\n```"


def _says(name: Any, arguments: dict[str, Any]) -> bool:
    """Whether a call is the agent speaking: its words show as a bubble, not as a tool box."""
    return name == "send_message" and isinstance(arguments.get("message"), str)


def event_to_messages(event: Event) -> list[ChatMessage]:
    """The chat messages one event adds (usage and retries go to the status line instead)."""
    if isinstance(event, UserMessage):
        if event.message_type == "user_message":
            return [{"role": "user", "content": event.text}]
        return [_box("💓 Heartbeat" if event.message_type == "heartbeat" else "⚠️ Memory warning sent",
                     "Sent to the agent by the interface.")]
    if isinstance(event, Thought):
        return [_box("💭 Inner monologue", event.text)]
    if isinstance(event, ToolCall):
        if _says(event.name, event.arguments):
            return []  # the words themselves follow as a bubble (AssistantMessage)
        return [_box(call_title(event.name, event.arguments), _arguments(event.arguments), status="pending")]
    if isinstance(event, ToolResult):
        if event.name == "send_message" and event.status == "OK":
            return []
        return [_box(result_title(event.name, event.status), event.message)]
    if isinstance(event, AssistantMessage):
        return [{"role": "assistant", "content": event.text}]
    if isinstance(event, SystemAlert):
        return [_box(ALERT_TITLES.get(event.alert, "ℹ️ " + event.alert), event.text)]
    if isinstance(event, Error):
        hint = " Use **Retry** to try this message again." if event.retryable else ""
        return [_box("🚫 Error", event.message + hint, log="the message is kept")]
    return []


# Messages still streaming carry one of these ids in their metadata; the whole event replaces them.
PARTIAL_THOUGHT = "partial-thought"
PARTIAL_MESSAGE = "partial-message-"


def _partial_id(message: ChatMessage) -> str:
    value = (message.get("metadata") or {}).get("id")
    return value if isinstance(value, str) and value.startswith(("partial-",)) else ""


def _find(history: list[ChatMessage], partial: str) -> int | None:
    for i in range(len(history) - 1, -1, -1):
        if _partial_id(history[i]) == partial:
            return i
    return None


def drop_partials(history: list[ChatMessage]) -> list[ChatMessage]:
    """History without the text of a reply still streaming (it was retried, refused or stopped)."""
    return [m for m in history if not _partial_id(m)]


def _grow(history: list[ChatMessage], partial: str, text: str, fresh: ChatMessage) -> list[ChatMessage]:
    i = _find(history, partial)
    if i is None:
        return history + [fresh]
    return history[:i] + [{**history[i], "content": history[i]["content"] + text}] + history[i + 1 :]


def apply_event(history: list[ChatMessage], event: Event) -> list[ChatMessage]:
    """History with one more event applied.

    A tool's result closes its pending call box. While a reply streams, its
    pieces grow an inner-monologue box and a speech bubble in place; the whole
    Thought and AssistantMessage then take their places, and a Retrying, an
    alert or an error drops them (the reply is asked for again, or refused).
    """
    history = list(history)
    if isinstance(event, ThoughtDelta):
        return _grow(history, PARTIAL_THOUGHT, event.text, {
            "role": "assistant", "content": event.text,
            "metadata": {"title": "💭 Inner monologue", "status": "pending", "id": PARTIAL_THOUGHT}})
    if isinstance(event, MessageDelta):
        partial = f"{PARTIAL_MESSAGE}{event.call}"
        return _grow(history, partial, event.text, {"role": "assistant", "content": event.text,
                                                    "metadata": {"id": partial}})
    if isinstance(event, (Retrying, SystemAlert, Error)):
        history = drop_partials(history)
    new = event_to_messages(event)
    if isinstance(event, Thought) and (i := _find(history, PARTIAL_THOUGHT)) is not None:
        return history[:i] + new + history[i + 1 :]
    if isinstance(event, AssistantMessage):
        speaking = [i for i, m in enumerate(history) if _partial_id(m).startswith(PARTIAL_MESSAGE)]
        if speaking:
            i = min(speaking, key=lambda j: int(_partial_id(history[j])[len(PARTIAL_MESSAGE):] or 0))
            return history[:i] + new + history[i + 1 :]
    if isinstance(event, ToolResult) and event.name != "send_message":
        for i in range(len(history) - 1, -1, -1):
            meta = history[i].get("metadata") or {}
            if meta.get("status") == "pending" and str(meta.get("title", "")).startswith(_call_prefix(event.name)):
                history[i] = {**history[i], "metadata": {**meta, "status": "done"}}
                break
    # Boxes of the calls that run while the agent's words still stream go before those words, as in the store.
    speaking = [i for i, m in enumerate(history) if _partial_id(m).startswith(PARTIAL_MESSAGE)]
    at = speaking[0] if speaking else len(history)
    return history[:at] + new + history[at:]


def status_line(event: Event) -> str | None:
    """A one-line status for events that do not belong in the transcript."""
    if isinstance(event, Usage):
        about = "about " if event.estimated else ""
        counted = " (counted here: the server sent no usage)" if event.estimated else ""
        return (f"{event.model}: this call {about}{event.prompt_tokens:,} prompt + {event.completion_tokens:,} "
                f"completion tokens{counted}; this turn {event.step_prompt_tokens:,} + "
                f"{event.step_completion_tokens:,}")
    if isinstance(event, Retrying):
        return f"Retrying in {event.wait:g} s (attempt {event.attempt}): {event.reason}"
    return None


def stored_to_messages(rows: list[Message]) -> list[ChatMessage]:
    """A conversation read back from the store, shown as it was when it happened.

    Tool calls and their results get the same boxes (titles and contents) as
    `event_to_messages` gave them live.
    """
    out: list[ChatMessage] = []
    names: dict[str, Any] = {}  # tool call id -> the tool it called, for the result's title
    for row in rows:
        payload = system.unpack(row.content) or {}
        if row.role == "system":
            continue
        if row.role == "user":
            kind = payload.get("type")
            if kind == "user_message":
                out.append({"role": "user", "content": str(payload.get("message", ""))})
            elif row.name == "summary":
                out.append(_box("🗜️ Summary of earlier messages", row.text or str(payload.get("message", ""))))
            elif kind == "system_alert":
                out.append(_box("⚠️ System alert", str(payload.get("message", ""))))
            elif kind == "heartbeat" and system.HEARTBEAT_MANUAL in str(payload.get("reason", "")):
                out.append(event_to_messages(UserMessage("", "heartbeat"))[0])  # the Heartbeat button's, as live
            continue  # the other heartbeats and logins are plumbing
        if row.role == "assistant":
            if row.content:
                out.append(_box("💭 Inner monologue", row.content))
            for call in row.tool_calls or []:
                fn = call.get("function", {})
                name = fn.get("name")
                names[str(call.get("id"))] = name
                arguments = _parse(fn.get("arguments"))
                if _says(name, arguments):
                    out.append({"role": "assistant", "content": arguments["message"]})
                else:
                    out.append(_box(call_title(name, arguments), _arguments(arguments)))
            continue
        if row.role == "tool":
            status = str(payload.get("status", "OK"))
            message = str(payload.get("message", row.content))
            name = names.get(str(row.tool_call_id), "result")
            if not (name == "send_message" and status == "OK"):
                out.append(_box(result_title(name, status), message))
    return out


def _parse(raw: Any) -> dict[str, Any]:
    """Stored call arguments as the agent parsed them when the call ran (engine.agent._parse_arguments)."""
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except UNPARSABLE:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}
