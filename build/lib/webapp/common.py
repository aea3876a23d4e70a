"""Small helpers every tab shares: loading the agent for a request, naming its models."""

from __future__ import annotations

import gradio as gr

from engine.agent import Agent
from engine.api import AgentInfo, MemGPT
from engine.errors import MemGPTError


def need_agent(agent_id: int | None) -> int:
    if agent_id is None:
        raise gr.Error("Pick or create an agent first (Chat tab).")
    return agent_id


def load_agent(api: MemGPT, agent_id: int | None) -> Agent:
    """The agent for this request; loading is cheap (models are shared per process)."""
    try:
        return api.open_agent(need_agent(agent_id))
    except MemGPTError as e:
        raise gr.Error(str(e)) from e


def row(api: MemGPT, agent_id: int | None) -> AgentInfo:
    try:
        return api.get_agent(need_agent(agent_id))
    except MemGPTError as e:
        raise gr.Error(str(e)) from e


def describe_models(agent: AgentInfo) -> str:
    """Which model and embedder answer, for the header (never a key)."""
    llm, emb = agent.llm, agent.embedding
    where = llm.endpoint_type + (f" at {llm.endpoint}" if llm.endpoint else "")
    return (f"**{agent.name}** · model **{llm.model}** ({where}) · "
            f"embedder **{emb.model}** ({emb.dim}-d, {emb.endpoint_type})")
