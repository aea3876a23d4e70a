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


# The names MemGPT 0.2 gave its wrappers, accepted as written in configs and on the command line.
# A "-grammar" name was MemGPT's variant for grammar-constrained servers: it also turns the grammar on.
ALIASES: dict[str, str] = {
    "airoboros-l2-70b-2.1": "airoboros",
    "airoboros-l2-70b-2.1-grammar": "airoboros",
    "airoboros-l2-70b-2.1-inner-monologue": "airoboros-inner-monologue",
    "airoboros-l2-70b-2.1-inner-monologue-grammar": "airoboros-inner-monologue",
    "dolphin-2.1-mistral-7b": "dolphin",
    "dolphin-2.1-mistral-7b-grammar": "dolphin",
    "zephyr-7B": "zephyr",
    "zephyr-7B-grammar": "zephyr",
    "chatml-grammar": "chatml",
    "chatml-noforce": "chatml",
    "chatml-noforce-grammar": "chatml",
}


def resolve(name: str | None) -> tuple[str, bool]:
    """(today's wrapper name, whether the name asks for a grammar) for a name as the user wrote it."""
    name = (name or DEFAULT_WRAPPER).strip()
    return ALIASES.get(name, name), name in ALIASES and name.endswith("-grammar")


def wrapper_names() -> list[str]:
    """The wrappers an agent can use for its function calls."""
    return [name for name, cls in WRAPPERS.items() if cls.calls_functions]


def get_wrapper(name: str | None, **options: bool) -> PromptWrapper:
    """The wrapper called `name` (the default when empty), built with `options`."""
    name, _ = resolve(name)
    if name not in WRAPPERS:
        raise ConfigError(f"There is no prompt wrapper named {name!r}; choose one of {', '.join(WRAPPERS)}.")
    return WRAPPERS[name](**options)


__all__ = ["ALIASES", "resolve", "DEFAULT_WRAPPER", "SUMMARY_WRAPPER", "WRAPPERS", "PromptWrapper", "get_wrapper", "wrapper_names"]
