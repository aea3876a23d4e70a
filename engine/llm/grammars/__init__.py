"""GBNF grammars that only admit a well-formed function call, for servers that take one.

llama.cpp's server accepts a `grammar` in the request body and samples only
tokens the grammar allows, so even a tiny model writes a call we can read.
The ready grammars (the .gbnf files here) admit the JSON call shape for any
function, with or without inner thoughts; `grammar_for` writes one restricted to
the current functions: their names, and for each its arguments in schema order
with the right value types. Strings in a generated grammar are bounded so a reply
ends well before max_tokens instead of being cut off mid-string.

Every grammar has the same two top rules: `root` writes the opening brace, `call`
the rest. When the prompt already ends with "{" (a wrapper's opening-brace
option), `opened=True` starts from `call`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

HERE = Path(__file__).parent
READY = ("json_call", "json_call_inner_thoughts")
THOUGHT_CHARS = 200
STRING_CHARS = 400

_BOUNDED_STRINGS = (
    f'thought ::= "\\"" char{{0,{THOUGHT_CHARS}}} "\\""\n'
    f'text ::= "\\"" char{{0,{STRING_CHARS}}} "\\""\n'
)
_SCALARS = {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean", "object": "object"}


def _assemble(call_rules: str, opened: bool) -> str:
    """`root` + the call's own rules + the shared JSON rules."""
    rules = "\n".join(line for line in call_rules.splitlines() if not line.startswith("root ::="))
    root = "root ::= call" if opened else 'root ::= "{" call'
    return f"{root}\n{rules.strip()}\n{(HERE / 'json.gbnf').read_text(encoding='utf-8')}"


def load(name: str, *, opened: bool = False) -> str:
    """A ready grammar by name (see READY)."""
    if name not in READY:
        raise ConfigError(f"There is no grammar named {name!r}; ready grammars: {', '.join(READY)}.")
    return _assemble((HERE / f"{name}.gbnf").read_text(encoding="utf-8"), opened)


def _literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


_FUNCTION_KEY = _literal('"function":')
_PARAMS_KEY = _literal('"params":')
_THOUGHTS_KEY = _literal('"inner_thoughts":')


def _value(schema: dict[str, Any]) -> str:
    """The GBNF expression for one argument's value."""
    if "enum" in schema:
        return "( " + " | ".join(_literal(json.dumps(v, ensure_ascii=False)) for v in schema["enum"]) + " )"
    kind = schema.get("type")
    if kind == "array":
        item = _value(schema.get("items") or {})
        return f'"[" ws ( {item} ( "," ws {item} )* )? ws "]"'
    return _SCALARS.get(str(kind), "value")


def _sequence(items: list[tuple[str, bool]]) -> str | None:
    """Comma-separated `items` (rule, required) in order, optional ones allowed to be left out."""

    def rest(i: int) -> str:  # items[i:], after something has been written
        pieces = [f'"," ws {rule}' if required else f'( "," ws {rule} )?' for rule, required in items[i:]]
        return " ".join(pieces)

    def first(i: int) -> str | None:  # items[i:], when nothing has been written yet
        if i == len(items):
            return None
        rule, required = items[i]
        here = f"{rule} {rest(i + 1)}".strip()
        if required:
            return here
        tail = first(i + 1)
        return f"( {here} | {tail} )" if tail else f"( {here} )?"

    return first(0)


def grammar_for(functions: list[dict[str, Any]], inner_thoughts: bool, *, opened: bool = False) -> str:
    """A grammar admitting exactly one call of one of `functions` with well-typed arguments."""
    if not functions:
        raise ValueError("a call grammar needs at least one function")
    rules: list[str] = []
    for i, fn in enumerate(functions):
        parameters = fn.get("parameters") or {}
        required = set(parameters.get("required", []))
        argument_rules, items = [], []
        for j, (name, schema) in enumerate((parameters.get("properties") or {}).items()):
            rule = f"fn{i}-arg{j}"
            argument_rules.append(f"{rule} ::= {_literal(json.dumps(name) + ':')} ws {_value(schema)}")
            items.append((rule, name in required))
        body = _sequence(items)
        arguments = f'"{{" ws {body} ws "}}"' if body else '"{" ws "}"'
        rules.append(f'fn{i} ::= {_literal(json.dumps(fn["name"]))} "," ws {_PARAMS_KEY} ws {arguments}')
        rules.extend(argument_rules)
    thoughts = f'{_THOUGHTS_KEY} ws thought "," ws ' if inner_thoughts else ""
    choices = " | ".join(f"fn{i}" for i in range(len(functions)))
    call = f'call ::= ws {thoughts}{_FUNCTION_KEY} ws ( {choices} ) ws "}}"'
    return _assemble("\n".join([call, *rules]) + "\n" + _BOUNDED_STRINGS, opened)
