"""The Memory tab: core memory blocks with live counters, edit history with revert, templates."""

from __future__ import annotations

import dataclasses
import difflib

import gradio as gr

from engine.api import MemGPT
from engine.errors import EditConflict, MemGPTError
from webapp.common import guarded, need_agent

HISTORY_COLUMNS = ["edit", "when (UTC)", "block", "who", "cause", "chars before → after"]


@dataclasses.dataclass
class MemoryTab:
    # Bumped whenever the stored blocks may have changed (a turn, a revert, a template): each box
    # then follows its block, unless it holds a draft (see `sync` in build()).
    version: gr.State
    counts: gr.Markdown
    refresh: gr.Button
    history: gr.Dataframe
    edit_id: gr.Number
    diff: gr.Code
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


def counter(text: str, limit: int) -> str:
    used = len(text or "")
    mark = "❌ over the limit" if used > limit else ""
    return f"{used}/{limit} characters {mark}".strip()


def history_rows(edits) -> list[list]:
    return [
        [e.id, e.created_at[:19].replace("T", " "), e.label, e.actor, e.cause, f"{len(e.old_value)} → {len(e.new_value)}"]
        for e in edits
    ]


def build(api: MemGPT, agent_id: gr.State) -> MemoryTab:
    version = gr.State(0)
    with gr.Row():
        counts = gr.Markdown()
        refresh = gr.Button("↻ Refresh", scale=0)

    # Redrawn only when the agent changes or on ↻ Refresh: redrawing after every turn threw away
    # whatever the person had typed and not saved yet.
    @gr.render(inputs=[agent_id], triggers=[agent_id.change, refresh.click])
    def blocks(current):
        if current is None:
            gr.Markdown("Pick an agent in the Chat tab to see its memory.")
            return
        for block in api.get_core_memory(current):
            with gr.Group():
                box = gr.Textbox(value=block.value, label=f"{block.label}", lines=6, max_lines=20, interactive=True,
                                 elem_id=f"block-{block.label}")
                base = gr.State(block.value)  # what the box was loaded with: a save is refused if the block moved on
                with gr.Row():
                    count = gr.Markdown(counter(block.value, block.limit), elem_id=f"count-{block.label}")
                    save = gr.Button(f"Save {block.label}", scale=0, size="sm")
                note = gr.Markdown("", elem_id=f"note-{block.label}")
                box.change(lambda text, limit=block.limit: counter(text, limit), [box], [count], queue=False,
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
    diff = gr.Code(label="What the edit changed", language=None, lines=8)
    with gr.Accordion("Apply a persona or human template", open=False):
        with gr.Row():
            template_kind = gr.Radio(["personas", "humans"], value="personas", label="Template kind")
            template = gr.Dropdown(api.library.names("personas"), label="Template")
            template_block = gr.Textbox(value="persona", label="Into block")
            apply_template = gr.Button("Apply")
    return MemoryTab(version, counts, refresh, history, edit_id, diff, revert, confirm_box, confirm_text, confirm,
                     cancel, pending, template_kind, template, template_block, apply_template)


def stored_value(api: MemGPT, current: int | None, label: str) -> str | None:
    if current is None:
        return None
    return next((b.value for b in api.get_core_memory(current) if b.label == label), None)


def changed_note(stored: str) -> str:
    shown = stored if len(stored) <= 600 else stored[:600] + " …"
    quoted = "\n".join("> " + (line or " ") for line in shown.replace("`", "'").splitlines() or [""])
    return ("⚠️ **The agent changed this block while you were editing.** Your draft is kept; "
            f"**Save** replaces the agent's version, which is now:\n\n{quoted}")


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

    @guarded
    def show_diff(edit_number, current):
        if not edit_number:
            return ""
        try:
            edit = api.memory_edit(need_agent(current), int(edit_number))
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        lines = difflib.unified_diff(edit.old_value.splitlines(), edit.new_value.splitlines(),
                                     "before", "after", lineterm="")
        return "\n".join(lines) or "(no change)"

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
        edit = api.memory_edit(agent, int(edit_number))
        later = [e for e in api.memory_history(agent, edit.label) if e.id > edit.id]
        now = stored_value(api, agent, edit.label) or ""
        return gr.Column(visible=True), revert_preview(edit, later, now), edit.id

    tab.revert.click(on_revert, [tab.edit_id, agent_id], [tab.confirm_box, tab.confirm_text, tab.pending])

    @guarded
    def on_confirm(edit_number, current, version):
        if edit_number is None:
            return gr.Column(visible=False), gr.skip(), gr.skip(), gr.skip(), gr.skip(), None
        agent = need_agent(current)
        block = api.revert(agent, int(edit_number))
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
            api.update_core_memory(need_agent(current), label.strip(), text, cause=f"template {name!r}")
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        gr.Info(f"Applied {name} to {label}.")
        return *summary(api, current), version + 1

    tab.apply_template.click(on_apply, [tab.template_kind, tab.template, tab.template_block, agent_id, tab.version],
                             [*refresh_outputs, tab.version])
