"""Core memory beside the chat: each block as the agent now holds it, with its fill, and the memory counts.

Read-only: editing stays in the Memory tab, where drafts and conflicts are handled.
Redrawn after every turn and pick (the chain app.py runs after agent events) and when
the Chat tab is opened again. The blocks are the agent's text, which a stranger may
have steered, so the HTML is built here with every value escaped.
"""

from __future__ import annotations

import html

import gradio as gr

from engine.api import MemGPT
from engine.errors import MemGPTError

EMPTY = "<p class='memory-panel-note'>Pick an agent to see its core memory here.</p>"
# Inline styles: Gradio 6 takes page CSS only at launch(), and each launcher would have to pass it.
PRE = "white-space:pre-wrap;word-break:break-word;margin:0.25em 0 0.75em;font-size:0.85em;max-height:16em;overflow-y:auto"
FILL = "opacity:0.7;font-size:0.85em"


def build() -> tuple[gr.Accordion, gr.HTML]:
    # On a narrow screen the column wraps below the conversation, and the accordion folds the panel away.
    with gr.Accordion("Core memory", open=True, elem_id="memory-drawer") as drawer:
        panel = gr.HTML(EMPTY, elem_id="memory-panel")
    return drawer, panel


def render(api: MemGPT, agent_id: int | None) -> str:
    if agent_id is None:
        return EMPTY
    try:
        blocks = api.get_core_memory(agent_id)
        recall, archival = api.recall_count(agent_id), api.archival_count(agent_id)
    except MemGPTError:  # deleted meanwhile: the pick that follows redraws the panel
        return EMPTY
    parts = []
    for block in blocks:
        over = " ⚠️" if len(block.value) > block.limit else ""
        parts.append(
            f"<div class='memory-panel-block' data-block='{html.escape(block.label, quote=True)}'>"
            f"<strong>{html.escape(block.label)}</strong> "
            f"<span style='{FILL}'>{len(block.value)}/{block.limit}{over}</span>"
            f"<pre style='{PRE}'>{html.escape(block.value) or '(empty)'}</pre></div>")
    parts.append(f"<p style='{FILL}'>Recall: {recall} messages · Archival: {archival} passages</p>")
    return "".join(parts)
