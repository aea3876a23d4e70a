"""Two server processes on one PostgreSQL database, driving the same agent at once.

`python app.py` (the web app, with its /ws) and `python app.py ws` both serve
the agent. A client on each sends messages at the same time. The agent's steps
must never interleave (the per-agent lock is a database lock), nothing may be
lost, and each client must hear every frame of every step, its own server's
directly and the other's through LISTEN/NOTIFY.
"""

from __future__ import annotations

import json
import threading

import psycopg
import pytest
import yaml
from websockets.sync.client import connect

from tests.support import postgres
from tests.support.servers import AppProcess, app_env

PER_CLIENT = 4


def _say(text: str, call_id: str) -> dict:
    return {"content": "Answering.", "tool_calls": [{"id": call_id, "type": "function", "function": {
        "name": "send_message", "arguments": json.dumps({"message": text})}}]}


@pytest.fixture
def shared(tmp_path, fake_openai):
    url = postgres.fresh_database()
    homes = []
    for name in ("web", "ws"):  # separate data homes: only the database is shared
        home = tmp_path / name
        home.mkdir()
        (home / "config.yaml").write_text(yaml.safe_dump({
            "llm": {"endpoint_type": "openai-compatible", "model": "gpt-test", "endpoint": fake_openai.base_url},
            "embedding": {"endpoint_type": "openai-compatible", "model": "test-hash", "dim": 64,
                          "endpoint": fake_openai.base_url},
        }))
        homes.append(home)
    yield url, homes
    postgres.drop_database(url)


def _collect(url: str, tag: str, frames: list[dict], ends_wanted: int, errors: list[str]) -> None:
    try:
        with connect(url) as ws:
            ws.send(json.dumps({"type": "command", "command": "load_agent", "name": "shared"}))
            reply = json.loads(ws.recv(timeout=30))
            assert reply.get("status") == "OK", reply
            barrier.wait(timeout=60)  # both clients are listening before anyone speaks
            for i in range(PER_CLIENT):
                ws.send(json.dumps({"type": "user_message", "message": f"{tag}-{i}"}))
            ends = 0
            while ends < ends_wanted:
                frame = json.loads(ws.recv(timeout=120))
                frames.append(frame)
                ends += frame["type"] == "agent_response_end"
    except Exception as e:  # reported by the test thread
        errors.append(f"{tag}: {type(e).__name__}: {e}")


barrier = threading.Barrier(2)


def test_two_processes_share_one_agent_without_interleaving(shared, fake_openai):
    url, (web_home, ws_home) = shared
    total = 2 * PER_CLIENT
    for i in range(total):  # a slow model, so the two servers' steps really overlap in time
        fake_openai.queue_chat(0.2)
        fake_openai.queue_chat(_say(f"reply {i}", f"say-{i}"))
    env = app_env(MEMGPT_DATABASE_URL=url)
    web = AppProcess(web_home, web=True, env=env)
    ws = AppProcess(ws_home, env=env)
    try:
        with connect(ws.url) as client:
            client.send(json.dumps({"type": "command", "command": "create_agent", "config": {"name": "shared"}}))
            assert json.loads(client.recv(timeout=30))["status"] == "OK"
        barrier.reset()
        seen: dict[str, list[dict]] = {"a": [], "b": []}
        errors: list[str] = []
        threads = [threading.Thread(target=_collect, args=(server.url, tag, seen[tag], total, errors))
                   for server, tag in ((web, "a"), (ws, "b"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
        assert not errors, errors
    finally:
        web.stop()
        ws.stop()

    replies = {f"reply {i}" for i in range(total)}
    for tag, frames in seen.items():
        said = [f["message"] for f in frames if f.get("message_type") == "assistant_message"]
        assert sorted(said) == sorted(replies), (tag, said)  # every step's words, from both servers
        kinds = [f["type"] for f in frames]
        assert kinds.count("agent_response_start") == kinds.count("agent_response_end") == total, (tag, kinds)
        assert not any(f["type"] in ("agent_response_error", "server_error") for f in frames), (tag, frames)

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT role, name, text FROM messages WHERE agent_id = (SELECT id FROM agents WHERE name = 'shared') "
            "ORDER BY id").fetchall()
    turns = [i for i, (role, name, _) in enumerate(rows) if role == "user" and name == "user_message"]
    assert sorted(rows[i][2] for i in turns) == sorted(f"{t}-{i}" for t in "ab" for i in range(PER_CLIENT))
    # Each step is whole: its user message, the call, its result, and then the next step.
    for start in turns:
        assert [r[0] for r in rows[start:start + 3]] == ["user", "assistant", "tool"], rows[start:start + 4]
    assert all(b - a == 3 for a, b in zip(turns, turns[1:])), turns
