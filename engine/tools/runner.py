"""Running one function call from the model, whatever shape it arrives in.

Unknown names, arguments that are not JSON, missing or unexpected arguments,
wrong types and exceptions inside the function all end the same way: a failed
outcome whose message tells the model what went wrong, and a heartbeat so it can
try again. The exception is kept on the outcome for logs and the UI.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from engine.errors import MemGPTError, NotFound
from engine.tools.handles import ToolContext
from engine.tools.registry import ToolRegistry
from engine.tools.schema import HEARTBEAT_PARAM

log = logging.getLogger(__name__)

OK = "OK"
FAILED = "Failed"
DEFAULT_RESULT_LIMIT = 3000


@dataclasses.dataclass
class ToolOutcome:
    name: str
    arguments: dict[str, Any]
    status: str
    message: str
    heartbeat: bool
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK


def _failed(name: str, arguments: dict, message: str, error: BaseException | None = None) -> ToolOutcome:
    # Cut like a result: a failure quotes what the model sent (a 600,000-character name), and every
    # listener and the next prompt would carry it whole.
    return ToolOutcome(name, arguments, FAILED, truncate(message, DEFAULT_RESULT_LIMIT), heartbeat=True, error=error)


def not_run(name: str, why: str) -> ToolOutcome:
    """The result of a call the agent declined to run (the model asked for too many at once)."""
    return _failed(name, {}, f"{name} was not run: {why}")


def _type_error(value: Any, schema: dict[str, Any], where: str) -> str | None:
    """A description of how `value` breaks `schema`, or None when it fits."""
    kind = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind in checks and not checks[kind](value):
        return f"{where} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not {json.dumps(value)[:60]}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} must be one of {', '.join(map(json.dumps, schema['enum']))}"
    if kind == "array" and schema.get("items"):
        for i, item in enumerate(value):
            problem = _type_error(item, schema["items"], f"{where}[{i}]")
            if problem:
                return problem
    return None


def check_arguments(schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """What is wrong with `arguments` for the function `schema`, or None when they fit."""
    name = schema["name"]
    params = schema["parameters"]
    properties = params["properties"]
    call_args = dict(arguments)
    # Models add request_heartbeat to send_message too; where it means nothing it is ignored.
    heartbeat = call_args.pop(HEARTBEAT_PARAM, False)
    if HEARTBEAT_PARAM in properties and not isinstance(heartbeat, bool):
        return f"{HEARTBEAT_PARAM} must be true or false."
    unexpected = sorted(set(call_args) - set(properties))
    if unexpected:
        expected = ", ".join(p for p in properties if p != HEARTBEAT_PARAM) or "none"
        return f"{name} got unexpected arguments {', '.join(unexpected)}; it takes: {expected}."
    missing = [p for p in params["required"] if p != HEARTBEAT_PARAM and p not in call_args]
    if missing:
        return f"{name} is missing required arguments: {', '.join(missing)}."
    for key, value in call_args.items():
        if value is None and key not in params["required"]:
            continue
        problem = _type_error(value, properties[key], key)
        if problem:
            return f"Bad arguments for {name}: {problem}."
    return None


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[result cut: {len(text) - limit} more characters not shown]"


def run_tool(
    registry: ToolRegistry,
    name: str,
    arguments: str | dict[str, Any] | None,
    context: ToolContext,
    *,
    allowed: list[str] | None = None,
    result_limit: int = DEFAULT_RESULT_LIMIT,
) -> ToolOutcome:
    """Validate and run one call; never raises for anything the model sent."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as e:
            return _failed(name, {}, f"The arguments of {name} are not valid JSON ({e.msg} at character {e.pos}).", e)
        except RecursionError as e:
            return _failed(name, {}, f"The arguments of {name} are nested too deeply to read.", e)
    arguments = {} if arguments is None else arguments
    if not isinstance(arguments, dict):
        return _failed(name, {}, f"The arguments of {name} must be a JSON object of named values.")
    if (allowed is not None and name not in allowed) or name not in registry:
        available = ", ".join(allowed if allowed is not None else registry.names())
        return _failed(name, arguments, f"There is no function named {name!r}. Available: {available}.")
    tool = registry.get(name)
    problem = check_arguments(tool.schema, arguments)
    if problem:
        return _failed(name, arguments, problem)
    call_args = dict(arguments)
    heartbeat = call_args.pop(HEARTBEAT_PARAM, False)
    if HEARTBEAT_PARAM not in tool.schema["parameters"]["properties"]:
        heartbeat = False
    for param, kind in tool.injected.items():
        handle = context.handle_for(kind)
        if handle is None:
            return _failed(name, arguments, f"{name} is not available to this agent (it needs {kind.__name__}).")
        call_args[param] = handle
    try:
        result = tool.fn(**{k: v for k, v in call_args.items() if v is not None})
    except (MemGPTError, NotFound) as e:
        return _failed(name, arguments, str(e), e)
    except OSError as e:  # its text names the full path in the data home; the model and listeners get the cause
        log.warning("function %s raised", name, exc_info=True)
        return _failed(name, arguments, f"{name} failed: {e.strerror or type(e).__name__}", e)
    except Exception as e:
        log.warning("function %s raised", name, exc_info=True)
        return _failed(name, arguments, f"{name} failed: {type(e).__name__}: {e}", e)
    message = "None" if result is None else result if isinstance(result, str) else json.dumps(result, default=str)
    return ToolOutcome(name, arguments, OK, truncate(message, result_limit), heartbeat=heartbeat)
