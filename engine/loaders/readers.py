"""Readers: files, directories and web pages turned into documents.

Every reader is a generator of items: a `Document` for text that can be stored,
or a `Skipped` for an input that cannot (binary, undecodable, empty, too large,
unreachable...), with the reason. A bad input never stops the others; only a
load that cannot start at all (a directory that does not exist) raises
`LoaderError`.

Formats: plain text of any extension (UTF-8, or UTF-16 with a byte-order mark),
Markdown as text, HTML to text with the standard library's parser (scripts and
styles dropped), CSV/TSV as one "column: value" paragraph per row, JSON
flattened to "key: value" lines, PDF through pypdf (one document per page).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import os
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.errors import MemGPTError
from engine.store import live

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_TIMEOUT = 20.0
USER_AGENT = "memgpt-loader/1.0"


class LoaderError(MemGPTError):
    """A load that cannot start: a missing directory or database, a failing query, an unsupported DSN."""


@dataclasses.dataclass
class Document:
    """Text to store, with metadata naming where it came from (`metadata["source"]`).

    A document with an `embedding` is stored as one passage with that vector, neither
    chunked nor embedded again (vector tables, jsonl with embeddings).
    """

    text: str
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    embedding: list[float] | None = None

    @property
    def source(self) -> str:
        return str(self.metadata.get("source", ""))


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An input that was not loaded, and why."""

    what: str
    reason: str


Item = Document | Skipped


# ---------------------------------------------------------------- kinds and decoding

_EXTENSION_KINDS = {
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
}
_CONTENT_KINDS = {
    "application/pdf": "pdf",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/json": "json",
    "text/markdown": "markdown",
}
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}


def _kind(name: str, content_type: str | None, data: bytes) -> str | None:
    """The format to parse `data` as, or None when the content type is not text."""
    path = urlsplit(name).path if "://" in name else name
    by_extension = _EXTENSION_KINDS.get(os.path.splitext(path)[1].lower())
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime not in _GENERIC_TYPES:
        if mime in _CONTENT_KINDS:
            return _CONTENT_KINDS[mime]
        if mime.endswith("+json"):
            return "json"
        if mime.startswith("text/"):
            return by_extension if by_extension not in (None, "pdf") else "text"
        return None
    if data.startswith(b"%PDF-"):
        return "pdf"
    if by_extension is None and data[:512].lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    return by_extension or "text"


def _decode(data: bytes, charset: str | None = None) -> tuple[str | None, str]:
    """(text, "") or (None, reason)."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec), ""
            except UnicodeDecodeError:
                return None, f"undecodable: not valid {codec.upper()}"
    if b"\x00" in data:
        return None, "binary file (contains NUL bytes)"
    if charset:
        try:
            return data.decode(charset), ""
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError as e:
        return None, f"undecodable: not UTF-8 text (bad byte at offset {e.start})"


# ---------------------------------------------------------------- HTML

_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "canvas", "object", "iframe"}
_PARAGRAPH_TAGS = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "blockquote", "pre", "table",
    "ul", "ol", "dl", "header", "footer", "main", "nav", "aside", "figure", "form", "details", "hr",
}
_LINE_TAGS = {"br", "div", "tr", "dt", "dd", "figcaption", "summary", "address", "caption", "li"}
_VOID_TAGS = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._pre = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP_TAGS:
            if tag not in _VOID_TAGS:
                self._skip += 1
            return
        if tag == "title":
            self._in_title = True
        elif tag == "pre":
            self._pre += 1
        if tag in _PARAGRAPH_TAGS:
            self.parts.append("\n\n")
        elif tag in _LINE_TAGS:
            self.parts.append("\n- " if tag == "li" else "\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag in _PARAGRAPH_TAGS or tag in _LINE_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
            return
        if tag == "title":
            self._in_title = False
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _PARAGRAPH_TAGS:
            self.parts.append("\n\n")
        elif tag in _LINE_TAGS and tag != "li":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title.append(data)
            return
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> tuple[str, str]:
    """(text, title) of an HTML page: visible text with paragraph breaks, no scripts or styles."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = re.sub(r"\s+", " ", "".join(parser.title)).strip()
    return text, title


# ---------------------------------------------------------------- CSV and JSON

def csv_to_text(text: str, delimiter: str = ",") -> str:
    """One paragraph per row, "header: value" a line (empty cells left out)."""
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in row)]
    if len(rows) < 2:
        return "\n".join(delimiter.join(r) for r in rows)
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(rows[0])]
    paragraphs = []
    for row in rows[1:]:
        names = header + [f"column {i + 1}" for i in range(len(header), len(row))]
        paragraphs.append("\n".join(f"{n}: {v.strip()}" for n, v in zip(names, row) if v.strip()))
    return "\n\n".join(p for p in paragraphs if p)


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _flatten(value: Any, prefix: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value):
        joined = ", ".join(_scalar(v) for v in value if v is not None)
        if joined:
            out.append(f"{prefix}: {joined}" if prefix else joined)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}[{i}]", out)
    elif value is not None:
        out.append(f"{prefix}: {_scalar(value)}" if prefix else _scalar(value))


def json_to_text(value: Any) -> str:
    """A top-level list becomes one paragraph per element; objects become "a.b: value" lines."""
    items = value if isinstance(value, list) else [value]
    paragraphs = []
    for item in items:
        lines: list[str] = []
        _flatten(item, "", lines)
        if lines:
            paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


# ---------------------------------------------------------------- PDF

# Cheap caps so that a hostile PDF fails fast, before the isolated reader's CPU limit
# (engine/loaders/isolated.py) has to stop it. pypdf parses page content at about
# 1-2 MB a second, and a few KB of Flate can inflate to MBs (pages may even share one
# stream), so the cost of a PDF is its inflated content, not its size. Ordinary text
# pages inflate 3-10 times; 50 times the file (with 1 MB allowed to any file) is
# a decompression bomb, and reading stops there.
MAX_PDF_PAGES = 2_000
MAX_PDF_INFLATION = 50
MIN_PDF_CONTENT_BYTES = 1024 * 1024
MAX_PDF_TEXT_CHARS = 10_000_000  # about 5,000 dense pages; more text than one file should bring


def _pages_from(number: int, count: int) -> str:
    return f"page {number:,}" if number == count else f"pages {number:,}-{count:,}"


def _content_size(page) -> int:
    """Bytes of the page's content streams once inflated (zlib: milliseconds, unlike parsing them)."""
    contents = page.get_contents()
    return len(contents.get_data()) if contents is not None else 0


def _pdf_documents(data: bytes, name: str, metadata: dict[str, Any]) -> Iterator[Item]:
    try:
        from pypdf import PdfReader
    except ImportError:
        yield Skipped(name, "PDF support needs pypdf: pip install pypdf")
        return
    content_budget = max(MIN_PDF_CONTENT_BYTES, MAX_PDF_INFLATION * len(data))
    stopped = ""
    pages: list[tuple[int, str]] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except Exception:
                opened = False
            if not opened:
                yield Skipped(name, "encrypted PDF (needs a password)")
                return
        count = len(reader.pages)
        content = chars = 0
        for number, page in enumerate(reader.pages, 1):
            if number > MAX_PDF_PAGES:
                stopped = f"{_pages_from(number, count)} not read (limit {MAX_PDF_PAGES:,} pages a file)"
                break
            content += _content_size(page)
            if content > content_budget:
                stopped = (f"{_pages_from(number, count)} not read: the content inflates past {content_budget:,} "
                           f"bytes, too much for a file of {len(data):,} bytes (a decompression bomb?)")
                break
            text = page.extract_text() or ""
            chars += len(text)
            if chars > MAX_PDF_TEXT_CHARS:
                stopped = f"{_pages_from(number, count)} not read (limit {MAX_PDF_TEXT_CHARS:,} characters a file)"
                break
            pages.append((number, text))
    except Exception as e:  # pypdf raises many kinds for broken files
        yield Skipped(name, f"unreadable PDF: {e or type(e).__name__}")
        return
    pages = [(number, text) for number, text in pages if text.strip()]
    if not pages and not stopped:
        yield Skipped(name, "PDF has no extractable text (scanned images?)")
        return
    for number, text in pages:
        yield Document(text, {**metadata, "source": name, "type": "pdf", "page": number, "pages": count})
    if stopped:
        yield Skipped(name, stopped)


# ---------------------------------------------------------------- bytes, files, directories, web pages

def read_bytes(
    data: bytes,
    name: str,
    *,
    content_type: str | None = None,
    charset: str | None = None,
    metadata: dict[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[Item]:
    """Documents from raw content named `name` (a path, URL or uploaded file name)."""
    metadata = dict(metadata or {})
    if len(data) > max_bytes:
        yield Skipped(name, f"too large: {len(data):,} bytes (limit {max_bytes:,})")
        return
    if not data.strip():
        yield Skipped(name, "empty")
        return
    kind = _kind(name, content_type, data)
    if kind is None:
        yield Skipped(name, f"unsupported content type {content_type}")
        return
    if kind == "pdf":
        yield from _pdf_documents(data, name, metadata)
        return
    text, reason = _decode(data, charset)
    if text is None:
        yield Skipped(name, reason)
        return
    if kind == "html":
        try:
            text, title = html_to_text(text)
        except AssertionError as e:  # Python 3.11's _markupbase asserts on some declarations (`<![x>`)
            yield Skipped(name, f"unreadable HTML: {e}")
            return
        if title:
            metadata["title"] = title
    elif kind in ("csv", "tsv"):
        try:
            text = csv_to_text(text, "\t" if kind == "tsv" else ",")
        except csv.Error:
            kind = "text"
    elif kind == "json":
        try:
            text = json_to_text(json.loads(text))
        except ValueError:
            kind = "text"  # not valid JSON: still text worth keeping
        except RecursionError:
            # Both the decoder and _flatten recurse once per level; nesting this deep is
            # not a document anyone wrote, and kept as text it would be brackets only.
            yield Skipped(name, "JSON nested too deeply to read")
            return
    if not text.strip():
        yield Skipped(name, "no text content")
        return
    yield Document(text, {**metadata, "source": name, "type": kind})


def read_file(path: str | Path, *, name: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Item]:
    """Documents from one file; `name` overrides the recorded source (an upload's original name)."""
    path = Path(path)
    name = name or str(path.resolve())
    refused = live.refusal(path)  # before anything opens the file: see engine/store/live.py
    if refused:
        yield Skipped(name, f"not read: {refused}")
        return
    if not path.exists():
        yield Skipped(name, "not found")
        return
    if path.is_dir():
        yield Skipped(name, "is a directory (load it as a directory)")
        return
    if not path.is_file():
        yield Skipped(name, "not a regular file")
        return
    try:
        size = path.stat().st_size
        if size > max_bytes:
            yield Skipped(name, f"too large: {size:,} bytes (limit {max_bytes:,})")
            return
        data = path.read_bytes()
    except OSError as e:
        yield Skipped(name, f"cannot read: {e.strerror or e}")
        return
    yield from read_bytes(data, name, metadata={"filename": path.name}, max_bytes=max_bytes)


def read_files(paths: Iterable[str | Path], *, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Item]:
    for path in paths:
        yield from read_file(path, max_bytes=max_bytes)


def _normalize_extensions(extensions: Iterable[str] | None) -> tuple[str, ...] | None:
    if not extensions:
        return None
    out = []
    for ext in extensions:
        for part in str(ext).split(","):
            part = part.strip().lower().lstrip("*").lstrip(".")
            if part:
                out.append("." + part)
    return tuple(out) or None


def list_directory(
    path: str | Path, *, recursive: bool = False, extensions: Iterable[str] | None = None, include_hidden: bool = False
) -> list[Path]:
    """The files a directory load reads, sorted; hidden entries and symlinked folders left out."""
    root = Path(path)
    refused = live.refusal(root)
    if refused:
        raise LoaderError(f"{path} is not read: {refused}.")
    if not root.is_dir():
        raise LoaderError(f"{path} is not a directory.")
    wanted = _normalize_extensions(extensions)

    def keep(name: str) -> bool:
        if not include_hidden and name.startswith("."):
            return False
        return wanted is None or name.lower().endswith(wanted)

    if not recursive:
        return sorted(p for p in root.iterdir() if p.is_file() and keep(p.name))
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if (include_hidden or not d.startswith("."))
                         and not live.inside_protected(Path(folder) / d))
        found.extend(Path(folder) / f for f in sorted(files) if keep(f))
    return found


def read_directory(
    path: str | Path,
    *,
    recursive: bool = False,
    extensions: Iterable[str] | None = None,
    include_hidden: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[Item]:
    """Documents from the files of a directory (its sub-folders too when `recursive`).

    `extensions` (".md", "txt", "md,txt" all work) keeps only matching files.
    """
    files = list_directory(path, recursive=recursive, extensions=extensions, include_hidden=include_hidden)
    if not files:
        yield Skipped(str(Path(path).resolve()), "no matching files")
        return
    for file in files:
        yield from read_file(file, max_bytes=max_bytes)


def read_webpages(
    urls: Iterable[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    client=None,
) -> Iterator[Item]:
    """Documents from web pages (HTML, text, JSON, PDF), fetched with httpx.

    Redirects are followed; a page larger than `max_bytes` is skipped without being
    read whole. Loopback and private hosts are allowed: the user chose these URLs.
    """
    import httpx

    own = client is None
    client = client or httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT})
    try:
        for url in urls:
            yield from _read_webpage(client, url, max_bytes)
    finally:
        if own:
            client.close()


def _read_webpage(client, url: str, max_bytes: int) -> Iterator[Item]:
    import httpx

    if urlsplit(url).scheme not in ("http", "https"):
        yield Skipped(url, "not an http(s) URL")
        return
    try:
        with client.stream("GET", url) as response:
            if response.status_code >= 400:
                yield Skipped(url, f"HTTP {response.status_code} {response.reason_phrase}".strip())
                return
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                yield Skipped(url, f"too large: {int(declared):,} bytes (limit {max_bytes:,})")
                return
            body = bytearray()
            for block in response.iter_bytes():
                body += block
                if len(body) > max_bytes:
                    yield Skipped(url, f"too large: over {max_bytes:,} bytes")
                    return
            content_type = response.headers.get("content-type")
            charset = response.charset_encoding
            final = str(response.url)
    except httpx.HTTPError as e:
        yield Skipped(url, f"cannot fetch: {e or type(e).__name__}")
        return
    metadata = {"url": final} if final != url else {}
    yield from read_bytes(
        bytes(body), url, content_type=content_type, charset=charset, metadata=metadata, max_bytes=max_bytes
    )
