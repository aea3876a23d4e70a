"""Ingest mechanics: resuming an interrupted load, retries, rate limits (on a fake
clock), the concurrency bound, progress reports and refusals."""

from __future__ import annotations

import re
import threading
import time

import httpx
import openai
import pytest

from engine import tokens
from engine.errors import EmbeddingMismatch, InvalidName, NotFound
from engine.llm.base import LLMError
from engine.llm.retry import RetryPolicy
from engine.loaders import (
    Document,
    LoaderError,
    LoadFailed,
    RateLimiter,
    Skipped,
    TokenBucket,
    ingest,
    is_transient,
)
from engine.store import passages as passages_store
from engine.store import sources as sources_store
from tests.support.embedder import HashEmbedder

pytestmark = pytest.mark.both_stores  # each test that uses `store` runs on SQLite and PostgreSQL

NO_WAIT = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=5.0, max_elapsed=60.0, jitter=0.0)


def documents(count: int = 10) -> list[Document]:
    return [
        Document(f"Entry {i}: the lighthouse at cape {i} flashes every {i + 2} seconds.", {"source": f"doc{i}"})
        for i in range(count)
    ]


class FakeClock:
    """time.monotonic and time.sleep that move a virtual clock instead of waiting."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class ScriptedEmbedder(HashEmbedder):
    """A HashEmbedder whose calls can fail, be slow, and are recorded."""

    def __init__(self, fail_on: dict[int, BaseException] | None = None, delay: float = 0.0, clock=None):
        super().__init__(64)
        self.fail_on = fail_on or {}
        self.delay = delay
        self.clock = clock
        self.started: list[float] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def embed(self, texts):
        with self._lock:
            self.calls += 1
            number = self.calls
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            if self.clock is not None:
                self.started.append(self.clock.time())
        try:
            if self.delay:
                time.sleep(self.delay)
            if number in self.fail_on:
                raise self.fail_on[number]
            return [self._vector(t) for t in texts]
        finally:
            with self._lock:
                self.active -= 1


def test_interrupted_load_resumes_and_ends_like_an_uninterrupted_one(store):
    reference = ingest(store, "reference", documents(), HashEmbedder(64), batch_size=2)
    assert reference.chunks_added == 10

    broken = ScriptedEmbedder(fail_on={4: RuntimeError("the GPU fell over")})
    with pytest.raises(LoadFailed, match="the GPU fell over.*again to resume") as caught:
        ingest(store, "docs", documents(), broken, batch_size=2, max_concurrency=2)
    partial = caught.value.report
    source = sources_store.get_by_name(store, "docs")
    stored_after_crash = passages_store.count_for_source(store, source.id)
    assert 0 < stored_after_crash == partial.chunks_added < 10
    assert partial.chunks_added % 2 == 0  # whole batches only

    resumed_embedder = ScriptedEmbedder()
    resumed = ingest(store, "docs", documents(), resumed_embedder, batch_size=2, max_concurrency=2)
    assert resumed.chunks_skipped_as_duplicates == stored_after_crash
    assert resumed.chunks_added == 10 - stored_after_crash
    assert resumed_embedder.calls == (10 - stored_after_crash) // 2  # only the missing batches are embedded
    assert passages_store.count_for_source(store, source.id) == reference.chunks_added

    texts = lambda sid: sorted(  # noqa: E731
        r[0] for r in store.db.execute("SELECT text FROM passages WHERE source_id = ?", [sid]).fetchall()
    )
    assert texts(source.id) == texts(reference.source.id)


def test_transient_failures_are_retried_with_backoff(store):
    clock = FakeClock()
    flaky = ScriptedEmbedder(fail_on={1: ConnectionError("reset"), 2: TimeoutError("slow")})
    report = ingest(
        store, "docs", documents(4), flaky, batch_size=4, max_concurrency=1, retry=NO_WAIT, sleep=clock.sleep, clock=clock.time
    )
    assert report.chunks_added == 4
    assert report.retries == 2 and report.embed_calls == 3
    assert clock.sleeps == [0.5, 1.0]  # exponential backoff from the policy


def test_retries_give_up_and_permanent_errors_fail_at_once(store):
    clock = FakeClock()
    down = ScriptedEmbedder(fail_on={n: ConnectionError("refused") for n in range(1, 10)})
    with pytest.raises(LoadFailed, match="refused") as caught:
        ingest(store, "docs", documents(2), down, retry=NO_WAIT, sleep=clock.sleep, clock=clock.time)
    assert down.calls == NO_WAIT.max_attempts
    assert caught.value.report.retries == NO_WAIT.max_attempts - 1

    bad = ScriptedEmbedder(fail_on={1: ValueError("bad request")})
    with pytest.raises(LoadFailed, match="ValueError: bad request"):
        ingest(store, "other", documents(2), bad, retry=NO_WAIT, sleep=clock.sleep, clock=clock.time)
    assert bad.calls == 1


def test_is_transient():
    request = httpx.Request("POST", "http://127.0.0.1/v1/embeddings")

    def status_error(code):
        return openai.APIStatusError("x", response=httpx.Response(code, request=request), body=None)

    assert is_transient(ConnectionError()) and is_transient(TimeoutError())
    assert is_transient(httpx.ConnectError("refused", request=request))
    assert is_transient(openai.APITimeoutError(request=request))
    assert is_transient(status_error(429)) and is_transient(status_error(503))
    assert not is_transient(status_error(400)) and not is_transient(status_error(401))
    assert is_transient(LLMError("busy", retryable=True))
    assert not is_transient(LLMError("bad key"))
    assert not is_transient(ValueError("nope"))


def test_token_bucket_and_rate_limiter_space_requests_on_a_fake_clock():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, clock=clock.time, sleep=clock.sleep)
    granted = []
    for _ in range(5):
        limiter.acquire()
        granted.append(clock.time())
    assert granted == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])

    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=600, clock=clock.time, sleep=clock.sleep)  # 10 tokens a second
    granted = []
    for _ in range(4):
        limiter.acquire(30)  # bigger than the 10-token bucket: waits it out as a debt
        granted.append(clock.time())
    assert granted == pytest.approx([0.0, 3.0, 6.0, 9.0])

    clock = FakeClock()
    both = RateLimiter(requests_per_minute=120, tokens_per_minute=60, clock=clock.time, sleep=clock.sleep)
    both.acquire(1)
    both.acquire(1)
    assert clock.time() == pytest.approx(1.0)  # tokens (1/s) bind harder than requests (2/s)

    bucket = TokenBucket(6000, burst_seconds=1.0)
    assert bucket.capacity == 100
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_ingest_respects_requests_per_minute_without_real_waiting(store):
    clock = FakeClock()
    embedder = ScriptedEmbedder(clock=clock)
    started = time.monotonic()
    report = ingest(
        store, "docs", documents(6), embedder, batch_size=1, max_concurrency=3,
        requests_per_minute=30, sleep=clock.sleep, clock=clock.time,
    )
    assert report.chunks_added == 6
    starts = sorted(embedder.started)
    assert [b - a for a, b in zip(starts, starts[1:])] == pytest.approx([2.0] * 5)  # 30/min = one every 2 s
    assert time.monotonic() - started < 2  # the clock was virtual


def test_ingest_respects_tokens_per_minute(store):
    clock = FakeClock()
    embedder = ScriptedEmbedder(clock=clock)
    docs = documents(4)
    ingest(
        store, "docs", docs, embedder, batch_size=1, max_concurrency=2,
        tokens_per_minute=600, sleep=clock.sleep, clock=clock.time,
    )
    per_call = [tokens.count(d.text) for d in docs]
    assert len(set(per_call)) == 1
    starts = sorted(embedder.started)
    # 10 tokens a second: each call waits until the previous call's tokens are paid back.
    assert [b - a for a, b in zip(starts, starts[1:])] == pytest.approx([per_call[0] / 10] * 3)


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_bound_is_respected(store, limit):
    embedder = ScriptedEmbedder(delay=0.03)
    report = ingest(store, f"docs{limit}", documents(12), embedder, batch_size=1, max_concurrency=limit)
    assert report.chunks_added == 12 and embedder.calls == 12
    assert embedder.max_active == limit  # reached, never exceeded
    ids = [r[0] for r in store.db.execute("SELECT text FROM passages ORDER BY id").fetchall()]
    assert ids == [d.text for d in documents(12)]  # written in document order despite the pool


def test_progress_reports_reading_then_chunks_up_to_the_total(store, embedder):
    seen = []
    items = [*documents(5), Skipped("bad.bin", "binary file")]
    report = ingest(store, "docs", items, embedder, batch_size=2, on_progress=lambda d, t, m: seen.append((d, t, m)))
    reading = [s for s in seen if s[1] is None]
    counting = [s for s in seen if s[1] is not None]
    assert [d for d, _, _ in reading] == [1, 2, 3, 4, 5, 5]
    assert reading[-1][2] == "skipped bad.bin: binary file"
    assert counting[0][:2] == (0, 5)
    assert [d for d, _, _ in counting] == sorted(d for d, _, _ in counting)
    assert counting[-1][:2] == (5, 5) and counting[-1][2] == report.summary()

    seen.clear()
    ingest(store, "docs", documents(5), embedder, on_progress=lambda d, t, m: seen.append((d, t, m)))
    assert [s[:2] for s in seen if s[1] is not None] == [(5, 5), (5, 5)]  # all already stored


def test_duplicate_chunks_within_one_load_are_stored_once(store, embedder):
    same = "Identical text in two places."
    report = ingest(store, "docs", [Document(same, {"source": "a"}), Document(same, {"source": "b"})], embedder)
    assert report.chunks_added == 1 and report.chunks_skipped_as_duplicates == 1
    assert report.loaded == ["a", "b"]


def test_long_documents_are_chunked_with_overlap(store, embedder):
    text = " ".join(f"Sentence number {i} talks about tide pools and anemones." for i in range(60))
    report = ingest(store, "docs", [Document(text, {"source": "long"})], embedder, chunk_tokens=50, overlap_tokens=25)
    rows = [r[0] for r in store.db.execute("SELECT text FROM passages ORDER BY id").fetchall()]
    assert report.chunks_added == len(rows) > 5
    sentences = [re.split(r"(?<=\.)\s+", row) for row in rows]
    for before, after in zip(sentences, sentences[1:]):
        assert after[0] in before[-2:]  # the tail of one chunk opens the next


def test_embedder_returning_wrong_vectors_is_refused(store):
    class Short(HashEmbedder):
        def embed(self, texts):
            return [[0.1] * 8 for _ in texts]

    with pytest.raises(EmbeddingMismatch, match="shape"):
        ingest(store, "docs", documents(2), Short(64))
    assert passages_store.count_for_source(store, sources_store.get_by_name(store, "docs").id) == 0


def test_bad_arguments(store, embedder):
    with pytest.raises(LoaderError):
        ingest(store, " ", documents(1), embedder)
    with pytest.raises(ValueError):
        ingest(store, "docs", documents(1), embedder, chunk_tokens=10, overlap_tokens=10)
    with pytest.raises(ValueError):
        ingest(store, "docs", documents(1), embedder, max_concurrency=0)
    with pytest.raises(NotFound):
        sources_store.get_by_name(store, "docs")


@pytest.mark.parametrize("name", ["x" * 65, "docs\u202eevil", "a\x00b", "line\nbreak", "![](https://x.example/p.png)"])
def test_a_source_name_is_checked_as_an_agent_name_is(store, embedder, name):
    with pytest.raises(InvalidName):  # it is shown to every visitor, in Markdown lines and the picker
        sources_store.create(store, name, embedder.name, embedder.dimension)
    assert sources_store.list_all(store) == []


def test_source_names_differing_only_in_case_are_one_name_beyond_ascii(store, embedder):
    made = sources_store.create(store, "  Éva notes ", embedder.name, embedder.dimension)
    assert made.name == "Éva notes"  # stored stripped
    with pytest.raises(InvalidName, match="already exists"):
        sources_store.create(store, "éva NOTES", embedder.name, embedder.dimension)  # a clash on PostgreSQL


def test_new_source_records_embedder_and_description(store, embedder):
    report = ingest(store, "docs", [], embedder, description="Nothing yet")
    assert report.source.description == "Nothing yet"
    assert (report.source.embedding_model, report.source.embedding_dim) == ("test-hash", 64)
    assert report.chunks_added == 0 and report.summary().startswith("docs: 0 new passage(s)")


def test_openai_embedder_over_http_is_retried_after_429(store, fake_openai, embedder):
    from engine.embeddings import OpenAIEmbedder

    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test", max_retries=0)
    remote = OpenAIEmbedder(embedder.name, embedder.dimension, client)
    fake_openai.embedding_failures.append((429, {"error": {"message": "slow down"}}))
    fake_openai.embedding_failures.append((503, {"error": {"message": "busy"}}))
    clock = FakeClock()
    report = ingest(store, "remote", documents(3), remote, retry=NO_WAIT, sleep=clock.sleep, clock=clock.time)
    assert report.chunks_added == 3 and report.retries == 2
    assert len([p for p, _ in fake_openai.requests if p.endswith("/embeddings")]) == 3
    fake_openai.embedding_failures.append((401, {"error": {"message": "bad key"}}))
    with pytest.raises(LoadFailed, match="bad key"):
        ingest(store, "remote2", documents(3), remote, retry=NO_WAIT, sleep=clock.sleep, clock=clock.time)


def test_a_failing_progress_callback_stops_the_load_unchanged(store, embedder):
    class Cancelled(Exception):
        pass

    def progress(done, total, message):
        if total is not None and done >= 4:
            raise Cancelled()

    with pytest.raises(Cancelled):
        ingest(store, "docs", documents(10), embedder, batch_size=2, on_progress=progress)
    source = sources_store.get_by_name(store, "docs")
    assert passages_store.count_for_source(store, source.id) == 4  # committed batches stay
    assert ingest(store, "docs", documents(10), embedder, batch_size=2).chunks_added == 6
