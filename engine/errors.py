"""The few specific exceptions the engine raises.

Faces translate these: `webapp/` into `gr.Error`, the CLI into exit codes.
Tool functions raise `ToolError` for failures the model should read and act on.
"""


class MemGPTError(Exception):
    """Base class for every error the engine raises on purpose."""


class StoreUnavailable(MemGPTError):
    """The SQLite store cannot be opened (no extension loading, bad file...)."""


class StoreBroken(StoreUnavailable):
    """The database file or its write-ahead log changed underneath an open store.

    Raised instead of acknowledging a write that could be lost; once raised, the
    store refuses every later write until the process restarts.
    """


class AgentBusy(MemGPTError):
    """The agent is in the middle of a turn (or another edit) and did not become free in time."""


class EditConflict(MemGPTError):
    """A block changed after the text being saved was based on it; nothing was written."""


class NotFound(MemGPTError):
    """An agent, block, source or passage that does not exist."""


class InvalidName(MemGPTError):
    """A name that is empty, too long, badly formed or already taken."""


class EmbeddingMismatch(MemGPTError):
    """Vectors of one embedding model or dimension meeting another's."""


class TooLarge(MemGPTError):
    """Text or a file over a size the engine accepts from a face (a message, an edit, a passage, an import)."""


class MemoryLimitExceeded(MemGPTError):
    """A core memory edit that would exceed the block's character limit."""


class PresetError(MemGPTError):
    """A preset, prompt, persona or human that is missing or malformed."""


class ToolLoadError(MemGPTError):
    """A function that cannot become a tool (no type hints, no docstring...)."""


class ToolError(MemGPTError):
    """A tool failed in a way the model should be told about."""


class ConfigError(MemGPTError):
    """Settings that are missing or inconsistent."""
