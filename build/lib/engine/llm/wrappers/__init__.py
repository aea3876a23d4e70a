"""Prompt wrappers by name: how a model without native function calling is prompted and read.

`WRAPPERS` maps every name to its class; `wrapper_names()` lists those that can
drive an agent's function calls (the Config tab and `configure` offer these);
`simple-summary` serves the function-less summarization call.
"""

from __future__ import annotations

from engine.errors import ConfigError
from engine.llm.wrappers.airoboros import Airoboros, AiroborosInnerMonologue
from engine.llm.wrappers.base import PromptWrapper
from engine.llm.wrappers.chatml import ChatML, Dolphin
from engine.llm.wrappers.summary import SimpleSummary
from engine.llm.wrappers.zephyr import Zephyr

DEFAULT_WRAPPER = "chatml"
SUMMARY_WRAPPER = "simple-summary"

WRAPPERS: dict[str, type[PromptWrapper]] = {
    cls.name: cls for cls in (Airoboros, AiroborosInnerMonologue, Dolphin, Zephyr, ChatML, SimpleSummary)
}


def wrapper_names() -> list[str]:
    """The wrappers an agent can use for its function calls."""
    return [name for name, cls in WRAPPERS.items() if cls.calls_functions]


def get_wrapper(name: str | None, **options: bool) -> PromptWrapper:
    """The wrapper called `name` (the default when empty), built with `options`."""
    name = name or DEFAULT_WRAPPER
    if name not in WRAPPERS:
        raise ConfigError(f"There is no prompt wrapper named {name!r}; choose one of {', '.join(WRAPPERS)}.")
    return WRAPPERS[name](**options)


__all__ = ["DEFAULT_WRAPPER", "SUMMARY_WRAPPER", "WRAPPERS", "PromptWrapper", "get_wrapper", "wrapper_names"]
