"""Data loading: files, directories, web pages, SQL queries, vector tables and jsonl -> a data source.

Two steps, so every face (CLI, web upload) composes them the same way:

    items = read_directory("docs", recursive=True, extensions=[".md"])   # a reader
    report = ingest(store, "docs", items, embedder, on_progress=bar)     # chunk, embed, store

Readers (`readers.py`, `sources_db.py`) yield `Document`s and `Skipped` items
(`isolated.py` runs the file readers in a limited worker process, for strangers' files);
`ingest` (`ingest.py`) chunks, deduplicates by content hash within the source,
embeds in rate-limited, retried, concurrent batches and commits batch by batch.
"""

from engine.loaders.ingest import (
    BATCH_SIZE,
    DEFAULT_RETRY,
    MAX_CONCURRENCY,
    OVERLAP_TOKENS,
    LoadFailed,
    LoadReport,
    RateLimiter,
    TokenBucket,
    ingest,
    is_transient,
)
from engine.loaders.isolated import Limits, read_directory_isolated, read_files_isolated
from engine.loaders.llama_index import read_llama_index
from engine.loaders.readers import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    Document,
    Item,
    LoaderError,
    Skipped,
    csv_to_text,
    html_to_text,
    json_to_text,
    list_directory,
    read_bytes,
    read_directory,
    read_file,
    read_files,
    read_webpages,
)
from engine.loaders.sources_db import open_database, parse_vector, read_jsonl, read_sql_query, read_vector_table

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "MAX_CONCURRENCY",
    "OVERLAP_TOKENS",
    "Document",
    "Item",
    "Limits",
    "LoadFailed",
    "LoadReport",
    "LoaderError",
    "RateLimiter",
    "Skipped",
    "TokenBucket",
    "csv_to_text",
    "html_to_text",
    "ingest",
    "is_transient",
    "json_to_text",
    "list_directory",
    "open_database",
    "parse_vector",
    "read_bytes",
    "read_directory",
    "read_directory_isolated",
    "read_file",
    "read_files",
    "read_files_isolated",
    "read_jsonl",
    "read_sql_query",
    "read_vector_table",
    "read_webpages",
    "read_llama_index",
]
