"""Archival memory benchmark: insert rate, search latency and recall at 10k and 100k passages.

Run by hand from the repository root (not in CI):

    python benchmarks/archival_search.py [--sizes 10000 100000] [--queries 50] [--rounds 3] [--out docs/benchmarks.md]

For each size N, in a fresh temporary data home with its own SQLite file, it:

1. generates N synthetic passages (40-80 words drawn from a Zipf-like vocabulary
   of a few thousand words, with topic words per cluster) and N clustered 384-d
   float32 unit vectors (200 random unit centroids + gaussian noise);
2. inserts them with `engine.store.passages.insert_many` in batches of 1,000 and
   reports passages/s (vectors precomputed; FTS indexing and the bit vectors included);
3. times Q queries (after a few untimed warm-up queries, each query `--rounds`
   times) through `ArchivalMemory.search` in "vector" and "hybrid" mode, and a
   numpy brute-force exact top-10 over the same vectors held in memory; the three
   take turns query by query, so a noisy spell of the machine hits all of them;
4. measures recall@5 of the vector search's first page against numpy's exact top-5;
5. prints a Markdown table and writes it, with the machine description, into the
   `archival-search` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


def run_size(n: int, query_count: int, rounds: int, log) -> dict:
    rng = np.random.default_rng(SEED + n)
    t0 = time.perf_counter()
    vocab, texts, clusters, word_ids, vectors, centroids = make_corpus(n, rng)
    taken: set[str] = set()
    warmup = make_queries(WARMUP, vocab, word_ids, clusters, centroids, rng, taken)
    queries = make_queries(query_count, vocab, word_ids, clusters, centroids, rng, taken)
    log(f"[N={n:,}] generated {n:,} passages in {time.perf_counter() - t0:.1f}s")

    with tempfile.TemporaryDirectory(prefix="archival-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        settings = load_settings(home, env={})
        store = SqliteStore(settings.db_path)
        try:
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
            insert_seconds = 0.0
            for start in range(0, n, BATCH):
                items = [(texts[i], vectors[i], {}) for i in range(start, min(n, start + BATCH))]
                t0 = time.perf_counter()
                ids.extend(
                    passages_store.insert_many(
                        store, items, embedding_model=MODEL, embedding_dim=DIM, agent_id=agent.id
                    )
                )
                insert_seconds += time.perf_counter() - t0
            insert_rate = n / insert_seconds
            log(f"[N={n:,}] inserted in {insert_seconds:.1f}s ({insert_rate:,.0f} passages/s)")
            del texts

            embedder = LookupEmbedder({text: vector for text, vector in warmup + queries})
            memory = ArchivalMemory(store, agent.id, embedder)
            id_array = np.asarray(ids)
            matrix = np.ascontiguousarray(vectors, dtype=np.float32)

            def vector_fn(text, _vector):
                return memory.search(text, 0, mode="vector")

            def hybrid_fn(text, _vector):
                return memory.search(text, 0, mode="hybrid")

            def numpy_fn(_text, vector):
                return numpy_top(matrix, vector)

            fns = {"vector": vector_fn, "hybrid": hybrid_fn, "numpy": numpy_fn}
            timed_interleaved(fns, warmup, 1)
            times, outputs = timed_interleaved(fns, queries, rounds)
            vector_ms, hybrid_ms, numpy_ms = times["vector"], times["hybrid"], times["numpy"]
            vector_results, numpy_results = outputs["vector"], outputs["numpy"]

            recalls = []
            for engine_page, exact in zip(vector_results, numpy_results):
                truth = set(id_array[exact[:RECALL_AT]].tolist())
                got = {hit.passage.id for hit in engine_page.hits[:RECALL_AT]}
                recalls.append(len(truth & got) / RECALL_AT)

            versions = store.db.execute("select sqlite_version(), vec_version()").fetchone()
            approximate = n > passages_store.EXACT_LIMIT and DIM % 8 == 0
        finally:
            store.close()

    result = {
        "n": n,
        "insert_rate": insert_rate,
        "vector_p50": percentile(vector_ms, 50),
        "vector_p95": percentile(vector_ms, 95),
        "hybrid_p50": percentile(hybrid_ms, 50),
        "hybrid_p95": percentile(hybrid_ms, 95),
        "numpy_p50": percentile(numpy_ms, 50),
        "numpy_p95": percentile(numpy_ms, 95),
        "recall": statistics.fmean(recalls),
        "path": (
            f"bit prefilter, {min(FIRST_PAGE_K * passages_store.OVERSAMPLE, passages_store.MAX_K)} candidates "
            "+ exact rescore"
            if approximate
            else "exact float KNN"
        ),
        "versions": tuple(versions),
    }
    result["ratio"] = result["vector_p50"] / result["numpy_p50"]
    log(
        f"[N={n:,}] vector p50 {result['vector_p50']:.1f} ms, hybrid p50 {result['hybrid_p50']:.1f} ms, "
        f"numpy p50 {result['numpy_p50']:.1f} ms, recall@5 {result['recall']:.3f}"
    )
    return result


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def render(results: list[dict], queries: int, rounds: int) -> str:
    lines = [
        "| N | vector search path | insert (passages/s) | vector p50 / p95 (ms) | hybrid p50 / p95 (ms) "
        "| numpy exact p50 / p95 (ms) | vector p50 / numpy p50 | recall@5 (vector vs exact) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['n']:,} | {r['path']} | {r['insert_rate']:,.0f} "
            f"| {_ms(r['vector_p50'])} / {_ms(r['vector_p95'])} "
            f"| {_ms(r['hybrid_p50'])} / {_ms(r['hybrid_p95'])} "
            f"| {_ms(r['numpy_p50'])} / {_ms(r['numpy_p95'])} "
            f"| {r['ratio']:.1f}x | {r['recall']:.3f} |"
        )
    lines += ["", "| target | N | measured | status |", "|---|---:|---:|---|"]
    for r in results:
        lines.append(
            f"| insert >= {TARGET_INSERT:,} passages/s | {r['n']:,} | {r['insert_rate']:,.0f}/s "
            f"| {_met(r['insert_rate'] >= TARGET_INSERT)} |"
        )
    for r in results:
        lines.append(
            f"| vector p50 <= {TARGET_VECTOR_RATIO}x numpy p50 | {r['n']:,} | {r['ratio']:.1f}x "
            f"| {_met(r['ratio'] <= TARGET_VECTOR_RATIO)} |"
        )
    for r in results:
        lines.append(
            f"| (no target) recall@5 of vector search vs exact | {r['n']:,} | {r['recall']:.3f} "
            "| informational: smaller candidate pools buy speed with recall |"
        )
    at_target = [r for r in results if r["n"] == TARGET_HYBRID_N]
    for r in at_target:
        lines.append(
            f"| hybrid p50 <= {TARGET_HYBRID_MS:.0f} ms at {TARGET_HYBRID_N:,} | {r['n']:,} "
            f"| {_ms(r['hybrid_p50'])} ms | {_met(r['hybrid_p50'] <= TARGET_HYBRID_MS)} |"
        )
    if not at_target:
        lines.append(f"| hybrid p50 <= {TARGET_HYBRID_MS:.0f} ms at {TARGET_HYBRID_N:,} | - | not run | not measured |")
    lines += [
        "",
        f"Latency: {queries} queries per size, each timed {rounds} times ({queries * rounds} samples per "
        f"column) after {WARMUP} untimed warm-up queries; the three searches take turns query by query. "
        "vector and hybrid are the whole `ArchivalMemory.search(text, 0, mode=...)` call for the first "
        f"page of {PAGE_SIZE}, on one thread, with an embedder that returns precomputed vectors at no "
        f"cost; vector asks for {FIRST_PAGE_K} neighbours, hybrid fuses {HYBRID_POOL} neighbours "
        f"(bit-prefilter oversample {HYBRID_OVERSAMPLE}) with {HYBRID_POOL} BM25 matches. numpy exact is "
        "a normalized float32 matrix held in memory: one matrix-vector product (numpy's default BLAS "
        f"threads), argpartition top-{TOP}, sort. Engine constants: EXACT_LIMIT = "
        f"{passages_store.EXACT_LIMIT:,}, OVERSAMPLE = {passages_store.OVERSAMPLE}.",
    ]
    return "\n".join(lines)


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return None


def machine(results: list[dict], load: float | None) -> str:
    sqlite_version, vec_version = results[0]["versions"]
    busy = "unknown" if load is None else f"{load:.2f}"
    return (
        f"{os.cpu_count()} cores ({platform.machine()}, {platform.system()} {platform.release()}), "
        f"Python {platform.python_version()}, numpy {np.__version__}, SQLite {sqlite_version}, "
        f"sqlite-vec {vec_version}; 1-minute load average {busy} when the run started"
    )


def write_section(path: Path, body: str) -> None:
    sections.write_section(path, "archival-search", body, intro=INTRO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="passage counts N")
    parser.add_argument("--queries", type=int, default=50, help="timed queries per size")
    parser.add_argument("--rounds", type=int, default=3, help="times each query is timed (interleaved)")
    parser.add_argument("--out", default="docs/benchmarks.md", help="Markdown file whose section is replaced")
    args = parser.parse_args(argv)
    if any(n < TOP + 1 for n in args.sizes) or args.queries < 1 or args.rounds < 1:
        parser.error(f"sizes must be at least {TOP + 1}; queries and rounds at least 1")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load = load_average()
    if load is not None and load > 0.5:
        log(f"warning: load average is {load:.2f}; other work on this machine will skew the timings")
    started = time.perf_counter()
    results = [run_size(n, args.queries, args.rounds, log) for n in args.sizes]
    table = render(results, args.queries, args.rounds)
    print(table)

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(
        [
            "## Archival search",
            "",
            f"Measured {when} on {machine(results, load)}, with",
            "",
            f"    {command}",
            "",
            "Synthetic data (fixed seed): passages of 40-80 words from a Zipf-distributed "
            f"vocabulary of {VOCABULARY:,} words, {int(TOPIC_SHARE * 100)}% of them topic words of the "
            f"passage's cluster; vectors are 384-d unit vectors around {CLUSTERS} random unit centroids "
            "(cosine ~0.4-0.6 within a cluster). Queries are 3 words of a random passage, and that "
            "passage's cluster centroid plus noise as the vector. Inserts go through `insert_many` in "
            f"batches of {BATCH:,} with precomputed vectors (FTS indexing and bit vectors included).",
            "",
            table,
            "",
            "Timings on a shared virtual machine drift from run to run (on the 2-core VM these were "
            "first measured on, medians at 100k moved by up to 1.5-2x between runs, numpy's most), so "
            "compare runs made on the same machine in the same session, and read the ratios rather "
            "than the absolute numbers.",
        ]
    )
    out = Path(args.out)
    if not out.is_absolute():
        out = Path.cwd() / out
    write_section(out, body)
    log(f"wrote {out} in {time.perf_counter() - started:.0f}s total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
