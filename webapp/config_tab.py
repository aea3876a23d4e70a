"""The Config tab: provider, model, endpoint, keys (write-only), embedder, defaults; test connection."""

from __future__ import annotations

import dataclasses

import gradio as gr

from engine import secrets
from engine.config import EmbeddingConfig, LLMConfig, save_settings
from engine.errors import MemGPTError
from engine.runtime import Runtime
from webapp.chat_tab import EMBEDDERS, PROVIDERS

KEY_FOR = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY",
           "openai-compatible": "OPENAI_COMPATIBLE_API_KEY", "completions": "OPENAI_COMPATIBLE_API_KEY"}


@dataclasses.dataclass
class ConfigTab:
    provider: gr.Dropdown
    model: gr.Textbox
    endpoint: gr.Textbox
    context_window: gr.Number
    wrapper: gr.Dropdown
    grammar: gr.Checkbox
    api_key: gr.Textbox
    key_state: gr.Markdown
    embedder: gr.Dropdown
    embed_model: gr.Textbox
    embed_dim: gr.Number
    embed_endpoint: gr.Textbox
    preset: gr.Dropdown
    persona: gr.Dropdown
    human: gr.Dropdown
    save: gr.Button
    test: gr.Button
    result: gr.Markdown


def wrapper_names() -> list[str]:
    try:
        from engine.llm.wrappers import wrapper_names as names

        return list(names())
    except ImportError:
        return []


def key_status() -> str:
    lines = [f"- `{name}`: {'set' if secrets.present(name) else 'not set'}" for name in secrets.KEY_NAMES]
    return "API keys (never shown):\n" + "\n".join(lines)


def build(runtime: Runtime) -> ConfigTab:
    s = runtime.settings
    library = runtime.library
    gr.Markdown("Settings for **new** agents and for connection tests; saved in the data home's config.yaml.")
    with gr.Row():
        provider = gr.Dropdown(PROVIDERS, value=s.llm.endpoint_type, label="LLM provider")
        model = gr.Textbox(value=s.llm.model, label="Model")
        endpoint = gr.Textbox(value=s.llm.endpoint or "", label="Base URL (or GGUF path for local)")
    with gr.Row():
        context_window = gr.Number(value=s.llm.context_window, precision=0, label="Context window (blank: known default)")
        wrapper = gr.Dropdown(wrapper_names(), value=s.llm.wrapper, label="Prompt wrapper (completions servers)",
                              allow_custom_value=True)
        grammar = gr.Checkbox(value=bool(s.llm.grammar), label="Constrain replies with a grammar (llama.cpp servers)")
    with gr.Row():
        api_key = gr.Textbox(label="API key for this provider (write-only; empty keeps the current one)",
                             type="password", value="")
        key_state = gr.Markdown(key_status())
    with gr.Row():
        embedder = gr.Dropdown(EMBEDDERS, value=s.embedding.endpoint_type, label="Embedder")
        embed_model = gr.Textbox(value=s.embedding.model, label="Embedding model")
        embed_dim = gr.Number(value=s.embedding.dim, precision=0, label="Dimension")
        embed_endpoint = gr.Textbox(value=s.embedding.endpoint or "", label="Embedding base URL")
    with gr.Row():
        preset = gr.Dropdown(library.preset_names(), value=s.default_preset, label="Default preset")
        persona = gr.Dropdown(library.names("personas"), value=s.default_persona, label="Default persona")
        human = gr.Dropdown(library.names("humans"), value=s.default_human, label="Default human")
    with gr.Row():
        save = gr.Button("Save settings", variant="primary")
        test = gr.Button("Test connection")
    result = gr.Markdown()
    return ConfigTab(provider, model, endpoint, context_window, wrapper, grammar, api_key, key_state, embedder, embed_model,
                     embed_dim, embed_endpoint, preset, persona, human, save, test, result)


def _llm(provider, model, endpoint, window, wrapper, grammar=False) -> LLMConfig:
    return LLMConfig(endpoint_type=provider, model=(model or "").strip(), endpoint=(endpoint or "").strip() or None,
                     context_window=int(window) if window else None, wrapper=wrapper or None, grammar=bool(grammar))


def current_values(runtime: Runtime) -> list:
    """The saved settings, for each page load (values baked in at build time would go stale)."""
    s = runtime.settings
    return [s.llm.endpoint_type, s.llm.model, s.llm.endpoint or "", s.llm.context_window, s.llm.wrapper,
            bool(s.llm.grammar), "",
            key_status(), s.embedding.endpoint_type, s.embedding.model, s.embedding.dim, s.embedding.endpoint or "",
            s.default_preset, s.default_persona, s.default_human]


def value_components(tab: ConfigTab) -> list:
    return [tab.provider, tab.model, tab.endpoint, tab.context_window, tab.wrapper, tab.grammar, tab.api_key,
            tab.key_state,
            tab.embedder, tab.embed_model, tab.embed_dim, tab.embed_endpoint, tab.preset, tab.persona, tab.human]


def wire(runtime: Runtime, tab: ConfigTab) -> None:
    inputs = [tab.provider, tab.model, tab.endpoint, tab.context_window, tab.wrapper, tab.grammar, tab.api_key,
              tab.embedder,
              tab.embed_model, tab.embed_dim, tab.embed_endpoint, tab.preset, tab.persona, tab.human]

    def on_save(provider, model, endpoint, window, wrapper, grammar, key, embedder, embed_model, embed_dim, embed_endpoint,
                preset, persona, human):
        s = runtime.settings
        if not (model or "").strip():
            raise gr.Error("Give a model name.")
        if not embed_dim or int(embed_dim) <= 0:
            raise gr.Error("The embedding dimension must be a positive number.")
        s.llm = _llm(provider, model, endpoint, window, wrapper, grammar)
        s.embedding = EmbeddingConfig(endpoint_type=embedder, model=(embed_model or "").strip(), dim=int(embed_dim),
                                      endpoint=(embed_endpoint or "").strip() or None)
        s.default_preset, s.default_persona, s.default_human = preset, persona, human
        save_settings(s)
        if key and key.strip() and provider in KEY_FOR:
            secrets.save(s.home, KEY_FOR[provider], key.strip())
        return "", key_status(), "Settings saved."

    tab.save.click(on_save, inputs, [tab.api_key, tab.key_state, tab.result])

    def on_test(provider, model, endpoint, window, wrapper, grammar, key, *rest):
        from engine.llm.providers import make_provider

        if key and key.strip() and provider in KEY_FOR:
            secrets.save(runtime.settings.home, KEY_FOR[provider], key.strip())
        try:
            llm = make_provider(_llm(provider, model, endpoint, window, wrapper, grammar), timeout=15)
            reply = llm.complete([{"role": "user", "content": "Reply with the word: ready"}], [])
        except MemGPTError as e:
            return "", key_status(), f"❌ **Connection failed:** {e}"
        except Exception as e:  # anything else is still a failed test, reported exactly
            return "", key_status(), f"❌ **Connection failed:** {type(e).__name__}: {e}"
        text = (reply.content or "").strip()[:200]
        return "", key_status(), f"✅ **Connected** to {reply.model or llm.model}. It said: {text or '(nothing)'}"

    tab.test.click(on_test, inputs, [tab.api_key, tab.key_state, tab.result])
