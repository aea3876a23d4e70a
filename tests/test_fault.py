"""Fault test: SIGKILL the real server mid-step and a real load mid-way, restart, and check nothing was lost.

Everything is a real process on a real SQLite file: `python app.py ws` serving a
WebSocket client, `python app.py load directory` embedding through a (fake, HTTP)
OpenAI server. After the kills: integrity_check is "ok", every message the
server acknowledged is stored exactly once, every chunk of the load is stored
exactly once after it is run again, and the next turn succeeds.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.support.servers import AppProcess as Server
from tests.support.servers import app_env as _env
from tests.support.servers import fake_home

ROOT = Path(__file__).resolve().parent.parent
TURNS = 6


def _say(text: str, call_id: str) -> dict:
    return {"content": "Answering.", "tool_calls": [{"id": call_id, "type": "function", "function": {
        "name": "send_message", "arguments": json.dumps({"message": text})}}]}


@pytest.fixture
def fault_home(tmp_path, fake_openai):
    return fake_home(tmp_path / "home", fake_openai.base_url)


def _turn(ws, text: str) -> list[dict]:
    ws.send(json.dumps({"type": "user_message", "message": text}))
    frames = []
    while not frames or frames[-1]["type"] != "agent_response_end":
        frames.append(json.loads(ws.recv(timeout=60)))
    return frames


def _chat_requests(fake) -> int:
    return sum(1 for path, _ in fake.requests if path.endswith("/chat/completions"))


def test_kill_mid_step_and_mid_load_then_restart(fault_home, fake_openai, tmp_path):
    server = Server(fault_home)
    acknowledged: list[str] = []
    try:
        with connect(server.url) as ws:
            ws.send(json.dumps({"type": "command", "command": "create_agent", "config": {"name": "sturdy"}}))
            assert json.loads(ws.recv(timeout=30))["status"] == "OK"
            for i in range(TURNS):
                fake_openai.queue_chat(_say(f"reply {i}", f"say-{i}"))
                frames = _turn(ws, f"message {i}")
                assert {"type": "agent_response", "message_type": "assistant_message",
                        "message": f"reply {i}"} in frames, frames
                acknowledged.append(f"message {i}")
            # The next step hangs in the model; the server dies while waiting for it.
            before = _chat_requests(fake_openai)
            fake_openai.queue_chat(30.0)
            ws.send(json.dumps({"type": "user_message", "message": "message killed"}))
            deadline = time.monotonic() + 30
            while _chat_requests(fake_openai) == before:
                assert time.monotonic() < deadline, "the last step never reached the model"
                time.sleep(0.05)
            server.kill()
    finally:
        server.stop()
    fake_openai.chat_replies.clear()

    # A load killed part-way: many small files, embedded slowly, one batch committed at a time.
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(300):
        (docs / f"note-{i:03}.txt").write_text(f"Note {i}: the quick survey of comet {i} found {i * 7} fragments.")
    fake_openai.embedding_delay = 0.2
    load = [sys.executable, str(ROOT / "app.py"), "load", "directory", "--home", str(fault_home), "--name", "notes",
            "--path", str(docs)]
    loader = subprocess.Popen(load, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    db = fault_home / "memgpt.db"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert loader.poll() is None, "the load finished before it could be killed: " + loader.stdout.read()
            conn = sqlite3.connect(db, timeout=15)
            try:
                stored = conn.execute("SELECT count(*) FROM passages WHERE source_id IS NOT NULL").fetchone()[0]
            except sqlite3.OperationalError:
                stored = 0
            finally:
                conn.close()
            if stored > 0:
                break
            assert time.monotonic() < deadline, "the load never committed a batch"
            time.sleep(0.05)
        loader.send_signal(signal.SIGKILL)
        loader.wait(timeout=10)
    finally:
        if loader.poll() is None:
            loader.kill()
    assert 0 < stored < 300
    fake_openai.embedding_delay = 0.0
    finished = subprocess.run(load, env=_env(), capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        agent_id = conn.execute("SELECT id FROM agents WHERE name = 'sturdy'").fetchone()[0]
        texts = [r[0] for r in conn.execute(
            "SELECT text FROM messages WHERE agent_id = ? AND name = 'user_message' ORDER BY id", [agent_id])]
        for message in acknowledged:
            assert texts.count(message) == 1, (message, texts)
        assert texts.count("message killed") <= 1
        hashes = [r[0] for r in conn.execute(
            "SELECT content_hash FROM passages WHERE source_id = (SELECT id FROM sources WHERE name = 'notes')")]
        assert len(hashes) == 300 and len(set(hashes)) == 300
    finally:
        conn.close()

    # Restarted, the agent answers the next turn, through a server that refuses broken histories.
    server = Server(fault_home)
    try:
        with connect(server.url) as ws:
            ws.send(json.dumps({"type": "command", "command": "load_agent", "name": "sturdy"}))
            assert json.loads(ws.recv(timeout=30))["status"] == "OK"
            fake_openai.queue_chat(_say("still here", "say-after"))
            frames = _turn(ws, "are you still there?")
            assert {"type": "agent_response", "message_type": "assistant_message", "message": "still here"} in frames
            assert not [f for f in frames if f["type"] == "agent_response_error"], frames
    finally:
        server.stop()


@pytest.mark.parametrize("web", [False, True], ids=["ws", "web"])
def test_after_sigterm_the_database_file_alone_is_complete(fault_home, fake_openai, tmp_path, web):
    server = Server(fault_home, web=web)
    try:
        with connect(server.url) as ws:
            ws.send(json.dumps({"type": "command", "command": "create_agent", "config": {"name": "kept"}}))
            assert json.loads(ws.recv(timeout=30))["status"] == "OK"
            fake_openai.queue_chat(_say("noted", "say-kept"))
            _turn(ws, "remember this turn")
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0, server.proc.stdout.read()
    finally:
        server.stop()
    copy = tmp_path / "copy.db"
    copy.write_bytes((fault_home / "memgpt.db").read_bytes())  # the main file only, as a naive backup would
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("SELECT count(*) FROM agents WHERE name = 'kept'").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM messages WHERE text = 'remember this turn'").fetchone()[0] == 1
    finally:
        conn.close()
