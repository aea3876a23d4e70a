"""The newest of a browser tab's events writing one view, so an older, slower one cannot overwrite it.

Gradio runs a session's events side by side and applies each one's outputs when it
ends, in the order they end. The Archival table is written by a search and by the
listing a newly picked agent gets: a search started just before another agent was
picked can end after that agent's listing and put the old agent's passages under the
new agent's name (or a listing can end after the search the person asked for). Each
writer takes a turn when it starts and, when it ends, leaves its outputs alone if a
newer writer of the same view has started since in the same session.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

import gradio as gr

from webapp.viewing import session_key

SESSIONS = 10_000  # sessions remembered; a tab closed without Blocks.unload firing must not stay forever


class Newest:
    """Turns of one view's writers, per Gradio session (one per browser tab)."""

    def __init__(self, sessions: int = SESSIONS) -> None:
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._sessions = sessions
        self._lock = threading.Lock()
        self._turns = itertools.count(1)

    def start(self, request: gr.Request | None) -> int:
        """A writer of the view starts: its turn, the newest of its session."""
        turn = next(self._turns)
        key = session_key(request)
        if key is not None:
            with self._lock:
                self._latest[key] = turn
                self._latest.move_to_end(key)
                while len(self._latest) > self._sessions:  # the longest idle first: its writers then just draw
                    self._latest.popitem(last=False)
        return turn

    def still_newest(self, request: gr.Request | None, turn: int) -> bool:
        """Whether no writer of the view started after `turn` in its session (no session: yes)."""
        key = session_key(request)
        if key is None:
            return True
        with self._lock:
            return self._latest.get(key, turn) == turn

    def forget(self, request: gr.Request) -> None:
        """The tab was closed or reloaded (Blocks.unload)."""
        key = session_key(request)
        with self._lock:
            self._latest.pop(key or "", None)

