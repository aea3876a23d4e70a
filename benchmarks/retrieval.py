"""Retrieval quality on LoCoMo: does archival search put the evidence in front of the model?

Run by hand from the repository root (not in CI; the data is not in the repository):

    python benchmarks/retrieval.py --data ../shared/data/locomo-dev.json [--home DIR]
        [--latency-size 10000] [--latency-queries 100] [--out docs/benchmarks.md]

LoCoMo (Maharana et al., ACL 2024) holds long conversations between two people over
many sessions, and questions whose evidence is a set of dialog turns ("D3:12"). For
each conversation this script

1. creates an agent through the public API (`engine.MemGPT`, the offline default
   embedder, all-MiniLM-L6-v2) and stores every dialog turn as one archival passage,
   `"Speaker: text"` (plus the caption of a shared photo), with the session's date
   and time as the time it was said (`ArchivalItem.at`) and its dia_id as metadata;
2. asks every question of categories 1-4 (1 multi-hop, 2 temporal, 3 open-domain,
   4 single-hop; 5, adversarial, has no evidence to find) with
   `MemGPT.search_archival(k=50)` in keyword, vector and hybrid mode, and computes
   LoCoMo's evidence recall@k: the share of a question's evidence turns among the
   first k results, averaged over questions. The first 5 hybrid results are exactly
   the page the agent sees from `archival_memory_search`;
3. ranks the same turns with a plain BM25 (Okapi, k1=1.2, b=0.75, lower-cased words,
   no stemming, no stopwords) written here, as the baseline of the same run;
4. reports multi-hop questions whose whole evidence is in the top 10;
5. stores the same conversations as recall memory (messages) and asks the same
   questions through `MemGPT.find_recall`, full text (as before) against hybrid;
6. times searches at `--latency-size` passages (the dev set's turns stored again
   until there are that many) in one agent: the first page of each mode, query
   embedding included, and the embedding alone.

`--home DIR` keeps the data home, and a later run with the same DIR reuses the agents
already built (only searching again), which makes trying ranking changes quick.
Results go to the `retrieval` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
for _key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MEMGPT_DATABASE_URL"):  # the offline default, always
    os.environ.pop(_key, None)

import engine.recall_index as recall_index  # noqa: E402
from benchmarks import sections  # noqa: E402
from engine import ArchivalItem, MemGPT  # noqa: E402
from engine.errors import NotFound  # noqa: E402
from engine.store import messages as messages_store  # noqa: E402

MODES = ("keyword", "vector", "hybrid")
RECALL_MODES = ("keyword", "hybrid")
KS = (1, 5, 10, 20, 50)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
EVIDENCE = re.compile(r"D:?(\d+):(\d+)")
WORD = re.compile(r"\w+", re.UNICODE)
LATENCY_AGENT = "latency"


# ------------------------------------------------------------------ the data


def session_time(text: str) -> dt.datetime:
    """LoCoMo's "1:56 pm on 8 May, 2023" as a UTC datetime."""
    return dt.datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=dt.UTC)


def turns(sample: dict) -> list[dict]:
    """Every dialog turn of a conversation, in order, with its session time and passage text."""
    conversation = sample["conversation"]
    found = []
    sessions = sorted(
        (int(key.split("_")[1]), key) for key in conversation if re.fullmatch(r"session_\d+", key)
    )
    for _, key in sessions:
        when = session_time(conversation[f"{key}_date_time"])
        for turn in conversation[key]:
            text = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                text += f" [shares a photo: {turn['blip_caption']}]"
            found.append({"dia_id": turn["dia_id"], "text": text, "at": when})
    return found


def evidence_ids(question: dict) -> set[str]:
    """A question's evidence as dia_ids; LoCoMo writes a few as "D8:6; D9:17" or "D:11:26"."""
    return {f"D{a}:{b}" for item in question["evidence"] for a, b in EVIDENCE.findall(item)}


def questions(sample: dict) -> list[dict]:
    return [q for q in sample["qa"] if q.get("category") in CATEGORIES and evidence_ids(q)]


# ------------------------------------------------------------------ the BM25 baseline


class BM25:
    """Okapi BM25 over lower-cased words, no stemming and no stopwords: the plain baseline."""

    def __init__(self, docs: list[str], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.docs = [Counter(w.lower() for w in WORD.findall(d)) for d in docs]
        self.lengths = [sum(c.values()) for c in self.docs]
        self.average = statistics.fmean(self.lengths) if docs else 0.0
        frequency: Counter[str] = Counter()
        for counts in self.docs:
            frequency.update(counts.keys())
        n = len(docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in frequency.items()}

    def rank(self, query: str, k: int) -> list[int]:
        words = {w.lower() for w in WORD.findall(query)} & self.idf.keys()
        scores: list[tuple[float, int]] = []
        for i, (counts, length) in enumerate(zip(self.docs, self.lengths)):
            score = 0.0
            for w in words:
                tf = counts.get(w)
                if tf:
                    norm = self.k1 * (1 - self.b + self.b * length / self.average)
                    score += self.idf[w] * tf * (self.k1 + 1) / (tf + norm)
            if score > 0:
                scores.append((score, i))
        scores.sort(key=lambda item: (-item[0], item[1]))
        return [i for _, i in scores[:k]]


# ------------------------------------------------------------------ building and searching


def build(api: MemGPT, name: str, items: list[ArchivalItem]) -> float | None:
    """Create agent `name` holding `items` (unless a kept home already has it whole); passages/s or None."""
    try:
        if api.archival_count(name) == len(items):
            return None
        api.delete_agent(name)
    except NotFound:
        pass
    api.create_agent(name)
    started = time.perf_counter()
    for i in range(0, len(items), 500):
        api.insert_archival(name, items[i : i + 500])
        print(f"  {name}: {min(i + 500, len(items))}/{len(items)} passages", end="\r", flush=True)
    print()
    return len(items) / (time.perf_counter() - started)


def build_recall(api: MemGPT, name: str, dialog: list[dict]) -> tuple[dict[int, str], float | None]:
    """The conversation as the agent's own recall memory: one message a turn, said at its session's time.

    The first speaker is the user and the second the agent. Messages are written with
    the store's own `messages.add` (the public API has no way to backdate a message)
    and embedded with recall_index.embed_pending, as the background indexer does.
    Returns message id -> dia_id, and messages embedded per second (None when reused).
    """
    store = api.runtime.store
    agent_id = api.get_agent(name).id
    first = dialog[0]["text"].split(":", 1)[0]
    rows = [m for m in messages_store.list_messages(store, agent_id) if m.role != "system"]
    if len(rows) == len(dialog) and all(m.text == t["text"] for m, t in zip(rows, dialog)):
        return {m.id: t["dia_id"] for m, t in zip(rows, dialog)}, None  # a kept home: the same turns, in order
    if rows:
        messages_store.delete(store, [m.id for m in rows])
    ids = {}
    with store.atomic():
        for t in dialog:
            role = "user" if t["text"].split(":", 1)[0] == first else "assistant"
            m = messages_store.add(store, agent_id, role, t["text"], text=t["text"], created_at=recall_index_time(t))
            ids[m.id] = t["dia_id"]
    embedder = api._archival(name)._embedder
    started = time.perf_counter()
    while recall_index.embed_pending(store, agent_id, embedder, 256):
        pass
    return ids, len(dialog) / (time.perf_counter() - started)


def recall_index_time(turn: dict) -> str:
    return turn["at"].isoformat(timespec="milliseconds")


def evaluate_recall(api: MemGPT, data: list[dict]) -> dict:
    """Recall@k of conversation search (recall memory) per mode and category."""
    scores: dict[str, dict[int, dict[int, list[float]]]] = {
        m: defaultdict(lambda: defaultdict(list)) for m in RECALL_MODES
    }
    whole: dict[str, list[bool]] = defaultdict(list)
    rates = []
    for sample in data:
        name = sample["sample_id"]
        dia, rate = build_recall(api, name, turns(sample))
        if rate:
            rates.append(rate)
        for question in questions(sample):
            wanted = evidence_ids(question)
            for mode in RECALL_MODES:
                found = [dia.get(m.id) for m in api.find_recall(name, question["question"], k=max(KS), mode=mode).messages]
                for k in KS:
                    scores[mode][question["category"]][k].append(recall(found, wanted, k))
                if question["category"] == 1:
                    whole[mode].append(wanted <= set(found[:10]))
        print(f"  {name}: recall searched", flush=True)
    return {"scores": scores, "whole": whole, "rate": statistics.fmean(rates) if rates else None}


def recall(found: list[str], wanted: set[str], k: int) -> float:
    return len(wanted & set(found[:k])) / len(wanted)


def evaluate(api: MemGPT, data: list[dict]) -> dict:
    """Recall@k per mode and category, BM25 beside them, over every conversation."""
    scores: dict[str, dict[int, dict[int, list[float]]]] = {
        m: defaultdict(lambda: defaultdict(list)) for m in ("bm25", *MODES)
    }
    whole: dict[str, list[bool]] = defaultdict(list)  # multi-hop: all evidence in the top 10
    for sample in data:
        name = sample["sample_id"]
        dialog = turns(sample)
        bm25 = BM25([t["text"] for t in dialog])
        asked = questions(sample)
        for n, question in enumerate(asked, 1):
            wanted = evidence_ids(question)
            ranked = {"bm25": [dialog[i]["dia_id"] for i in bm25.rank(question["question"], max(KS))]}
            for mode in MODES:
                hits = api.search_archival(name, question["question"], mode=mode, k=max(KS)).hits
                ranked[mode] = [h.passage.metadata.get("dia_id") for h in hits]
            for mode, found in ranked.items():
                for k in KS:
                    scores[mode][question["category"]][k].append(recall(found, wanted, k))
                if question["category"] == 1:
                    whole[mode].append(wanted <= set(found[:10]))
            print(f"  {name}: {n}/{len(asked)} questions", end="\r", flush=True)
        print()
    return {"scores": scores, "whole": whole}


def timed(call, rounds: int = 1) -> float:
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def latency(api: MemGPT, data: list[dict], size: int, count: int) -> dict:
    """p50/p95 ms of first-page searches at `size` passages, query embedding included."""
    dialog = [t for sample in data for t in turns(sample)]
    items = [ArchivalItem(dialog[i % len(dialog)]["text"], at=dialog[i % len(dialog)]["at"]) for i in range(size)]
    rate = build(api, LATENCY_AGENT, items)
    asked = [q["question"] for sample in data for q in questions(sample)]
    step = max(1, len(asked) // count)
    queries = asked[::step][:count]
    embedder = api._archival(LATENCY_AGENT)._embedder  # the same shared model the searches use
    for q in queries[:5]:  # warm caches, the model and the pages
        for mode in MODES:
            api.search_archival(LATENCY_AGENT, q, mode=mode)
    times: dict[str, list[float]] = defaultdict(list)
    for q in queries:  # modes take turns query by query, so a noisy spell hits all of them
        times["embedding"].append(timed(lambda q=q: embedder.embed([q])))
        for mode in MODES:
            times[mode].append(timed(lambda q=q, mode=mode: api.search_archival(LATENCY_AGENT, q, mode=mode)))
    return {
        "size": size, "insert_rate": rate, "queries": len(queries),
        "ms": {m: (statistics.median(v), percentile(v, 95)) for m, v in times.items()},
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


# ------------------------------------------------------------------ reporting


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def table(result: dict) -> str:
    scores, whole = result["scores"], result["whole"]
    lines = [
        "| mode | " + " | ".join(f"R@{k}" for k in KS) + " | " + " | ".join(f"{c} R@10" for c in CATEGORIES.values())
        + " | multi-hop all@10 |",
        "|---|" + "---:|" * (len(KS) + len(CATEGORIES) + 1),
    ]
    for mode, by_category in scores.items():
        overall = [mean([x for c in by_category.values() for x in c[k]]) for k in KS]
        per = [mean(by_category[c][10]) for c in CATEGORIES]
        share = mean([float(x) for x in whole[mode]])
        label = "BM25 (baseline)" if mode == "bm25" else (
            "keyword (full text, as before)" if mode == "keyword" and "vector" not in scores else mode)
        lines.append(f"| {label} | " + " | ".join(f"{x:.3f}" for x in overall) + " | "
                     + " | ".join(f"{x:.3f}" for x in per) + f" | {share:.1%} |")
    return "\n".join(lines)


def latency_table(found: dict) -> str:
    ms = found["ms"]
    lines = ["| first page of | p50 ms | p95 ms |", "|---|---:|---:|"]
    for mode in (*MODES, "embedding"):
        label = {"embedding": "query embedding alone", "keyword": "keyword search (no embedding)"}.get(
            mode, f"{mode} search (query embedding included)")
        lines.append(f"| {label} | {ms[mode][0]:.1f} | {ms[mode][1]:.1f} |")
    return "\n".join(lines)


def report(data: list[dict], result: dict, found: dict | None, recalled: dict | None, args) -> str:
    n_questions = sum(len(questions(s)) for s in data)
    n_turns = sum(len(turns(s)) for s in data)
    counts = Counter(q["category"] for s in data for q in questions(s))
    cats = ", ".join(f"{counts[c]} {name}" for c, name in CATEGORIES.items())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    body = [
        "## Retrieval quality (LoCoMo)",
        "",
        f"`python benchmarks/retrieval.py {shlex.join(sys.argv[1:])}` on {dt.date.today()}: "
        f"{len(data)} conversations, {n_turns} dialog turns stored as archival passages through "
        f"`MemGPT.insert_archival`, {n_questions} questions ({cats}). Evidence recall@k is LoCoMo's: the "
        "share of a question's evidence turns among the first k results, averaged. R@5 of hybrid is the page "
        "`archival_memory_search` shows the agent. BM25 is a plain Okapi BM25 computed in the same run "
        "(lower-cased words, no stemming, no stopwords). Embedder: the offline default, all-MiniLM-L6-v2 in numpy.",
        "",
        table(result),
    ]
    if recalled:
        rate = f"; messages embedded at {recalled['rate']:.0f}/s" if recalled["rate"] else ""
        body += [
            "",
            "Recall memory (`conversation_search`): the same conversations stored as the agent's own messages "
            "(first speaker as the user, second as the agent, each at its session's time), searched with "
            "`MemGPT.find_recall(k=50)`. Keyword is the full-text search recall memory had before (every word "
            f"first, then any); hybrid is the archival ranking over message vectors{rate}.",
            "",
            table(recalled),
        ]
    if found:
        rate = f"{found['insert_rate']:.0f} passages/s through the API, embedding included" \
            if found["insert_rate"] else "reused from a kept home"
        body += [
            "",
            f"Latency at {found['size']:,} passages in one agent ({found['queries']} questions, each mode in turn "
            f"per question; insert {rate}):",
            "",
            latency_table(found),
        ]
    body += ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"load average {load:.1f} at the end."]
    return "\n".join(body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="LoCoMo JSON (a list of samples)")
    parser.add_argument("--home", type=Path, help="keep the data home here (and reuse its agents)")
    parser.add_argument("--latency-size", type=int, default=10_000, help="passages for the latency run (0: skip)")
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--no-recall", action="store_true", help="skip the recall memory (messages) part")
    args = parser.parse_args(argv)

    data = json.loads(args.data.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or Path(scratch)
        with MemGPT(home) as api:
            with contextlib.suppress(NotFound):  # its passages would weigh in the full-text statistics
                api.delete_agent(LATENCY_AGENT)
            for sample in data:
                rate = build(api, sample["sample_id"], [
                    ArchivalItem(t["text"], at=t["at"], metadata={"dia_id": t["dia_id"]}) for t in turns(sample)
                ])
                if rate:
                    print(f"  built {sample['sample_id']} at {rate:.0f} passages/s")
            result = evaluate(api, data)
            print(table(result))
            recalled = None if args.no_recall else evaluate_recall(api, data)
            if recalled:
                print(table(recalled))
            found = latency(api, data, args.latency_size, args.latency_queries) if args.latency_size else None
            if found:
                print(latency_table(found))
    text = report(data, result, found, recalled, args)
    if not args.no_write:
        sections.write_section(args.out, "retrieval", text)
        print(f"wrote the retrieval section of {args.out}")


if __name__ == "__main__":
    main()
