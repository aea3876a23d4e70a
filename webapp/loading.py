"""Loading uploaded files or a directory into a data source, with a progress bar.

The files are strangers' (an upload, a folder the operator offered): each is read in
a worker process with CPU, memory and time limits (engine/loaders/isolated.py), so a
file built to make a parser crawl costs a few seconds of one core and is skipped,
instead of holding the server, and the GIL, for everyone.
"""

from __future__ import annotations

from pathlib import Path

from engine.api import MemGPT
from engine.config import EmbeddingConfig
from engine.loaders import Item, Skipped, list_directory
from engine.loaders.isolated import Limits, read_files_isolated


def load_into_source(api: MemGPT, name: str, paths: list[Path], directory: Path | None, embedding: EmbeddingConfig,
                     progress, *, limits: Limits = Limits()) -> str:
    """Read, chunk, embed and store; returns a Markdown report of what loaded and what was skipped.

    `paths` and `directory` were checked by the caller (webapp/exposure.py).
    """
    files: list[Path | tuple[Path, str]] = [(Path(path), Path(path).name) for path in paths]
    items: list[Item] = []
    if directory:
        listed = list_directory(directory, recursive=True)
        if not listed:
            items.append(Skipped(str(Path(directory).resolve()), "no matching files"))
        files.extend(listed)

    def on_file(done, total, file_name):
        progress((done, total), desc=f"reading {file_name}")

    # One worker reads them all, so its start (about 0.4 s) is paid once per load.
    items.extend(read_files_isolated(files, limits=limits, on_file=on_file))

    def on_progress(done, total, message):
        progress((done, total) if total else None, desc=message)

    # The in-process MiniLM gains nothing from a second thread; a server does.
    report = api.load(name, items, embedding=embedding, on_progress=on_progress,
                      max_concurrency=1 if embedding.endpoint_type == "local" else 2)
    lines = [f"**{report.summary()}**"]
    for skipped in report.skipped:
        lines.append(f"- skipped {Path(str(skipped.what)).name}: {skipped.reason}")
    return "\n".join(lines)
