"""The packaged messages MemGPT feeds the model, as JSON strings.

User messages, heartbeats, logins, alerts and function results are all JSON so
the model can tell them apart by `type`; the time is included because the
agent lives across days.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from engine.json_errors import UNPARSABLE

HIDDEN = "[automated system message, not shown to the user]"


def local_time(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now().astimezone()
    return now.strftime("%Y-%m-%d %I:%M:%S %p %Z%z").strip()


def _dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def user_message(text: str) -> str:
    return _dump({"type": "user_message", "message": text, "time": local_time()})


def heartbeat(reason: str) -> str:
    return _dump({"type": "heartbeat", "reason": f"{HIDDEN} {reason}", "time": local_time()})


HEARTBEAT_REQUESTED = "The function ran with request_heartbeat=true; you have control again."
HEARTBEAT_AFTER_FAILURE = "The function call failed; you have control again to fix it or explain."
HEARTBEAT_MANUAL = "A heartbeat was sent by the user interface; you may think and act."


def login(last_login: str) -> str:
    return _dump({"type": "login", "last_login": last_login, "time": local_time()})


def system_alert(text: str) -> str:
    return _dump({"type": "system_alert", "message": text, "time": local_time()})


MEMORY_PRESSURE = (
    f"{HIDDEN} Memory pressure: the conversation is filling your context window and older "
    "messages will soon be summarized and leave your view. Save anything important to core "
    "memory (core_memory_append/replace) or archival memory (archival_memory_insert) now."
)


def summary(text: str, hidden: int, total: int) -> str:
    return system_alert(
        f"{HIDDEN} To free space, {hidden} earlier messages were removed from your view "
        f"({total} messages in recall memory in all; conversation_search finds them). "
        f"Your summary of what they said: {text}"
    )


def function_result(status: str, message: str) -> str:
    return _dump({"status": status, "message": message, "time": local_time()})


def unpack(content: str | None) -> dict[str, Any] | None:
    """The JSON payload of a packaged message, or None for plain text."""
    if not content or not content.startswith("{"):
        return None
    try:
        value = json.loads(content)
    except UNPARSABLE:
        return None
    return value if isinstance(value, dict) else None
