"""Which agent each browser tab shows, so a reply streaming for another agent stops drawing there.

A Gradio handler reads its inputs once, when it starts, and a turn streams for many
seconds. If the person picks another agent meanwhile, the stream must not paint the
old agent's conversation under the new agent's name (and the next message must not
be sent from inside it). The Chat tab records each pick per Gradio session (one per
browser tab) and a stream asks before every update. The turn itself runs to its end:
what the old agent said is stored and shown when that agent is picked again.
"""

from __future__ import annotations

import gradio as gr

from webapp.sessions import PerSession


class Viewing:
    def __init__(self) -> None:
        self._shown: PerSession[int | None] = PerSession()

    def show(self, request: gr.Request | None, agent_id: int | None) -> None:
        """The session's tab now shows `agent_id` (None: no agent)."""
        self._shown.set(request, agent_id)

    def shows(self, request: gr.Request | None, agent_id: int | None) -> bool:
        """Whether the session's tab still shows `agent_id` (a session never seen shows what it asked for)."""
        return self._shown.get(request, agent_id) == agent_id

    def forget(self, request: gr.Request) -> None:
        """The tab was closed or reloaded (Blocks.unload)."""
        self._shown.forget(request)
