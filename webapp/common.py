"""Small helpers every tab shares: loading the agent for a request, naming its models."""

from __future__ import annotations

import gradio as gr

from engine.agent import Agent
from engine.agents import get_agent
from engine.errors import MemGPTError
from engine.runtime import Runtime
from engine.store.agents import AgentRow


def need_agent(agent_id: int | None) -> int:
    if agent_id is None:
        raise gr.Error("Pick or create an agent first (Chat tab).")
    return agent_id


def load_agent(runtime: Runtime, agent_id: int | None) -> Agent:
    """The agent for this request; loading is cheap (models are shared per process)."""
    try:
        return Agent.load(runtime, need_agent(agent_id))
    except MemGPTError as e:
        raise gr.Error(str(e)) from e


def row(runtime: Runtime, agent_id: int | None) -> AgentRow:
    try:
        return get_agent(runtime.store, need_agent(agent_id))
    except MemGPTError as e:
        raise gr.Error(str(e)) from e


def describe_models(agent: AgentRow) -> str:
    """Which model and embedder answer, for the header (never a key)."""
    llm = agent.llm_config
    where = llm.get("endpoint_type", "?")
    if llm.get("endpoint"):
        where += f" at {llm['endpoint']}"
    emb = agent.embedding_config
    emb_where = emb.get("endpoint_type", "?")
    return (f"**{agent.name}** · model **{llm.get('model', '?')}** ({where}) · "
            f"embedder **{agent.embedding_model}** ({agent.embedding_dim}-d, {emb_where})")
