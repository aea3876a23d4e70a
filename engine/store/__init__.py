"""Storage behind small modules: one SQLite file by default, PostgreSQL + pgvector when configured.

`open_store()` opens the store the settings name; the other modules are plain
functions taking a `Store` (engine/store/base.py), one module per concern.
With `archival_storage: lancedb` the archival vectors go to a LanceDB directory
(engine/store/lance.py) and everything else stays in the store.
"""

from __future__ import annotations

import sys


def _import_sqlite_utils_without_pandas() -> None:
    """Import sqlite-utils with pandas hidden, once, before any store module needs it.

    sqlite-utils imports pandas at import time whenever it is installed (gradio brings
    it), only to map pandas.Timestamp values to TEXT columns, which we never write:
    that was 0.6 s of the 2 s every terminal command took to start. pandas is hidden
    for this one import only, so a later `import pandas` (gradio's) works as usual.
    """
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # None makes `import pandas` raise ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]


_import_sqlite_utils_without_pandas()

from engine.store.base import Store  # noqa: E402
from engine.store.db import SqliteStore, now  # noqa: E402

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
