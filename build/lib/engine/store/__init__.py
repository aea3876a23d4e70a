"""Storage: one SQLite file (sqlite-utils + sqlite-vec) behind small modules.

`Store` opens the file and runs migrations; the other modules are plain
functions taking a `Store`, one module per concern.
"""

from engine.store.db import Store, now

__all__ = ["Store", "now"]
