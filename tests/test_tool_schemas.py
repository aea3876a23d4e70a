"""Tool schemas: the golden file, heartbeats, injected handles, refusals, types, user functions."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Literal

import pytest

from engine.errors import ToolLoadError
from engine.tools.handles import HANDLE_TYPES, Outbox, ToolContext
from engine.tools.registry import ToolRegistry, builtin_registry, load_registry
from engine.tools.runner import run_tool
from engine.tools.schema import HEARTBEAT_PARAM, function_schema, injected_parameters

GOLDEN = Path(__file__).resolve().parent / "golden" / "function_schemas.json"
HANDLE_NAMES = {"memory", "recall", "archival", "outbox", "files", "web", "chat", "heartbeats"}


# --- the golden file -----------------------------------------------------------------------


def _generated() -> str:
    registry = builtin_registry()
    schemas = {name: registry.get(name).schema for name in registry.names()}
    return json.dumps(schemas, indent=2, sort_keys=True) + "\n"


def test_builtin_schemas_match_golden_file():
    generated = _generated()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(generated, encoding="utf-8")
        return
    assert GOLDEN.is_file(), f"{GOLDEN} is missing; run the tests once with UPDATE_GOLDEN=1"
    expected = GOLDEN.read_text(encoding="utf-8")
    assert generated == expected, "function schemas changed; review and rerun with UPDATE_GOLDEN=1"


def test_golden_file_covers_every_builtin_function():
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert sorted(golden) == builtin_registry().names()
    assert set(golden) == {
        "send_message", "pause_heartbeats", "core_memory_append", "core_memory_replace",
        "conversation_search", "conversation_search_date", "archival_memory_insert",
        "archival_memory_search", "message_chatgpt", "read_from_text_file",
        "append_to_text_file", "http_request",
    }  # fmt: skip
    for name, schema in golden.items():
        assert schema["name"] == name
        assert schema["description"].strip()
        assert schema["parameters"]["type"] == "object"
        for prop in schema["parameters"]["properties"].values():
            assert prop["description"].strip() and prop["type"]


# --- heartbeats and injected handles -------------------------------------------------------


@pytest.mark.parametrize("name", builtin_registry().names())
def test_request_heartbeat_everywhere_but_send_message_and_pause(name):
    params = builtin_registry().get(name).schema["parameters"]
    if name in ("send_message", "pause_heartbeats"):
        assert HEARTBEAT_PARAM not in params["properties"]
        assert HEARTBEAT_PARAM not in params["required"]
    else:
        assert params["properties"][HEARTBEAT_PARAM]["type"] == "boolean"
        assert HEARTBEAT_PARAM in params["required"]


@pytest.mark.parametrize("name", builtin_registry().names())
def test_injected_handles_never_reach_the_schema(name):
    tool = builtin_registry().get(name)
    properties = tool.schema["parameters"]["properties"]
    assert not HANDLE_NAMES & set(properties)
    assert tool.injected, f"{name} should be given at least one handle"
    assert all(issubclass(kind, HANDLE_TYPES) for kind in tool.injected.values())
    signature = set(inspect.signature(tool.fn).parameters)
    # The schema is exactly the signature minus the handles, plus request_heartbeat where it applies.
    assert set(properties) - {HEARTBEAT_PARAM} == signature - set(tool.injected)
    assert set(tool.schema["parameters"]["required"]) <= set(properties)


# --- refusals -------------------------------------------------------------------------------


class Widget:
    """A type the model cannot be told about."""


def no_docstring(x: int) -> int:
    return x


def untyped_param(x) -> int:
    """Return x.

    Args:
        x: A value.
    """
    return x


def undocumented_param(x: int, y: int) -> int:
    """Add two numbers.

    Args:
        x: The first number.
    """
    return x + y


def custom_class_param(widget: Widget) -> str:
    """Describe a widget.

    Args:
        widget: The widget.
    """
    return str(widget)


def star_args(*words: str) -> str:
    """Join words.

    Args:
        words: The words to join.
    """
    return " ".join(words)


def star_kwargs(**options: str) -> str:
    """Echo options.

    Args:
        options: Any options.
    """
    return str(options)


def own_heartbeat(x: int, request_heartbeat: bool) -> int:
    """Return x.

    Args:
        x: A value.
        request_heartbeat: Whether to come back.
    """
    return x


REFUSED = [
    (no_docstring, "no docstring"),
    (untyped_param, "'x' has no type hint"),
    (undocumented_param, "'y' is not described"),
    (custom_class_param, "cannot be described"),
    (star_args, r"\*args"),
    (star_kwargs, r"\*\*kwargs"),
    (own_heartbeat, "request_heartbeat"),
]


@pytest.mark.parametrize(("fn", "why"), REFUSED, ids=[fn.__name__ for fn, _ in REFUSED])
def test_incomplete_functions_are_refused_by_name(fn, why):
    with pytest.raises(ToolLoadError, match=why) as caught:
        function_schema(fn)
    assert repr(fn.__name__) in str(caught.value)
    registry = ToolRegistry()
    with pytest.raises(ToolLoadError, match=fn.__name__):
        registry.register(fn)
    assert fn.__name__ not in registry


def test_custom_class_refusal_names_the_parameter():
    with pytest.raises(ToolLoadError, match=r"parameter 'widget'.*Widget"):
        function_schema(custom_class_param)


def test_docstring_without_description_is_refused():
    def only_args(x: int) -> int:
        """
        Args:
            x: A value.
        """
        return x

    with pytest.raises(ToolLoadError, match="only_args"):
        function_schema(only_args)


# --- types ----------------------------------------------------------------------------------


def typed(
    outbox: Outbox,
    name: str,
    tags: list[str],
    mode: Literal["a", "b"],
    nickname: str | None = None,
    count: int | None = None,
    ratio: float = 0.5,
    flags: list[int] | None = None,
    extra: dict | None = None,
) -> str:
    """Exercise every supported type.

    Args:
        name: A name.
        tags: Some tags.
        mode: The mode.
        nickname: An optional nickname.
        count: An optional count.
        ratio: A ratio.
        flags: Optional flags.
        extra: Optional extra values.
    """
    return name


def test_types_become_json_schema():
    schema = function_schema(typed)
    props = schema["parameters"]["properties"]
    assert "outbox" not in props
    assert injected_parameters(typed) == {"outbox": Outbox}
    assert props["name"] == {"type": "string", "description": "A name."}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "description": "Some tags."}
    assert props["mode"] == {"type": "string", "enum": ["a", "b"], "description": "The mode."}
    assert props["nickname"] == {"type": "string", "description": "An optional nickname."}
    assert props["count"] == {"type": "integer", "description": "An optional count."}
    assert props["ratio"]["type"] == "number"
    assert props["flags"] == {"type": "array", "items": {"type": "integer"}, "description": "Optional flags."}
    assert props["extra"]["type"] == "object"
    assert schema["parameters"]["required"] == ["name", "tags", "mode", HEARTBEAT_PARAM]
    assert schema["description"] == "Exercise every supported type."


def test_literal_enum_is_enforced_by_the_runner():
    registry = ToolRegistry()
    registry.register(typed)
    base = {"name": "n", "tags": ["x"], "mode": "a"}
    assert run_tool(registry, "typed", base, ToolContext()).ok
    outcome = run_tool(registry, "typed", {**base, "mode": "c"}, ToolContext())
    assert not outcome.ok and '"a", "b"' in outcome.message
    outcome = run_tool(registry, "typed", {**base, "tags": ["x", 3]}, ToolContext())
    assert not outcome.ok and "tags[1] must be a string" in outcome.message
    outcome = run_tool(registry, "typed", {**base, "nickname": None, "count": 2}, ToolContext())
    assert outcome.ok


def mixed_literal(choice: Literal["a", 1]) -> str:
    """Pick.

    Args:
        choice: The choice.
    """
    return str(choice)


def test_mixed_literal_is_refused():
    with pytest.raises(ToolLoadError, match="mixed_literal.*Literal"):
        function_schema(mixed_literal)


def test_long_description_is_kept():
    def described(x: int) -> int:
        """Short summary.

        A longer explanation on a second paragraph.

        Args:
            x: A value.
        """
        return x

    assert function_schema(described)["description"] == (
        "Short summary.\n\nA longer explanation on a second paragraph."
    )


# --- user functions -------------------------------------------------------------------------

GOOD_FILE = '''
"""User tools for the tests."""
from __future__ import annotations

from json import dumps  # imported functions are not tools


def shout(text: str, times: int = 1) -> str:
    """Shout some text.

    Args:
        text: What to shout.
        times: How many times to shout it.
    """
    return " ".join([text.upper()] * times)


def _helper(x):
    return x
'''

NO_DOC_FILE = '''
def undocumented_tool(x: int) -> int:
    return x
'''


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_user_functions_load_and_run(tmp_path):
    path = _write(tmp_path / "functions", "loud_tools.py", GOOD_FILE)
    registry = builtin_registry()
    loaded = registry.load_user_functions(tmp_path / "functions")
    assert loaded == ["shout"]
    assert "shout" in registry
    assert "_helper" not in registry and "dumps" not in registry
    tool = registry.get("shout")
    assert tool.origin == str(path)
    assert tool.schema["parameters"]["required"] == ["text", HEARTBEAT_PARAM]
    outcome = run_tool(registry, "shout", '{"text": "hi", "times": 2, "request_heartbeat": true}', ToolContext())
    assert outcome.ok, outcome.message
    assert outcome.message == "HI HI"
    assert outcome.heartbeat is True


def test_load_registry_includes_user_functions(tmp_path):
    _write(tmp_path / "functions", "loud_tools2.py", GOOD_FILE)
    registry = load_registry(tmp_path / "functions")
    assert "shout" in registry and "send_message" in registry


def test_missing_functions_directory_loads_nothing(tmp_path):
    assert ToolRegistry().load_user_functions(tmp_path / "nope") == []


def test_user_function_without_docstring_is_refused(tmp_path):
    _write(tmp_path / "functions", "nodoc_tools.py", NO_DOC_FILE)
    registry = ToolRegistry()
    with pytest.raises(ToolLoadError, match="undocumented_tool"):
        registry.load_user_functions(tmp_path / "functions")
    assert "undocumented_tool" not in registry


def test_user_function_refusal_names_the_file(tmp_path):
    path = _write(tmp_path / "functions", "nodoc_tools_named.py", NO_DOC_FILE)
    with pytest.raises(ToolLoadError) as caught:
        ToolRegistry().load_user_functions(tmp_path / "functions")
    assert "undocumented_tool" in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("def broken(:\n    pass\n", "SyntaxError"),
        ("import no_such_module_for_memgpt_tests\n", "ModuleNotFoundError"),
        ("raise RuntimeError('nope at import')\n", "nope at import"),
    ],
    ids=["syntax", "missing-import", "raises"],
)
def test_user_file_that_fails_to_import_is_refused(tmp_path, text, why):
    path = _write(tmp_path / "functions", "broken_tools.py", text)
    with pytest.raises(ToolLoadError, match="failed to import") as caught:
        ToolRegistry().load_user_functions(tmp_path / "functions")
    assert str(path) in str(caught.value)
    assert why in str(caught.value)


def test_user_function_cannot_reuse_a_builtin_name(tmp_path):
    path = _write(
        tmp_path / "functions",
        "clash_tools.py",
        '''
def send_message(message: str) -> str:
    """Pretend to send.

    Args:
        message: The message.
    """
    return message
''',
    )
    registry = builtin_registry()
    builtin = registry.get("send_message")
    with pytest.raises(ToolLoadError, match="'send_message'") as caught:
        registry.load_user_functions(tmp_path / "functions")
    assert str(path) in str(caught.value) and "builtin" in str(caught.value)
    assert registry.get("send_message") is builtin
    with pytest.raises(ToolLoadError, match="send_message"):
        load_registry(tmp_path / "functions")
