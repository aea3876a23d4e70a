"""A real HTTP server on loopback that speaks the OpenAI wire format, for tests.

Only the edge we cannot reach (a paid API) is faked; the `openai` client, its
HTTP stack and our code run for real against it. Scripted chat replies and
failures are queued; every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class FakeOpenAI:
    def __init__(self, embed: Callable[[str], list[float]] | None = None):
        self.embed = embed
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.chat_replies: deque = deque()
        self.embedding_failures: deque = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue_chat(self, reply: dict[str, Any] | tuple[int, dict[str, Any]] | float) -> None:
        """Queue a chat reply: a message dict, (status, body) for an error, or seconds to stall."""
        self.chat_replies.append(reply)

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

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append((self.path, body))
                if self.path.endswith("/embeddings"):
                    return self._embeddings(body)
                if self.path.endswith("/chat/completions"):
                    return self._chat(body)
                self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _embeddings(self, body):
                if fake.embedding_failures:
                    status, payload = fake.embedding_failures.popleft()
                    return self._send(status, payload)
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = [
                    {"object": "embedding", "index": i, "embedding": fake.embed(text)}
                    for i, text in enumerate(inputs)
                ]
                self._send(200, {
                    "object": "list", "data": data, "model": body.get("model"),
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                })

            def _chat(self, body):
                if not fake.chat_replies:
                    return self._send(500, {"error": {"message": "no scripted reply queued"}})
                reply = fake.chat_replies.popleft()
                if isinstance(reply, (int, float)) and not isinstance(reply, bool):
                    time.sleep(reply)
                    reply = fake.chat_replies.popleft() if fake.chat_replies else {"content": "late"}
                if isinstance(reply, tuple):
                    return self._send(*reply)
                message = {"role": "assistant", "content": reply.get("content")}
                if reply.get("tool_calls"):
                    message["tool_calls"] = reply["tool_calls"]
                self._send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": message,
                                 "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop"}],
                    "usage": reply.get("usage", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
                })

        return Handler
