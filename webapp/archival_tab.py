"""The Archival tab: hybrid search, insert and delete passages, load files, attach sources."""

from __future__ import annotations

import dataclasses

import gradio as gr

from engine.api import MemGPT
from engine.errors import MemGPTError
from webapp.common import guarded, need_agent, row
from webapp.exposure import Exposure, Refused

RESULT_COLUMNS = ["rank", "score", "id", "source", "text"]
SOURCE_COLUMNS = ["source", "passages", "embedder", "attached"]
UPLOAD_TYPES = [".txt", ".md", ".pdf", ".csv", ".json", ".html", ".htm"]


@dataclasses.dataclass
class ArchivalTab:
    query: gr.Textbox
    search: gr.Button
    results: gr.Dataframe
    new_text: gr.Textbox
    insert: gr.Button
    delete_id: gr.Number
    delete: gr.Button
    files: gr.File
    directory: gr.Textbox
    source_name: gr.Textbox
    load: gr.Button
    load_report: gr.Markdown
    sources: gr.Dataframe
    source_pick: gr.Dropdown
    attach: gr.Button
    detach: gr.Button
    status: gr.Markdown


def build(api: MemGPT, exposure: Exposure) -> ArchivalTab:
    with gr.Row():
        query = gr.Textbox(label="Search archival memory", placeholder="words or a question", scale=4)
        search = gr.Button("Search", variant="primary", scale=1)
    results = gr.Dataframe(headers=RESULT_COLUMNS, interactive=False, wrap=True, label="Results (hybrid: vectors + keywords)")
    with gr.Row():
        new_text = gr.Textbox(label="New passage", lines=3, scale=4)
        insert = gr.Button("Insert", scale=1)
    with gr.Row():
        delete_id = gr.Number(label="Passage id", precision=0)
        delete = gr.Button("Delete passage", variant="stop")
    gr.Markdown("### Load data")
    with gr.Row():
        files = gr.File(label="Files (txt, md, pdf, csv, json, html)", file_count="multiple", file_types=UPLOAD_TYPES)
        with gr.Column():
            # Not rendered at all unless the operator opened a folder to the page (see webapp/exposure.py).
            directory = gr.Textbox(label="…or a folder on this machine", visible=exposure.folders_offered,
                                   placeholder=str(exposure.import_roots[0]) if exposure.import_roots else "")
            if exposure.folder_note():
                gr.Markdown(exposure.folder_note())
            source_name = gr.Textbox(label="Data source name", placeholder="e.g. manuals")
            load = gr.Button("Load into the source", variant="primary")
    load_report = gr.Markdown()
    gr.Markdown("### Data sources")
    sources = gr.Dataframe(headers=SOURCE_COLUMNS, interactive=False, label="Sources")
    with gr.Row():
        source_pick = gr.Dropdown([], label="Source")
        attach = gr.Button("Attach to this agent")
        detach = gr.Button("Detach")
    status = gr.Markdown()
    return ArchivalTab(query, search, results, new_text, insert, delete_id, delete, files, directory, source_name,
                       load, load_report, sources, source_pick, attach, detach, status)


def source_rows(api: MemGPT, current: int | None):
    attached = {s.id for s in api.attached_sources(current)} if current is not None else set()
    rows = [
        [s.name, s.passages, f"{s.embedding_model} ({s.embedding_dim}-d)", "yes" if s.id in attached else ""]
        for s in api.list_sources()
    ]
    return rows, gr.Dropdown(choices=[r[0] for r in rows])


def wire(api: MemGPT, tab: ArchivalTab, agent_id: gr.State, exposure: Exposure) -> None:
    @guarded
    def on_search(query, current):
        agent = need_agent(current)
        try:
            found = api.search_archival(agent, query or "")
            hits = list(found.hits)
            for page in range(1, min(found.last, 3) + 1):  # show up to 20 results
                hits += api.search_archival(agent, query or "", page=page).hits
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        rows = [[i, round(h.score, 4), h.passage.id, h.passage.source_name or "(agent)", h.passage.text]
                for i, h in enumerate(hits, 1)]
        return rows, f"{found.total} results in all."

    tab.search.click(on_search, [tab.query, agent_id], [tab.results, tab.status])
    tab.query.submit(on_search, [tab.query, agent_id], [tab.results, tab.status])

    @guarded
    def on_insert(text, current):
        if not text or not text.strip():
            raise gr.Error("Write the passage first.")
        try:
            ids = api.insert_archival(need_agent(current), text)
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        except Exception as e:  # the embedder's own client errors: still a refused insert, said as they are
            raise gr.Error(f"The passage could not be embedded: {type(e).__name__}: {e}") from e
        return "", f"Inserted as passage{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}."

    tab.insert.click(on_insert, [tab.new_text, agent_id], [tab.new_text, tab.status])

    @guarded
    def on_delete(passage_id, current):
        if not passage_id:
            raise gr.Error("Give the id of the passage to delete.")
        try:
            api.delete_archival(need_agent(current), int(passage_id))
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        return f"Deleted passage {int(passage_id)}."

    tab.delete.click(on_delete, [tab.delete_id, agent_id], [tab.status])

    @guarded
    def on_load(files, directory, name, current, progress=gr.Progress()):
        from webapp.loading import load_into_source

        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        if not paths and not (directory or "").strip():
            raise gr.Error("Choose files to upload." if not exposure.folders_offered
                           else "Choose files or give a folder.")
        try:
            # Checked first, whatever the page showed: the handler is reachable without the page.
            uploads = [exposure.check_upload(p) for p in paths]
            folder = exposure.check_folder(directory) if (directory or "").strip() else None
        except Refused as e:
            raise gr.Error(str(e)) from e
        if not (name or "").strip():
            raise gr.Error("Name the data source.")
        agent = row(api, current)
        try:
            report = load_into_source(api, name.strip(), uploads, folder, agent.embedding, progress)
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        rows, pick = source_rows(api, current)
        return report, rows, pick

    tab.load.click(on_load, [tab.files, tab.directory, tab.source_name, agent_id],
                   [tab.load_report, tab.sources, tab.source_pick])

    def attach_or_detach(attach):
        @guarded
        def run(name, current):
            if not name:
                raise gr.Error("Pick a source.")
            try:
                (api.attach if attach else api.detach)(need_agent(current), name)
            except MemGPTError as e:
                raise gr.Error(str(e)) from e
            rows, _ = source_rows(api, current)
            return rows, f"{'Attached' if attach else 'Detached'} {name}."

        return run

    tab.attach.click(attach_or_detach(True), [tab.source_pick, agent_id], [tab.sources, tab.status])
    tab.detach.click(attach_or_detach(False), [tab.source_pick, agent_id], [tab.sources, tab.status])
    agent_id.change(guarded(lambda c: source_rows(api, c)), [agent_id], [tab.sources, tab.source_pick])
