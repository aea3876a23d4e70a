"""Calls exactly as MemGPT 0.2's prompts and models make them: every function, MemGPT's argument names."""

from __future__ import annotations

from engine.events import ToolResult
from engine.llm.base import Completion
from tests.support.scripted import ScriptedModel, say, use

# (function, arguments) in the shape MemGPT 0.2 documented them; request_heartbeat is added by `use`.
MEMGPT_CALLS = [
    ("core_memory_append", {"name": "human", "content": "Name: Kim. Studies the night sky."}),
    ("core_memory_replace", {"name": "human", "old_content": "Studies the night sky.", "new_content": "Astronomer."}),
    ("archival_memory_insert", {"content": "Kim's telescope is a 200 mm Dobsonian."}),
    ("archival_memory_search", {"query": "telescope", "page": 0}),
    ("conversation_search", {"query": "telescope", "page": 0}),
    ("conversation_search_date", {"start_date": "2020-01-01", "end_date": "2099-12-31", "page": 0}),
    ("message_chatgpt", {"message": "Name one bright star."}),
    ("append_to_text_file", {"filename": "notes.txt", "content": "Observing log, night one."}),
    ("read_from_text_file", {"filename": "notes.txt", "line_start": 1, "num_lines": 1}),
    ("http_request", {"method": "GET", "url": "http://127.0.0.1/blocked", "payload_json": None}),
]


def test_a_memgpt_request_log_runs_without_argument_errors(make_live_agent, settings):
    settings.files_dir.mkdir(parents=True, exist_ok=True)
    model = ScriptedModel()
    for function, arguments in MEMGPT_CALLS:
        model.enqueue(use(function, f"Calling {function}.", **arguments))
        if function == "message_chatgpt":
            model.enqueue(Completion("Sirius.", [], 5, 2, "scripted"))  # the stateless one-shot answer
    model.enqueue(use("pause_heartbeats", "A rest.", heartbeat=False, minutes=5), say("All done."))
    agent = make_live_agent(model, name="compat", preset="memgpt_extras")
    events = list(agent.step("Go through everything."))
    for _ in range(3):  # the chain cap splits a long log over a few steps
        if not any(e.kind == "system_alert" and e.alert == "chain_limit" for e in events):
            break
        events += list(agent.heartbeat())
    ran = [e.name for e in events if isinstance(e, ToolResult)]
    assert ran == [f for f, _ in MEMGPT_CALLS] + ["pause_heartbeats", "send_message"]
    stored = [m for m in agent_events(agent) if m.role == "tool"]
    messages = " ".join(m.content or "" for m in stored)
    assert "unexpected argument" not in messages and "missing required" not in messages, messages
    blocks = {b.label: b.value for b in agent.core.blocks()}
    assert "Name: Kim. Astronomer." in blocks["human"]
    assert "Sirius." in messages and "Observing log, night one." in messages
    assert "refused" in messages  # http_request ran (and refused a loopback address), with MemGPT's arguments
    assert any(e.kind == "assistant_message" and e.text == "All done." for e in events)


def agent_events(agent):
    from engine.store import messages as messages_store

    return messages_store.list_messages(agent.store, agent.row.id)
