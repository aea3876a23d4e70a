"""A value per Gradio session (one per browser tab), for what a tab's events must agree on.

Bounded: a tab closed without Blocks.unload firing (a killed browser, a dropped
connection) must not stay in memory for the life of a public app, so beyond `limit`
sessions the longest idle one is forgotten, as if it had just opened.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

import gradio as gr

V = TypeVar("V")
SESSIONS = 10_000


def session_key(request: gr.Request | None) -> str | None:
    """The Gradio session a request comes from, if any (a direct call has none)."""
    return getattr(request, "session_hash", None) if request is not None else None


class PerSession(Generic[V]):
    def __init__(self, limit: int = SESSIONS) -> None:
        self._values: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def set(self, request: gr.Request | None, value: V) -> None:
        key = session_key(request)
        if key is None:
            return
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self._limit:
                self._values.popitem(last=False)

    def get(self, request: gr.Request | None, default: V) -> V:
        """The session's value; `default` for no session, or one never set (or forgotten)."""
        key = session_key(request)
        with self._lock:
            return self._values.get(key, default) if key is not None else default

    def forget(self, request: gr.Request | None) -> None:
        """The tab was closed or reloaded (Blocks.unload)."""
        key = session_key(request)
        with self._lock:
            self._values.pop(key or "", None)

    def __len__(self) -> int:
        return len(self._values)
