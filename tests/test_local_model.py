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

# Twelve messages, one of each kind a user sends: a greeting, facts to remember, requests that need a
# search, small talk, another language, a long text, and input that is not quite text. Every one is a
# step that must end in a valid call. Fifty steps proved no more than twenty; these twelve keep one of
# each kind of those twenty at about half their cost in CI.
LONG = ("Here is how my week went, sorry it is long. Monday I covered a double night shift because a colleague "
        "was ill, Tuesday I slept most of the day and then went to my sister Ana's for dinner, Wednesday I took "
        "Pepper to the vet for her vaccines, Thursday I finally booked the flights for Japan in April, and on "
        "Friday the car broke down on the way to work so I took the bus and was late. What a week!")
VARIED = [
    "Hi there!", "My name is Kim.", "Can you remember that my sister is called Ana?",
    "Please store this fact: the wifi password is on the fridge.", "Search your memory for anything about my job.",
    "Tell me a joke about cats.", "¿Hablas español?", LONG, "Can you search our conversation for 'Japan'?",
    "lol", "{\"type\": \"not really json\"", "   spaces   around   ",
]
AGENT_STEPS = 12  # steps per agent: keeps the window (and each step's prompt) well inside the model's context


@pytest.fixture(scope="module")
def model():
    return LocalProvider()


def test_every_reply_is_a_valid_call_of_the_preset(runtime, settings, store, library, registry, model):
    """Varied messages: every reply parses into a valid call of the agent's functions (failures listed)."""
    failures: list[str] = []
    options = AgentOptions(chain_limit=1, verify_first_message=False)
    agent = None
    for i, text in enumerate(VARIED):
        if i % AGENT_STEPS == 0:
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
    assert failures == [], f"{len(failures)} of {len(VARIED)} replies were not valid calls: {failures}"


def test_offline_default_pair_end_to_end(runtime, settings, store, library, registry):
    """No key, no server: a new agent answers through send_message and archival memory works."""
    assert settings.llm.endpoint_type == "local" and settings.embedding.endpoint_type == "local"
    create_agent(store, settings, library, registry, "offline")
    agent = Agent.load(runtime, "offline", options=AgentOptions(chain_limit=2))
    assert agent.embedder is shared_embedder()
    assert agent.row.preset == "memgpt_small"  # the compressed prompt, for a 135M model
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
