"""Building the Gradio Blocks app over the engine API: one tab module each, wired together."""

from __future__ import annotations

import gradio as gr

from engine.api import MemGPT
from engine.runtime import Runtime
from webapp import (
    address,
    agent_tab,
    archival_tab,
    chat_tab,
    config_tab,
    context_tab,
    demo_banner,
    memory_panel,
    memory_tab,
    recall_tab,
)
from webapp.common import guarded
from webapp.exposure import Exposure
from webapp.newest import Newest
from webapp.viewing import Viewing

TITLE = "MemGPT"
CACHE_SWEEP = (3600, 3600)  # (every seconds, files older than seconds)


def build_demo(api: MemGPT | Runtime, exposure: Exposure | None = None) -> gr.Blocks:
    """The app. `exposure` says what the page may reach on this machine (default: loopback, no folders)."""
    if isinstance(api, Runtime):
        api = MemGPT(runtime=api)
    exposure = exposure or Exposure(home=api.settings.home)
    if exposure.exposed:  # strangers name endpoints here: none may lead into this server's network
        api.restrict_endpoints()
    # What the fields are built with, read before they are: a page load then sends only what a save changed since.
    built_config, built_defaults = config_tab.current_values(api), chat_tab.default_values(api)
    # delete_cache: Gradio keeps every upload and every file it served (each Export click is another
    # copy) until the app stops; on a public app that is disk anyone can fill. Hourly, files over an hour old go.
    with gr.Blocks(title=TITLE, delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(f"# {TITLE}\nAn agent with self-editing memory, on your own machine.")
        agent_id = gr.State(None)  # this browser tab's agent; each request loads it from the store
        naming: list[gr.Markdown] = []  # a line atop each tab that names the agent it shows
        banner = demo_banner.build(api)
        with gr.Tabs() as tabs:
            with gr.Tab("Chat") as chat_page:
                chat = chat_tab.build(api)
            with gr.Tab("Memory"):
                naming.append(gr.Markdown(NO_AGENT))
                memory = memory_tab.build(api, agent_id)
            with gr.Tab("Recall") as recall_page:
                naming.append(gr.Markdown(NO_AGENT))
                recall = recall_tab.build(api)
            with gr.Tab("Archival"):
                naming.append(gr.Markdown(NO_AGENT))
                archival = archival_tab.build(api, exposure)
            with gr.Tab("Context"):
                naming.append(gr.Markdown(NO_AGENT))
                context = context_tab.build(api)
            with gr.Tab("Agent"):
                agent_settings = agent_tab.build(api)
            with gr.Tab("Config", id="config", elem_id="config-tab"):
                config = config_tab.build(api, exposure)

        def after_agent_event(event, picked: bool = False):
            # Whatever a turn or a switch of agent changed, the other views follow.
            chain = event.then(lambda c: memory_panel.render(api, c), [agent_id], [chat.memory],
                               show_progress="hidden").then(
                guarded(lambda c: memory_tab.summary(api, c)), [agent_id],
                               [memory.counts, memory.history]).then(
                guarded(lambda c: context_tab.measure(api, c)), [agent_id], [context.bar, context.table])
            if not picked:
                # A pick redraws the Memory blocks anyway (agent_id.change); bumping the version then
                # would call the listeners of the blocks being replaced, which Gradio no longer knows.
                chain.then(lambda v: v + 1, [memory.version], [memory.version])

        # From the picker's value, not agent_id: a rename keeps the id and changes the name.
        chat.agent.change(lambda name: [naming_line(name)] * len(naming), [chat.agent], naming,
                          show_progress="hidden", queue=False)

        viewing = Viewing()
        chat_tab.wire(api, chat, agent_id, after_agent_event, viewing)
        demo.unload(viewing.forget)
        # Memory edited in the Memory tab (or by another tab's turn) shows when the chat is back in view.
        chat_page.select(lambda c: memory_panel.render(api, c), [agent_id], [chat.memory], show_progress="hidden")
        memory_tab.wire(api, memory, agent_id)
        # A slower, older search or listing must not overwrite a newer one (webapp/newest.py).
        recall_table, archival_table = Newest(), Newest()
        recall_tab.wire(api, recall, agent_id, recall_page, recall_table)
        archival_tab.wire(api, archival, agent_id, exposure, archival_table)
        demo.unload(recall_table.forget)
        demo.unload(archival_table.forget)
        context_tab.wire(api, context, agent_id)
        agent_tab.wire(api, agent_settings, agent_id, chat.agent, chat.header, exposure)
        saved = config_tab.wire(api, config, exposure)
        demo_banner.wire(api, banner, demo, tabs, saved)
        demo.load(lambda: config_tab.current_values(api, built_config), None, config_tab.value_components(config))
        loaded = demo.load(lambda: chat_tab.current_defaults(api, built_defaults), None,
                           chat_tab.default_components(chat))
        address.wire(api, chat.agent, loaded)
        # A saved config changes the defaults the Chat tab offers for new agents.
        saved.then(lambda: chat_tab.current_defaults(api), None, chat_tab.default_components(chat))
    make_private(demo)
    return demo


NO_AGENT = "No agent picked: pick or create one in the Chat tab."


def naming_line(name: str | None) -> str:
    # Names hold only letters, digits, spaces, dots and dashes (engine.agents), nothing Markdown reads.
    return f"Agent: **{name}**" if name else NO_AGENT


def make_private(demo: gr.Blocks) -> None:
    """No event is a documented API: the page is the only client, and the WebSocket API is the API.

    "private" keeps them out of /gradio_api/info, the API page, MCP and the
    gradio_client libraries. The page itself still calls them by index, so this
    is not a security boundary: every handler checks its own input.
    """
    for fn in demo.fns.values():
        fn.api_visibility = "private"
