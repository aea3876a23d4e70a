"""The Stop button's side of a running turn: one flag per browser tab and agent.

A turn streams inside a queued Gradio handler; Stop is another request (unqueued, so
it is not stuck behind the turn). It sets the flag of the run that this browser tab
started for the agent it shows; the stream checks the flag between events
(`MemGPT.stoppable`) and ends the turn at the next point where nothing is half done.
"""

from __future__ import annotations

import threading

import gradio as gr

from webapp.sessions import session_key


class Runs:
    def __init__(self) -> None:
        self._flags: dict[tuple[str, int], threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, request: gr.Request | None, agent_id: int) -> threading.Event | None:
        """The new run's Stop flag; None while a run of this web app already holds the agent.

        Checked and claimed under one lock: two Enters in quick succession both found
        the agent free before either step took its lock, and the second then waited
        for the first and drew its turn over the first one's reply.
        """
        flag = threading.Event()
        key = _key(request, agent_id)
        with self._lock:
            if any(running == agent_id for _, running in self._flags):
                return None
            if key is not None:
                self._flags[key] = flag
        return flag

    def finish(self, request: gr.Request | None, agent_id: int, flag: threading.Event) -> None:
        key = _key(request, agent_id)
        with self._lock:
            if key is not None and self._flags.get(key) is flag:
                del self._flags[key]

    def stop(self, request: gr.Request | None, agent_id: int | None) -> bool:
        """Ask the tab's run for `agent_id` to stop; whether one was running."""
        key = _key(request, agent_id)
        with self._lock:
            flag = self._flags.get(key) if key is not None else None
        if flag is None:
            return False
        flag.set()
        return True


def _key(request: gr.Request | None, agent_id: int | None) -> tuple[str, int] | None:
    session = session_key(request)
    return (session, agent_id) if session and agent_id is not None else None
