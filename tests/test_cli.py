"""The terminal faces, driven through a real pseudo-terminal (pexpect) against the fake OpenAI server.

Each test spawns `python app.py ...` in its own data home whose config.yaml points
the model and the embedder at the loopback server, so the whole path runs for
real: argument parsing, the engine, SQLite, the openai client and HTTP.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import sys
import threading
from pathlib import Path

import pytest
import yaml

pexpect = pytest.importorskip("pexpect")

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 20


def call(name, arguments, call_id):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def reply(message, thought, call_id="call_1"):
    return {"content": thought, "tool_calls": [call("send_message", {"message": message}, call_id)]}


@pytest.fixture
def cli_home(tmp_path, fake_openai) -> Path:
    home = tmp_path / "cli-home"
    home.mkdir()
    config = {
        "llm": {"endpoint_type": "openai-compatible", "model": "gpt-test", "endpoint": fake_openai.base_url},
        "embedding": {"endpoint_type": "openai-compatible", "model": "test-hash", "dim": 64,
                      "endpoint": fake_openai.base_url},
    }
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    return home


def spawn(home: Path, *args: str):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(MEMGPT_HOME=str(home), NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8")
    # The default Ctrl-C for the child: a test runner started as a background job of a
    # non-interactive shell ignores SIGINT, the child would inherit that, and Python then
    # never raises KeyboardInterrupt (how the Ctrl-C test failed in a fresh-clone run).
    child = pexpect.spawn(sys.executable, ["app.py", *args], cwd=str(ROOT), env=env, encoding="utf-8",
                          timeout=TIMEOUT, dimensions=(50, 300),
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    child.logfile_read = io.StringIO()  # everything the terminal showed, for assertions afterwards
    child.delayafterclose = child.delayafterterminate = 0.02  # the defaults add ~0.1 s per command
    return child


def run(home: Path, *args: str) -> tuple[str, int]:
    """Run a non-interactive command to the end: (what the terminal showed, exit code)."""
    child = spawn(home, *args)
    child.expect(pexpect.EOF)
    child.close()
    return child.logfile_read.getvalue(), child.exitstatus


def make_agent(home: Path, name: str = "ada") -> None:
    from engine.agents import create_agent
    from engine.runtime import open_runtime

    runtime = open_runtime(home)
    try:
        create_agent(runtime.store, runtime.settings, runtime.library, runtime.registry, name)
    finally:
        runtime.close()


# ---------------------------------------------------------------- chat


def test_chat_turn_memory_pop_retry_exit(cli_home, fake_openai):
    fake_openai.queue_chat(reply("Hello there, friend!", "The user greets me; greet back warmly."))
    child = spawn(cli_home, "chat", "--agent", "ada")
    child.expect_exact("Created agent ada")
    child.expect_exact("Agent ada · model gpt-test")
    child.expect_exact("> ")

    child.sendline("hi")
    child.expect_exact("The user greets me; greet back warmly.")  # inner monologue
    child.expect_exact("Hello there, friend!")  # the reply
    child.expect_exact("> ")

    child.sendline("/memory")
    child.expect(r"persona \(\d+/2000 characters\)")
    child.expect(r"human \(\d+/2000 characters\)")
    child.expect(r"Recall memory: (\d+) messages")
    assert int(child.match.group(1)) >= 6
    child.expect_exact("Archival memory: 0 passages")
    child.expect_exact("> ")

    child.sendline("/pop")  # the reply's result goes, and with it its call
    child.expect_exact("Removed 2 message(s) from the conversation.")
    child.expect_exact("> ")

    fake_openai.queue_chat(reply("Hello again, second try!", "Trying that greeting once more.", "call_2"))
    child.sendline("/retry")
    child.expect_exact("Trying that greeting once more.")
    child.expect_exact("Hello again, second try!")
    child.expect_exact("> ")

    child.sendline("/dump 3")
    child.expect_exact("you: hi")
    child.expect_exact("Hello again, second try!")
    child.expect_exact("> ")

    child.sendline("/tokens")
    child.expect(r"Context window: [\d,]+ of [\d,]+ tokens used")
    child.expect_exact("> ")

    child.sendline("/frobnicate")
    child.expect_exact("error: unknown command /frobnicate.")
    child.expect_exact("/rethink TEXT")  # the help follows
    child.expect_exact("> ")

    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    shown = child.logfile_read.getvalue()
    assert "Hello there, friend!" in shown and "Traceback" not in shown
    # The LLM saw the retried user message once, after the boot messages.
    last = [b for p, b in fake_openai.requests if p.endswith("/chat/completions")][-1]["messages"]
    assert sum('"hi"' in (m.get("content") or "") for m in last) == 1


def test_chat_edits_multiline_and_save(cli_home, fake_openai):
    make_agent(cli_home, "bo")
    child = spawn(cli_home, "chat", "--agent", "bo", "--no-verify")
    child.expect_exact("Agent bo")
    child.expect_exact("> ")
    fake_openai.queue_chat(reply("Two lines received.", "A poem in two lines."))
    child.sendline("//")
    child.expect_exact("multi-line message")
    child.sendline("roses are red")
    child.sendline("violets are blue")
    child.sendline("//")
    child.expect_exact("Two lines received.")
    child.expect_exact("> ")
    child.sendline("/rethink A calmer thought.")
    child.expect_exact("Inner monologue replaced:")
    child.expect_exact("A calmer thought.")
    child.sendline("/rewrite Two lines, thank you.")
    child.expect_exact("Last message rewritten:")
    child.sendline("/save")
    child.expect_exact("already saved")
    child.sendline("/load nobody")
    child.expect_exact("error: No agent named 'nobody'.")
    child.expect_exact("> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    sent = [b for p, b in fake_openai.requests if p.endswith("/chat/completions")][-1]["messages"]
    assert "roses are red\\nviolets are blue" in sent[-1]["content"]


def test_chat_adds_limits_and_removes_a_block(cli_home, fake_openai):
    make_agent(cli_home, "bo")
    child = spawn(cli_home, "chat", "--agent", "bo", "--no-verify")
    child.expect_exact("> ")
    child.sendline("/block add projects Building an owl box.")
    child.expect_exact("Added the block projects (20/2000 characters)")
    child.expect_exact("> ")
    child.sendline("/block limit projects 5")
    child.expect_exact("holds 20 characters, more than a limit of 5")  # refused aloud, nothing cut
    child.sendline("/block limit projects 300")
    child.expect_exact("The block projects now holds up to 300 characters.")
    child.sendline("/memory")
    child.expect_exact("projects (20/300 characters)")
    child.expect_exact("Building an owl box.")
    child.expect_exact("> ")
    child.sendline("/block remove persona")  # refused before any question is asked
    assert child.expect_exact(["cannot be removed", "Type yes to go on: "]) == 0
    child.sendline("/block remove nosuch")
    assert child.expect_exact(["nosuch", "Type yes to go on: "]) == 0
    child.expect_exact("> ")
    child.sendline("/block remove projects")
    child.expect_exact("Type yes to go on: ")
    child.sendline("no")
    child.expect_exact("Nothing was removed.")
    child.sendline("/block remove projects")
    child.expect_exact("Type yes to go on: ")
    child.sendline("yes")
    child.expect_exact("Removed the block projects")
    child.sendline("/block rename projects")
    child.expect_exact("/block takes add LABEL [TEXT], limit LABEL N or remove LABEL.")
    child.expect_exact("> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    from engine import MemGPT

    with MemGPT(cli_home) as api:
        assert "projects" not in [b.label for b in api.get_core_memory("bo")]
        assert [e.cause for e in api.memory_history("bo", "projects")][:1] == ["block removed"]


def test_ctrl_c_stops_waiting_and_the_next_turn_works(cli_home, fake_openai):
    make_agent(cli_home, "cy")
    # The model thinks until Ctrl-C has been handled (a fixed 1.5 s stall could run out first on a
    # loaded machine), then answers: a reply the interrupted step must drop.
    gate = threading.Event()
    fake_openai.queue_chat(gate)
    fake_openai.queue_chat(reply("Too late to matter.", "A slow thought."))
    fake_openai.queue_chat(reply("Back again.", "A fresh start.", "call_2"))
    child = spawn(cli_home, "chat", "--agent", "cy", "--no-verify")
    child.expect_exact("> ")
    child.sendline("are you there?")
    child.expect_exact("thinking…")
    child.sendintr()
    child.expect_exact("stopped waiting")
    child.expect_exact("> ")
    gate.set()
    child.sendline("hello again")
    child.expect_exact("Back again.")
    child.expect_exact("> ")
    child.sendintr()  # at the prompt, Ctrl-C only reminds how to leave
    child.expect_exact("/exit or Ctrl-D")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Too late to matter." not in child.logfile_read.getvalue()

    from engine.agents import get_agent
    from engine.runtime import open_runtime
    from engine.store import messages as messages_store

    runtime = open_runtime(cli_home)
    try:
        rows = messages_store.list_messages(runtime.store, get_agent(runtime.store, "cy").id)
    finally:
        runtime.close()
    texts = " ".join(r.text for r in rows)
    assert "are you there?" in texts and "hello again" in texts and "Back again." in texts
    assert "Too late to matter." not in texts  # the dropped reply left no half call behind
    answered = {r.tool_call_id for r in rows if r.role == "tool"}
    assert all(c["id"] in answered for r in rows if r.role == "assistant" for c in r.tool_calls or [])


def test_chat_with_a_bad_agent_name_is_a_readable_error(cli_home):
    output, status = run(cli_home, "chat", "--agent", "no/slashes")
    assert status == 2
    assert "error: Bad agent name" in output and "Traceback" not in output


def test_renderer_colours_only_when_asked():
    from cli.chat import FANCY, PLAIN, Renderer, Style, colour_enabled
    from engine.events import AssistantMessage, Error, Thought, ToolCall, Usage

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert colour_enabled(Tty(), env={}) and not colour_enabled(Tty(), env={"NO_COLOR": "1"})
    assert not colour_enabled(io.StringIO(), env={})
    coloured = Renderer(Style(True), FANCY)
    assert coloured.event(Thought("hmm")) == ["\x1b[2;3m💭 hmm\x1b[0m"]
    plain = Renderer(Style(False), PLAIN)
    assert plain.event(AssistantMessage("Hi")) == ["> Hi"]
    assert plain.event(ToolCall("send_message", {"message": "Hi"}, "c1")) == []  # the words come as a reply
    assert plain.event(ToolCall("archival_memory_search", {"query": "owls", "request_heartbeat": True}, "c2")) == \
        ['* archival_memory_search({"query": "owls"})']
    assert plain.event(Usage(1, 2, "m", 1, 2)) == []
    assert Renderer(Style(False), PLAIN, debug=True).event(Usage(1, 2, "m", 1, 2))
    assert "/retry" in plain.event(Error("server down", retryable=True))[0]


# ---------------------------------------------------------------- configure, list, add


def test_configure_answers_prompts_and_keeps_the_key_secret(cli_home, fake_openai):
    child = spawn(cli_home, "configure")
    child.expect_exact("Model provider (")
    child.expect_exact("[openai-compatible]: ")
    child.sendline("")
    child.expect_exact("Model [gpt-test]: ")
    child.sendline("gpt-better")
    child.expect_exact(f"[{fake_openai.base_url}]: ")
    child.sendline("")
    child.expect_exact("Context window")
    child.sendline("16000")
    child.expect_exact("Embedder (")
    child.sendline("bogus")
    child.expect_exact("please answer one of")
    child.expect_exact("Embedder (")
    child.sendline("")
    child.expect_exact("Embedding model [test-hash]: ")
    child.sendline("")
    child.expect_exact("Embedding dimension [64]: ")
    child.sendline("")
    child.expect_exact("Embedding base URL")
    child.sendline("")
    child.expect_exact("Default preset (")
    child.sendline("")
    child.expect_exact("Default persona (")
    child.sendline("plain")
    child.expect_exact("Default human (")
    child.sendline("")
    child.expect_exact("OPENAI_COMPATIBLE_API_KEY (not set;")
    child.sendline("sk-very-secret-123")
    child.expect_exact("Saved ")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "sk-very-secret-123" not in child.logfile_read.getvalue()  # getpass: never echoed

    config = yaml.safe_load((cli_home / "config.yaml").read_text())
    assert config["llm"]["model"] == "gpt-better" and config["llm"]["context_window"] == 16000
    assert config["llm"]["endpoint"] == fake_openai.base_url
    assert config["embedding"]["model"] == "test-hash" and config["default_persona"] == "plain"
    assert "sk-very-secret-123" not in (cli_home / "config.yaml").read_text()
    secrets_file = cli_home / "secrets.yaml"
    # Bound to the endpoint configure just wrote for it, and to nothing else.
    assert yaml.safe_load(secrets_file.read_text()) == {"OPENAI_COMPATIBLE_API_KEY": {
        "key": "sk-very-secret-123", "endpoints": [fake_openai.base_url]}}  # already normalized: explicit port
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600


def test_configure_stopped_early_saves_nothing(cli_home):
    before = (cli_home / "config.yaml").read_text()
    child = spawn(cli_home, "configure")
    child.expect_exact("Model provider (")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "nothing was saved" in child.logfile_read.getvalue()
    assert (cli_home / "config.yaml").read_text() == before


def test_configure_offers_the_new_providers_defaults(home, monkeypatch):
    from cli.manage import Prompter, configure

    answers = iter(["openai", "", "", "", "local", "", "", ""])
    asked: list[str] = []

    def ask(question):
        asked.append(question)
        return next(answers)

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    configure(str(home), Prompter(ask=ask, secret=lambda question: "-"))
    assert "Model [gpt-4o-mini]: " in asked  # switching provider proposes its usual model
    config = yaml.safe_load((home / "config.yaml").read_text())
    assert {k: config["llm"][k] for k in ("endpoint_type", "model", "endpoint", "context_window")} == \
        {"endpoint_type": "openai", "model": "gpt-4o-mini", "endpoint": None, "context_window": None}
    assert config["embedding"]["model"] == "all-MiniLM-L6-v2" and config["embedding"]["dim"] == 384


def test_list_and_add(cli_home, tmp_path):
    output, status = run(cli_home, "list", "agents")
    assert status == 0 and "(no agents yet)" in output
    make_agent(cli_home, "ada")
    output, status = run(cli_home, "list", "agents")
    assert status == 0 and "ada" in output and "gpt-test" in output and "test-hash (64-d)" in output

    output, status = run(cli_home, "add", "persona", "--name", "pirate", "--text", "I am a pirate, arr.")
    assert status == 0 and "Added persona 'pirate'" in output
    text_file = tmp_path / "grace.txt"
    text_file.write_text("The human is Grace, a COBOL fan.\n")
    output, status = run(cli_home, "add", "human", "--name", "grace", "-f", str(text_file))
    assert status == 0 and "Added human 'grace'" in output

    output, _ = run(cli_home, "list", "personas")
    assert "pirate" in output and "I am a pirate, arr." in output and "sam" in output
    output, _ = run(cli_home, "list", "humans")
    assert "grace" in output and "COBOL" in output
    output, _ = run(cli_home, "list", "presets")
    assert "memgpt_chat" in output and "send_message" in output
    output, _ = run(cli_home, "version")
    assert "MemGPT" in output


def test_bad_input_gives_readable_errors(cli_home, tmp_path):
    output, status = run(cli_home, "list", "bogus")
    assert status == 2 and "invalid choice: 'bogus'" in output
    output, status = run(cli_home, "add", "persona", "--name", "x", "-f", str(tmp_path / "missing.txt"))
    assert status == 2 and "error: cannot read" in output
    output, status = run(cli_home, "add", "persona", "--name", "../evil", "--text", "hi")
    assert status == 2 and "error: Bad persona name" in output
    output, status = run(cli_home, "attach", "--agent", "nobody", "--source", "x")
    assert status == 2 and "error: No agent named 'nobody'." in output
    output, status = run(cli_home, "export", "--agent", "nobody", str(tmp_path / "out.json"))
    assert status == 2 and "error: No agent named 'nobody'." in output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    output, status = run(cli_home, "import", str(broken))
    assert status == 2 and "is not an agent export" in output and "Traceback" not in output


# ---------------------------------------------------------------- load, attach, export/import


def test_load_file_attach_and_search_sources(cli_home, tmp_path):
    make_agent(cli_home, "ada")
    notes = tmp_path / "owls.md"
    notes.write_text("# Owls\n\nBarn owls hunt by sound in complete darkness.\n")
    output, status = run(cli_home, "load", "file", "--name", "birds", str(notes))
    assert status == 0, output
    assert "birds: 1 new passage(s) from 1 input(s)" in output
    assert "1/1 chunks" in output  # the progress bar
    output, status = run(cli_home, "load", "file", "--name", "birds", str(notes))
    assert status == 0 and "0 new passage(s)" in output and "1 already stored" in output

    output, status = run(cli_home, "attach", "--agent", "ada", "--source", "birds")
    assert status == 0 and "Attached birds (1 passages) to ada." in output
    output, _ = run(cli_home, "list", "sources")
    assert "birds" in output and "test-hash (64-d)" in output
    output, _ = run(cli_home, "list", "agents")
    assert "birds" in output

    output, status = run(cli_home, "attach", "--agent", "ada", "--source", "nothing-here")
    assert status == 2 and "error: No data source named 'nothing-here'." in output


def test_load_with_nothing_readable_exits_1(cli_home, tmp_path):
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02binary")
    output, status = run(cli_home, "load", "file", "--name", "junk", str(tmp_path / "missing.txt"), str(binary))
    assert status == 1
    assert "missing.txt: not found" in output and "binary file" in output
    output, _ = run(cli_home, "list", "sources")
    assert "junk" not in output  # no empty source left behind
    output, status = run(cli_home, "load", "directory", "--name", "junk", "--path", str(tmp_path / "nope"))
    assert status == 2 and "is not a directory" in output


def test_load_jsonl_and_directory(cli_home, tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("Alpha document about comets.")
    (folder / "sub" / "b.txt").write_text("Beta document about meteors.")
    (folder / "c.csv").write_text("x,y\n1,2\n")
    output, status = run(cli_home, "load", "directory", "--name", "space", "--path", str(folder), "--recursive",
                         "--ext", "md,txt")
    assert status == 0 and "space: 2 new passage(s) from 2 input(s)" in output
    lines = tmp_path / "facts.jsonl"
    lines.write_text('{"text": "Mars has two moons."}\nnot json\n')
    output, status = run(cli_home, "load", "jsonl", "--name", "facts", str(lines))
    assert status == 0 and "facts: 1 new passage(s)" in output and "invalid JSON" in output


def test_load_database_and_vector_table(cli_home, tmp_path, embedder):
    import sqlite3

    db_path = tmp_path / "facts.db"
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE facts (body TEXT, vec TEXT)")
        conn.executemany("INSERT INTO facts VALUES (?, ?)",
                         [(text, json.dumps(embedder.embed([text])[0])) for text in ("Venus is hot.", "Pluto is cold.")])
    conn.close()
    output, status = run(cli_home, "load", "database", "--name", "planets", "--sqlite", str(db_path),
                         "--query", "SELECT body FROM facts")
    assert status == 0 and "planets: 2 new passage(s)" in output
    output, status = run(cli_home, "load", "vector-table", "--name", "vectors", "--sqlite", str(db_path),
                         "--table", "facts", "--text-column", "body", "--embedding-column", "vec")
    assert status == 0 and "vectors: 2 new passage(s)" in output
    output, status = run(cli_home, "load", "vector-table", "--name", "vectors", "--sqlite", str(db_path),
                         "--table", "facts", "--text-column", "nope", "--embedding-column", "vec")
    assert status == 2 and "error: Table 'facts' has no column 'nope'" in output


def test_export_import_round_trip_from_the_terminal(cli_home, tmp_path):
    make_agent(cli_home, "ada")
    path = tmp_path / "ada.json"
    output, status = run(cli_home, "export", "--agent", "ada", str(path))
    assert status == 0 and "Exported ada" in output
    output, status = run(cli_home, "import", str(path))
    assert status == 0 and "Imported ada (2)" in output
    output, status = run(cli_home, "import", str(path))
    assert status == 0 and "Imported ada (3)" in output
    output, _ = run(cli_home, "list", "agents")
    assert "ada (2)" in output and "ada (3)" in output


# ---------------------------------------------------------------- `run`, MemGPT's name for chat


def test_run_picks_an_agent_speaks_first_and_handles_memgpts_commands(cli_home, fake_openai):
    make_agent(cli_home, "first")
    make_agent(cli_home, "second")
    fake_openai.queue_chat(reply("I was waiting for you!", "The user is here; I speak first."))
    child = spawn(cli_home, "run", "--first", "--strip-ui", "--no-verify")
    child.expect_exact("Agents in this home:")
    child.expect_exact("1) first")
    child.expect_exact("2) second")
    child.expect_exact("Which one?")
    child.sendline("1")
    child.expect_exact("Agent first · model gpt-test")
    child.expect_exact("I was waiting for you!")  # --first: the model spoke before the user
    child.expect_exact("> ")

    child.sendline("/model")
    child.expect_exact("first uses gpt-test (openai-compatible")
    child.expect_exact("> ")
    child.sendline("/model gpt-bigger")
    child.expect_exact("first now uses gpt-bigger.")
    child.expect_exact("> ")

    child.sendline("/dumpraw")
    child.expect_exact('"role": "system"')
    child.expect_exact('"functions": [')
    child.expect_exact("> ")

    child.sendline("/wipe")
    child.expect_exact("Type yes to go on:")
    child.sendline("no")
    child.expect_exact("Nothing was deleted.")
    child.expect_exact("> ")
    child.sendline("/wipe")
    child.expect_exact("Type yes to go on:")
    child.sendline("yes")
    child.expect(r"Deleted \d+ message\(s\); the conversation starts afresh\.")
    child.expect_exact("> ")

    child.sendline("/load")  # no name: this agent, read again
    child.expect_exact("Agent first · model gpt-bigger")
    child.expect_exact("> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "\x1b[" not in child.logfile_read.getvalue()  # --strip-ui: no escape codes

    from engine.api import MemGPT

    with MemGPT(cli_home) as api:
        assert api.get_agent("first").llm.model == "gpt-bigger"  # /model is saved
        texts = [m.text for m in api.messages("first")]
        assert "I was waiting for you!" not in " ".join(texts)  # /wipe took the conversation away
    last = [b for p, b in fake_openai.requests if p.endswith("/chat/completions")][-1]
    assert last["model"] == "gpt-test"  # the --first call went out before the switch


def test_run_with_yes_takes_the_newest_agent_and_model_flags_apply_for_the_session(cli_home, fake_openai):
    make_agent(cli_home, "old")
    make_agent(cli_home, "new")
    fake_openai.queue_chat(reply("Session model here.", "Answering."))
    child = spawn(cli_home, "run", "-y", "--no-verify", "--model", "gpt-session", "--context-window", "4096")
    child.expect_exact("Agent new")
    child.expect_exact("> ")
    child.sendline("hello")
    child.expect_exact("Session model here.")
    child.expect_exact("> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    sent = [b for p, b in fake_openai.requests if p.endswith("/chat/completions")][-1]
    assert sent["model"] == "gpt-session"
    from engine.api import MemGPT

    with MemGPT(cli_home) as api:
        assert api.get_agent("new").llm.model == "gpt-test"  # a session flag, not saved


def test_help_lists_the_commands(cli_home):
    output, status = run(cli_home, "--help")
    assert status == 0 and "commands: run, chat, load" in output.replace("\n", " ")


def _llama_index_dir(path: Path, embedder, old_layout: bool = False) -> Path:
    """A directory in the shape LlamaIndex's storage_context.persist() writes (both docstore layouts)."""
    path.mkdir()
    texts = {"n1": "Saturn's rings are mostly ice.", "n2": "Jupiter has a great red spot.", "n3": ""}
    nodes = {nid: {"__type__": "1", "__data__": {"id_": nid, "text": t, "metadata": {"file_name": "planets.txt"}}}
             for nid, t in texts.items()}
    docstore = {"docstore": {"docs": nodes}} if old_layout else {"docstore/data": nodes, "docstore/metadata": {}}
    (path / "docstore.json").write_text(json.dumps(docstore))
    vectors = {nid: embedder.embed([t])[0] for nid, t in texts.items() if t}
    (path / "default__vector_store.json").write_text(json.dumps({"embedding_dict": vectors}))
    (path / "index_store.json").write_text(json.dumps({"index_store/data": {}}))
    return path


def test_load_a_llama_index_directory(cli_home, tmp_path, embedder):
    index = _llama_index_dir(tmp_path / "storage", embedder)
    output, status = run(cli_home, "load", "index", "--name", "planets", "--dir", str(index))
    assert status == 0 and "planets: 2 new passage(s)" in output and "no text" in output
    older = _llama_index_dir(tmp_path / "older", embedder, old_layout=True)
    output, status = run(cli_home, "load", "index", "--name", "kept", "--dir", str(older), "--use-embeddings")
    assert status == 0 and "kept: 2 new passage(s)" in output
    output, status = run(cli_home, "load", "index", "--name", "none", "--dir", str(tmp_path))
    assert status == 2 and "not a persisted LlamaIndex index directory" in output


def test_load_database_names_a_server_the_way_memgpt_did():
    import argparse

    from cli import CommandError
    from cli.load import _dsn

    def args(**given):
        base = dict(sqlite=None, dsn=None, scheme="postgresql", host=None, port=None, user=None, password=None,
                    dbname=None)
        return argparse.Namespace(**{**base, **given})

    assert _dsn(args(dbname="docs", host="db.local", port=5433, user="kim", password="p@ss/word")) == (
        None, "postgresql://kim:p%40ss%2Fword@db.local:5433/docs")
    assert _dsn(args(dbname="docs")) == (None, "postgresql://localhost/docs")
    assert _dsn(args(sqlite="x.db")) == ("x.db", None)
    for bad in (args(), args(dbname="d", sqlite="x.db"), args(dbname="d", scheme="mysql")):
        with pytest.raises(CommandError):
            _dsn(bad)


def test_bulk_embedding_stays_within_the_limits_given(cli_home, tmp_path, fake_openai):
    """A provider allowing 3 embedding requests a second: at 60 a minute nothing is refused; unlimited, it is."""
    lines = tmp_path / "facts.jsonl"
    lines.write_text("".join(json.dumps({"text": f"Fact {i}: comet {i} passed by in {1900 + i}."}) + "\n"
                             for i in range(12)))
    fake_openai.embedding_rate_limit = (3, 1.0)
    output, status = run(cli_home, "load", "jsonl", "--name", "limited", str(lines), "--batch-size", "2",
                         "--concurrency", "2", "--requests-per-minute", "60")
    assert status == 0 and "limited: 12 new passage(s)" in output, output
    assert fake_openai.embedding_429s == 0
    times = fake_openai.embedding_times
    assert len(times) == 6 and times[-1] - times[0] >= 4.0  # 6 requests, about one a second
    fake_openai.embedding_times.clear()
    output, status = run(cli_home, "load", "jsonl", "--name", "unlimited", str(lines), "--batch-size", "2",
                         "--concurrency", "2")
    assert status == 0 and "unlimited: 12 new passage(s)" in output, output  # 429s were waited out and retried
    assert fake_openai.embedding_429s > 0


@pytest.fixture
def postgres(tmp_path):
    """An empty database on the session's real PostgreSQL server (tests/support/postgres.py)."""
    from tests.support import postgres as pg

    url = pg.fresh_database(empty=True)
    yield url
    pg.drop_database(url)


def test_load_from_a_real_postgresql_server(cli_home, postgres, embedder):
    import psycopg

    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id serial, body text, vec text)")
        for text in ("Mars has two moons.", "Neptune is windy.", "Mercury has no moons."):
            conn.execute("INSERT INTO notes (body, vec) VALUES (%s, %s)", [text, json.dumps(embedder.embed([text])[0])])
    output, status = run(cli_home, "load", "database", "--name", "pg-notes", "--dsn", postgres,
                         "--query", "SELECT body FROM notes WHERE body LIKE '%moons%'")
    assert status == 0 and "pg-notes: 2 new passage(s)" in output, output
    output, status = run(cli_home, "load", "vector-table", "--name", "pg-vectors", "--dsn", postgres,
                         "--table", "notes", "--text-column", "body", "--embedding-column", "vec")
    assert status == 0 and "pg-vectors: 3 new passage(s)" in output, output
    output, status = run(cli_home, "load", "database", "--name", "pg-bad", "--dsn", postgres,
                         "--query", "DELETE FROM notes")
    assert status == 2 and "error:" in output  # a read-only connection: nothing is changed
    with psycopg.connect(postgres) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 3
