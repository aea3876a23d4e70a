"""The Chat tab: pick or create an agent, talk to it, and steer the conversation."""

from __future__ import annotations

import dataclasses
import threading
import time

import gradio as gr

from engine import config as config_mod
from engine.api import MemGPT
from engine.config import MAX_DIM, EmbeddingConfig, LLMConfig
from engine.errors import MemGPTError
from engine.events import Error, Event, UserMessage
from webapp import memory_panel
from webapp.common import describe_models, guarded, load_agent, row, unchanged_skipped, whole_number
from webapp.render import apply_event, drop_partials, status_line, stored_to_messages
from webapp.stopping import Runs
from webapp.viewing import Viewing

PROVIDERS = ["local", *[t for t in config_mod.ENDPOINT_TYPES if t != "local"]]
EMBEDDERS = ["local", "openai", "azure", "openai-compatible"]
WORKING = "⏳ **Working…**"
STOPPED = "⏹️ **Stopped.** What was said until then is stored."
STREAM_REDRAW = 0.05  # seconds between redraws of a streaming reply
STILL_REPLYING = "The agent is still replying; your message is kept in the box."
BUSY_ELSEWHERE = "This agent is answering another message (another tab?); your message is kept in the box."


@dataclasses.dataclass
class ChatTab:
    agent: gr.Dropdown
    refresh: gr.Button
    header: gr.Markdown
    new_form: gr.Accordion  # open while there is no agent; folded once one is created
    new_name: gr.Textbox
    preset: gr.Dropdown
    persona: gr.Dropdown
    human: gr.Dropdown
    provider: gr.Dropdown
    model: gr.Textbox
    endpoint: gr.Textbox
    embedder: gr.Dropdown
    embed_model: gr.Textbox
    embed_dim: gr.Number
    embed_endpoint: gr.Textbox
    create: gr.Button
    chatbot: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button  # shown while a turn of this tab runs
    retry: gr.Button
    pop: gr.Button
    heartbeat: gr.Button
    summarize: gr.Button
    warn: gr.Button
    edit_text: gr.Textbox
    rethink: gr.Button
    rewrite: gr.Button
    status: gr.Markdown
    memory: gr.HTML  # core memory beside the conversation (webapp/memory_panel.py)


def agent_names(api: MemGPT) -> list[str]:
    return [a.name for a in api.list_agents()]


def build(api: MemGPT) -> ChatTab:
    settings = api.settings
    library = api.library
    with gr.Row():
        agent = gr.Dropdown(agent_names(api), label="Agent", value=None, scale=3, allow_custom_value=False)
        refresh = gr.Button("↻ Refresh list", scale=1)
    header = gr.Markdown("Pick an agent, or create one below.")
    with gr.Accordion("New agent", open=not agent_names(api), elem_id="new-agent") as new_form:
        with gr.Row():
            new_name = gr.Textbox(label="Name", placeholder="e.g. Sam")
            preset = gr.Dropdown(library.preset_names(), value=config_mod.default_preset_for(settings), label="Preset")
            persona = gr.Dropdown(library.names("personas"), value=settings.default_persona, label="Persona")
            human = gr.Dropdown(library.names("humans"), value=settings.default_human, label="Human")
        with gr.Row():
            provider = gr.Dropdown(PROVIDERS, value=settings.llm.endpoint_type, label="Model provider")
            model = gr.Textbox(value=settings.llm.model, label="Model")
            endpoint = gr.Textbox(value=settings.llm.endpoint or "", label="Base URL (servers; GGUF path for local)")
        with gr.Row():
            embedder = gr.Dropdown(EMBEDDERS, value=settings.embedding.endpoint_type, label="Embedder")
            embed_model = gr.Textbox(value=settings.embedding.model, label="Embedding model")
            embed_dim = gr.Number(value=settings.embedding.dim, precision=0, label="Dimension")
            embed_endpoint = gr.Textbox(value=settings.embedding.endpoint or "", label="Embedding base URL")
        create = gr.Button("Create agent", variant="primary")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=360):
            chatbot = gr.Chatbot(label="Conversation", elem_id="chatbot", height=520, buttons=["copy"],
                                 feedback_options=None)
            with gr.Row():
                message = gr.Textbox(label="Message", placeholder="Say something…", scale=5, lines=1)
                send = gr.Button("Send", variant="primary", scale=1)
                stop = gr.Button("Stop", variant="stop", scale=1, visible=False)
                retry = gr.Button("Retry", scale=1)
            status = gr.Markdown()
            # Operations for looking into the machinery, folded away from the everyday Send / Stop / Retry
            # so that a stray click does not pop a message or wake the agent.
            with gr.Accordion("Developer", open=False, elem_id="developer"):
                with gr.Row():
                    pop = gr.Button("Pop last")
                    heartbeat = gr.Button("Heartbeat")
                    summarize = gr.Button("Summarize now")
                    warn = gr.Button("Memory warning")
                edit_text = gr.Textbox(label="New text for the last reply")
                with gr.Row():
                    rethink = gr.Button("Replace inner monologue (rethink)")
                    rewrite = gr.Button("Replace sent message (rewrite)")
        with gr.Column(scale=1, min_width=280):
            _, memory = memory_panel.build()
    return ChatTab(agent, refresh, header, new_form, new_name, preset, persona, human, provider, model, endpoint, embedder,
                   embed_model, embed_dim, embed_endpoint, create, chatbot, message, send, stop, retry, pop, heartbeat,
                   summarize, warn, edit_text, rethink, rewrite, status, memory)


def default_values(api: MemGPT) -> list:
    """The agent names (for the picker and the form's openness) and the new-agent defaults as saved now."""
    s = api.settings
    names = agent_names(api)
    return [names, names, config_mod.default_preset_for(s), s.default_persona, s.default_human,
            s.llm.endpoint_type, s.llm.model, s.llm.endpoint or "", s.embedding.endpoint_type, s.embedding.model,
            s.embedding.dim, s.embedding.endpoint or ""]


def current_defaults(api: MemGPT, built: list | None = None) -> list:
    """Updates for `default_components`: agent choices and new-agent defaults as saved now.

    With `built` (the `default_values` the page was built with), what has not
    changed since is skipped, so a page load leaves alone what was typed before it.
    """
    now = default_values(api)
    names = now[0]
    updates = [gr.Dropdown(choices=names), gr.Accordion(open=not names), *now[2:]]
    return updates if built is None else unchanged_skipped(built, now, updates)


def default_components(tab: ChatTab) -> list:
    return [tab.agent, tab.new_form, tab.preset, tab.persona, tab.human, tab.provider, tab.model, tab.endpoint, tab.embedder,
            tab.embed_model, tab.embed_dim, tab.embed_endpoint]


def _totals(api: MemGPT, agent_id: int) -> str:
    calls, prompt, completion = api.usage(agent_id)
    return f"All time: {calls} LLM calls, {prompt:,} prompt + {completion:,} completion tokens."


def _history(api: MemGPT, agent_id: int) -> list[dict]:
    return stored_to_messages(api.messages(agent_id))


def wire(api: MemGPT, tab: ChatTab, agent_id: gr.State, agent_changed, viewing: Viewing) -> None:
    """`agent_changed(event)` chains the other tabs' refreshes after the agent changes.

    `viewing` records which agent each browser tab shows, so that a reply still
    streaming for the agent picked before stops drawing into the conversation.
    """
    runs = Runs()

    @guarded
    def on_pick(name, request: gr.Request):
        if not name:
            viewing.show(request, None)
            return None, [], "Pick an agent, or create one below.", ""
        try:
            picked = api.get_agent(name)
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        viewing.show(request, picked.id)  # first: from here on, other agents' streams stop drawing
        load_agent(api, picked.id)  # writes the boot messages of a new agent
        return picked.id, _history(api, picked.id), describe_models(picked), _totals(api, picked.id)

    agent_changed(tab.agent.change(on_pick, [tab.agent], [agent_id, tab.chatbot, tab.header, tab.status]),
                  picked=True)
    tab.refresh.click(lambda current: gr.Dropdown(choices=agent_names(api), value=current), [tab.agent], [tab.agent])

    @guarded
    def on_create(name, preset, persona, human, provider, model, endpoint, embedder, embed_model, embed_dim,
                  embed_endpoint):
        try:
            saved = api.settings.llm  # wrapper, grammar and window follow the Config tab
            llm = LLMConfig(endpoint_type=provider, model=(model or "").strip(), endpoint=(endpoint or "").strip() or None,
                            context_window=saved.context_window, wrapper=saved.wrapper, grammar=saved.grammar)
            dim = whole_number(embed_dim, "The embedding dimension", high=MAX_DIM)
            embedding = EmbeddingConfig(endpoint_type=embedder, model=(embed_model or "").strip(), dim=dim,
                                        endpoint=(embed_endpoint or "").strip() or None)
            created = api.create_agent(name or "", preset=preset, persona=persona, human=human, llm=llm,
                                       embedding=embedding)
        except (MemGPTError, ValueError) as e:
            raise gr.Error(str(e)) from e
        gr.Info(f"Created {created.name}.")
        # The form folds away so the conversation starts near the top of the screen.
        return gr.Dropdown(choices=agent_names(api), value=created.name), "", gr.Accordion(open=False)

    tab.create.click(
        on_create,
        [tab.new_name, tab.preset, tab.persona, tab.human, tab.provider, tab.model, tab.endpoint, tab.embedder,
         tab.embed_model, tab.embed_dim, tab.embed_endpoint],
        [tab.agent, tab.new_name, tab.new_form],
    )

    def provider_defaults(provider, preset):
        model = {"openai": config_mod.OPENAI_CHAT_MODEL, "azure": config_mod.OPENAI_CHAT_MODEL,
                 "local": config_mod.LOCAL_CHAT_MODEL}.get(provider)
        # The companion preset follows the model: its compressed prompt for the embedded one.
        if provider == "local" and preset == config_mod.FULL_PRESET:
            preset = config_mod.SMALL_MODEL_PRESET
        elif provider != "local" and preset == config_mod.SMALL_MODEL_PRESET:
            preset = config_mod.FULL_PRESET
        return (gr.Textbox(value=model) if model else gr.Textbox()), preset

    tab.provider.change(provider_defaults, [tab.provider, tab.preset], [tab.model, tab.preset])

    def embedder_defaults(kind):
        if kind == "local":
            return config_mod.LOCAL_EMBEDDING_MODEL, config_mod.LOCAL_EMBEDDING_DIM
        if kind in ("openai", "azure"):
            return config_mod.OPENAI_EMBEDDING_MODEL, config_mod.OPENAI_EMBEDDING_DIM
        return gr.Textbox(), gr.Number()

    tab.embedder.change(embedder_defaults, [tab.embedder], [tab.embed_model, tab.embed_dim])

    def claim(agent, request) -> threading.Event:
        """This tab's run of the agent (its Stop flag), or a refusal while the agent is replying.

        A second Enter during a reply is refused rather than queued: queued, it would wait
        on the agent holding one of the server's few workers, and its turn would start from
        the conversation as it was before the first reply.
        """
        flag = runs.start(request, agent.row.id)
        if flag is None:
            raise gr.Error(STILL_REPLYING)
        if agent.busy:  # a turn from elsewhere: another browser, the WebSocket API, the terminal
            runs.finish(request, agent.row.id, flag)
            raise gr.Error(BUSY_ELSEWHERE)
        return flag

    def stream(events, history, current, request, flag):
        """Render a turn: yields (event, (chatbot, status, stop button)), the view None once another agent is shown.

        `flag` is the run claimed for it (`claim`), given back when the turn ends. The events
        are consumed to the end either way (the turn finishes and is stored), unless this tab's
        Stop ends the turn early.
        """
        notes: list[str] = []
        shown = 0.0
        try:
            if viewing.shows(request, current):
                yield None, (history, WORKING, gr.Button(visible=True))
            for event in api.stoppable(current, events, flag.is_set):
                history = apply_event(history, event)
                if event.partial:
                    # A reply streams a few characters at a time; redrawing for each would flood the page.
                    # The pieces skipped here show with the next update.
                    now = time.monotonic()
                    if now - shown < STREAM_REDRAW:
                        continue
                    shown = now
                line = status_line(event)
                if line:
                    notes = [line]
                # Stop is sent with every update, not only the first: on a loaded machine a turn once
                # ran with Stop still hidden (cause not pinned down); a repeated "show" costs nothing.
                yield event, ((history, " · ".join(notes + [WORKING]), gr.Button(visible=True))
                              if viewing.shows(request, current) else None)
        finally:
            runs.finish(request, current, flag)
        history = drop_partials(history)  # a reply cut off by Stop was never stored
        if viewing.shows(request, current):
            done = [STOPPED] if flag.is_set() else notes
            yield None, (history, " · ".join(done + [_totals(api, current)]), gr.Button(visible=False))

    def views(rendered):
        """Only the updates meant for the agent still shown; (chatbot, status, stop button)."""
        for _, view in rendered:
            yield view if view is not None else (gr.skip(), gr.skip(), gr.skip())

    @guarded
    def on_send(text, history, current, request: gr.Request):
        agent = load_agent(api, current)
        if not text or not text.strip():
            yield history, "Type a message first.", text, gr.skip()
            return
        flag = claim(agent, request)  # refused with a toast; the text stays in the box
        accepted, refusal = False, ""
        for event, view in stream(agent.step(text), history or [], current, request, flag):
            chat, note, stop = view if view is not None else (gr.skip(), gr.skip(), gr.skip())
            # The box empties once the agent has the message. A refused one (too long, say) stays there to be
            # shortened, and the status line says so; later updates leave the box alone so the next message
            # can be typed meanwhile.
            arrived = isinstance(event, UserMessage) and event.message_type == "user_message"
            accepted = accepted or arrived
            if isinstance(event, Error) and not accepted:
                refusal = f"**Not sent:** {event.message} Your text is still in the box."
            yield chat, (refusal or note) if view is not None else note, ("" if arrived else gr.skip()), stop

    send_inputs = [tab.message, tab.chatbot, agent_id]
    send_outputs = [tab.chatbot, tab.status, tab.message, tab.stop]
    # "multiple": by default Gradio drops a click while the same event is still running in this tab, so after
    # picking another agent mid-reply Send did nothing until the old turn ended. A second message to a busy
    # agent is refused visibly in on_send instead.
    agent_changed(tab.send.click(on_send, send_inputs, send_outputs, trigger_mode="multiple"))
    agent_changed(tab.message.submit(on_send, send_inputs, send_outputs, trigger_mode="multiple"))

    def operation(name):
        @guarded
        def run(history, current, request: gr.Request):
            agent = load_agent(api, current)
            flag = claim(agent, request)
            try:
                events = {"retry": agent.retry, "heartbeat": agent.heartbeat, "summarize": agent.summarize_now,
                          "warn": agent.memory_warning}[name]()
                if name == "retry":
                    history = _history(api, current)  # what is retried is taken back first
                    first = next(events, None)
                    history = _history(api, current)[:-1] if first is not None else history
                    events = _chain([first] if first is not None else [], events)
            except MemGPTError as e:
                runs.finish(request, current, flag)
                raise gr.Error(str(e)) from e
            yield from views(stream(events, history or [], current, request, flag))

        return run

    for button, name in ((tab.retry, "retry"), (tab.heartbeat, "heartbeat"), (tab.summarize, "summarize"),
                         (tab.warn, "warn")):
        agent_changed(button.click(operation(name), [tab.chatbot, agent_id], [tab.chatbot, tab.status, tab.stop]))

    @guarded
    def on_stop(current, request: gr.Request):
        if not runs.stop(request, current):
            return gr.Button(visible=False), gr.skip()
        return gr.skip(), "⏹️ Stopping: the turn ends once the step under way is done (a model call, a function)."

    # Unqueued: a Stop waiting in the queue behind busy workers would come too late.
    tab.stop.click(on_stop, [agent_id], [tab.stop, tab.status], queue=False)

    @guarded
    def on_pop(current):
        agent = load_agent(api, current)
        if agent.busy:  # the pop would wait, holding a worker, for the turn to end
            raise gr.Error("The agent is still replying; pop once it has.")
        removed = agent.pop(1)
        return _history(api, current), f"Removed {len(removed)} message(s) from the conversation."

    agent_changed(tab.pop.click(on_pop, [agent_id], [tab.chatbot, tab.status]))

    def edit(kind):
        @guarded
        def run(text, current):
            agent = load_agent(api, current)
            if not text or not text.strip():
                raise gr.Error("Write the new text first.")
            if agent.busy:
                raise gr.Error("The agent is still replying; your text is kept, try again once it has.")
            try:
                (agent.rethink if kind == "rethink" else agent.rewrite)(text.strip())
            except MemGPTError as e:
                raise gr.Error(str(e)) from e
            return _history(api, current), "", f"Last reply {'rethought' if kind == 'rethink' else 'rewritten'}."

        return run

    tab.rethink.click(edit("rethink"), [tab.edit_text, agent_id], [tab.chatbot, tab.edit_text, tab.status])
    tab.rewrite.click(edit("rewrite"), [tab.edit_text, agent_id], [tab.chatbot, tab.edit_text, tab.status])


def _chain(first: list[Event], rest):
    yield from first
    yield from rest


def header_for(api: MemGPT, agent_id: int | None) -> str:
    return describe_models(row(api, agent_id)) if agent_id is not None else ""
