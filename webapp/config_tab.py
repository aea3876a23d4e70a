"""The Config tab: provider, model, endpoint, keys (write-only), embedder, defaults; test connection."""

from __future__ import annotations

import dataclasses
import html

import gradio as gr

from engine import secrets
from engine.api import MemGPT
from engine.config import MAX_DIM, MAX_WINDOW, EmbeddingConfig, LLMConfig
from engine.errors import MemGPTError
from engine.llm.probe import ENVIRONMENT_URL, ProbeResult, environment_base_url
from webapp.chat_tab import EMBEDDERS, PROVIDERS
from webapp.common import guarded, unchanged_skipped, whole_number
from webapp.exposure import Exposure

KEY_FOR = {kind: names[0] for kind, names in secrets.KEY_FOR_TYPE.items()}
NAME_LIMIT, URL_LIMIT = 300, 2000  # characters of a typed model name and base URL a test will send on


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
    probe: gr.HTML  # what Test connection found (server text in it, so escaped HTML rather than Markdown)
    models: gr.Dropdown  # the models the server lists, shown once a test found some


def wrapper_names() -> list[str]:
    try:
        from engine.llm.wrappers import wrapper_names as names

        return list(names())
    except ImportError:
        return []


def key_status() -> str:
    lines = [f"- `{name}`: {'set' if secrets.present(name) else 'not set'}" for name in secrets.KEY_NAMES]
    return "API keys (never shown):\n" + "\n".join(lines)


def environment_note(exposure: Exposure) -> str:
    """Where a blank Base URL goes when the operator set one in the environment ("" when none is set)."""
    url = environment_base_url()
    if not url:
        return ""
    if exposure.exposed:  # like the database's host: the operator's, not a stranger's to read
        return (f"A base URL is set in the server's environment (`{ENVIRONMENT_URL}`); the `openai` provider and "
                "embedder use it when their Base URL is blank. It is not shown on a public app.")
    return (f"Base URL from the environment: `{ENVIRONMENT_URL}` = `{url.replace('`', '')}`; the `openai` provider "
            "and embedder use it when their Base URL is blank.")


def build(api: MemGPT, exposure: Exposure | None = None) -> ConfigTab:
    exposure = exposure or Exposure(home=api.settings.home)
    s = api.settings
    library = api.library
    gr.Markdown("Settings for **new** agents and for connection tests; saved in the data home's config.yaml.")
    # The kind only: the page may be public, and a server's host and user are nobody else's business.
    where = "a PostgreSQL server" if api.runtime.store.dialect == "postgres" else "the SQLite file in the data home"
    gr.Markdown(f"Agents, messages and archival memory are stored in {where}.")
    with gr.Row():
        provider = gr.Dropdown(PROVIDERS, value=s.llm.endpoint_type, label="LLM provider")
        model = gr.Textbox(value=s.llm.model, label="Model")
        endpoint = gr.Textbox(value=s.llm.endpoint or "", label="Base URL (or GGUF path for local)")
    models = gr.Dropdown([], value=None, label="Models on the server (pick one to use it)", visible=False,
                         interactive=True, elem_id="config-models")
    gr.Markdown(environment_note(exposure), elem_id="config-environment")
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
        preset = gr.Dropdown(library.preset_names(), value=s.default_preset, label="Default preset",
                             info="On the embedded model, memgpt_chat means memgpt_small (its shorter prompt)")
        persona = gr.Dropdown(library.names("personas"), value=s.default_persona, label="Default persona")
        human = gr.Dropdown(library.names("humans"), value=s.default_human, label="Default human")
    with gr.Row():
        save = gr.Button("Save settings", variant="primary")
        test = gr.Button("Test connection")
    result = gr.Markdown()
    probe = gr.HTML(elem_id="config-probe")
    return ConfigTab(provider, model, endpoint, context_window, wrapper, grammar, api_key, key_state, embedder, embed_model,
                     embed_dim, embed_endpoint, preset, persona, human, save, test, result, probe, models)


def _llm(provider, model, endpoint, window, wrapper, grammar=False) -> LLMConfig:
    return LLMConfig(endpoint_type=provider, model=(model or "").strip(), endpoint=(endpoint or "").strip() or None,
                     context_window=whole_number(window, "The context window", high=MAX_WINDOW) if window else None,
                     wrapper=wrapper or None, grammar=bool(grammar))


def _key_url(kind: str, endpoint: str | None) -> str | None:
    """The URL a key typed for this endpoint would be sent to (blank OpenAI means its default)."""
    from engine.llm.client import openai_base_url

    endpoint = (endpoint or "").strip() or None
    return openai_base_url(endpoint) if kind == "openai" else endpoint


def key_replacement_refused(home, name: str, exposed: bool) -> str | None:
    """Why a typed key may not be saved, or None. On a public app every visitor can type one, and
    a key saved over the operator's would be gone for good (and every agent using it with it);
    so there a key is saved only where none is yet, and replaced at the server's console."""
    if exposed and name in secrets.load(home):
        return (f"A key for {name} is already saved on this server; on a public app it is replaced only at the "
                "server (`python app.py configure`).")
    return None


def _save_key(home, name: str, key: str, urls: list[str | None]) -> str:
    """Save a typed key bound to `urls`; the note to show with the result."""
    try:
        active = secrets.save(home, name, key, urls)
    except ValueError as e:
        raise gr.Error(str(e)) from e
    if not active:
        return f" `{name}` was saved, but the one set in the server's environment stays in effect."
    return f" `{name}` saved for {', '.join(u for u in urls if u)}."


def current_values(api: MemGPT, built: list | None = None) -> list:
    """The saved settings, for each page load (values baked in at build time would go stale).

    With `built` (what this returned when the page was built), what has not changed
    since is skipped, so a page load leaves alone what was typed before it.
    """
    s = api.settings
    now = [s.llm.endpoint_type, s.llm.model, s.llm.endpoint or "", s.llm.context_window, s.llm.wrapper,
           bool(s.llm.grammar), "",
           key_status(), s.embedding.endpoint_type, s.embedding.model, s.embedding.dim, s.embedding.endpoint or "",
           s.default_preset, s.default_persona, s.default_human]
    return now if built is None else unchanged_skipped(built, now, now)


def value_components(tab: ConfigTab) -> list:
    return [tab.provider, tab.model, tab.endpoint, tab.context_window, tab.wrapper, tab.grammar, tab.api_key,
            tab.key_state,
            tab.embedder, tab.embed_model, tab.embed_dim, tab.embed_endpoint, tab.preset, tab.persona, tab.human]


def save_config(api: MemGPT, provider, model, endpoint, window, wrapper, grammar, key, embedder, embed_model,
                embed_dim, embed_endpoint, preset, persona, human, *, exposed: bool = False):
    """The Save button: settings to config.yaml, a typed key to secrets.yaml bound to the URLs typed with it."""
    s = api.settings
    typed = (key or "").strip() if provider in KEY_FOR else ""
    refused = key_replacement_refused(s.home, KEY_FOR[provider], exposed) if typed else None
    if refused:
        raise gr.Error(refused + " Nothing was saved.")
    if not (model or "").strip():
        raise gr.Error("Give a model name.")
    dim = whole_number(embed_dim, "The embedding dimension", high=MAX_DIM)
    llm = _llm(provider, model, endpoint, window, wrapper, grammar)
    embedding = EmbeddingConfig(endpoint_type=embedder, model=(embed_model or "").strip(), dim=dim,
                                endpoint=(embed_endpoint or "").strip() or None)
    try:
        # On a public app the engine refuses endpoints into this server's network; then nothing is saved.
        api.save_defaults(llm=llm, embedding=embedding, preset=preset, persona=persona, human=human)
    except MemGPTError as e:
        raise gr.Error(str(e)) from e
    note = ""
    if typed:
        urls = [_key_url(provider, s.llm.endpoint)]
        if KEY_FOR.get(embedder) == KEY_FOR[provider]:  # the embedder reads the same key: it was typed for both
            urls.append(_key_url(embedder, s.embedding.endpoint))
        note = _save_key(s.home, KEY_FOR[provider], typed, urls)
    return "", key_status(), "Settings saved." + note


@dataclasses.dataclass(frozen=True)
class ProbeOutcome:
    """What the Test button shows: the findings, a note on a saved key, and what the form could take from them."""

    html: str
    note: str
    models: tuple[str, ...]
    dimension: int | None  # the probed embedding dimension when it differs from the typed one

    @property
    def text(self) -> str:
        import re

        return html.unescape(re.sub(r"<[^>]+>", " ", self.html))


def _line(title: str, result: ProbeResult, exposed: bool) -> str:
    summary = result.summary
    if exposed and result.from_environment and result.url:
        summary = summary.replace(result.url, f"the base URL from the server's environment ({ENVIRONMENT_URL})")
    elif result.from_environment and result.url:
        summary += f" (The base URL is {ENVIRONMENT_URL}, from the environment.)"
    mark = "✅" if result.ok else "❌"
    head = "" if result.ok else ("Connection failed: " if title == "Model" else "Embedder failed: ")
    return f"<p>{mark} <strong>{title}</strong>: {html.escape(head + summary)}</p>"


def test_connection(api: MemGPT, provider, model, endpoint, window, wrapper, grammar, key, embedder=None,
                    embed_model=None, embed_dim=None, embed_endpoint=None, *rest, exposed: bool = False) -> ProbeOutcome:
    """The Test button: the typed model and embedder, tried with the typed key if any (sent to the typed URL only)."""
    typed = (key or "").strip() or None
    for value, limit, what in ((model, NAME_LIMIT, "model name"), (endpoint, URL_LIMIT, "base URL"),
                               (embed_model, NAME_LIMIT, "embedding model name"),
                               (embed_endpoint, URL_LIMIT, "embedding base URL")):
        if len(str(value or "")) > limit:
            raise gr.Error(f"The {what} is longer than {limit} characters.")
    if provider not in PROVIDERS or (embedder is not None and embedder not in EMBEDDERS):
        raise gr.Error("Pick a provider and an embedder from the lists.")
    config = _llm(provider, model, endpoint, window, wrapper, grammar)
    if embedder is None:
        embedding = api.settings.embedding
    else:
        try:
            dim = min(MAX_DIM, max(0, int(embed_dim or 0)))
        except (TypeError, ValueError, OverflowError):
            dim = 0  # the test then says which dimension the embedder gives
        embedding = EmbeddingConfig(endpoint_type=embedder, model=(embed_model or "").strip(), dim=dim,
                                    endpoint=None if embedder == "local" else (embed_endpoint or "").strip() or None)
    report = api.test_connection(config, embedding, api_key=typed, allow_private=not exposed)
    note = ""
    if report.llm.ok and typed and provider in KEY_FOR:
        # A typed key is saved only once it has worked, and only for the URL it worked at.
        refused = key_replacement_refused(api.settings.home, KEY_FOR[provider], exposed)
        note = (" The key worked but was not saved: " + refused) if refused else _save_key(
            api.settings.home, KEY_FOR[provider], typed, [_key_url(provider, config.endpoint)])
    found = report.embedder.dimension
    return ProbeOutcome(_line("Model", report.llm, exposed) + _line("Embedder", report.embedder, exposed), note,
                       report.llm.models, found if found and found != embedding.dim else None)


def wire(api: MemGPT, tab: ConfigTab, exposure: Exposure | None = None):
    """The tab's events; returns Save's, for the views that follow the saved settings to chain on."""
    exposed = bool(exposure and exposure.exposed)
    inputs = [tab.provider, tab.model, tab.endpoint, tab.context_window, tab.wrapper, tab.grammar, tab.api_key,
              tab.embedder,
              tab.embed_model, tab.embed_dim, tab.embed_endpoint, tab.preset, tab.persona, tab.human]

    @guarded
    def on_save(*values):
        return save_config(api, *values, exposed=exposed)

    @guarded
    def on_test(*values):
        outcome = test_connection(api, *values, exposed=exposed)
        models = gr.update(choices=list(outcome.models), value=None, visible=bool(outcome.models))
        dim = outcome.dimension if outcome.dimension is not None else gr.skip()
        return "", key_status(), outcome.note.strip(), outcome.html, models, dim

    saved = tab.save.click(on_save, inputs, [tab.api_key, tab.key_state, tab.result])
    tab.test.click(on_test, inputs, [tab.api_key, tab.key_state, tab.result, tab.probe, tab.models, tab.embed_dim])
    # A pick from the server's list becomes the model; typing a name stays possible.
    tab.models.input(lambda name: name or gr.skip(), [tab.models], [tab.model], queue=False)
    return saved
