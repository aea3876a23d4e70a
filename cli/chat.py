"""The terminal chat: a prompt, the agent's events as coloured lines, slash commands.

Every command calls an engine operation (`Agent.step`, `retry`, `pop`, `rethink`...)
and renders the events it yields; nothing here writes to the store by itself.
A step runs on a worker thread so that Ctrl-C can stop the waiting at once: the
worker then ends the step at its next safe point (before a model reply is stored,
so the window never keeps half a function call) while the prompt comes back.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import TextIO

from cli import CommandError
from engine import system
from engine.agent import Agent, AgentOptions
from engine.api import MemGPT, Message
from engine.errors import MemGPTError
from engine.events import (
    AssistantMessage,
    Error,
    Event,
    Retrying,
    SystemAlert,
    Thought,
    ToolCall,
    ToolResult,
    Usage,
    UserMessage,
)
from engine.json_errors import UNPARSABLE

CODES = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33", "blue": "34",
         "magenta": "35", "cyan": "36"}
RESULT_CHARS = 300  # tool results are clipped to this outside --debug
DUMP_DEFAULT = 10
MULTILINE = "//"

HELP = """Commands:
  /help              this list
  /exit              leave (Ctrl-D works too)
  /save              nothing to do: every message is saved as it happens
  /load [NAME]       switch to another agent (no name: reload this one from disk)
  /dump [N]          show the last N messages of the context window (default 10)
  /dumpraw           the context window exactly as the model receives it (JSON)
  /model [NAME]      show the model, or switch this agent to another one (saved)
  /wipe              delete the whole conversation (asks first; memory blocks stay)
  /memory            core memory blocks, recall and archival counts
  /block add LABEL [TEXT]   add a core memory block (a removed label comes back, history and all)
  /block limit LABEL N      change a block's character limit (never below its text)
  /block remove LABEL       take a block out of core memory (asks first; its history stays)
  /pop [N]           delete the last N messages from the conversation (default 1)
  /retry             run your last message again
  /rethink TEXT      replace the agent's last inner monologue
  /rewrite TEXT      replace what the agent last said
  /heartbeat         wake the agent without a message
  /memorywarning     send the memory-pressure warning now
  /summarize         summarize the older half of the window now
  /attach SOURCE     let the agent search a loaded data source
  /tokens            how the context window is spent
  //                 start (and end) a multi-line message
Ctrl-C while the agent works stops waiting for it."""


class Style:
    """ANSI colours, or plain text when they are off."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, text: str, *names: str) -> str:
        if not self.enabled or not names:
            return text
        return f"\x1b[{';'.join(CODES[n] for n in names)}m{text}\x1b[0m"


def colour_enabled(stream: TextIO, env=os.environ) -> bool:
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    return bool(getattr(stream, "isatty", lambda: False)()) and not env.get("NO_COLOR")


FANCY = {"thought": "💭", "call": "⚡", "say": "🤖", "alert": "⚠️ ", "error": "✖", "ok": "✓", "failed": "✗"}
PLAIN = {"thought": "~", "call": "*", "say": ">", "alert": "!", "error": "x", "ok": "ok", "failed": "FAILED"}


def symbols_for(stream: TextIO) -> dict[str, str]:
    """Emoji markers where the terminal's encoding has them, ASCII ones elsewhere."""
    try:
        "".join(FANCY.values()).encode(getattr(stream, "encoding", None) or "ascii")
        return FANCY
    except (UnicodeEncodeError, LookupError):
        return PLAIN


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if limit <= 0 or len(text) <= limit else text[: limit - 1] + "…"


def _shown_arguments(arguments: dict) -> str:
    shown = {k: v for k, v in arguments.items() if k != "request_heartbeat"}
    return json.dumps(shown, ensure_ascii=False)


class Renderer:
    """Engine events and stored messages as terminal lines (pure: returns strings)."""

    def __init__(self, style: Style, symbols: dict[str, str], debug: bool = False):
        self.s = style
        self.sym = symbols
        self.debug = debug

    def event(self, event: Event) -> list[str]:
        s, sym = self.s, self.sym
        if isinstance(event, UserMessage):
            if event.message_type == "user_message":
                return []  # the user just typed it
            return [s(f"[{event.message_type.replace('_', ' ')} sent to the agent]", "dim")]
        if isinstance(event, Thought):
            return [s(f"{sym['thought']} {event.text}", "dim", "italic")]
        if isinstance(event, ToolCall):
            if event.name == "send_message" and not self.debug:
                return []  # the words follow as an AssistantMessage
            return [s(f"{sym['call']} {event.name}({_shown_arguments(event.arguments)})", "yellow")]
        if isinstance(event, ToolResult):
            if event.status == "OK":
                if event.name == "send_message" and not self.debug:
                    return []
                limit = 0 if self.debug else RESULT_CHARS
                return [s(f"   {sym['ok']} {event.name}: {_clip(event.message, limit)}", "dim")]
            return [s(f"   {sym['failed']} {event.name} failed: {_clip(event.message, 0 if self.debug else 600)}",
                      "red")]
        if isinstance(event, AssistantMessage):
            return [s(f"{sym['say']} {event.text}", "bold", "cyan")]
        if isinstance(event, SystemAlert):
            return [s(f"{sym['alert']} {event.text}", "yellow")]
        if isinstance(event, Retrying):
            return [s(f"retrying in {event.wait:.1f} s (attempt {event.attempt}): {event.reason}", "yellow")]
        if isinstance(event, Usage):
            if not self.debug:
                return []
            about = "about " if event.estimated else ""
            return [s(f"[{event.model}: {about}{event.prompt_tokens} prompt + {event.completion_tokens} completion "
                      f"tokens; this turn {event.step_prompt_tokens} + {event.step_completion_tokens}]", "dim")]
        if isinstance(event, Error):
            hint = " (/retry to try again)" if event.retryable else ""
            return [s(f"{sym['error']} error: {event.message}{hint}", "red")]
        return []

    def stored(self, row: Message, *, with_time: bool = True) -> list[str]:
        """One stored message as it reads in the conversation (for /dump), time first (UTC)."""
        s, sym = self.s, self.sym
        payload = system.unpack(row.content) or {}
        stamp = s(row.created_at[11:19], "dim") + " " if with_time else ""
        if row.role == "system":
            return [stamp + s("[system prompt]", "dim")]
        if row.role == "user":
            kind = payload.get("type")
            if kind == "user_message":
                return [f"{stamp}you: {payload.get('message', row.text)}"]
            if row.name == "summary":
                return [stamp + s(f"[summary] {row.text}", "yellow")]
            if kind == "system_alert":
                return [stamp + s(f"[alert] {_clip(payload.get('message', ''), 200)}", "yellow")]
            return [stamp + s(f"[{kind or row.name or 'user'}]", "dim")]
        if row.role == "assistant":
            lines = [stamp + s(f"{sym['thought']} {row.content}", "dim", "italic")] if row.content else []
            for call in row.tool_calls or []:
                fn = call.get("function", {})
                try:
                    arguments = json.loads(fn.get("arguments") or "{}")
                except UNPARSABLE:
                    arguments = {"_raw": fn.get("arguments")}
                if fn.get("name") == "send_message" and isinstance(arguments, dict) and "message" in arguments:
                    lines.append(stamp + s(f"{sym['say']} {arguments['message']}", "bold", "cyan"))
                else:
                    shown = _shown_arguments(arguments) if isinstance(arguments, dict) else str(arguments)
                    lines.append(stamp + s(f"{sym['call']} {fn.get('name')}({shown})", "yellow"))
            return lines
        status = payload.get("status", "OK")
        if status == "OK" and payload.get("message") == "None" and not self.debug:
            return []  # send_message's empty result: noise in a transcript
        mark = sym["ok"] if status == "OK" else sym["failed"]
        text = _clip(payload.get("message", row.content or ""), RESULT_CHARS)
        return [stamp + s(f"   {mark} {text}", "dim" if status == "OK" else "red")]


def describe(agent: Agent, model_override: str | None = None) -> str:
    row = agent.row
    llm = row.llm_config
    model = model_override or llm.get("model", "?")
    where = llm.get("endpoint_type", "?") + (f" at {llm['endpoint']}" if llm.get("endpoint") else "")
    return (f"Agent {row.name} · model {model} ({where}) · embedder {row.embedding_model} "
            f"({row.embedding_dim}-d)")


_DONE = object()


class ChatSession:
    """One terminal conversation; `load_agent(name)` builds agents (with the session's options)."""

    def __init__(
        self,
        agent: Agent,
        load_agent: Callable[[str | int], Agent],
        *,
        api: MemGPT,
        debug: bool = False,
        out: TextIO | None = None,
        read_line: Callable[[str], str] = input,
        colour: bool | None = None,
        model_override: str | None = None,
        plain: bool = False,
    ):
        self.agent = agent
        self.api = api
        self._load_agent = load_agent
        self.out = out or sys.stdout
        self.read_line = read_line
        enabled = colour_enabled(self.out) if colour is None else colour
        self.style = Style(enabled)
        self.render = Renderer(self.style, PLAIN if plain else symbols_for(self.out), debug)
        self.interactive = bool(getattr(self.out, "isatty", lambda: False)()) and not plain  # the "thinking…" line
        self.model_override = model_override
        self._worker: threading.Thread | None = None
        self.commands: dict[str, Callable[[str], bool | None]] = {
            "help": self.cmd_help, "exit": self.cmd_exit, "quit": self.cmd_exit, "save": self.cmd_save,
            "load": self.cmd_load, "dump": self.cmd_dump, "memory": self.cmd_memory, "pop": self.cmd_pop,
            "retry": self.cmd_retry, "rethink": self.cmd_rethink, "rewrite": self.cmd_rewrite,
            "heartbeat": self.cmd_heartbeat, "memorywarning": self.cmd_memorywarning,
            "summarize": self.cmd_summarize, "attach": self.cmd_attach, "tokens": self.cmd_tokens,
            "dumpraw": self.cmd_dumpraw, "model": self.cmd_model, "wipe": self.cmd_wipe, "block": self.cmd_block,
        }

    # ---------------------------------------------------------------- output
    def say(self, text: str = "", *names: str) -> None:
        print(self.style(text, *names), file=self.out, flush=True)

    def error(self, text: str) -> None:
        self.say(f"error: {text}", "red")

    def greet(self) -> None:
        self.say(describe(self.agent, self.model_override), "bold")
        for row in reversed(self.agent.context().rows):
            if row.role == "assistant" and row.tool_calls:
                for line in self.render.stored(row, with_time=False):
                    self.say(line)
                break
        self.say("Type a message, or /help for commands.", "dim")

    # ---------------------------------------------------------------- the loop
    def run(self, first: bool = False) -> int:
        """The prompt loop; `first` lets the agent speak before the user (one heartbeat through the model)."""
        self.greet()
        if first:
            self.stream(self.agent.heartbeat)
        while True:
            try:
                line = self.read_line("> ")
            except EOFError:
                self.say()
                break
            except KeyboardInterrupt:
                self.say()
                self.say("(/exit or Ctrl-D to leave)", "dim")
                continue
            if not self.handle(line):
                break
        self._wait_for_worker()
        return 0

    def handle(self, line: str) -> bool:
        """Act on one input line; False means leave."""
        text = line.strip()
        if not text:
            return True
        if text == MULTILINE:
            message = self._read_multiline()
            if message is not None and message.strip():
                self.stream(lambda: self.agent.step(message))
            return True
        if text.startswith("/"):
            name, _, rest = text[1:].partition(" ")
            command = self.commands.get(name.lower())
            if command is None:
                self.error(f"unknown command /{name}.")
                self.say(HELP)
                return True
            try:
                return command(rest.strip()) is not False
            except (MemGPTError, CommandError) as e:
                self.error(str(e))
                return True
        self.stream(lambda: self.agent.step(line))
        return True

    def _read_multiline(self) -> str | None:
        self.say(f"(multi-line message: end with a line holding only {MULTILINE})", "dim")
        lines: list[str] = []
        while True:
            try:
                line = self.read_line("… ")
            except (EOFError, KeyboardInterrupt):
                self.say()
                self.say("(multi-line message dropped)", "dim")
                return None
            if line.strip() == MULTILINE:
                return "\n".join(lines)
            lines.append(line)

    # ---------------------------------------------------------------- running a step
    def _wait_for_worker(self) -> None:
        """An interrupted step still holds the agent until it reaches a safe point; let it get there."""
        worker = self._worker
        if worker is None or not worker.is_alive():
            return
        self.say("(waiting for the interrupted step to stop…)", "dim")
        try:
            while worker.is_alive():
                worker.join(0.1)
        except KeyboardInterrupt:
            self.say("(still stopping in the background)", "dim")

    def stream(self, make_events: Callable[[], Iterator[Event]]) -> None:
        """Run an event-producing operation on a worker thread and render what it yields."""
        self._wait_for_worker()
        events: queue.Queue = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                steps = iter(make_events())
                for event in steps:
                    if stop.is_set() and isinstance(event, (Usage, Retrying)):
                        # A reply computed but not yet stored: dropping it leaves no half call behind.
                        getattr(steps, "close", lambda: None)()  # a generator: closing it runs its cleanup
                        break
                    events.put(event)
            except BaseException as e:  # handed to the main thread, which decides what to show
                events.put(e)
            finally:
                events.put(_DONE)

        self._worker = threading.Thread(target=work, name="chat-step", daemon=True)
        self._worker.start()
        thinking = False
        try:
            while True:
                if self.interactive and not thinking:
                    self.out.write(self.style("thinking…", "dim"))
                    self.out.flush()
                    thinking = True
                try:
                    item = events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _DONE:
                    lines = []
                elif isinstance(item, MemGPTError):
                    lines = [self.style(f"error: {item}", "red")]
                elif isinstance(item, BaseException):  # a bug, not a situation: --debug shows where
                    lines = [self.style(f"error: unexpected {type(item).__name__}: {item}", "red")]
                    if self.render.debug:
                        lines[:0] = "".join(traceback.format_exception(item)).splitlines()
                else:
                    lines = self.render.event(item)
                if thinking and (lines or item is _DONE):
                    self.out.write("\r\x1b[K")
                    thinking = False
                for text in lines:
                    print(text, file=self.out, flush=True)
                if item is _DONE:
                    return
        except KeyboardInterrupt:
            stop.set()
            if thinking:
                self.out.write("\r\x1b[K")
            self.say("^C stopped waiting; the step ends before its next reply is stored.", "yellow")

    # ---------------------------------------------------------------- commands
    def cmd_help(self, _: str) -> None:
        self.say(HELP)

    def cmd_exit(self, _: str) -> bool:
        return False

    def cmd_save(self, _: str) -> None:
        self.say("Everything is already saved: messages are committed as they happen.")

    def cmd_load(self, name: str) -> None:
        self._wait_for_worker()
        # No name: this agent again, read afresh from the database (after edits from another face).
        self.agent = self._load_agent(name if name else self.agent.row.id)
        self.model_override = None
        self.greet()

    def cmd_dumpraw(self, _: str) -> None:
        ctx = self.agent.context()
        self.say(json.dumps({"messages": ctx.messages, "functions": ctx.functions}, indent=2, ensure_ascii=False))

    def cmd_model(self, name: str) -> None:
        import dataclasses

        info = self.api.get_agent(self.agent.row.id)
        if not name:
            shown = self.model_override or info.llm.model
            self.say(f"{info.name} uses {shown} ({info.llm.endpoint_type}"
                     + (f" at {info.llm.endpoint}" if info.llm.endpoint else "") + ").")
            return
        self._wait_for_worker()
        self.api.update_agent(info.id, llm=dataclasses.replace(info.llm, model=name))
        self.agent = self._load_agent(info.id)
        self.model_override = None
        self.say(f"{info.name} now uses {name}.")

    def cmd_wipe(self, _: str) -> None:
        self._wait_for_worker()
        try:
            answer = self.read_line("Delete every message of this conversation (recall memory too)? "
                                    "Core and archival memory stay. Type yes to go on: ")
        except (EOFError, KeyboardInterrupt):
            answer = ""
        if answer.strip().lower() != "yes":
            self.say("Nothing was deleted.", "dim")
            return
        removed = self.agent.wipe()
        self.say(f"Deleted {removed} message(s); the conversation starts afresh.")
        self.greet()

    def _count(self, arg: str, default: int, what: str) -> int:
        if not arg:
            return default
        if not arg.isdigit() or int(arg) < 1:
            raise CommandError(f"{what} takes a whole number, 1 or more (got {arg!r}).")
        return int(arg)

    def cmd_dump(self, arg: str) -> None:
        count = self._count(arg, DUMP_DEFAULT, "/dump")
        rows = self.agent.context().rows[-count:]
        if not rows:
            self.say("(the context window holds no messages)", "dim")
        for row in rows:
            for line in self.render.stored(row):
                self.say(line)

    def cmd_memory(self, _: str) -> None:
        agent = self.agent
        self.say(f"Core memory of {agent.row.name}:", "bold")
        for block in agent.core.blocks():
            self.say(f"  {block.label} ({len(block.value)}/{block.limit} characters)", "bold")
            for line in block.value.splitlines() or [""]:
                self.say(f"    {line}")
        archival = self.api.archival_count(agent.row.id)
        sources = [s.name for s in self.api.attached_sources(agent.row.id)]
        self.say(f"Recall memory: {agent.recall.count()} messages")
        attached = f" (including attached sources: {', '.join(sources)})" if sources else ""
        self.say(f"Archival memory: {archival} passages{attached}")

    def cmd_block(self, arg: str) -> None:
        action, _, rest = arg.partition(" ")
        label, _, text = rest.strip().partition(" ")
        action, text = action.lower(), text.strip()
        agent_id = self.agent.row.id
        if action not in ("add", "limit", "remove") or not label:
            raise CommandError("/block takes add LABEL [TEXT], limit LABEL N or remove LABEL.")
        self._wait_for_worker()
        if action == "add":
            block = self.api.add_block(agent_id, label, text)
            self.say(f"Added the block {block.label} ({len(block.value)}/{block.limit} characters); the agent sees "
                     "it from its next step.")
        elif action == "limit":
            if not text.isdigit():
                raise CommandError(f"/block limit takes a whole number of characters (got {text!r}).")
            block = self.api.set_block_limit(agent_id, label, int(text))
            self.say(f"The block {block.label} now holds up to {block.limit} characters.")
        else:
            self.api.check_block_removable(agent_id, label)  # refused at once, not after a "yes"
            try:
                answer = self.read_line(f"Remove the block {label} from core memory? Its history stays. "
                                        "Type yes to go on: ")
            except (EOFError, KeyboardInterrupt):
                answer = ""
            if answer.strip().lower() != "yes":
                self.say("Nothing was removed.", "dim")
                return
            self.api.remove_block(agent_id, label)
            self.say(f"Removed the block {label.strip().lower()}; adding it again brings back its history.")

    def cmd_pop(self, arg: str) -> None:
        self._wait_for_worker()
        removed = self.agent.pop(self._count(arg, 1, "/pop"))
        self.say(f"Removed {len(removed)} message(s) from the conversation.")

    def cmd_retry(self, _: str) -> None:
        self.stream(self.agent.retry)

    def _edit(self, text: str, operation: Callable[[str], Message], usage: str, done: str) -> None:
        if not text:
            raise CommandError(f"{usage} needs the new text.")
        self._wait_for_worker()
        row = operation(text)
        self.say(done)
        for line in self.render.stored(row):
            self.say(line)

    def cmd_rethink(self, text: str) -> None:
        self._edit(text, self.agent.rethink, "/rethink", "Inner monologue replaced:")

    def cmd_rewrite(self, text: str) -> None:
        self._edit(text, self.agent.rewrite, "/rewrite", "Last message rewritten:")

    def cmd_heartbeat(self, _: str) -> None:
        self.stream(self.agent.heartbeat)

    def cmd_memorywarning(self, _: str) -> None:
        self.stream(self.agent.memory_warning)

    def cmd_summarize(self, _: str) -> None:
        self.stream(self.agent.summarize_now)

    def cmd_attach(self, name: str) -> None:
        if not name:
            raise CommandError("/attach needs a data source name (see `python app.py list sources`).")
        source = self.api.attach(self.agent.row.id, name)
        self.say(f"Attached {source.name} ({source.passages} passages) to {self.agent.row.name}.")

    def cmd_tokens(self, _: str) -> None:
        ctx = self.agent.context()
        share = 100 * ctx.total / ctx.window if ctx.window else 0
        self.say(f"Context window: {ctx.total:,} of {ctx.window:,} tokens used ({share:.0f}%)", "bold")
        for part, tokens in ctx.breakdown.items():
            self.say(f"  {part.replace('_', ' '):<12} {tokens:>8,}")
        self.say(f"  {'free':<12} {ctx.free:>8,}")
        calls, prompt, completion = self.agent.usage_totals()
        self.say(f"All time: {calls} LLM calls, {prompt:,} prompt + {completion:,} completion tokens.")


def chat_options(no_verify: bool) -> AgentOptions:
    return AgentOptions(verify_first_message=not no_verify)
