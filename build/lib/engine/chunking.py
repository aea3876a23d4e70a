"""Splitting long text into passages of about CHUNK_TOKENS tokens.

Chunks break at paragraph, then sentence, then word boundaries, so a passage
reads as a whole thought; only a run with no spaces at all is cut mid-word.
Pieces are tracked as spans of the original text, so a chunk is always an exact
slice of it (no whitespace invented or lost inside a chunk).
"""

from __future__ import annotations

import re

from engine import tokens

CHUNK_TOKENS = 300
_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"(?<=[.!?])\s+"), re.compile(r"\s+"))


def _spans(text: str, start: int, end: int, limit: int, level: int = 0) -> list[tuple[int, int]]:
    """Spans within text[start:end], each at most `limit` tokens, cut at the coarsest boundary possible."""
    if tokens.count(text[start:end]) <= limit:
        return [(start, end)]
    for depth in range(level, len(_BOUNDARIES)):
        cuts = [m.end() for m in _BOUNDARIES[depth].finditer(text, start, end) if start < m.start() and m.end() < end]
        if cuts:
            out: list[tuple[int, int]] = []
            for a, b in zip([start, *cuts], [*cuts, end]):
                out.extend(_spans(text, a, b, limit, depth + 1))
            return out
    # One unbroken run (a URL, base64...): cut by characters.
    step = max(1, limit * 2)
    return [(i, min(i + step, end)) for i in range(start, end, step)]


def chunk_text(text: str, max_tokens: int = CHUNK_TOKENS, overlap_tokens: int = 0) -> list[str]:
    """Chunks of at most about `max_tokens` tokens; `overlap_tokens` repeats the tail of one at the head of the next."""
    if not text.strip():
        return []
    spans = _spans(text, 0, len(text), max_tokens)
    sizes = [tokens.count(text[a:b]) for a, b in spans]
    chunks: list[str] = []
    first = 0  # index of the first span of the current chunk
    size = 0
    for i, n in enumerate(sizes):
        if i > first and size + n > max_tokens:
            chunks.append(text[spans[first][0] : spans[i - 1][1]].strip())
            first, size = _overlap_start(sizes, first, i, overlap_tokens)
        size += n
    chunks.append(text[spans[first][0] : spans[-1][1]].strip())
    return [c for c in chunks if c]


def _overlap_start(sizes: list[int], first: int, end: int, budget: int) -> tuple[int, int]:
    """Where the next chunk starts: the last spans before `end` that fit in `budget` tokens."""
    start, size = end, 0
    while start - 1 > first and size + sizes[start - 1] <= budget:
        start -= 1
        size += sizes[start]
    return start, size
