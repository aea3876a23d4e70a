"""Building the Gradio Blocks app over a Runtime."""

from __future__ import annotations

import gradio as gr

from engine.runtime import Runtime
from webapp import agents_tab

TITLE = "MemGPT"


def build_demo(runtime: Runtime) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nAn agent with self-editing memory, on your own machine.")
        with gr.Tab("Agents"):
            tab = agents_tab.build(runtime)
        agents_tab.wire(runtime, tab)
    return demo
