"""Storage behind small modules: one SQLite file by default, PostgreSQL + pgvector when configured.

`open_store()` opens the store the settings name; the other modules are plain
functions taking a `Store` (engine/store/base.py), one module per concern.
With `archival_storage: lancedb` the archival vectors go to a LanceDB directory
(engine/store/lance.py) and everything else stays in the store.
"""

from __future__ import annotations

from engine.store.base import Store
from engine.store.db import SqliteStore, now

__all__ = ["Store", "SqliteStore", "attach_lancedb", "now", "open_store"]


def open_store(settings) -> Store:
    """The store for these settings: PostgreSQL when `database_url` is set, else the home's SQLite file."""
    store: Store
    if settings.database_url:
        from engine.store.pg import PgStore

        store = PgStore(settings.database_url, home=settings.home)
    else:
        store = SqliteStore(settings.db_path, home=settings.home)
    if settings.archival_storage == "lancedb":
        try:
            attach_lancedb(store, settings.lancedb_path)
        except BaseException:
            store.close()
            raise
    return store


def attach_lancedb(store: Store, path) -> None:
    """Keep `store`'s archival vectors in the LanceDB directory `path`, first filling in any it lacks."""
    from engine.store import passages
    from engine.store.lance import LanceVectors

    store.vectors = LanceVectors(path)
    passages.sync_vectors(store)
