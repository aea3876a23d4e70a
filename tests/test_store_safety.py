"""Data safety of the store, with real files and real processes.

Lost locks (a WAL deleted underneath a live process), descriptor leaks, the
checkpoint on close, the online backup, damaged and read-only files, concurrent
loads into one source, and Unicode agent names.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from engine.errors import InvalidName, StoreBroken, StoreUnavailable
from engine.loaders.ingest import ingest
from engine.loaders.readers import Document
from engine.store import SqliteStore
from engine.store import agents as agents_store
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from engine.store.migrations import migrations
from tests.support.embedder import HashEmbedder

ROOT = Path(__file__).resolve().parent.parent

# The "server": holds a Store open and obeys one command per line on stdin.
SERVER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[2])
    from engine.store import SqliteStore, Store
    store = SqliteStore(sys.argv[1])
    store.db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, v TEXT)")
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, value = line.strip().partition(" ")
        try:
            if command == "atomic":
                with store.atomic() as db:
                    db.execute("INSERT INTO notes (v) VALUES (?)", [value])
            elif command == "plain":  # how most store modules write: sqlite-utils' autocommit execute
                store.db.execute("INSERT INTO notes (v) VALUES (?)", [value])
            elif command == "touch":  # what the directory loader did to memgpt.db
                os.close(os.open(sys.argv[1], os.O_RDONLY))
            print("ok", flush=True)
        except Exception as e:
            print(f"error {type(e).__name__}: {e}", flush=True)
    """
)

# Any other process whose last connection closes: it checkpoints and deletes the WAL
# when it can take the exclusive lock, i.e. when it believes it is alone.
OTHER = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"INSERT INTO notes (v) VALUES ('other')\"); c.commit(); c.close()"


def test_lost_locks_are_refused_not_acknowledged(tmp_path):
    path = tmp_path / "memgpt.db"
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    server = subprocess.Popen(
        [sys.executable, str(script), str(path), str(ROOT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )

    def send(line: str) -> str:
        server.stdin.write(line + "\n")
        server.stdin.flush()
        return server.stdout.readline().strip()

    try:
        assert server.stdout.readline().strip() == "ready"
        acknowledged = []
        for i in range(3):
            for how in ("atomic", "plain"):
                assert send(f"{how} before-{how}-{i}") == "ok"
                acknowledged.append(f"before-{how}-{i}")
        assert send("touch") == "ok"  # drops every fcntl lock the server held on the file
        subprocess.run([sys.executable, "-c", OTHER, str(path)], check=True, timeout=60)
        assert not Path(f"{path}-wal").exists()  # the other process did believe it was alone
        replies = {}
        for i in range(3):
            for how in ("atomic", "plain"):
                reply = send(f"{how} after-{how}-{i}")
                replies[f"after-{how}-{i}"] = reply
                if reply == "ok":
                    acknowledged.append(f"after-{how}-{i}")
    finally:
        server.kill()  # a restart without a clean shutdown, as in the report
        server.wait()

    conn = sqlite3.connect(path)
    stored = {r[0] for r in conn.execute("SELECT v FROM notes")}
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert set(acknowledged) <= stored, f"acknowledged, then lost: {sorted(set(acknowledged) - stored)}"
    assert all(r.startswith("error StoreBroken") for r in replies.values()), replies
    assert "write-ahead log memgpt.db-wal was removed or replaced" in replies["after-atomic-0"]
    assert "restart the app" in replies["after-plain-2"]


def test_a_replaced_database_file_is_refused(tmp_path):
    path = tmp_path / "memgpt.db"
    store = SqliteStore(path)
    store.db.execute("CREATE TABLE notes (v TEXT)")
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)
    os.replace(copy, path)  # e.g. a backup restored while the app runs
    with pytest.raises(StoreBroken, match="changed underneath"):
        store.db.execute("INSERT INTO notes VALUES ('x')")
    with pytest.raises(StoreBroken):  # and it stays refused
        with store.atomic() as db:
            db.execute("INSERT INTO notes VALUES ('y')")
    assert store.db.execute("SELECT count(*) FROM notes").fetchone()[0] == 0  # reads still answer
    store.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_short_lived_threads_do_not_leak_connections(store):
    store.db.execute("CREATE TABLE notes (v TEXT)")
    before = _open_fds()

    def read():
        store.db.execute("SELECT count(*) FROM notes").fetchone()

    for _ in range(50):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    assert _open_fds() - before <= 3


HOLDER = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM sqlite_master').fetchall(); print('open', flush=True); sys.stdin.read()"


def test_close_leaves_everything_in_the_main_file(tmp_path):
    path = tmp_path / "memgpt.db"
    store = SqliteStore(path)
    # Another process (the CLI, a second face) has the file open, so SQLite's own
    # checkpoint at last close never happens: only Store.close() moves the log over.
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        store.db.execute("CREATE TABLE notes (v TEXT)")
        for i in range(20):
            store.db.execute("INSERT INTO notes VALUES (?)", [f"n{i}"])
        store.close()
        alone = tmp_path / "alone" / "memgpt.db"
        alone.parent.mkdir()
        shutil.copy(path, alone)  # the database file only, as someone copying it after shutdown would
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    conn = sqlite3.connect(alone)
    assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 20
    conn.close()


READER = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN'); "
          "c.execute('SELECT count(*) FROM notes').fetchall(); print('reading', flush=True); sys.stdin.read()")


def test_close_does_not_wait_out_another_process_long_read(tmp_path):
    """A short CLI command closing while a server holds a read open: done at once, nothing lost."""
    import time

    path = tmp_path / "memgpt.db"
    first = SqliteStore(path)
    first.db.execute("CREATE TABLE notes (v TEXT)")
    first.close()
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "reading"
        store = SqliteStore(path)
        for i in range(20):
            store.db.execute("INSERT INTO notes VALUES (?)", [f"n{i}"])
        started = time.monotonic()
        store.close()
        # The TRUNCATE checkpoint cannot finish under the reader's snapshot; it used to wait
        # out the whole busy timeout (15 s) first.
        assert time.monotonic() - started < 3
    finally:
        reader.stdin.close()
        reader.wait(timeout=60)
    again = SqliteStore(path)
    assert again.db.execute("SELECT count(*) FROM notes").fetchone()[0] == 20
    again.close()


def _run_app(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args, "--home", str(home)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def test_backup_while_the_app_holds_the_database(home, settings, make_agent, tmp_path):
    from engine.store import messages as messages_store

    live = SqliteStore(settings.db_path)  # stands for the running server
    agent = make_agent("ada")
    for i in range(30):
        messages_store.add(live, agent.id, "user", f"turn {i}")
    reader = live.db  # an open connection in this process, mid-read while the backup runs
    cursor = reader.execute("SELECT id FROM messages")
    cursor.fetchone()

    target = tmp_path / "copy.db"
    result = _run_app("backup", str(target), home=home)
    assert result.returncode == 0, result.stderr
    assert "30 messages" in result.stdout and "1 agents" in result.stdout

    assert not Path(f"{target}-wal").exists()
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT count(*) FROM messages WHERE content LIKE 'turn %'").fetchone()[0] == 30
    conn.close()
    # The read has made its point. Left open, it would make every later run's closing checkpoint
    # (TRUNCATE waits for readers) sit out the whole busy timeout: 15 s each, most of this test's time.
    cursor.close()

    again = _run_app("backup", str(target), home=home)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    forced = _run_app("backup", str(target), "--force", home=home)
    assert forced.returncode == 0, forced.stderr
    for own in ("memgpt.db", "memgpt.db-wal", "memgpt.db-shm"):
        refused = _run_app("backup", str(home / own), "--force", home=home)
        assert refused.returncode == 2 and "cannot be the database itself" in refused.stderr
    assert live.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    live.close()


def test_a_damaged_page_is_a_clear_error(tmp_path):
    path = tmp_path / "memgpt.db"
    store = SqliteStore(path)
    store.db.execute("CREATE TABLE notes (v TEXT)")
    with store.atomic() as db:
        for i in range(2000):
            db.execute("INSERT INTO notes VALUES (?)", [f"note number {i} " * 5])
    page_size = store.db.execute("PRAGMA page_size").fetchone()[0]
    store.close()
    # The last page is a leaf of `notes`; its cell pointers now point nowhere sensible.
    with open(path, "r+b") as f:
        f.seek(-page_size + 8, os.SEEK_END)
        f.write(b"\xff" * 64)
    with pytest.raises(StoreUnavailable, match="damaged") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value) and "app.py backup" in str(caught.value)


def _nobody() -> tuple[int, int] | None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    return 65534, 65534


READ_ONLY_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[2]);"
    "from engine.store import SqliteStore, Store; from engine.errors import StoreUnavailable\n"
    "try:\n    SqliteStore(sys.argv[1])\nexcept StoreUnavailable as e:\n    print(e)\nelse:\n    print('opened')"
)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_database_is_a_clear_error(what):
    # Root writes through file modes, so the store is opened by an unprivileged
    # user (setpriv) when the tests run as root; otherwise by this process.
    user = _nobody()
    folder = Path(tempfile.mkdtemp(prefix="memgpt-ro-"))
    try:
        os.chmod(folder, 0o777)
        path = folder / "memgpt.db"
        SqliteStore(path).close()
        if what == "file":
            os.chmod(path, 0o444)
        else:
            os.chmod(path, 0o666)
            os.chmod(folder, 0o555)
        command = [sys.executable, "-c", READ_ONLY_CHILD, str(path), str(ROOT)]
        if user is not None:
            command = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", *command]
        elif os.geteuid() == 0:
            pytest.skip("running as root without setpriv: file modes cannot make the file read-only")
        out = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/").stdout.strip()
        assert out.startswith(f"The database {path} is read-only"), out
        assert "writable" in out
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- one chunk, stored once


class _MeetingEmbedder(HashEmbedder):
    """Holds each load's first embedding call until both loads reach it, so both have checked first."""

    def __init__(self, barrier: threading.Barrier):
        super().__init__(64)
        self.barrier = barrier
        self.met = threading.local()

    def embed(self, texts):
        if not getattr(self.met, "done", False):
            self.met.done = True
            self.barrier.wait(timeout=30)
        return super().embed(texts)


def test_concurrent_loads_store_each_chunk_once(store, tmp_path):
    texts = [f"Document {i}. " + " ".join(f"word{i}x{j}" for j in range(400)) for i in range(4)]
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def load():
        try:
            docs = [Document(t, {"source": f"doc{i}.txt"}) for i, t in enumerate(texts)]
            reports.append(ingest(store, "docs", docs, _MeetingEmbedder(barrier), batch_size=3, max_concurrency=1))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    source = sources_store.get_by_name(store, "docs")
    rows = store.db.execute(
        "SELECT content_hash, count(*) FROM passages WHERE source_id = ? GROUP BY 1", [source.id]
    ).fetchall()
    assert rows and all(n == 1 for _, n in rows)
    assert sum(r.chunks_added for r in reports) == len(rows) == passages_store.count_for_source(store, source.id)
    vectors = store.db.execute("SELECT count(*) FROM passages_vec_64 WHERE owner = ?", [f"s{source.id}"]).fetchone()
    assert vectors[0] == len(rows)


def test_dedup_migration_removes_existing_duplicates(tmp_path, monkeypatch):
    from engine.store import db as db_module
    from engine.store import migrations as migrations_module

    path = tmp_path / "old.db"
    embedder = HashEmbedder(64)
    raw = db_module.connect(path)  # a database as it was before m004: no unique index
    migrations.apply(raw, stop_before="m004_source_passage_dedup")
    raw.close()
    with monkeypatch.context() as patch:
        patch.setattr(migrations_module, "migrate", lambda db: [])
        store = SqliteStore(path)
    source = sources_store.create(store, "docs", embedder.name, 64)
    items = [(t, embedder.embed([t])[0], {}) for t in ["a", "b", "a", "a", "b", "c"]]
    first = passages_store.insert_many(store, items, embedding_model=embedder.name, embedding_dim=64, source_id=source.id)
    assert len(first) == 6
    store.close()

    migrated = SqliteStore(path)
    kept = [r[0] for r in migrated.db.execute("SELECT id FROM passages ORDER BY id")]
    assert kept == [first[0], first[1], first[5]]  # the oldest of each text stays
    assert passages_store.count_for_source(migrated, source.id) == 3
    assert migrated.db.execute("SELECT count(*) FROM passages_vec_64").fetchone()[0] == 3
    assert migrated.db.execute("SELECT count(*) FROM passages_fts").fetchone()[0] == 3
    migrated.close()


# ---------------------------------------------------------------- names


def test_names_that_differ_only_by_unicode_case_are_one_agent(make_agent, store):
    eva = make_agent("Éva")
    with pytest.raises(InvalidName, match="already exists"):
        make_agent("éva")
    with pytest.raises(InvalidName, match="already exists"):
        make_agent("E\u0301VA")  # decomposed accent, other case
    kelvin = make_agent("\u212aate")  # KELVIN SIGN
    assert kelvin.name == "Kate"  # stored in its NFKC spelling
    with pytest.raises(InvalidName, match="already exists"):
        make_agent("kate")
    assert agents_store.get_by_name(store, "ÉVA").id == eva.id
    assert agents_store.get_by_name(store, "KATE").id == kelvin.id


def test_rename_into_a_unicode_case_twin_is_refused(make_agent, store):
    from engine.agents import rename_agent

    make_agent("Éva")
    other = make_agent("Zoé")
    with pytest.raises(InvalidName, match="already exists"):
        rename_agent(store, other.id, "éVA")
    assert rename_agent(store, other.id, "ZOÉ").name == "ZOÉ"  # its own name in another case is fine


@pytest.mark.parametrize(
    "name, message",
    [("", "empty"), ("   ", "empty"), ("ada\x07", "control"), ("ad\u200ba", "invisible"), ("a" * 65, "at most 64")],
)
def test_names_that_are_refused(make_agent, name, message):
    with pytest.raises(InvalidName, match=message):
        make_agent(name)


def test_name_key_migration_resolves_existing_clashes(tmp_path):
    from engine.store import db as db_module

    path = tmp_path / "old.db"
    raw = db_module.connect(path)
    migrations.apply(raw, stop_before="m005_agent_name_key")
    for name in ["Éva", "éva", "\u212aate", "kate", "éva-2"]:
        raw.execute(
            "INSERT INTO agents (name, preset, system_prompt, functions, embedding_model, embedding_dim, "
            "created_at, updated_at) VALUES (?, 'p', 's', '[]', 'm', 8, 't', 't')",
            [name],
        )
    raw.close()
    store = SqliteStore(path)
    names = [r[0] for r in store.db.execute("SELECT name FROM agents ORDER BY id")]
    assert names == ["Éva", "éva-3", "\u212aate", "kate-2", "éva-2"]
    keys = [r[0] for r in store.db.execute("SELECT name_key FROM agents")]
    assert len(set(keys)) == 5 and None not in keys
    with pytest.raises(db_module.sqlite3.IntegrityError):
        store.db.execute("UPDATE agents SET name_key = 'éva' WHERE name = 'kate-2'")
    store.close()
