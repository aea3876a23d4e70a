"""Choosing a provider for an agent's model settings (a small registry by endpoint type)."""

from __future__ import annotations

from engine.config import LLMConfig
from engine.errors import ConfigError
from engine.llm.client import make_client
from engine.llm.models import context_window


def make_provider(config: LLMConfig, *, timeout: float = 60.0, api_key: str | None = None):
    """The provider for `config`; a clear ConfigError when it cannot be built.

    `api_key` is one the caller brought for `config.endpoint` itself (the Config
    tab's test); otherwise only a key bound to that endpoint is sent.
    """
    window = context_window(config.model, config.context_window)
    if config.endpoint_type in ("openai", "azure", "openai-compatible"):
        from engine.llm.openai_provider import OpenAIProvider

        client = make_client(config.endpoint_type, config.endpoint, api_key=api_key, timeout=timeout)
        return OpenAIProvider(client, config.model, window)
    if config.endpoint_type == "local":
        from engine.llm.local import LocalProvider

        # `endpoint` names another GGUF file; empty means the shipped SmolLM2.
        return LocalProvider(config.endpoint or None, context_window=config.context_window)
    if config.endpoint_type == "completions":
        from engine.llm.completions_provider import CompletionsProvider

        # CPU servers can take a minute on a first long prompt; the default timeout would cut them off.
        client = make_client("completions", config.endpoint, api_key=api_key, timeout=max(timeout, 300.0))
        return CompletionsProvider(client, config.model, window, wrapper=config.wrapper or "chatml",
                                   grammar=config.grammar)
    from engine.llm.backends import BACKENDS, NativeProvider

    if config.endpoint_type in BACKENDS:
        # MemGPT's local backends, each through its own endpoint (engine/llm/backends.py).
        return NativeProvider(config.endpoint_type, config.endpoint, config.model, window,
                              timeout=max(timeout, 300.0), wrapper=config.wrapper or "chatml", grammar=config.grammar)
    raise ConfigError(f"Unknown endpoint type {config.endpoint_type!r}.")
