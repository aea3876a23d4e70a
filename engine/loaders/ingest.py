"""Ingest: documents -> chunks -> embeddings -> passages of a data source.

All documents are read and chunked first, so the total is known before any
embedding starts. Each chunk is identified by the hash of its text within the
source: a chunk already stored is skipped, so loading the same content twice adds
nothing and a load that stopped half-way resumes where it stopped (every embedded
batch is committed in its own transaction).

Embedding runs in batches on a small thread pool (`max_concurrency` calls in
flight), each call first taking its share of a requests-per-minute and
tokens-per-minute budget, and retried with backoff when the failure looks
transient. Results are written in order, from the calling thread only.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from engine import tokens
from engine.chunking import CHUNK_TOKENS, chunk_text
from engine.embeddings import Embedder
from engine.errors import EmbeddingMismatch, InvalidName, MemGPTError, NotFound
from engine.llm.retry import RetryPolicy
from engine.loaders.readers import Document, Item, LoaderError, Skipped
from engine.store import Store
from engine.store import passages as passages_store
from engine.store import sources as sources_store

log = logging.getLogger(__name__)

OVERLAP_TOKENS = 30
BATCH_SIZE = 64
MAX_CONCURRENCY = 2
DEFAULT_RETRY = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=30.0, max_elapsed=180.0)

ProgressCallback = Callable[[int, "int | None", str], None]


class LoadFailed(LoaderError):
    """Embedding stopped part-way. Committed batches are kept; running the same load again resumes."""

    def __init__(self, message: str, report: LoadReport):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class LoadReport:
    source: sources_store.Source | None = None
    loaded: list[str] = dataclasses.field(default_factory=list)  # each document source once, in order
    skipped: list[Skipped] = dataclasses.field(default_factory=list)
    documents: int = 0
    chunks_total: int = 0
    chunks_added: int = 0
    chunks_skipped_as_duplicates: int = 0
    embed_calls: int = 0
    retries: int = 0

    def summary(self) -> str:
        name = self.source.name if self.source else "?"
        text = (
            f"{name}: {self.chunks_added} new passage(s) from {len(self.loaded)} input(s); "
            f"{self.chunks_skipped_as_duplicates} already stored"
        )
        if self.skipped:
            text += f"; {len(self.skipped)} skipped"
        return text


# ---------------------------------------------------------------- rate limits and retries

class TokenBucket:
    """`per_minute` units refilled continuously; holds at most `burst_seconds` worth.

    A request bigger than the bucket waits for a full bucket and then takes all it
    needs, leaving a debt later requests wait out, so the long-run rate holds.
    """

    def __init__(self, per_minute: float, burst_seconds: float = 1.0):
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self._stamp: float | None = None

    def wait_time(self, amount: float, now: float) -> float:
        if self._stamp is not None:
            self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now
        need = min(amount, self.capacity)
        return 0.0 if self.level + 1e-9 >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budgets shared by every embedding thread."""

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.requests = TokenBucket(requests_per_minute, burst_seconds) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, burst_seconds) if tokens_per_minute else None
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()  # held while waiting: callers are served one after another

    @property
    def active(self) -> bool:
        return self.requests is not None or self.tokens is not None

    def acquire(self, token_count: int = 0) -> float:
        """Block until one request of `token_count` tokens fits both budgets; return the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                wait = 0.0
                if self.requests:
                    wait = max(wait, self.requests.wait_time(1, now))
                if self.tokens:
                    wait = max(wait, self.tokens.wait_time(token_count, now))
                if wait <= 0:
                    if self.requests:
                        self.requests.take(1)
                    if self.tokens:
                        self.tokens.take(token_count)
                    return waited
                self._sleep(wait)
                waited += wait


def is_transient(error: BaseException) -> bool:
    """Whether trying the same embedding call again may succeed (timeouts, 429, 5xx, dropped connections)."""
    retryable = getattr(error, "retryable", None)
    if isinstance(retryable, bool):
        return retryable
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    try:
        import httpx

        if isinstance(error, httpx.TransportError):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        import openai

        if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
            return True
    except ImportError:  # pragma: no cover
        pass
    status = getattr(error, "status_code", None)
    if status is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
    return isinstance(status, int) and (status in (408, 409, 425, 429) or status >= 500)


def _retry_after(error: BaseException) -> float | None:
    hint = getattr(error, "retry_after", None)
    if isinstance(hint, (int, float)):
        return float(hint)
    headers = getattr(getattr(error, "response", None), "headers", None)
    try:
        return float(headers.get("retry-after")) if headers is not None else None
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- chunks

@dataclasses.dataclass
class _Chunk:
    text: str
    metadata: dict
    vector: list[float] | None = None
    tokens: int = 0


def _chunks(document: Document, dimension: int, chunk_tokens: int, overlap_tokens: int) -> tuple[list[_Chunk], str]:
    """(chunks, "") or ([], reason to skip the document)."""
    text = document.text.replace("\x00", "") if isinstance(document.text, str) else ""
    if not text.strip():
        return [], "empty"
    if document.embedding is not None:
        if len(document.embedding) != dimension:
            return [], f"embedding has {len(document.embedding)} dimensions; the embedder uses {dimension}"
        return [_Chunk(text, dict(document.metadata), list(document.embedding))], ""
    pieces = chunk_text(text, max_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
    return [_Chunk(piece, {**document.metadata, "chunk": i}) for i, piece in enumerate(pieces)], ""


# ---------------------------------------------------------------- ingest

def _source_for(store: Store, name: str, embedder: Embedder) -> sources_store.Source | None:
    try:
        source = sources_store.get_by_name(store, name)
    except NotFound:
        return None
    if (source.embedding_model, source.embedding_dim) != (embedder.name, embedder.dimension):
        raise EmbeddingMismatch(
            f"Source {source.name!r} holds {source.embedding_model} vectors ({source.embedding_dim}-d); "
            f"the embedder given is {embedder.name} ({embedder.dimension}-d). Dimensions are never mixed: "
            "load into a new source or use the source's embedder."
        )
    return source


def ingest(
    store: Store,
    source_name: str,
    documents: Iterable[Item],
    embedder: Embedder,
    *,
    description: str = "",
    chunk_tokens: int = CHUNK_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
    batch_size: int = BATCH_SIZE,
    max_concurrency: int = MAX_CONCURRENCY,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    on_progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LoadReport:
    """Load `documents` (readers' items) into the data source `source_name`; return what happened.

    The source is created when missing, recording the embedder's name and dimension;
    an existing source with another embedder is refused (EmbeddingMismatch) before
    anything is read. `on_progress(done, total, message)` is called from this thread:
    while reading, `total` is None and `done` counts documents; then `done` counts
    chunks stored or found already stored, up to `total` chunks, ending at
    (total, total). If embedding fails for good, `LoadFailed` carries the report
    so far; what was committed stays, and the same call again resumes.

    `sleep` and `clock` are for tests (a virtual clock); by default rate-limit waits
    sleep and retry waits end early when the load is stopping.
    """
    if not source_name or not source_name.strip():
        raise LoaderError("A data source needs a name.")
    if chunk_tokens < 1 or not 0 <= overlap_tokens < chunk_tokens:
        raise ValueError("need chunk_tokens >= 1 and 0 <= overlap_tokens < chunk_tokens")
    if batch_size < 1 or max_concurrency < 1:
        raise ValueError("batch_size and max_concurrency must be at least 1")
    notify = on_progress or (lambda done, total, message: None)
    report = LoadReport()
    source = _source_for(store, source_name, embedder)
    known = passages_store.source_hashes(store, source.id) if source else set()

    pending: list[_Chunk] = []
    loaded: dict[str, None] = {}
    for item in documents:
        if isinstance(item, Skipped):
            report.skipped.append(item)
            notify(report.documents, None, f"skipped {item.what}: {item.reason}")
            continue
        chunks, reason = _chunks(item, embedder.dimension, chunk_tokens, overlap_tokens)
        if reason:
            report.skipped.append(Skipped(item.source or "document", reason))
            continue
        report.documents += 1
        if item.source:
            loaded.setdefault(item.source, None)
        for chunk in chunks:
            report.chunks_total += 1
            digest = passages_store.content_hash(chunk.text)
            if digest in known:
                report.chunks_skipped_as_duplicates += 1
                continue
            known.add(digest)
            pending.append(chunk)
        notify(report.documents, None, f"read {item.source}")
    report.loaded = list(loaded)

    if source is None:
        try:
            source = sources_store.create(store, source_name, embedder.name, embedder.dimension, description)
        except InvalidName:  # created meanwhile by another load
            source = _source_for(store, source_name, embedder)
            if source is None:
                raise
    report.source = source

    total = report.chunks_total
    done = report.chunks_skipped_as_duplicates
    notify(done, total, f"{done} chunk(s) already stored, {len(pending)} to store")

    def write(batch: list[_Chunk], vectors) -> None:
        nonlocal done
        # The store skips chunks another load stored meanwhile (a UNIQUE constraint), so count what it added.
        added = passages_store.insert_many(
            store,
            [(c.text, v, c.metadata) for c, v in zip(batch, vectors)],
            embedding_model=embedder.name,
            embedding_dim=embedder.dimension,
            source_id=source.id,
        )
        report.chunks_added += len(added)
        report.chunks_skipped_as_duplicates += len(batch) - len(added)
        done += len(batch)
        notify(done, total, f"stored {done} of {total} chunks")

    precomputed = [c for c in pending if c.vector is not None]
    for start in range(0, len(precomputed), batch_size):
        batch = precomputed[start : start + batch_size]
        write(batch, [c.vector for c in batch])

    to_embed = [c for c in pending if c.vector is None]
    if to_embed:
        limiter = RateLimiter(requests_per_minute, tokens_per_minute, clock=clock, sleep=sleep or time.sleep)
        if limiter.tokens is not None:
            for chunk in to_embed:
                chunk.tokens = tokens.count(chunk.text)
        batches = [to_embed[i : i + batch_size] for i in range(0, len(to_embed), batch_size)]
        runner = _Embedding(embedder, limiter, retry, sleep, clock)
        try:
            runner.run(batches, max_concurrency, write)
        except _EmbeddingFailed as failed:
            error = failed.__cause__
            if isinstance(error, EmbeddingMismatch):
                raise error from None
            detail = str(error) if isinstance(error, MemGPTError) else f"{type(error).__name__}: {error}"
            raise LoadFailed(
                f"Embedding failed after storing {report.chunks_added} of {len(pending)} new chunk(s): "
                f"{detail}. Run the same load again to resume.",
                report,
            ) from error
        finally:
            report.embed_calls, report.retries = runner.calls, runner.retries

    notify(total, total, report.summary())
    return report


class _Cancelled(Exception):
    """A worker noticed the load is stopping."""


class _EmbeddingFailed(Exception):
    """An embedding call failed for good (the cause is attached); told apart from write or progress errors."""


class _Embedding:
    """Embedding calls on a thread pool: rate-limited, retried, checked; results handed back in order."""

    def __init__(self, embedder: Embedder, limiter: RateLimiter, retry: RetryPolicy, sleep, clock):
        self.embedder = embedder
        self.limiter = limiter
        self.retry = retry
        self.clock = clock
        self.calls = 0
        self.retries = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sleep = sleep or self._stop.wait  # a retry wait ends early when the load stops

    def run(self, batches: list[list[_Chunk]], max_concurrency: int, write: Callable) -> None:
        queue = iter(batches)
        in_flight: collections.deque[tuple[list[_Chunk], Future]] = collections.deque()
        pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="embed")

        def submit() -> None:
            batch = next(queue, None)
            if batch is not None:
                in_flight.append((batch, pool.submit(self.embed, batch)))

        try:
            for _ in range(max_concurrency * 2):  # a little look-ahead, bounded memory
                submit()
            while in_flight:
                batch, future = in_flight.popleft()
                try:
                    vectors = future.result()
                except Exception as error:
                    raise _EmbeddingFailed() from error
                write(batch, vectors)
                submit()
        finally:
            self._stop.set()
            for _, future in in_flight:
                future.cancel()
            pool.shutdown(wait=True)

    def embed(self, batch: list[_Chunk]) -> np.ndarray:
        texts = [c.text for c in batch]
        token_count = sum(c.tokens for c in batch)
        dimension = self.embedder.dimension
        started = self.clock()
        attempt = 1
        while True:
            if self._stop.is_set():
                raise _Cancelled()
            if self.limiter.active:
                self.limiter.acquire(token_count)
            with self._lock:
                self.calls += 1
            try:
                vectors = self.embedder.embed(texts)
            except Exception as error:
                if not is_transient(error) or attempt >= self.retry.max_attempts:
                    raise
                wait = self.retry.delay(attempt, _retry_after(error))
                if self.clock() - started + wait > self.retry.max_elapsed:
                    raise
                with self._lock:
                    self.retries += 1
                log.warning("embedding failed (%s); retry %d in %.1f s", error, attempt, wait)
                self.sleep(wait)
                attempt += 1
                continue
            array = np.asarray(vectors, dtype=np.float32)
            if array.shape != (len(texts), dimension):
                raise EmbeddingMismatch(
                    f"{self.embedder.name} returned vectors of shape {array.shape} for {len(texts)} text(s); "
                    f"{dimension}-d expected."
                )
            return array
