"""The Recall tab: the agent's whole conversation history, paged, searchable, narrowed by dates.

Recall holds every message ever stored, also those summarized out of the context
window; the view marks which ones the model still sees. An empty search lists the
messages in order and opens on the newest page, as a conversation is read.
"""

from __future__ import annotations

import dataclasses

import gradio as gr

from engine import system
from engine.api import MemGPT, RecallResults
from engine.errors import MemGPTError
from webapp.common import guarded, need_agent
from webapp.newest import Newest

PAGE = 20
COLUMNS = ["id", "when (UTC)", "who", "message", "in the window"]
MODES = {"Words and meaning": "hybrid", "Exact words": "keyword"}
TEXT_SHOWN = 600  # characters of a message in the table; its id finds the rest in the Context tab


@dataclasses.dataclass
class RecallTab:
    query: gr.Textbox
    mode: gr.Radio
    start: gr.Textbox
    end: gr.Textbox
    search: gr.Button
    results: gr.Dataframe
    previous: gr.Button
    position: gr.Markdown
    following: gr.Button
    page: gr.State  # the page shown, counted from 0


def build(api: MemGPT) -> RecallTab:
    gr.Markdown("Every message of the agent, also those summarized out of its context window. "
                "Leave the search empty to read them in order.")
    with gr.Row():
        query = gr.Textbox(label="Search the conversation history", placeholder="words or a question", scale=4)
        search = gr.Button("Search history", variant="primary", scale=1)
    with gr.Row():
        mode = gr.Radio(list(MODES), value="Words and meaning", label="Match")
        start = gr.Textbox(label="From (YYYY-MM-DD)", placeholder="any date")
        end = gr.Textbox(label="Until (YYYY-MM-DD)", placeholder="any date")
    results = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, label="Messages", elem_id="recall-results",
                           column_widths=["7%", "16%", "13%", "50%", "14%"], max_height=700)
    with gr.Row():
        previous = gr.Button("◀ Earlier", scale=0)
        position = gr.Markdown(elem_id="recall-position")
        following = gr.Button("Later ▶", scale=0)
    page = gr.State(0)
    return RecallTab(query, mode, start, end, search, results, previous, position, following, page)


def speaker(role: str, name: str | None) -> str:
    if role == "user":
        return "you" if name in (None, "user_message") else f"system ({name})"
    return {"assistant": "agent", "tool": "function result"}.get(role, role)


def shown_text(message) -> str:
    if message.role == "user" and message.name in (None, "user_message"):
        payload = system.unpack(message.content) or {}
        text = str(payload.get("message") or message.text or "")
    else:
        text = message.text or message.content or ""
    return text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN] + " …"


def rows(found: RecallResults) -> list[list]:
    return [[m.id, m.created_at[:19].replace("T", " "), speaker(m.role, m.name), shown_text(m),
             "yes" if m.in_context else "no (summarized out)"] for m in found.messages]


def position_text(found: RecallResults, narrowed: bool) -> str:
    if not found.total:
        return "No messages match." if narrowed else "No messages yet."
    what = ("match" if found.total == 1 else "matches") if narrowed else (
        "message" if found.total == 1 else "messages")
    return f"Page {found.page + 1} of {found.last + 1} · {found.total} {what}"


def find(api: MemGPT, current, query, mode, start, end, page: int | None):
    """(rows, position, page shown); page None means the newest page of a listing (the first of a search)."""
    agent = need_agent(current)
    query = query if isinstance(query, str) else ""
    chosen = MODES.get(mode, "hybrid")  # any other value from the request: the default
    try:
        found = api.find_recall(agent, query, page=0, k=PAGE, start=start, end=end, mode=chosen)
        wanted = found.last if page is None and not query.strip() else max(0, min(page or 0, found.last))
        if wanted != found.page:
            found = api.find_recall(agent, query, page=wanted, k=PAGE, start=start, end=end, mode=chosen)
    except MemGPTError as e:
        raise gr.Error(str(e)) from e
    except Exception as e:  # the embedder's own client errors: the search failed, said as it is
        raise gr.Error(f"The search failed: {type(e).__name__}: {e}") from e
    narrowed = bool(query.strip() or (start or "").strip() or (end or "").strip())
    return rows(found), position_text(found, narrowed), found.page


def wire(api: MemGPT, tab: RecallTab, agent_id: gr.State, page: gr.Tab, table: Newest) -> None:
    """`page` is the tab itself: opening it shows what was said since it was last drawn. `table`: the
    turns of the results' writers (a search, a page step, an agent's first page)."""
    inputs = [agent_id, tab.query, tab.mode, tab.start, tab.end]
    outputs = [tab.results, tab.position, tab.page]

    @guarded
    def on_search(current, query, mode, start, end, request: gr.Request):
        turn = table.start(request)
        if current is None:
            return [], "Pick an agent in the Chat tab to read its history.", 0
        found = find(api, current, query, mode, start, end, None)
        return found if table.still_newest(request, turn) else gr.skip()

    tab.search.click(on_search, inputs, outputs)
    tab.query.submit(on_search, inputs, outputs)
    page.select(on_search, inputs, outputs)

    def step(delta):
        @guarded
        def run(current, query, mode, start, end, page, request: gr.Request):
            turn = table.start(request)
            found = find(api, current, query, mode, start, end, max(0, int(page or 0) + delta))
            return found if table.still_newest(request, turn) else gr.skip()

        return run

    tab.previous.click(step(-1), [*inputs, tab.page], outputs)
    tab.following.click(step(+1), [*inputs, tab.page], outputs)

    @guarded
    def on_agent(current, request: gr.Request):
        turn = table.start(request)
        if current is None:
            return [], "", 0
        found = find(api, current, "", "Words and meaning", "", "", None)
        return found if table.still_newest(request, turn) else gr.skip()

    agent_id.change(on_agent, [agent_id], outputs)
