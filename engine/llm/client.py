"""Building the `openai` client: the only place in the engine that does.

OpenAI, Azure OpenAI and every OpenAI-compatible server (Ollama, llama.cpp,
vLLM, LM Studio...) are reached through the same client with a different
`base_url`; local servers usually ignore the key, but the client needs one.
"""

from __future__ import annotations

import os

import openai

from engine import config as config_mod
from engine.errors import ConfigError

DEFAULT_TIMEOUT = 60.0
AZURE_API_VERSION = "2024-10-21"


def make_client(
    endpoint_type: str,
    endpoint: str | None = None,
    *,
    api_key: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = 0,
) -> openai.OpenAI:
    """A configured client. Retries are ours (with events), so the client's are off by default."""
    key = api_key or config_mod.api_key(endpoint_type)
    if endpoint_type == "azure":
        if not endpoint:
            raise ConfigError("Azure OpenAI needs its endpoint URL (https://<resource>.openai.azure.com).")
        if not key:
            raise ConfigError("Azure OpenAI needs an API key: set AZURE_OPENAI_API_KEY.")
        return openai.AzureOpenAI(
            azure_endpoint=endpoint,
            api_key=key,
            api_version=os.environ.get("AZURE_OPENAI_API_VERSION", AZURE_API_VERSION),
            timeout=timeout,
            max_retries=max_retries,
        )
    if endpoint_type == "openai":
        if not key:
            raise ConfigError("OpenAI needs an API key: set OPENAI_API_KEY.")
        return openai.OpenAI(api_key=key, base_url=endpoint or None, timeout=timeout, max_retries=max_retries)
    if endpoint_type in ("openai-compatible", "completions"):
        if not endpoint:
            raise ConfigError(f"An {endpoint_type} endpoint needs a base URL (for example http://localhost:8080/v1).")
        return openai.OpenAI(
            api_key=key or "not-needed", base_url=endpoint, timeout=timeout, max_retries=max_retries
        )
    raise ConfigError(f"Endpoint type {endpoint_type!r} is not reached through the openai client.")
