"""The offline default: SmolLM2 in-process and MiniLM embeddings, with no key and no server.

These run the real embedded model (slow: seconds per call on 2 cores), so they
are marked `slow`; CI runs them all.
"""

from __future__ import annotations

import json

import pytest

from engine.agent import Agent, AgentOptions
from engine.agents import create_agent
from engine.events import AssistantMessage, Error, ToolCall, Usage
from engine.llm.base import Completion
from engine.llm.local import LocalProvider, call_schema
from engine.memory import ArchivalMemory
from engine.minilm import shared_embedder
from engine.tools.runner import check_arguments

pytestmark = pytest.mark.slow

VARIED = [
    "Hi there!", "My name is Kim.", "I work as a nurse on night shifts.", "What's the weather like where you are?",
    "Tell me a joke about cats.", "Can you remember that my sister is called Ana?", "What did I tell you earlier?",
    "I'm feeling a bit tired today.", "Do you like music?", "My favourite band is Radiohead.",
    "Search your memory for anything about my job.", "How old do you think I am?", "Let's talk about space.",
    "Why is the sky blue?", "Write me a two-line poem.", "I have a dog named Pepper.", "What's 17 times 3?",
    "Please store this fact: the wifi password is on the fridge.", "Do you remember my dog's name?",
    "Good morning!", "¿Hablas español?", "I'm planning a trip to Japan next spring.", "What should I pack?",
    "Ugh, Mondays.", "Who are you, really?", "Summarize what you know about me.", "Can you keep a secret?",
    "I just got promoted!", "What's your favourite colour?", "Tell me something surprising.",
    "I think I'll learn to play the guitar.", "Remind me what my sister's name is.", "lol",
    "Are you a robot?", "Recommend a book please.", "I had pasta for dinner.", "What day is it today?",
    "Let's play twenty questions.", "I'm allergic to peanuts, please remember that.", "Bye for now!",
    "I'm back.", "Did you miss me?", "What are you thinking about?", "Explain recursion simply.",
    "My birthday is on the 3rd of May.", "{\"type\": \"not really json\"", "   spaces   around   ",
    "Can you search our conversation for 'Japan'?", "What's the capital of Australia?", "Thanks, that's all.",
]


@pytest.fixture(scope="module")
def model():
    return LocalProvider()


def test_every_reply_is_a_valid_call_of_the_preset(runtime, settings, store, library, registry, model):
    """50 steps on varied messages: every reply parses into a valid call (failures counted)."""
    assert len(VARIED) == 50
    failures: list[str] = []
    options = AgentOptions(chain_limit=1, verify_first_message=False)
    agent = None
    for i, text in enumerate(VARIED):
        if i % 10 == 0:  # a fresh agent every 10 steps keeps the window (and the test's run time) bounded
            create_agent(store, settings, library, registry, f"kim{i}")
            agent = Agent.load(runtime, f"kim{i}", provider=model, embedder=shared_embedder(), options=options)
        schemas = {f["name"]: f for f in agent.functions()}
        events = list(agent.step(text))
        calls = [e for e in events if isinstance(e, ToolCall)]
        if len(calls) != 1:
            # The events with an error's own text: "error" alone never told a timeout from a bad reply.
            seen = [f"error: {e.message}" if isinstance(e, Error) else e.kind for e in events]
            failures.append(f"{text!r}: {len(calls)} calls ({seen})")
            continue
        call = calls[0]
        if call.name not in schemas:
            failures.append(f"{text!r}: unknown function {call.name}")
            continue
        problem = check_arguments(schemas[call.name], call.arguments)
        if problem:
            failures.append(f"{text!r}: {problem}")
    assert failures == [], f"{len(failures)} of 50 replies were not valid calls: {failures}"


def test_offline_default_pair_end_to_end(runtime, settings, store, library, registry):
    """No key, no server: a new agent answers through send_message and archival memory works."""
    assert settings.llm.endpoint_type == "local" and settings.embedding.endpoint_type == "local"
    create_agent(store, settings, library, registry, "offline")
    agent = Agent.load(runtime, "offline", options=AgentOptions(chain_limit=2))
    assert agent.embedder is shared_embedder()
    events = list(agent.step("Hello! My name is Kim and I love hiking."))
    said = [e for e in events if isinstance(e, AssistantMessage)]
    assert said and said[0].text.strip()  # first-message verification makes it speak
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage and usage[0].model.startswith("SmolLM2")
    archival = ArchivalMemory(store, agent.row.id, agent.embedder)
    archival.insert("Kim's favourite hiking trail is the Pacific Crest Trail.")
    archival.insert("The office coffee machine is broken on Fridays.")
    hit = archival.search("Which trail does Kim like?").hits[0]
    assert "Pacific Crest" in hit.passage.text and hit.vector_rank == 1


def test_summarization_call_is_plain_text(model):
    result = model.complete(
        [{"role": "system", "content": "Summarize in one sentence."},
         {"role": "user", "content": "user: I like tea.\nassistant: (said) Noted, you like tea."}], [])
    assert isinstance(result, Completion) and result.calls == [] and result.content


def test_call_schema_admits_only_preset_functions(registry):
    functions = registry.schemas(["send_message", "core_memory_append"])
    schema = call_schema(functions)
    names = [option["properties"]["function"]["const"] for option in schema["anyOf"]]
    assert names == ["send_message", "core_memory_append"]
    append = schema["anyOf"][1]["properties"]["arguments"]
    assert append["required"] == ["name", "content", "request_heartbeat"]
    assert append["properties"]["content"]["maxLength"] > 0 and append["additionalProperties"] is False
    json.dumps(schema)
