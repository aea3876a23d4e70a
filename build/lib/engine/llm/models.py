"""Known context windows, for when the settings do not give one."""

from __future__ import annotations

DEFAULT_CONTEXT_WINDOW = 8192

# Longest prefix wins, so "gpt-4o-mini-2024-07-18" finds "gpt-4o-mini".
CONTEXT_WINDOWS = {
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "SmolLM2-135M-Instruct": 8_192,
}


def context_window(model: str, override: int | None = None) -> int:
    if override:
        return int(override)
    best = ""
    for prefix in CONTEXT_WINDOWS:
        if model.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return CONTEXT_WINDOWS.get(best, DEFAULT_CONTEXT_WINDOW)
