"""JSON schemas for tools, generated from type hints and docstrings.

The docstring's summary (and long description) becomes the function
description; each parameter needs a type hint and a documented description.
Parameters annotated with a handle type (see handles.py) are injected by the
runner and are not part of the schema. A function that cannot be described
completely is refused with a ToolLoadError naming it: a tool the model
misunderstands is worse than no tool.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

import docstring_parser

from engine.errors import ToolLoadError
from engine.tools.handles import HANDLE_TYPES

HEARTBEAT_PARAM = "request_heartbeat"
HEARTBEAT_DESCRIPTION = (
    "true to get control back right after this function runs, to call another function "
    "or continue a chain of thought; false to wait for the next event."
)
NO_HEARTBEAT = frozenset({"send_message", "pause_heartbeats"})

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def json_type(annotation: Any, where: str) -> dict[str, Any]:
    """The JSON schema fragment for a Python annotation."""
    annotation, _ = _unwrap_optional(annotation)
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    origin = get_origin(annotation)
    if origin is Literal:
        values = get_args(annotation)
        kinds = {type(v) for v in values}
        if len(kinds) != 1 or next(iter(kinds)) not in _SCALARS:
            raise ToolLoadError(f"{where}: Literal values must all be of one simple type.")
        return {"type": _SCALARS[next(iter(kinds))], "enum": list(values)}
    if annotation is list or origin is list:
        args = get_args(annotation)
        return {"type": "array", "items": json_type(args[0], where) if args else {}}
    if annotation is dict or origin is dict:
        return {"type": "object"}
    raise ToolLoadError(f"{where}: type {annotation!r} cannot be described to the model.")


def injected_parameters(fn: Callable) -> dict[str, type]:
    """Parameters filled by the runner from handles, by name."""
    hints = _hints(fn)
    return {
        name: hints[name]
        for name in inspect.signature(fn).parameters
        if isinstance(hints.get(name), type) and issubclass(hints[name], HANDLE_TYPES)
    }


def _hints(fn: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as e:
        raise ToolLoadError(f"Function {fn.__name__!r}: its type hints cannot be resolved ({e}).") from e


def function_schema(fn: Callable, name: str | None = None) -> dict[str, Any]:
    """The OpenAI-style function schema for `fn`, with `request_heartbeat` added where MemGPT adds it."""
    name = name or fn.__name__
    doc = inspect.getdoc(fn)
    if not doc:
        raise ToolLoadError(f"Function {name!r} has no docstring; the model needs one to know what it does.")
    parsed = docstring_parser.parse(doc)
    description = "\n\n".join(p for p in (parsed.short_description, parsed.long_description) if p)
    if not description:
        raise ToolLoadError(f"Function {name!r} has a docstring without a description.")
    documented = {p.arg_name: (p.description or "").strip() for p in parsed.params}
    hints = _hints(fn)
    injected = injected_parameters(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.name in injected:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolLoadError(f"Function {name!r}: *args and **kwargs cannot be described to the model.")
        if param.name == HEARTBEAT_PARAM:
            raise ToolLoadError(f"Function {name!r}: '{HEARTBEAT_PARAM}' is added by the engine; remove it.")
        if param.name not in hints:
            raise ToolLoadError(f"Function {name!r}: parameter {param.name!r} has no type hint.")
        if not documented.get(param.name):
            raise ToolLoadError(f"Function {name!r}: parameter {param.name!r} is not described in the docstring.")
        prop = json_type(hints[param.name], f"Function {name!r}, parameter {param.name!r}")
        prop["description"] = documented[param.name]
        properties[param.name] = prop
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    if name not in NO_HEARTBEAT:
        properties[HEARTBEAT_PARAM] = {"type": "boolean", "description": HEARTBEAT_DESCRIPTION}
        required.append(HEARTBEAT_PARAM)
    return {
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }
