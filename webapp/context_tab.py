"""The Context view: what the context window holds, part by part, and the raw prompt."""

from __future__ import annotations

import dataclasses
import html
import json

import gradio as gr

from engine.api import MemGPT
from engine.context import PARTS
from webapp.common import guarded, load_agent

COLOURS = {
    "system": "#6366f1",
    "core_memory": "#10b981",
    "functions": "#f59e0b",
    "summary": "#ec4899",
    "messages": "#3b82f6",
    "free": "#e5e7eb",
}
LABELS = {"system": "System prompt", "core_memory": "Core memory", "functions": "Functions",
          "summary": "Summary", "messages": "Messages", "free": "Free"}


@dataclasses.dataclass
class ContextTab:
    bar: gr.HTML
    table: gr.Dataframe
    refresh: gr.Button
    show_raw: gr.Button
    raw: gr.Textbox


def stacked_bar(breakdown: dict[str, int], window: int) -> str:
    """An HTML stacked bar of tokens per part against the window."""
    parts = {p: breakdown[p] for p in PARTS}
    parts["free"] = max(0, window - sum(parts.values()))
    total = max(window, sum(parts.values()), 1)
    segments = "".join(
        f'<div title="{LABELS[p]}: {n:,} tokens" style="width:{100 * n / total:.3f}%;background:{COLOURS[p]};'
        f'height:28px;display:inline-block"></div>'
        for p, n in parts.items() if n
    )
    legend = " ".join(
        f'<span style="margin-right:12px"><span style="display:inline-block;width:10px;height:10px;'
        f'background:{COLOURS[p]}"></span> {html.escape(LABELS[p])} {n:,}</span>'
        for p, n in parts.items()
    )
    used = sum(parts.values()) - parts["free"]
    return (f'<div aria-label="context window" style="width:100%;border:1px solid #9ca3af;display:flex">{segments}</div>'
            f'<div style="margin-top:6px;font-size:0.9em">{legend}</div>'
            f'<p><b>{used:,}</b> of <b>{window:,}</b> tokens used ({100 * used / max(window, 1):.1f}%)</p>')


def raw_text(ctx) -> str:
    """The prompt as the model receives it, one message after another, then the function schemas."""
    parts = []
    for message in ctx.messages:
        header = f"──── {message['role']}" + (f" ({message['tool_call_id']})" if message.get("tool_call_id") else "")
        body = message.get("content") or ""
        if message.get("tool_calls"):
            body += ("\n" if body else "") + json.dumps(message["tool_calls"], ensure_ascii=False)
        parts.append(f"{header}\n{body}")
    parts.append("──── functions\n" + json.dumps(ctx.functions, indent=2, ensure_ascii=False))
    return "\n\n".join(parts)


def build(api: MemGPT) -> ContextTab:
    bar = gr.HTML()
    table = gr.Dataframe(headers=["part", "tokens"], interactive=False, label="Tokens per part")
    with gr.Row():
        refresh = gr.Button("↻ Refresh")
        show_raw = gr.Button("Show the raw prompt")
    raw = gr.Textbox(label="Raw prompt (messages and functions, as sent)", lines=20, max_lines=40, visible=False,
                     interactive=False)
    return ContextTab(bar, table, refresh, show_raw, raw)


def measure(api: MemGPT, current: int | None):
    if current is None:
        return "<p>Pick an agent to see its context window.</p>", []
    ctx = load_agent(api, current).context()
    rows = [[LABELS[p], ctx.breakdown[p]] for p in PARTS] + [["Free", max(0, ctx.free)], ["Window", ctx.window]]
    return stacked_bar(ctx.breakdown, ctx.window), rows


def wire(api: MemGPT, tab: ContextTab, agent_id: gr.State) -> None:
    agent_id.change(guarded(lambda c: measure(api, c)), [agent_id], [tab.bar, tab.table])
    tab.refresh.click(guarded(lambda c: measure(api, c)), [agent_id], [tab.bar, tab.table])

    @guarded
    def raw_prompt(current):
        return gr.Textbox(value=raw_text(load_agent(api, current).context()), visible=True)

    tab.show_raw.click(raw_prompt, [agent_id], [tab.raw])
