"""The AutoGen examples, run end to end as programs against the scripted fake OpenAI server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("autogen")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "autogen"


def _call(function: str, call_id: str, /, **arguments) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": function, "arguments": json.dumps(arguments)}}


def run_example(name: str, fake, home: Path, *args: str) -> str:
    env = {**os.environ, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-example", "MEMGPT_HOME": str(home),
           "MEMGPT_EXAMPLE_MODEL": "gpt-test", "AUTOGEN_USE_DOCKER": "False"}
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=home.parent, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def chats(fake) -> list[dict]:
    return [body for path, body in fake.requests if path.endswith("/chat/completions")]


def test_autoreply(tmp_path, fake_openai):
    fake_openai.queue_chat({"content": "Kim builds telescopes; worth keeping.", "tool_calls": [
        _call("core_memory_append", "a1", name="human", content="Kim builds telescopes.", request_heartbeat=False),
        _call("send_message", "a2", message="Nice to meet you, Kim! I'll remember your telescopes.")]})
    out = run_example("autoreply.py", fake_openai, tmp_path / "home")
    assert "Nice to meet you, Kim! I'll remember your telescopes." in out
    assert "core_memory_append" in out  # shown: show_function_outputs
    sent = chats(fake_openai)[0]
    assert "user: Hi! I'm Kim, and I build telescopes." in json.dumps(sent["messages"])  # with its speaker's name


def test_groupchat_and_its_memory_across_runs(tmp_path, fake_openai):
    home = tmp_path / "home"
    fake_openai.queue_chat({"content": "Requirements: 1. Print tonight's moon phase. 2. No network access."})
    fake_openai.queue_chat({"content": "Saving the requirements first.", "tool_calls": [
        _call("core_memory_append", "c1", name="human", content="Project: moon-phase tool, offline.",
              request_heartbeat=False),
        _call("send_message", "c2", message="def moon_phase(day): return (day % 29.53) / 29.53")]})
    fake_openai.queue_chat({"content": "The coder's function looks right."})  # the PM again, last round
    out = run_example("groupchat.py", fake_openai, home)
    assert "--- MemGPT_coder:" in out and "def moon_phase(day)" in out
    assert "core_memory_append" in out
    requests = chats(fake_openai)
    coder_saw = json.dumps(requests[1]["messages"])
    assert "Product_manager: Requirements: 1. Print tonight's moon phase." in coder_saw  # the group reached MemGPT
    assert "def moon_phase(day)" in json.dumps(requests[2]["messages"])  # and MemGPT's answer reached the others

    # A second run: the same MemGPT agent, whose core memory still holds what the first run stored.
    fake_openai.requests.clear()
    fake_openai.queue_chat({"content": "Requirements: add a --date option."})
    fake_openai.queue_chat({"content": None, "tool_calls": [_call("send_message", "d1", message="Added --date.")]})
    fake_openai.queue_chat({"content": "Good."})
    out = run_example("groupchat.py", fake_openai, home)
    assert "Added --date." in out
    system = chats(fake_openai)[1]["messages"][0]["content"]
    assert "Project: moon-phase tool, offline." in system

    # The web app's view of it: the same agent, the group's messages in its conversation.
    from engine.api import MemGPT

    with MemGPT(home) as api:
        assert [a.name for a in api.list_agents()] == ["MemGPT_coder"]
        said = " ".join(m.text for m in api.messages("MemGPT_coder"))
        assert "Product_manager: Requirements: add a --date option." in said and "Added --date." in said


def test_docs_example_cites_the_loaded_file(tmp_path, fake_openai):
    notes = tmp_path / "observatory-notes.md"
    notes.write_text("# Observatory notes\nThe main telescope is a 400 mm reflector.\n")
    fake_openai.queue_chat({"content": "Searching the documents.", "tool_calls": [
        _call("archival_memory_search", "s1", query="main telescope size", request_heartbeat=True)]})
    fake_openai.queue_chat({"content": None, "tool_calls": [
        _call("send_message", "s2", message="It is a 400 mm reflector (from observatory-notes.md).")]})
    home = tmp_path / "home"
    home.mkdir()
    # Embedded locally (the real MiniLM): the fake server's test vectors are not OpenAI's 1536-d ones.
    (home / "config.yaml").write_text("embedding: {endpoint_type: local, model: all-MiniLM-L6-v2, dim: 384}\n")
    out = run_example("docs.py", fake_openai, home, str(notes))
    assert "It is a 400 mm reflector (from observatory-notes.md)." in out
    # The search really ran over the loaded file, and its result went back to the model.
    second = chats(fake_openai)[1]["messages"]
    result = next(m["content"] for m in second if m.get("tool_call_id") == "s1")
    assert "400 mm reflector" in result and "(from observatory)" in result, result
