"""Core memory beside the chat: the context window's fill, each block as the agent now holds it, the memory counts.

Read-only: editing stays in the Memory tab, where drafts and conflicts are handled.
Redrawn after every turn and pick (the chain app.py runs after agent events) and when
the Chat tab is opened again. The blocks are the agent's text, which a stranger may
have steered, so the HTML is built here with every value escaped.

On a narrow screen the panel is a drawer: a button pinned to the top right corner
opens it over the conversation and closes it (so does Escape), and the conversation
keeps its place at the top of the page instead of sharing the column with the panel.
"""

from __future__ import annotations

import html

import gradio as gr

from engine.api import MemGPT
from engine.context import PARTS
from engine.errors import MemGPTError
from webapp.context_tab import COLOURS, LABELS

EMPTY = "<p class='memory-panel-note'>Pick an agent to see its core memory here.</p>"
# Inline styles: Gradio 6 takes page CSS only at launch(), and each launcher would have to pass it.
PRE = "white-space:pre-wrap;word-break:break-word;margin:0.25em 0 0.75em;font-size:0.85em;max-height:16em;overflow-y:auto"
FILL = "opacity:0.7;font-size:0.85em"
NARROW = 700  # px: below this Gradio's row has wrapped the panel under the chat (360 + 280 min widths and gaps)

# The drawer's rules, in a <style> the static part of the panel carries (for the reason above). Fixed
# elements, no transforms: a transformed ancestor would pin the toggle to it instead of the screen.
DRAWER_CSS = f"""
#memory-toggle {{ display: none; }}
@media (max-width: {NARROW}px) {{
  #memory-toggle {{
    display: inline-flex; align-items: center; gap: 0.3em; position: fixed; top: 10px; right: 10px; z-index: 1001;
    padding: 0.45em 0.8em; border-radius: 999px; border: 1px solid var(--border-color-primary, #9ca3af);
    background: var(--button-secondary-background-fill, #f3f4f6); color: var(--body-text-color, inherit);
    font: inherit; font-size: 0.9em; box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25); cursor: pointer;
  }}
  #memory-drawer {{
    display: none !important; position: fixed !important; top: 0; right: 0; bottom: 0; z-index: 1000;
    width: min(88vw, 380px) !important; min-width: 0 !important; margin: 0 !important; overflow-y: auto;
    padding: 56px 12px 16px !important; background: var(--background-fill-primary, #fff);
    box-shadow: -4px 0 16px rgba(0, 0, 0, 0.3);
  }}
  body.memory-drawer-open #memory-drawer {{ display: flex !important; }}
  /* The column holding the panel takes no room of its own under the conversation. */
  .column:has(> #memory-drawer) {{ min-width: 0 !important; flex: 0 0 0 !important; padding: 0 !important;
    margin: 0 !important; gap: 0 !important; }}
}}
"""
TOGGLE = (f"<style>{DRAWER_CSS}</style>"
          "<button id='memory-toggle' type='button' aria-controls='memory-drawer' aria-expanded='false' "
          "aria-label='Open core memory'>🧠 Memory</button>")
TOGGLE_JS = """
const toggle = element.querySelector('#memory-toggle');
const show = (open) => {
  document.body.classList.toggle('memory-drawer-open', open);
  toggle.setAttribute('aria-expanded', String(open));
  toggle.setAttribute('aria-label', open ? 'Close core memory' : 'Open core memory');
  toggle.textContent = open ? '✕ Close' : '🧠 Memory';
};
toggle.addEventListener('click', () => show(!document.body.classList.contains('memory-drawer-open')));
document.addEventListener('keydown', (e) => { if (e.key === 'Escape') show(false); });
"""


def build() -> tuple[gr.Column, gr.HTML]:
    gr.HTML(TOGGLE, js_on_load=TOGGLE_JS, elem_id="memory-toggle-holder", padding=False)
    with gr.Column(elem_id="memory-drawer") as drawer:
        gr.Markdown("**Core memory**")
        panel = gr.HTML(EMPTY, elem_id="memory-panel")
    return drawer, panel


def context_bar(breakdown: dict[str, int], window: int) -> str:
    """The context window's fill as a thin stacked bar, part by part, with the total."""
    used = sum(breakdown[p] for p in PARTS)
    total = max(window, used, 1)
    segments = "".join(
        f"<div class='context-part' data-part='{p}' title='{LABELS[p]}: {breakdown[p]:,} tokens' "
        f"style='width:{100 * breakdown[p] / total:.3f}%;background:{COLOURS[p]};height:100%'></div>"
        for p in PARTS if breakdown[p])
    legend = " · ".join(
        f"<span style='white-space:nowrap'><span style='display:inline-block;width:0.7em;height:0.7em;"
        f"background:{COLOURS[p]}'></span> {LABELS[p]} {breakdown[p]:,}</span>"
        for p in PARTS if breakdown[p] or p != "summary")
    share = 100 * used / max(window, 1)
    warn = " ⚠️" if share > 75 else ""
    return (f"<div class='context-fill' style='margin-bottom:0.75em'>"
            f"<div style='font-size:0.85em'><strong>Context</strong> {used:,} / {window:,} tokens "
            f"({share:.0f}%){warn}</div>"
            f"<div role='img' aria-label='context window: {used:,} of {window:,} tokens used' "
            f"style='display:flex;height:10px;border-radius:5px;overflow:hidden;margin:0.3em 0;"
            f"background:rgba(128,128,128,0.25)'>{segments}</div>"
            f"<div style='{FILL};line-height:1.6'>{legend}</div></div>")


def render(api: MemGPT, agent_id: int | None) -> str:
    if agent_id is None:
        return EMPTY
    try:
        blocks = api.get_core_memory(agent_id)
        recall, archival = api.recall_count(agent_id), api.archival_count(agent_id)
    except MemGPTError:  # deleted meanwhile: the pick that follows redraws the panel
        return EMPTY
    parts = []
    try:
        ctx = api.context(agent_id)
        parts.append(context_bar(ctx.breakdown, ctx.window))
    except MemGPTError:  # a model the agent cannot reach now: the memory is still worth showing
        pass
    for block in blocks:
        over = " ⚠️" if len(block.value) > block.limit else ""
        parts.append(
            f"<div class='memory-panel-block' data-block='{html.escape(block.label, quote=True)}'>"
            f"<strong>{html.escape(block.label)}</strong> "
            f"<span style='{FILL}'>{len(block.value)}/{block.limit}{over}</span>"
            f"<pre style='{PRE}'>{html.escape(block.value) or '(empty)'}</pre></div>")
    parts.append(f"<p style='{FILL}'>Recall: {recall} messages · Archival: {archival} passages</p>")
    return "".join(parts)
