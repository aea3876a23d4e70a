"""Choosing a provider for an agent's model settings (a small registry by endpoint type).

Providers over an `openai` client are kept per process like the client itself
(engine/llm/cache.py): the key holds the shared client, so a changed key or URL,
which gives another client, gives another provider too. Keeping them also keeps
what a provider learned about its server (one that refuses `tools`).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Any

from engine.config import LLMConfig
from engine.errors import ConfigError
from engine.llm.cache import BoundedCache
from engine.llm.client import CACHE_SIZE, make_client
from engine.llm.models import context_window
from engine.llm.public_only import PublicOnly

_providers: BoundedCache[Any] = BoundedCache(CACHE_SIZE)
LOCAL_SERVER_TIMEOUT = 300.0  # CPU servers can take minutes over a first long prompt


def on_this_machine(url: str | None) -> bool:
    """Whether `url` names this machine (localhost, a loopback address): a local model server."""
    host = (urllib.parse.urlsplit(url or "").hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_provider(config: LLMConfig, *, timeout: float = 60.0, api_key: str | None = None,
                  public_only: PublicOnly | None = None):
    """The provider for `config`; a clear ConfigError when it cannot be built.

    `api_key` is one the caller brought for `config.endpoint` itself (the Config
    tab's test); otherwise only a key bound to that endpoint is sent.
    `public_only`: a public app's connection rule (engine/llm/public_only.py).
    """
    window = context_window(config.model, config.context_window)
    if config.endpoint_type in ("openai", "azure", "openai-compatible"):
        from engine.llm.openai_provider import OpenAIProvider

        if config.endpoint_type == "openai-compatible" and on_this_machine(config.endpoint):
            timeout = max(timeout, LOCAL_SERVER_TIMEOUT)  # llama.cpp, Ollama, LM Studio... on this machine
        client = make_client(config.endpoint_type, config.endpoint, api_key=api_key, timeout=timeout,
                             public_only=public_only)
        return _providers.get_or_build(("openai", client, config.model, window),
                                       lambda: OpenAIProvider(client, config.model, window))
    if config.endpoint_type == "local":
        from engine.llm.local import LocalProvider

        # `endpoint` names another GGUF file; empty means the shipped SmolLM2.
        return LocalProvider(config.endpoint or None, context_window=config.context_window)
    if config.endpoint_type == "completions":
        from engine.llm.completions_provider import CompletionsProvider

        # CPU servers can take a minute on a first long prompt; the default timeout would cut them off.
        client = make_client("completions", config.endpoint, api_key=api_key, timeout=max(timeout, LOCAL_SERVER_TIMEOUT),
                             public_only=public_only)
        wrapper = config.wrapper or "chatml"
        return _providers.get_or_build(
            ("completions", client, config.model, window, wrapper, config.grammar),
            lambda: CompletionsProvider(client, config.model, window, wrapper=wrapper, grammar=config.grammar))
    from engine.llm.backends import BACKENDS, NativeProvider

    if config.endpoint_type in BACKENDS:
        # MemGPT's local backends, each through its own endpoint (engine/llm/backends.py).
        return NativeProvider(config.endpoint_type, config.endpoint, config.model, window,
                              timeout=max(timeout, LOCAL_SERVER_TIMEOUT), wrapper=config.wrapper or "chatml",
                              grammar=config.grammar, public_only=public_only)
    raise ConfigError(f"Unknown endpoint type {config.endpoint_type!r}.")
