"""run_tool with real handles: base functions work, and whatever the model sends never raises."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from engine.memory import ArchivalMemory, CoreMemory, RecallMemory
from engine.store import messages
from engine.tools.handles import FileSpace, HeartbeatControl, Outbox, ToolContext, WebAccess
from engine.tools.registry import ToolRegistry
from engine.tools.runner import DEFAULT_RESULT_LIMIT, FAILED, OK, run_tool

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


@pytest.fixture
def ctx(store, agent, embedder, tmp_path) -> ToolContext:
    return ToolContext(
        core=CoreMemory(store, agent.id),
        recall=RecallMemory(store, agent.id),
        archival=ArchivalMemory(store, agent.id, embedder),
        outbox=Outbox(),
        heartbeats=HeartbeatControl(),
        files=FileSpace(tmp_path / "files"),
        web=WebAccess(),
    )


@pytest.fixture(params=["json", "dict"])
def call(request, registry, ctx):
    """Run a tool on the builtin registry, sending the arguments as a JSON string or as a dict."""

    def run(name: str, arguments: dict, **kwargs):
        sent = json.dumps(arguments) if request.param == "json" else dict(arguments)
        outcome = run_tool(registry, name, sent, ctx, **kwargs)
        assert outcome.name == name
        return outcome

    return run


def _failed(outcome, *fragments: str) -> None:
    assert outcome.status == FAILED, outcome
    assert outcome.heartbeat is True
    assert not outcome.ok
    for fragment in fragments:
        assert fragment in outcome.message, outcome.message


# --- every base function with good arguments -----------------------------------------------


def test_send_message_lands_in_the_outbox(call, ctx):
    outcome = call("send_message", {"message": "Hello there 👋"})
    assert outcome.status == OK and outcome.ok
    assert outcome.message == "None"
    assert outcome.heartbeat is False
    assert ctx.outbox.sent == ["Hello there 👋"]


def test_send_message_refuses_an_empty_message(call, ctx):
    _failed(call("send_message", {"message": "   "}), "empty")
    assert ctx.outbox.sent == []


def test_pause_heartbeats(call, ctx):
    before = time.time()
    outcome = call("pause_heartbeats", {"minutes": 30})
    assert outcome.status == OK
    assert outcome.message.startswith("Timed heartbeats paused for 30 minutes.")
    assert "runs no timed heartbeats" in outcome.message
    assert outcome.heartbeat is False
    assert ctx.heartbeats.paused()
    assert before + 30 * 60 - 1 <= ctx.heartbeats.paused_until <= time.time() + 30 * 60 + 1


@pytest.mark.parametrize("minutes", [0, -5, 361])
def test_pause_heartbeats_out_of_range(call, ctx, minutes):
    _failed(call("pause_heartbeats", {"minutes": minutes}), "between 1 and 360")
    assert not ctx.heartbeats.paused()


def test_core_memory_append(call, ctx):
    ctx.core.set("human", "Name: Kim")
    outcome = call("core_memory_append", {"name": "human", "content": "Likes tea 🍵", "request_heartbeat": True})
    assert outcome.status == OK
    value = ctx.core.get("human").value
    assert value == "Name: Kim\nLikes tea 🍵"
    assert outcome.message == f"Block 'human' now holds {len(value)} of 2000 characters."
    edit = ctx.core.history("human")[0]
    assert (edit.cause, edit.actor) == ("core_memory_append", "agent")
    assert (edit.old_value, edit.new_value) == ("Name: Kim", value)


def test_core_memory_replace(call, ctx):
    ctx.core.set("human", "Name: Kim\nLikes chess")
    outcome = call(
        "core_memory_replace",
        {"name": "human", "old_content": "chess", "new_content": "go", "request_heartbeat": False},
    )
    assert outcome.status == OK
    assert ctx.core.get("human").value == "Name: Kim\nLikes go"
    assert "'human' now holds 18 of 2000" in outcome.message
    edit = ctx.core.history("human")[0]
    assert (edit.cause, edit.actor) == ("core_memory_replace", "agent")
    assert edit.old_value == "Name: Kim\nLikes chess"


def test_core_memory_replace_with_empty_text_deletes(call, ctx):
    ctx.core.set("human", "Name: Kim\nLikes chess")
    assert call("core_memory_replace", {"name": "human", "old_content": "\nLikes chess", "new_content": ""}).ok
    assert ctx.core.get("human").value == "Name: Kim"


def test_archival_insert_then_search(call, ctx):
    outcome = call("archival_memory_insert", {"content": "The user's cat is called Biscuit.", "request_heartbeat": True})
    assert outcome.status == OK
    assert outcome.message == "Stored in archival memory as 1 passage."
    assert ctx.archival.count() == 1
    outcome = call("archival_memory_search", {"query": "cat Biscuit"})
    assert outcome.status == OK
    assert "Showing 1 of 1 results (page 0/0)" in outcome.message
    assert "The user's cat is called Biscuit." in outcome.message


def test_archival_search_with_nothing_stored(call):
    assert call("archival_memory_search", {"query": "anything", "page": 0}).message == "No results found."


def test_conversation_search_finds_a_message(call, store, agent):
    messages.add(store, agent.id, "user", json.dumps({"message": "purple"}), text="I adore purple elephants")
    outcome = call("conversation_search", {"query": "purple elephants", "request_heartbeat": False})
    assert outcome.status == OK
    assert "Showing 1 of 1 results" in outcome.message
    assert "user: I adore purple elephants" in outcome.message
    assert call("conversation_search", {"query": "zebrafish"}).message == "No results found."


def test_conversation_search_date_finds_todays_message(call, store, agent):
    messages.add(store, agent.id, "user", "hello", text="Remember the quokka")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    outcome = call("conversation_search_date", {"start_date": today, "end_date": today})
    assert outcome.status == OK
    assert "Remember the quokka" in outcome.message
    past = call("conversation_search_date", {"start_date": "2001-01-01", "end_date": "2001-12-31"})
    assert past.status == OK and past.message == "No results found."


def test_conversation_search_date_refuses_bad_dates(call):
    _failed(call("conversation_search_date", {"start_date": "yesterday", "end_date": "2024-01-01"}), "YYYY-MM-DD")
    _failed(call("conversation_search_date", {"start_date": "2024-02-01", "end_date": "2024-01-01"}), "before")


# --- bad input becomes a failed outcome, never an exception --------------------------------


def test_unknown_function_name(call):
    _failed(call("fly_to_the_moon", {"speed": 3}), "no function named 'fly_to_the_moon'", "send_message")


@pytest.mark.parametrize("text", ['{"message": ', "{'message': 'hi'}", "not json at all", '{"a": 1}}'])
def test_arguments_that_are_not_json(registry, ctx, text):
    outcome = run_tool(registry, "send_message", text, ctx)
    _failed(outcome, "not valid JSON", "send_message")
    assert outcome.arguments == {}
    assert isinstance(outcome.error, json.JSONDecodeError)
    assert ctx.outbox.sent == []


def test_deeply_nested_json_arguments_fail_cleanly(registry, ctx):
    outcome = run_tool(registry, "send_message", "[" * 100_000, ctx)
    _failed(outcome)


@pytest.mark.parametrize("text", ['["hi"]', '"hi"', "42", "true"])
def test_arguments_that_are_not_an_object(registry, ctx, text):
    _failed(run_tool(registry, "send_message", text, ctx), "must be a JSON object")
    assert ctx.outbox.sent == []


def test_empty_or_missing_arguments_mean_no_arguments(registry, ctx):
    for empty in ("", "   ", None, {}):
        _failed(run_tool(registry, "send_message", empty, ctx), "missing required arguments: message")


def test_missing_required_argument(call):
    _failed(call("conversation_search", {"page": 0, "request_heartbeat": True}), "missing required arguments: query")
    _failed(
        call("core_memory_replace", {"name": "human"}),
        "missing required arguments: old_content, new_content",
    )


def test_unexpected_extra_argument(call, ctx):
    outcome = call("send_message", {"message": "hi", "colour": "red"})
    _failed(outcome, "unexpected arguments colour", "it takes: message")
    assert outcome.arguments == {"message": "hi", "colour": "red"}
    assert ctx.outbox.sent == []


@pytest.mark.parametrize(
    ("name", "arguments", "fragment"),
    [
        ("conversation_search", {"query": "x", "page": "1"}, 'page must be an integer, not "1"'),
        ("conversation_search", {"query": "x", "page": True}, "page must be an integer, not true"),
        ("conversation_search", {"query": "x", "page": 1.5}, "page must be an integer, not 1.5"),
        ("send_message", {"message": 5}, "message must be a string, not 5"),
        ("core_memory_append", {"name": "human", "content": ["a"]}, "content must be a string"),
        ("pause_heartbeats", {"minutes": True}, "minutes must be an integer"),
        ("conversation_search", {"query": None}, "query must be a string, not null"),
        ("conversation_search", {"query": "x", "request_heartbeat": "yes"}, "request_heartbeat must be true or false"),
        ("conversation_search", {"query": "x", "request_heartbeat": 1}, "request_heartbeat must be true or false"),
    ],
)
def test_wrong_types(call, name, arguments, fragment):
    _failed(call(name, arguments), fragment)


def test_optional_argument_may_be_null(call, store, agent):
    messages.add(store, agent.id, "user", "x", text="marmalade sandwich")
    outcome = call("conversation_search", {"query": "marmalade", "page": None})
    assert outcome.ok and "marmalade sandwich" in outcome.message


def test_negative_page_and_page_past_the_end(call, ctx):
    _failed(call("archival_memory_search", {"query": "x", "page": -1}), "0 or more")
    ctx.archival.insert("one small passage about otters")
    _failed(call("archival_memory_search", {"query": "otters", "page": 3}), "page 3 does not exist")


def test_core_memory_append_over_the_limit_changes_nothing(call, ctx):
    ctx.core.set("human", "x" * 1990)
    edits = len(ctx.core.history("human"))
    outcome = call("core_memory_append", {"name": "human", "content": "y" * 20, "request_heartbeat": False})
    _failed(outcome, "2011 of 2000")
    assert ctx.core.get("human").value == "x" * 1990
    assert len(ctx.core.history("human")) == edits


def test_core_memory_replace_text_not_present(call, ctx):
    ctx.core.set("human", "Name: Kim")
    _failed(call("core_memory_replace", {"name": "human", "old_content": "name: kim", "new_content": "Lee"}), "not found")
    assert ctx.core.get("human").value == "Name: Kim"


def test_unknown_block_label(call, ctx):
    outcome = call("core_memory_append", {"name": "diary", "content": "x"})
    _failed(outcome, "'diary'", "persona, human")
    assert [b.label for b in ctx.core.blocks()] == ["persona", "human"]


def explode(what: str) -> str:
    """Fail on purpose.

    Args:
        what: What to say while failing.
    """
    raise RuntimeError(f"boom: {what}")


def test_function_raising_an_arbitrary_exception(ctx):
    registry = ToolRegistry()
    registry.register(explode, origin="test")
    outcome = run_tool(registry, "explode", {"what": "kaput", "request_heartbeat": False}, ctx)
    _failed(outcome, "explode failed: RuntimeError: boom: kaput")
    assert isinstance(outcome.error, RuntimeError)


def test_missing_handle_fails_clearly(registry, store, agent):
    bare = ToolContext(core=CoreMemory(store, agent.id), recall=RecallMemory(store, agent.id), archival=None)
    _failed(run_tool(registry, "archival_memory_insert", {"content": "x"}, bare), "not available", "ArchivalMemory")
    _failed(run_tool(registry, "read_from_text_file", {"filename": "a.txt"}, bare), "FileSpace")
    _failed(run_tool(registry, "message_chatgpt", {"message": "hi"}, bare), "ChatModel")
    _failed(run_tool(registry, "core_memory_append", {"name": "human", "content": "x"}, ToolContext()), "CoreMemory")


# --- heartbeats ------------------------------------------------------------------------------


@pytest.mark.parametrize(("sent", "expected"), [(True, True), (False, False), ("omitted", False)])
def test_request_heartbeat_on_success(call, sent, expected):
    arguments = {"name": "human", "content": "likes heartbeats"}
    if sent != "omitted":
        arguments["request_heartbeat"] = sent
    outcome = call("core_memory_append", arguments)
    assert outcome.ok
    assert outcome.heartbeat is expected


def test_send_message_never_sets_heartbeat(call, ctx):
    outcome = call("send_message", {"message": "hi", "request_heartbeat": True})
    assert outcome.ok and outcome.heartbeat is False
    assert ctx.outbox.sent == ["hi"]
    assert call("pause_heartbeats", {"minutes": 5, "request_heartbeat": True}).heartbeat is False


# --- long results and the allowed list -------------------------------------------------------


def long_text(size: int) -> str:
    """Return a long text.

    Args:
        size: How many characters.
    """
    return "x" * size


def structured(n: int) -> dict:
    """Return a structure.

    Args:
        n: A number.
    """
    return {"n": n, "items": list(range(n))}


def test_long_results_are_cut_with_a_note(ctx):
    registry = ToolRegistry()
    registry.register(long_text)
    outcome = run_tool(registry, "long_text", {"size": 500}, ctx, result_limit=100)
    assert outcome.ok
    assert outcome.message == "x" * 100 + "\n[result cut: 400 more characters not shown]"
    default = run_tool(registry, "long_text", {"size": 5000}, ctx)
    assert default.message.startswith("x" * DEFAULT_RESULT_LIMIT + "\n[result cut: 2000 more")
    exact = run_tool(registry, "long_text", {"size": 100}, ctx, result_limit=100)
    assert exact.message == "x" * 100


def test_non_string_results_are_json(ctx):
    registry = ToolRegistry()
    registry.register(structured)
    outcome = run_tool(registry, "structured", {"n": 3}, ctx)
    assert json.loads(outcome.message) == {"n": 3, "items": [0, 1, 2]}


def test_allowed_list(registry, ctx):
    outcome = run_tool(registry, "archival_memory_insert", {"content": "secret"}, ctx, allowed=["send_message"])
    _failed(outcome, "no function named 'archival_memory_insert'", "Available: send_message.")
    assert ctx.archival.count() == 0
    ok = run_tool(registry, "archival_memory_insert", {"content": "fine"}, ctx, allowed=["archival_memory_insert"])
    assert ok.ok and ctx.archival.count() == 1


def test_a_failure_quoting_a_huge_name_is_cut_like_a_result(registry, ctx):
    outcome = run_tool(registry, "x" * 600_000, "{}", ctx)
    assert outcome.status == FAILED and len(outcome.message) < DEFAULT_RESULT_LIMIT + 100
    assert "more characters not shown" in outcome.message
