"""A LlamaIndex persisted index directory (`index.storage_context.persist(dir)`), read without llama-index.

What is read: `docstore.json`, the nodes' text and metadata, in either layout
LlamaIndex has written (`{"docstore/data": {id: {"__data__": {...}}}}`, and the
older `{"docstore": {"docs": {...}}}`). With `use_embeddings`, the vectors in
`default__vector_store.json` (or `vector_store.json`) are kept instead of
embedding the text again; that is right only when the index was built with the
same embedding model as the data source, which the files cannot prove, so it is
off by default.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.loaders.readers import Document, Item, LoaderError, Skipped
from engine.loaders.sources_db import dimension_mismatch, parse_vector
from engine.store import live

MAX_FILE_BYTES = 1 << 30
DOCSTORE = "docstore.json"
VECTOR_STORES = ("default__vector_store.json", "vector_store.json")


def _read_json(path: Path) -> Any:
    refused = live.refusal(path)
    if refused:
        raise LoaderError(f"{path} is not read: {refused}.")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise LoaderError(f"{path} is larger than {MAX_FILE_BYTES:,} bytes.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise LoaderError(f"{path} is not a LlamaIndex JSON file: {e}") from e


def _nodes(docstore: Any) -> dict[str, Any]:
    if isinstance(docstore, dict):
        if isinstance(docstore.get("docstore/data"), dict):
            return docstore["docstore/data"]
        inner = docstore.get("docstore")
        if isinstance(inner, dict) and isinstance(inner.get("docs"), dict):
            return inner["docs"]
    raise LoaderError("docstore.json holds no nodes in a layout LlamaIndex writes (docstore/data or docstore.docs).")


def read_llama_index(directory: str | Path, *, dimension: int | None = None,
                     use_embeddings: bool = False) -> Iterator[Item]:
    """One Document per text node of a persisted LlamaIndex index."""
    folder = Path(directory)
    refused = live.refusal(folder)
    if refused:
        raise LoaderError(f"{folder} is not read: {refused}.")
    if not (folder / DOCSTORE).is_file():
        raise LoaderError(f"{folder} has no {DOCSTORE}: not a persisted LlamaIndex index directory.")
    nodes = _nodes(_read_json(folder / DOCSTORE))
    vectors: dict[str, Any] = {}
    if use_embeddings:
        store = next((folder / name for name in VECTOR_STORES if (folder / name).is_file()), None)
        if store is None:
            raise LoaderError(f"{folder} has no vector store file ({' or '.join(VECTOR_STORES)}).")
        data = _read_json(store)
        vectors = data.get("embedding_dict", {}) if isinstance(data, dict) else {}
    source = str(folder.resolve())
    for node_id, node in nodes.items():
        where = f"{source}#{node_id}"
        data = node.get("__data__", node) if isinstance(node, dict) else None
        if isinstance(data, str):  # some versions store the node as a JSON string
            try:
                data = json.loads(data)
            except ValueError:
                data = None
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(text, str) or not text.strip():
            yield Skipped(where, "no text (an image or an empty node)")
            continue
        metadata = data.get("metadata") or data.get("extra_info") or {}
        metadata = metadata if isinstance(metadata, dict) else {}
        vector = None
        if use_embeddings:
            vector = parse_vector(vectors.get(node_id))
            if vector is None:
                yield Skipped(where, "no embedding in the vector store")
                continue
            mismatch = dimension_mismatch(vector, dimension)
            if mismatch:
                yield Skipped(where, mismatch)
                continue
        yield Document(text, {**metadata, "source": source, "node_id": node_id}, embedding=vector)
