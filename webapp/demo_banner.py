"""The banner over the tabs while the default model is the embedded 135M one: what it is, and one click to Config.

The offline default exists so the app runs with no key and no server; a
first-time user who meets only it would judge the whole app by a 135M model.
The banner says so plainly and goes once a real model is saved in Config. It
follows the saved defaults (for new agents), re-read on every page load since
another browser may have changed them.
"""

from __future__ import annotations

import dataclasses

import gradio as gr

from engine.api import MemGPT
from engine.config import LOCAL_CHAT_MODEL, LLMConfig

CONFIG_TAB = "config"  # the Config tab's id in webapp/app.py
TEXT = (f"**Demo model.** New agents run on the embedded {LOCAL_CHAT_MODEL} (135M parameters, on this machine, "
        "no key needed): a demo of the machinery (memory, tools, the agent loop), not a capable assistant. "
        "For real conversations, configure a model in Config: OpenAI, or an OpenAI-compatible server such as "
        "Ollama or llama.cpp.")


@dataclasses.dataclass
class Banner:
    row: gr.Row
    open_config: gr.Button


def is_demo_model(llm: LLMConfig) -> bool:
    """The shipped SmolLM2 file; another GGUF path (the local endpoint) may be any model, so no banner then."""
    return llm.endpoint_type == "local" and not (llm.endpoint or "").strip()


def build(api: MemGPT) -> Banner:
    with gr.Row(visible=is_demo_model(api.settings.llm), elem_id="demo-banner", variant="panel") as row:
        gr.Markdown(TEXT)
        open_config = gr.Button("Open Config", variant="secondary", scale=0, min_width=140)
    return Banner(row, open_config)


def visibility(api: MemGPT):
    return gr.Row(visible=is_demo_model(api.settings.llm))


def wire(api: MemGPT, banner: Banner, demo: gr.Blocks, tabs: gr.Tabs, saved) -> None:
    """`saved` is the Config tab's Save event: the banner follows once the settings are written."""
    banner.open_config.click(lambda: gr.Tabs(selected=CONFIG_TAB), None, tabs, queue=False)
    demo.load(lambda: visibility(api), None, banner.row, show_progress="hidden")
    # Refused or not, the settings say what is in effect now.
    saved.then(lambda: visibility(api), None, banner.row, show_progress="hidden")
