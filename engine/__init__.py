"""The MemGPT engine: agents, their memory, tools, LLM and embedding clients, storage.

Nothing in this package imports a UI toolkit; faces (web, WebSocket, terminal)
call engine operations and render the events they yield.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazily, so `import engine.store` (or any submodule) does not load the whole engine.
    if name in ("MemGPT", "AgentInfo", "SourceInfo", "ArchivalItem"):
        from engine import api

        return getattr(api, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
