"""The Memory tab: core memory blocks with live counters, edit history with revert, templates.

Blocks can be added, given another limit and removed (not persona or human: see
engine.memory.PROTECTED_BLOCKS). Each of those redraws the blocks; what the person
typed and did not save is carried across the redraw in `drafts`, so nothing is lost.
"""

from __future__ import annotations

import dataclasses
import difflib
import html

import gradio as gr

from engine.api import MemGPT
from engine.errors import EditConflict, MemGPTError, NotFound
from engine.memory import MAX_BLOCK_LIMIT, PROTECTED_BLOCKS
from webapp.common import as_whole, guarded, need_agent, whole_number

HISTORY_COLUMNS = ["edit", "when (UTC)", "block", "who", "cause", "chars before → after"]


@dataclasses.dataclass
class MemoryTab:
    # Bumped whenever the stored blocks may have changed (a turn, a revert, a template): each box
    # then follows its block, unless it holds a draft (see `sync` in build()).
    version: gr.State
    # Bumped when the set of blocks or a limit changes: the blocks are redrawn from the store,
    # each box with its draft (from `drafts`) if it had one.
    layout: gr.State
    # {agent id: {label: [draft text, the stored text it was written from]}}, kept as the person types.
    drafts: gr.State
    counts: gr.Markdown
    refresh: gr.Button
    history: gr.Dataframe
    edit_id: gr.Number
    diff: gr.HTML
    revert: gr.Button
    confirm_box: gr.Column  # the revert's confirmation: what it undoes, before it does it
    confirm_text: gr.Markdown
    confirm: gr.Button
    cancel: gr.Button
    pending: gr.State  # the edit number the confirmation was shown for
    template_kind: gr.Radio
    template: gr.Dropdown
    template_block: gr.Textbox
    apply_template: gr.Button
    new_label: gr.Textbox
    new_limit: gr.Number
    add_block: gr.Button


def counter(text: str, limit: int) -> str:
    used = len(text or "")
    if used > limit:
        return f"{used}/{limit} characters ❌ over the limit by {used - limit}: shorten it to save"
    return f"{used}/{limit} characters"


def fits(text: str, limit: int) -> bool:
    return len(text or "") <= limit


def save_button(text: str, limit: int) -> gr.Button:
    # Disabled rather than refused after the click: the counter beside it says why.
    return gr.Button(interactive=fits(text, limit))


def whole_limit(value) -> int:
    """A limit typed in a Number box as a whole number; its range is the engine's to check."""
    number = as_whole(value)
    if number is None:
        raise gr.Error(f"A limit is a whole number of characters, from 1 to {MAX_BLOCK_LIMIT:,}.")
    return number


def draft_of(drafts: dict | None, agent: int | None, label: str) -> tuple[str, str] | None:
    entry = (drafts or {}).get(agent, {}).get(label)
    return (entry[0], entry[1]) if entry else None


def with_draft(drafts: dict | None, agent: int, label: str, text: str, shown: str) -> dict:
    """`drafts` with this box's text recorded (or dropped when it is the stored text again)."""
    mine = {k: dict(v) for k, v in (drafts or {}).items()}
    blocks = mine.setdefault(agent, {})
    if text == shown:
        blocks.pop(label, None)
    else:
        # Kept on the server for the session: no block holds more than MAX_BLOCK_LIMIT, so a longer
        # draft (40 MB sent by a script) is kept only as far as still says "too long".
        blocks[label] = [text[: MAX_BLOCK_LIMIT + 1], shown]
    return mine


def history_rows(edits) -> list[list]:
    return [
        [e.id, e.created_at[:19].replace("T", " "), e.label, e.actor, e.cause, f"{len(e.old_value)} → {len(e.new_value)}"]
        for e in edits
    ]


def build(api: MemGPT, agent_id: gr.State) -> MemoryTab:
    version = gr.State(0)
    layout = gr.State(0)
    drafts = gr.State({})
    with gr.Row():
        counts = gr.Markdown()
        refresh = gr.Button("↻ Refresh", scale=0)

    # Redrawn when the agent changes, on ↻ Refresh and when blocks are added, removed or resized
    # (never after a turn: `sync` below follows the agent's edits box by box).
    @gr.render(inputs=[agent_id, drafts], triggers=[agent_id.change, layout.change])
    def blocks(current, kept):
        if current is None:
            gr.Markdown("Pick an agent in the Chat tab to see its memory.")
            return
        try:
            shown = api.get_core_memory(current)
        except NotFound:  # deleted from another browser tab meanwhile: say so, not a red error
            gr.Markdown("This agent no longer exists (deleted elsewhere). Pick another in the Chat tab.")
            return
        for block in shown:
            label_id = html.escape(block.label, quote=True)  # labels are plain words (engine.memory); still escaped
            draft = draft_of(kept, current, block.label)
            if draft is not None and draft[0] == block.value:
                draft = None  # saved meanwhile
            text = draft[0] if draft else block.value
            with gr.Group():
                box = gr.Textbox(value=text, label=f"{block.label}", lines=6, max_lines=20, interactive=True,
                                 elem_id=f"block-{label_id}")
                # What the draft was written from: a save is refused if the block moved on. A draft over a
                # block changed since is kept, with the note, and the new text as its base (as `sync` does).
                base = gr.State(block.value)
                with gr.Row():
                    count = gr.Markdown(counter(text, block.limit), elem_id=f"count-{label_id}")
                    save = gr.Button(f"Save {block.label}", scale=0, size="sm", interactive=fits(text, block.limit))
                note = gr.Markdown(changed_note(block.value) if draft and draft[1] != block.value else "",
                                   elem_id=f"note-{label_id}")

                def on_type(text, shown, kept, current, label=block.label, limit=block.limit):
                    mine = with_draft(kept, current, label, text, shown) if current is not None else gr.skip()
                    return counter(text, limit), save_button(text, limit), mine

                box.change(on_type, [box, base, drafts, agent_id], [count, save, drafts], queue=False,
                           show_progress="hidden")

                @guarded
                def on_save(text, shown, current, label=block.label, limit=block.limit):
                    try:
                        saved = api.update_core_memory(need_agent(current), label, text, cause="edited in the UI",
                                                       expected=shown)
                    except EditConflict as e:
                        # The agent wrote the block since the last look: say what it holds now; a second
                        # Save, made knowingly, replaces it. The typed text stays.
                        gr.Warning(str(e))
                        stored = stored_value(api, current, label)
                        return (f"{counter(text, limit)} · not saved", gr.skip(), gr.skip(),
                                stored if stored is not None else gr.skip(), changed_note(stored or ""))
                    except MemGPTError as e:
                        gr.Warning(str(e))
                        return f"{counter(text, limit)} · not saved", gr.skip(), gr.skip(), gr.skip(), gr.skip()
                    gr.Info(f"Saved {label}.")
                    return counter(saved.value, saved.limit), *summary(api, current), saved.value, ""

                save.click(on_save, [box, base, agent_id], [count, counts, history, base, note])

                @guarded
                def sync(text, shown, current, label=block.label, limit=block.limit):
                    stored = stored_value(api, current, label)
                    if stored is None or stored == shown:
                        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
                    if text == shown:  # nothing typed here: follow the agent
                        return stored, stored, counter(stored, limit), ""
                    # A draft over a block the agent changed: keep the draft, say so, and take the
                    # new value as the base so that Save (after this note) replaces it.
                    return gr.skip(), stored, gr.skip(), changed_note(stored)

                version.change(sync, [box, base, agent_id], [box, base, count, note], show_progress="hidden")

                with gr.Accordion(f"Limit or remove {block.label}", open=False, elem_id=f"manage-{label_id}"):
                    with gr.Row():
                        limit_box = gr.Number(value=block.limit, label=f"Limit of {block.label} (characters)",
                                              precision=0, minimum=1, maximum=MAX_BLOCK_LIMIT, interactive=True)
                        set_limit = gr.Button(f"Set limit of {block.label}", scale=0, size="sm")
                        if block.label.lower() not in PROTECTED_BLOCKS:
                            remove = gr.Button(f"Remove {block.label}", scale=0, size="sm", variant="stop")
                    if block.label.lower() in PROTECTED_BLOCKS:
                        gr.Markdown(f"{block.label} cannot be removed: the system prompt and the memory tools "
                                    "rely on it.")
                    else:
                        with gr.Column(visible=False, elem_id=f"remove-confirm-{label_id}") as remove_box:
                            remove_text = gr.Markdown()
                            with gr.Row():
                                confirm_remove = gr.Button(f"Confirm removal of {block.label}", variant="stop",
                                                           size="sm")
                                cancel_remove = gr.Button("Keep it", size="sm")

                        @guarded
                        def ask_remove(text, shown, current, label=block.label):
                            stored = stored_value(api, need_agent(current), label) or ""
                            return gr.Column(visible=True), removal_preview(label, stored, unsaved=text != shown)

                        remove.click(ask_remove, [box, base, agent_id], [remove_box, remove_text])
                        cancel_remove.click(lambda: gr.Column(visible=False), None, [remove_box])

                        @guarded
                        def on_remove(current, shape, kept, label=block.label):
                            api.remove_block(need_agent(current), label)
                            made = api.memory_history(current, label)[0]
                            gr.Info(f"Removed {label}; its history stays below (the removal is edit #{made.id}).")
                            # Its draft goes with it (the confirmation said so): a block added later under
                            # that label starts from what is stored.
                            mine = with_draft(kept, current, label, "", "")
                            return *summary(api, current), mine, shape + 1

                        confirm_remove.click(on_remove, [agent_id, layout, drafts],
                                             [counts, history, drafts, layout])

                @guarded
                def on_limit(value, current, shape, label=block.label):
                    changed = api.set_block_limit(need_agent(current), label, whole_limit(value))
                    gr.Info(f"The limit of {label} is now {changed.limit} characters.")
                    return *summary(api, current), shape + 1

                set_limit.click(on_limit, [limit_box, agent_id, layout], [counts, history, layout])

    gr.Markdown("### Edit history")
    history = gr.Dataframe(headers=HISTORY_COLUMNS, interactive=False, label="Edits, newest first", wrap=True)
    with gr.Row():
        edit_id = gr.Number(label="Edit number", precision=0)
        revert = gr.Button("Revert this edit", variant="stop")
    with gr.Column(visible=False, elem_id="revert-confirm") as confirm_box:
        confirm_text = gr.Markdown()
        with gr.Row():
            confirm = gr.Button("Confirm revert", variant="stop")
            cancel = gr.Button("Cancel")
    pending = gr.State(None)
    gr.Markdown("**What the edit changed**")
    diff = gr.HTML(diff_html(None), elem_id="memory-diff")
    with gr.Accordion("Add a block", open=False, elem_id="add-block"):
        with gr.Row():
            new_label = gr.Textbox(label="New block label", placeholder="notes", max_length=40,
                                   info="1-40 letters a-z, digits or _, starting with a letter")
            new_limit = gr.Number(value=api.settings.block_char_limit, label="New block limit (characters)",
                                  precision=0, minimum=1, maximum=MAX_BLOCK_LIMIT)
            add_block = gr.Button("Add block", scale=0)
    with gr.Accordion("Apply a persona or human template", open=False):
        with gr.Row():
            template_kind = gr.Radio(["personas", "humans"], value="personas", label="Template kind")
            template = gr.Dropdown(api.library.names("personas"), label="Template")
            template_block = gr.Textbox(value="persona", label="Into block")
            apply_template = gr.Button("Apply")
    return MemoryTab(version, layout, drafts, counts, refresh, history, edit_id, diff, revert, confirm_box,
                     confirm_text, confirm, cancel, pending, template_kind, template, template_block, apply_template,
                     new_label, new_limit, add_block)


def stored_value(api: MemGPT, current: int | None, label: str) -> str | None:
    if current is None:
        return None
    return next((b.value for b in api.get_core_memory(current) if b.label == label), None)


def changed_note(stored: str) -> str:
    shown = stored if len(stored) <= 600 else stored[:600] + " …"
    quoted = "\n".join("> " + (line or " ") for line in shown.replace("`", "'").splitlines() or [""])
    return ("⚠️ **The agent changed this block while you were editing.** Your draft is kept; "
            f"**Save** replaces the agent's version, which is now:\n\n{quoted}")


def removal_preview(label: str, stored: str, *, unsaved: bool) -> str:
    lines = [f"**Remove {label}?** Its {len(stored)} characters leave the agent's core memory (and its prompt). "
             "The removal is recorded in the edit history below with the text it held; adding a block named "
             f"{label} again brings the block back with its history."]
    if unsaved:
        lines.append("⚠️ The box holds changes you did not save; they go with the block.")
    return "\n\n".join(lines)


# Inline styles: Gradio 6 takes page CSS only at launch(), and each launcher would have to pass it.
# Translucent backgrounds read on light and dark themes; the +/- marks say the same without colour.
DIFF_BOX = ("font-family:ui-monospace,monospace;font-size:0.85em;white-space:pre-wrap;overflow-wrap:anywhere;"
            "max-height:28em;overflow-y:auto;border:1px solid rgba(128,128,128,0.35);border-radius:6px;"
            "padding:0.4em 0;margin:0")
DIFF_LINE = {"+": "background:rgba(46,160,67,0.22)", "-": "background:rgba(248,81,73,0.22)",
             "@": "opacity:0.65", " ": ""}


def diff_html(edit) -> str:
    """The edit as a unified diff, additions green and removals red, long lines wrapped.

    Block text is whatever the agent (steered by a stranger) or a person wrote, so every
    line is escaped; nothing of it is ever markup.
    """
    if edit is None:
        return f"<div style='{DIFF_BOX};padding:0.4em 0.6em;opacity:0.7'>Pick an edit to see what it changed.</div>"
    old, new = edit.old_value.splitlines(), edit.new_value.splitlines()
    lines = list(difflib.unified_diff(old, new, "before", "after", lineterm=""))[2:]  # the file header says nothing
    if not lines:
        text = "(no change to the text" + (f": {edit.cause})" if edit.cause else ")")
        return f"<div style='{DIFF_BOX};padding:0.4em 0.6em;opacity:0.7'>{html.escape(text)}</div>"
    rows = []
    for line in lines:
        kind = line[:1] if line[:1] in DIFF_LINE else " "
        css = {"+": "diff-add", "-": "diff-del", "@": "diff-hunk", " ": "diff-same"}[kind]
        rows.append(f"<div class='{css}' style='{DIFF_LINE[kind]};padding:0 0.6em'>{html.escape(line) or ' '}</div>")
    return f"<div class='memory-diff' style='{DIFF_BOX}'>{''.join(rows)}</div>"


def revert_preview(edit, later: list, now: str) -> str:
    """What a revert of `edit` will do, said before it is done (it used to wipe later edits without a word)."""
    lines = [f"**Revert edit #{edit.id}** ({edit.label}, {edit.actor}, {edit.cause})? {edit.label} goes back to "
             f"its text from before that edit: {len(edit.old_value)} characters (it has {len(now)} now)."]
    if later:
        ids = ", ".join(f"#{e.id}" for e in sorted(later, key=lambda e: e.id))
        lines.append(f"⚠️ {len(later)} later edit{'s' if len(later) > 1 else ''} of {edit.label} ({ids}) "
                     f"{'are' if len(later) > 1 else 'is'} undone with it; they stay in the history.")
    lines.append("The revert is recorded as a new edit, which can itself be reverted.")
    return "\n\n".join(lines)


def summary(api: MemGPT, current: int | None):
    if current is None:
        return "", []
    recall = api.recall_count(current)
    archival = api.archival_count(current)
    return (f"Recall memory: **{recall}** messages · Archival memory: **{archival}** passages",
            history_rows(api.memory_history(current)))


def wire(api: MemGPT, tab: MemoryTab, agent_id: gr.State) -> None:
    refresh_outputs = [tab.counts, tab.history]
    agent_id.change(guarded(lambda current: summary(api, current)), [agent_id], refresh_outputs)
    tab.refresh.click(guarded(lambda current: summary(api, current)), [agent_id], refresh_outputs)

    def on_refresh(kept, current, shape):
        # ↻ Refresh reloads the blocks as stored: this agent's unsaved drafts are dropped on purpose.
        mine = {k: v for k, v in (kept or {}).items() if k != current}
        return mine, shape + 1

    tab.refresh.click(on_refresh, [tab.drafts, agent_id, tab.layout], [tab.drafts, tab.layout], queue=False)

    @guarded
    def on_add(label, limit, current, shape):
        block = api.add_block(need_agent(current), label if isinstance(label, str) else "", limit=whole_limit(limit))
        gr.Info(f"Added block {block.label} ({block.limit} characters); the agent sees it from its next step.")
        return "", *summary(api, current), shape + 1

    tab.add_block.click(on_add, [tab.new_label, tab.new_limit, agent_id, tab.layout],
                        [tab.new_label, *refresh_outputs, tab.layout])

    @guarded
    def show_diff(edit_number, current):
        if not edit_number:
            return diff_html(None)
        try:
            edit = api.memory_edit(need_agent(current), whole_number(edit_number, "An edit number"))
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        return diff_html(edit)

    tab.edit_id.change(show_diff, [tab.edit_id, agent_id], [tab.diff])

    def on_select(evt: gr.SelectData, current):
        row = evt.row_value if hasattr(evt, "row_value") else None
        return int(row[0]) if row else gr.Number()

    tab.history.select(on_select, [agent_id], [tab.edit_id])

    @guarded
    def on_revert(edit_number, current):
        if not edit_number:
            raise gr.Error("Pick an edit to revert (click its row or type its number).")
        agent = need_agent(current)
        edit = api.memory_edit(agent, whole_number(edit_number, "An edit number"))
        later = [e for e in api.memory_history(agent, edit.label) if e.id > edit.id]
        now = stored_value(api, agent, edit.label) or ""
        return gr.Column(visible=True), revert_preview(edit, later, now), edit.id

    tab.revert.click(on_revert, [tab.edit_id, agent_id], [tab.confirm_box, tab.confirm_text, tab.pending])

    @guarded
    def on_confirm(edit_number, current, version):
        if edit_number is None:
            return gr.Column(visible=False), gr.skip(), gr.skip(), gr.skip(), gr.skip(), None
        agent = need_agent(current)
        block = api.revert(agent, whole_number(edit_number, "An edit number"))
        made = api.memory_history(agent, block.label)[0]  # the revert itself, newest
        gr.Info(f"Reverted edit #{int(edit_number)} on {block.label}, recorded as edit #{made.id}.")
        # The new edit is selected, so its diff (what the revert took away) is what shows.
        return gr.Column(visible=False), *summary(api, current), version + 1, made.id, None

    tab.confirm.click(on_confirm, [tab.pending, agent_id, tab.version],
                      [tab.confirm_box, *refresh_outputs, tab.version, tab.edit_id, tab.pending])
    tab.cancel.click(lambda: (gr.Column(visible=False), None), None, [tab.confirm_box, tab.pending])

    def on_kind(kind):
        return gr.Dropdown(choices=api.library.names(kind), value=None), "persona" if kind == "personas" else "human"

    tab.template_kind.change(on_kind, [tab.template_kind], [tab.template, tab.template_block])

    @guarded
    def on_apply(kind, name, label, current, version):
        if not name:
            raise gr.Error("Pick a template.")
        try:
            text = api.library.text(kind, name)
            api.update_core_memory(need_agent(current), (label or "").strip(), text, cause=f"template {name!r}")
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        gr.Info(f"Applied {name} to {label}.")
        return *summary(api, current), version + 1

    tab.apply_template.click(on_apply, [tab.template_kind, tab.template, tab.template_block, agent_id, tab.version],
                             [*refresh_outputs, tab.version])
