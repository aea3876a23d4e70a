"""FakeOpenAI that also serves the text-completions endpoint (`/v1/completions`).

Raw completion texts are queued as a local model would write them; every request
body is recorded in `requests` like the chat ones, so tests can read the prompt,
stop strings and grammar that were sent.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from tests.support.fake_openai import FakeOpenAI


class FakeCompletions(FakeOpenAI):
    def __init__(self, **kwargs):
        self.completion_replies: deque = deque()  # set before the server (and its handler) exists
        super().__init__(**kwargs)

    def queue_completion(self, reply: str | tuple[int, dict[str, Any]] | float) -> None:
        """Queue a raw completion text, (status, body) for an error, or seconds to stall."""
        self.completion_replies.append(reply)

    def completion_requests(self) -> list[dict[str, Any]]:
        return [body for path, body in self.requests if _is_completions(path)]

    def _handler(self):
        fake = self
        base = super()._handler()

        class Handler(base):
            def do_POST(self):
                if not _is_completions(self.path):
                    return super().do_POST()
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append((self.path, body))
                if not fake.completion_replies:
                    return self._send(500, {"error": {"message": "no scripted completion queued"}})
                reply = fake.completion_replies.popleft()
                if isinstance(reply, (int, float)):
                    time.sleep(reply)
                    reply = fake.completion_replies.popleft() if fake.completion_replies else "late"
                if isinstance(reply, tuple):
                    return self._send(*reply)
                self._send(200, {
                    "id": "cmpl-test", "object": "text_completion", "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [{"index": 0, "text": reply, "finish_reason": "stop", "logprobs": None}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                })

        return Handler


def _is_completions(path: str) -> bool:
    return path.endswith("/completions") and not path.endswith("/chat/completions")
