"""The Agent tab: this agent's model and embedder, rename, duplicate, export, import, delete.

Every field is a stranger's input once the app is public. No handler reads or
writes a path the request names: an import reads only a file Gradio received as
an upload, an export is written to a temporary folder this module creates, and
a local model's GGUF path (the server would open it) can be kept but not typed.
Keys are never shown here; they stay with the Config tab, write-only.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from engine.api import AgentInfo, MemGPT
from engine.config import MAX_DIM, EmbeddingConfig, LLMConfig
from engine.errors import MemGPTError
from webapp.chat_tab import EMBEDDERS, PROVIDERS, agent_names
from webapp.common import describe_models, guarded, need_agent, row, whole_number
from webapp.exposure import Exposure, Refused

# An agent file a visitor may import: parsing takes ~25x its size in memory and the import holds
# the database's write lock throughout, so the engine's 512 MB (for the operator's own files) is
# not for strangers. 64 MB is ~200,000 messages.
IMPORT_MAX_BYTES = 64 * 1024 * 1024
EXPORT_MAX_AGE = 3600.0  # seconds an export stays on the server for its download


@dataclasses.dataclass
class AgentTab:
    header: gr.Markdown
    provider: gr.Dropdown
    model: gr.Textbox
    endpoint: gr.Textbox
    embedder: gr.Dropdown
    embed_model: gr.Textbox
    embed_dim: gr.Number
    embed_endpoint: gr.Textbox
    save: gr.Button
    new_name: gr.Textbox
    rename: gr.Button
    copy_name: gr.Textbox
    duplicate: gr.Button
    export: gr.Button
    export_file: gr.File
    upload: gr.File
    import_button: gr.Button
    delete: gr.Button
    confirm_box: gr.Column
    confirm_text: gr.Markdown
    confirm: gr.Button
    cancel: gr.Button
    pending: gr.State  # the agent the confirmation names, so a pick in between cannot redirect it
    status: gr.Markdown


def build(api: MemGPT) -> AgentTab:
    header = gr.Markdown("Pick an agent in the Chat tab to change its settings.")
    gr.Markdown("### Model and embedder\nA new embedder re-embeds the agent's own passages first "
                "(sources embedded with another model are detached).")
    with gr.Row():
        provider = gr.Dropdown(PROVIDERS, label="Agent's model provider")
        model = gr.Textbox(label="Agent's model")
        endpoint = gr.Textbox(label="Agent's base URL")
    with gr.Row():
        embedder = gr.Dropdown(EMBEDDERS, label="Agent's embedder")
        embed_model = gr.Textbox(label="Agent's embedding model")
        embed_dim = gr.Number(precision=0, label="Agent's embedding dimension")
        embed_endpoint = gr.Textbox(label="Agent's embedding base URL")
    save = gr.Button("Save model settings", variant="primary")
    gr.Markdown("### Name and copies")
    with gr.Row():
        new_name = gr.Textbox(label="New name", scale=3)
        rename = gr.Button("Rename", scale=1)
    with gr.Row():
        copy_name = gr.Textbox(label="Name of the copy", placeholder="blank: the name with (2)", scale=3)
        duplicate = gr.Button("Duplicate", scale=1)
    gr.Markdown("### Export and import")
    with gr.Row():
        with gr.Column():
            export = gr.Button("Export this agent")
            export_file = gr.File(label="Exported agent (JSON)", interactive=False, elem_id="export-file")
        with gr.Column():
            upload = gr.File(label="Agent file to import (JSON)", file_types=[".json"], file_count="single",
                             elem_id="import-file")
            import_button = gr.Button("Import as a new agent")
    gr.Markdown("### Delete")
    delete = gr.Button("Delete this agent", variant="stop")
    with gr.Column(visible=False, elem_id="delete-confirm") as confirm_box:
        confirm_text = gr.Markdown()
        with gr.Row():
            confirm = gr.Button("Confirm delete", variant="stop")
            cancel = gr.Button("Keep it")
    pending = gr.State(None)
    status = gr.Markdown(elem_id="agent-status")
    return AgentTab(header, provider, model, endpoint, embedder, embed_model, embed_dim, embed_endpoint, save,
                    new_name, rename, copy_name, duplicate, export, export_file, upload, import_button, delete,
                    confirm_box, confirm_text, confirm, cancel, pending, status)


def shown_values(api: MemGPT, current: int | None) -> list:
    """The agent's settings for the fields (blank with no agent)."""
    if current is None:
        return ["Pick an agent in the Chat tab to change its settings.", None, "", "", None, "", None, "", ""]
    agent = row(api, current)
    llm, emb = agent.llm, agent.embedding
    return [heading(agent), llm.endpoint_type, llm.model, llm.endpoint or "", emb.endpoint_type, emb.model,
            emb.dim, emb.endpoint or "", agent.name]


def heading(agent: AgentInfo) -> str:
    # Not the Chat tab's header line: the page holds every tab at once, and a test (or a person
    # searching the page) finding one agent's models twice could not tell which tab said it.
    return f"Settings of the agent **{agent.name}** (created {agent.created_at[:10]})."


def value_components(tab: AgentTab) -> list:
    return [tab.header, tab.provider, tab.model, tab.endpoint, tab.embedder, tab.embed_model, tab.embed_dim,
            tab.embed_endpoint, tab.new_name]


def _text(value) -> str:
    return (value or "").strip()


def typed_configs(agent: AgentInfo, provider, model, endpoint, embedder, embed_model, embed_dim,
                  embed_endpoint) -> tuple[LLMConfig, EmbeddingConfig]:
    """The configs the form asks for; what the form does not show (window, wrapper, grammar) is kept."""
    if provider not in PROVIDERS or embedder not in EMBEDDERS:
        raise gr.Error("Pick a provider and an embedder from the lists.")
    if not _text(model) or not _text(embed_model):
        raise gr.Error("Give a model name and an embedding model name.")
    dim = whole_number(embed_dim, "The embedding dimension", high=MAX_DIM)
    llm_endpoint = _text(endpoint) or None
    if provider == "local" and llm_endpoint and not (agent.llm.endpoint_type == "local"
                                                     and llm_endpoint == agent.llm.endpoint):
        # For the embedded model the endpoint is a file the server opens: never one a browser names.
        raise gr.Error("A local model's file cannot be chosen from the page; leave the base URL blank for the "
                       "built-in model (the operator sets others with `memgpt configure`).")
    llm = dataclasses.replace(agent.llm, endpoint_type=provider, model=_text(model), endpoint=llm_endpoint)
    embedding = EmbeddingConfig(endpoint_type=embedder, model=_text(embed_model), dim=dim,
                                endpoint=None if embedder == "local" else (_text(embed_endpoint) or None))
    return llm, embedding


def safe_file_name(name: str) -> str:
    """A download name made from the agent's name (any characters) that is only ever a file name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "agent"
    return f"{stem[:60]}.memgpt.json"


class Exports:
    """The one temporary folder exports are written to; old ones are removed as new ones come."""

    def __init__(self) -> None:
        self._root: Path | None = None

    def new_path(self, agent_name: str) -> Path:
        if self._root is None or not self._root.is_dir():
            self._root = Path(tempfile.mkdtemp(prefix="memgpt-exports-"))
        cutoff = time.time() - EXPORT_MAX_AGE
        for old in self._root.iterdir():
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(dir=self._root))  # one per export: two downloads never share a file
        return folder / safe_file_name(agent_name)


def wire(api: MemGPT, tab: AgentTab, agent_id: gr.State, agent_list: gr.Dropdown, chat_header: gr.Markdown,
         exposure: Exposure) -> None:
    """`agent_list` and `chat_header` are the Chat tab's: renames, copies, imports, deletes and models show there."""
    exports = Exports()
    agent_id.change(guarded(lambda current: shown_values(api, current)), [agent_id], value_components(tab))

    @guarded
    def on_save(current, provider, model, endpoint, embedder, embed_model, embed_dim, embed_endpoint,
                progress=gr.Progress()):
        agent = row(api, current)
        llm, embedding = typed_configs(agent, provider, model, endpoint, embedder, embed_model, embed_dim,
                                       embed_endpoint)
        new_embedder = embedding != agent.embedding
        seen = [0]

        def on_progress(done: int, total: int | None, what: str) -> None:
            seen[0] = total or done
            progress((done, total) if total else None, desc=what)

        try:
            updated = api.update_agent(agent.id, llm=llm if llm != agent.llm else None,
                                       embedding=embedding if new_embedder else None, on_progress=on_progress)
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        except Exception as e:  # the embedder's own client errors: nothing was switched, said as they are
            raise gr.Error(f"The passages could not be re-embedded: {type(e).__name__}: {e}") from e
        done = f" Re-embedded {seen[0]} passage{'' if seen[0] == 1 else 's'}." if new_embedder else ""
        return heading(updated), describe_models(updated), f"Saved the model settings of {updated.name}.{done}"

    form = [tab.provider, tab.model, tab.endpoint, tab.embedder, tab.embed_model, tab.embed_dim, tab.embed_endpoint]
    tab.save.click(on_save, [agent_id, *form], [tab.header, chat_header, tab.status])

    @guarded
    def on_rename(current, new_name):
        agent = row(api, current)
        try:
            renamed = api.rename_agent(agent.id, _text(new_name))
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        gr.Info(f"Renamed {agent.name} to {renamed.name}.")
        return (gr.Dropdown(choices=agent_names(api), value=renamed.name), heading(renamed),
                f"Renamed to {renamed.name}.")

    tab.rename.click(on_rename, [agent_id, tab.new_name], [agent_list, tab.header, tab.status])

    @guarded
    def on_duplicate(current, copy_name):
        agent = row(api, current)
        wanted = _text(copy_name)
        with tempfile.TemporaryDirectory(prefix="memgpt-copy-") as folder:
            path = Path(folder) / "agent.json"
            try:
                api.export_agent(agent.id, path)
                made = api.import_agent(path).agent
                if wanted:
                    try:
                        made_name = api.rename_agent(made.id, wanted).name
                    except MemGPTError:
                        api.delete_agent(made.id)  # a copy under a name nobody asked for would be a surprise
                        raise
                else:
                    made_name = made.name
            except MemGPTError as e:
                raise gr.Error(str(e)) from e
        gr.Info(f"Copied {agent.name} as {made_name}.")
        return (gr.Dropdown(choices=agent_names(api)), "",
                f"Copied as **{made_name}** (memory, messages and passages); pick it in the Chat tab.")

    tab.duplicate.click(on_duplicate, [agent_id, tab.copy_name], [agent_list, tab.copy_name, tab.status])

    @guarded
    def on_export(current):
        agent = row(api, current)
        path = exports.new_path(agent.name)
        try:
            counts = api.export_agent(agent.id, path)
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        what = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        return str(path), f"Exported {agent.name} ({what})."

    tab.export.click(on_export, [agent_id], [tab.export_file, tab.status])

    @guarded
    def on_import(upload):
        if not upload:
            raise gr.Error("Choose an exported agent file first.")
        try:
            # Checked whatever the page sent: the handler is reachable without the page.
            path = exposure.check_upload(upload if isinstance(upload, str) else getattr(upload, "name", ""))
        except Refused as e:
            raise gr.Error(str(e)) from e
        try:
            result = api.import_agent(path, max_bytes=IMPORT_MAX_BYTES, shown=Path(path).name)
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        name = result.agent.name
        note = (f" Sources not found here: {', '.join(result.missing_sources)}." if result.missing_sources else "")
        gr.Info(f"Imported {name}.")
        return gr.Dropdown(choices=agent_names(api), value=name), None, f"Imported as **{name}**.{note}"

    tab.import_button.click(on_import, [tab.upload], [agent_list, tab.upload, tab.status])

    @guarded
    def on_delete(current):
        agent = row(api, need_agent(current))
        messages, passages = api.recall_count(agent.id), api.archival_count(agent.id)
        text = (f"**Delete {agent.name}** with its {messages} messages, its core memory and its own passages? "
                "This cannot be undone; export it first to keep a copy.")
        if passages:
            text += f" (It can search {passages} passages; those of attached sources stay in their sources.)"
        return gr.Column(visible=True), text, agent.id

    tab.delete.click(on_delete, [agent_id], [tab.confirm_box, tab.confirm_text, tab.pending])

    @guarded
    def on_confirm(target, current):
        if target is None:
            return gr.Column(visible=False), gr.skip(), gr.skip(), None
        name = row(api, target).name
        try:
            api.delete_agent(target)
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        gr.Info(f"Deleted {name}.")
        # Another agent picked since the question stays picked.
        picker = (gr.Dropdown(choices=agent_names(api), value=None) if target == current
                  else gr.Dropdown(choices=agent_names(api)))
        return gr.Column(visible=False), picker, f"Deleted {name}.", None

    tab.confirm.click(on_confirm, [tab.pending, agent_id], [tab.confirm_box, agent_list, tab.status, tab.pending])
    tab.cancel.click(lambda: (gr.Column(visible=False), None), None, [tab.confirm_box, tab.pending])
