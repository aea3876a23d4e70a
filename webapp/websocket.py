"""The WebSocket API: the seed's JSON protocol over the same engine.

Client -> server:
  {"type": "command", "command": "create_agent", "config": {...}}
  {"type": "command", "command": "load_agent", "name": "..."}
  {"type": "user_message", "message": "...", "agent_name": "..."}   (agent_name optional once chosen)
  Core memory blocks of the chosen agent (or of "agent_name"), as the Memory tab edits them:
  {"type": "command", "command": "add_block", "label": "projects", "value": "...", "limit": 2000}
  {"type": "command", "command": "set_block_limit", "label": "...", "limit": 500}
  {"type": "command", "command": "remove_block", "label": "..."}   (persona and human cannot be)
Server -> client:
  {"type": "command_response", "status": "OK"}   (block commands add "block": {label, value, limit},
  or "removed": label)
  {"type": "agent_response_start"} / {"type": "agent_response", "message_type": ..., "message": ...}
  / {"type": "agent_response_end"}, {"type": "agent_response_error", "message": ...},
  {"type": "server_error", "message": ...}
  While a reply streams (docs/ARCHITECTURE.md): {"type": "agent_response_delta", "delta_type":
  "internal_monologue" | "assistant_message", "delta": "...", "call": n}, before the whole
  agent_response frame; {"type": "agent_response_delta_reset"} voids the pieces sent so far.

Every frame comes from someone who may be hostile (the app can run on a public
Space), so the shape is:

- Each connection has a reader that never stops reading (so pings, pongs and
  closes are handled while a step runs) and a worker that handles that
  connection's frames in order from a bounded queue. A frame that does not fit
  is answered at once with a server_error saying it was not processed: nothing
  a client sends disappears without a frame saying so.
- Listeners and work are keyed by agent id, never by name: names can be renamed
  away and reused, and case folding of Unicode names is not a safe identity.
- Each agent has its own FIFO lane of steps and at most one thread running them,
  so a flooded agent cannot take the threads other agents need. A step keeps
  going if the client that asked disconnects: what the agent says is committed
  and heard by the agent's other listeners either way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

# Module level on purpose: FastAPI resolves the endpoint's annotations by name.
from fastapi import HTTPException
from starlette.websockets import WebSocket, WebSocketDisconnect

from engine.api import MemGPT
from engine.config import MAX_DIM, MAX_WINDOW, EmbeddingConfig, LLMConfig
from engine.errors import MemGPTError
from engine.events import (
    AssistantMessage,
    Error,
    Event,
    MessageDelta,
    Retrying,
    SystemAlert,
    Thought,
    ThoughtDelta,
    ToolCall,
    ToolResult,
)
from engine.json_errors import UNPARSABLE
from engine.runtime import Runtime
from webapp.login import LoginGuard

if TYPE_CHECKING:
    from webapp.relay import FrameRelay

log = logging.getLogger(__name__)

MAX_FRAME_CHARS = 64_000
MAX_MESSAGE_CHARS = 20_000
MAX_LABEL_CHARS = 100  # a block label is at most 40; longer is refused before the engine sees it
BLOCK_COMMANDS = ("add_block", "set_block_limit", "remove_block")
# Frames a connection may have waiting behind the one being handled; enough for a
# client that pipelines, small enough that a flood costs little memory.
MAX_PENDING = 32
# A listener that stops reading would otherwise hold up every other listener of the agent.
SEND_TIMEOUT = 10.0


class Client(Protocol):
    async def send_text(self, data: str) -> None: ...


RESET = {"type": "agent_response_delta_reset"}
# Delta frames name their kind `delta_type`, not `message_type`: clients that pick frames by message_type
# alone (ours did) would take a piece for a whole message.


def event_frame(event: Event) -> dict[str, Any] | None:
    """The protocol frame for one engine event (None for events the protocol has no place for)."""
    if isinstance(event, ThoughtDelta):
        return {"type": "agent_response_delta", "delta_type": "internal_monologue", "delta": event.text}
    if isinstance(event, MessageDelta):
        return {"type": "agent_response_delta", "delta_type": "assistant_message", "delta": event.text,
                "call": event.call}
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
    """Which clients listen to which agent (by agent id), and sending each of them every frame.

    On PostgreSQL the frames also go to the clients of the other processes
    serving the database, and theirs come here (webapp/relay.py).
    """

    def __init__(self) -> None:
        self._clients: dict[int, set[Client]] = {}
        self.relay: FrameRelay | None = None
        self._relayed: asyncio.Queue | None = None

    def start_relay(self, url: str) -> FrameRelay:
        """Join the other servers on this database (once, from inside the running event loop)."""
        if self.relay is not None:
            return self.relay
        from webapp.relay import FrameRelay

        loop = asyncio.get_running_loop()
        relayed: asyncio.Queue = asyncio.Queue()
        self._relayed = relayed

        def deliver(agent_id: int, data: str) -> None:
            try:
                loop.call_soon_threadsafe(relayed.put_nowait, (agent_id, data))
            except RuntimeError:  # the loop has closed: the server is stopping
                pass

        self._relay_task = loop.create_task(self._deliver_relayed(relayed))
        self.relay = FrameRelay(url, deliver)
        return self.relay

    async def _deliver_relayed(self, relayed: asyncio.Queue) -> None:
        while True:  # one at a time, so another server's frames keep their order
            agent_id, data = await relayed.get()
            await self.send_local(agent_id, data)

    def register(self, agent_id: int, client: Client) -> None:
        self.unregister(client)
        self._clients.setdefault(agent_id, set()).add(client)

    def unregister(self, client: Client) -> None:
        for agent_id in list(self._clients):
            self._clients[agent_id].discard(client)
            if not self._clients[agent_id]:
                del self._clients[agent_id]

    def clients(self, agent_id: int) -> list[Client]:
        return list(self._clients.get(agent_id, ()))

    async def broadcast(self, agent_id: int, frame: dict[str, Any]) -> None:
        data = json.dumps(frame, ensure_ascii=False)
        if self.relay is not None:
            self.relay.publish(agent_id, data)
        await self.send_local(agent_id, data)

    async def send_local(self, agent_id: int, data: str) -> None:
        # Concurrently, so one slow reader delays the others by at most SEND_TIMEOUT, once.
        await asyncio.gather(*(self._send(client, data) for client in self.clients(agent_id)))

    async def _send(self, client: Client, data: str) -> None:
        try:
            await asyncio.wait_for(client.send_text(data), SEND_TIMEOUT)
        except Exception:  # a client that went away or stopped reading must not disturb the others
            log.info("dropping a WebSocket client that could not be sent to")
            self.unregister(client)


# Block edits wait up to AGENT_WAIT (30 s) for an agent's running turn. In asyncio's shared pool
# (6 threads on 2 cores) 40 edits of one busy agent left no thread for anyone's create_agent or
# load_agent for a minute; here they wait among themselves.
AGENT_EDITS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ws-agent-edit")


async def _edit(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(AGENT_EDITS, fn, *args)


class AgentLanes:
    """One FIFO queue of steps per agent, drained by one task that runs one step at a time."""

    def __init__(self, interface: WebSocketInterface) -> None:
        self.interface = interface
        self._lanes: dict[int, deque] = {}
        self._drains: set[asyncio.Task] = set()

    async def run(self, agent_id: int, events: Callable[[], Iterable[Event]]) -> None:
        """Queue a step and wait until it has been broadcast to the end.

        Cancelling the wait withdraws a step that has not started; a started step runs on.
        """
        done = asyncio.get_running_loop().create_future()
        lane = self._lanes.get(agent_id)
        if lane is None:
            lane = self._lanes[agent_id] = deque()
            task = asyncio.create_task(self._drain(agent_id, lane))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        lane.append((events, done))
        await done

    async def _drain(self, agent_id: int, lane: deque) -> None:
        try:
            while lane:
                events, done = lane.popleft()
                if done.cancelled():
                    continue
                try:
                    await run_step(self.interface, agent_id, events)
                except Exception:
                    log.exception("broadcasting a step failed")
                finally:
                    if not done.done():
                        done.set_result(None)
        finally:
            # No await between the empty check and this, so no step can slip into a dead lane.
            if self._lanes.get(agent_id) is lane:
                del self._lanes[agent_id]


async def run_step(interface: WebSocketInterface, agent_id: int, events: Callable[[], Iterable[Event]]) -> None:
    """Run one step on its own thread, broadcasting frames as events arrive."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    def post(item) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the server is shutting down; finish the step so it is committed
            pass

    def work() -> None:
        try:
            for event in events():
                post(event)
        except MemGPTError as e:
            post(Error(str(e), retryable=False))
        except Exception as e:  # an engine bug must still end the exchange cleanly
            log.exception("step failed")
            post(Error(f"Internal error: {type(e).__name__}: {e}"))
        finally:
            post(done)

    try:
        # A thread of its own rather than a shared pool: a pool's threads can all end up
        # waiting on one busy agent's lock, and then nobody else gets a reply.
        threading.Thread(target=work, name=f"ws-agent-{agent_id}").start()
    except RuntimeError as e:
        await interface.broadcast(agent_id, {"type": "agent_response_start"})
        await interface.broadcast(agent_id, {"type": "agent_response_error", "message": f"Could not start the step: {e}"})
    else:
        # "start" goes out with the step's first event, which comes once the step holds the
        # agent: a step still waiting behind another process's step must not open its
        # brackets around the other one's frames.
        started = False
        pieces = False  # delta frames sent that no whole frame has followed yet
        while (event := await queue.get()) is not done:
            if not started:
                started = True
                await interface.broadcast(agent_id, {"type": "agent_response_start"})
            if event.partial:
                pieces = True
            elif pieces and isinstance(event, (Retrying, SystemAlert, Error)):
                pieces = False  # the reply is asked for again or was refused: its pieces are void
                await interface.broadcast(agent_id, RESET)
            elif isinstance(event, (Thought, AssistantMessage, ToolCall)):
                pieces = False
            frame = event_frame(event)
            if frame is not None:
                await interface.broadcast(agent_id, frame)
        if not started:
            await interface.broadcast(agent_id, {"type": "agent_response_start"})
    await interface.broadcast(agent_id, {"type": "agent_response_end"})


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep else None


def preview(raw: str, limit: int = 80) -> str:
    return raw if len(raw) <= limit else raw[:limit] + "..."


class Session:
    """One connection: the protocol state machine, fed by its reader through a bounded queue."""

    def __init__(self, api: MemGPT, interface: WebSocketInterface, lanes: AgentLanes, client: Client):
        self.api = api
        self.interface = interface
        self.lanes = lanes
        self.client = client
        self.agent_id: int | None = None
        self.pending: asyncio.Queue[str] = asyncio.Queue(MAX_PENDING)

    async def send(self, frame: dict[str, Any]) -> None:
        await self.client.send_text(json.dumps(frame, ensure_ascii=False))

    async def error(self, message: str) -> None:
        await self.send({"type": "server_error", "message": message})

    async def read(self, websocket: WebSocket) -> None:
        """Read frames until the client leaves, queueing them for `work` or refusing them aloud."""
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                await self.error("Binary frames are not supported; send JSON text frames.")
            elif len(raw) > MAX_FRAME_CHARS:
                # Refused here, so a flood of big frames never sits in the queue.
                await self.error(f"The frame is {len(raw)} characters long; the limit is {MAX_FRAME_CHARS}.")
            else:
                try:
                    self.pending.put_nowait(raw)
                except asyncio.QueueFull:
                    await self.error(f"Too many pending messages ({MAX_PENDING}); "
                                     f"this one was not processed: {preview(raw)}")

    async def work(self) -> None:
        """Handle queued frames one at a time, in the order they came."""
        while True:
            raw = await self.pending.get()
            try:
                await self.handle(raw)
            except Exception:
                log.exception("handling a WebSocket frame failed")
                try:
                    await self.error(f"Internal error; this frame was not processed: {preview(raw)}")
                except Exception:
                    return  # the client is gone

    async def handle(self, raw: str) -> None:
        if len(raw) > MAX_FRAME_CHARS:
            return await self.error(f"The frame is {len(raw)} characters long; the limit is {MAX_FRAME_CHARS}.")
        try:
            data = json.loads(raw)
        except UNPARSABLE:  # also a number of over 4,300 digits, which Python refuses to read
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
                agent = await asyncio.to_thread(self.api.get_agent, str(data.get("name", "")))
            elif name in BLOCK_COMMANDS:
                return await self.send({"type": "command_response", "status": "OK",
                                        **await self._block_command(name, data)})
            else:
                return await self._command_failed(f"Unknown command {name!r}; use 'create_agent', 'load_agent', "
                                                  f"{', '.join(repr(c) for c in BLOCK_COMMANDS)}.")
        except (MemGPTError, ValueError, TypeError) as e:
            return await self._command_failed(str(e))
        self.agent_id = agent.id
        self.interface.register(agent.id, self.client)
        await self.send({"type": "command_response", "status": "OK", "agent_name": agent.name})

    async def _block_command(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        """What a block command did, for its command_response; MemGPTError/ValueError when refused."""
        agent_name = data.get("agent_name")
        if agent_name:
            agent_id = (await asyncio.to_thread(self.api.get_agent, str(agent_name))).id
        elif self.agent_id is not None:
            agent_id = self.agent_id
        else:
            raise ValueError("No agent chosen: send create_agent or load_agent first, or give agent_name.")
        label = data.get("label")
        if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS:
            raise ValueError(f"'label' must be a block's name: a string of at most {MAX_LABEL_CHARS} characters.")
        if name == "remove_block":
            await _edit(self.api.remove_block, agent_id, label)
            return {"removed": label.strip().lower()}
        limit: Any = data.get("limit")  # any JSON value: the engine refuses what is not a whole number in range
        if name == "add_block":
            value = data.get("value", "")
            block = await _edit(functools.partial(self.api.add_block, limit=limit), agent_id, label, value)
        else:
            block = await _edit(self.api.set_block_limit, agent_id, label, limit)
        return {"block": {"label": block.label, "value": block.value, "limit": block.limit}}

    async def _command_failed(self, message: str) -> None:
        # server_error as before, then the command_response with an error status that MemGPT's clients wait for.
        await self.error(message)
        await self.send({"type": "command_response", "status": "error", "message": message})

    def _create(self, config: dict[str, Any]):
        if not isinstance(config, dict):
            raise ValueError("'config' must be an object.")
        s = self.api.settings
        # Each field checked for its type here: stored as sent, a list for a model or a word for a
        # window made every later turn of the agent fail, and 1e30 for a dimension failed in SQLite.
        llm = LLMConfig(
            endpoint_type=_text(config, "model_endpoint_type", s.llm.endpoint_type),
            model=_text(config, "model", s.llm.model),
            endpoint=_text(config, "model_endpoint", s.llm.endpoint, optional=True),
            context_window=_whole(config, "context_window", s.llm.context_window, MAX_WINDOW, optional=True),
            wrapper=_text(config, "model_wrapper", s.llm.wrapper, optional=True),
        )
        embedding = EmbeddingConfig(
            endpoint_type=_text(config, "embedding_endpoint_type", s.embedding.endpoint_type),
            model=_text(config, "embedding_model", s.embedding.model),
            dim=_whole(config, "embedding_dim", s.embedding.dim, MAX_DIM),
            endpoint=_text(config, "embedding_endpoint", s.embedding.endpoint, optional=True),
        )
        name = config.get("name")
        return self.api.create_agent(
            None if name is None or name == "" else str(name),  # none: "agent-N"
            preset=_text(config, "preset", None, optional=True), persona=_text(config, "persona", None, optional=True),
            human=_text(config, "human", None, optional=True), llm=llm, embedding=embedding,
        )

    async def user_message(self, data: dict[str, Any]) -> None:
        name = data.get("agent_name")
        message = data.get("message")
        if not name and self.agent_id is None:
            return await self.error("No agent chosen: send create_agent or load_agent first, or give agent_name.")
        if not isinstance(message, str) or not message.strip():
            return await self.error("'message' must be a non-empty string.")
        if len(message) > MAX_MESSAGE_CHARS:
            return await self.error(f"The message is {len(message)} characters long; the limit is {MAX_MESSAGE_CHARS}.")
        agent_id = self.agent_id
        if name:
            try:
                agent_id = (await asyncio.to_thread(self.api.get_agent, str(name))).id
            except MemGPTError as e:
                return await self.error(str(e))
        if agent_id is None:  # checked above; this tells the type checker
            return await self.error("No agent chosen.")
        if agent_id != self.agent_id or self.client not in self.interface.clients(agent_id):
            self.agent_id = agent_id
            self.interface.register(agent_id, self.client)
        api = self.api

        def events() -> Iterable[Event]:
            # Loaded by id on the step's own thread: a rename, or a new agent taking the
            # old name, cannot redirect a message already accepted for this agent.
            return api.stream(agent_id, message)

        await self.lanes.run(agent_id, events)


async def _deny(websocket: WebSocket, status: int, text: str, headers: dict[str, str] | None = None) -> None:
    """Refuse the handshake with an HTTP status and a reason the client can show."""
    from starlette.responses import PlainTextResponse

    try:
        await websocket.send_denial_response(PlainTextResponse(text, status_code=status, headers=headers))
    except RuntimeError:  # a server without the denial extension: a bare refusal
        await websocket.close(code=4000 + status, reason=text[:120])


def add_route(app, runtime: MemGPT | Runtime, credentials: tuple[str, str] | None, cookie_check=None,
              paths: tuple[str, ...] = ("/ws",), guard: LoginGuard | None = None,
              public: bool = False) -> WebSocketInterface:
    """Mount the endpoint on a FastAPI/Starlette app; returns its interface (for tests)."""
    endpoint, interface = websocket_endpoint(runtime, credentials, cookie_check, guard=guard, public=public)
    for path in paths:  # one endpoint, so every path shares the listeners and the agents' lanes
        app.add_api_websocket_route(path, endpoint)
    return interface


def websocket_endpoint(runtime: MemGPT | Runtime, credentials: tuple[str, str] | None, cookie_check=None, *,
                       guard: LoginGuard | None = None, public: bool = False):
    """(the endpoint coroutine, its interface), for a route built before its app (webapp/serve.py).

    Basic auth goes through the same throttled check as the web login (`guard`,
    shared with it when both run on one server), so the socket is no side door
    for guessing the password. `public`: strangers reach the server, so the
    endpoints of agents they create are checked (engine/endpoints.py).
    """
    api = runtime if isinstance(runtime, MemGPT) else MemGPT(runtime=runtime)
    if public:
        api.restrict_endpoints()
    interface = WebSocketInterface()
    lanes = AgentLanes(interface)
    if credentials is not None and guard is None:
        guard = LoginGuard(*credentials)

    async def endpoint(websocket: WebSocket) -> None:
        if credentials is not None:
            allowed = cookie_check is not None and cookie_check(websocket.cookies)
            pair = None if allowed else basic_credentials(websocket.headers.get("authorization"))
            if pair is not None and guard is not None:
                try:
                    allowed = guard.verify(*pair)
                except HTTPException as e:
                    return await _deny(websocket, e.status_code, str(e.detail), dict(e.headers or {}))
            if not allowed:
                return await _deny(websocket, 401, "Login required: send Basic auth or the web login's cookie.",
                                   {"WWW-Authenticate": 'Basic realm="memgpt"'})
        await websocket.accept()
        store = api.runtime.store
        if store.dialect == "postgres" and store.url and interface.relay is None:
            relay = interface.start_relay(store.url)
            # Once, for the first client: its first frame then already reaches the other servers' clients.
            await asyncio.to_thread(relay.listening.wait, 5)
        session = Session(api, interface, lanes, websocket)
        worker = asyncio.create_task(session.work())
        try:
            await session.read(websocket)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client left while we were answering it
        finally:
            interface.unregister(websocket)
            # Frames not yet started are dropped with the connection (there is nobody left
            # to tell); a step already running goes on in its agent's lane.
            worker.cancel()

    return endpoint, interface


def serve_forever(host: str, port: int, home: str | None, auth: str | None) -> None:
    """`python app.py ws`: the WebSocket API alone."""
    import uvicorn
    from fastapi import FastAPI

    from engine.runtime import open_runtime
    from webapp.exposure import is_exposed
    from webapp.serve import check_exposure, parse_auth

    credentials = parse_auth(auth)
    check_exposure(host, False, credentials, waive=False)
    app = FastAPI()
    runtime = open_runtime(home)
    # "/" too: MemGPT's own client connects to ws://localhost:8282 with no path.
    add_route(app, runtime, credentials, paths=("/ws", "/"), public=is_exposed(host, False))
    print(f"WebSocket API on ws://{host}:{port}/ws (and ws://{host}:{port}/)")
    # uvicorn shuts down on SIGTERM, then re-raises it to the handler it found: make that one
    # an ordinary interrupt, so the store below is closed instead of the process dying first.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()  # folds the write-ahead log into memgpt.db


def _interrupt(signum, frame):
    raise KeyboardInterrupt


MAX_FIELD_CHARS = 2_000  # a model name, an endpoint URL, a preset: nothing longer is one


def _text(config: dict[str, Any], key: str, default: str | None, *, optional: bool = False) -> Any:
    """config[key] (or `default` when absent) as text (None too when `optional`), or ValueError naming the field."""
    value = config.get(key, default)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
        raise ValueError(f"'{key}' must be a string of at most {MAX_FIELD_CHARS:,} characters.")
    return value


def _whole(config: dict[str, Any], key: str, default: int | None, high: int, *, optional: bool = False):
    """config[key] (or `default`) as a whole number from 1 to `high`, or ValueError naming the field."""
    value = config.get(key, default)
    if value is None and optional:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValueError(f"'{key}' must be a whole number from 1 to {high:,}.")
    return value
