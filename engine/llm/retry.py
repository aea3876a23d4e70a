"""Retrying transient LLM failures with exponential backoff and jitter, visibly, within a deadline.

`call_with_retries` is a generator: it yields a `Retrying` event before each
wait, so the faces can show "rate limited, retrying in 4 s", and returns the
completion (via StopIteration.value, i.e. `yield from`).

`max_elapsed` is a deadline for the whole call: every attempt and every wait.
While an attempt runs, the deadline is published through `time_left()`, and the
client built by `engine.llm.client` shrinks each HTTP timeout to what is left,
so a hung server costs at most the budget rather than budget + one timeout.
"""

from __future__ import annotations

import contextvars
import dataclasses
import random
import time
from collections.abc import Callable, Generator

from engine.events import Retrying
from engine.llm.base import Completion, LLMError

# A context variable rather than an argument: providers are called through a
# plain `call()`, and the generator may resume on another thread between attempts.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("llm_deadline", default=None)

MIN_ATTEMPT = 1.0  # an attempt with less time than this left is not worth starting


def time_left() -> float | None:
    """Seconds until the current call's deadline; None outside `call_with_retries`."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 20.0
    max_elapsed: float = 90.0  # the deadline over all attempts and waits
    jitter: float = 0.25  # +-25% so many clients do not retry in lockstep

    def delay(self, attempt: int, hint: float | None = None) -> float:
        wait = hint if hint is not None else self.base_delay * (2 ** (attempt - 1))
        wait = min(wait, self.max_delay)
        return max(0.0, wait * (1 + random.uniform(-self.jitter, self.jitter)))


def fitting(policy: RetryPolicy, provider: object) -> RetryPolicy:
    """`policy` with a deadline no shorter than one attempt of `provider` may take.

    A CPU server reading a long first prompt can take minutes, which is why local
    servers get a per-call timeout of 300 s (engine/llm/providers.py); a 90 s deadline
    over all attempts would cut that one attempt short.
    """
    per_call = getattr(provider, "call_timeout", None)
    if isinstance(per_call, (int, float)) and per_call > policy.max_elapsed:
        return dataclasses.replace(policy, max_elapsed=float(per_call))
    return policy


def _out_of_time(policy: RetryPolicy, attempt: int, error: LLMError) -> LLMError:
    tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
    out = LLMError(f"No answer within the {policy.max_elapsed:g} s limit ({tries}). Last error: {error}",
                   retryable=True)
    out.__cause__ = error
    return out


def call_quietly(call: Callable[[], Completion], policy: RetryPolicy,
                 sleep: Callable[[float], None] = time.sleep) -> Completion:
    """`call_with_retries` run to the end, its Retrying events dropped (for calls with no one to show them to)."""
    steps = call_with_retries(call, policy, sleep)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def call_with_retries(
    call: Callable[[], Completion],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> Generator[Retrying, None, Completion]:
    deadline = time.monotonic() + policy.max_elapsed
    outer = _deadline.get()
    if outer is not None:  # nested calls (a summary inside a step) keep the tighter deadline
        deadline = min(deadline, outer)
    attempt = 1
    while True:
        token = _deadline.set(deadline)
        try:
            return call()
        except LLMError as error:
            if not error.retryable:
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise _out_of_time(policy, attempt, error) from error
            if attempt >= policy.max_attempts:
                raise
            wait = policy.delay(attempt, error.retry_after)
            if wait + MIN_ATTEMPT > left:
                raise _out_of_time(policy, attempt, error) from error
            reason = str(error)
        finally:
            _deadline.reset(token)
        yield Retrying(attempt=attempt, wait=round(wait, 2), reason=reason)
        sleep(wait)
        attempt += 1
