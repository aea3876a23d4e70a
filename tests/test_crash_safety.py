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
from engine.store import Store
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
            "arguments": json.dumps({"label": "human", "content": "Vault code: 7431", "request_heartbeat": True})}}],
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

    store = Store(home / "memgpt.db")
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
