"""The three kinds of MemGPT memory, as narrow handles tools can be given.

- `CoreMemory`: named text blocks always rendered into the system message;
  every edit is recorded (who, when, why, old, new) and can be reverted.
- `RecallMemory`: every message ever exchanged, searched by text or date.
- `ArchivalMemory`: embedded passages, searched by vector and keyword together.

Search results are paged PAGE_SIZE at a time and formatted for the model as
"Showing N of TOTAL results (page P/LAST): ..." with pages counted from 0.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any

from engine import recall_index, retrieval
from engine.chunking import chunk_text
from engine.embeddings import Embedder
from engine.errors import EditConflict, EmbeddingMismatch, InvalidName, MemoryLimitExceeded, NotFound, ToolError
from engine.store import Store
from engine.store import agents as agents_store
from engine.store import blocks as blocks_store
from engine.store import messages as messages_store
from engine.store import passages as passages_store

PAGE_SIZE = 5
DEFAULT_BLOCK_LIMIT = 2000
RESULT_TEXT_CHARS = 500  # one search hit shown to the model; the full text stays in the store
HYBRID_POOL = 50  # nearest vectors and best keyword matches fused per archival search
VECTOR_BUCKET = 10  # vector-only searches ask for neighbours in buckets of two pages
HYBRID_OVERSAMPLE = 2  # fusion tolerates a rougher vector pool than a vector-only ranking
# A hybrid search reads every passage (or message) holding a query word held by at most this many, beside
# the query's embedding; the coverage reward then tests its candidates against those, not the index.
TERM_ROWS = 5000
MAX_RESULTS = 100  # results a caller may ask for at once (k)
NO_RESULTS = "No results found."
DATE_FORMAT_HELP = "Dates must be written YYYY-MM-DD, for example 2024-03-09."


def _clip(text: str, limit: int = RESULT_TEXT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_page(page: int | None) -> int:
    page = 0 if page is None else page
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise ToolError("page must be a whole number, 0 or more (0 is the first page).")
    return page


def _check_k(k: int | None) -> int:
    k = PAGE_SIZE if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_RESULTS:
        raise ToolError(f"k (results a page) must be a whole number from 1 to {MAX_RESULTS}.")
    return k


def _page_bounds(page: int | None, total: int, size: int = PAGE_SIZE) -> tuple[int, int]:
    """(page, last page) with pages of `size` counted from 0; a page past the end is a model error."""
    page = _check_page(page)
    last = max(0, math.ceil(total / size) - 1)
    if total and page > last:
        raise ToolError(f"There are only {last + 1} pages of results (0 to {last}); page {page} does not exist.")
    return page, last


def format_page(lines: list[str], total: int, page: int, last: int, size: int = PAGE_SIZE) -> str:
    if not total:
        return NO_RESULTS
    body = "\n".join(f"{i}. {line}" for i, line in enumerate(lines, page * size + 1))
    return f"Showing {len(lines)} of {total} results (page {page}/{last}):\n{body}"


def _when(timestamp: str) -> str:
    return timestamp[:16].replace("T", " ") + " UTC"


def _range(start: dt.date | None, end: dt.date | None) -> tuple[str | None, str | None]:
    """Inclusive dates as the [since, until) strings stored times compare against."""
    if start is not None and end is not None and end < start:
        raise ToolError(f"end_date {end} is before start_date {start}.")
    since = start.isoformat() if start is not None else None
    until = (end + dt.timedelta(days=1)).isoformat() if end is not None else None
    return since, until


# --- core memory -------------------------------------------------------------------------

# A label becomes a tag in the system prompt (<label characters="...">) and a word the model
# types into core_memory_append, so it is short plain ASCII: lowercase letters, digits and
# underscores, starting with a letter. Typed capitals are lowered, so "Notes" and "notes" are
# one block; lookups ignore case when no label matches exactly.
BLOCK_LABEL = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_BLOCKS = 16  # every block is in every prompt
MAX_BLOCK_LIMIT = 100_000
# Not removable: the system prompts speak of <persona> and <human>, the memory tools' docstrings
# name them as examples, and new agents, templates and the AutoGen adapter write into them.
PROTECTED_BLOCKS = ("persona", "human")


def check_block_label(label: object) -> str:
    """The label as it will be stored (stripped, lowercased), or InvalidName saying what is wrong."""
    if not isinstance(label, str) or not label.strip():
        raise InvalidName("A block needs a label, for example notes or projects.")
    text = label.strip().lower()
    if not BLOCK_LABEL.fullmatch(text):
        shown = text[:40] + ("…" if len(text) > 40 else "")
        raise InvalidName(f"Bad block label {shown!r}: use 1-40 letters a-z, digits or underscores, "
                          "starting with a letter.")
    return text


def check_block_limit(limit: object) -> int:
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BLOCK_LIMIT:
        raise MemoryLimitExceeded(f"A block's limit is a whole number of characters from 1 to {MAX_BLOCK_LIMIT:,}.")
    return limit



class CoreMemory:
    """An agent's core memory blocks (persona, human, and any others)."""

    def __init__(self, store: Store, agent_id: int):
        self._store = store
        self.agent_id = agent_id

    def blocks(self) -> list[blocks_store.Block]:
        return blocks_store.list_blocks(self._store, self.agent_id)

    def get(self, label: str) -> blocks_store.Block:
        """The block of that label; letter case aside when no block has it exactly (the model writes "Human")."""
        try:
            return blocks_store.get(self._store, self.agent_id, label)
        except NotFound:
            blocks = self.blocks()
            same = [b for b in blocks if isinstance(label, str) and b.label.lower() == label.lower()]
            if len(same) == 1:
                return same[0]
            labels = ", ".join(b.label for b in blocks) or "none"
            shown = label[:60] if isinstance(label, str) else label
            raise NotFound(f"There is no core memory block named {shown!r} (blocks: {labels}).") from None

    def add_block(
        self, label: str, value: str = "", limit: int = DEFAULT_BLOCK_LIMIT, actor: str = "user"
    ) -> blocks_store.Block:
        """A new block at the end of core memory (a removed block of that label comes back, with its history)."""
        label = check_block_label(label)
        live = self.blocks()
        if any(b.label.lower() == label for b in live):
            raise InvalidName(f"A block named {label!r} already exists.")
        if len(live) >= MAX_BLOCKS:
            raise InvalidName(f"An agent has at most {MAX_BLOCKS} core memory blocks; remove one first.")
        limit = check_block_limit(limit)
        if not isinstance(value, str):
            raise MemoryLimitExceeded("A block's text must be text.")
        if len(value) > limit:
            raise MemoryLimitExceeded(f"Block {label!r} would hold {len(value)} characters; its limit is {limit}.")
        cause = "added again" if label in blocks_store.removed_labels(self._store, self.agent_id) else "created"
        return blocks_store.add(self._store, self.agent_id, label, value, limit, actor, cause)

    def remove_block(self, label: str, *, actor: str = "user") -> None:
        """Take a block out of core memory; its history stays, ending with the removal."""
        with self._store.atomic():
            blocks_store.remove(self._store, self.removable(label), actor, "block removed")

    def removable(self, label: str) -> blocks_store.Block:
        """The block `remove_block` would take out; raises what it would raise (no such block, or a protected one)."""
        block = self.get(label)
        if block.label.lower() in PROTECTED_BLOCKS:
            raise InvalidName(f"The {block.label!r} block cannot be removed: the system prompt and the "
                              "memory tools rely on it. Empty it or shorten it instead.")
        return block

    def set(self, label: str, value: str, *, actor: str = "user", cause: str = "edited",
            expected: str | None = None) -> blocks_store.Block:
        """Replace a block's whole value (refused if over the block's limit).

        `expected`: the value the new text was written from (what an editor showed).
        If the block holds something else by now (the agent edited it meanwhile),
        nothing is written and EditConflict says so, instead of silently undoing that edit.
        """
        def replaced(block: blocks_store.Block) -> str:
            if expected is not None and block.value != expected:
                raise EditConflict(
                    f"Block {label!r} changed after you started editing it (it was edited by "
                    f"{self._last_actor(label)}); your text was not saved. Reload the block and apply your change again."
                )
            return value

        return self._edit(label, replaced, actor=actor, cause=cause)

    def _last_actor(self, label: str) -> str:
        edits = self.history(label)
        return {"agent": "the agent", "user": "someone else", "system": "the system"}.get(
            edits[0].actor if edits else "", "someone else")

    def append(self, label: str, content: str, *, actor: str = "agent") -> blocks_store.Block:
        return self._edit(label, lambda block: f"{block.value}\n{content}" if block.value else content,
                          actor=actor, cause="core_memory_append")

    def replace(self, label: str, old_content: str, new_content: str, *, actor: str = "agent") -> blocks_store.Block:
        def replaced(block: blocks_store.Block) -> str:
            if not old_content:
                raise ToolError("old_content is empty; give the exact text to replace (use core_memory_append to add).")
            if old_content not in block.value:
                raise ToolError(f"The text to replace was not found in block {label!r}; it must match exactly.")
            return block.value.replace(old_content, new_content)

        return self._edit(label, replaced, actor=actor, cause="core_memory_replace")

    def _edit(self, label: str, new_value, *, actor: str, cause: str) -> blocks_store.Block:
        """Read the block, compute its new value and write it in one write transaction.

        BEGIN IMMEDIATE takes the write lock before the read, so an append and a
        save from the Memory tab (or another process) cannot both start from the
        same old value and lose one of the two.
        """
        with self._store.atomic():
            block = self.get(label)
            value = new_value(block)
            if len(value) > block.limit:
                raise MemoryLimitExceeded(
                    f"Edit refused: block {label!r} would hold {len(value)} of {block.limit} characters. "
                    "Shorten it, or move details to archival memory."
                )
            if value == block.value:
                return block
            return blocks_store.set_value(self._store, block, value, actor, cause)

    def set_limit(self, label: str, limit: int, *, actor: str = "user") -> blocks_store.Block:
        """A new character limit; one below what the block holds is refused (nothing is cut without asking)."""
        limit = check_block_limit(limit)
        with self._store.atomic():
            block = self.get(label)
            if limit < len(block.value):
                raise MemoryLimitExceeded(
                    f"Block {block.label!r} holds {len(block.value)} characters, more than a limit of {limit}: "
                    "shorten it first (or choose a limit of at least its length).")
            if limit == block.limit:
                return block
            return blocks_store.set_limit(self._store, block, limit, actor)

    def history(self, label: str | None = None) -> list[blocks_store.Edit]:
        return blocks_store.history(self._store, self.agent_id, label)

    def revert(self, edit_id: int, *, actor: str = "user") -> blocks_store.Block:
        """Put a block back to the value it had before edit `edit_id` (itself recorded as an edit)."""
        edit = blocks_store.get_edit(self._store, self.agent_id, edit_id)
        if edit.label in blocks_store.removed_labels(self._store, self.agent_id):
            raise NotFound(f"Block {edit.label!r} was removed; add a block named {edit.label} again to "
                           "bring it back, then revert.")
        return self.set(edit.label, edit.old_value, actor=actor, cause=f"revert of edit #{edit_id}")

    def last_modified(self) -> str | None:
        return blocks_store.last_modified(self._store, self.agent_id)

    def render_blocks(self) -> str:
        parts = []
        for block in self.blocks():
            parts.append(
                f'<{block.label} characters="{len(block.value)}/{block.limit}">\n{block.value}\n</{block.label}>'
            )
        return "\n".join(parts)


def render_memory_section(core: CoreMemory, recall_count: int, archival_count: int) -> str:
    """The memory part of the system message: counts, last edit time, the blocks."""
    stamp = core.last_modified()
    when = _when(stamp) if stamp else "never"
    return (
        f"### Memory (last modified: {when})\n"
        f"Recall memory holds {recall_count} earlier messages; search them with "
        "conversation_search or conversation_search_date.\n"
        f"Archival memory holds {archival_count} passages; search them with archival_memory_search.\n"
        "Core memory, always in view and limited in size, follows:\n" + core.render_blocks()
    )


# --- recall memory -----------------------------------------------------------------------


def _message_line(message: messages_store.Message) -> str:
    return f"[{_when(message.created_at)}] {message.role}: {_clip(message.text or message.content or '')}"


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(value: str, field: str) -> dt.date:
    """A YYYY-MM-DD date, or a ToolError telling the model the expected format."""
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    shown = value[:40] if isinstance(value, str) else value
    raise ToolError(f"{field} {shown!r} is not a valid date. {DATE_FORMAT_HELP}")


class RecallMemory:
    """Every message of one agent, searchable by words, by meaning and by date.

    With an embedder, search is hybrid like archival search (engine/retrieval.py) over
    the messages people and the agent wrote: BM25 over content words, the nearest
    message vectors (written in the background by engine/recall_index.py; the newest
    few pending ones are embedded before a search), the message after a match, and
    named times. Without one, search is full text only.
    """

    def __init__(self, store: Store, agent_id: int, embedder: Embedder | None = None):
        self._store = store
        self.agent_id = agent_id
        self._embedder = embedder

    def count(self) -> int:
        return messages_store.count(self._store, self.agent_id)

    def search(self, query: str, page: int | None = 0, *, start_date: str | None = None,
               end_date: str | None = None, k: int = PAGE_SIZE) -> str:
        """One page of messages for `query`, as the model sees it; dates (YYYY-MM-DD, inclusive) narrow it."""
        start = parse_date(start_date, "start_date") if start_date else None
        end = parse_date(end_date, "end_date") if end_date else None
        found, total, page, last = self.find(query, page, start=start, end=end, k=k)
        return format_page([_message_line(m) for m in found], total, page, last, k)

    def find(self, query: str, page: int | None = 0, *, start: dt.date | None = None, end: dt.date | None = None,
             k: int = PAGE_SIZE, mode: str = "hybrid") -> tuple[list[messages_store.Message], int, int, int]:
        """(messages, total, page, last page) for `query`; mode "hybrid" or "keyword" (full text only).

        An empty query lists the messages in order (in the date range, when given).
        Keyword search with no dates keeps full-text semantics: messages holding
        every word first, any word when none does; total is the number of matches.
        """
        k = _check_k(k)
        page = _check_page(page)
        query = query if isinstance(query, str) else ""
        if mode not in ("hybrid", "keyword"):
            raise ValueError(f"unknown search mode {mode!r}")
        since, until = _range(start, end)
        store = self._store
        if not query.strip() and (start or end):
            lo, hi = since or "0000", until or "9999"
            found, total = messages_store.search_date(store, self.agent_id, lo, hi, page * k, k)
        elif not query.strip() or (since is None and until is None and (mode == "keyword" or self._embedder is None)):
            found, total = messages_store.search_text(store, self.agent_id, query, page * k, k)
        else:
            return self._hybrid(query, page, k, since, until, mode)
        page, last = _page_bounds(page, total, k)
        return found, total, page, last

    def _hybrid(self, query: str, page: int, k: int, since: str | None, until: str | None, mode: str):
        store, need = self._store, (page + 1) * k
        pool = max(HYBRID_POOL, math.ceil(need / HYBRID_POOL) * HYBRID_POOL)
        similar: list[tuple[int, float]] = []
        fetched: dict[int, messages_store.Message] = {}
        words = retrieval.keyword_terms(query)

        def keyword_side():
            # Beside the query's embedding, as archival search does: the matches, and the words' index
            # counts and rows the coverage reward reads.
            scored = messages_store.keyword_scored(store, self.agent_id, words, pool, since=since, until=until)
            counts = messages_store.term_counts(store, words, rows_up_to=TERM_ROWS) if len(words) > 1 else None
            return scored, counts

        keyword_search = retrieval.alongside(keyword_side)
        if self._embedder is not None and mode == "hybrid":
            recall_index.embed_pending(store, self.agent_id, self._embedder, recall_index.SYNC_LIMIT)
            vector = self._embedder.embed([query])[0]
            nearest = messages_store.vector_search(store, self.agent_id, self._embedder.name, vector, pool,
                                                   since=since, until=until)
            fetched = messages_store.fetch(store, [mid for mid, _ in nearest])
            similar = retrieval.penalized(nearest, {mid: m.text for mid, m in fetched.items()})
        keyword, counts = keyword_search.result()

        def fetch_all(ids: list[int]) -> dict[int, messages_store.Message]:
            # Read once: the ranking reads every candidate's text, and later its time, from here.
            fetched.update(messages_store.fetch(store, [mid for mid in ids if mid not in fetched]))
            return {mid: fetched[mid] for mid in ids if mid in fetched}

        def times(ids: list[int]) -> dict[int, str]:
            return {mid: m.created_at for mid, m in fetch_all(ids).items()}

        ranking = retrieval.rank_hybrid(
            similar, keyword, keyword_complete=len(keyword) < pool,
            neighbours=lambda ids: messages_store.neighbours(store, self.agent_id, ids), query=query, times=times,
            terms=lambda ids, words: retrieval.TermStats(*messages_store.term_stats(store, ids, words, counts)),
            texts=lambda ids: {mid: m.text for mid, m in fetch_all(ids).items()},
        )
        times([c.id for c in ranking])
        ranked = [fetched[c.id] for c in ranking if c.id in fetched
                  and (since is None or fetched[c.id].created_at >= since)
                  and (until is None or fetched[c.id].created_at < until)]
        total = len(ranked)
        page, last = _page_bounds(page, total, k)
        return ranked[page * k : need], total, page, last

    def search_date(self, start_date: str, end_date: str, page: int | None = 0) -> str:
        start = parse_date(start_date, "start_date")
        end = parse_date(end_date, "end_date")
        if end < start:
            raise ToolError(f"end_date {end} is before start_date {start}.")
        lo, hi = start.isoformat(), (end + dt.timedelta(days=1)).isoformat()
        offset = _check_page(page) * PAGE_SIZE
        found, total = messages_store.search_date(self._store, self.agent_id, lo, hi, offset, PAGE_SIZE)
        page, last = _page_bounds(page, total)
        return format_page([_message_line(m) for m in found], total, page, last)


# --- archival memory ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SearchResults:
    hits: list[passages_store.Hit]
    total: int
    page: int
    last: int
    size: int = PAGE_SIZE

    def format(self) -> str:
        lines = []
        for hit in self.hits:
            where = f" (from {hit.passage.source_name})" if hit.passage.source_name else ""
            lines.append(f"[#{hit.passage.id} {hit.passage.created_at[:10]}{where}] {_clip(hit.passage.text)}")
        return format_page(lines, self.total, self.page, self.last, self.size)


class ArchivalMemory:
    """One agent's archival memory: its own passages plus those of attached sources."""

    def __init__(self, store: Store, agent_id: int, embedder: Embedder):
        self._store = store
        self.agent_id = agent_id
        self._embedder = embedder
        agent = agents_store.get(store, agent_id)
        if (embedder.name, embedder.dimension) != (agent.embedding_model, agent.embedding_dim):
            raise EmbeddingMismatch(
                f"Agent {agent.name!r} stores {agent.embedding_model} vectors ({agent.embedding_dim}-d); "
                f"the embedder given is {embedder.name} ({embedder.dimension}-d). Dimensions are never mixed."
            )
        self.dimension = agent.embedding_dim

    def count(self) -> int:
        return passages_store.count_for_agent(self._store, self.agent_id)

    def insert(self, content: str, metadata: dict | None = None, *, at: str | None = None) -> list[int]:
        """Chunk `content` (about 300 tokens a chunk), embed and store it; return the new ids.

        `at`: when it was said or written (ISO 8601 UTC), default now; time filters use it.
        """
        return self.insert_many([(content, metadata, at)])

    def insert_many(self, items: list[tuple[str, dict | None, str | None]]) -> list[int]:
        """Store several (content, metadata, at) texts in one embedding batch and one transaction."""
        return self.store_embedded(self.embed_many(items))

    def embed_many(self, items: list[tuple[str, dict | None, str | None]]) -> list[tuple[str, Any, dict, str | None]]:
        """The chunks of (content, metadata, at) texts with their vectors, ready for `store_embedded`.

        Apart from storing so that a face can embed a long text without holding the agent
        (embedding is the slow part), and store under the agent's lock.
        """
        chunks: list[tuple[str, dict, str | None]] = []
        for content, metadata, at in items:
            if not isinstance(content, str) or not content.strip():
                raise ToolError("content is empty; there is nothing to store.")
            chunks.extend((chunk, metadata or {}, at) for chunk in chunk_text(content))
        if not chunks:
            return []
        vectors = self._embedder.embed([c[0] for c in chunks])
        return [(text, vector, meta, at) for (text, meta, at), vector in zip(chunks, vectors)]

    def store_embedded(self, rows: list[tuple[str, Any, dict, str | None]]) -> list[int]:
        """Store what `embed_many` made, in one transaction; the new passage ids."""
        if not rows:
            return []
        return passages_store.insert_many(
            self._store, rows, embedding_model=self._embedder.name, embedding_dim=self._embedder.dimension,
            agent_id=self.agent_id,
        )

    def _embed_query(self, query: str):
        return self._embedder.embed([query])[0]

    def search(self, query: str, page: int | None = 0, mode: str = "hybrid", *, k: int = PAGE_SIZE,
               start: dt.date | None = None, end: dt.date | None = None) -> SearchResults:
        """Passages for `query`, `k` a page (PAGE_SIZE by default, what the agent sees).

        hybrid: the nearest vectors and the best BM25 matches of the query's content
        words, HYBRID_POOL (or enough for the page) of each, ranked by engine/retrieval.py;
        total is the size of that ranked pool.
        vector: passages ranked by cosine distance; total is how many there are.
        keyword: passages holding any content word, by BM25; total is how many hold one.
        `start`/`end` (dates, inclusive) keep passages said or stored in that range.
        An empty query lists passages in the order they were stored.
        """
        k = _check_k(k)
        page = _check_page(page)
        query = query if isinstance(query, str) else ""
        since, until = _range(start, end)
        store = self._store
        if not query.strip():
            total = self.count() if (since is None and until is None) else passages_store.count_in_range(
                store, self.agent_id, since, until)
            page, last = _page_bounds(page, total, k)
            listed = passages_store.list_for_agent(store, self.agent_id, page * k, k, since=since, until=until)
            return SearchResults([passages_store.Hit(p, 0.0) for p in listed], total, page, last, k)
        need = (page + 1) * k
        if mode == "keyword":
            words = retrieval.keyword_terms(query)
            total = passages_store.keyword_count(store, self.agent_id, words, since=since, until=until)
            page, last = _page_bounds(page, total, k)
            ids = passages_store.keyword_search(store, self.agent_id, query, need, words=words, any_word=True,
                                                since=since, until=until)[page * k :]
            fetched = passages_store.fetch(store, ids)
            hits = [passages_store.Hit(fetched[pid], 0.0, keyword_rank=rank)
                    for rank, pid in enumerate(ids, page * k + 1) if pid in fetched]
            return SearchResults(hits, total, page, last, k)
        if mode == "vector":
            total = self.count() if (since is None and until is None) else passages_store.count_in_range(
                store, self.agent_id, since, until)
            page, last = _page_bounds(page, total, k)
            # Ask for whole buckets of neighbours, so consecutive pages come from the same
            # KNN call size and passages at equal distance cannot shift between pages.
            bucket = math.ceil(need / VECTOR_BUCKET) * VECTOR_BUCKET
            window = self._nearest(query, bucket, since, until)[page * k : need]
            fetched = passages_store.fetch(store, [pid for pid, _ in window])
            hits = [
                passages_store.Hit(fetched[pid], passages_store.similarity(d), vector_rank=rank, distance=d)
                for rank, (pid, d) in enumerate(window, page * k + 1)
                if pid in fetched
            ]
            return SearchResults(hits, total, page, last, k)
        if mode != "hybrid":
            raise ValueError(f"unknown search mode {mode!r}")
        pool = max(HYBRID_POOL, math.ceil(need / HYBRID_POOL) * HYBRID_POOL)
        words = retrieval.keyword_terms(query)

        def keyword_side():
            # Everything that needs only the keyword list runs beside the query's embedding (the longest
            # part of a search): the matches, their rows, the words' index counts and the rows two steps
            # around each match, which the neighbour ranking reads. What is left after the embedding is
            # the vector half alone.
            scored = passages_store.keyword_scored(store, self.agent_id, query, pool, any_word=True, words=words,
                                                   since=since, until=until)
            ids = [pid for pid, _ in scored]
            rows = passages_store.fetch(store, ids)
            counts = passages_store.term_counts(store, words, rows_up_to=TERM_ROWS) if len(words) > 1 else None
            known: dict[int, tuple | None] = {}  # the neighbour lookups' rows, read once per search
            passages_store.neighbours(store, ids, known, reach=2)  # both rings the ranking spreads over
            return scored, rows, counts, known

        keyword_search = retrieval.alongside(keyword_side)
        nearest = self._nearest(query, pool, since, until, oversample=HYBRID_OVERSAMPLE)
        keyword, fetched, counts, owners = keyword_search.result()
        fetched.update(passages_store.fetch(store, [pid for pid, _ in nearest if pid not in fetched]))
        passages_store.neighbours(store, [pid for pid, _ in nearest], owners, reach=2)  # one query for both rings
        similar = retrieval.penalized(nearest, {pid: p.text for pid, p in fetched.items()})

        said = {pid: p.created_at for pid, p in fetched.items()}

        def times(ids: list[int]) -> dict[int, str]:
            # Neighbours that joined need only their time here; whole rows are read for the page alone.
            said.update(passages_store.created_times(store, [pid for pid in ids if pid not in said]))
            return {pid: said[pid] for pid in ids if pid in said}

        ranking = retrieval.rank_hybrid(
            similar, [(pid, s) for pid, s in keyword if pid in fetched], keyword_complete=len(keyword) < pool,
            neighbours=lambda ids: passages_store.neighbours(store, ids, owners), query=query, times=times,
            terms=lambda ids, words: retrieval.TermStats(*passages_store.term_stats(store, ids, words, counts)),
            texts=lambda ids: {pid: fetched[pid].text for pid in ids if pid in fetched},  # all candidates are fetched
        )
        if since is None and until is None:
            # Every candidate was fetched or found as a neighbour (so it exists): no times to read.
            ranked = [c for c in ranking if c.id in said or owners.get(c.id) is not None]
        else:
            times([c.id for c in ranking])  # neighbours that joined the ranking
            ranked = [c for c in ranking if c.id in said and (since is None or said[c.id] >= since)
                      and (until is None or said[c.id] < until)]
        total = len(ranked)
        page, last = _page_bounds(page, total, k)
        shown = ranked[page * k : need]
        fetched.update(passages_store.fetch(store, [c.id for c in shown if c.id not in fetched]))
        hits = [
            passages_store.Hit(fetched[c.id], c.score, c.vector_rank, c.keyword_rank, c.distance)
            for c in shown if c.id in fetched  # a passage deleted since it was ranked is left out
        ]
        return SearchResults(hits, total, page, last, k)

    def _nearest(self, query: str, k: int, since: str | None, until: str | None,
                 oversample: int = passages_store.OVERSAMPLE) -> list[tuple[int, float]]:
        vector = self._embed_query(query)
        if (since is None and until is None):
            owners = passages_store.owners_for_agent(self._store, self.agent_id)
            return passages_store.vector_search(self._store, self.dimension, owners, vector, k, oversample=oversample)
        return passages_store.vector_search_in_range(self._store, self.agent_id, vector, k, since, until)

    def delete(self, passage_id: int) -> None:
        passages_store.delete(self._store, passage_id, agent_id=self.agent_id)

    def list(self, offset: int = 0, limit: int = 50) -> list[passages_store.Passage]:
        return passages_store.list_for_agent(self._store, self.agent_id, offset, limit)
