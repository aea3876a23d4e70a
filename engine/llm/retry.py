"""Retrying transient LLM failures with exponential backoff and jitter, visibly.

`call_with_retries` is a generator: it yields a `Retrying` event before each
wait, so the faces can show "rate limited, retrying in 4 s", and returns the
completion (via StopIteration.value, i.e. `yield from`). It gives up after
`max_attempts` or once `max_elapsed` seconds would be passed.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Generator

from engine.events import Retrying
from engine.llm.base import Completion, LLMError


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 20.0
    max_elapsed: float = 90.0
    jitter: float = 0.25  # +-25% so many clients do not retry in lockstep

    def delay(self, attempt: int, hint: float | None = None) -> float:
        wait = hint if hint is not None else self.base_delay * (2 ** (attempt - 1))
        wait = min(wait, self.max_delay)
        return max(0.0, wait * (1 + random.uniform(-self.jitter, self.jitter)))


def call_with_retries(
    call: Callable[[], Completion],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> Generator[Retrying, None, Completion]:
    start = time.monotonic()
    attempt = 1
    while True:
        try:
            return call()
        except LLMError as error:
            if not error.retryable or attempt >= policy.max_attempts:
                raise
            wait = policy.delay(attempt, error.retry_after)
            if time.monotonic() - start + wait > policy.max_elapsed:
                raise
            yield Retrying(attempt=attempt, wait=round(wait, 2), reason=str(error))
            sleep(wait)
            attempt += 1
