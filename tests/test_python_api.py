"""The Python API: the example in docs/python-api.md runs verbatim, and the client's own behaviour."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import MemGPT
from engine.config import EmbeddingConfig, LLMConfig
from engine.errors import EditConflict, MemGPTError, NotFound

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "python-api.md"


def _call(function: str, call_id: str, /, **arguments) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": function, "arguments": json.dumps(arguments)}}


def test_the_documented_example_runs_verbatim(tmp_path, fake_openai):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    fake_openai.queue_chat({"content": "Kim is new; I'll remember that.", "tool_calls": [
        _call("core_memory_append", "c1", name="human", content="Name: Kim. Loves astronomy.",
              request_heartbeat=False),
        _call("send_message", "c2", message="Nice to meet you, Kim!")]})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_BASE_URL": fake_openai.base_url,
           "MEMGPT_HOME": str(tmp_path / "home")}
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "model: gpt-4o-mini embedder: all-MiniLM-L6-v2" in out
    assert "helper says: Nice to meet you, Kim!" in out
    assert "calls core_memory_append" in out
    assert re.search(r"human \(\d+/\d+ characters\):\n(.*\n)*Name: Kim\. Loves astronomy\.", out), out
    assert "200 mm Dobsonian" in out.split("loaded", 1)[-1]


@pytest.fixture
def client(runtime):
    return MemGPT(runtime=runtime)


def test_agents_by_name_or_id(client, fake_openai):
    llm = LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url)
    emb = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    made = client.create_agent("Éva", llm=llm, embedding=emb)
    assert client.get_agent(made.id) == client.get_agent("éva") == made
    unnamed = client.create_agent(llm=llm, embedding=emb)
    assert unnamed.name == "agent-1"
    renamed = client.rename_agent(made.id, "Eve")
    assert renamed.id == made.id and client.get_agent("eve").name == "Eve"
    client.delete_agent("Eve")
    with pytest.raises(NotFound):
        client.get_agent(made.id)
    assert [a.name for a in client.list_agents()] == ["agent-1"]


def test_conversation_memory_and_commands(client, fake_openai):
    llm = LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url)
    emb = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    client.create_agent("ada", llm=llm, embedding=emb)
    fake_openai.queue_chat({"content": None, "tool_calls": [_call("send_message", "s1", message="Hello!")]})
    events = client.user_message("ada", "hi")
    assert [e.text for e in events if e.kind == "assistant_message"] == ["Hello!"]
    block = client.update_core_memory("ada", "human", "Name: Ada")
    assert block.value == "Name: Ada"
    edit = client.memory_history("ada", "human")[0]
    assert client.memory_edit("ada", edit.id).new_value == "Name: Ada"
    reverted = client.revert("ada", edit.id)
    assert reverted.value == edit.old_value
    ids = client.insert_archival("ada", "Ada's cat is called Turing.")
    assert client.archival_count("ada") == len(ids)
    assert client.search_archival("ada", "cat").hits[0].passage.text.startswith("Ada's cat")
    client.delete_archival("ada", ids[0])
    assert client.archival_count("ada") == len(ids) - 1
    assert "Removed" in client.run_command("ada", "/pop 1")
    assert "human" in client.run_command("ada", "/memory")
    with pytest.raises(ValueError):
        client.run_command("ada", "/nonsense")
    assert client.context("ada").window > 0
    assert client.usage("ada")[0] == 1


def test_an_added_block_is_in_the_prompt_and_the_memory_tools_edit_it(client, fake_openai):
    llm = LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url)
    emb = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    client.create_agent("ada", llm=llm, embedding=emb)
    block = client.add_block("ada", "Projects", "garden plan", limit=120)
    assert (block.label, block.limit) == ("projects", 120)
    # A first reply must speak (the agent checks it), so the memory edit comes in the second turn.
    fake_openai.queue_chat({"content": None, "tool_calls": [_call("send_message", "s0", message="Hi!")]})
    client.user_message("ada", "hi")
    fake_openai.queue_chat({"content": "Noting the tomatoes.", "tool_calls": [
        _call("core_memory_append", "c1", name="projects", content="tomatoes", request_heartbeat=True)]})
    fake_openai.queue_chat({"content": None, "tool_calls": [_call("send_message", "s1", message="Noted!")]})
    client.user_message("ada", "I am planting tomatoes.")
    chats = [body for path, body in fake_openai.requests if path.endswith("/chat/completions")][1:]
    system = chats[0]["messages"][0]["content"]
    assert '<projects characters="11/120">\ngarden plan\n</projects>' in system
    assert '<projects characters="20/120">\ngarden plan\ntomatoes\n</projects>' in chats[1]["messages"][0]["content"]
    assert [b.value for b in client.get_core_memory("ada") if b.label == "projects"] == ["garden plan\ntomatoes"]
    assert client.memory_history("ada", "projects")[0].actor == "agent"

    assert client.set_block_limit("ada", "projects", 20).limit == 20
    with pytest.raises(MemGPTError, match="holds 20 characters"):
        client.set_block_limit("ada", "projects", 19)
    with pytest.raises(MemGPTError, match="cannot be removed"):
        client.remove_block("ada", "persona")
    client.remove_block("ada", "projects")
    assert [b.label for b in client.get_core_memory("ada")] == ["persona", "human"]
    assert client.memory_history("ada", "projects")[0].cause == "block removed"
    fake_openai.queue_chat({"content": None, "tool_calls": [_call("send_message", "s2", message="Ok.")]})
    client.user_message("ada", "bye")
    last = [body for path, body in fake_openai.requests if path.endswith("/chat/completions")][-1]
    assert "<projects" not in last["messages"][0]["content"]


def test_user_message_returns_the_whole_events_only(client, fake_openai):
    """The collected turn has no streamed pieces (each would repeat part of a whole event); stream() keeps them."""
    llm = LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url)
    emb = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    client.create_agent("ada", llm=llm, embedding=emb)
    reply = {"content": "Greeting them warmly.", "tool_calls": [_call("send_message", "s1", message="Hello there!")]}
    fake_openai.queue_chat(reply)
    events = client.user_message("ada", "hi")
    assert not [e for e in events if e.partial]
    assert [e.kind for e in events if e.kind in ("thought", "assistant_message")] == ["thought", "assistant_message"]
    fake_openai.queue_chat({**reply, "tool_calls": [_call("send_message", "s2", message="Hello again!")]})
    streamed = list(client.stream("ada", "hi again"))
    assert {e.kind for e in streamed if e.partial} == {"thought_delta", "message_delta"}  # the server streamed
    assert [e.kind for e in streamed if not e.partial] == [e.kind for e in events]


def test_an_api_edit_waits_for_a_running_turn_and_loses_nothing(client, fake_openai):
    """A Memory-tab style edit while the agent is mid-turn (editing the same block): both changes survive."""
    llm = LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url)
    emb = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    client.create_agent("busy", llm=llm, embedding=emb)
    fake_openai.queue_chat({"content": None, "tool_calls": [_call("send_message", "w1", message="Hi.")]})
    client.user_message("busy", "hello")  # the first turn, with its send_message check, out of the way
    before = next(b.value for b in client.get_core_memory("busy") if b.label == "human")
    asked = len(fake_openai.requests)
    fake_openai.queue_chat({"content": "Noting it.", "tool_calls": [
        _call("core_memory_append", "a1", name="human", content="Likes tea.", request_heartbeat=True)]})
    fake_openai.queue_chat(1.0)  # the turn's second call takes a second: the edit arrives meanwhile
    fake_openai.queue_chat({"content": None, "tool_calls": [_call("send_message", "a2", message="Done.")]})
    turn = client.stream("busy", "I like tea.")
    events = []
    worker = threading.Thread(target=lambda: events.extend(turn))
    worker.start()
    while not any(path.endswith("/chat/completions") for path, _ in fake_openai.requests[asked + 1:]):
        time.sleep(0.01)
    # The editor's text was written from `before`; the agent appended meanwhile.
    with pytest.raises(EditConflict, match="changed after you started editing it .*the agent"):
        client.update_core_memory("busy", "human", before + "\nEdited in the UI.", expected=before)
    worker.join(timeout=60)
    assert [e.text for e in events if e.kind == "assistant_message"] == ["Done."]
    current = next(b.value for b in client.get_core_memory("busy") if b.label == "human")
    assert "Likes tea." in current  # the agent's edit survived the stale save
    client.update_core_memory("busy", "human", current + "\nEdited in the UI.", expected=current)
    value = next(b.value for b in client.get_core_memory("busy") if b.label == "human")
    assert "Edited in the UI." in value and "Likes tea." in value
    assert [e.actor for e in client.memory_history("busy", "human")][:2] == ["user", "agent"]


def test_update_agent_switches_model_and_reembeds(client, fake_openai, embedder):
    llm = LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url)
    emb = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    client.create_agent("mover", llm=llm, embedding=emb)
    for i in range(7):
        client.insert_archival("mover", f"Fact number {i} about the moon.")
    seen = []
    local = EmbeddingConfig("local", "all-MiniLM-L6-v2", 384)
    updated = client.update_agent("mover", llm=LLMConfig("openai-compatible", "gpt-other", fake_openai.base_url),
                                  embedding=local, on_progress=lambda done, total, what: seen.append((done, total)))
    assert updated.llm.model == "gpt-other" and updated.embedding == local
    assert seen[-1] == (7, 7)
    top = client.search_archival("mover", "fact number 3 about the moon", k=7)
    assert len(top.hits) == 7 and "Fact number 3" in top.hits[0].passage.text
    assert len(client.search_archival("mover", "moon").hits) == 5  # one page by default
