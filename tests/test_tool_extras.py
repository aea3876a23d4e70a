"""Extras: the sandboxed files folder, http_request's address checks, and message_chatgpt."""

from __future__ import annotations

import dataclasses
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from engine.tools.handles import ChatModel, FileSpace, ToolContext, WebAccess
from engine.tools.runner import FAILED, OK, run_tool

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL


def _failed(outcome, *fragments: str) -> None:
    assert outcome.status == FAILED, outcome
    assert outcome.heartbeat is True
    for fragment in fragments:
        assert fragment in outcome.message, outcome.message


# --- files -----------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "files"
    path.mkdir()
    return path


@pytest.fixture
def fctx(root) -> ToolContext:
    return ToolContext(files=FileSpace(root))


def read(registry, ctx, filename, **kwargs):
    return run_tool(registry, "read_from_text_file", {"filename": filename, **kwargs}, ctx)


def append(registry, ctx, filename, content):
    return run_tool(registry, "append_to_text_file", {"filename": filename, "content": content}, ctx)


def test_append_creates_the_file_and_read_returns_it(registry, fctx, root):
    outcome = append(registry, fctx, "notes.txt", "first line")
    assert outcome.status == OK
    assert outcome.message == "Appended 10 characters to 'notes.txt'."
    assert append(registry, fctx, "notes.txt", "second line ✓").ok
    assert (root / "notes.txt").read_text(encoding="utf-8") == "first line\nsecond line ✓\n"
    outcome = read(registry, fctx, "notes.txt")
    assert outcome.status == OK
    assert outcome.message == "Lines 1-2 of 2:\nfirst line\nsecond line ✓"


def test_a_file_error_names_the_cause_not_the_server_path(registry, fctx, root):
    assert append(registry, fctx, "x", "a file").ok
    outcome = append(registry, fctx, "x/y", "under a file")  # x is a file, not a folder
    assert outcome.status == FAILED and str(root) not in outcome.message and "/" + root.name not in outcome.message
    assert outcome.message.startswith("append_to_text_file failed: ")
    too_long = append(registry, fctx, "n" * 300, "a name over the file system's limit")
    assert too_long.status == FAILED and str(root) not in too_long.message


def test_append_into_a_new_subfolder(registry, fctx, root):
    assert append(registry, fctx, "journal/today.txt", "sunny").ok
    assert (root / "journal" / "today.txt").read_text() == "sunny\n"
    assert read(registry, fctx, "journal/today.txt").message == "Lines 1-1 of 1:\nsunny"


def test_read_line_ranges(registry, fctx, root):
    (root / "lines.txt").write_text("".join(f"line {i}\n" for i in range(1, 31)))
    assert read(registry, fctx, "lines.txt", line_start=5, num_lines=3).message == (
        "Lines 5-7 of 30:\nline 5\nline 6\nline 7"
    )
    default = read(registry, fctx, "lines.txt").message
    assert default.startswith("Lines 1-20 of 30:\nline 1\n") and default.endswith("\nline 20")
    assert read(registry, fctx, "lines.txt", line_start=28, num_lines=10).message == (
        "Lines 28-30 of 30:\nline 28\nline 29\nline 30"
    )
    past = read(registry, fctx, "lines.txt", line_start=40)
    assert past.ok and past.message == "'lines.txt' has 30 lines; nothing at line 40."
    _failed(read(registry, fctx, "lines.txt", line_start=0), "line_start must be 1 or more")
    _failed(read(registry, fctx, "lines.txt", num_lines=201), "between 1 and 200")


ESCAPES = [
    ("../escape.txt", "'..' is not allowed"),
    ("a/../../escape.txt", "'..' is not allowed"),
]


@pytest.mark.parametrize(("filename", "why"), ESCAPES)
def test_dotdot_is_refused(registry, fctx, tmp_path, filename, why):
    (tmp_path / "escape.txt").write_text("outside\n")
    _failed(read(registry, fctx, filename), why)
    _failed(append(registry, fctx, filename, "pwned"), why)
    assert (tmp_path / "escape.txt").read_text() == "outside\n"
    (tmp_path / "escape.txt").unlink()
    _failed(append(registry, fctx, filename, "pwned"), why)
    assert not (tmp_path / "escape.txt").exists()


def test_absolute_paths_are_refused(registry, fctx, tmp_path):
    outcome = read(registry, fctx, "/etc/passwd")
    _failed(outcome, "Absolute paths are not allowed")
    assert "root:" not in outcome.message
    target = tmp_path / "outside.txt"
    _failed(append(registry, fctx, str(target), "pwned"), "Absolute paths are not allowed")
    assert not target.exists()


def test_symlink_to_a_file_outside_is_refused(registry, fctx, root, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret\n")
    (root / "link.txt").symlink_to(secret)
    outcome = read(registry, fctx, "link.txt")
    _failed(outcome, "outside your files folder")
    assert "the secret" not in outcome.message
    _failed(append(registry, fctx, "link.txt", "pwned"), "outside your files folder")
    assert secret.read_text() == "the secret\n"


def test_dangling_symlink_and_linked_folder_are_refused(registry, fctx, root, tmp_path):
    (root / "dangling.txt").symlink_to(tmp_path / "created-outside.txt")
    _failed(append(registry, fctx, "dangling.txt", "pwned"), "outside your files folder")
    assert not (tmp_path / "created-outside.txt").exists()
    outside = tmp_path / "outside-dir"
    outside.mkdir()
    (root / "sub").symlink_to(outside, target_is_directory=True)
    _failed(append(registry, fctx, "sub/new.txt", "pwned"), "outside your files folder")
    assert list(outside.iterdir()) == []


def test_symlink_inside_the_root_is_fine(registry, fctx, root):
    (root / "real.txt").write_text("inside\n")
    (root / "alias.txt").symlink_to(root / "real.txt")
    assert read(registry, fctx, "alias.txt").message == "Lines 1-1 of 1:\ninside"


def test_binary_file_is_not_read(registry, fctx, root):
    (root / "blob.bin").write_bytes(b"abc\x00def\n")
    _failed(read(registry, fctx, "blob.bin"), "'blob.bin' is a binary file")


def test_missing_file(registry, fctx):
    _failed(read(registry, fctx, "nope.txt"), "There is no file 'nope.txt' in your files folder")


def test_empty_filename(registry, fctx):
    _failed(read(registry, fctx, "  "), "filename is empty")


def test_dot_filename_fails_with_a_clear_message(registry, fctx):
    outcome = read(registry, fctx, ".")
    _failed(outcome)
    assert "IndexError" not in outcome.message


# --- http_request ----------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # clients that hang up early are expected
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        self.server.hits.append(("GET", self.path))
        if self.path == "/hello":
            self._send(200, b"hello from the test server", {"Content-Type": "text/plain; charset=utf-8"})
        elif self.path == "/big":
            self._send(200, b"x" * 2_000_000, {"Content-Type": "text/plain"})
        elif self.path == "/slow":
            self.server.stop.wait(3)
            self._send(200, b"finally")
        elif self.path == "/redirect-to-metadata":
            self._send(302, headers={"Location": "http://169.254.169.254/latest"})
        elif self.path == "/redirect-to-hello":
            self._send(302, headers={"Location": "/hello"})
        else:
            self._send(404, b"not found")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.hits.append(("POST", self.path))
        if self.path == "/echo":
            self._send(200, b"echo: " + body, {"Content-Type": "text/plain; charset=utf-8"})
        else:
            self._send(404, b"not found")


@pytest.fixture(scope="module")
def http_server():
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hits = []
    server.stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def server_url(http_server, monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    http_server.hits.clear()
    host, port = http_server.server_address[:2]
    return f"http://{host}:{port}"


def http(registry, web, method, url, payload_json=None):
    arguments = {"method": method, "url": url, "request_heartbeat": True}
    if payload_json is not None:
        arguments["payload_json"] = payload_json
    return run_tool(registry, "http_request", arguments, ToolContext(web=web))


@pytest.fixture
def open_web() -> WebAccess:
    return WebAccess(allow_private=True, timeout=1.0, max_bytes=1000)


def test_default_web_access_refuses_the_local_server(registry, server_url, http_server):
    outcome = http(registry, WebAccess(), "GET", server_url + "/hello")
    _failed(outcome, "127.0.0.1", "refused", "loopback")
    assert http_server.hits == []


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://127.0.0.1:1/", "(127.0.0.1) are refused"),
        ("http://localhost/", "are refused"),
        ("http://10.0.0.1/", "(10.0.0.1) are refused"),
        ("http://192.168.1.1/", "(192.168.1.1) are refused"),
        ("http://169.254.169.254/", "(169.254.169.254) are refused"),
        ("http://[::1]/", "(::1) are refused"),
        ("http://[::ffff:127.0.0.1]/", "(127.0.0.1) are refused"),
        ("http://0.0.0.0/", "are refused"),
        ("file:///etc/passwd", "Only http and https URLs are allowed, not 'file'"),
        ("ftp://example.com/", "Only http and https URLs are allowed, not 'ftp'"),
        ("gopher://x", "Only http and https URLs are allowed, not 'gopher'"),
        ("example.com/page", "not 'no scheme'"),
        ("http:///nohost", "no host name"),
    ],
)
def test_blocked_urls(registry, url, fragment):
    started = time.monotonic()
    outcome = http(registry, WebAccess(), "GET", url)
    _failed(outcome, fragment)
    assert "root:" not in outcome.message
    assert time.monotonic() - started < 5


def test_get_with_private_access(registry, server_url, open_web, http_server):
    outcome = http(registry, open_web, "GET", server_url + "/hello")
    assert outcome.status == OK, outcome.message
    assert outcome.message == "HTTP 200\nhello from the test server"
    assert outcome.heartbeat is True
    assert http_server.hits == [("GET", "/hello")]


def test_not_found_is_reported_not_failed(registry, server_url, open_web):
    outcome = http(registry, open_web, "GET", server_url + "/missing")
    assert outcome.ok and outcome.message == "HTTP 404\nnot found"


def test_big_response_is_cut(registry, server_url, open_web):
    outcome = http(registry, open_web, "GET", server_url + "/big")
    assert outcome.status == OK
    assert outcome.message == "HTTP 200\n" + "x" * 1000 + "\n[response cut at 1000 bytes]"


def test_slow_response_times_out(registry, server_url, open_web):
    started = time.monotonic()
    outcome = http(registry, open_web, "GET", server_url + "/slow")
    elapsed = time.monotonic() - started
    _failed(outcome, "timed out after 1 s")
    assert elapsed < 2.5


def test_post_echoes_the_payload(registry, server_url, open_web, http_server):
    outcome = http(registry, open_web, "POST", server_url + "/echo", payload_json='{"a": 1}')
    assert outcome.status == OK, outcome.message
    assert outcome.message == 'HTTP 200\necho: {"a": 1}'
    assert http_server.hits == [("POST", "/echo")]


def test_invalid_payload_json_is_refused_before_sending(registry, server_url, open_web, http_server):
    _failed(http(registry, open_web, "POST", server_url + "/echo", payload_json="{a: 1"), "payload_json is not valid JSON")
    assert http_server.hits == []


def test_unsupported_method(registry, server_url, open_web, http_server):
    _failed(http(registry, open_web, "TRACE", server_url + "/hello"), "Unsupported HTTP method 'TRACE'")
    assert http_server.hits == []


def test_scheme_check_applies_even_with_private_access(registry, open_web):
    _failed(http(registry, open_web, "GET", "file:///etc/passwd"), "Only http and https")


@dataclasses.dataclass
class OnlyTestServerWeb(WebAccess):
    """The real checks, except that exactly one host:port (the test server) is let through."""

    trusted: str = ""
    checked: list = dataclasses.field(default_factory=list)

    def check_url(self, url: str):
        self.checked.append(url)
        if urlsplit(url).netloc == self.trusted:
            return WebAccess(allow_private=True).check_url(url)
        return super().check_url(url)


def test_redirect_to_a_blocked_address_is_refused(registry, server_url, http_server):
    web = OnlyTestServerWeb(timeout=1.0, trusted=urlsplit(server_url).netloc)
    assert web.allow_private is False
    started = time.monotonic()
    outcome = http(registry, web, "GET", server_url + "/redirect-to-metadata")
    _failed(outcome, "169.254.169.254", "refused")
    assert web.checked == [server_url + "/redirect-to-metadata", "http://169.254.169.254/latest"]
    assert http_server.hits == [("GET", "/redirect-to-metadata")]
    assert time.monotonic() - started < 2


def test_redirect_within_the_allowed_host_is_followed(registry, server_url):
    web = OnlyTestServerWeb(timeout=1.0, trusted=urlsplit(server_url).netloc)
    outcome = http(registry, web, "GET", server_url + "/redirect-to-hello")
    assert outcome.status == OK, outcome.message
    assert outcome.message == "HTTP 200\nhello from the test server"
    assert web.checked == [server_url + "/redirect-to-hello", server_url + "/hello"]


def test_too_many_redirects(registry, server_url, http_server):
    web = WebAccess(allow_private=True, timeout=1.0, max_redirects=0)
    _failed(http(registry, web, "GET", server_url + "/redirect-to-hello"), "Too many redirects")
    assert http_server.hits == [("GET", "/redirect-to-hello")]


# --- message_chatgpt ---------------------------------------------------------------------------


def test_message_chatgpt_without_a_model(registry):
    outcome = run_tool(registry, "message_chatgpt", {"message": "hi"}, ToolContext(chat_model=ChatModel()))
    _failed(outcome, "OPENAI_API_KEY")


def test_message_chatgpt_with_a_model(registry):
    chat = ChatModel(ask=lambda m: "reply to " + m)
    outcome = run_tool(
        registry, "message_chatgpt", '{"message": "what is 2+2?", "request_heartbeat": true}', ToolContext(chat_model=chat)
    )
    assert outcome.status == OK
    assert outcome.message == "reply to what is 2+2?"
    assert outcome.heartbeat is True



def test_an_agent_asks_its_own_model_through_message_chatgpt(make_agent, runtime, embedder, fake_openai):
    """No second key or model needed: the agent's own provider answers, statelessly, and the call is counted."""
    import json

    from engine.agent import Agent, AgentOptions
    from engine.config import LLMConfig
    from engine.store.agents import usage_totals

    row = make_agent("asker", preset="memgpt_extras",
                     llm=LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url))
    agent = Agent.load(runtime, row.id, embedder=embedder, options=AgentOptions(verify_first_message=False))

    def call(name, call_id, **arguments):
        return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}

    fake_openai.queue_chat({"content": "Let me ask.", "tool_calls": [
        call("message_chatgpt", "m1", message="What is the capital of Peru?", request_heartbeat=True)]})
    fake_openai.queue_chat({"content": "Lima."})  # the one-shot question: no tools, no memory
    fake_openai.queue_chat({"content": None, "tool_calls": [call("send_message", "s1", message="It is Lima.")]})
    events = list(agent.step("Capital of Peru?"))
    result = next(e for e in events if e.kind == "tool_result" and e.name == "message_chatgpt")
    assert result.status == "OK" and result.message == "Lima."
    asked = [body for path, body in fake_openai.requests if path.endswith("/chat/completions")][1]
    assert "tools" not in asked and [m["role"] for m in asked["messages"]] == ["system", "user"]
    assert asked["messages"][1]["content"] == "What is the capital of Peru?"
    assert usage_totals(runtime.store, row.id)[0] == 3
