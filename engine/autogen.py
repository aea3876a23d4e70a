"""A MemGPT agent in an AutoGen (ag2 < 1.0) conversation or group chat.

    from engine.autogen import create_memgpt_autogen_agent_from_config
    coder = create_memgpt_autogen_agent_from_config("MemGPT_coder", llm_config={"config_list": [...]})
    # then use it like any ConversableAgent: initiate_chat, GroupChat([... coder ...]), ...

`MemGPTAgent` is a `ConversableAgent` whose reply is one step of a persistent
MemGPT agent of the same name in the data home: its memory survives the
program, and the web app shows its conversation like any other agent's. The
messages the group sent since its last reply reach it as one user message,
each line prefixed with its speaker's name. Its reply is what it said through
`send_message`, optionally preceded by its inner monologue and function calls
(`show_inner_thoughts`, `show_function_outputs`).

It goes through the public API (engine/api.py) only. Needs `pip install .[autogen]`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autogen import Agent, ConversableAgent

from engine.agent import AgentOptions
from engine.api import MemGPT, SourceInfo
from engine.config import EmbeddingConfig, LLMConfig
from engine.errors import NotFound
from engine.events import AssistantMessage, Error, Event, Thought, ToolCall, ToolResult
from engine.llm.providers import make_provider
from engine.secrets import OPENAI_URL, normalize_url


def pretty_concat(events: list[Event], *, show_inner_thoughts: bool = True, show_function_outputs: bool = False) -> str:
    """A step's events as one chat message: what the agent said, with its thinking and calls if wanted."""
    lines: list[str] = []
    for event in events:
        if isinstance(event, Thought) and show_inner_thoughts:
            lines.append(f"💭 {event.text}")
        elif isinstance(event, ToolCall) and show_function_outputs and event.name != "send_message":
            shown = {k: v for k, v in event.arguments.items() if k != "request_heartbeat"}
            lines.append(f"⚡ {event.name}({shown})")
        elif isinstance(event, ToolResult) and show_function_outputs and event.name != "send_message":
            lines.append(f"   → {event.status}: {event.message}")
        elif isinstance(event, AssistantMessage):
            lines.append(event.text)
        elif isinstance(event, Error):
            lines.append(f"[error: {event.message}]")
    return "\n".join(lines)


class MemGPTAgent(ConversableAgent):
    """An AutoGen agent backed by the MemGPT agent `agent` in `memgpt`'s data home."""

    def __init__(self, name: str, memgpt: MemGPT, agent: str | int | None = None, *,
                 provider_factory: Callable[[], Any] | None = None, show_inner_thoughts: bool = True,
                 show_function_outputs: bool = False, skip_verify: bool = False,
                 is_termination_msg: Callable[[dict[str, Any]], bool] | None = None,
                 human_input_mode: Any = "NEVER", max_consecutive_auto_reply: int | None = None,
                 default_auto_reply: str = "", **kwargs: Any):
        super().__init__(name, system_message="", is_termination_msg=is_termination_msg,
                         max_consecutive_auto_reply=max_consecutive_auto_reply, human_input_mode=human_input_mode,
                         llm_config=False, code_execution_config=False, default_auto_reply=default_auto_reply,
                         **kwargs)
        self.memgpt = memgpt
        self.agent_ref = agent if agent is not None else name
        self.provider_factory = provider_factory
        self.show_inner_thoughts = show_inner_thoughts
        self.show_function_outputs = show_function_outputs
        self.options = AgentOptions(verify_first_message=not skip_verify)
        self._passed: dict[Any, int] = {}  # per sender: how many of its messages MemGPT has seen
        self.register_reply([Agent, None], MemGPTAgent._reply_with_memgpt)

    def _reply_with_memgpt(self, messages: list[dict[str, Any]] | None = None, sender: Agent | None = None,
                           config: Any = None) -> tuple[bool, Any]:
        if messages is None:
            messages = self.chat_messages.get(sender, []) if sender is not None else []
        start = self._passed.get(sender, 0)
        self._passed[sender] = len(messages)
        lines = []
        for message in messages[start:]:
            content = message.get("content")
            if message.get("role") == "assistant" or not content:
                continue  # its own earlier replies, already in its memory
            speaker = message.get("name") or getattr(sender, "name", "user")
            lines.append(f"{speaker}: {content}")
        if not lines:
            return True, self._default_auto_reply or None
        provider = self.provider_factory() if self.provider_factory else None
        running = self.memgpt.open_agent(self.agent_ref, options=self.options, provider=provider)
        events = list(running.step("\n".join(lines)))
        reply = pretty_concat(events, show_inner_thoughts=self.show_inner_thoughts,
                              show_function_outputs=self.show_function_outputs)
        return True, reply or self._default_auto_reply or None

    # --- data sources, as MemGPT's integration offered them ---------------------------------
    def load(self, source: str, type: str = "directory", **kwargs: Any) -> SourceInfo:
        """Load data into a source (type: directory, file(s), webpage(s), jsonl); kwargs as the API's loaders."""
        embedding = self.memgpt.get_agent(self.agent_ref).embedding
        if type == "directory":
            self.memgpt.load_directory(source, kwargs.pop("input_dir", None) or kwargs.pop("path"),
                                       recursive=kwargs.pop("recursive", True), extensions=kwargs.pop("extensions", None),
                                       embedding=embedding)
        elif type in ("file", "files"):
            paths = kwargs.pop("input_files", None) or kwargs.pop("paths", None) or [kwargs.pop("path")]
            self.memgpt.load_files(source, [Path(p) for p in paths], embedding=embedding)
        elif type in ("webpage", "webpages"):
            self.memgpt.load_webpages(source, kwargs.pop("urls"), embedding=embedding)
        else:
            raise ValueError(f"Unknown data type {type!r}: use directory, file, webpage.")
        return next(s for s in self.memgpt.list_sources() if s.name == source)

    def attach(self, source: str) -> SourceInfo:
        return self.memgpt.attach(self.agent_ref, source)

    def load_and_attach(self, source: str, type: str = "directory", **kwargs: Any) -> SourceInfo:
        self.load(source, type, **kwargs)
        return self.attach(source)


def llm_from_autogen(llm_config: dict[str, Any] | None) -> tuple[LLMConfig | None, str | None]:
    """(our model settings, the key that came with them) from an AutoGen `llm_config`'s first config."""
    if not llm_config:
        return None, None
    configs = llm_config.get("config_list") or [llm_config]
    c = configs[0]
    url = c.get("base_url") or c.get("api_base") or c.get("model_endpoint")
    kind = c.get("model_endpoint_type")
    if kind is None:
        api_type = (c.get("api_type") or "openai").lower()
        if api_type == "azure":
            kind = "azure"
        elif not url or normalize_url(url) == normalize_url(OPENAI_URL):
            kind = "openai"
        else:
            kind = "openai-compatible"
    llm = LLMConfig(endpoint_type=kind, model=c.get("model") or "gpt-4o-mini", endpoint=url or None,
                    context_window=c.get("context_window"), wrapper=c.get("model_wrapper"))
    return llm, c.get("api_key")


def create_memgpt_autogen_agent_from_config(
    name: str, system_message: str | None = None, is_termination_msg: Callable | None = None,
    human_input_mode: str = "NEVER", max_consecutive_auto_reply: int | None = None,
    llm_config: dict[str, Any] | None = None, interface_kwargs: dict[str, Any] | None = None,
    default_auto_reply: str = "", skip_verify: bool = False, *, home: str | Path | None = None,
    memgpt: MemGPT | None = None, preset: str | None = None, persona: str | None = None,
    human: str | None = None, embedding: EmbeddingConfig | None = None,
) -> MemGPTAgent:
    """An AutoGen agent backed by the MemGPT agent `name`: created on the first run, found again later.

    `system_message`, when given, becomes the agent's persona text (its own
    words about who it is); `llm_config` is AutoGen's (its key is used for its
    own base URL only); `interface_kwargs` takes `show_inner_thoughts` and
    `show_function_outputs`.
    """
    memgpt = memgpt or MemGPT(home)
    llm, key = llm_from_autogen(llm_config)
    try:
        info = memgpt.get_agent(name)
        if llm is not None and dataclasses.asdict(llm) != dataclasses.asdict(info.llm):
            info = memgpt.update_agent(info.id, llm=llm)
    except NotFound:
        info = memgpt.create_agent(name, preset=preset, persona=persona, human=human, llm=llm, embedding=embedding)
        if system_message:
            memgpt.update_core_memory(info.id, "persona", system_message, cause="AutoGen system message")
    factory = (lambda: make_provider(info.llm, api_key=key, public_only=memgpt.runtime.public_only)) if key else None
    interface = interface_kwargs or {}
    return MemGPTAgent(name, memgpt, info.id, provider_factory=factory,
                       show_inner_thoughts=interface.get("show_inner_thoughts", True),
                       show_function_outputs=interface.get("show_function_outputs", False),
                       skip_verify=skip_verify, is_termination_msg=is_termination_msg,
                       human_input_mode=human_input_mode, max_consecutive_auto_reply=max_consecutive_auto_reply,
                       default_auto_reply=default_auto_reply)


def create_autogen_memgpt_agent(autogen_name: str, preset: str | None = None, model: str | None = None,
                                persona_description: str | None = None, user_description: str | None = None,
                                interface_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> MemGPTAgent:
    """MemGPT's other constructor: persona and user texts given directly, the model by name."""
    llm_config = kwargs.pop("llm_config", None) or ({"config_list": [{"model": model}]} if model else None)
    agent = create_memgpt_autogen_agent_from_config(autogen_name, system_message=persona_description,
                                                    llm_config=llm_config, interface_kwargs=interface_kwargs,
                                                    preset=preset, **kwargs)
    if user_description:
        agent.memgpt.update_core_memory(agent.agent_ref, "human", user_description, cause="AutoGen user description")
    return agent
