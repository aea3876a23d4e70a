"""The agent in the address bar (`?agent=NAME`), and an agent list that keeps itself current.

A page opened (or reloaded) with `?agent=NAME` picks that agent; every pick writes
the name back into the address with history.replaceState, so a reload keeps the
agent and a link or bookmark opens it. The name in the address is a stranger's
input like any other: it only ever selects one of the agents the list offers.

The list of agents is re-read every few seconds, so an agent created, renamed or
deleted in another tab (or by the terminal) shows without a click; an unchanged
list sends no update, so an open dropdown is not redrawn under the pointer.
"""

from __future__ import annotations

import gradio as gr

from engine.api import MemGPT
from engine.errors import MemGPTError
from webapp.chat_tab import agent_names

LIST_INTERVAL = 5.0  # seconds between re-reads of the agent list (one small query per open tab)

# Runs in the browser on every pick; no server round trip.
WRITE_ADDRESS = """
(name) => {
  const url = new URL(window.location.href);
  if (name) { url.searchParams.set("agent", name); } else { url.searchParams.delete("agent"); }
  window.history.replaceState(window.history.state, "", url);
  return [];
}
"""


def named_agent(api: MemGPT, request: gr.Request | None) -> str | None:
    """The agent the address names, spelled as stored; None when it names none (or one that does not exist)."""
    params = dict(getattr(request, "query_params", None) or {})
    wanted = params.get("agent")
    if not isinstance(wanted, str) or not wanted.strip():
        return None
    try:
        return api.get_agent(wanted.strip()).name
    except MemGPTError:
        return None


def wire(api: MemGPT, picker: gr.Dropdown, loaded) -> None:
    """`loaded` is the page-load event that fills the picker's choices; the address is read after it."""

    def pick_from_address(request: gr.Request):
        name = named_agent(api, request)
        if name is None:
            return gr.skip()
        return gr.Dropdown(choices=agent_names(api), value=name)

    loaded.then(pick_from_address, None, [picker], show_progress="hidden")
    picker.change(None, [picker], None, js=WRITE_ADDRESS)

    known = gr.State(None)  # the names this tab was last sent
    timer = gr.Timer(LIST_INTERVAL)

    def relist(sent):
        names = agent_names(api)
        if names == sent:
            return gr.skip(), gr.skip()
        return gr.Dropdown(choices=names), names

    timer.tick(relist, [known], [picker, known], show_progress="hidden", queue=False)
