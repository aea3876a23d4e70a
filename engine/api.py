"""The engine's public API: one `MemGPT` object that every face (and your program) uses.

    from engine import MemGPT

    with MemGPT(home="/tmp/memgpt-demo") as memgpt:
        memgpt.create_agent("sam")
        for event in memgpt.stream("sam", "Hello! My name is Kim."):
            print(event.kind, event)
        print(memgpt.get_core_memory("sam"))

Agents are addressed by name or id everywhere. Conversation calls return the
typed events of `engine.events` (a generator with `stream`, a list with
`user_message`). Every change to an agent made here holds the agent's lock, so
it never lands in the middle of one of its turns, and runs in one transaction.

The web app, the terminal and the WebSocket server use this module and never
the store: faces -> api -> engine internals -> store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shlex
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import agents as agents_mod
from engine.agent import Agent, AgentOptions
from engine.config import EmbeddingConfig, LLMConfig, Settings
from engine.context import Context, in_context_rows
from engine.embeddings import Embedder, make_embedder
from engine.errors import ConfigError, EditConflict, MemGPTError, NotFound
from engine.events import Event
from engine.loaders import LoadReport, ingest, read_directory, read_file, read_webpages
from engine.memory import PAGE_SIZE, ArchivalMemory, CoreMemory, RecallMemory, SearchResults, parse_date
from engine.presets import Preset, PresetLibrary
from engine.runtime import Runtime, open_runtime
from engine.store import agents as agents_store
from engine.store import blocks as blocks_store
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from engine.store.blocks import Block, Edit
from engine.store.messages import Message
from engine.transfer import ImportResult, export_agent

if TYPE_CHECKING:
    from engine.endpoints import EndpointGuard
    from engine.llm.probe import ConnectionReport

AgentRef = str | int
Progress = Callable[[int, int | None, str], None]  # (done, total if known, what)
DateLike = dt.date | str | None  # a date, or YYYY-MM-DD
DateTimeLike = dt.datetime | dt.date | str | None  # naive datetimes are taken as UTC

__all__ = ["MemGPT", "AgentInfo", "SourceInfo", "ArchivalItem", "Block", "Edit", "Message", "RecallResults",
           "SearchResults",
           "LoadReport", "ImportResult", "Context"]


@dataclasses.dataclass(frozen=True)
class ArchivalItem:
    """One text for `MemGPT.insert_archival`, with when it was said or written and what to keep with it."""

    text: str
    at: DateTimeLike = None
    metadata: dict[str, Any] | None = None


def _date(value: DateLike, field: str) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return parse_date(value, field)


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclasses.dataclass(frozen=True)
class RecallResults:
    """One page of recall search: the messages, how many there are in all, which page of how many."""

    messages: list[Message]
    total: int
    page: int
    last: int
    size: int = PAGE_SIZE


def _timestamp(value: DateTimeLike) -> str | None:
    """A time as the store writes them (ISO 8601, UTC, milliseconds), or None for "now"."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"{text[:40]!r} is not an ISO 8601 time, for example 2024-03-09T14:30:00Z.") from None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")


@dataclasses.dataclass(frozen=True)
class AgentInfo:
    """What an agent is: its name, prompts and the models it uses (never a key)."""

    id: int
    name: str
    preset: str
    persona: str | None
    human: str | None
    functions: list[str]
    llm: LLMConfig
    embedding: EmbeddingConfig
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: agents_store.AgentRow) -> AgentInfo:
        return cls(row.id, row.name, row.preset, row.persona, row.human, list(row.functions),
                   LLMConfig(**row.llm_config), EmbeddingConfig(**row.embedding_config), row.created_at,
                   row.updated_at)


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """A loaded data source: its embedder and how many passages it holds."""

    id: int
    name: str
    description: str
    embedding_model: str
    embedding_dim: int
    passages: int
    created_at: str
    agents: tuple[str, ...] = ()  # the names of the agents it is attached to


class MemGPT:
    """A client over one data home (`home`, default `$MEMGPT_HOME` or `~/.memgpt`).

    Pass `runtime=` to share an already opened one (the faces do). Close it, or use
    it as a context manager, to fold the database's write-ahead log back into the file.
    `public=True` (a face that strangers reach) checks every model and embedding
    endpoint it is asked to store: see `restrict_endpoints`.
    """

    def __init__(self, home: str | Path | None = None, *, runtime: Runtime | None = None, public: bool = False):
        self.runtime = runtime if runtime is not None else open_runtime(home)
        self._owns_runtime = runtime is None
        self._endpoint_guard: EndpointGuard | None = None
        if public:
            self.restrict_endpoints()

    def close(self) -> None:
        """Close the store (when this client opened it), folding its log into the database file."""
        if self._owns_runtime:
            self.runtime.close()

    def __enter__(self) -> MemGPT:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def library(self) -> PresetLibrary:
        """Presets, personas, humans and system prompts (shipped and the user's own)."""
        return self.runtime.library

    def preset(self, name: str) -> Preset:
        """A preset with its functions checked against the tools this home has."""
        return self.runtime.library.preset(name, self.runtime.registry)

    # ------------------------------------------------------------------ agents

    def _row(self, agent: AgentRef) -> agents_store.AgentRow:
        return agents_mod.get_agent(self.runtime.store, agent)

    def list_agents(self) -> list[AgentInfo]:
        """Every agent in the data home, oldest first."""
        return [AgentInfo.from_row(r) for r in agents_mod.list_agents(self.runtime.store)]

    def get_agent(self, agent: AgentRef) -> AgentInfo:
        """The agent by name (compared case-insensitively, Unicode-normalized) or id; NotFound otherwise."""
        return AgentInfo.from_row(self._row(agent))

    def create_agent(self, name: str | None = None, *, preset: str | None = None, persona: str | None = None,
                     human: str | None = None, llm: LLMConfig | None = None,
                     embedding: EmbeddingConfig | None = None) -> AgentInfo:
        """A new agent; what is not given comes from the home's defaults (config.yaml, then the environment)."""
        name = name if name is not None else self._free_name()
        rt = self.runtime
        self._check_endpoints(llm or rt.settings.llm, embedding or rt.settings.embedding)
        row = agents_mod.create_agent(rt.store, rt.settings, rt.library, rt.registry, name, preset=preset,
                                      persona=persona, human=human, llm=llm, embedding=embedding)
        return AgentInfo.from_row(row)

    def _free_name(self) -> str:
        taken = {agents_store.name_key(a.name) for a in self.list_agents()}
        n = 1
        while f"agent-{n}" in taken:
            n += 1
        return f"agent-{n}"

    def rename_agent(self, agent: AgentRef, new_name: str) -> AgentInfo:
        """Give the agent a new name (refused when another agent has it, in any letter case)."""
        row = self._row(agent)
        with self.runtime.store.hold_agent(row.id):
            return AgentInfo.from_row(agents_mod.rename_agent(self.runtime.store, row.id, new_name))

    def delete_agent(self, agent: AgentRef) -> None:
        """Delete the agent with all its messages, memory and passages."""
        agents_mod.delete_agent(self.runtime.store, self._row(agent).id)

    def update_agent(self, agent: AgentRef, *, llm: LLMConfig | None = None, embedding: EmbeddingConfig | None = None,
                     on_progress: Progress | None = None) -> AgentInfo:
        """Change the agent's model and/or embedder. A new embedder re-embeds its passages first."""
        from engine.reembed import reembed_agent

        row = self._row(agent)
        self._check_endpoints(llm, embedding)
        if embedding is not None and dataclasses.asdict(embedding) != row.embedding_config:
            embedder = make_embedder(embedding, public_only=self.runtime.public_only)
            for step in reembed_agent(self.runtime.store, row.id, embedder, embedding):
                if on_progress:
                    on_progress(step.done, step.total, f"re-embedded {step.done} of {step.total} passages")
        if llm is not None:
            with self.runtime.store.hold_agent(row.id):
                agents_store.update(self.runtime.store, row.id, llm_config=dataclasses.asdict(llm))
        return self.get_agent(row.id)

    # ------------------------------------------------------------------ endpoints a public app accepts

    def restrict_endpoints(self, *, resolver: Callable[[str, int], Iterable[str]] | None = None) -> None:
        """From now on refuse new endpoints that reach this server's own network (for a public app).

        `create_agent`, `update_agent`, `import_agent` and `save_defaults` then
        refuse (ConfigError, nothing written) a model or embedding endpoint that is
        not an http(s) URL resolving to public addresses, and a `local` model file
        other than the shipped one; the operator's endpoints (the environment's,
        config.yaml's as the runtime opened) and those existing agents use pass.
        Every model and embedding call of this runtime then connects only to
        public addresses checked as it connects (no DNS rebinding), except to the
        operator's endpoints and hosts given as IP addresses or `localhost`.
        `resolver` ((host, port) -> addresses) replaces DNS, for tests.
        """
        from engine.endpoints import EndpointGuard

        self._endpoint_guard = EndpointGuard(self.runtime.operator_endpoints, resolver=resolver)
        self.runtime.public_only = self._endpoint_guard.calls

    def _check_endpoints(self, llm: LLMConfig | None, embedding: EmbeddingConfig | None) -> None:
        if self._endpoint_guard is None:
            return

        def in_use():
            return [(LLMConfig(**r.llm_config), EmbeddingConfig(**r.embedding_config))
                    for r in agents_mod.list_agents(self.runtime.store)]

        self._endpoint_guard.check(llm, embedding, in_use)

    def save_defaults(self, *, llm: LLMConfig | None = None, embedding: EmbeddingConfig | None = None,
                      preset: str | None = None, persona: str | None = None, human: str | None = None) -> Path:
        """Make these the defaults of new agents and write config.yaml (no keys); what is not given stays.

        Endpoints are checked first when restricted (`restrict_endpoints`): a refusal
        changes neither the settings in memory nor the file.
        """
        from engine.config import save_settings

        self._check_endpoints(llm, embedding)
        s = self.settings
        if llm is not None:
            s.llm = llm
        if embedding is not None:
            s.embedding = embedding
        s.default_preset = preset or s.default_preset
        s.default_persona = persona or s.default_persona
        s.default_human = human or s.default_human
        return save_settings(s)

    # ------------------------------------------------------------------ connection tests

    def test_connection(self, llm: LLMConfig | None = None, embedding: EmbeddingConfig | None = None, *,
                        api_key: str | None = None, allow_private: bool = True) -> ConnectionReport:
        """Try a model and an embedder (default: the home's) with one short call each, before using them.

        Each result names the URL tried and, on failure, the cause in words (DNS,
        refused, timed out, TLS, key refused, wrong base URL or unknown model, a web
        page instead of the API); it lists the server's models and the embedder's
        dimension when found. `api_key` is typed for `llm`'s URL and sent only there
        (and to the embedder's when it is the same URL); `allow_private=False`
        refuses URLs resolving to loopback or private addresses (a public app).
        """
        from engine.llm.probe import check_connection

        return check_connection(llm or self.settings.llm, embedding or self.settings.embedding, api_key=api_key,
                                allow_private=allow_private)

    # ------------------------------------------------------------------ conversation

    def open_agent(self, agent: AgentRef, *, options: AgentOptions | None = None, provider=None,
                   embedder: Embedder | None = None) -> Agent:
        """The running agent, for a face that keeps one across turns (its controls: step, pop, retry...)."""
        return Agent.load(self.runtime, self._row(agent).id, options=options, provider=provider, embedder=embedder)

    def stream(self, agent: AgentRef, text: str) -> Iterator[Event]:
        """One user turn: the agent's thoughts, calls, results and messages as they happen."""
        return self.open_agent(agent).step(text)

    def user_message(self, agent: AgentRef, text: str) -> list[Event]:
        """One user turn, run to the end; its whole events (the streamed pieces, `partial`, only `stream` gives)."""
        return [event for event in self.stream(agent, text) if not event.partial]

    def stoppable(self, agent: AgentRef, events: Iterator[Event], stop: Callable[[], bool]) -> Iterator[Event]:
        """The agent's turn `events`, ended early once `stop()` is true and nothing is half done.

        Every message is stored as it happens, so ending a turn keeps all it said.
        It is ended (the generator closed, which frees the agent) only after an
        event that leaves no call of the model without its stored result: closing
        between a call and its result would leave the call to be marked
        "interrupted" later, though it ran. `stop` is asked after each event, so a
        turn waiting on the model ends when that call returns; its reply, neither
        shown nor stored yet, is then dropped.
        """
        from engine.agent import REPAIR_WINDOW, unanswered_calls
        from engine.store import messages as messages_store

        agent_id = self._row(agent).id
        try:
            for event in events:
                yield event
                if stop() and not unanswered_calls(
                        messages_store.list_messages(self.runtime.store, agent_id, last=REPAIR_WINDOW)):
                    return
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def run_command(self, agent: AgentRef, command: str) -> list[Event] | str:
        """A slash command of the terminal chat (`/pop 2`, `/retry`, `/rethink TEXT`, `/memory`...).

        Commands that run the agent return its events; the others return a line of text.
        """
        name, _, rest = command.strip().lstrip("/").partition(" ")
        running = self.open_agent(agent)
        rest = rest.strip()
        if name == "pop":
            count = int(shlex.split(rest)[0]) if rest else 1
            return f"Removed {len(running.pop(count))} message(s)."
        if name in ("retry", "heartbeat", "summarize", "memorywarning"):
            run = {"retry": running.retry, "heartbeat": running.heartbeat, "summarize": running.summarize_now,
                   "memorywarning": running.memory_warning}[name]
            return list(run())
        if name in ("rethink", "rewrite"):
            if not rest:
                raise ValueError(f"/{name} needs the new text.")
            (running.rethink if name == "rethink" else running.rewrite)(rest)
            return f"Last {'inner monologue' if name == 'rethink' else 'message'} replaced."
        if name == "memory":
            return "\n\n".join(f"{b.label} ({len(b.value)}/{b.limit}):\n{b.value}" for b in running.core.blocks())
        if name == "attach":
            source = self.attach(agent, rest)
            return f"Attached {source.name} ({source.passages} passages)."
        raise ValueError(f"Unknown command /{name}.")

    def messages(self, agent: AgentRef) -> list[Message]:
        """The messages in the agent's context window, in prompt order (the summary first)."""
        return in_context_rows(self.runtime.store, self._row(agent).id)

    def context(self, agent: AgentRef) -> Context:
        """The context window as the model sees it, with its token breakdown per part."""
        return self.open_agent(agent).context()

    def usage(self, agent: AgentRef) -> tuple[int, int, int]:
        """(LLM calls, prompt tokens, completion tokens) over the agent's life."""
        return agents_store.usage_totals(self.runtime.store, self._row(agent).id)

    # ------------------------------------------------------------------ core memory

    def get_core_memory(self, agent: AgentRef) -> list[Block]:
        """The agent's core memory blocks (persona, human, ...) in their order."""
        return CoreMemory(self.runtime.store, self._row(agent).id).blocks()

    def update_core_memory(self, agent: AgentRef, block: str, text: str, *, cause: str = "edited",
                           expected: str | None = None) -> Block:
        """Replace a block's text as the user (refused past the block's limit); recorded in its history.

        Pass `expected`, the value your text was edited from, and a block the agent
        changed in the meantime raises EditConflict instead of losing the agent's edit.
        """
        agent_id = self._row(agent).id
        with self.runtime.store.hold_agent(agent_id):
            return CoreMemory(self.runtime.store, agent_id).set(block, text, actor="user", cause=cause,
                                                                expected=expected)

    def memory_history(self, agent: AgentRef, block: str | None = None) -> list[Edit]:
        """Every edit of the agent's blocks (or one block), newest first."""
        return CoreMemory(self.runtime.store, self._row(agent).id).history(block)

    def memory_edit(self, agent: AgentRef, edit_id: int) -> Edit:
        """One edit of the agent's blocks, with the text before and after."""
        return blocks_store.get_edit(self.runtime.store, self._row(agent).id, edit_id)

    def revert(self, agent: AgentRef, edit_id: int) -> Block:
        """Put a block back to its value before edit `edit_id`, as a new edit."""
        agent_id = self._row(agent).id
        with self.runtime.store.hold_agent(agent_id):
            return CoreMemory(self.runtime.store, agent_id).revert(edit_id, actor="user")

    def add_block(self, agent: AgentRef, label: str, value: str = "", *, limit: int | None = None) -> Block:
        """A new core memory block (in every prompt from the next step on; the memory tools can edit it).

        `label`: 1-40 letters a-z, digits or underscores, starting with a letter (capitals are
        lowered). `limit` defaults to the home's block limit. A label removed earlier comes back
        with its history.
        """
        agent_id = self._row(agent).id
        with self.runtime.store.hold_agent(agent_id):
            return CoreMemory(self.runtime.store, agent_id).add_block(
                label, value, limit if limit is not None else self.settings.block_char_limit, actor="user")

    def remove_block(self, agent: AgentRef, label: str) -> None:
        """Take a block out of core memory; its edit history stays, the removal recorded in it.

        persona and human cannot be removed (the prompts and tools rely on them).
        """
        agent_id = self._row(agent).id
        with self.runtime.store.hold_agent(agent_id):
            CoreMemory(self.runtime.store, agent_id).remove_block(label, actor="user")

    def check_block_removable(self, agent: AgentRef, label: str) -> None:
        """Raise what remove_block would (no such block, persona or human), so a face asks its user
        to confirm only a removal that can happen."""
        CoreMemory(self.runtime.store, self._row(agent).id).removable(label)

    def set_block_limit(self, agent: AgentRef, label: str, limit: int) -> Block:
        """Change a block's character limit; a limit below what the block holds is refused."""
        agent_id = self._row(agent).id
        with self.runtime.store.hold_agent(agent_id):
            return CoreMemory(self.runtime.store, agent_id).set_limit(label, limit, actor="user")

    # ------------------------------------------------------------------ recall and archival

    def recall_count(self, agent: AgentRef) -> int:
        """How many messages recall memory holds for the agent."""
        return RecallMemory(self.runtime.store, self._row(agent).id).count()

    def search_recall(self, agent: AgentRef, query: str, page: int = 0, *, start: DateLike = None,
                      end: DateLike = None) -> str:
        """Past messages for `query` (any string is safe), one page as the agent sees it."""
        return self._recall(agent).search(query, page, start_date=_iso(_date(start, "start")),
                                          end_date=_iso(_date(end, "end")))

    def find_recall(self, agent: AgentRef, query: str, *, page: int = 0, k: int | None = None,
                    start: DateLike = None, end: DateLike = None, mode: str = "hybrid") -> RecallResults:
        """Past messages for `query` as rows: `k` a page (default 5, at most 100), page `page` from 0.

        mode "hybrid" (words, meaning, named times; needs the agent's embedder, else
        words only) or "keyword" (full text). An empty query lists messages in order;
        `start`/`end` (dates or YYYY-MM-DD, inclusive) narrow any of these.
        """
        messages, total, page, last = self._recall(agent).find(
            query, page, start=_date(start, "start"), end=_date(end, "end"), k=k or PAGE_SIZE, mode=mode)
        return RecallResults(messages, total, page, last, k or PAGE_SIZE)

    def _recall(self, agent: AgentRef) -> RecallMemory:
        row = self._row(agent)
        try:
            embedder = make_embedder(EmbeddingConfig(**row.embedding_config), public_only=self.runtime.public_only)
        except ConfigError:  # recall still searches by words
            embedder = None
        return RecallMemory(self.runtime.store, row.id, embedder)

    def archival_count(self, agent: AgentRef) -> int:
        """How many passages the agent can search: its own and those of attached sources."""
        return passages_store.count_for_agent(self.runtime.store, self._row(agent).id)

    def _archival(self, agent: AgentRef) -> ArchivalMemory:
        return self._archival_of(self._row(agent))

    def _archival_of(self, row: agents_store.AgentRow) -> ArchivalMemory:
        try:
            embedder = make_embedder(EmbeddingConfig(**row.embedding_config), public_only=self.runtime.public_only)
        except ConfigError as e:
            raise ConfigError(f"Agent {row.name!r} has no usable embedder: {e}") from e
        return ArchivalMemory(self.runtime.store, row.id, embedder)

    def search_archival(self, agent: AgentRef, query: str, *, page: int = 0, mode: str = "hybrid",
                        k: int | None = None, start: DateLike = None, end: DateLike = None) -> SearchResults:
        """Passages of the agent and its attached sources; `mode` is "hybrid", "vector" or "keyword".

        `k` results a page (default 5, as the agent sees them; at most 100), page `page`
        counted from 0; `start`/`end` (dates or YYYY-MM-DD, inclusive) keep passages
        said or stored in that range.
        """
        return self._archival(agent).search(query, page, mode=mode, k=k or PAGE_SIZE,
                                            start=_date(start, "start"), end=_date(end, "end"))

    def insert_archival(self, agent: AgentRef, text: str | Iterable[str | ArchivalItem], *,
                        at: DateTimeLike = None) -> list[int]:
        """Chunk, embed and store text in the agent's archival memory; the new passage ids.

        `text` is one text or many (strings or `ArchivalItem`s with their own time and
        metadata), embedded in batches and stored in one transaction. `at` is when a
        plain text was said or written (default now); time-filtered searches use it.
        """
        before = self._row(agent)
        archival = self._archival_of(before)
        texts = [text] if isinstance(text, str) else list(text)
        items = [
            (t.text, t.metadata, _timestamp(t.at)) if isinstance(t, ArchivalItem) else (t, None, _timestamp(at))
            for t in texts
        ]
        # Embedded before the agent is held: a 100,000-character text (127 passages) took 3.5 s on the
        # embedded model on a quiet machine, more on a busy one or a slow server, and a chat turn
        # meanwhile was refused as busy. Only the write waits for (and holds) the agent.
        rows = archival.embed_many(items)
        with self.runtime.store.hold_agent(archival.agent_id):
            if self._row(before.id).embedding_config != before.embedding_config:
                raise EditConflict("The agent's embedder changed while the text was embedded; insert it again.")
            return archival.store_embedded(rows)

    def delete_archival(self, agent: AgentRef, passage_id: int, *, from_source: bool = False) -> None:
        """Delete one of the agent's own passages.

        A passage of an attached data source belongs to the source; `from_source=True`
        deletes it too, which removes it from the source for every agent attached.
        """
        agent_id = self._row(agent).id
        with self.runtime.store.hold_agent(agent_id):
            passages_store.delete(self.runtime.store, int(passage_id), agent_id=agent_id, sources=from_source)

    def get_passage(self, agent: AgentRef, passage_id: int) -> passages_store.Passage:
        """A passage the agent can search (its own or an attached source's); NotFound otherwise."""
        return passages_store.get_visible(self.runtime.store, self._row(agent).id, int(passage_id))

    # ------------------------------------------------------------------ data sources

    def _source_info(self, source: sources_store.Source) -> SourceInfo:
        return SourceInfo(source.id, source.name, source.description, source.embedding_model, source.embedding_dim,
                          passages_store.count_for_source(self.runtime.store, source.id), source.created_at,
                          tuple(sources_store.attached_agents(self.runtime.store, source.id)))

    def list_sources(self) -> list[SourceInfo]:
        """Every data source in the data home."""
        return [self._source_info(s) for s in sources_store.list_all(self.runtime.store)]

    def attached_sources(self, agent: AgentRef) -> list[SourceInfo]:
        """The data sources the agent searches along with its own archival memory."""
        return [self._source_info(s) for s in sources_store.attached(self.runtime.store, self._row(agent).id)]

    def create_source(self, name: str, *, description: str = "", embedding: EmbeddingConfig | None = None) -> SourceInfo:
        """An empty data source embedded with `embedding` (default: the home's embedder)."""
        config = embedding or self.settings.embedding
        return self._source_info(sources_store.create(self.runtime.store, name, config.model, config.dim, description))

    def load(self, source: str, items: Iterable, *, embedding: EmbeddingConfig | None = None,
             on_progress: Progress | None = None, max_concurrency: int | None = None,
             description: str = "", requests_per_minute: float | None = None,
             tokens_per_minute: float | None = None, batch_size: int | None = None) -> LoadReport:
        """Chunk, embed and store reader items (see `engine.loaders`) into `source`, created if new.

        Loading is idempotent: a chunk the source already holds is skipped, so an
        interrupted load is resumed by running it again. Embedding runs in batches,
        `max_concurrency` at a time, within `requests_per_minute` / `tokens_per_minute`
        when given; a 429 is waited out and retried.
        """
        config = embedding
        if config is None:
            try:
                existing = sources_store.get_by_name(self.runtime.store, source)
                config = EmbeddingConfig(self.settings.embedding.endpoint_type, existing.embedding_model,
                                         existing.embedding_dim, self.settings.embedding.endpoint)
            except NotFound:
                config = self.settings.embedding
        embedder = make_embedder(config, public_only=self.runtime.public_only)
        kwargs: dict[str, Any] = {"requests_per_minute": requests_per_minute, "tokens_per_minute": tokens_per_minute}
        if max_concurrency is not None:
            kwargs["max_concurrency"] = max_concurrency
        if batch_size is not None:
            kwargs["batch_size"] = batch_size
        return ingest(self.runtime.store, source, items, embedder, on_progress=on_progress, description=description,
                      **kwargs)

    def load_files(self, source: str, paths: Iterable[str | Path], **options) -> LoadReport:
        """Load files (txt, md, pdf, csv, json, html) into `source`; options as for `load`."""
        items = [item for path in paths for item in read_file(Path(path), name=Path(path).name)]
        return self.load(source, items, **options)

    def load_directory(self, source: str, path: str | Path, *, recursive: bool = True,
                       extensions: Iterable[str] | None = None, **options) -> LoadReport:
        """Load the files of a folder (never the data home); `extensions` like ["md", "txt"] filters them."""
        return self.load(source, read_directory(path, recursive=recursive, extensions=extensions), **options)

    def load_webpages(self, source: str, urls: Iterable[str], **options) -> LoadReport:
        """Fetch pages (HTML, text, JSON, PDF) and load their text; for the operator's own URLs."""
        return self.load(source, read_webpages(urls), **options)

    def attach(self, agent: AgentRef, source: str) -> SourceInfo:
        """Let the agent search the source (their embedders must match)."""
        return self._source_info(agents_mod.set_source_attached(self.runtime.store, self._row(agent).id, source))

    def detach(self, agent: AgentRef, source: str) -> SourceInfo:
        """Stop the agent searching the source (its passages stay in the source)."""
        return self._source_info(agents_mod.set_source_attached(self.runtime.store, self._row(agent).id, source,
                                                                 attached=False))

    # ------------------------------------------------------------------ files

    def export_agent(self, agent: AgentRef, path: str | Path) -> dict[str, int]:
        """Write the agent (memory, messages, passages) to a JSON file; counts of what went in."""
        return export_agent(self.runtime.store, self._row(agent).id, path)

    def import_agent(self, path: str | Path, *, max_bytes: int | None = None, shown: str | None = None) -> ImportResult:
        """A new agent from an exported file (checked field by field first); a taken name gets " (2)".

        `max_bytes` caps the file (default transfer.MAX_FILE_BYTES); `shown` names it in errors instead of its path.
        """
        from engine import transfer

        data = transfer.read_file(path, max_bytes, shown=shown)  # checked field by field, so the configs can be built
        agent = data["agent"]
        self._check_endpoints(LLMConfig(**agent["llm_config"]), EmbeddingConfig(**agent["embedding_config"]))
        return transfer.load_agent_data(self.runtime.store, data)

    def backup(self, target: str | Path, *, force: bool = False) -> dict[str, int]:
        """A consistent copy of the live database in one SQLite file; row counts of the copy.

        On PostgreSQL too: the copy is one snapshot of the server's data in a new
        SQLite file, which the app can run on as it is or `migrate` back to a server.
        """
        if self.runtime.store.dialect == "postgres":
            from engine.store.copy import copy_to_new_sqlite
            from engine.store.db import COUNTED_TABLES

            counts = copy_to_new_sqlite(self.runtime.store, Path(target), replace=force)
            return {table: counts[table] for table in COUNTED_TABLES}  # the keys an SQLite backup reports
        from engine.store.db import backup

        return backup(self.settings.db_path, target, force=force)

    def migrate(self, target: str | Path, *, on_progress: Progress | None = None) -> dict[str, int]:
        """Copy the whole store into another, empty database; rows copied per table.

        `target` is a postgresql:// URL (the database exists; its tables are made
        here) or the path of a new SQLite file. The running store is read in one
        snapshot and left as it is: the app moves only when its settings name the
        new database, and what it writes after the copy began is not in the copy.
        """
        from engine.store import live
        from engine.store.copy import CopyError, copy_store, copy_to_new_sqlite

        store = self.runtime.store
        progress = None
        if on_progress is not None:
            def progress(done: int, total: int) -> None:
                on_progress(done, total, f"copied {done:,} of {total:,} rows")

        text = str(target)
        if text.startswith(("postgresql://", "postgres://")):
            from engine.store.pg import PgStore, safe_url

            if store.dialect == "postgres" and safe_url(text) == store.describe():
                raise CopyError(f"{safe_url(text)} is the database this app runs on; name another one.")
            copy = PgStore(text)
            try:
                return copy_store(store, copy, progress)
            finally:
                copy.close()
        if "://" in text:
            raise CopyError("Migrate to a postgresql:// URL or to the path of a new SQLite file.")
        path = Path(target).expanduser()
        if store.path is not None and Path(os.path.realpath(path)) in live.database_files(store.path):
            raise CopyError("The target cannot be the database this app runs on (or one of its -wal/-shm files).")
        if path.exists() and (not path.is_file() or path.stat().st_size > 0):
            raise CopyError(f"{path} already exists and is not empty; migrate into a new file.")
        return copy_to_new_sqlite(store, path, replace=path.exists(), on_progress=progress)


def is_error(event: Event) -> bool:
    """Whether an event reports a failure (for callers that only want to know the turn went through)."""
    return event.kind == "error"


__all__ += ["AgentRef", "is_error", "MemGPTError"]
