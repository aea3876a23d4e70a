"""Loading uploaded files or a directory into a data source, with a progress bar."""

from __future__ import annotations

from pathlib import Path

from engine.loaders import ingest, read_directory, read_file
from engine.runtime import Runtime


def load_into_source(runtime: Runtime, name: str, paths: list[Path], directory: Path | None, embedder,
                     progress) -> str:
    """Read, chunk, embed and store; returns a Markdown report of what loaded and what was skipped.

    `paths` and `directory` were checked by the caller (webapp/exposure.py).
    """
    items = []
    for path in paths:
        items.extend(read_file(Path(path), name=Path(path).name))
    if directory:
        items.extend(read_directory(directory, recursive=True))

    def on_progress(done, total, message):
        progress((done, total) if total else None, desc=message)

    report = ingest(runtime.store, name, items, embedder, on_progress=on_progress,
                    max_concurrency=1 if getattr(embedder, "name", "") == "all-MiniLM-L6-v2" else 2)
    lines = [f"**{report.summary()}**"]
    for skipped in report.skipped:
        lines.append(f"- skipped {Path(str(skipped.what)).name}: {skipped.reason}")
    return "\n".join(lines)
