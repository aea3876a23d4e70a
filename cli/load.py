"""`python app.py load ...`: files, directories, web pages, SQL, vector tables, jsonl -> a data source.

Each sub-command picks a reader from `engine.loaders` and hands its items to
`ingest`, which chunks, embeds (with the configured embedder) and stores them.
Progress goes to stderr; the summary and the skipped inputs to stdout.
Exit code: 0 when something was stored or all of it already was, 1 when every
input was skipped, 2 on an error (a load that failed part-way can simply be
run again: it resumes).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from cli import CommandError
from engine import loaders
from engine.loaders import Document, LoadFailed, LoadReport, Skipped

BAR_WIDTH = 30


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    # --home and --debug go after the kind: argparse would let the kind's defaults overwrite them otherwise.
    load = sub.add_parser("load", help="load data into a source agents can search")
    kinds = load.add_subparsers(dest="kind", required=True, metavar="KIND")

    def kind(name: str, help: str) -> argparse.ArgumentParser:
        parser = kinds.add_parser(name, parents=[common], help=help)
        parser.add_argument("--name", required=True, help="the data source to load into (created if new)")
        parser.add_argument("--description", default="", help="what the source holds (for a new source)")
        # The embedding service's limits: batches go out concurrently but within these budgets.
        parser.add_argument("--requests-per-minute", type=float, help="embedding requests per minute at most")
        parser.add_argument("--tokens-per-minute", type=float, help="embedded tokens per minute at most")
        parser.add_argument("--concurrency", type=int, help="embedding requests in flight at once")
        parser.add_argument("--batch-size", type=int, help="chunks per embedding request (default 64)")
        return parser

    def database(parser: argparse.ArgumentParser) -> None:
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--sqlite", metavar="FILE", help="a SQLite database file")
        where.add_argument("--dsn", help="a postgresql:// connection string")
        # MemGPT's way of naming a server database, as an alternative to --dsn.
        parser.add_argument("--scheme", default="postgresql", help="with --dbname: the database kind (postgresql)")
        parser.add_argument("--host", help="with --dbname: the server (default localhost)")
        parser.add_argument("--port", type=int, help="with --dbname: the port (default 5432)")
        parser.add_argument("--user", help="with --dbname: the user")
        parser.add_argument("--password", help="with --dbname: the password")
        parser.add_argument("--dbname", help="a database on a server, instead of --sqlite or --dsn")

    directory = kind("directory", "every file of a directory")
    directory.add_argument("--path", required=True, help="the directory")
    directory.add_argument("--recursive", action="store_true", help="include sub-directories")
    directory.add_argument("--ext", action="append", metavar="EXT", help="only these extensions (.md, txt, 'md,txt')")
    kind("file", "one or more files").add_argument("files", nargs="+", metavar="FILE")
    kind("webpage", "one or more web pages").add_argument("urls", nargs="+", metavar="URL")
    query = kind("database", "the rows of a SQL query")
    query.add_argument("--query", required=True, help="a SELECT; each row becomes a passage")
    database(query)
    table = kind("vector-table", "a table of texts with precomputed embeddings")
    database(table)
    table.add_argument("--table", required=True)
    table.add_argument("--text-column", required=True)
    table.add_argument("--embedding-column", required=True)
    kind("jsonl", 'a JSON-lines file: {"text": ..., "embedding": [...]?, "metadata": {...}?} a line').add_argument(
        "file")
    index = kind("index", "a persisted LlamaIndex index directory (docstore.json), without llama-index")
    index.add_argument("--dir", required=True, help="the directory index.storage_context.persist() wrote")
    index.add_argument("--use-embeddings", action="store_true",
                       help="keep the index's vectors (only if it was built with this source's embedding model)")


def _dsn(args) -> tuple[str | None, str | None]:
    """(sqlite, dsn) from the flags: exactly one database, named by --sqlite, --dsn or the server flags."""
    from urllib.parse import quote

    if args.dbname:
        if args.sqlite or args.dsn:
            raise CommandError("Give --dbname (with --host, --user...) or --sqlite or --dsn, not several.")
        if args.scheme not in ("postgresql", "postgres"):
            raise CommandError(f"--scheme {args.scheme!r}: only postgresql servers are supported.")
        auth = ""
        if args.user:
            auth = quote(args.user, safe="") + (f":{quote(args.password, safe='')}" if args.password else "") + "@"
        port = f":{args.port}" if args.port else ""
        return None, f"postgresql://{auth}{args.host or 'localhost'}{port}/{quote(args.dbname, safe='')}"
    if not (args.sqlite or args.dsn):
        raise CommandError("Name the database: --sqlite FILE, --dsn postgresql://..., or --dbname (with --host...).")
    return args.sqlite, args.dsn


def _items(args, dimension: int):
    if args.kind == "directory":
        return loaders.read_directory(args.path, recursive=args.recursive, extensions=args.ext)
    if args.kind == "file":
        return loaders.read_files(args.files)
    if args.kind == "webpage":
        return loaders.read_webpages(args.urls)
    if args.kind == "database":
        sqlite, dsn = _dsn(args)
        return loaders.read_sql_query(args.query, sqlite=sqlite, dsn=dsn)
    if args.kind == "vector-table":
        sqlite, dsn = _dsn(args)
        return loaders.read_vector_table(args.table, args.text_column, args.embedding_column, dimension=dimension,
                                         sqlite=sqlite, dsn=dsn)
    if args.kind == "index":
        return loaders.read_llama_index(args.dir, dimension=dimension, use_embeddings=args.use_embeddings)
    return loaders.read_jsonl(args.file, dimension=dimension)


class ProgressBar:
    """A one-line bar redrawn in place on a terminal; on a pipe, a line now and then."""

    def __init__(self, stream: TextIO = sys.stderr, every: float = 2.0, unit: str = "chunks"):
        self.stream = stream
        self.unit = unit
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every = every
        self._last = 0.0
        self._line = ""
        self._drawn = False

    def __call__(self, done: int, total: int | None, message: str) -> None:
        if total is None:
            line = f"reading… {done} document(s)"
        else:
            filled = BAR_WIDTH * done // total if total else BAR_WIDTH
            line = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{total} {self.unit}"
        finished = total is not None and done >= total
        if self.tty:
            self.stream.write(f"\r\x1b[K{line}")
            self._drawn = True
        elif line != self._line and (finished or time.monotonic() - self._last >= self.every):
            self.stream.write(line + "\n")
            self._last = time.monotonic()
            self._line = line
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def print_report(report: LoadReport, out: TextIO = sys.stdout) -> None:
    print(report.summary(), file=out)
    for skipped in report.skipped:
        print(f"  skipped {skipped.what}: {skipped.reason}", file=out)


def cmd_load(args) -> int:
    from engine.api import MemGPT

    api = MemGPT(args.home)
    bar = ProgressBar()
    try:
        embedding = api.settings.embedding
        # Reading first, so a load where every input is skipped creates no empty source.
        items = []
        for item in _items(args, embedding.dim):
            items.append(item)
            if isinstance(item, Document):
                bar(len(items), None, "")
        if not any(isinstance(i, Document) for i in items):
            bar.close()
            skipped = [i for i in items if isinstance(i, Skipped)]
            print(f"{args.name}: nothing loaded; {len(skipped)} input(s) skipped")
            for item in skipped:
                print(f"  skipped {item.what}: {item.reason}")
            return 1
        # The embedded MiniLM already spreads one batch over every core.
        concurrency = args.concurrency or (1 if embedding.endpoint_type == "local" else loaders.MAX_CONCURRENCY)
        try:
            report = api.load(args.name, items, embedding=embedding, description=args.description, on_progress=bar,
                              max_concurrency=concurrency, requests_per_minute=args.requests_per_minute,
                              tokens_per_minute=args.tokens_per_minute, batch_size=args.batch_size)
        except LoadFailed as failed:
            bar.close()
            print_report(failed.report)
            raise
        bar.close()
        print_report(report)
        return 0 if report.chunks_added or report.chunks_skipped_as_duplicates else 1
    finally:
        bar.close()
        api.close()
