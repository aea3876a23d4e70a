"""The base function set every MemGPT agent has: speaking, heartbeats and memory.

Each function is what the model sees: its docstring is the description and its
type hints are the schema. Failures raise ToolError with a message written for
the model; the runner turns them into failed results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.errors import MemoryLimitExceeded, NotFound, ToolError
from engine.memory import ArchivalMemory, CoreMemory, RecallMemory, parse_date
from engine.tools.handles import HeartbeatControl, Outbox


def send_message(outbox: Outbox, message: str) -> None:
    """Send a message to the user. This is the only way the user hears from you.

    Args:
        message: What to say to the user, written in your persona's voice.
    """
    if not message.strip():
        raise ToolError("message is empty; write what you want the user to read.")
    outbox.send(message)


def pause_heartbeats(heartbeats: HeartbeatControl, minutes: int) -> str:
    """Pause timed heartbeats for a while. Messages from the user still wake you.

    Args:
        minutes: How many minutes to pause for (1 to 360).
    """
    if not 1 <= minutes <= HeartbeatControl.MAX_MINUTES:
        raise ToolError(f"minutes must be between 1 and {HeartbeatControl.MAX_MINUTES}.")
    heartbeats.pause(minutes)
    # Honest about the app: no timer wakes the agent, so there is nothing that pausing silences.
    return (f"Timed heartbeats paused for {minutes} minutes. Note: this app runs no timed heartbeats; you wake "
            "only when the user writes or a function result asks for another turn.")


def _edit_core(action) -> str:
    try:
        block = action()
    except (MemoryLimitExceeded, NotFound) as e:
        raise ToolError(str(e)) from e
    return f"Block {block.label!r} now holds {len(block.value)} of {block.limit} characters."


def core_memory_append(memory: CoreMemory, name: str, content: str) -> str:
    """Add a line to one of your core memory blocks, which are always in view.

    Args:
        name: The block to add to, for example "persona" or "human".
        content: The text to add, on a new line. Unicode and emoji are fine.
    """
    # `name`, not `label`: the parameter MemGPT's prompts and fine-tuned models use.
    return _edit_core(lambda: memory.append(name, content, actor="agent"))


def core_memory_replace(memory: CoreMemory, name: str, old_content: str, new_content: str) -> str:
    """Replace text in one of your core memory blocks. To delete text, replace it with an empty string.

    Args:
        name: The block to edit, for example "persona" or "human".
        old_content: The exact text to find in the block.
        new_content: The text to put in its place.
    """
    return _edit_core(lambda: memory.replace(name, old_content, new_content, actor="agent"))


def conversation_search(recall: RecallMemory, query: str, page: int = 0, start_date: str | None = None,
                        end_date: str | None = None) -> str:
    """Search your earlier conversation (recall memory) by words and meaning, including messages no longer in view.

    Args:
        query: What to look for, as words or a question.
        page: Which page of results to show, 0 for the first (5 results a page).
        start_date: Only messages from this day on, written YYYY-MM-DD (optional).
        end_date: Only messages up to this day, written YYYY-MM-DD (optional).
    """
    return recall.search(query, page, start_date=start_date, end_date=end_date)


def conversation_search_date(recall: RecallMemory, start_date: str, end_date: str, page: int = 0) -> str:
    """Find the messages of your earlier conversation exchanged between two dates (inclusive).

    Args:
        start_date: The first day, written YYYY-MM-DD.
        end_date: The last day, written YYYY-MM-DD.
        page: Which page of results to show, 0 for the first (5 results a page).
    """
    return recall.search_date(start_date, end_date, page)


def archival_memory_insert(archival: ArchivalMemory, content: str) -> str:
    """Store text in archival memory, your unlimited long-term store, for later searches.

    Args:
        content: The text to store. Write it so it makes sense on its own when found later.
    """
    ids = archival.insert(content)
    return f"Stored in archival memory as {len(ids)} passage{'s' if len(ids) != 1 else ''}."


def archival_memory_search(archival: ArchivalMemory, query: str, page: int = 0, start_date: str | None = None,
                           end_date: str | None = None) -> str:
    """Search archival memory by meaning and by keywords.

    Args:
        query: What to look for, as words or a question.
        page: Which page of results to show, 0 for the first (5 results a page).
        start_date: Only passages from this day on, written YYYY-MM-DD (optional).
        end_date: Only passages up to this day, written YYYY-MM-DD (optional).
    """
    start = parse_date(start_date, "start_date") if start_date else None
    end = parse_date(end_date, "end_date") if end_date else None
    return archival.search(query, page, start=start, end=end).format()


BASE_FUNCTIONS: list[Callable[..., Any]] = [
    send_message,
    pause_heartbeats,
    core_memory_append,
    core_memory_replace,
    conversation_search,
    conversation_search_date,
    archival_memory_insert,
    archival_memory_search,
]
