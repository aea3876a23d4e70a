"""Small helpers every tab shares: loading the agent for a request, naming its models, refusals as toasts."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

from engine.agent import Agent
from engine.api import AgentInfo, MemGPT
from engine.errors import MemGPTError

Handler = TypeVar("Handler", bound=Callable[..., Any])


def guarded(fn: Handler) -> Handler:
    """The handler, with its refusals (gr.Error, MemGPTError) shown as a warning toast and every output left as is.

    A handler that raises makes Gradio put a red "Error" badge over each of its
    outputs, input fields included: it blocks typing until its small x is found and
    outlives later successes. A toast says the same and goes away. Handlers may still
    raise gr.Error to refuse; Gradio never sees it. Other exceptions are bugs and
    keep Gradio's own handling.
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (gr.Error, MemGPTError) as e:
                gr.Warning(refusal_text(e))
                yield gr.skip()

        return stream  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (gr.Error, MemGPTError) as e:
            gr.Warning(refusal_text(e))
            return gr.skip()

    return call  # type: ignore[return-value]


MAX_ID = 2**63 - 1  # SQLite's and PostgreSQL's largest integer: a bigger edit number is an OverflowError there


def as_whole(value) -> int | None:
    """A number typed into the page (a float, None, a string or anything a crafted request sends) as an
    int, or None when it is not a whole number."""
    try:
        number = float(value)
        return int(number) if number.is_integer() else None
    except (TypeError, ValueError, OverflowError):
        return None


def whole_number(value, what: str, *, low: int = 1, high: int = MAX_ID) -> int:
    """`as_whole(value)` in [low, high], or a gr.Error naming `what`: Gradio's number fields let
    through 1e300 and 2**64."""
    number = as_whole(value)
    if number is None or not low <= number <= high:
        raise gr.Error(f"{what} is a whole number from {low:,} to {high:,}.")
    return number


def unchanged_skipped(built: list, now: list, updates: list) -> list:
    """`updates`, with gr.skip() wherever the value the page was built with is still the value `now`.

    A page-load event fills fields with the saved settings, since a page built
    before a Config save would show stale ones. Its reply lands after the page is
    up, so a field typed into meanwhile was overwritten with the very default it
    started with; skipping what has not changed leaves that typing alone.
    """
    return [gr.skip() if old == new else update for old, new, update in zip(built, now, updates, strict=True)]


def refusal_text(e: Exception) -> str:
    return str(getattr(e, "message", None) or e)


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
