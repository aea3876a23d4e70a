"""A real HTTP server on loopback that speaks the OpenAI wire format, for tests.

Only the edge we cannot reach (a paid API) is faked; the `openai` client, its
HTTP stack and our code run for real against it. Scripted chat replies and
failures are queued; every request is recorded, with its headers (so tests can
see which API key, if any, reached the server).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass(frozen=True)
class RawReply:
    status: int
    content_type: str
    text: str


def history_problem(messages: list[dict[str, Any]]) -> str | None:
    """OpenAI's ordering rule for tool calls: every call answered by tool messages right after it, and no others."""
    waiting: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "tool":
            if m.get("tool_call_id") not in waiting:
                return f"messages[{i}]: a 'tool' message must answer a tool call of the assistant message before it."
            waiting.discard(m.get("tool_call_id"))
            continue
        if waiting:
            return (f"messages[{i}]: the assistant's tool calls {sorted(waiting)} have no tool messages answering "
                    "them before this message.")
        if role == "assistant" and m.get("tool_calls"):
            waiting = {c.get("id") for c in m["tool_calls"]}
    if waiting:
        return f"the assistant's tool calls {sorted(waiting)} have no tool messages answering them."
    return None


class _Replies(deque):
    """The queued chat replies; `clear()` also tells requests stalled since then not to take later ones."""

    generation = 0

    def clear(self) -> None:
        self.generation += 1
        super().clear()


class FakeOpenAI:
    def __init__(self, embed: Callable[[str], list[float]] | None = None):
        self.embed = embed
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []  # one per request, in the same order as `requests`
        self.chat_replies: deque = _Replies()
        self.embedding_failures: deque = deque()
        self.embedding_delay = 0.0  # seconds per /embeddings request, to make a load take a while
        self.legacy_only = False  # act like a server that knows only the older `functions` field
        # Streaming (`"stream": true` requests get server-sent events, as OpenAI sends them):
        self.ignore_stream = False  # answer one JSON body anyway, as some servers do
        self.refuse_stream_options = False  # refuse `stream_options` with a 400, as older servers do
        self.stream_chunk_chars = 6  # how much text or argument each chunk carries
        self.stream_delay = 0.0  # seconds between chunks, to watch a reply grow
        # (requests, seconds): refuse /embeddings with 429 beyond that many in any such window, as a provider does.
        self.embedding_rate_limit: tuple[int, float] | None = None
        self.embedding_times: list[float] = []
        self.embedding_429s = 0
        # Set: GET /models lists these, and chat or embeddings for any other model get OpenAI's 404
        # model_not_found. None: no /models route, and every model name is accepted.
        self.models: list[str] | None = None
        self.required_key: str | None = None  # set: requests without `Bearer <key>` get a 401
        self.prefix: str | None = None  # set (e.g. "/v1"): paths outside it get a bare 404, like a wrong base URL
        self.web_page: str | None = None  # set: every request gets this HTML page, like a web UI at the URL
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue_chat(self, reply: dict[str, Any] | tuple[int, dict[str, Any]] | float | threading.Event) -> None:
        """Queue a chat reply: a message dict, (status, body) for an error, seconds to stall, or a gate
        (a threading.Event: the next reply waits until it is set)."""
        self.chat_replies.append(reply)

    def queue_raw(self, status: int, content_type: str, text: str) -> None:
        """Queue a chat reply that is not the API's JSON (a proxy's error page, a web UI)."""
        self.chat_replies.append(RawReply(status, content_type, text))

    @property
    def authorizations(self) -> list[str]:
        """The credentials every request carried (Authorization or Azure's api-key), "" when none."""
        return [h.get("authorization") or h.get("api-key") or "" for h in self.headers]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _page(self, text: str) -> None:
                data = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _refused(self, route: str, model: str | None) -> bool:
                """Answer what the server's settings refuse; whether it did."""
                if fake.web_page is not None:
                    self._page(fake.web_page)
                elif fake.prefix is not None and not route.startswith(fake.prefix + "/"):
                    self._send(404, {"detail": "Not Found"})
                elif fake.required_key is not None and (
                        self.headers.get("Authorization") != f"Bearer {fake.required_key}"):
                    self._send(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                               "code": "invalid_api_key"}})
                elif model is not None and fake.models is not None and model not in fake.models:
                    self._send(404, {"error": {"message": f"The model `{model}` does not exist or you do not have "
                                                          "access to it.", "type": "invalid_request_error",
                                               "code": "model_not_found"}})
                else:
                    return False
                return True

            def do_GET(self):
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                fake.requests.append((self.path, {}))
                route = self.path.split("?")[0]
                if self._refused(route, None):
                    return
                if route.endswith("/models") and fake.models is not None:
                    return self._send(200, {"object": "list", "data": [
                        {"id": name, "object": "model", "owned_by": "test"} for name in fake.models]})
                self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                fake.requests.append((self.path, body))
                route = self.path.split("?")[0]  # Azure adds ?api-version=
                if self._refused(route, body.get("model")):
                    return
                if route.endswith("/embeddings"):
                    return self._embeddings(body)
                if route.endswith("/chat/completions"):
                    return self._chat(body)
                self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _embeddings(self, body):
                if fake.embedding_rate_limit is not None:
                    limit, window = fake.embedding_rate_limit
                    now = time.monotonic()
                    with fake.lock:
                        recent = [t for t in fake.embedding_times if now - t < window]
                        if len(recent) >= limit:
                            fake.embedding_429s += 1
                            refused = True
                        else:
                            fake.embedding_times.append(now)
                            refused = False
                    if refused:
                        self.send_response(429)
                        data = json.dumps({"error": {"message": "Rate limit reached", "type": "rate_limit"}}).encode()
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Retry-After", str(window))
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                if fake.embedding_failures:
                    status, payload = fake.embedding_failures.popleft()
                    return self._send(status, payload)
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                time.sleep(fake.embedding_delay)
                data = [
                    {"object": "embedding", "index": i, "embedding": fake.embed(text)}
                    for i, text in enumerate(inputs)
                ]
                self._send(200, {
                    "object": "list", "data": data, "model": body.get("model"),
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                })

            def _chat(self, body):
                if fake.legacy_only and ("tools" in body or any(
                        m.get("role") == "tool" or m.get("tool_calls") for m in body.get("messages") or [])):
                    return self._send(400, {"error": {
                        "message": "Unrecognized request argument supplied: tools", "type": "invalid_request_error"}})
                problem = history_problem(body.get("messages") or [])
                if problem:  # what OpenAI itself refuses, so a broken history fails here as it would there
                    return self._send(400, {"error": {"message": problem, "type": "invalid_request_error",
                                                      "param": "messages", "code": None}})
                if fake.refuse_stream_options and "stream_options" in body:
                    return self._send(400, {"error": {"message": "Unrecognized request argument supplied: stream_options",
                                                      "type": "invalid_request_error"}})
                if not fake.chat_replies:
                    return self._send(500, {"error": {"message": "no scripted reply queued"}})
                reply = fake.chat_replies.popleft()
                generation = getattr(fake.chat_replies, "generation", 0)
                stalled = isinstance(reply, threading.Event) or (
                    isinstance(reply, (int, float)) and not isinstance(reply, bool))
                if isinstance(reply, threading.Event):  # a gate: answer once the test opens it
                    reply.wait(60)
                elif stalled:
                    time.sleep(reply)
                if stalled:
                    # A request whose replies were cleared meanwhile (its client was killed) takes none queued later.
                    fresh = getattr(fake.chat_replies, "generation", 0) == generation
                    reply = fake.chat_replies.popleft() if fresh and fake.chat_replies else {"content": "late"}
                if isinstance(reply, tuple):
                    return self._send(*reply)
                if isinstance(reply, RawReply):
                    data = reply.text.encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if body.get("stream") and not fake.ignore_stream:
                    return self._stream(body, reply)
                message = {"role": "assistant", "content": reply.get("content")}
                if reply.get("tool_calls") and fake.legacy_only:
                    message["function_call"] = reply["tool_calls"][0]["function"]
                elif reply.get("tool_calls"):
                    message["tool_calls"] = reply["tool_calls"]
                self._send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": message,
                                 "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop"}],
                    "usage": reply.get("usage", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
                })

            def _stream(self, body, reply):
                """The reply as server-sent events: content, then each call's name and its arguments in pieces.

                A reply with `cut_after: N` stops after N chunks, without finishing (a dropped connection).
                """
                size = max(1, fake.stream_chunk_chars)
                base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": body.get("model")}

                def piece(delta, finish=None):
                    return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

                chunks = [piece({"role": "assistant", "content": ""})]
                text = reply.get("content") or ""
                chunks += [piece({"content": text[i:i + size]}) for i in range(0, len(text), size)]
                for index, call in enumerate(reply.get("tool_calls") or []):
                    fn = call["function"]
                    arguments = fn.get("arguments") or ""
                    if fake.legacy_only:
                        chunks.append(piece({"function_call": {"name": fn["name"], "arguments": ""}}))
                        chunks += [piece({"function_call": {"arguments": arguments[i:i + size]}})
                                   for i in range(0, len(arguments), size)]
                        break
                    chunks.append(piece({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                                         "function": {"name": fn["name"], "arguments": ""}}]}))
                    chunks += [piece({"tool_calls": [{"index": index, "function": {"arguments": arguments[i:i + size]}}]})
                               for i in range(0, len(arguments), size)]
                chunks.append(piece({}, "tool_calls" if reply.get("tool_calls") else "stop"))
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage = reply.get("usage", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
                    chunks.append({**base, "choices": [], "usage": usage})
                cut = reply.get("cut_after")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()  # no length: the stream ends when the connection closes (HTTP/1.0)
                try:
                    for n, chunk in enumerate(chunks):
                        if cut is not None and n >= cut:
                            return
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        if fake.stream_delay:
                            time.sleep(fake.stream_delay)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (a Stop), as real servers see it

        return Handler
