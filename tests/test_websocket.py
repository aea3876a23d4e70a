"""The WebSocket face: fan-out to registered clients, the protocol over a real server, bad input."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time

import pytest
from fastapi import FastAPI
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from engine import MemGPT
from engine.events import AssistantMessage, Thought, ToolCall, Usage
from engine.runtime import Runtime
from tests.support.servers import free_port, launch_app, serve_app
from webapp.websocket import WebSocketInterface, add_route, event_frame


def tool_call(name, arguments, call_id="c1"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def send(message):
    return {"content": f"About to say {message!r}.", "tool_calls": [tool_call("send_message", {"message": message})]}


class MockClient:
    def __init__(self, fail: bool = False):
        self.frames: list[dict] = []
        self.fail = fail

    async def send_text(self, data: str) -> None:
        if self.fail:
            raise ConnectionError("gone")
        self.frames.append(json.loads(data))


def test_interface_fans_out_to_registered_clients():
    interface = WebSocketInterface()
    a1, a2, b, broken = MockClient(), MockClient(), MockClient(), MockClient(fail=True)
    interface.register(1, a1)
    interface.register(1, a2)
    interface.register(2, b)
    interface.register(1, broken)
    asyncio.run(interface.broadcast(1, {"type": "agent_response_start"}))
    assert a1.frames == a2.frames == [{"type": "agent_response_start"}]
    assert b.frames == []
    assert broken not in interface.clients(1)  # unregistered, the others untouched
    interface.unregister(a1)
    asyncio.run(interface.broadcast(1, {"type": "agent_response_end"}))
    assert len(a1.frames) == 1 and len(a2.frames) == 2


def test_event_frames():
    assert event_frame(Thought("hm")) == {"type": "agent_response", "message_type": "internal_monologue", "message": "hm"}
    assert event_frame(AssistantMessage("hi"))["message_type"] == "assistant_message"
    assert event_frame(ToolCall("core_memory_append", {"label": "human", "request_heartbeat": True}, "c"))[
        "message"] == 'Running core_memory_append({"label": "human"})'
    assert event_frame(Usage(1, 1, "m", 1, 1)) is None


@pytest.fixture
def ws_server(settings, store, library, registry, fake_openai):
    def start(credentials=None):
        settings.llm.endpoint_type = "openai-compatible"
        settings.llm.model = "gpt-test"
        settings.llm.endpoint = fake_openai.base_url
        settings.embedding.endpoint_type = "openai-compatible"
        settings.embedding.model = "test-hash"
        settings.embedding.dim = 64
        settings.embedding.endpoint = fake_openai.base_url
        app = FastAPI()
        add_route(app, Runtime(settings, store, library, registry), credentials)
        return f"ws://127.0.0.1:{servers.enter_context(serve_app(app))}/ws"

    with contextlib.ExitStack() as servers:
        yield start


def exchange(ws, frame) -> list[dict]:
    """Send a user message and collect frames up to agent_response_end."""
    ws.send(json.dumps(frame))
    frames = []
    while True:
        frames.append(json.loads(ws.recv(timeout=30)))
        if frames[-1]["type"] in ("agent_response_end", "server_error"):
            return frames


def create(ws, name, verify=False):
    ws.send(json.dumps({"type": "command", "command": "create_agent", "config": {"name": name}}))
    return json.loads(ws.recv(timeout=10))


def test_create_then_message(ws_server, fake_openai):
    url = ws_server()
    with connect(url) as ws:
        assert create(ws, "Ada") == {"type": "command_response", "status": "OK", "agent_name": "Ada"}
        fake_openai.queue_chat(send("Hello over the wire!"))
        frames = exchange(ws, {"type": "user_message", "message": "hi"})
    assert frames[0] == {"type": "agent_response_start"}
    assert frames[-1] == {"type": "agent_response_end"}
    kinds = [(f.get("message_type"), f.get("message")) for f in frames[1:-1]]
    assert ("internal_monologue", "About to say 'Hello over the wire!'.") in kinds
    assert ("assistant_message", "Hello over the wire!") in kinds


def test_block_commands_edit_core_memory_and_refuse_aloud(ws_server, settings, store, library, registry):
    url = ws_server()

    def command(**frame):
        ws.send(json.dumps({"type": "command", **frame}))
        answer = json.loads(ws.recv(timeout=10))
        if answer["type"] == "server_error":  # a refusal: the command_response with status error follows
            assert json.loads(ws.recv(timeout=10)) == {"type": "command_response", "status": "error",
                                                       "message": answer["message"]}
        return answer

    with connect(url) as ws:
        assert "No agent chosen" in command(command="add_block", label="projects")["message"]
        assert create(ws, "Ada")["status"] == "OK"
        added = command(command="add_block", label="Projects", value="An owl box.", limit=300)
        assert added == {"type": "command_response", "status": "OK",
                         "block": {"label": "projects", "value": "An owl box.", "limit": 300}}
        assert command(command="set_block_limit", label="projects", limit=50)["block"]["limit"] == 50
        assert "more than a limit of 5" in command(command="set_block_limit", label="projects", limit=5)["message"]
        for bad in ({"label": {"x": 1}}, {"label": "x" * 500}, {"label": "projects", "limit": "lots"},
                    {"label": "notes", "value": ["not", "text"]}, {"label": "9lives"}):
            assert command(command="add_block", **bad)["type"] == "server_error", bad
        assert "cannot be removed" in command(command="remove_block", label="persona")["message"]
        assert command(command="remove_block", label="projects") == {"type": "command_response", "status": "OK",
                                                                     "removed": "projects"}
        assert "no core memory block" in command(command="remove_block", label="projects")["message"]
        assert create(ws, "Bo")["status"] == "OK"  # another agent chosen; agent_name still reaches Ada
        assert command(command="add_block", label="notes", agent_name="Ada")["block"]["label"] == "notes"
    api = MemGPT(runtime=Runtime(settings, store, library, registry))
    assert [b.label for b in api.get_core_memory("Ada")] == ["persona", "human", "notes"]
    assert [b.label for b in api.get_core_memory("Bo")] == ["persona", "human"]
    assert [e.cause for e in api.memory_history("Ada", "projects")][0] == "block removed"


def test_bad_input_keeps_the_connection_usable(ws_server, fake_openai):
    url = ws_server()
    with connect(url) as ws:
        for frame, reason in [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "JSON object"),
            (json.dumps({"type": "dance"}), "Unknown frame type"),
            (json.dumps({"type": "command", "command": "fly"}), "Unknown command"),
            (json.dumps({"type": "user_message", "message": "hi"}), "No agent chosen"),
            (json.dumps({"type": "command", "command": "load_agent", "name": "nobody"}), "No agent named"),
            (json.dumps({"type": "user_message", "message": "hi", "agent_name": "nobody"}), "No agent named"),
            (json.dumps({"type": "command", "command": "create_agent", "config": {"name": "bad/name"}}), "Bad agent name"),
            ("x" * 70_000, "limit"),
        ]:
            ws.send(frame)
            answer = json.loads(ws.recv(timeout=10))
            assert answer["type"] == "server_error" and reason in answer["message"], (frame[:40], answer)
            if '"type": "command"' in frame:  # a failed command also gets MemGPT's command_response
                follow = json.loads(ws.recv(timeout=10))
                assert follow["type"] == "command_response" and follow["status"] == "error"
                assert reason in follow["message"]
        assert create(ws, "Ada")["status"] == "OK"
        ws.send(json.dumps({"type": "user_message", "message": "y" * 20_001}))
        assert "limit" in json.loads(ws.recv(timeout=10))["message"]
        fake_openai.queue_chat(send("Still fine."))
        frames = exchange(ws, {"type": "user_message", "message": "hello"})
        assert {"type": "agent_response", "message_type": "assistant_message", "message": "Still fine."} in frames


def test_two_clients_on_one_agent_both_hear_it(ws_server, fake_openai):
    url = ws_server()
    with connect(url) as a, connect(url) as b:
        assert create(a, "Shared")["status"] == "OK"
        b.send(json.dumps({"type": "command", "command": "load_agent", "name": "Shared"}))
        assert json.loads(b.recv(timeout=10))["status"] == "OK"
        fake_openai.queue_chat(send("Hello both."))
        frames_a = exchange(a, {"type": "user_message", "message": "hi"})
        frames_b = []
        while not frames_b or frames_b[-1]["type"] != "agent_response_end":
            frames_b.append(json.loads(b.recv(timeout=30)))
        assert frames_a == frames_b


def test_concurrent_clients_each_with_their_own_agent(ws_server, fake_openai):
    url = ws_server()
    results: dict[str, list] = {}

    def chat(name):
        with connect(url) as ws:
            assert create(ws, name)["status"] == "OK"
            results[name] = exchange(ws, {"type": "user_message", "message": f"I am {name}"})

    for i in range(3):
        fake_openai.queue_chat(send(f"reply {i}"))
    threads = [threading.Thread(target=chat, args=(f"agent{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 3
    said = sorted(f["message"] for frames in results.values() for f in frames
                  if f.get("message_type") == "assistant_message")
    assert said == ["reply 0", "reply 1", "reply 2"]


def test_disconnect_mid_step_disturbs_no_one(ws_server, fake_openai, store):
    url = ws_server()
    with connect(url) as b, connect(url) as a:
        assert create(a, "Solo")["status"] == "OK"
        b.send(json.dumps({"type": "command", "command": "load_agent", "name": "Solo"}))
        assert json.loads(b.recv(timeout=10))["status"] == "OK"
        fake_openai.queue_chat(1.0)  # the model takes a second...
        fake_openai.queue_chat(send("Finished anyway."))
        a.send(json.dumps({"type": "user_message", "message": "hello"}))
        assert json.loads(a.recv(timeout=10))["type"] == "agent_response_start"
        a.close()  # ...and the asker leaves mid-step
        frames = []
        while not frames or frames[-1]["type"] != "agent_response_end":
            frames.append(json.loads(b.recv(timeout=30)))
        assert {"type": "agent_response", "message_type": "assistant_message", "message": "Finished anyway."} in frames
    from engine.agents import get_agent
    from engine.memory import RecallMemory

    assert "Finished anyway." in RecallMemory(store, get_agent(store, "Solo").id).search("Finished")


def test_login_required_when_configured(ws_server):
    url = ws_server(credentials=("kim", "s3cret"))
    with pytest.raises(InvalidStatus):
        connect(url).close()
    token = base64.b64encode(b"kim:wrong").decode()
    with pytest.raises(InvalidStatus):
        connect(url, additional_headers={"Authorization": f"Basic {token}"}).close()
    token = base64.b64encode(b"kim:s3cret").decode()
    with connect(url, additional_headers={"Authorization": f"Basic {token}"}) as ws:
        assert create(ws, "Guarded")["status"] == "OK"


def test_on_the_web_app_server_the_web_login_admits_the_socket(runtime, settings, fake_openai, monkeypatch,
                                                                tmp_path):
    import httpx

    from webapp.app import build_demo
    from webapp.login import LoginGuard
    from webapp.serve import websocket_routes

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    demo = build_demo(runtime)
    demo.queue()
    credentials = ("kim", "s3cret")
    guard = LoginGuard(*credentials)
    port = launch_app(demo, auth=guard.check, app_kwargs={"routes": websocket_routes(demo, runtime, credentials, guard)})
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        with pytest.raises(InvalidStatus) as refused:
            connect(url).close()
        assert refused.value.response.status_code == 401
        login = httpx.post(f"http://127.0.0.1:{port}/login", data={"username": "kim", "password": "s3cret"})
        assert login.status_code == 200
        cookie = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
        with connect(url, additional_headers={"Cookie": cookie}) as ws:
            ws.send(json.dumps({"type": "command", "command": "load_agent", "name": "nobody"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "server_error"
    finally:
        demo.close()


def test_basic_auth_guessing_is_throttled_like_the_web_login(ws_server):
    """The socket is no side door: after a few wrong passwords, even the right one waits."""
    url = ws_server(credentials=("kim", "s3cret"))

    def attempt(password: str) -> int:
        token = base64.b64encode(f"kim:{password}".encode()).decode()
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers={"Authorization": f"Basic {token}"}).close()
        return refused.value.response.status_code

    codes = [attempt(f"guess{i}") for i in range(7)]
    assert codes[:5] == [401] * 5 and codes[-1] == 429, codes
    assert attempt("s3cret") == 429  # closed for now, whatever the password


def test_an_empty_config_creates_an_agent_with_a_generated_name(ws_server):
    with connect(ws_server()) as ws:
        ws.send(json.dumps({"type": "command", "command": "create_agent", "config": {}}))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["status"] == "OK" and reply["agent_name"] == "agent-1"


def test_the_standalone_server_listens_on_8282_at_ws_and_root(home, fake_openai, tmp_path):
    """`python app.py ws`: MemGPT's port by default, and its client's path ("/") as well as /ws."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    (home / "config.yaml").write_text(yaml.safe_dump({
        "llm": {"endpoint_type": "openai-compatible", "model": "gpt-test", "endpoint": fake_openai.base_url},
        "embedding": {"endpoint_type": "openai-compatible", "model": "test-hash", "dim": 64,
                      "endpoint": fake_openai.base_url}}))
    root = Path(__file__).resolve().parent.parent
    from cli.main import _parser

    assert _parser().parse_args(["ws"]).port == 8282
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(root / "app.py"), "ws", "--home", str(home), "--port", str(port)],
                            env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with connect(f"ws://127.0.0.1:{port}/", open_timeout=2) as ws:
                    ws.send(json.dumps({"type": "command", "command": "create_agent", "config": {"name": "Root"}}))
                    assert json.loads(ws.recv(timeout=10))["status"] == "OK"
                break
            except (OSError, TimeoutError, InvalidStatus):
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else ""
                time.sleep(0.2)
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send(json.dumps({"type": "command", "command": "load_agent", "name": "Root"}))
            assert json.loads(ws.recv(timeout=10))["status"] == "OK"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_streaming_reply_sends_delta_frames_then_the_whole(ws_server, fake_openai):
    url = ws_server()
    with connect(url) as ws:
        create(ws, "Ada")
        fake_openai.queue_chat({**send("A reply that breaks off."), "cut_after": 5})  # retried whole
        fake_openai.queue_chat(send("Hello in pieces, over the wire!"))
        frames = exchange(ws, {"type": "user_message", "message": "hi"})
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "agent_response_start" and kinds[-1] == "agent_response_end"
    reset = kinds.index("agent_response_delta_reset")
    after = frames[reset + 1:]
    said = "".join(f["delta"] for f in after if f["type"] == "agent_response_delta"
                   and f["delta_type"] == "assistant_message")
    thought = "".join(f["delta"] for f in after if f["type"] == "agent_response_delta"
                      and f["delta_type"] == "internal_monologue")
    assert said == "Hello in pieces, over the wire!" and thought == "About to say 'Hello in pieces, over the wire!'."
    whole = kinds.index("agent_response", reset)
    assert all(k != "agent_response_delta" for k in kinds[whole:])  # the pieces come before the whole frames
    assert {"type": "agent_response", "message_type": "assistant_message",
            "message": "Hello in pieces, over the wire!"} in frames
    assert 0 < sum(1 for f in frames[:reset] if f["type"] == "agent_response_delta")


def test_the_web_apps_socket_answers_as_soon_as_its_pages_do(tmp_path, fake_openai):
    """`python app.py`: the first moment the port serves a page, /ws is there too (it once answered 403 then)."""
    import http.client
    import subprocess
    import sys

    from tests.support.servers import ROOT, app_env, fake_home

    home = fake_home(tmp_path / "home", fake_openai.base_url)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--home", str(home), "--host", "127.0.0.1",
                             "--port", str(port)], env=app_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 90
        while True:  # as soon as anything answers HTTP on the port
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the web app did not start"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/")
                status = conn.getresponse().status
                break
            except OSError:
                time.sleep(0.005)
            finally:
                conn.close()
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "command", "command": "create_agent", "config": {"name": "early"}}))
            assert json.loads(ws.recv(timeout=30))["status"] == "OK"
        assert status == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
