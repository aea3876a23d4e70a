"""JSON repair: each mistake small models make, then property tests on random mutilations."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.llm.json_repair import END_TOKENS, ParsedCall, RepairError, clean_arguments, parse_call, repair_json

HEARTBEAT = {"type": "boolean", "description": "get control back"}
FUNCTIONS = [
    {"name": "send_message", "description": "Say something.",
     "parameters": {"type": "object", "properties": {"message": {"type": "string", "description": "Text."}},
                    "required": ["message"]}},
    {"name": "core_memory_append", "description": "Add to a block.",
     "parameters": {"type": "object",
                    "properties": {"label": {"type": "string", "description": "Block."},
                                   "content": {"type": "string", "description": "Text."},
                                   "request_heartbeat": HEARTBEAT},
                    "required": ["label", "content", "request_heartbeat"]}},
    {"name": "conversation_search", "description": "Search.",
     "parameters": {"type": "object",
                    "properties": {"query": {"type": "string", "description": "Words."},
                                   "page": {"type": "integer", "description": "Page."},
                                   "request_heartbeat": HEARTBEAT},
                    "required": ["query", "request_heartbeat"]}},
]


def send(message: str, thoughts: str | None = None) -> ParsedCall:
    return ParsedCall("send_message", {"message": message}, thoughts)


# --- the four mistakes as a model writes them ---------------------------------------------------

def test_call_missing_its_final_brace():
    text = '{"inner_thoughts": "Greet them.", "function": "send_message", "params": {"message": "Hello Kim!"}'
    assert parse_call(text, FUNCTIONS) == send("Hello Kim!", "Greet them.")


def test_call_followed_by_end_of_text_token():
    text = '{"function": "send_message", "params": {"message": "Hi there."}}</s>'
    assert parse_call(text, FUNCTIONS) == send("Hi there.")


def test_two_calls_back_to_back_keep_the_first():
    text = ('{"function": "send_message", "params": {"message": "One."}}\n'
            '{"function": "send_message", "params": {"message": "Two."}}')
    assert parse_call(text, FUNCTIONS) == send("One.")


def test_message_broken_by_raw_newlines():
    text = '{"function": "send_message", "params": {"message": "Dear Kim,\n\nthanks for the tea.\n"}}'
    assert parse_call(text, FUNCTIONS) == send("Dear Kim,\n\nthanks for the tea.\n")


# --- each repair on its own -----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ('Sure! Here is my answer: {"a": 1}', {"a": 1}),
    ('{"a": 1} I hope this helps.', {"a": 1}),
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('{"a": 1}{"b": 2}', {"a": 1}),
    ('{"a": [1, 2', {"a": [1, 2]}),
    ('{"a": [1, 2}', {"a": [1, 2]}),
    ('{"a": 1,}', {"a": 1}),
    ('{"a": [1, 2,],}', {"a": [1, 2]}),
    ("{'a': 1}", {"a": 1}),
    ('{"a": 1}<|im_end|>', {"a": 1}),
    ('{"a": 1}<|endoftext|>', {"a": 1}),
    ('{"a": 1</s>', {"a": 1}),
    ('Use {braces} wisely: {"a": 1}', {"a": 1}),
])
def test_repairs(text, expected):
    assert repair_json(text) == expected


def test_single_quotes_keep_apostrophes_and_double_quotes():
    text = """{'function': 'send_message', 'params': {'message': 'It's a "good" day'}}"""
    assert parse_call(text, FUNCTIONS) == send('It\'s a "good" day')


def test_unescaped_inner_quotes_are_kept_as_text():
    text = '{"function": "send_message", "params": {"message": "He said "hi" to me"}}'
    assert parse_call(text, FUNCTIONS) == send('He said "hi" to me')


def test_python_literals_and_tabs():
    assert repair_json("{'ok': True, 'none': None, 'no': False, 'tab': 'a\tb'}") == {
        "ok": True, "none": None, "no": False, "tab": "a\tb"}


def test_missing_heartbeat_is_added_only_where_the_function_takes_one():
    text = '{"function": "core_memory_append", "params": {"label": "human", "content": "Likes tea"}}'
    assert parse_call(text, FUNCTIONS).arguments == {
        "label": "human", "content": "Likes tea", "request_heartbeat": True}
    plain = '{"function": "send_message", "params": {"message": "x"}}'
    assert parse_call(plain, FUNCTIONS).arguments == {"message": "x"}
    given_false = '{"function": "conversation_search", "params": {"query": "tea", "request_heartbeat": false}}'
    assert parse_call(given_false, FUNCTIONS).arguments["request_heartbeat"] is False


def test_arguments_given_as_a_json_string():
    text = json.dumps({"function": "send_message", "params": json.dumps({"message": "Hi"})})
    assert parse_call(text, FUNCTIONS) == send("Hi")
    broken = '{"function": "send_message", "arguments": "{\\"message\\": \\"Hi\\""}'
    assert parse_call(broken, FUNCTIONS) == send("Hi")


def test_other_shapes_models_write():
    openai_like = '{"name": "send_message", "arguments": {"message": "Hi"}}'
    assert parse_call(openai_like, FUNCTIONS) == send("Hi")
    flat = '{"inner_thoughts": "Say hi.", "function": "send_message", "message": "Hi"}'
    assert parse_call(flat, FUNCTIONS) == send("Hi", "Say hi.")
    thoughts_inside = '{"function": "send_message", "params": {"inner_thoughts": "Say hi.", "message": "Hi"}}'
    assert parse_call(thoughts_inside, FUNCTIONS) == send("Hi", "Say hi.")
    unknown_function = parse_call('{"function": "fly", "params": {"to": "moon"}}', FUNCTIONS)
    assert unknown_function == ParsedCall("fly", {"to": "moon"}, None)  # the runner tells the model


@pytest.mark.parametrize("text, problem", [
    ("I'd love to help with that!", "no JSON object"),
    ("", "no JSON object"),
    ('{"message": "hi"}', "does not name a function"),
    ('{"function": "", "params": {}}', "does not name a function"),
    ('{"function": "send_message", "params": [1, 2]}', "not a JSON object"),
    ('{"function": "send_message", "params": "hello"}', "no JSON object"),
    ('{"function": "send_message", "params": {"message":', "cannot be repaired"),
    ('{"a": 1]', "closes nothing"),
    ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "cannot be read"),
    ('{"n": ' + "9" * 5000 + "}", "cannot be read"),
])
def test_what_cannot_be_repaired_is_a_clear_error(text, problem):
    with pytest.raises(RepairError, match=problem):
        parse_call(text, FUNCTIONS)


def test_clean_arguments_undoes_string_values():
    args = {"query": " tea ", "page": "2", "request_heartbeat": "True"}
    assert clean_arguments("conversation_search", args, FUNCTIONS) == {
        "query": " tea ", "page": 2, "request_heartbeat": True}
    assert clean_arguments("send_message", {"message": "x", "request_heartbeat": True}, FUNCTIONS) == {"message": "x"}
    assert clean_arguments("conversation_search", {"query": "x", "page": "two"}, FUNCTIONS)["page"] == "two"
    assert clean_arguments("fly", {"a": "1"}, FUNCTIONS) == {"a": "1"}


# --- property tests -------------------------------------------------------------------------------

# Texts a model might put in a string: any characters, but no end-of-text token (those are cut
# wherever they appear, by design).
texts = st.text(max_size=40).filter(lambda s: not any(t in s for t in END_TOKENS))
thoughts = st.none() | texts


@st.composite
def calls(draw) -> ParsedCall:
    name = draw(st.sampled_from([f["name"] for f in FUNCTIONS]))
    if name == "send_message":
        arguments = {"message": draw(texts)}
    elif name == "core_memory_append":
        arguments = {"label": draw(texts), "content": draw(texts), "request_heartbeat": draw(st.booleans())}
    else:
        arguments = {"query": draw(texts)}
        if draw(st.booleans()):
            arguments["page"] = draw(st.integers(-10**6, 10**6))
        arguments["request_heartbeat"] = draw(st.booleans())
    return ParsedCall(name, arguments, draw(thoughts))


def dump(value, quote: str = '"', trailing_commas: bool = False) -> str:
    """JSON text, optionally with single quotes and trailing commas, as models write it."""
    comma = "," if trailing_commas else ""
    if isinstance(value, dict):
        items = [f"{dump(k, quote)}: {dump(v, quote, trailing_commas)}" for k, v in value.items()]
        return "{" + ", ".join(items) + (comma if items else "") + "}"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if quote == '"' else "'" + text[1:-1].replace('\\"', '"') + "'"
    return json.dumps(value)


RAW_NEWLINE = re.compile(r'(?<!\\)((?:\\\\)*)\\n')  # a "\n" escape, not an escaped backslash before "n"


@given(call=calls(), data=st.data())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutilated_calls_repair_to_the_original(call, data):
    """Every mistake in the list, alone or combined, is undone exactly."""
    arguments = dict(call.arguments)
    expected = call
    if arguments.get("request_heartbeat") is True and data.draw(st.booleans(), "drop heartbeat"):
        del arguments["request_heartbeat"]  # parse_call adds it back as true
    obj = ({"inner_thoughts": call.thoughts} if call.thoughts is not None else {}) | {"function": call.name}
    obj["params"] = json.dumps(arguments) if data.draw(st.booleans(), "arguments as a string") else arguments

    strings = [call.name, *(v for v in arguments.values() if isinstance(v, str)), call.thoughts or ""]
    single = data.draw(st.booleans(), "single quotes") and not any("'" in s for s in strings)
    text = dump(obj, "'" if single else '"', data.draw(st.booleans(), "trailing commas"))
    if data.draw(st.booleans(), "raw newlines"):
        text = RAW_NEWLINE.sub(lambda m: m.group(1) + "\n", text)

    ending = data.draw(st.sampled_from(["cut closers", "end token", "prose", "second call", "none"]))
    if ending == "cut closers":
        closers = len(text) - len(text.rstrip("}"))
        text = text[: len(text) - data.draw(st.integers(1, closers))]
    elif ending == "end token":
        text += data.draw(st.sampled_from(END_TOKENS))
    elif ending == "prose":
        text += "\n\nI hope this helps! Let me know if you need anything else."
    elif ending == "second call":
        text += '\n{"function": "send_message", "params": {"message": "again"}}'
    if data.draw(st.booleans(), "prose before"):
        text = "Sure, here is the function call you asked for:\n" + text

    assert parse_call(text, FUNCTIONS) == expected, text


pieces = list("{}[]\"',:\\ \n\tabfnrtu019.-e") + ['"function"', '"params"', "</s>", "true", "True", "null"]
json_ish = st.lists(st.sampled_from(pieces), max_size=80).map("".join)


@given(text=st.one_of(st.text(max_size=200), json_ish))
@settings(max_examples=500, deadline=None)
def test_any_text_gives_a_call_or_a_repair_error(text):
    try:
        result = parse_call(text, FUNCTIONS)
    except RepairError:
        return
    assert isinstance(result, ParsedCall) and result.name and isinstance(result.arguments, dict)


@given(call=calls(), data=st.data())
@settings(max_examples=300, deadline=None)
def test_random_damage_gives_a_call_or_a_repair_error(call, data):
    """Damage beyond the known mistakes may be unreadable, but fails only with RepairError."""
    text = json.dumps({"function": call.name, "params": call.arguments})
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + data.draw(st.sampled_from(list("{}[]\"',:\n\\"))) + text[at:]
    try:
        parse_call(text, FUNCTIONS)
    except RepairError:
        pass
