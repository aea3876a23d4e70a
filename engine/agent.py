"""Running an agent: `Agent.step()` and the conversation operations, as event generators.

One step: persist the packaged input, then call the LLM with the preset's
functions, persist its reply, run the function it called, persist the packaged
result, and go round again while a heartbeat was requested (or a call failed),
up to `chain_limit` calls. Every message is committed as it happens, so a crash
loses nothing already said. Steps and edits of one agent are serialized by the
store's per-agent lock; different agents run in parallel.

Before each LLM call the context is measured: past WARNING_FRACTION of the
window a memory-pressure alert is added once (until the next summarization);
when the call would not fit, or the provider says it did not, the oldest
messages are summarized out of the window first.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any, cast

from engine import recall_index, system, tokens
from engine.config import EmbeddingConfig, LLMConfig, Settings
from engine.context import SUMMARY, Context, TokenCache, build_context, in_context_rows, pair_results
from engine.embeddings import Embedder, make_embedder
from engine.errors import ConfigError, MemGPTError, NotFound, TooLarge, ToolError
from engine.events import (
    AssistantMessage,
    Error,
    Event,
    SystemAlert,
    Thought,
    ToolCall,
    ToolResult,
    Usage,
    UserMessage,
)
from engine.json_errors import UNPARSABLE
from engine.llm.base import Completion, ContextWindowExceeded, LLMError, LLMProvider, StreamingProvider, streams
from engine.llm.models import context_window
from engine.llm.retry import RetryPolicy, call_quietly, call_with_retries, fitting
from engine.memory import ArchivalMemory, CoreMemory, RecallMemory
from engine.store import Store
from engine.store import agents as agents_store
from engine.store import messages as messages_store
from engine.store.agents import AgentRow
from engine.store.messages import Message
from engine.streaming import stream_with_retries
from engine.summarize import plan_eviction, summarize_rows
from engine.tools.handles import ChatModel, FileSpace, HeartbeatControl, Outbox, ToolContext, WebAccess
from engine.tools.registry import ToolRegistry
from engine.tools.runner import not_run, run_tool

log = logging.getLogger(__name__)

WARNING_FRACTION = 0.75
AFTER_SUMMARY_FRACTION = 0.5  # summarization frees the window down to this share
# Calls one model reply may run. MemGPT's models make one; a hostile or looping server sent 300
# file appends (30 MB) or 50 archival inserts in one reply. The rest are answered "not run".
MAX_CALLS_PER_REPLY = 16
GREETING_THOUGHT = "Memory loaded and persona in place. First, a hello to check that my messages reach the user."
GREETING = "Hi! I'm here and ready when you are."

# `messages.name` marks the kind of packaged message a user-role row holds.
KIND_USER = "user_message"
KIND_HEARTBEAT = "heartbeat"
KIND_LOGIN = "login"
KIND_PRESSURE = "memory_pressure"
KIND_PROMPT = "system_prompt"


@dataclasses.dataclass
class AgentOptions:
    chain_limit: int = 10
    verify_first_message: bool = True
    first_message_retries: int = 3
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    warning_fraction: float = WARNING_FRACTION
    response_reserve: int = 512  # tokens left free for the model's reply
    max_user_message_chars: int = 20_000
    # Token streaming where the provider can (partial ThoughtDelta/MessageDelta events before the whole ones).
    # Settings.stream (config.yaml `stream: false`, or MEMGPT_STREAM=0) turns it off for a whole home.
    stream: bool = True


def _dangling_call(rows: list[Message]) -> int | None:
    """Index of the last assistant call in `rows` missing one of its results, if any."""
    for i in range(len(rows) - 1, -1, -1):
        row = rows[i]
        if row.role == "assistant" and row.tool_calls:
            answered = {r.tool_call_id for r in rows[i + 1 :] if r.role == "tool"}
            return i if {c.get("id") for c in row.tool_calls} - answered else None
    return None


# What the model answering `message_chatgpt` is told: it is a plain assistant, not this agent.
ONE_SHOT_SYSTEM = (
    "You are a helpful, knowledgeable assistant answering a single question from another AI. "
    "Answer directly and concisely; you have no memory of earlier questions."
)

# The stored result of a call whose process died before it finished (a kill, a crash, a power cut).
INTERRUPTED = (
    "Interrupted: the app stopped before this call finished, so its result was lost. It may or may not "
    "have taken effect; check before repeating it."
)
REPAIR_WINDOW = 50  # a dangling call is always among the newest messages: repairs run before every step


def unanswered_calls(rows: list[Message]) -> list[dict[str, Any]]:
    """The tool calls in `rows` that no tool message in `rows` answers, oldest first."""
    return pair_results(rows)[1]


def _parse_arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw and raw.strip() else {}
    except UNPARSABLE:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


def with_counts(completion: Completion, prompt_tokens: int) -> tuple[Completion, bool]:
    """The completion with the token counts the server left out counted here (engine/tokens.py), and whether any was.

    A server that streams without usage (one that refused `stream_options`, or ignores
    it) or answers without a `usage` field says 0; recorded as such, the agent's usage
    would miss those calls. `prompt_tokens` is the prompt as the context counted it.
    """
    prompt, reply = completion.prompt_tokens, completion.completion_tokens
    if prompt == 0:
        prompt = prompt_tokens
    if reply == 0:
        reply = tokens.count(completion.content or "") + sum(
            tokens.count(call.name) + tokens.count(call.arguments) for call in completion.calls)
    if (prompt, reply) == (completion.prompt_tokens, completion.completion_tokens):
        return completion, False
    return dataclasses.replace(completion, prompt_tokens=prompt, completion_tokens=reply), True


class Agent:
    def __init__(
        self,
        store: Store,
        registry: ToolRegistry,
        row: AgentRow,
        *,
        settings: Settings | None = None,
        provider: LLMProvider | None = None,
        provider_factory: Callable[[], LLMProvider] | None = None,
        embedder: Embedder | None = None,
        options: AgentOptions | None = None,
        chat_model: ChatModel | None = None,
    ):
        self.store = store
        self.registry = registry
        self.row = row
        self.settings = settings
        self.options = options or AgentOptions()
        self._provider = provider
        self._provider_factory = provider_factory
        self.embedder = embedder
        self.chat_model = chat_model
        self.heartbeats = HeartbeatControl()
        self._tokens = TokenCache()
        self._lock = store.agent_lock(row.id)
        self.core = CoreMemory(store, row.id)
        self.recall = RecallMemory(store, row.id, embedder)
        self.boot()

    # --- loading -----------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        runtime,
        name_or_id: str | int,
        *,
        provider: LLMProvider | None = None,
        embedder: Embedder | None = None,
        options: AgentOptions | None = None,
    ) -> Agent:
        """Load an agent by name or id; its provider is built on first use from its settings."""
        from engine.agents import get_agent
        from engine.llm.providers import make_provider

        row = get_agent(runtime.store, name_or_id)
        if embedder is None:
            try:
                embedder = make_embedder(EmbeddingConfig(**row.embedding_config), public_only=runtime.public_only)
            except ConfigError as e:
                log.info("agent %s has no embedder: %s", row.name, e)
        return cls(
            runtime.store,
            runtime.registry,
            row,
            settings=runtime.settings,
            provider=provider,
            provider_factory=lambda: make_provider(LLMConfig(**row.llm_config), public_only=runtime.public_only),
            embedder=embedder,
            options=options,
        )

    @property
    def provider(self) -> LLMProvider:
        if self._provider is None:
            if self._provider_factory is None:
                raise ConfigError("This agent has no model configured.")
            self._provider = self._provider_factory()
        return self._provider

    @property
    def window(self) -> int:
        if self._provider is not None:
            return self._provider.context_window
        config = self.row.llm_config
        return context_window(config.get("model", ""), config.get("context_window"))

    # --- persistence helpers ---------------------------------------------------------------
    def _persist(self, role: str, content: str | None, *, text: str = "", **kw) -> Message:
        return messages_store.add(self.store, self.row.id, role, content, text=text, **kw)

    def boot(self) -> None:
        """Write the boot sequence once: system message, a greeting through send_message, a login."""
        recent = messages_store.list_messages(self.store, self.row.id, last=REPAIR_WINDOW)
        if recent:
            # The common case. Repair a call left half-done by a killed process, unless a step
            # of this process holds the agent (then the call is not dangling, it is running).
            if unanswered_calls(recent) and self._lock.acquire(blocking=False):
                try:
                    self.repair_interrupted()
                finally:
                    self._lock.release()
            return
        with self._lock:
            if messages_store.list_messages(self.store, self.row.id, last=1):
                return
            with self.store.atomic():
                self._persist("system", self.row.system_prompt, name=KIND_PROMPT)
                call = {
                    "id": "boot-greeting",
                    "type": "function",
                    "function": {"name": "send_message", "arguments": json.dumps({"message": GREETING})},
                }
                self._persist("assistant", GREETING_THOUGHT, tool_calls=[call], text=f"{GREETING_THOUGHT} {GREETING}")
                self._persist("tool", system.function_result("OK", "None"), tool_call_id="boot-greeting")
                self._persist("user", system.login("never (first login)"), name=KIND_LOGIN)

    def repair_interrupted(self) -> int:
        """Store an "interrupted" result for every call that has none; callers hold the agent's lock.

        Without it, a process killed during a tool call leaves a call with no result,
        which OpenAI refuses (HTTP 400) on every later turn. Returns how many were repaired.
        """
        rows = messages_store.list_messages(self.store, self.row.id, last=REPAIR_WINDOW)
        missing = unanswered_calls(rows)
        if not missing:
            return 0
        with self.store.atomic():
            for call in missing:
                self._persist("tool", system.function_result("Failed", INTERRUPTED), tool_call_id=call.get("id"))
        log.warning("agent %s: stored an interrupted result for %d unfinished call(s)", self.row.name, len(missing))
        return len(missing)

    @property
    def busy(self) -> bool:
        """Whether a step (or an edit) of this agent is running in this process right now."""
        return self._lock.locked()

    def refresh(self) -> AgentRow:
        self.row = agents_store.get(self.store, self.row.id)
        return self.row

    # --- context -------------------------------------------------------------------------------
    def functions(self) -> list[dict[str, Any]]:
        return self.registry.schemas(self.row.functions)

    def context(self) -> Context:
        return build_context(self.store, self.row, self.functions(), self.window, self._tokens)

    def _tool_context(self, outbox: Outbox) -> ToolContext:
        archival = None
        if self.embedder is not None:
            try:
                archival = ArchivalMemory(self.store, self.row.id, self.embedder)
            except MemGPTError as e:
                log.warning("archival memory unavailable for %s: %s", self.row.name, e)
        tools = self.settings.tools if self.settings else None
        return ToolContext(
            core=self.core,
            recall=self.recall,
            archival=archival,
            outbox=outbox,
            heartbeats=self.heartbeats,
            files=FileSpace(self.settings.files_dir) if self.settings else None,
            web=WebAccess(tools.allow_private_urls, tools.http_timeout, tools.http_max_bytes) if tools else WebAccess(),
            chat_model=self.chat_model or ChatModel(self._ask_once, self.row.llm_config.get("model", "")),
        )

    def _ask_once(self, message: str) -> str:
        """`message_chatgpt`: one stateless question to the agent's own model, with no memory or functions."""
        provider = self.provider
        try:
            # Retries happen inside a tool call: there is nobody to show the waits to.
            completion = call_quietly(lambda: provider.complete([{"role": "system", "content": ONE_SHOT_SYSTEM},
                                                                 {"role": "user", "content": message}], []),
                                      fitting(self.options.retry, provider))
        except (LLMError, ConfigError) as e:
            raise ToolError(f"The other model could not answer: {e}") from e
        completion, _ = with_counts(completion, tokens.count(ONE_SHOT_SYSTEM) + tokens.count(message))
        agents_store.record_llm_call(self.store, self.row.id, completion.model or provider.model,
                                     completion.prompt_tokens, completion.completion_tokens, purpose="message_chatgpt")
        text = (completion.content or "").strip()
        if not text:
            raise ToolError("The other model gave an empty answer.")
        return text

    # --- the step ------------------------------------------------------------------------------
    def step(self, user_message: str) -> Iterator[Event]:
        """One user turn, as a stream of events."""
        problem = self._check_message(user_message)
        if problem:
            yield problem
            return
        with self._lock:
            yield from self._run(system.user_message(user_message), user_message, KIND_USER)

    def _check_message(self, user_message) -> Error | None:
        if not isinstance(user_message, str) or not user_message.strip():
            return Error("The message is empty.", retryable=False)
        limit = self.options.max_user_message_chars
        if len(user_message) > limit:
            return Error(f"The message is {len(user_message)} characters long; the limit is {limit}.", retryable=False)
        return None

    def heartbeat(self) -> Iterator[Event]:
        """Wake the agent without a user message."""
        with self._lock:
            yield from self._run(system.heartbeat(system.HEARTBEAT_MANUAL), "", KIND_HEARTBEAT)

    def memory_warning(self) -> Iterator[Event]:
        """Send the memory-pressure alert now and let the agent react."""
        with self._lock:
            yield from self._run(system.system_alert(system.MEMORY_PRESSURE), "", KIND_PRESSURE)

    def _run(self, content: str, text: str, kind: str) -> Iterator[Event]:
        """The step itself; callers hold the agent's lock."""
        try:
            yield from self._steps(content, text, kind)
        finally:  # what this step wrote gets its recall vectors in the background
            recall_index.schedule(self.store, self.row.id, self.embedder)

    def _steps(self, content: str, text: str, kind: str) -> Iterator[Event]:
        self.refresh()
        verify = self.options.verify_first_message and kind == KIND_USER and not self._has_user_message()
        self._persist("user", content, text=text, name=kind)
        yield UserMessage(text, kind)
        totals = [0, 0]
        for _ in range(self.options.chain_limit):
            completion = yield from self._call_llm(verify, totals)
            verify = False
            if completion is None:
                return
            if not (yield from self._handle(completion)):
                return
        yield SystemAlert(
            "chain_limit",
            f"Stopped after {self.options.chain_limit} chained function calls in one step; "
            "send a message or a heartbeat to let the agent continue.",
        )

    def _has_user_message(self) -> bool:
        return (
            self.store.db.execute(
                "SELECT 1 FROM messages WHERE agent_id = ? AND name = ? LIMIT 1", [self.row.id, KIND_USER]
            ).fetchone()
            is not None
        )

    def _call_llm(self, verify: bool, totals: list[int]) -> Generator[Event, None, Completion | None]:
        """Yields events; returns the completion, or None after yielding an Error."""
        summarized_after_refusal = False
        verify_attempts = 0
        while True:
            ctx = self.context()
            if unanswered_calls(ctx.rows) and self.repair_interrupted():
                ctx = self.context()
            if ctx.total + self.options.response_reserve > ctx.window:
                yield from self._summarize("the next call would not fit the context window")
                ctx = self.context()
                if ctx.total + self.options.response_reserve > ctx.window:
                    yield Error(
                        f"The context window ({ctx.window} tokens) is too small even after summarizing: "
                        f"the prompt needs {ctx.total}. Shorten core memory or use a model with a larger window.",
                        retryable=False,
                    )
                    return None
            elif ctx.total > self.options.warning_fraction * ctx.window and not self.row.memory_warning:
                self._persist("user", system.system_alert(system.MEMORY_PRESSURE), name=KIND_PRESSURE)
                agents_store.update(self.store, self.row.id, memory_warning=1)
                self.refresh()
                yield SystemAlert("memory_pressure", f"Memory pressure: the prompt uses {ctx.total} of {ctx.window} tokens.")
                continue
            try:
                provider = self.provider
                if self._streams(provider):
                    streaming = cast(StreamingProvider, provider)
                    completion = yield from stream_with_retries(
                        lambda on_delta: streaming.stream_complete(ctx.messages, ctx.functions, on_delta),  # noqa: B023
                        fitting(self.options.retry, provider))
                else:
                    completion = yield from call_with_retries(
                        lambda: provider.complete(ctx.messages, ctx.functions),  # noqa: B023 (called at once)
                        fitting(self.options.retry, provider),
                    )
            except ContextWindowExceeded as e:
                if summarized_after_refusal:
                    yield Error(str(e), retryable=False)
                    return None
                summarized_after_refusal = True
                yield from self._summarize("the provider said the prompt was too long")
                continue
            except (LLMError, ConfigError) as e:
                yield Error(str(e), retryable=getattr(e, "retryable", False))
                return None
            completion, estimated = with_counts(completion, ctx.total)
            totals[0] += completion.prompt_tokens
            totals[1] += completion.completion_tokens
            agents_store.record_llm_call(
                self.store, self.row.id, completion.model or provider.model,
                completion.prompt_tokens, completion.completion_tokens,
            )
            yield Usage(completion.prompt_tokens, completion.completion_tokens,
                        completion.model or provider.model, totals[0], totals[1], estimated=estimated)
            if verify and not any(c.name == "send_message" for c in completion.calls):
                verify_attempts += 1
                if verify_attempts <= self.options.first_message_retries:
                    yield SystemAlert(
                        "verify_retry",
                        f"The first reply did not call send_message; asking again ({verify_attempts}/"
                        f"{self.options.first_message_retries}).",
                    )
                    continue
            return completion

    def _streams(self, provider: LLMProvider) -> bool:
        wanted = self.options.stream and (self.settings is None or self.settings.stream)
        return wanted and streams(provider)

    def _handle(self, completion: Completion) -> Generator[Event, None, bool]:
        """Persist the reply and run its calls; returns whether to go round again."""
        calls = completion.calls
        wire_calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ]
        said = " ".join(
            str(_parse_arguments(c.arguments).get("message", "")) for c in calls if c.name == "send_message"
        )
        self._persist(
            "assistant", completion.content, tool_calls=wire_calls or None,
            text=" ".join(t for t in (completion.content or "", said) if t),
        )
        if completion.content:
            yield Thought(completion.content)
        if not calls:
            return False
        heartbeat = False
        failed = False
        for index, call in enumerate(calls):
            yield ToolCall(call.name, _parse_arguments(call.arguments), call.id)
            outbox = Outbox()
            if index >= MAX_CALLS_PER_REPLY:  # still answered, so every call keeps its result
                outcome = not_run(call.name, f"one reply runs at most {MAX_CALLS_PER_REPLY} calls.")
            else:
                outcome = run_tool(
                    self.registry, call.name, call.arguments, self._tool_context(outbox),
                    allowed=self.row.functions,
                    result_limit=self.settings.tools.result_char_limit if self.settings else 3000,
                )
            for message in outbox.sent:
                yield AssistantMessage(message)
            self._persist("tool", system.function_result(outcome.status, outcome.message), tool_call_id=call.id)
            yield ToolResult(call.name, outcome.status, outcome.message, call.id)
            heartbeat = heartbeat or outcome.heartbeat
            failed = failed or not outcome.ok
        if heartbeat:
            reason = system.HEARTBEAT_AFTER_FAILURE if failed else system.HEARTBEAT_REQUESTED
            self._persist("user", system.heartbeat(reason), name=KIND_HEARTBEAT)
        return heartbeat

    # --- summarization -------------------------------------------------------------------------
    def _summarize(self, reason: str, to_free: int | None = None) -> Iterator[Event]:
        ctx = self.context()
        rows = ctx.rows
        sizes = [self._tokens.count(r) for r in rows]
        if to_free is None:
            to_free = ctx.total - int(ctx.window * AFTER_SUMMARY_FRACTION)
        cut = plan_eviction(rows, sizes, max(to_free, 1))
        if cut == 0:
            yield SystemAlert("summarize_skipped", "Nothing can be summarized: too few messages in the window.")
            return
        evicted = rows[:cut]
        try:
            summary, p, c = summarize_rows(self.provider, evicted, ctx.window)
        except (LLMError, ConfigError) as e:
            yield Error(f"Summarizing failed: {e}", retryable=getattr(e, "retryable", False))
            return
        agents_store.record_llm_call(self.store, self.row.id, self.provider.model, p, c, purpose="summary")
        hidden = sum(1 for r in evicted if r.name != SUMMARY) + self._hidden_before(evicted)
        total = self.recall.count()
        with self.store.atomic():
            messages_store.set_in_context(self.store, [r.id for r in evicted], False)
            self._persist("user", system.summary(summary, hidden, total), name=SUMMARY, text=summary)
            agents_store.update(self.store, self.row.id, memory_warning=0)
        self.refresh()
        yield SystemAlert("summarized", f"Summarized {hidden} older messages ({reason}): {summary}")

    def _hidden_before(self, evicted: list[Message]) -> int:
        """How many messages the summary being folded in already stood for."""
        for row in evicted:
            if row.name == SUMMARY:
                payload = system.unpack(row.content) or {}
                text = str(payload.get("message", ""))
                marker = "To free space, "
                if marker in text:
                    try:
                        return int(text.split(marker, 1)[1].split(" ", 1)[0])
                    except ValueError:
                        return 0
        return 0

    def summarize_now(self) -> Iterator[Event]:
        """Summarize the older half of the window now (the faces' "summarize" control)."""
        with self._lock:
            ctx = self.context()
            yield from self._summarize("asked for by the user", to_free=ctx.breakdown["messages"] // 2)

    # --- conversation control ----------------------------------------------------------------
    def wipe(self) -> int:
        """Delete every message (the window and recall memory) and start over from the boot sequence.

        Core and archival memory stay. Returns how many messages were deleted.
        """
        with self._lock:
            ids = [r.id for r in messages_store.list_messages(self.store, self.row.id)]
            with self.store.atomic():
                messages_store.delete(self.store, ids)
                agents_store.update(self.store, self.row.id, memory_warning=0)
        self.boot()
        return len(ids)

    def pop(self, count: int = 1) -> list[int]:
        """Delete the last `count` in-context messages, plus whatever would be left half a call.

        A function call whose results are deleted goes too, so the window never holds a
        call without its result. Returns the deleted ids.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            rows = [r for r in in_context_rows(self.store, self.row.id) if r.name != SUMMARY]
            split = max(0, len(rows) - count)
            keep, doomed = rows[:split], rows[split:]
            while (i := _dangling_call(keep)) is not None:
                keep, doomed = keep[:i], keep[i:] + doomed
            ids = [r.id for r in doomed]
            messages_store.delete(self.store, ids)
            return ids

    def _last_user_message(self) -> Message:
        rows = in_context_rows(self.store, self.row.id)
        for row in reversed(rows):
            if row.name == KIND_USER:
                return row
        raise NotFound("There is no user message to retry.")

    def retry(self) -> Iterator[Event]:
        """Drop everything since the last user message and run that message again."""
        with self._lock:
            last = self._last_user_message()
            later = [r.id for r in messages_store.list_messages(self.store, self.row.id) if r.id >= last.id]
            messages_store.delete(self.store, later)
            yield from self._run(system.user_message(last.text), last.text, KIND_USER)

    def _check_edit(self, text: str) -> None:
        # An edit goes into the context as a message does: over the limit it would fill the window
        # for good, and every later turn would fail to fit until someone undid it.
        limit = self.options.max_user_message_chars
        if len(text) > limit:
            raise TooLarge(f"The new text is {len(text):,} characters long; the limit is {limit:,}.")

    def rethink(self, new_thought: str) -> Message:
        """Replace the inner monologue of the last reply that had one."""
        self._check_edit(new_thought)
        with self._lock:
            for row in reversed(in_context_rows(self.store, self.row.id)):
                if row.role == "assistant" and row.content:
                    messages_store.update(self.store, row.id, content=new_thought, text=new_thought)
                    return self._reread(row.id)
            raise NotFound("There is no inner monologue to rethink.")

    def rewrite(self, new_text: str) -> Message:
        """Replace what the last send_message said."""
        self._check_edit(new_text)
        with self._lock:
            for row in reversed(in_context_rows(self.store, self.row.id)):
                for call in row.tool_calls or [] if row.role == "assistant" else []:
                    if call.get("function", {}).get("name") == "send_message":
                        args = _parse_arguments(call["function"].get("arguments", ""))
                        args.pop("_raw", None)
                        args["message"] = new_text
                        call["function"]["arguments"] = json.dumps(args, ensure_ascii=False)
                        messages_store.update(
                            self.store, row.id, tool_calls=row.tool_calls,
                            text=" ".join(t for t in (row.content or "", new_text) if t),
                        )
                        return self._reread(row.id)
            raise NotFound("There is no sent message to rewrite.")

    def _reread(self, message_id: int) -> Message:
        message = messages_store.get(self.store, message_id)
        if message is None:
            raise NotFound(f"Message {message_id} is gone.")
        return message

    def usage_totals(self) -> tuple[int, int, int]:
        return agents_store.usage_totals(self.store, self.row.id)
