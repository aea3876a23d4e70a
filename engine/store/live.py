"""The files this process must never open except through its Store.

POSIX drops every fcntl lock a process holds on a file as soon as the process
closes *any* descriptor to that file, even one SQLite never saw. A loader that
merely reads the live database, its `-wal` or its `-shm` (a directory load of
the data home, a "database" load of memgpt.db, an import of the wrong file)
silently breaks SQLite's locking for the whole process, and another process can
then reset the log this one is still writing to (see engine/store/db.py).

So every open Store registers its database file here, and the store of a data
home registers the whole home too (its config, secrets and files are nobody's
input either); every reader asks `refusal(path)` *before* opening anything. The checks use `os.path.realpath` and `os.stat`, which open
no descriptors. A hard link to the database elsewhere is caught by its
identity (device, inode).
"""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

_lock = threading.Lock()
_serial = itertools.count(1)
_open: dict[int, tuple[Path | None, Path | None]] = {}  # token -> (database file, data home), resolved


def register(db_path: str | Path | None, home: str | Path | None = None) -> int:
    """Protect a store's database file (None on a server) and its data home while open; returns the token."""
    db = Path(os.path.realpath(db_path)) if db_path is not None else None
    folder = Path(os.path.realpath(home)) if home is not None else None
    with _lock:
        token = next(_serial)
        _open[token] = (db, folder)
    return token


def unregister(token: int) -> None:
    with _lock:
        _open.pop(token, None)


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def database_files(db_path: str | Path) -> list[Path]:
    """The database file and the files SQLite keeps beside it, resolved."""
    db = Path(os.path.realpath(db_path))
    return [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def protected_folders() -> list[Path]:
    with _lock:
        return [folder for _, folder in _open.values() if folder is not None]


def refusal(path: str | Path) -> str | None:
    """Why `path` must not be opened by a loader, or None when it may be."""
    resolved = Path(os.path.realpath(path))
    with _lock:
        entries = list(_open.values())
    if not entries:
        return None
    identity = _identity(resolved)
    for db, folder in entries:
        if folder is not None and (resolved == folder or folder in resolved.parents):
            return f"it is inside the app's data home ({folder}), which loaders never read"
        if db is None:
            continue
        siblings = database_files(db)
        if resolved in siblings:
            return "it is the app's live database"
        if identity is not None and identity in {_identity(p) for p in siblings[:3]}:
            return "it is the app's live database (another name for the same file)"
    return None


def inside_protected(folder: str | Path) -> bool:
    """Whether a folder met during a directory walk is (or is inside) a data home."""
    resolved = Path(os.path.realpath(folder))
    return any(resolved == f or f in resolved.parents for f in protected_folders())
