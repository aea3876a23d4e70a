"""The Archival tab: hybrid search, insert and delete passages, load files, attach sources."""

from __future__ import annotations

import dataclasses
import html
import re

import gradio as gr

from engine.api import MemGPT
from engine.errors import MemGPTError
from webapp.common import guarded, need_agent, refusal_text, row
from webapp.exposure import Exposure, Refused
from webapp.newest import Newest

RESULT_COLUMNS = ["rank", "match", "id", "source", "text"]
SOURCE_COLUMNS = ["source", "passages", "embedder", "attached"]
UPLOAD_TYPES = [".txt", ".md", ".pdf", ".csv", ".json", ".html", ".htm"]
SHOWN = 20  # results in the table, in one search (the engine takes up to 100)
# Characters one Insert takes (about 130 passages). It costs the operator's embedder and, while its
# passages are written, holds the agent; a pasted book belongs in Load data, as a source, instead.
INSERT_LIMIT = 100_000
# A hit's fused score as a share of the best one's: the engine's scores mean nothing on their own (each
# list is normalized per search), so the table says how close to the top a passage came, in words.
HIGH, MEDIUM = 0.66, 0.33


@dataclasses.dataclass
class ArchivalTab:
    query: gr.Textbox
    search: gr.Button
    results: gr.Dataframe
    new_text: gr.Textbox
    insert: gr.Button
    delete_id: gr.Textbox
    delete: gr.Button
    confirm_box: gr.Column  # the delete's confirmation, naming the passage
    confirm_text: gr.Markdown
    confirm: gr.Button
    cancel: gr.Button
    pending: gr.State  # the passage id the confirmation was shown for
    files: gr.File
    directory: gr.Textbox
    source_name: gr.Textbox
    load: gr.Button
    load_report: gr.Markdown
    sources: gr.Dataframe
    source_pick: gr.Dropdown
    attach: gr.Button
    detach: gr.Button
    status: gr.Markdown  # under the results: what a search, listing, insert or delete did
    source_status: gr.Markdown  # under the sources: what an attach or detach did


def build(api: MemGPT, exposure: Exposure) -> ArchivalTab:
    with gr.Row():
        query = gr.Textbox(label="Search archival memory", placeholder="words or a question", scale=4)
        search = gr.Button("Search", variant="primary", scale=1)
    results = gr.Dataframe(headers=RESULT_COLUMNS, interactive=False, wrap=True, label="Results (hybrid: vectors + keywords)",
                           elem_id="archival-results")
    status = gr.Markdown(elem_id="archival-status")  # right under the table it counts
    with gr.Row():
        new_text = gr.Textbox(label="New passage", lines=3, scale=4)
        insert = gr.Button("Insert", scale=1)
    with gr.Row():
        # A text field: Gradio's number field shows 0 when empty, an id that looks picked but is not.
        delete_id = gr.Textbox(label="Passage id", placeholder="click a row above, or type an id", max_lines=1)
        delete = gr.Button("Delete passage", variant="stop")
    with gr.Column(visible=False, elem_id="passage-confirm") as confirm_box:
        confirm_text = gr.Markdown()
        with gr.Row():
            confirm = gr.Button("Confirm delete", variant="stop")
            cancel = gr.Button("Keep it")
    pending = gr.State(None)
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
    source_status = gr.Markdown()
    return ArchivalTab(query, search, results, new_text, insert, delete_id, delete, confirm_box, confirm_text,
                       confirm, cancel, pending, files, directory, source_name,
                       load, load_report, sources, source_pick, attach, detach, status, source_status)


def source_rows(api: MemGPT, current: int | None):
    attached = {s.id for s in api.attached_sources(current)} if current is not None else set()
    rows = [
        [s.name, s.passages, f"{s.embedding_model} ({s.embedding_dim}-d)", "yes" if s.id in attached else ""]
        for s in api.list_sources()
    ]
    return rows, gr.Dropdown(choices=[r[0] for r in rows])


def wire(api: MemGPT, tab: ArchivalTab, agent_id: gr.State, exposure: Exposure, table: Newest) -> None:
    """`table`: the turns of the results table's writers (a search, an agent's listing)."""
    def results(query, current):
        """The table and its status line for `query` (an empty one lists the passages as stored)."""
        if current is None:
            return [], ""
        try:
            found = api.search_archival(current, query or "", k=SHOWN)
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        best = max((h.score for h in found.hits), default=0.0) if (query or "").strip() else 0.0
        rows = [[i, match(h, best), h.passage.id, h.passage.source_name or "(agent)", h.passage.text]
                for i, h in enumerate(found.hits, 1)]
        shown = f"the first {len(rows)} shown" if found.total > len(rows) else "all shown"
        # Worded apart, so a listing (a newly picked agent) is never mistaken for a search's answer.
        if not (query or "").strip():
            return rows, f"{_count(found.total, 'passage')} stored ({shown})." if found.total else "No passages stored yet."
        return rows, f"{_count(found.total, 'result')} in all ({shown})." if found.total else "No passages found."

    @guarded
    def on_search(query, current, request: gr.Request):
        turn = table.start(request)
        need_agent(current)
        found = results(query, current)
        return found if table.still_newest(request, turn) else gr.skip()

    tab.search.click(on_search, [tab.query, agent_id], [tab.results, tab.status])
    tab.query.submit(on_search, [tab.query, agent_id], [tab.results, tab.status])
    def on_agent(query, current, request: gr.Request):
        # Another agent's passages must not stay on screen under this one's name. An agent whose
        # embedder cannot be used says so here, not in a toast at every pick.
        turn = table.start(request)
        try:
            found = results(query, current)
        except gr.Error as e:
            found = [], refusal_text(e)
        return found if table.still_newest(request, turn) else gr.skip()

    agent_id.change(on_agent, [tab.query, agent_id], [tab.results, tab.status])

    def on_pick_row(evt: gr.SelectData):
        row = evt.row_value if hasattr(evt, "row_value") else None
        return str(int(row[2])) if row else gr.skip()

    tab.results.select(on_pick_row, None, [tab.delete_id])

    @guarded
    def on_insert(text, current):
        if not text or not text.strip():
            raise gr.Error("Write the passage first.")
        if len(text) > INSERT_LIMIT:
            raise gr.Error(f"That is {len(text):,} characters; one insert takes up to {INSERT_LIMIT:,}. "
                           "Load longer texts as a file under Load data.")
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
        typed = str(passage_id or "").strip()
        if not typed:
            raise gr.Error("Give the id of the passage to delete (or click its row).")
        if not typed.isascii() or not typed.isdigit() or len(typed) > 18:
            raise gr.Error(f"A passage id is a whole number, as in the table's id column, not {typed[:40]!r}.")
        # From the store, not the table the browser sent: what is deleted, and whose it is.
        passage = api.get_passage(need_agent(current), int(typed))
        return gr.Column(visible=True), confirmation(api, passage), {"id": passage.id,
                                                                      "source": passage.source_id is not None}

    tab.delete.click(on_delete, [tab.delete_id, agent_id], [tab.confirm_box, tab.confirm_text, tab.pending])

    @guarded
    def on_confirm(pending, query, current, request: gr.Request):
        if not pending:
            return gr.Column(visible=False), gr.skip(), gr.skip(), None, gr.skip(), gr.skip(), gr.skip()
        turn = table.start(request)
        passage = int(pending["id"])
        try:
            api.delete_archival(need_agent(current), passage, from_source=bool(pending["source"]))
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        rows, status = results(query, current)
        sources, pick = source_rows(api, current)  # a source passage changes the source's count
        if not table.still_newest(request, turn):  # a newer search or listing owns the table now
            gr.Info(f"Deleted passage {passage}.")
            return gr.Column(visible=False), gr.skip(), gr.skip(), None, sources, pick, ""
        # The id field empties: the passage it named is gone.
        return gr.Column(visible=False), rows, f"Deleted passage {passage}. {status}", None, sources, pick, ""

    tab.confirm.click(on_confirm, [tab.pending, tab.query, agent_id],
                      [tab.confirm_box, tab.results, tab.status, tab.pending, tab.sources, tab.source_pick,
                       tab.delete_id])
    tab.cancel.click(lambda: (gr.Column(visible=False), None), None, [tab.confirm_box, tab.pending])

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
            return rows, f"{'Attached' if attach else 'Detached'} {_plain(name)}."  # older names went unchecked

        return run

    tab.attach.click(attach_or_detach(True), [tab.source_pick, agent_id], [tab.sources, tab.source_status])
    tab.detach.click(attach_or_detach(False), [tab.source_pick, agent_id], [tab.sources, tab.source_status])
    agent_id.change(guarded(lambda c: source_rows(api, c)), [agent_id], [tab.sources, tab.source_pick])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def match(hit, best: float) -> str:
    """How well a hit matched, for a person: its score against the best one's, and what it matched by."""
    if best <= 0:
        return ""  # a listing, not a search
    share = hit.score / best
    level = "High" if share >= HIGH else "Medium" if share >= MEDIUM else "Low"
    if hit.keyword_rank is not None and hit.vector_rank is not None:
        how = "words and meaning"
    elif hit.keyword_rank is not None:
        how = "words"
    elif hit.vector_rank is not None:
        how = "meaning"
    else:
        how = "stored next to a match"
    return f"{level} ({how})"


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def _plain(text: str) -> str:
    """Text shown as itself in Markdown: no HTML, no emphasis or links (a source name is anyone's)."""
    return _MARKDOWN.sub(r"\\\1", html.escape(" ".join(text.split()), quote=False))


def confirmation(api: MemGPT, passage) -> str:
    """The question before a delete: the passage quoted, and who else loses it when it is a source's."""
    text = passage.text
    quoted = f"\n\n> {_plain(text[:300])}{' …' if len(text) > 300 else ''}"
    if passage.source_id is None:
        return (f"**Delete passage {passage.id}?** The agent will no longer find it; this cannot be undone."
                + quoted)
    source = next((s for s in api.list_sources() if s.id == passage.source_id), None)
    agents = ", ".join(source.agents) if source and source.agents else "no agent"
    name = _plain(passage.source_name or "")
    return (f"**Delete passage {passage.id} from the data source {name}?** It is removed from the source, "
            f"so every agent attached to it loses it, not just this one (attached: {agents}). "
            "This cannot be undone; loading the same file again brings it back." + quoted)
