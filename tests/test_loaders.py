"""Loaders on real inputs: files of every kind (good and bad), directories, a web
server on loopback, a SQLite database, vector tables and jsonl files."""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.errors import EmbeddingMismatch, NotFound
from engine.loaders import (
    Document,
    LoaderError,
    Skipped,
    ingest,
    list_directory,
    parse_vector,
    read_bytes,
    read_directory,
    read_file,
    read_files,
    read_jsonl,
    read_sql_query,
    read_vector_table,
    read_webpages,
    readers,
)
from engine.memory import ArchivalMemory
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from tests.support.embedder import HashEmbedder
from tests.support.pdf import make_pdf, make_shared_stream_pdf

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL

ANIMALS = [
    "The zebra grazes on the savanna at dawn, its stripes confusing the flies.",
    "A kestrel hovers above the meadow, watching for voles in the tall grass.",
    "The octopus in the harbour opens jars to reach the crabs inside them.",
    "Otters hold hands while they sleep so the current does not part them.",
    "An albatross can glide for hours over the southern ocean without a flap.",
]


def long_text(topic: str, paragraphs: int = 12) -> str:
    return "\n\n".join(
        f"Paragraph {i} about {topic}. " + " ".join(ANIMALS[(i + j) % len(ANIMALS)] for j in range(3))
        for i in range(paragraphs)
    )


def items(iterable) -> tuple[list[Document], list[Skipped]]:
    docs, skipped = [], []
    for item in iterable:
        (docs if isinstance(item, Document) else skipped).append(item)
    return docs, skipped


def stored(store, source_id):
    rows = store.db.execute(
        "SELECT text, metadata FROM passages WHERE source_id = ? ORDER BY id", [source_id]
    ).fetchall()
    return [(text, json.loads(meta)) for text, meta in rows]


# ---------------------------------------------------------------- files


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "notes.txt").write_text(long_text("notes"), encoding="utf-8")
    (root / "guide.md").write_text("# Guide\n\nThe lighthouse keeper logs every ship.\n", encoding="utf-8")
    (root / "people.csv").write_text("name,role\nAda,engineer\nGrace,admiral\n", encoding="utf-8")
    (root / "config.json").write_text(json.dumps({"server": {"port": 8080, "tags": ["blue", "green"]}}), encoding="utf-8")
    (root / "page.html").write_text(
        "<html><head><title>Tide tables</title><style>p{color:red}</style></head>"
        "<body><h1>Tides</h1><p>High tide at &quot;noon&quot;.</p><script>alert('no')</script></body></html>",
        encoding="utf-8",
    )
    (root / "report.pdf").write_bytes(
        make_pdf([["The quarterly report mentions the walrus colony."], ["Page two counts the penguins."]])
    )
    return root


def test_each_format_becomes_text_with_its_source(corpus):
    docs, skipped = items(read_directory(corpus))
    assert skipped == []
    by_name = {}
    for doc in docs:
        by_name.setdefault(doc.metadata["filename"], []).append(doc)
    assert sorted(by_name) == ["config.json", "guide.md", "notes.txt", "page.html", "people.csv", "report.pdf"]
    for name, found in by_name.items():
        assert all(d.metadata["source"] == str((corpus / name).resolve()) for d in found)

    assert by_name["guide.md"][0].metadata["type"] == "markdown"
    assert "lighthouse keeper" in by_name["guide.md"][0].text
    assert by_name["people.csv"][0].text == "name: Ada\nrole: engineer\n\nname: Grace\nrole: admiral"
    assert by_name["config.json"][0].text == "server.port: 8080\nserver.tags: blue, green"
    html = by_name["page.html"][0]
    assert html.text == 'Tides\n\nHigh tide at "noon".'
    assert html.metadata["title"] == "Tide tables"
    pdf = by_name["report.pdf"]
    assert [d.metadata["page"] for d in pdf] == [1, 2]
    assert "walrus colony" in pdf[0].text and "penguins" in pdf[1].text
    assert pdf[0].metadata["type"] == "pdf" and pdf[0].metadata["pages"] == 2


def test_bad_files_are_reported_and_the_rest_loads(tmp_path, store, embedder):
    good = tmp_path / "good.txt"
    good.write_text("Ferns unfurl slowly in the shade of the old oak.", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("   \n\n  \t\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"))
    (tmp_path / "huge.txt").write_text("word " * 300, encoding="utf-8")
    (tmp_path / "broken.pdf").write_bytes(make_pdf([["A page that will be cut off."]])[:150])
    (tmp_path / "scripts.html").write_text("<script>var a = 1;</script><style>b{}</style>", encoding="utf-8")
    (tmp_path / "blank.pdf").write_bytes(make_pdf([[]]))
    paths = [tmp_path / n for n in (
        "image.png", "empty.txt", "blank.md", "latin1.txt", "huge.txt", "broken.pdf", "scripts.html", "blank.pdf",
        "missing.txt", "good.txt",
    )]
    paths.append(tmp_path)  # a directory given as a file

    report = ingest(store, "mixed", read_files(paths, max_bytes=1000), embedder)

    reasons = {s.what.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert reasons["image.png"] == "binary file (contains NUL bytes)"
    assert reasons["empty.txt"] == "empty"
    assert reasons["blank.md"] == "empty"
    assert reasons["latin1.txt"].startswith("undecodable: not UTF-8")
    assert reasons["huge.txt"] == "too large: 1,500 bytes (limit 1,000)"
    assert reasons["broken.pdf"].startswith("unreadable PDF")
    assert reasons["scripts.html"] == "no text content"
    assert reasons["blank.pdf"].startswith("PDF has no extractable text")
    assert reasons["missing.txt"] == "not found"
    assert reasons[tmp_path.name].startswith("is a directory")
    assert len(report.skipped) == 10
    assert report.loaded == [str(good.resolve())]
    assert report.chunks_added == 1
    assert stored(store, report.source.id)[0][0] == "Ferns unfurl slowly in the shade of the old oak."


def test_utf16_and_bom_files_decode(tmp_path):
    (tmp_path / "u16.txt").write_bytes("Über die Brücke".encode("utf-16"))
    (tmp_path / "bom.txt").write_bytes("\ufeffWith a BOM".encode("utf-8"))
    docs, skipped = items(read_files([tmp_path / "u16.txt", tmp_path / "bom.txt"]))
    assert skipped == []
    assert [d.text for d in docs] == ["Über die Brücke", "With a BOM"]


def test_uploaded_bytes_keep_their_display_name():
    docs, _ = items(read_bytes(b"<p>Uploaded page</p>", "upload.html"))
    assert docs[0].text == "Uploaded page" and docs[0].metadata["source"] == "upload.html"
    docs, _ = items(read_bytes(b"<!DOCTYPE html><p>Sniffed</p>", "README"))
    assert docs[0].text == "Sniffed" and docs[0].metadata["type"] == "html"
    _, skipped = items(read_bytes(b"abc", "x.bin", content_type="image/png"))
    assert skipped == [Skipped("x.bin", "unsupported content type image/png")]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    for rel, text in {
        "a.md": "alpha", "b.txt": "bravo", "sub/c.md": "charlie", "sub/deep/d.MD": "delta",
        "sub/f.py": "print('foxtrot')", ".hidden/e.md": "echo", ".dotfile.md": "dot",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _names(root, paths):
    return [p.relative_to(root).as_posix() for p in paths]


def test_directory_listing_recursive_and_extension_filters(tree):
    assert _names(tree, list_directory(tree)) == ["a.md", "b.txt"]
    assert _names(tree, list_directory(tree, recursive=True)) == ["a.md", "b.txt", "sub/c.md", "sub/f.py", "sub/deep/d.MD"]
    assert _names(tree, list_directory(tree, recursive=True, extensions=["md"])) == ["a.md", "sub/c.md", "sub/deep/d.MD"]
    assert _names(tree, list_directory(tree, recursive=True, extensions=[".py", "txt"])) == ["b.txt", "sub/f.py"]
    assert _names(tree, list_directory(tree, extensions=["md,txt"])) == ["a.md", "b.txt"]
    assert ".hidden/e.md" in _names(tree, list_directory(tree, recursive=True, include_hidden=True))
    docs, _ = items(read_directory(tree, recursive=True, extensions=[".md"]))
    assert [d.text for d in docs] == ["alpha", "charlie", "delta"]
    _, skipped = items(read_directory(tree, extensions=[".rst"]))
    assert skipped[0].reason == "no matching files"
    with pytest.raises(LoaderError):
        list(read_directory(tree / "nope"))


# ---------------------------------------------------------------- ingest into a source


def test_ingest_stores_chunks_with_source_metadata_and_reloading_adds_nothing(corpus, store, embedder):
    report = ingest(store, "docs", read_directory(corpus), embedder, chunk_tokens=60, overlap_tokens=10)
    source = sources_store.get_by_name(store, "docs")
    assert (source.embedding_model, source.embedding_dim) == (embedder.name, embedder.dimension)
    assert report.source == source
    assert report.documents == 7  # six files, the PDF has two pages
    assert len(report.loaded) == 6
    assert report.chunks_added == report.chunks_total > 7  # notes.txt is long enough to be split
    assert passages_store.count_for_source(store, source.id) == report.chunks_added

    rows = stored(store, source.id)
    notes = [meta for _, meta in rows if meta["filename"] == "notes.txt"]
    assert len(notes) > 1 and [m["chunk"] for m in notes] == list(range(len(notes)))
    assert all(meta["source"] == str((corpus / meta["filename"]).resolve()) for _, meta in rows)
    assert {m.get("page") for _, m in rows if m["type"] == "pdf"} == {1, 2}

    again = ingest(store, "docs", read_directory(corpus), embedder, chunk_tokens=60, overlap_tokens=10)
    assert again.chunks_added == 0
    assert again.chunks_skipped_as_duplicates == report.chunks_total
    assert again.embed_calls == 0
    assert passages_store.count_for_source(store, source.id) == report.chunks_added

    # A changed file adds only its new chunks.
    with (corpus / "guide.md").open("a", encoding="utf-8") as handle:
        handle.write("\n\nA second paragraph about the fog horn and its echo across the bay.\n")
    third = ingest(store, "docs", read_directory(corpus), embedder, chunk_tokens=60, overlap_tokens=10)
    assert third.chunks_added == 1


def test_loaded_source_is_searchable_by_an_attached_agent(corpus, store, embedder, agent):
    report = ingest(store, "docs", read_directory(corpus), embedder)
    sources_store.attach(store, agent.id, report.source.id)
    archival = ArchivalMemory(store, agent.id, embedder)
    assert archival.count() == report.chunks_added
    results = archival.search("walrus colony quarterly report")
    top = results.hits[0].passage
    assert "walrus colony" in top.text
    assert top.source_name == "docs"
    assert top.metadata["source"] == str((corpus / "report.pdf").resolve())


def test_source_with_another_embedder_is_refused(corpus, store, embedder):
    ingest(store, "docs", read_directory(corpus), embedder)
    other = HashEmbedder(32, name="other-model")
    with pytest.raises(EmbeddingMismatch, match="other-model"):
        ingest(store, "docs", read_directory(corpus), other)


# ---------------------------------------------------------------- web pages


class _Site:
    def __init__(self):
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                status, headers, body = site.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"nope"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "X-Stream" not in headers:  # else HTTP/1.0: the body ends when the connection closes
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"


@pytest.fixture
def site():
    s = _Site()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


def test_web_pages_are_fetched_converted_and_bad_ones_skipped(site, store, embedder):
    html = (
        "<!doctype html><html><head><title>Harbour news</title><script>track()</script></head>"
        "<body><nav>Home</nav><article><h2>Ferry</h2><p>The ferry to the island now leaves at nine.</p>"
        "</article></body></html>"
    )
    site.routes = {
        "/news.html": (200, {"Content-Type": "text/html; charset=utf-8"}, html.encode()),
        "/notes": (200, {"Content-Type": "text/plain; charset=latin-1"}, "Crème brûlée recipe".encode("latin-1")),
        "/paper": (200, {"Content-Type": "application/pdf"}, make_pdf([["A paper on lichen growth rates."]])),
        "/old": (301, {"Location": "/news.html"}, b""),
        "/logo.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\x00\x00"),
        "/big": (200, {"Content-Type": "text/plain"}, b"x" * 5000),
        "/down": (503, {"Content-Type": "text/plain"}, b"maintenance"),
    }
    urls = [site.url(p) for p in ("/news.html", "/notes", "/paper", "/old", "/logo.png", "/big", "/down", "/gone")]
    urls += ["ftp://example.invalid/file.txt", "http://127.0.0.1:9/closed"]
    report = ingest(store, "web", read_webpages(urls, max_bytes=4000, timeout=5), embedder)

    reasons = {s.what: s.reason for s in report.skipped}
    assert reasons[site.url("/logo.png")] == "unsupported content type image/png"
    assert reasons[site.url("/big")] == "too large: 5,000 bytes (limit 4,000)"
    assert reasons[site.url("/down")].startswith("HTTP 503")
    assert reasons[site.url("/gone")].startswith("HTTP 404")
    assert reasons["ftp://example.invalid/file.txt"] == "not an http(s) URL"
    assert reasons["http://127.0.0.1:9/closed"].startswith("cannot fetch")
    assert report.loaded == [site.url("/news.html"), site.url("/notes"), site.url("/paper"), site.url("/old")]

    rows = stored(store, report.source.id)
    by_source = {meta["source"]: (text, meta) for text, meta in rows}
    text, meta = by_source[site.url("/news.html")]
    assert text == "Home\n\nFerry\n\nThe ferry to the island now leaves at nine."
    assert meta["title"] == "Harbour news" and meta["type"] == "html"
    assert by_source[site.url("/notes")][0] == "Crème brûlée recipe"
    assert "lichen growth" in by_source[site.url("/paper")][0]
    # The redirected page has the same text: stored once, counted as a duplicate.
    assert site.url("/old") not in by_source
    assert report.chunks_skipped_as_duplicates == 1


def test_large_streamed_page_without_length_is_cut_off(site):
    site.routes = {
        "/stream": (200, {"Content-Type": "text/plain", "X-Stream": "1"}, b"y" * 3000),
        "/small": (200, {"Content-Type": "text/plain", "X-Stream": "1"}, b"small streamed page"),
    }
    docs, skipped = items(read_webpages([site.url("/stream"), site.url("/small")], max_bytes=1000))
    assert skipped == [Skipped(site.url("/stream"), "too large: over 1,000 bytes")]
    assert [d.text for d in docs] == ["small streamed page"]


# ---------------------------------------------------------------- databases


@pytest.fixture
def notes_db(tmp_path):
    path = tmp_path / "notes.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, body TEXT, attachment BLOB);
        INSERT INTO notes (title, body, attachment) VALUES
            ('Garden', 'The tomatoes need staking before the storm.', x'00ff'),
            ('Boat', 'Varnish the tiller in spring.', NULL),
            ('Empty', NULL, NULL);
        INSERT INTO notes (title, body) VALUES (NULL, NULL);
        """
    )
    conn.commit()
    conn.close()
    return path


def test_sql_query_rows_become_documents(notes_db, store, embedder):
    docs, skipped = items(read_sql_query("SELECT title, body, attachment FROM notes ORDER BY id", sqlite=notes_db))
    label = f"sqlite:{notes_db.resolve()}"
    assert [d.text for d in docs] == [
        "title: Garden\nbody: The tomatoes need staking before the storm.",
        "title: Boat\nbody: Varnish the tiller in spring.",
        "title: Empty",
    ]
    assert docs[0].metadata == {"source": label, "query": "SELECT title, body, attachment FROM notes ORDER BY id", "row": 1}
    assert skipped == [Skipped(f"{label}: 1 row(s)", "no text in the row")]

    report = ingest(store, "notes", read_sql_query("SELECT body FROM notes WHERE body IS NOT NULL", sqlite=notes_db), embedder)
    assert report.chunks_added == 2
    assert stored(store, report.source.id)[0][0] == "The tomatoes need staking before the storm."
    assert report.loaded == [label]


def test_sql_query_errors_are_clear_and_the_file_is_read_only(notes_db, tmp_path):
    with pytest.raises(LoaderError, match="query failed"):
        list(read_sql_query("SELECT nope FROM notes", sqlite=notes_db))
    with pytest.raises(LoaderError, match="query failed.*readonly"):
        list(read_sql_query("DELETE FROM notes", sqlite=notes_db))
    assert sqlite3.connect(notes_db).execute("SELECT count(*) FROM notes").fetchone()[0] == 4
    with pytest.raises(LoaderError, match="No SQLite database"):
        list(read_sql_query("SELECT 1", sqlite=tmp_path / "absent.db"))
    (tmp_path / "fake.db").write_text("not a database at all, just text " * 10)
    with pytest.raises(LoaderError, match="not a readable SQLite database"):
        list(read_sql_query("SELECT 1", sqlite=tmp_path / "fake.db"))
    with pytest.raises(LoaderError, match="exactly one"):
        list(read_sql_query("SELECT 1"))
    with pytest.raises(LoaderError, match="empty"):
        list(read_sql_query("  ", sqlite=notes_db))


def test_postgres_dsn_needs_psycopg(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as in an install without it: importing fails
    with pytest.raises(LoaderError, match="psycopg"):
        list(read_sql_query("SELECT 1", dsn="postgresql://user:secret@localhost/db"))
    with pytest.raises(LoaderError, match="postgresql://"):
        list(read_sql_query("SELECT 1", dsn="mysql://localhost/db"))


# ---------------------------------------------------------------- vector tables


@pytest.fixture
def vectors_db(tmp_path, embedder):
    texts = [
        "Glaciers carve valleys over thousands of years.",
        "Bees dance to tell the hive where the flowers are.",
        "The moon's pull raises the tides twice a day.",
    ]
    vectors = embedder.embed(texts)
    path = tmp_path / "vectors.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE as_json (id INTEGER PRIMARY KEY, content TEXT, vec TEXT)")
    conn.execute("CREATE TABLE as_blob (id INTEGER PRIMARY KEY, content TEXT, vec BLOB)")
    conn.execute('CREATE TABLE "odd name" ("the text" TEXT, "the vec" BLOB)')
    conn.execute("CREATE TABLE small (content TEXT, vec TEXT)")
    for text, vector in zip(texts, vectors):
        conn.execute("INSERT INTO as_json (content, vec) VALUES (?, ?)", [text, json.dumps(vector)])
        conn.execute("INSERT INTO as_blob (content, vec) VALUES (?, ?)", [text, struct.pack(f"<{len(vector)}f", *vector)])
    conn.execute('INSERT INTO "odd name" VALUES (?, ?)', [texts[0], json.dumps(vectors[0]).encode()])
    conn.execute("INSERT INTO as_blob (content, vec) VALUES ('no vector here', 'not json')")
    conn.execute("INSERT INTO as_blob (content, vec) VALUES ('', NULL)")
    conn.execute("INSERT INTO small VALUES ('three numbers', '[0.1, 0.2, 0.3]')")
    conn.commit()
    conn.close()
    return path, texts, vectors


def test_vector_tables_load_without_re_embedding(vectors_db, store, embedder, agent):
    path, texts, vectors = vectors_db
    calls = embedder.calls
    dim = embedder.dimension
    report = ingest(store, "json-vectors", read_vector_table("as_json", "content", "vec", dimension=dim, sqlite=path), embedder)
    assert report.chunks_added == 3 and report.embed_calls == 0
    blob = ingest(store, "blob-vectors", read_vector_table("as_blob", "content", "vec", dimension=dim, sqlite=path), embedder)
    assert blob.chunks_added == 3
    assert [s.reason for s in blob.skipped] == ["vec is not a vector", "no text in content"]
    odd = ingest(store, "odd", read_vector_table("odd name", "the text", "the vec", dimension=dim, sqlite=path), embedder)
    assert odd.chunks_added == 1
    assert embedder.calls == calls  # nothing was embedded by the loader

    for source in (report.source, blob.source):
        rows = store.db.execute(
            "SELECT text, embedding, metadata FROM passages WHERE source_id = ? ORDER BY id", [source.id]
        ).fetchall()
        assert [r[0] for r in rows] == texts
        for (_, raw, meta), vector in zip(rows, vectors):
            assert parse_vector(raw) == pytest.approx(vector, abs=1e-6)
            assert json.loads(meta)["source"] == f"sqlite:{path.resolve()}"

    sources_store.attach(store, agent.id, report.source.id)
    hits = ArchivalMemory(store, agent.id, embedder).search("bees dance flowers hive", mode="vector").hits
    assert hits[0].passage.text == texts[1]

    again = ingest(store, "json-vectors", read_vector_table("as_json", "content", "vec", dimension=dim, sqlite=path), embedder)
    assert again.chunks_added == 0 and again.chunks_skipped_as_duplicates == 3


def test_vector_table_of_another_dimension_is_refused(vectors_db, store, embedder):
    path, _, _ = vectors_db
    with pytest.raises(EmbeddingMismatch, match="3-d vectors"):
        ingest(store, "small", read_vector_table("small", "content", "vec", dimension=embedder.dimension, sqlite=path), embedder)
    with pytest.raises(NotFound):
        sources_store.get_by_name(store, "small")  # nothing was created or stored
    with pytest.raises(LoaderError, match="no column 'missing'"):
        list(read_vector_table("as_json", "content", "missing", dimension=64, sqlite=path))
    with pytest.raises(LoaderError, match="no such table"):
        list(read_vector_table("absent", "content", "vec", dimension=64, sqlite=path))


def test_parse_vector_forms():
    floats = [0.5, -1.0, 2.0]
    assert parse_vector(json.dumps(floats)) == floats
    assert parse_vector(struct.pack("<3f", *floats)) == floats
    assert parse_vector(json.dumps(floats).encode()) == floats
    assert parse_vector(floats) == floats
    for bad in (None, "", "[]", "{}", '["a"]', "[1, NaN]", b"\x00\x01\x02", [True, 1.0], [[1.0]]):
        assert parse_vector(bad) is None, bad


# ---------------------------------------------------------------- jsonl


def test_jsonl_lines_with_and_without_embeddings(tmp_path, store, embedder):
    given = embedder.embed(["Lava cools into basalt columns."])[0]
    lines = [
        json.dumps({"text": "Lava cools into basalt columns.", "embedding": given, "metadata": {"topic": "rocks"}}),
        json.dumps({"text": "Salt marshes shelter young fish.", "metadata": {"source": "field-notes"}}),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"embedding": [0.1] * 64}),
        json.dumps({"text": "Wrong size vector.", "embedding": [0.1, 0.2]}),
        json.dumps({"text": "Bad vector.", "embedding": "abc"}),
        json.dumps({"text": "Bad metadata.", "metadata": [1, 2]}),
        json.dumps({"text": "   "}),
    ]
    path = tmp_path / "data.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"text": "caf\xe9"}\n')
    calls = embedder.calls

    report = ingest(store, "jsonl", read_jsonl(path, dimension=embedder.dimension), embedder)

    name = str(path.resolve())
    assert [(s.what, s.reason.split(":")[0]) for s in report.skipped] == [
        (f"{name}:4", "invalid JSON"),
        (f"{name}:5", "not a JSON object"),
        (f"{name}:6", 'no "text" string'),
        (f"{name}:7", "embedding has 2 dimensions; the embedder uses 64"),
        (f"{name}:8", '"embedding" is not an array of numbers'),
        (f"{name}:9", '"metadata" is not an object'),
        (f"{name}:10", 'no "text" string'),
        (f"{name}:11", "not UTF-8"),
    ]
    assert report.chunks_added == 2
    assert embedder.calls == calls + 1  # only the line without a vector was embedded
    rows = stored(store, report.source.id)
    assert rows[0] == ("Lava cools into basalt columns.", {"source": name, "line": 1, "topic": "rocks"})
    assert rows[1] == ("Salt marshes shelter young fish.", {"source": "field-notes", "line": 2, "chunk": 0})
    with pytest.raises(LoaderError):
        list(read_jsonl(tmp_path / "absent.jsonl"))


def test_jsonl_without_dimension_check_is_guarded_by_ingest(tmp_path, store, embedder):
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps({"text": "Tiny vector.", "embedding": [1.0, 0.0]}) + "\n", encoding="utf-8")
    report = ingest(store, "guarded", read_jsonl(path), embedder)
    assert report.chunks_added == 0
    assert report.skipped[0].reason == "embedding has 2 dimensions; the embedder uses 64"


def test_read_file_accepts_a_display_name(tmp_path):
    path = tmp_path / "tmp123.md"
    path.write_text("Uploaded notes", encoding="utf-8")
    docs, _ = items(read_file(path, name="my notes.md"))
    assert docs[0].metadata["source"] == "my notes.md" and docs[0].metadata["filename"] == "tmp123.md"


def test_deeply_nested_json_is_skipped_and_the_other_files_load(tmp_path):
    # The decoder raises RecursionError (not ValueError) past Python's recursion limit.
    (tmp_path / "deep.json").write_bytes(b"[" * 5000 + b"]" * 5000)
    (tmp_path / "nested.json").write_bytes(b"[" * 50 + b'"kept"' + b"]" * 50)
    (tmp_path / "good.txt").write_text("Moss grows on the north side.", encoding="utf-8")
    docs, skipped = items(read_directory(tmp_path))
    assert [(s.what.rsplit("/", 1)[-1], s.reason) for s in skipped] == [("deep.json", "JSON nested too deeply to read")]
    assert sorted(d.metadata["filename"] for d in docs) == ["good.txt", "nested.json"]
    assert [d.text for d in docs if d.metadata["filename"] == "nested.json"] == ["[0]" * 48 + ": kept"]


def test_a_pdf_whose_content_inflates_far_past_its_size_is_stopped_before_parsing(tmp_path):
    # 5 KB of file, 3 pages of 1.2 MB content each: parsing it all would take seconds.
    bomb = make_shared_stream_pdf(pages=3, lines=200_000)
    assert len(bomb) < 6_000
    docs, skipped = items(read_bytes(bomb, "bomb.pdf"))
    assert docs == []
    assert [s.reason for s in skipped] == [
        f"pages 1-3 not read: the content inflates past 1,048,576 bytes, too much for a file of {len(bomb):,} "
        "bytes (a decompression bomb?)"
    ]
    # The same shape, small: every page reads (the cap is about inflation, not sharing).
    docs, skipped = items(read_bytes(make_shared_stream_pdf(pages=3, lines=100), "small.pdf"))
    assert skipped == [] and [d.metadata["page"] for d in docs] == [1, 2, 3]


def test_pdf_page_and_text_caps_keep_the_pages_before_them(monkeypatch):
    pdf = make_pdf([[f"Page {n} tells of herons."] for n in range(1, 6)])
    monkeypatch.setattr(readers, "MAX_PDF_PAGES", 3)
    docs, skipped = items(read_bytes(pdf, "long.pdf"))
    assert [d.metadata["page"] for d in docs] == [1, 2, 3]
    assert [s.reason for s in skipped] == ["pages 4-5 not read (limit 3 pages a file)"]

    monkeypatch.setattr(readers, "MAX_PDF_PAGES", 100)
    monkeypatch.setattr(readers, "MAX_PDF_TEXT_CHARS", 2 * len("Page 1 tells of herons.\n"))
    docs, skipped = items(read_bytes(pdf, "long.pdf"))
    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert [s.reason for s in skipped] == ["pages 3-5 not read (limit 48 characters a file)"]


def test_html_the_standard_parser_asserts_on_is_skipped_and_the_other_files_load(tmp_path):
    # Python 3.11's _markupbase raises AssertionError on an unknown marked section.
    (tmp_path / "bad.html").write_text("<html><body><![x> text</body></html>", encoding="utf-8")
    (tmp_path / "good.txt").write_text("Moss grows on the north side.", encoding="utf-8")
    docs, skipped = items(read_directory(tmp_path))
    assert [d.metadata["filename"] for d in docs if d.metadata["filename"] == "good.txt"] == ["good.txt"]
    bad = [s.reason for s in skipped if s.what.endswith("bad.html")]
    assert bad in ([], ["unreadable HTML: unknown status keyword 'x' in marked section"])  # [] where it parses
