"""The MemGPT engine: agents, their memory, tools, LLM and embedding clients, storage.

Nothing in this package imports a UI toolkit; faces (web, WebSocket, terminal)
call engine operations and render the events they yield.
"""

__version__ = "0.1.0"
