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
from websockets.sync.client import connect

from tests.support import postgres
from tests.support.servers import AppProcess, app_env, fake_home

PER_CLIENT = 4


def _say(text: str, call_id: str) -> dict:
    return {"content": "Answering.", "tool_calls": [{"id": call_id, "type": "function", "function": {
        "name": "send_message", "arguments": json.dumps({"message": text})}}]}


@pytest.fixture
def shared(tmp_path, fake_openai):
    url = postgres.fresh_database()
    # Separate data homes: only the database is shared.
    homes = [fake_home(tmp_path / name, fake_openai.base_url) for name in ("web", "ws")]
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


def test_the_relay_carries_big_frames_in_order_and_never_back_to_their_sender():
    """A frame over NOTIFY's 8,000 bytes travels through broadcast_frames; order and origin hold."""
    from webapp.relay import MAX_PAYLOAD, FrameRelay

    url = postgres.fresh_database()
    got: dict[str, list] = {"one": [], "two": []}
    both = threading.Event()
    relays = {name: FrameRelay(url, lambda agent_id, data, name=name: got[name].append((agent_id, data)))
              for name in got}
    try:
        for relay in relays.values():
            assert relay.listening.wait(10)
        big = json.dumps({"type": "agent_response", "message": "é" * (2 * MAX_PAYLOAD)}, ensure_ascii=False)
        sent = [(7, '{"n": 1}'), (7, big), (9, '{"n": 3}')]
        for agent_id, data in sent:
            relays["one"].publish(agent_id, data)
        for _ in range(100):
            if len(got["two"]) == len(sent):
                both.set()
                break
            both.wait(0.1)
        assert got["two"] == sent
        assert got["one"] == []  # a process already sent its own clients their frames
    finally:
        for relay in relays.values():
            relay.close()
        postgres.drop_database(url)
