"""Calling a running Gradio app's event handlers over plain HTTP, the way a stranger can.

The page calls handlers by index through the queue; so can anyone who reads
/config. This client does exactly that, with no browser and no gradio_client
(which refuses private events: an attacker's script does not).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx


def config(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}config", timeout=30)
    response.raise_for_status()
    return response.json()


def component_id(cfg: dict[str, Any], label: str) -> int:
    for component in cfg["components"]:
        if component.get("props", {}).get("label") == label:
            return component["id"]
    raise LookupError(f"no component labelled {label!r}")


def handler_with_input(cfg: dict[str, Any], input_id: int) -> tuple[int, list[int]]:
    """(fn index, input component ids) of the first handler that reads component `input_id`."""
    for dep in cfg["dependencies"]:
        if input_id in dep.get("inputs", []):
            return dep["id"], dep["inputs"]
    raise LookupError(f"no handler reads component {input_id}")


def call(base: str, fn_index: int, data: list[Any], *, session_hash: str | None = None,
         timeout: float = 60) -> dict[str, Any]:
    """Run one event; returns Gradio's `process_completed` message (`success`, `output`) plus `logs`.

    `logs` holds the texts of the toasts (gr.Warning/gr.Info) the handler sent on the way.
    """
    session = session_hash or uuid.uuid4().hex[:12]
    logs: list[str] = []
    joined = httpx.post(f"{base}gradio_api/queue/join", timeout=30, json={
        "data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None})
    joined.raise_for_status()
    with httpx.stream("GET", f"{base}gradio_api/queue/data", params={"session_hash": session},
                      timeout=timeout) as response:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "log":
                logs.append(str(message.get("log")))
            if message.get("msg") == "process_completed":
                return {**message, "logs": logs}
    raise AssertionError("the event never completed")


def refusal(reply: dict[str, Any]) -> str:
    """What refused the call: a failed event's error, or the warnings the app shows refusals as ("" if none)."""
    if reply.get("success") is False:
        return str(reply.get("output"))
    return " ".join(reply.get("logs", []))
