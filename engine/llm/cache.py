"""A small per-process cache of built clients and providers: bounded, least recently used first out.

Faces load an agent per request (a Gradio event, a WebSocket message), and an
`openai` client costs tens of milliseconds of CPU to build (its HTTP stack, TLS
context included), so building one per request capped the server's throughput.
Callers put everything that defines the object in its key; a changed setting
(a new key, another URL) is another key and so another object.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedCache(Generic[T]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        """The object for `key`, built by `build()` on a miss (an exception caches nothing)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            # Built under the lock: two threads asking for one endpoint at once get one object.
            item = build()
            self._items[key] = item
            while len(self._items) > self.size:
                # Not closed: an agent mid-step may still hold it; it goes once nobody does.
                self._items.popitem(last=False)
            return item

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __repr__(self) -> str:  # keys may hold key digests: never shown
        return f"<BoundedCache {len(self._items)}/{self.size}>"
