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

import gradio as gr

from webapp.sessions import SESSIONS, PerSession


class Newest:
    """Turns of one view's writers, per Gradio session (one per browser tab)."""

    def __init__(self, sessions: int = SESSIONS) -> None:
        self._latest: PerSession[int] = PerSession(sessions)
        self._turns = itertools.count(1)

    def start(self, request: gr.Request | None) -> int:
        """A writer of the view starts: its turn, the newest of its session."""
        turn = next(self._turns)
        self._latest.set(request, turn)
        return turn

    def still_newest(self, request: gr.Request | None, turn: int) -> bool:
        """Whether no writer of the view started after `turn` in its session (no session: yes)."""
        return self._latest.get(request, turn) == turn

    def forget(self, request: gr.Request) -> None:
        """The tab was closed or reloaded (Blocks.unload)."""
        self._latest.forget(request)
