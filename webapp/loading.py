"""Loading uploaded files or a directory into a data source, with a progress bar."""

from __future__ import annotations

from pathlib import Path

from engine.api import MemGPT
from engine.config import EmbeddingConfig
from engine.loaders import Item, read_directory, read_file


def load_into_source(api: MemGPT, name: str, paths: list[Path], directory: Path | None, embedding: EmbeddingConfig,
                     progress) -> str:
    """Read, chunk, embed and store; returns a Markdown report of what loaded and what was skipped.

    `paths` and `directory` were checked by the caller (webapp/exposure.py).
    """
    items: list[Item] = []
    for path in paths:
        items.extend(read_file(Path(path), name=Path(path).name))
    if directory:
        items.extend(read_directory(directory, recursive=True))

    def on_progress(done, total, message):
        progress((done, total) if total else None, desc=message)

    # The in-process MiniLM gains nothing from a second thread; a server does.
    report = api.load(name, items, embedding=embedding, on_progress=on_progress,
                      max_concurrency=1 if embedding.endpoint_type == "local" else 2)
    lines = [f"**{report.summary()}**"]
    for skipped in report.skipped:
        lines.append(f"- skipped {Path(str(skipped.what)).name}: {skipped.reason}")
    return "\n".join(lines)
