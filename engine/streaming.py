"""A streamed LLM call as events: partial text while it arrives, the Completion at the end.

A step is a generator that faces pull from, and a provider's stream is read by
blocking HTTP reads, so the call (retries and backoff included) runs on a worker
thread of its own and hands what it gets to the step through a queue: pieces of
the reply (as ThoughtDelta / MessageDelta events), the Retrying events of
`call_with_retries`, then the Completion or the error. The worker runs in a copy
of the caller's context, so the retry deadline of an outer call still applies.

Closing the step (Stop, a face that went away) cancels the worker: its next
piece raises `Cancelled`, which ends the HTTP stream.
"""

from __future__ import annotations

import contextvars
import queue
import re
import threading
from collections.abc import Callable, Generator
from typing import Any

from engine.events import Event, MessageDelta, ThoughtDelta
from engine.llm.base import Completion, Delta
from engine.llm.retry import RetryPolicy, call_with_retries

StreamCall = Callable[[Callable[[Delta], None]], Completion]


class Cancelled(Exception):
    """The step that wanted this reply is gone; the stream is dropped."""


_MESSAGE_KEY = re.compile(r'"message"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class MessageField:
    """The text of the "message" field of a JSON object that arrives in fragments (send_message's arguments).

    `feed` returns the newly readable text, unescaped. Anything it cannot read
    (no such field, broken escapes) yields nothing or a replacement character,
    never an exception: the whole message follows as an AssistantMessage anyway.
    """

    def __init__(self) -> None:
        self.raw = ""
        self.pos: int | None = None  # where the field's unread string text starts in `raw`
        self.done = False

    def feed(self, fragment: str) -> str:
        self.raw += fragment
        if self.done:
            return ""
        if self.pos is None:
            found = _MESSAGE_KEY.search(self.raw)
            if found is None:
                return ""
            self.pos = found.end()
        out: list[str] = []
        raw, i = self.raw, self.pos
        while i < len(raw):
            ch = raw[i]
            if ch == '"':
                self.done = True
                break
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            if i + 1 >= len(raw):
                break  # the escape's second half is still on its way
            kind = raw[i + 1]
            if kind != "u":
                out.append(_ESCAPES.get(kind, kind))
                i += 2
                continue
            code, used = _unicode_escape(raw, i)
            if used == 0:
                break
            out.append(code)
            i += used
        self.pos = i
        return "".join(out)


def _unicode_escape(raw: str, i: int) -> tuple[str, int]:
    """The character of a \\uXXXX escape at raw[i] (a surrogate pair takes two), and how many characters it used."""
    digits = raw[i + 2 : i + 6]
    if len(digits) < 4:
        return "", 0
    try:
        code = int(digits, 16)
    except ValueError:
        return "\ufffd", 6
    if 0xD800 <= code < 0xDC00:  # a high surrogate: its low half follows as another escape
        following = raw[i + 6 : i + 8]
        if following and not "\\u".startswith(following):  # something else follows: a lone half
            return "\ufffd", 6
        if len(raw) < i + 12:
            return "", 0
        if raw[i + 6 : i + 8] == "\\u":
            try:
                low = int(raw[i + 8 : i + 12], 16)
            except ValueError:
                low = 0
            if 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), 12
        return "\ufffd", 6
    if 0xDC00 <= code < 0xE000:
        return "\ufffd", 6
    return chr(code), 6


class Pieces:
    """One attempt's deltas turned into events: content is inner monologue, send_message's text is speech."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.fields: dict[int, MessageField] = {}
        self.speakers: list[int] = []  # call indexes of send_message calls, in order

    def events(self, delta: Delta) -> list[Event]:
        out: list[Event] = []
        if delta.content:
            out.append(ThoughtDelta(delta.content))
        if delta.call_index is None:
            return out
        index = delta.call_index
        if delta.name:
            self.names[index] = delta.name
        if self.names.get(index) != "send_message":
            # Arguments written before the name arrived are kept, so none of the message is lost.
            self.fields.setdefault(index, MessageField()).raw += delta.arguments
            return out
        field = self.fields.setdefault(index, MessageField())
        if index not in self.speakers:
            self.speakers.append(index)
        text = field.feed(delta.arguments)
        if text:
            out.append(MessageDelta(text, self.speakers.index(index)))
        return out


_END = object()


def stream_with_retries(call: StreamCall, policy: RetryPolicy) -> Generator[Event, None, Completion]:
    """`call_with_retries` over a streaming call, yielding its pieces and Retrying events as they come.

    Each attempt gets fresh `Pieces`, and the Retrying event that precedes it
    tells faces to drop what the failed attempt showed.
    """
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    cancelled = threading.Event()

    def attempt() -> Completion:
        pieces = Pieces()

        def on_delta(delta: Delta) -> None:
            if cancelled.is_set():
                raise Cancelled()
            for event in pieces.events(delta):
                inbox.put(event)

        return call(on_delta)

    def work() -> None:
        try:
            steps = call_with_retries(attempt, policy, sleep=_sleep_unless(cancelled))
            while True:
                try:
                    inbox.put(next(steps))
                except StopIteration as done:
                    inbox.put((_END, done.value))
                    return
        except BaseException as e:  # noqa: BLE001 (handed to the step, which raises it as its own)
            inbox.put((_END, e))

    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True,
                              name="llm-stream")
    worker.start()
    try:
        while True:
            item = inbox.get()
            if isinstance(item, tuple) and item and item[0] is _END:
                result = item[1]
                if isinstance(result, BaseException):
                    raise result
                return result
            yield item
    finally:
        cancelled.set()  # a step closed early leaves the worker to end at its next piece


def _sleep_unless(cancelled: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if cancelled.wait(seconds):
            raise Cancelled()

    return sleep
