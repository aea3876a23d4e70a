"""Pure functions from engine events and stored messages to chat messages.

Gradio's Chatbot takes dicts {"role", "content", "metadata"}; a message with a
metadata title shows as a collapsible box. Inner monologue and tool calls are
such boxes (closed once done); the agent's words are plain assistant bubbles;
alerts and errors are marked. Nothing here touches Gradio or the store.
"""

from __future__ import annotations

import json
from typing import Any

from engine import system
from engine.api import Message
from engine.events import (
    AssistantMessage,
    Error,
    Event,
    Retrying,
    SystemAlert,
    Thought,
    ToolCall,
    ToolResult,
    Usage,
    UserMessage,
)

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


def _arguments(arguments: dict[str, Any]) -> str:
    shown = {k: v for k, v in arguments.items() if k != "request_heartbeat"}
    return "```json\n" + json.dumps(shown, indent=2, ensure_ascii=False) + "\n```"


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
        if event.name == "send_message":
            return []  # the words themselves follow as a bubble
        return [_box(f"🛠️ {event.name}", _arguments(event.arguments), status="pending")]
    if isinstance(event, ToolResult):
        if event.name == "send_message" and event.status == "OK":
            return []
        mark = "✅" if event.status == "OK" else "❌"
        return [_box(f"{mark} {event.name} → {event.status}", event.message)]
    if isinstance(event, AssistantMessage):
        return [{"role": "assistant", "content": event.text}]
    if isinstance(event, SystemAlert):
        return [_box(ALERT_TITLES.get(event.alert, "ℹ️ " + event.alert), event.text)]
    if isinstance(event, Error):
        hint = " Use **Retry** to try this message again." if event.retryable else ""
        return [_box("🚫 Error", event.message + hint, log="the message is kept")]
    return []


def apply_event(history: list[ChatMessage], event: Event) -> list[ChatMessage]:
    """History with one more event applied: a tool's result closes its pending call box."""
    history = list(history)
    if isinstance(event, ToolResult) and event.name != "send_message":
        for i in range(len(history) - 1, -1, -1):
            meta = history[i].get("metadata") or {}
            if meta.get("status") == "pending" and meta.get("title") == f"🛠️ {event.name}":
                history[i] = {**history[i], "metadata": {**meta, "status": "done"}}
                break
    return history + event_to_messages(event)


def status_line(event: Event) -> str | None:
    """A one-line status for events that do not belong in the transcript."""
    if isinstance(event, Usage):
        return (f"{event.model}: this call {event.prompt_tokens:,} prompt + {event.completion_tokens:,} completion "
                f"tokens; this turn {event.step_prompt_tokens:,} + {event.step_completion_tokens:,}")
    if isinstance(event, Retrying):
        return f"Retrying in {event.wait:g} s (attempt {event.attempt}): {event.reason}"
    return None


def stored_to_messages(rows: list[Message]) -> list[ChatMessage]:
    """A conversation read back from the store, shown as it was when it happened."""
    out: list[ChatMessage] = []
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
            continue  # heartbeats and logins are plumbing
        if row.role == "assistant":
            if row.content:
                out.append(_box("💭 Inner monologue", row.content))
            for call in row.tool_calls or []:
                fn = call.get("function", {})
                try:
                    arguments = json.loads(fn.get("arguments") or "{}")
                except json.JSONDecodeError:
                    arguments = {"_raw": fn.get("arguments")}
                if not isinstance(arguments, dict):
                    arguments = {"_raw": arguments}
                if fn.get("name") == "send_message" and "message" in arguments:
                    out.append({"role": "assistant", "content": str(arguments["message"])})
                else:
                    out.append(_box(f"🛠️ {fn.get('name')}", _arguments(arguments)))
            continue
        if row.role == "tool":
            status = (payload or {}).get("status", "OK")
            message = str((payload or {}).get("message", row.content))
            if status != "OK" or message != "None":
                mark = "✅" if status == "OK" else "❌"
                out.append(_box(f"{mark} result → {status}", message))
    return out
