"""Reading a function call out of the raw text a local model wrote.

Models without native function calling are asked to answer with one JSON object,
and small ones rarely write it cleanly. `repair_json` reads the first JSON object
in a text, putting right what they get wrong: prose before or after it, a second
object after it, a trailing end-of-text token, missing closing braces or
brackets, raw line feeds inside strings, single quotes, trailing commas, Python's
True/False/None. `parse_call` turns that object into a call of one of the current
functions (arguments given as a JSON string are read too, and a missing
`request_heartbeat` is added where the function takes one).

Whatever the input, these functions return a result or raise `RepairError`;
the caller decides what a failed read means (engine/llm/completions_provider.py
asks the model again).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from engine.tools.schema import HEARTBEAT_PARAM

END_TOKENS = ("</s>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>")
MAX_STARTS = 20  # how many "{" in the text are tried as the start of the object

# The keys models use for each part of a call; the first listed is the one we ask for.
NAME_KEYS = ("function", "name")
ARGUMENT_KEYS = ("params", "arguments", "parameters", "args")
THOUGHT_KEYS = ("inner_thoughts", "inner_monologue", "thoughts", "thought")

_CLOSER = {"{": "}", "[": "]"}
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class RepairError(ValueError):
    """The text holds no JSON object or function call that can be read."""


@dataclasses.dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]
    thoughts: str | None


def _closes_string(text: str, i: int) -> bool:
    """Whether a quote just before position `i` ends its string.

    In valid JSON a closing quote is followed by `,` `:` `}` `]` or the end; a quote
    followed by anything else is taken as part of the text (He said "hi" to me).
    """
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i == len(text) or text[i] in ",:}]"


def _read_string(text: str, i: int) -> tuple[str, int]:
    """The string opening at `i` (with ' or "), as JSON text, and the index after it."""
    quote = text[i]
    out = ['"']
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            following = text[i + 1 : i + 2]
            if following == "'":
                out.append("'")  # \' is not a JSON escape
            elif following and following in '"\\/bfnrtu':
                out.append(c + following)
            elif following:
                out.append("\\\\" + following)  # a stray backslash is kept as a character
            i += 2
            continue
        if c == quote and _closes_string(text, i + 1):
            return "".join(out) + '"', i + 1
        if c == '"':
            out.append('\\"')
        elif c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
        i += 1
    return "".join(out) + '"', i  # the text ended inside the string: close it


def _drop_trailing_comma(out: list[str]) -> None:
    j = len(out) - 1
    while j >= 0 and out[j].isspace():
        j -= 1
    if j >= 0 and out[j] == ",":
        del out[j]


def _normalize(text: str, start: int) -> str:
    """The object opening at `start`, rewritten as strict JSON (not yet checked)."""
    out: list[str] = []
    stack: list[str] = []
    i = start
    while i < len(text):
        c = text[i]
        if c in "\"'":
            piece, i = _read_string(text, i)
            out.append(piece)
            continue
        if c.isalpha() or c == "_":
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            out.append(_PYTHON_LITERALS.get(word, word))
            i = j
            continue
        if c in _CLOSER:
            stack.append(_CLOSER[c])
            out.append(c)
        elif c in "}]":
            if c not in stack:
                raise RepairError(f"a {c!r} closes nothing at character {i}")
            while stack:  # close anything left open inside, such as a forgotten "]"
                _drop_trailing_comma(out)
                closer = stack.pop()
                out.append(closer)
                if closer == c:
                    break
            if not stack:
                return "".join(out)  # what follows the first object is ignored
        else:
            out.append(c)
        i += 1
    # The text ended with the object still open: close it.
    while stack:
        _drop_trailing_comma(out)
        out.append(stack.pop())
    return "".join(out)


def repair_json(text: str) -> dict[str, Any]:
    """The first JSON object in `text`, repaired; RepairError when there is none."""
    for token in END_TOKENS:
        text = text.replace(token, "")
    first_error: RepairError | None = None
    start = text.find("{")
    for _ in range(MAX_STARTS):
        if start < 0:
            break
        try:
            return json.loads(_normalize(text, start))  # an object: the text starts with "{"
        except json.JSONDecodeError as e:
            error = RepairError(f"the JSON cannot be repaired ({e.msg} at character {e.pos})")
        except RepairError as e:
            error = e
        except (ValueError, RecursionError) as e:  # an integer too long to read, nesting too deep
            error = RepairError(f"the JSON cannot be read ({type(e).__name__})")
        first_error = first_error or error
        start = text.find("{", start + 1)
    raise first_error or RepairError("there is no JSON object in the reply")


def _first(mapping: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in mapping), None)


def parse_call(text: str, functions: list[dict[str, Any]]) -> ParsedCall:
    """The function call in `text`. `functions` are the schemas the model was offered."""
    call = repair_json(text)
    name_key = _first(call, NAME_KEYS)
    name = call.get(name_key) if name_key else None
    if not isinstance(name, str) or not name.strip():
        raise RepairError("the reply does not name a function to call")
    name = name.strip()
    schema = next((f for f in functions if f["name"] == name), None)
    declared = schema["parameters"].get("properties", {}) if schema else {}

    arguments_key = _first(call, ARGUMENT_KEYS)
    if arguments_key:
        arguments = call[arguments_key]
    else:  # the arguments written beside the name, without a "params" object
        arguments = {k: v for k, v in call.items() if k != name_key and (k not in THOUGHT_KEYS or k in declared)}
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        arguments = {}
    elif isinstance(arguments, str):
        arguments = repair_json(arguments)
    if not isinstance(arguments, dict):
        raise RepairError(f"the arguments of {name} are not a JSON object")
    arguments = dict(arguments)

    # Inner thoughts belong beside the call; models also put them among the arguments.
    found = [call[k] for k in THOUGHT_KEYS if k in call]
    found += [arguments.pop(k) for k in THOUGHT_KEYS if k in arguments and k not in declared]
    thoughts = next((v for v in found if isinstance(v, str)), None)

    # A function that takes request_heartbeat was called without it: chain by default,
    # so after a memory edit or search the agent gets to act on the result.
    if HEARTBEAT_PARAM in declared and HEARTBEAT_PARAM not in arguments:
        arguments[HEARTBEAT_PARAM] = True
    return ParsedCall(name, arguments, thoughts)


def clean_arguments(name: str, arguments: dict[str, Any], functions: list[dict[str, Any]]) -> dict[str, Any]:
    """Arguments with the slips of small models undone, by the function's schema.

    Booleans and numbers written as strings ("true", "2") become values, and
    `request_heartbeat` is dropped where the function does not take it. Anything
    else is left for the runner to judge, so the model hears what was wrong.
    """
    schema = next((f for f in functions if f["name"] == name), None)
    if schema is None:
        return arguments
    declared = schema["parameters"].get("properties", {})
    cleaned = {}
    for key, value in arguments.items():
        if key == HEARTBEAT_PARAM and key not in declared:
            continue
        kind = declared.get(key, {}).get("type")
        if isinstance(value, str):
            value = _coerce(value.strip(), kind, value)
        cleaned[key] = value
    return cleaned


def _coerce(text: str, kind: str | None, original: str) -> Any:
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        pass
    return original
