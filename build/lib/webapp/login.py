"""The web login's password check, slowed down for whoever keeps guessing.

Gradio calls `auth(username, password)` from its /login route without the request,
so the client's address is not visible here. Failures are therefore counted per
username (after a few free ones, each further failure closes that name for twice
as long as the last, up to a cap) and across all names in a sliding window (so
guessing both name and password cannot dodge the per-name count). While closed,
attempts are answered 429 at once without looking at the password: firing many
guesses in parallel gains nothing. A success reopens its name.

The check itself compares digests with `hmac.compare_digest`, name and password
both, so neither its time nor its length gives anything away. The callable is a
coroutine so that nothing here ever holds one of the server's threads.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import math
import time
from collections.abc import Callable

from fastapi import HTTPException, status

MAX_TRACKED_NAMES = 10_000


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class LoginGuard:
    def __init__(
        self,
        username: str,
        password: str,
        *,
        free_failures: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        global_limit: int = 100,
        global_window: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._user = _digest(username)
        self._password = _digest(password)
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.global_limit = global_limit
        self.global_window = global_window
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._closed_until: dict[str, float] = {}
        self._recent: collections.deque[float] = collections.deque()

    def wait(self, username: str) -> float:
        """Seconds before `username` may try again (0 when it may now)."""
        now = self._clock()
        while self._recent and self._recent[0] <= now - self.global_window:
            self._recent.popleft()
        wait = self._closed_until.get(username, 0.0) - now
        if len(self._recent) >= self.global_limit:
            wait = max(wait, self._recent[0] + self.global_window - now)
        return max(0.0, wait)

    def verify(self, username: str, password: str) -> bool:
        """The throttled check; raises HTTPException 429 while `username` (or every name) is closed."""
        wait = self.wait(username)
        if wait > 0:
            seconds = math.ceil(wait)
            raise HTTPException(
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                detail=f"Too many failed logins. Try again in {seconds} s.",
                headers={"Retry-After": str(seconds)},
            )
        # `&` rather than `and`: both comparisons always run.
        ok = hmac.compare_digest(_digest(username), self._user) & hmac.compare_digest(_digest(password),
                                                                                        self._password)
        if ok:
            self._failures.pop(username, None)
            self._closed_until.pop(username, None)
            return True
        self._record_failure(username)
        return False

    async def check(self, username: str, password: str) -> bool:
        """What `launch(auth=...)` gets: Gradio awaits coroutine functions on its event loop."""
        return self.verify(username, password)

    def _record_failure(self, username: str) -> None:
        now = self._clock()
        self._recent.append(now)
        if username not in self._failures and len(self._failures) >= MAX_TRACKED_NAMES:
            self._forget_open_names(now)
        failures = self._failures.get(username, 0) + 1
        self._failures[username] = failures
        if failures > self.free_failures:
            delay = min(self.max_delay, self.base_delay * 2 ** min(failures - self.free_failures - 1, 40))
            self._closed_until[username] = now + delay

    def _forget_open_names(self, now: float) -> None:
        for name in [n for n in self._failures if self._closed_until.get(n, 0.0) <= now]:
            self._failures.pop(name, None)
            self._closed_until.pop(name, None)
        # Still full of closed names: an attack on many names, which the global window slows anyway.
        while len(self._failures) >= MAX_TRACKED_NAMES:
            name = next(iter(self._failures))
            self._failures.pop(name)
            self._closed_until.pop(name, None)


def login_guard(credentials: tuple[str, str] | None, **options) -> Callable | None:
    """The `auth=` value for `demo.launch`: None without credentials, else a throttled check."""
    if credentials is None:
        return None
    return LoginGuard(*credentials, **options).check
