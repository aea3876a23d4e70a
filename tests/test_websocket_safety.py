"""The WebSocket API under hostile or heavy use: identity by agent id, floods, keepalive, fairness.

Everything is real: a uvicorn server on loopback, the engine, a SQLite file, and an
OpenAI-format HTTP server whose model name sets how it behaves, so each agent can be
given its own speed without sharing a queue of scripted replies.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi import FastAPI
from websockets.sync.client import connect

from engine.runtime import Runtime
from tests.support.servers import serve_app
from webapp.websocket import MAX_PENDING, add_route


class EchoLLM:
    """Replies with send_message("echo: <the user's message>").

    Model names: "echo" answers at once, "slow-<s>" after s seconds, and "broken-<s>"
    after s seconds with a usage block the engine cannot add up (an engine exception
    mid-step, reached through the real client instead of a patched function).
    """

    def __init__(self, embedder):
        self.embedder = embedder
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @staticmethod
    def last_user_text(messages) -> str:
        for m in reversed(messages):
            if m.get("role") == "user" and isinstance(m.get("content"), str):
                try:
                    packaged = json.loads(m["content"])
                except json.JSONDecodeError:
                    continue
                if isinstance(packaged, dict) and packaged.get("type") == "user_message":
                    return packaged["message"]
        return "?"

    def _handler(self):
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.endswith("/embeddings"):
                    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    vectors = echo.embedder.embed(inputs)
                    return self._send({"object": "list", "model": body.get("model"),
                                       "data": [{"object": "embedding", "index": i, "embedding": list(v)}
                                                for i, v in enumerate(vectors)],
                                       "usage": {"prompt_tokens": 0, "total_tokens": 0}})
                model = body.get("model", "echo")
                kind, _, seconds = model.partition("-")
                if seconds:
                    time.sleep(float(seconds))
                text = echo.last_user_text(body.get("messages", []))
                call = {"id": f"call-{time.monotonic_ns()}", "type": "function",
                        "function": {"name": "send_message", "arguments": json.dumps({"message": f"echo: {text}"})}}
                usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
                if kind == "broken":
                    usage = {"prompt_tokens": "lots", "completion_tokens": "many", "total_tokens": "all"}
                self._send({"id": "chatcmpl-echo", "object": "chat.completion", "created": int(time.time()),
                            "model": model, "usage": usage,
                            "choices": [{"index": 0, "finish_reason": "tool_calls",
                                         "message": {"role": "assistant", "content": "Echoing.", "tool_calls": [call]}}]})

            def _send(self, payload):
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture
def echo(embedder):
    server = EchoLLM(embedder)
    yield server
    server.stop()


@pytest.fixture
def serve(settings, store, library, registry, echo):
    def start(**ws_options):
        settings.llm.endpoint_type = "openai-compatible"
        settings.llm.model = "echo"
        settings.llm.endpoint = echo.base_url
        settings.embedding.endpoint_type = "openai-compatible"
        settings.embedding.model = "test-hash"
        settings.embedding.dim = 64
        settings.embedding.endpoint = echo.base_url
        app = FastAPI()
        add_route(app, Runtime(settings, store, library, registry), None)
        return f"ws://127.0.0.1:{servers.enter_context(serve_app(app, **ws_options))}/ws"

    with contextlib.ExitStack() as servers:
        yield start


def open_ws(url):
    # An unbounded client-side queue: the test reads late on purpose and must not
    # stall the server's writes by leaving frames unread.
    return connect(url, max_queue=None, open_timeout=10)


def command(ws, **frame) -> dict:
    ws.send(json.dumps({"type": "command", **frame}))
    return json.loads(ws.recv(timeout=10))


def create(ws, name, model="echo") -> dict:
    return command(ws, command="create_agent", config={"name": name, "model": model})


def read_exchanges(ws, count, timeout=30) -> list[list[dict]]:
    """Frames grouped by exchange, until `count` agent_response_end frames have arrived."""
    exchanges, current = [], []
    while len(exchanges) < count:
        frame = json.loads(ws.recv(timeout=timeout))
        current.append(frame)
        if frame["type"] == "agent_response_end":
            exchanges.append(current)
            current = []
    return exchanges


def said(frames) -> list[str]:
    return [f["message"] for f in frames if f.get("message_type") == "assistant_message"]


def test_listeners_and_messages_follow_the_agent_id_not_the_name(serve, store):
    from engine.agents import get_agent, rename_agent
    from engine.memory import RecallMemory

    url = serve()
    with open_ws(url) as old, open_ws(url) as new:
        assert create(old, "Ada")["status"] == "OK"
        first = get_agent(store, "Ada")
        rename_agent(store, first.id, "Bea")
        # The name is free again and a stranger takes it; the first client must not hear them.
        assert create(new, "Ada")["status"] == "OK"
        second = get_agent(store, "Ada")
        assert second.id != first.id
        new.send(json.dumps({"type": "user_message", "message": "for the new Ada"}))
        assert said(read_exchanges(new, 1)[0]) == ["echo: for the new Ada"]
        old.send(json.dumps({"type": "user_message", "message": "still me"}))
        heard = read_exchanges(old, 1)[0]
    assert said(heard) == ["echo: still me"]
    assert "still me" in RecallMemory(store, first.id).search("still")
    assert "still me" not in RecallMemory(store, second.id).search("still")


def test_a_flood_is_answered_or_refused_frame_by_frame(serve):
    url = serve()
    sent = 120
    with open_ws(url) as ws:
        assert create(ws, "Flooded")["status"] == "OK"
        for i in range(sent):
            ws.send(json.dumps({"type": "user_message", "message": f"m{i}"}))
        answered, refused = [], []
        while len(answered) + len(refused) < sent:
            frame = json.loads(ws.recv(timeout=30))
            if frame["type"] == "server_error":
                assert f"Too many pending messages ({MAX_PENDING})" in frame["message"]
                assert "not processed" in frame["message"]
                refused.extend(re.findall(r'"m(\d+)"', frame["message"]))
            elif frame.get("message_type") == "assistant_message":
                answered.append(frame["message"].removeprefix("echo: m"))
        # Every frame is accounted for exactly once, and the backlog really was bounded.
        assert sorted(map(int, answered + refused)) == list(range(sent))
        assert refused and len(answered) >= MAX_PENDING
        assert answered == sorted(answered, key=int)  # handled in the order sent
        # The connection is still good once the flood is over.
        ws.send(json.dumps({"type": "user_message", "message": "after"}))
        tail = []
        while not tail or tail[-1]["type"] != "agent_response_end" or "echo: after" not in said(tail):
            tail.append(json.loads(ws.recv(timeout=30)))


def test_long_steps_keep_the_connection_alive_and_engine_errors_end_the_exchange(serve):
    # Keepalive far shorter than the step: the server must keep reading pongs while it works.
    url = serve(ws_ping_interval=0.2, ws_ping_timeout=0.3)
    with open_ws(url) as ws:
        assert create(ws, "Slowpoke", model="broken-1.2")["status"] == "OK"
        ws.send(json.dumps({"type": "user_message", "message": "first"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "agent_response_start"
        ws.send(json.dumps({"type": "user_message", "message": "second, sent mid-step"}))
        for exchange in read_exchanges(ws, 2):
            assert exchange[0]["type"] in ("agent_response_start", "agent_response_error")
            errors = [f for f in exchange if f["type"] == "agent_response_error"]
            assert errors and "unsupported operand" in errors[-1]["message"], exchange
            assert exchange[-1] == {"type": "agent_response_end"}
        assert command(ws, command="load_agent", name="Slowpoke")["status"] == "OK"


def test_a_busy_agent_does_not_hold_up_the_others(serve):
    url = serve()
    clients, per_client = 16, 2
    with open_ws(url) as b:
        assert create(b, "Bystander")["status"] == "OK"
        for i in range(2):  # the first step of an agent does extra work; time the second
            started = time.monotonic()
            b.send(json.dumps({"type": "user_message", "message": f"solo {i}"}))
            assert said(read_exchanges(b, 1)[0]) == [f"echo: solo {i}"]
            solo = time.monotonic() - started

        with contextlib.ExitStack() as stack:
            busy = [stack.enter_context(open_ws(url)) for _ in range(clients)]
            assert create(busy[0], "Busy", model="slow-0.15")["status"] == "OK"
            for ws in busy[1:]:
                assert command(ws, command="load_agent", name="Busy")["status"] == "OK"
            for i, ws in enumerate(busy):
                for j in range(per_client):
                    ws.send(json.dumps({"type": "user_message", "message": f"c{i}-m{j}"}))
            time.sleep(0.3)  # let the busy agent's backlog build up

            started = time.monotonic()
            b.send(json.dumps({"type": "user_message", "message": "me too"}))
            assert said(read_exchanges(b, 1)[0]) == ["echo: me too"]
            loaded = time.monotonic() - started
            # About its own latency, not the busy agent's backlog (32 steps x 0.15 s).
            assert loaded < 3 * solo + 0.5, (loaded, solo)

            heard = [read_exchanges(ws, clients * per_client) for ws in busy]
    # Every listener heard every step, each one whole, all in the same order...
    sequences = [[said(exchange) for exchange in exchanges] for exchanges in heard]
    assert all(seq == sequences[0] for seq in sequences)
    assert all(len(replies) == 1 for replies in sequences[0])
    order = [replies[0].removeprefix("echo: ") for replies in sequences[0]]
    assert sorted(order) == sorted(f"c{i}-m{j}" for i in range(clients) for j in range(per_client))
    # ...and each client's messages were answered in the order it sent them.
    for i in range(clients):
        assert order.index(f"c{i}-m0") < order.index(f"c{i}-m1")


def test_a_binary_frame_is_refused_aloud_and_the_connection_stays(serve):
    url = serve()
    with open_ws(url) as ws:
        ws.send(b"\x00\x01 not text")
        answer = json.loads(ws.recv(timeout=10))
        assert answer["type"] == "server_error" and "Binary frames" in answer["message"]
        assert create(ws, "Plain")["status"] == "OK"


@pytest.mark.parametrize("config", [
    {"embedding_dim": 1e30}, {"embedding_dim": 0}, {"embedding_dim": -3}, {"embedding_dim": True},
    {"model": ["x"]}, {"model": {"a": 1}}, {"context_window": "lots"}, {"model_endpoint": "x" * 3000},
])
def test_a_create_agent_config_of_the_wrong_shape_is_refused_by_field(serve, store, config):
    from engine.agents import list_agents

    url = serve()
    with open_ws(url) as ws:
        refused = command(ws, command="create_agent", config={"name": "Odd", **config})
        assert refused["type"] == "server_error" and f"'{next(iter(config))}'" in refused["message"]
        assert json.loads(ws.recv(timeout=10)) == {"type": "command_response", "status": "error",
                                                   "message": refused["message"]}  # what clients wait for
        assert list_agents(store) == []  # stored as sent, it failed every later turn
        assert create(ws, "Plain")["status"] == "OK"


def test_create_agent_takes_the_persona_and_a_huge_number_is_bad_json(serve, store):
    from engine.agents import get_agent
    from engine.store import blocks

    url = serve()
    with open_ws(url) as ws:
        made = command(ws, command="create_agent", config={"name": "Coached", "persona": "coach", "human": "basic",
                                                            "embedding_dim": 64.0})
        assert made["status"] == "OK"
        ws.send('{"type": "command", "command": "load_agent", "name": ' + "9" * 5000 + "}")
        answer = json.loads(ws.recv(timeout=10))
        assert answer["type"] == "server_error" and "not valid JSON" in answer["message"]
    persona = blocks.get(store, get_agent(store, "Coached").id, "persona").value
    coach = (Path(__file__).parent.parent / "presets" / "personas" / "coach.txt").read_text().strip()
    assert persona.strip() == coach  # a stray comment had swallowed the argument: every agent got sam


def test_block_edits_waiting_on_a_busy_agent_leave_threads_for_everyone_else(serve):
    url = serve()
    with contextlib.ExitStack() as stack:
        owner = stack.enter_context(open_ws(url))
        assert create(owner, "Busy", model="slow-6")["status"] == "OK"
        assert create(owner, "Idle")["status"] == "OK"
        owner.send(json.dumps({"type": "user_message", "message": "take your time", "agent_name": "Busy"}))
        time.sleep(0.5)  # the turn holds Busy's lock for ~6 s
        for _ in range(12):  # each edit waits for that lock; 12 filled asyncio's shared pool (6 threads here)
            ws = stack.enter_context(open_ws(url))
            ws.send(json.dumps({"type": "command", "command": "set_block_limit", "agent_name": "Busy",
                                "label": "persona", "limit": 2000}))
        time.sleep(0.5)
        with open_ws(url) as newcomer:
            started = time.monotonic()
            assert command(newcomer, command="load_agent", name="Idle")["status"] == "OK"
            assert time.monotonic() - started < 3  # it waited for the busy agent's turn before (57 s measured)
