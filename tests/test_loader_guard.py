"""Loaders never open the data home or the live database: reading it would drop the store's locks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from engine.errors import MemGPTError
from engine.loaders import LoaderError, read_directory, read_file
from engine.loaders.readers import Document, Skipped
from engine.loaders.sources_db import open_database
from engine.store import SqliteStore, live
from engine.store import agents as agents_store
from engine.transfer import TransferError
from engine.transfer import read_file as read_export

# A second process that writes and closes. If this process had lost its locks, the
# child would believe it is alone and, on close, checkpoint and delete the WAL.
CHILD = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1])
    conn.execute("CREATE TABLE IF NOT EXISTS other_process (x)")
    conn.execute("INSERT INTO other_process VALUES (1)")
    conn.commit()
    conn.close()
    """
)


@pytest.fixture
def layout(tmp_path, store, settings):
    """A folder holding both documents and the data home."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("A note about comets.")
    return tmp_path, settings.home


def _names(items):
    return sorted(os.path.basename(i.metadata["source"]) for i in items if isinstance(i, Document))


def test_the_data_home_is_refused(layout):
    _, home = layout
    with pytest.raises(LoaderError, match="data home"):
        list(read_directory(home, recursive=True))
    with pytest.raises(LoaderError, match="data home"):
        list(read_directory(home / "files" / ".."))


def test_a_folder_above_the_home_is_read_without_the_home(layout, store):
    parent, home = layout
    store.db.execute("SELECT 1").fetchone()
    items = list(read_directory(parent, recursive=True, include_hidden=True))
    assert _names(items) == ["note.md"]
    assert not any(str(home) in str(getattr(i, "what", "")) for i in items)


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_the_live_database_files_are_never_opened(settings, store, suffix):
    store.db.execute("SELECT 1").fetchone()
    path = f"{settings.db_path}{suffix}"
    items = list(read_file(path))
    assert len(items) == 1 and isinstance(items[0], Skipped) and "data home" in items[0].reason


def test_a_hard_link_to_the_database_elsewhere_is_refused(settings, store, tmp_path):
    link = tmp_path / "innocent.txt"
    os.link(settings.db_path, link)
    items = list(read_file(link))
    assert isinstance(items[0], Skipped) and "live database" in items[0].reason
    with pytest.raises(LoaderError, match="live database"):
        with open_database(sqlite=link):
            pass


def test_database_and_import_loaders_refuse_the_live_database(settings, store):
    with pytest.raises(LoaderError, match="data home"):
        with open_database(sqlite=settings.db_path):
            pass
    with pytest.raises(TransferError, match="data home"):
        read_export(settings.db_path)


def test_a_symlink_into_the_home_is_refused(settings, store, tmp_path):
    link = tmp_path / "shortcut"
    link.symlink_to(settings.home)
    with pytest.raises(LoaderError, match="data home"):
        list(read_directory(link))


def test_a_store_protects_its_files_and_its_home_while_open(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    plain = SqliteStore(folder / "x.db")  # a database with no data home: only its own files are off limits
    assert live.refusal(folder / "a.txt") is None
    assert "live database" in live.refusal(folder / "x.db-wal")
    plain.close()
    homed = SqliteStore(folder / "y.db", home=folder)
    assert "data home" in live.refusal(folder / "a.txt")
    homed.close()
    assert live.refusal(folder / "a.txt") is None and live.refusal(folder / "y.db") is None


def test_loading_around_the_live_database_loses_nothing(layout, store, settings, make_agent, tmp_path):
    """The original failure: a directory load over the home, then another process, then lost commits."""
    parent, _ = layout
    make_agent("keeper")
    list(read_directory(parent, recursive=True, include_hidden=True))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    subprocess.run([sys.executable, str(script), str(settings.db_path)], check=True, timeout=60)
    make_agent("after")  # raises StoreBroken if this process had lost its locks and the WAL was reset
    store.check()
    store.close()
    again = SqliteStore(settings.db_path)
    try:
        names = {r.name for r in agents_store.list_all(again)}
        assert {"keeper", "after"} <= names
        assert again.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        again.close()


def test_without_the_guard_the_same_load_would_break_the_store(settings, store, make_agent, tmp_path, monkeypatch):
    """Shows the guard matters: reading the database file directly makes the store refuse further writes."""
    make_agent("keeper")
    monkeypatch.setattr(live, "refusal", lambda path: None)
    list(read_file(settings.db_path, max_bytes=1 << 30))  # opens and closes the live file: the locks are gone
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    subprocess.run([sys.executable, str(script), str(settings.db_path)], check=True, timeout=60)
    with pytest.raises(MemGPTError, match="changed underneath"):
        make_agent("after")


def test_an_export_never_replaces_the_live_database(settings, store, make_agent):
    from engine.transfer import export_agent

    row = make_agent("ada")
    with pytest.raises(TransferError, match="data home"):
        export_agent(store, row.id, settings.db_path)
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    make_agent("still-writable")
