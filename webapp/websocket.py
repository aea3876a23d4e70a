"""The WebSocket API: the seed's JSON protocol over the same engine.

Client -> server:
  {"type": "command", "command": "create_agent", "config": {...}}
  {"type": "command", "command": "load_agent", "name": "..."}
  {"type": "user_message", "message": "...", "agent_name": "..."}   (agent_name optional once chosen)
Server -> client:
  {"type": "command_response", "status": "OK"}
  {"type": "agent_response_start"} / {"type": "agent_response", "message_type": ..., "message": ...}
  / {"type": "agent_response_end"}, {"type": "agent_response_error", "message": ...},
  {"type": "server_error", "message": ...}

Every client that chose an agent is registered with it, and each event of that
agent's steps is sent to all of them. A step runs on a worker thread (the engine
is synchronous) and keeps going if the client that asked disconnects: what the
agent says is committed either way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
from typing import Any, Protocol

# Module level on purpose: FastAPI resolves the endpoint's annotations by name.
from starlette.websockets import WebSocket, WebSocketDisconnect

from engine.config import EmbeddingConfig, LLMConfig
from engine.errors import MemGPTError
from engine.events import AssistantMessage, Error, Event, SystemAlert, Thought, ToolCall, ToolResult
from engine.runtime import Runtime

log = logging.getLogger(__name__)

MAX_FRAME_CHARS = 64_000
MAX_MESSAGE_CHARS = 20_000
STEP_WORKERS = 8


class Client(Protocol):
    async def send_text(self, data: str) -> None: ...


def event_frame(event: Event) -> dict[str, Any] | None:
    """The protocol frame for one engine event (None for events the protocol has no place for)."""
    if isinstance(event, Thought):
        return {"type": "agent_response", "message_type": "internal_monologue", "message": event.text}
    if isinstance(event, AssistantMessage):
        return {"type": "agent_response", "message_type": "assistant_message", "message": event.text}
    if isinstance(event, ToolCall):
        if event.name == "send_message":
            return None
        shown = {k: v for k, v in event.arguments.items() if k != "request_heartbeat"}
        return {"type": "agent_response", "message_type": "function_message",
                "message": f"Running {event.name}({json.dumps(shown, ensure_ascii=False)})"}
    if isinstance(event, ToolResult):
        if event.name == "send_message" and event.status == "OK":
            return None
        return {"type": "agent_response", "message_type": "function_message",
                "message": f"{event.name} -> {event.status}: {event.message}"}
    if isinstance(event, SystemAlert):
        return {"type": "agent_response", "message_type": "function_message", "message": f"[{event.alert}] {event.text}"}
    if isinstance(event, Error):
        return {"type": "agent_response_error", "message": event.message}
    return None


class WebSocketInterface:
    """Which clients listen to which agent, and sending each of them every frame."""

    def __init__(self) -> None:
        self._clients: dict[str, set[Client]] = {}

    def register(self, agent_name: str, client: Client) -> None:
        self.unregister(client)
        self._clients.setdefault(agent_name.lower(), set()).add(client)

    def unregister(self, client: Client) -> None:
        for clients in self._clients.values():
            clients.discard(client)

    def clients(self, agent_name: str) -> list[Client]:
        return list(self._clients.get(agent_name.lower(), ()))

    async def broadcast(self, agent_name: str, frame: dict[str, Any]) -> None:
        data = json.dumps(frame, ensure_ascii=False)
        for client in self.clients(agent_name):
            try:
                await client.send_text(data)
            except Exception:  # a client that went away must not disturb the others
                log.info("dropping a disconnected WebSocket client")
                self.unregister(client)


def check_basic_auth(header: str | None, credentials: tuple[str, str]) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, credentials[0]) and hmac.compare_digest(password, credentials[1])


class Session:
    """One connection: the protocol state machine."""

    def __init__(self, runtime: Runtime, interface: WebSocketInterface, client: Client):
        self.runtime = runtime
        self.interface = interface
        self.client = client
        self.agent_name: str | None = None

    async def send(self, frame: dict[str, Any]) -> None:
        await self.client.send_text(json.dumps(frame, ensure_ascii=False))

    async def error(self, message: str) -> None:
        await self.send({"type": "server_error", "message": message})

    async def handle(self, raw: str) -> None:
        if len(raw) > MAX_FRAME_CHARS:
            return await self.error(f"The frame is {len(raw)} characters long; the limit is {MAX_FRAME_CHARS}.")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            return await self.error("The frame is not valid JSON.")
        if not isinstance(data, dict):
            return await self.error("A frame must be a JSON object with a 'type'.")
        kind = data.get("type")
        if kind == "command":
            return await self.command(data)
        if kind == "user_message":
            return await self.user_message(data)
        return await self.error(f"Unknown frame type {kind!r}; use 'command' or 'user_message'.")

    async def command(self, data: dict[str, Any]) -> None:
        name = data.get("command")
        try:
            if name == "create_agent":
                agent = await asyncio.to_thread(self._create, data.get("config") or {})
            elif name == "load_agent":
                from engine.agents import get_agent

                agent = get_agent(self.runtime.store, str(data.get("name", "")))
            else:
                return await self.error(f"Unknown command {name!r}; use 'create_agent' or 'load_agent'.")
        except (MemGPTError, ValueError, TypeError) as e:
            return await self.error(str(e))
        self.agent_name = agent.name
        self.interface.register(agent.name, self.client)
        await self.send({"type": "command_response", "status": "OK"})

    def _create(self, config: dict[str, Any]):
        from engine.agents import create_agent

        if not isinstance(config, dict):
            raise ValueError("'config' must be an object.")
        s = self.runtime.settings
        llm = LLMConfig(
            endpoint_type=config.get("model_endpoint_type", s.llm.endpoint_type),
            model=config.get("model", s.llm.model),
            endpoint=config.get("model_endpoint", s.llm.endpoint),
            context_window=config.get("context_window", s.llm.context_window),
            wrapper=config.get("model_wrapper", s.llm.wrapper),
        )
        embedding = EmbeddingConfig(
            endpoint_type=config.get("embedding_endpoint_type", s.embedding.endpoint_type),
            model=config.get("embedding_model", s.embedding.model),
            dim=int(config.get("embedding_dim", s.embedding.dim)),
            endpoint=config.get("embedding_endpoint", s.embedding.endpoint),
        )
        return create_agent(
            self.runtime.store, s, self.runtime.library, self.runtime.registry, str(config.get("name", "")),
            preset=config.get("preset"), persona=config.get("persona"), human=config.get("human"),
            llm=llm, embedding=embedding,
        )

    async def user_message(self, data: dict[str, Any]) -> None:
        name = data.get("agent_name") or self.agent_name
        message = data.get("message")
        if not name:
            return await self.error("No agent chosen: send create_agent or load_agent first, or give agent_name.")
        if not isinstance(message, str) or not message.strip():
            return await self.error("'message' must be a non-empty string.")
        if len(message) > MAX_MESSAGE_CHARS:
            return await self.error(f"The message is {len(message)} characters long; the limit is {MAX_MESSAGE_CHARS}.")
        from engine.agent import Agent

        try:
            agent = await asyncio.to_thread(Agent.load, self.runtime, str(name))
        except MemGPTError as e:
            return await self.error(str(e))
        if self.client not in self.interface.clients(agent.row.name):
            self.agent_name = agent.row.name
            self.interface.register(agent.row.name, self.client)
        await run_step(self.interface, agent, message)


async def run_step(interface: WebSocketInterface, agent, message: str) -> None:
    """Run one step on a worker thread, broadcasting frames as events arrive."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    def work():
        try:
            for event in agent.step(message):
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except Exception as e:  # an engine bug must still end the exchange cleanly
            log.exception("step failed")
            loop.call_soon_threadsafe(queue.put_nowait, Error(f"Internal error: {type(e).__name__}: {e}"))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, done)

    name = agent.row.name
    await interface.broadcast(name, {"type": "agent_response_start"})
    worker = loop.run_in_executor(None, work)
    while (event := await queue.get()) is not done:
        frame = event_frame(event)
        if frame is not None:
            await interface.broadcast(name, frame)
    await worker
    await interface.broadcast(name, {"type": "agent_response_end"})


def add_route(app, runtime: Runtime, credentials: tuple[str, str] | None, cookie_check=None,
              path: str = "/ws") -> WebSocketInterface:
    """Mount the endpoint on a FastAPI/Starlette app; returns its interface (for tests)."""
    interface = WebSocketInterface()

    async def endpoint(websocket: WebSocket) -> None:
        if credentials is not None:
            allowed = check_basic_auth(websocket.headers.get("authorization"), credentials)
            if not allowed and cookie_check is not None:
                allowed = cookie_check(websocket.cookies)
            if not allowed:
                await websocket.close(code=4401, reason="login required")
                return
        await websocket.accept()
        session = Session(runtime, interface, websocket)
        try:
            while True:
                # Frames are handled in order; a step's events stream out while it runs.
                await session.handle(await websocket.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            interface.unregister(websocket)

    app.add_api_websocket_route(path, endpoint)
    return interface


def serve_forever(host: str, port: int, home: str | None, auth: str | None) -> None:
    """`python app.py ws`: the WebSocket API alone."""
    import uvicorn
    from fastapi import FastAPI

    from engine.runtime import open_runtime
    from webapp.serve import check_exposure, parse_auth

    credentials = parse_auth(auth)
    check_exposure(host, False, credentials, waive=False)
    app = FastAPI()
    add_route(app, open_runtime(home), credentials)
    print(f"WebSocket API on ws://{host}:{port}/ws")
    uvicorn.run(app, host=host, port=port, log_level="warning")
