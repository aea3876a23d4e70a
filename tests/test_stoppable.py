"""MemGPT.stoppable: a stopped turn ends where nothing is half done, keeps what it stored and frees the agent."""

from __future__ import annotations

from engine.agent import REPAIR_WINDOW, unanswered_calls
from engine.api import MemGPT
from engine.store import messages as messages_store
from tests.support.scripted import say, use


def test_a_stop_asked_between_a_call_and_its_result_waits_for_the_result(make_live_agent, scripted, runtime, store):
    agent = make_live_agent(scripted)
    scripted.enqueue(use("conversation_search", "Looking.", query="x"), say("Never asked for."))
    api = MemGPT(runtime=runtime)
    seen: list[str] = []
    # Asked for once the search is called: the turn still runs it and stores its result, then ends.
    for event in api.stoppable(agent.row.id, agent.step("question"), lambda: "tool_call" in seen):
        seen.append(event.kind)
    assert seen == ["user_message", "usage", "thought", "tool_call", "tool_result"]
    rows = messages_store.list_messages(store, agent.row.id, last=REPAIR_WINDOW)
    assert not unanswered_calls(rows)
    assert "Never asked for." not in " ".join(r.text or "" for r in rows)
    assert not agent.busy  # closed: the lock is free for the next turn
    scripted.enqueue(say("Next."))
    assert any(e.kind == "assistant_message" for e in agent.step("again"))


def test_a_stop_never_asked_for_runs_the_turn_to_its_end(make_live_agent, scripted, runtime):
    agent = make_live_agent(scripted)
    scripted.enqueue(use("conversation_search", "Looking.", query="x"), say("Done."))
    kinds = [e.kind for e in MemGPT(runtime=runtime).stoppable(agent.row.id, agent.step("q"), lambda: False)]
    assert kinds.count("assistant_message") == 1
