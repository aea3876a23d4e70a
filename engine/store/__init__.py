"""Storage behind small modules: one SQLite file by default, PostgreSQL + pgvector when configured.

`open_store()` opens the store the settings name; the other modules are plain
functions taking a `Store` (engine/store/base.py), one module per concern.
"""

from __future__ import annotations

from engine.store.base import Store
from engine.store.db import SqliteStore, now

__all__ = ["Store", "SqliteStore", "now", "open_store"]


def open_store(settings) -> Store:
    """The store for these settings: PostgreSQL when `database_url` is set, else the home's SQLite file."""
    if settings.database_url:
        from engine.store.pg import PgStore

        return PgStore(settings.database_url, home=settings.home)
    return SqliteStore(settings.db_path, home=settings.home)
