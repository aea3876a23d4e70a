"""The extras function set: a second model, a sandboxed files folder, and HTTP.

File functions only touch the agent's files folder (see FileSpace.resolve);
http_request checks scheme and address on every hop (see WebAccess).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engine.errors import ToolError
from engine.json_errors import UNPARSABLE
from engine.tools.handles import ChatModel, FileSpace, WebAccess

MAX_LINES = 200
MAX_APPEND_CHARS = 100_000


def message_chatgpt(chat: ChatModel, message: str) -> str:
    """Ask a separate general-purpose AI model a question and get its reply. It knows nothing of you or the user.

    Args:
        message: The full question or request, with any context it needs.
    """
    return chat.ask(message)


def read_from_text_file(files: FileSpace, filename: str, line_start: int = 1, num_lines: int = 20) -> str:
    """Read lines from a text file in your files folder.

    Args:
        filename: The file's name inside your files folder.
        line_start: The first line to read, counting from 1.
        num_lines: How many lines to read (at most 200).
    """
    path = files.resolve(filename)
    if not path.is_file():
        raise ToolError(f"There is no file {filename!r} in your files folder.")
    if line_start < 1 or not 1 <= num_lines <= MAX_LINES:
        raise ToolError(f"line_start must be 1 or more and num_lines between 1 and {MAX_LINES}.")
    if path.stat().st_size > FileSpace.MAX_READ_BYTES:
        raise ToolError(f"{filename!r} is larger than {FileSpace.MAX_READ_BYTES} bytes; it is not read.")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise ToolError(f"{filename!r} is a binary file, not text.")
    lines = raw.decode("utf-8", errors="replace").splitlines()
    selected = lines[line_start - 1 : line_start - 1 + num_lines]
    if not selected:
        return f"{filename!r} has {len(lines)} lines; nothing at line {line_start}."
    end = line_start + len(selected) - 1
    return f"Lines {line_start}-{end} of {len(lines)}:\n" + "\n".join(selected)


def append_to_text_file(files: FileSpace, filename: str, content: str) -> str:
    """Append text to a file in your files folder, creating it if needed.

    Args:
        filename: The file's name inside your files folder.
        content: The text to append; a line break is added after it.
    """
    if len(content) > MAX_APPEND_CHARS:
        raise ToolError(f"content is longer than {MAX_APPEND_CHARS} characters.")
    path = files.resolve(filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(content + "\n")
    return f"Appended {len(content)} characters to {filename!r}."


def http_request(web: WebAccess, method: str, url: str, payload_json: str = "") -> str:
    """Make an HTTP request to a public web address and read the response.

    Args:
        method: The HTTP method: GET, POST, PUT, PATCH, DELETE or HEAD.
        url: The full http:// or https:// address.
        payload_json: A JSON body for POST, PUT or PATCH; leave empty for none.
    """
    body = None
    if payload_json and payload_json.strip():
        try:
            json.loads(payload_json)
        except UNPARSABLE as e:
            raise ToolError(f"payload_json is not valid JSON: {type(e).__name__}") from e
        body = payload_json
    status, text, truncated = web.request(method, url, body)
    note = f"\n[response cut at {web.max_bytes} bytes]" if truncated else ""
    return f"HTTP {status}\n{text}{note}"


EXTRA_FUNCTIONS: list[Callable[..., Any]] = [message_chatgpt, read_from_text_file, append_to_text_file, http_request]
