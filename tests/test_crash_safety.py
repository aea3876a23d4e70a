"""Killing the process mid-step loses nothing already said, and the agent carries on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from engine.agent import Agent, AgentOptions
from engine.config import LLMConfig
from engine.events import AssistantMessage
from engine.store import SqliteStore
from engine.store import messages as messages_store
from tests.support.scripted import ScriptedModel, say

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import sys
    from engine.agent import Agent, AgentOptions
    from engine.runtime import open_runtime

    runtime = open_runtime(sys.argv[1])
    agent = Agent.load(runtime, "crashy", options=AgentOptions(verify_first_message=False))
    for event in agent.step("Remember: the vault code is 7431."):
        print(event.kind, flush=True)
    """
)


def test_sigkill_mid_step(home, make_agent, fake_openai, runtime, embedder):
    make_agent("crashy", llm=LLMConfig(endpoint_type="openai-compatible", model="gpt-test", endpoint=fake_openai.base_url))
    fake_openai.queue_chat({
        "content": "Saving the code.",
        "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "core_memory_append",
            "arguments": json.dumps({"name": "human", "content": "Vault code: 7431", "request_heartbeat": True})}}],
    })
    fake_openai.queue_chat(60.0)  # the second call hangs: the process dies while waiting for it
    script = home / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(script), str(home)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sum(1 for path, _ in fake_openai.requests if path.endswith("/chat/completions")) >= 2:
                break
            assert child.poll() is None, "the child exited early"
            time.sleep(0.05)
        else:
            raise AssertionError("the child never made its second call")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    store = SqliteStore(home / "memgpt.db")
    try:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        agent_id = store.db.execute("SELECT id FROM agents WHERE name = 'crashy'").fetchone()[0]
        rows = messages_store.list_messages(store, agent_id)
        tail = rows[-4:]
        assert [r.role for r in tail] == ["user", "assistant", "tool", "user"]
        assert "vault code is 7431" in tail[0].text
        assert tail[1].tool_calls[0]["function"]["name"] == "core_memory_append"
        assert json.loads(tail[2].content)["status"] == "OK"
        assert tail[3].name == "heartbeat"
        value = store.db.execute(
            "SELECT value FROM memory_blocks WHERE agent_id = ? AND label = 'human'", [agent_id]
        ).fetchone()[0]
        assert value.endswith("Vault code: 7431")
    finally:
        store.close()

    # The agent loads and the next step works.
    model = ScriptedModel().enqueue(say("I still remember the code."))
    agent = Agent.load(runtime, "crashy", provider=model, embedder=embedder,
                       options=AgentOptions(verify_first_message=False))
    events = list(agent.step("What was the code?"))
    assert AssistantMessage("I still remember the code.") in events
    assert "Vault code: 7431" in model.calls[0][0][0]["content"]


SLOW_TOOL = textwrap.dedent(
    '''
    import pathlib
    import time


    def wait_here(marker: str) -> str:
        """Signal that the call started, then take far longer than the test waits.

        Args:
            marker: A file to create once the call is running.
        """
        pathlib.Path(marker).write_text("started")
        time.sleep(120)
        return "finished"
    '''
)

CHILD_TOOL = textwrap.dedent(
    """
    import sys
    from engine.agent import Agent, AgentOptions
    from engine.runtime import open_runtime

    runtime = open_runtime(sys.argv[1])
    agent = Agent.load(runtime, "stuck", options=AgentOptions(verify_first_message=False))
    for event in agent.step("Please run the slow tool."):
        print(event.kind, flush=True)
    """
)


def test_sigkill_during_a_tool_call_does_not_brick_the_agent(home, settings, store, library, fake_openai, embedder):
    """A process killed inside a tool call leaves a call with no result; the next turn must still work.

    The fake server refuses such a history with HTTP 400, as OpenAI does.
    """
    from engine.agents import create_agent
    from engine.config import EmbeddingConfig
    from engine.runtime import Runtime
    from engine.store import agents as agents_store
    from engine.tools.registry import load_registry

    (home / "functions").mkdir()
    (home / "functions" / "slow.py").write_text(SLOW_TOOL)
    registry = load_registry(home / "functions")
    runtime = Runtime(settings, store, library, registry)
    row = create_agent(store, settings, library, registry, "stuck",
                       llm=LLMConfig(endpoint_type="openai-compatible", model="gpt-test", endpoint=fake_openai.base_url),
                       embedding=EmbeddingConfig(endpoint_type="openai-compatible", model=embedder.name,
                                                 dim=embedder.dimension, endpoint=fake_openai.base_url))
    agents_store.update(store, row.id, functions=[*row.functions, "wait_here"])
    marker = home / "started.txt"
    fake_openai.queue_chat({
        "content": "Running it.",
        "tool_calls": [{"id": "slow-1", "type": "function", "function": {
            "name": "wait_here", "arguments": json.dumps({"marker": str(marker), "request_heartbeat": True})}}],
    })
    script = home / "child_tool.py"
    script.write_text(CHILD_TOOL)
    child = subprocess.Popen([sys.executable, str(script), str(home)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the child exited early"
            assert time.monotonic() < deadline, "the tool call never started"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    rows = messages_store.list_messages(store, row.id)
    assert rows[-1].role == "assistant" and rows[-1].tool_calls[0]["id"] == "slow-1"  # the call, and no result

    # Loading the agent stores a result saying the call was interrupted ...
    agent = Agent.load(runtime, "stuck", embedder=embedder, options=AgentOptions(verify_first_message=False))
    result = messages_store.list_messages(store, row.id)[-1]
    assert result.role == "tool" and result.tool_call_id == "slow-1"
    assert json.loads(result.content)["status"] == "Failed" and "Interrupted" in json.loads(result.content)["message"]
    # ... and the next turn goes through a server that refuses broken histories.
    fake_openai.queue_chat({"content": None, "tool_calls": [{"id": "say-1", "type": "function", "function": {
        "name": "send_message", "arguments": json.dumps({"message": "Back again."})}}]})
    events = list(agent.step("Are you there?"))
    assert AssistantMessage("Back again.") in events, events
    sent = [body for path, body in fake_openai.requests if path.endswith("/chat/completions")][-1]["messages"]
    call_at = next(i for i, m in enumerate(sent) if any(c["id"] == "slow-1" for c in m.get("tool_calls") or []))
    assert sent[call_at + 1]["role"] == "tool" and sent[call_at + 1]["tool_call_id"] == "slow-1"


def test_a_result_stored_after_later_messages_moves_up_to_its_call(make_live_agent, scripted, store):
    """Also without a reload: a dangling call found before an LLM call is repaired, in prompt order."""
    from engine.context import in_context_rows

    agent = make_live_agent(scripted, name="late")
    messages_store.add(store, agent.row.id, "assistant", "Thinking.", tool_calls=[
        {"id": "x1", "type": "function", "function": {"name": "conversation_search", "arguments": "{}"}}], text="")
    messages_store.add(store, agent.row.id, "user", '{"type": "user_message", "message": "hello"}', name="user_message",
                       text="hello")
    assert agent.repair_interrupted() == 1
    rows = in_context_rows(store, agent.row.id)
    at = next(i for i, r in enumerate(rows) if r.tool_calls and r.tool_calls[0]["id"] == "x1")
    assert rows[at + 1].role == "tool" and rows[at + 1].tool_call_id == "x1"
    assert rows[at + 2].role == "user"
    assert agent.repair_interrupted() == 0
