"""Prompt wrappers: golden prompts for a fixed conversation, and recorded raw outputs read back.

Regenerate the golden prompts after an intended change with
`UPDATE_GOLDEN=1 python -m pytest tests/test_wrappers.py` and review the diff.
The recorded outputs' expectations are written by hand and never regenerated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.llm.json_repair import RepairError
from engine.llm.wrappers import WRAPPERS, get_wrapper, wrapper_names

GOLDEN = Path(__file__).parent / "golden" / "wrappers"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

HEARTBEAT = {"type": "boolean", "description": "true to get control back after this function runs."}
FUNCTIONS = [
    {"name": "send_message", "description": "Send a message to the user.",
     "parameters": {"type": "object",
                    "properties": {"message": {"type": "string", "description": "What to say."}},
                    "required": ["message"]}},
    {"name": "core_memory_append", "description": "Add a line to a core memory block.",
     "parameters": {"type": "object",
                    "properties": {"label": {"type": "string", "enum": ["persona", "human"],
                                             "description": "The block."},
                                   "content": {"type": "string", "description": "The line to add."},
                                   "request_heartbeat": HEARTBEAT},
                    "required": ["label", "content", "request_heartbeat"]}},
    {"name": "conversation_search", "description": "Search earlier messages.",
     "parameters": {"type": "object",
                    "properties": {"query": {"type": "string", "description": "Words to find."},
                                   "page": {"type": "integer", "description": "Result page, from 0."},
                                   "request_heartbeat": HEARTBEAT},
                    "required": ["query", "request_heartbeat"]}},
]


def call(call_id, name, arguments):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def packed(**fields):
    """A packaged message as engine/system.py writes it, at a fixed time."""
    return json.dumps(fields)


MESSAGES = [
    {"role": "system", "content": "You are Sam, a warm digital companion. Think briefly, then act.\n\n"
                                  "### Memory (last modified: 2024-05-01 10:00 AM UTC)\n"
                                  "<persona>I am Sam. I like questions.</persona>\n<human>Nothing known yet.</human>"},
    {"role": "assistant", "content": "A hello first.",
     "tool_calls": [call("boot", "send_message", {"message": "Hi! I'm Sam."})]},
    {"role": "tool", "tool_call_id": "boot",
     "content": packed(status="OK", message="None", time="2024-05-01 10:00:00 AM UTC+0000")},
    {"role": "user", "content": packed(type="user_message", message="I'm Kim, a night nurse. I love tea.",
                                       time="2024-05-01 10:01:00 AM UTC+0000")},
    {"role": "assistant", "content": "Kim is a nurse; save it.",
     "tool_calls": [call("c1", "core_memory_append",
                         {"label": "human", "content": "Kim, night nurse, loves tea.", "request_heartbeat": True})]},
    {"role": "tool", "tool_call_id": "c1",
     "content": packed(status="OK", message="None", time="2024-05-01 10:01:05 AM UTC+0000")},
    {"role": "user", "content": packed(type="heartbeat", reason="[automated system message, not shown to the user] "
                                       "The function ran with request_heartbeat=true; you have control again.",
                                       time="2024-05-01 10:01:05 AM UTC+0000")},
]
SUMMARY_MESSAGES = [
    {"role": "system", "content": "Summarize this conversation in the first person, in at most 100 words."},
    {"role": "user", "content": "user: I'm Kim, a night nurse.\nassistant: (said) Nice to meet you, Kim!"},
]


def golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs; UPDATE_GOLDEN=1 regenerates it"


@pytest.mark.parametrize("name", wrapper_names())
def test_prompt_matches_golden(name):
    golden(name, get_wrapper(name).render(MESSAGES, FUNCTIONS))


def test_summary_prompt_matches_golden():
    golden("simple-summary", get_wrapper("simple-summary").render(SUMMARY_MESSAGES, []))


def test_every_wrapper_has_a_golden_file():
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(WRAPPERS)


RECORDED = json.loads((GOLDEN / "recorded_outputs.json").read_text(encoding="utf-8"))["outputs"]


@pytest.mark.parametrize("record", RECORDED, ids=lambda r: f"{r['wrapper']}-grammar-{r['grammar']}")
def test_recorded_outputs_parse_to_the_expected_call(record):
    wrapper = get_wrapper(record["wrapper"])
    expected = record["expected"]
    if expected.get("unreadable"):
        with pytest.raises(RepairError):
            wrapper.parse(record["raw"], FUNCTIONS)
        return
    thoughts, calls = wrapper.parse(record["raw"], FUNCTIONS)
    assert len(calls) == 1 and calls[0].name == expected["function"]
    assert json.loads(calls[0].arguments) == expected["arguments"]
    assert thoughts == expected["thoughts"]


def test_recorded_outputs_cover_every_wrapper_with_and_without_grammar():
    assert {(r["wrapper"], r["grammar"]) for r in RECORDED} == {(n, g) for n in wrapper_names() for g in (False, True)}
    # With the grammar every reply was readable; without it most were not.
    assert all(not r["expected"].get("unreadable") for r in RECORDED if r["grammar"])


@pytest.mark.parametrize("name", wrapper_names())
def test_earlier_calls_are_shown_the_way_replies_are_read(name):
    """The history teaches the model the shape the parser expects: rendering a call and parsing it agree."""
    wrapper = get_wrapper(name, opening_brace=False)
    message = MESSAGES[4]
    thoughts, calls = wrapper.parse(wrapper.assistant_text(message), FUNCTIONS)
    assert calls[0].name == "core_memory_append"
    assert json.loads(calls[0].arguments) == json.loads(message["tool_calls"][0]["function"]["arguments"])
    assert thoughts == (message["content"] if wrapper.inner_thoughts else None)


def test_layout_of_a_chatml_prompt():
    prompt = get_wrapper("chatml").render(MESSAGES, FUNCTIONS)
    assert prompt.startswith("<|im_start|>system\nYou are Sam")
    assert prompt.endswith("<|im_start|>assistant\n{")
    # The memory section ends the system turn, after the functions: what precedes it never changes,
    # and it changes only with a memory edit, so a server's cache keeps the conversation between edits.
    system_turn = prompt.split("<|im_end|>")[0]
    assert "### Memory" in system_turn and system_turn.index("### Memory") > system_turn.index("core_memory_append")
    assert prompt.index("### Memory") < prompt.index("I love tea")
    assert "Function result: OK: None" in prompt and '"time"' not in prompt.split("I love tea")[0]
    assert '"inner_thoughts": "Kim is a nurse; save it.", "function": "core_memory_append"' in prompt


def test_options():
    plain = get_wrapper("chatml", simplify_results=False, separators=False, opening_brace=False)
    prompt = plain.render(MESSAGES, FUNCTIONS)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "### Functions" not in prompt and "### How to reply" not in prompt
    assert 'Function result: {"status": "OK", "message": "None", "time":' in prompt
    with_brace = get_wrapper("chatml")
    # The prompt wrote the opening brace; a model that writes it again is read all the same.
    for raw in ('"function": "send_message", "params": {"message": "Hi"}}',
                '{"function": "send_message", "params": {"message": "Hi"}}'):
        assert json.loads(with_brace.parse(raw, FUNCTIONS)[1][0].arguments) == {"message": "Hi"}


def test_clean_args_option():
    raw = '{"function": "conversation_search", "params": {"query": "tea", "page": "1", "request_heartbeat": "true"}}'
    cleaned = get_wrapper("dolphin", opening_brace=False).parse(raw, FUNCTIONS)[1][0]
    assert json.loads(cleaned.arguments) == {"query": "tea", "page": 1, "request_heartbeat": True}
    kept = get_wrapper("dolphin", opening_brace=False, clean_args=False).parse(raw, FUNCTIONS)[1][0]
    assert json.loads(kept.arguments) == {"query": "tea", "page": "1", "request_heartbeat": "true"}


def test_summary_wrapper_reads_plain_text():
    wrapper = get_wrapper("simple-summary")
    assert wrapper.parse("  I met Kim, a night nurse.</s>", []) == ("I met Kim, a night nurse.", [])
    assert wrapper.parse("", []) == (None, [])


def test_registry():
    assert wrapper_names() == ["airoboros", "airoboros-inner-monologue", "dolphin", "zephyr", "chatml"]
    assert "simple-summary" in WRAPPERS and "simple-summary" not in wrapper_names()
    assert get_wrapper(None).name == "chatml"
    with pytest.raises(ConfigError, match="no prompt wrapper named 'llama9'"):
        get_wrapper("llama9")


@pytest.mark.parametrize("alias, name, grammar", [
    ("airoboros-l2-70b-2.1", "airoboros", False), ("airoboros-l2-70b-2.1-grammar", "airoboros", True),
    ("dolphin-2.1-mistral-7b", "dolphin", False), ("dolphin-2.1-mistral-7b-grammar", "dolphin", True),
    ("zephyr-7B", "zephyr", False), ("zephyr-7B-grammar", "zephyr", True), ("chatml", "chatml", False),
])
def test_memgpts_wrapper_names_are_accepted(alias, name, grammar):
    import openai

    from engine.llm.completions_provider import CompletionsProvider
    from engine.llm.wrappers import get_wrapper

    assert get_wrapper(alias).name == name
    provider = CompletionsProvider(openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9/v1"), "m", 4096,
                                   wrapper=alias)
    assert provider.wrapper.name == name and bool(provider.grammar) is grammar
