"""Conversation operations the faces call (pop, retry, rethink, rewrite, heartbeat) and concurrency."""

from __future__ import annotations

import threading

import pytest

from engine.agent import Agent, AgentOptions
from engine.context import in_context_rows
from engine.errors import NotFound, TooLarge
from engine.events import AssistantMessage
from engine.store import messages as messages_store
from tests.support.scripted import ScriptedModel, say, use

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


@pytest.fixture
def chatty(make_live_agent, scripted):
    agent = make_live_agent(scripted)
    scripted.enqueue(say("First answer."))
    list(agent.step("first question"))
    scripted.enqueue(use("conversation_search", "Looking.", query="first"), say("Second answer."))
    list(agent.step("second question"))
    return agent


def test_pop_never_leaves_half_a_call(chatty, store):
    before = in_context_rows(store, chatty.row.id)
    # The last rows are: heartbeat, assistant(send_message), tool. Popping 1 takes the tool
    # result, so its call must go too.
    removed = chatty.pop(1)
    assert len(removed) == 2
    after = in_context_rows(store, chatty.row.id)
    assert after == before[:-2]
    assert after[-1].name == "heartbeat"
    chatty.pop(3)  # heartbeat, then the search's tool result -> its call goes too
    rows = in_context_rows(store, chatty.row.id)
    assert rows[-1].name == "user_message" and "second question" in rows[-1].text
    with pytest.raises(ValueError):
        chatty.pop(0)


def test_retry_reruns_the_last_user_message(chatty, scripted, store):
    scripted.enqueue(say("A better second answer."))
    events = list(chatty.retry())
    assert AssistantMessage("A better second answer.") in events
    texts = [r.text for r in messages_store.list_messages(store, chatty.row.id) if r.name == "user_message"]
    assert texts == ["first question", "second question"]
    assert "Second answer." not in chatty.recall.search("answer")


def test_rethink_and_rewrite(chatty, store):
    chatty.rethink("A calmer thought.")
    chatty.rewrite("A rewritten answer.")
    rows = in_context_rows(store, chatty.row.id)
    last_assistant = [r for r in rows if r.role == "assistant"][-1]
    assert last_assistant.content == "A calmer thought."
    assert '"A rewritten answer."' in last_assistant.tool_calls[0]["function"]["arguments"]
    assert "rewritten" in chatty.recall.search("rewritten")
    assert "Second answer." not in chatty.recall.search("Second answer")


def test_an_edit_over_the_message_limit_is_refused_and_changes_nothing(chatty, store):
    before = in_context_rows(store, chatty.row.id)
    huge = "x" * (chatty.options.max_user_message_chars + 1)
    with pytest.raises(TooLarge, match="limit is 20,000"):
        chatty.rethink(huge)
    with pytest.raises(TooLarge):
        chatty.rewrite(huge)
    assert in_context_rows(store, chatty.row.id) == before  # it would have filled the window for good
    chatty.rewrite("x" * chatty.options.max_user_message_chars)  # at the limit: still an edit


def test_rethink_without_anything(make_live_agent, scripted, store):
    agent = make_live_agent(scripted)
    chatty_rows = in_context_rows(store, agent.row.id)
    agent.pop(len(chatty_rows))
    with pytest.raises(NotFound):
        agent.rethink("x")
    with pytest.raises(NotFound):
        agent.rewrite("x")
    with pytest.raises(NotFound):
        list(agent.retry())


def test_manual_heartbeat(chatty, scripted):
    scripted.enqueue(say("I woke up on my own."))
    events = list(chatty.heartbeat())
    assert events[0].message_type == "heartbeat"
    assert AssistantMessage("I woke up on my own.") in events


def test_same_agent_steps_are_serialized(runtime, make_agent, embedder):
    make_agent("shared")
    model = ScriptedModel(delay=0.05)
    for i in range(6):
        model.enqueue(say(f"reply {i}"))
    options = AgentOptions(verify_first_message=False)
    agents = [Agent.load(runtime, "shared", provider=model, embedder=embedder, options=options) for _ in range(3)]
    threads = [threading.Thread(target=lambda a=a: [list(a.step("hi")) for _ in range(2)]) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert model.max_active == 1
    rows = in_context_rows(runtime.store, agents[0].row.id)
    # Each user message is directly followed by its own answer: no interleaving.
    for i, row in enumerate(rows):
        if row.name == "user_message":
            assert rows[i + 1].role == "assistant"


def test_different_agents_run_in_parallel(runtime, make_agent, embedder):
    model = ScriptedModel(delay=0.3)
    options = AgentOptions(verify_first_message=False)
    agents = []
    for name in ("one", "two", "three"):
        make_agent(name)
        agents.append(Agent.load(runtime, name, provider=model, embedder=embedder, options=options))
        model.enqueue(say(f"hello from {name}"))
    threads = [threading.Thread(target=lambda a=a: list(a.step("hi"))) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert model.max_active >= 2


def test_a_step_can_be_resumed_on_other_threads(make_live_agent, scripted):
    """Servers resume generators on any worker thread; the agent's lock must allow that."""
    from concurrent.futures import ThreadPoolExecutor

    agent = make_live_agent(scripted.enqueue(use("conversation_search", query="x"), say("done")))
    steps = agent.step("hello")
    kinds = []
    with ThreadPoolExecutor(4) as pool:
        while True:
            event = pool.submit(next, steps, None).result()
            if event is None:
                break
            kinds.append(event.kind)
    assert kinds[-1] == "tool_result" and "assistant_message" in kinds
    scripted.enqueue(say("again"))
    assert AssistantMessage("again") in list(agent.step("and again"))  # the lock was released
