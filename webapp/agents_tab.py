"""The Agents tab: list agents, create one, and see its memory as the model sees it."""

from __future__ import annotations

import dataclasses

import gradio as gr

from engine.agents import create_agent, get_agent, list_agents, memory_section
from engine.errors import MemGPTError
from engine.runtime import Runtime

COLUMNS = ["name", "preset", "persona", "human", "model", "embedder"]


@dataclasses.dataclass
class AgentsTab:
    table: gr.Dataframe
    name: gr.Textbox
    preset: gr.Dropdown
    persona: gr.Dropdown
    human: gr.Dropdown
    create: gr.Button
    status: gr.Markdown
    pick: gr.Dropdown
    memory: gr.Textbox


def rows(runtime: Runtime) -> list[list[str]]:
    return [
        [a.name, a.preset, a.persona or "", a.human or "", a.llm_config.get("model", ""),
         f"{a.embedding_model} ({a.embedding_dim}-d)"]
        for a in list_agents(runtime.store)
    ]


def build(runtime: Runtime) -> AgentsTab:
    library = runtime.library
    settings = runtime.settings
    with gr.Row():
        with gr.Column(scale=2):
            table = gr.Dataframe(value=rows(runtime), headers=COLUMNS, label="Agents", interactive=False)
            pick = gr.Dropdown(choices=[r[0] for r in rows(runtime)], label="Show memory of", value=None)
            memory = gr.Textbox(label="Memory section of the system message", lines=14, interactive=False)
        with gr.Column(scale=1):
            name = gr.Textbox(label="New agent name")
            preset = gr.Dropdown(library.preset_names(), value=settings.default_preset, label="Preset")
            persona = gr.Dropdown(library.names("personas"), value=settings.default_persona, label="Persona")
            human = gr.Dropdown(library.names("humans"), value=settings.default_human, label="Human")
            create = gr.Button("Create agent", variant="primary")
            status = gr.Markdown()
    return AgentsTab(table, name, preset, persona, human, create, status, pick, memory)


def wire(runtime: Runtime, tab: AgentsTab) -> None:
    def on_create(name, preset, persona, human):
        try:
            agent = create_agent(
                runtime.store, runtime.settings, runtime.library, runtime.registry, name or "",
                preset=preset, persona=persona, human=human,
            )
        except MemGPTError as e:
            raise gr.Error(str(e)) from e
        names = [r[0] for r in rows(runtime)]
        return rows(runtime), f"Created **{agent.name}**.", gr.Dropdown(choices=names, value=agent.name)

    def on_pick(name):
        if not name:
            return ""
        try:
            return memory_section(runtime.store, get_agent(runtime.store, name).id)
        except MemGPTError as e:
            raise gr.Error(str(e)) from e

    tab.create.click(on_create, [tab.name, tab.preset, tab.persona, tab.human], [tab.table, tab.status, tab.pick])
    tab.pick.change(on_pick, [tab.pick], [tab.memory])
