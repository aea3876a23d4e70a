"""Step overhead benchmark: what one `Agent.step()` costs besides the LLM, at 1k-100k stored messages.

Run by hand from the repository root (not in CI):

    python benchmarks/step_overhead.py [--sizes 1000 10000 100000] [--steps 200] [--out docs/benchmarks.md]

For each size N, in a fresh temporary data home with its own SQLite file, it:

1. creates an agent the way the app does (`create_agent` with the default preset,
   persona and human) and the running `Agent` over it, driven by a scripted model
   that answers at once with one `send_message` call and a large (128k) window, so
   no summarization or memory-pressure alert happens while timing;
2. fills recall memory with N messages of a realistic conversation (packaged user
   messages, assistant replies with an inner thought and a send_message call, the
   packaged tool results), in one transaction through `engine.store.messages.add`
   (FTS triggers included), spread over the past weeks; all out of context except a
   recursive summary and the last ~40 messages, as after summarization;
3. times S steps: each `list(agent.step(text))` end to end (persist the user message,
   build the context, "call" the model, persist the reply, run send_message,
   persist the result). A few untimed steps warm up first; every 10 steps, outside
   the timed region, the window is trimmed back to the last ~40 messages, so every
   size times the same window (40-70 messages);
4. at the smallest size, measures token counting of a full ~8,000-token context:
   from scratch (a fresh TokenCache) and with the warm TokenCache a running agent has;
5. prints a Markdown table, compares with the target (p50 <= 5 ms at 100,000 stored
   messages) and writes it into the `step-overhead` section of docs/benchmarks.md.

`--profile K` also runs cProfile over K more steps at the largest size and prints the
top functions (by cumulative and by own time) to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import platform
import pstats
import random
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

from benchmarks import sections  # noqa: E402
from engine import system, tokens  # noqa: E402
from engine.agent import KIND_USER, Agent, AgentOptions  # noqa: E402
from engine.agents import create_agent, memory_section  # noqa: E402
from engine.config import EmbeddingConfig, LLMConfig, load_settings  # noqa: E402
from engine.context import SUMMARY, TokenCache, build_context, in_context_rows  # noqa: E402
from engine.events import AssistantMessage, Error  # noqa: E402
from engine.presets import PresetLibrary  # noqa: E402
from engine.store import SqliteStore, Store  # noqa: E402
from engine.store import messages as messages_store  # noqa: E402
from engine.tools.registry import builtin_registry  # noqa: E402
from tests.support.embedder import HashEmbedder  # noqa: E402
from tests.support.scripted import ScriptedModel, say  # noqa: E402

SEED = 20240611
WINDOW = 128_000  # the scripted model's context window: nothing is summarized while timing
KEEP = 40  # in-context messages kept after a trim (as after summarization)
TRIM_EVERY = 10  # steps between trims: the window holds 40-70 messages while timing
WARMUP = 5
TOKEN_CONTEXT = 8_000  # tokens in the context used for the token-counting measurement
TOKEN_REPEATS = 30

TARGET_MS = 5.0
TARGET_N = 100_000

INTRO = "# Benchmarks\n\nRun by hand from the repository root with the project's virtualenv; each script rewrites only its own section.\n"

# --- a realistic conversation -------------------------------------------------------------

_WORDS = (
    "the of and to a in is that for it as was with be on not this are or from at but have an they you "
    "we all would when what if will more no out so can who up some into time only new about than then "
    "also like over after most should where well way many even because through years each before much "
    "people how between both work very still long own same while world life here memory data model "
    "agent user search note message file question answer result value place case group number point "
    "problem fact garden weekend coffee project meeting sister brother trip book movie recipe dinner "
    "morning evening music guitar piano running bike city train weather rain summer winter friend "
    "birthday present office deadline report budget plan idea favourite remember yesterday tomorrow "
    "week month really maybe think know want need feel love hate try help tell ask call write read "
    "learn cook travel visit buy sell start finish today tonight dog cat kids school class exam"
).split()
_THOUGHTS = (
    "The user is sharing something personal; I should respond warmly and ask a follow-up.",
    "They mentioned a plan for the weekend. Worth remembering if it comes up again.",
    "A simple question. I can answer directly and keep the conversation going.",
    "The user seems a bit tired today; keep the reply short and kind.",
    "This connects to what they said earlier about work. I'll bring that up gently.",
    "Friendly small talk. Reply in persona and show some curiosity.",
)


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize() + rng.choice(".?!.")


def _text(rng: random.Random, sentences: tuple[int, int]) -> str:
    return " ".join(_sentence(rng, 4, 14) for _ in range(rng.randint(*sentences)))


def _exchange(rng: random.Random, i: int, when: dt.datetime) -> list[tuple[tuple, dict]]:
    """One turn: packaged user message, reply with a send_message call, packaged result."""
    stamp = when.isoformat(timespec="milliseconds")
    local = when.astimezone().strftime("%Y-%m-%d %I:%M:%S %p %Z%z").strip()
    user_text = _text(rng, (1, 3))
    user_content = json.dumps({"type": "user_message", "message": user_text, "time": local}, ensure_ascii=False)
    thought = rng.choice(_THOUGHTS)
    reply = _text(rng, (1, 4))
    call_id = f"call-fill-{i}"
    tool_calls = [{
        "id": call_id,
        "type": "function",
        "function": {"name": "send_message", "arguments": json.dumps({"message": reply})},
    }]
    result = json.dumps({"status": "OK", "message": "None", "time": local}, ensure_ascii=False)
    return [
        (("user", user_content), {"text": user_text, "name": KIND_USER, "created_at": stamp}),
        (("assistant", thought), {"text": f"{thought} {reply}", "tool_calls": tool_calls, "created_at": stamp}),
        (("tool", result), {"tool_call_id": call_id, "created_at": stamp}),
    ]


def fill(store: Store, agent_id: int, n: int, rng: random.Random) -> float:
    """Add n conversation messages (plus a summary) in one transaction; return the seconds taken."""
    boot = [r.id for r in messages_store.list_messages(store, agent_id) if r.role != "system"]
    turns = (n + 2) // 3
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90 * turns + 3600)
    rows: list[tuple[tuple, dict]] = []
    for i in range(turns):
        rows.extend(_exchange(rng, i, start + dt.timedelta(seconds=90 * i)))
    rows = rows[:n]
    # The last KEEP messages stay in context, starting on a user message so no call loses its result.
    cut = len(rows) - KEEP
    while cut > 0 and rows[cut][0][0] != "user":
        cut -= 1
    cut = max(cut, 0)
    summary_text = "The user and I have talked for weeks about work, family, weekend plans and books."
    summary = (("user", system.summary(summary_text, cut + len(boot), n + len(boot))),
               {"text": summary_text, "name": SUMMARY, "created_at": rows[cut][1]["created_at"] if rows else None})
    began = time.perf_counter()
    with store.atomic():
        messages_store.set_in_context(store, boot, False)
        for i, ((role, content), kw) in enumerate(rows):
            if i == cut:
                messages_store.add(store, agent_id, summary[0][0], summary[0][1], **summary[1])
            messages_store.add(store, agent_id, role, content, in_context=i >= cut, **kw)
    return time.perf_counter() - began


def trim(store: Store, agent_id: int, keep: int = KEEP) -> None:
    """Take all but the last ~`keep` in-context messages out of the window (summary kept)."""
    rows = [r for r in in_context_rows(store, agent_id) if r.name != SUMMARY]
    cut = len(rows) - keep
    while cut > 0 and rows[cut].role != "user":
        cut -= 1
    if cut > 0:
        messages_store.set_in_context(store, [r.id for r in rows[:cut]], False)


class InstantModel(ScriptedModel):
    """A ScriptedModel that always answers at once with one send_message call.

    It does not record calls (ScriptedModel deep-copies every prompt into `.calls`),
    so the harness adds nothing measurable to the step.
    """

    def __init__(self, context_window: int = WINDOW):
        super().__init__(context_window=context_window)
        self.count = 0

    def complete(self, messages, functions):
        self.count += 1
        return say("Sounds good! Tell me more about it.", thought="Replying in persona.")


# --- measuring ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def make_agent(home: Path):
    settings = load_settings(home, env={})
    store = SqliteStore(settings.db_path)
    registry = builtin_registry()
    row = create_agent(
        store, settings, PresetLibrary(home), registry, "bench",
        llm=LLMConfig(endpoint_type="openai-compatible", model="scripted", endpoint="http://127.0.0.1:9/v1"),
        embedding=EmbeddingConfig(endpoint_type="openai-compatible", model="test-hash", dim=64),
    )
    model = InstantModel()
    agent = Agent(store, registry, row, settings=settings, provider=model, embedder=HashEmbedder(64),
                  options=AgentOptions(verify_first_message=False))
    return settings, store, agent, model


def run_steps(agent: Agent, store: Store, texts: list[str], steps: int, profile: cProfile.Profile | None = None):
    """Time `steps` steps; return the per-step seconds and the window sizes seen."""
    times: list[float] = []
    sizes: list[int] = []
    for i in range(steps):
        if i % TRIM_EVERY == 0:
            trim(store, agent.row.id)
            sizes.append(len(in_context_rows(store, agent.row.id)))
        text = texts[i % len(texts)]
        if profile is not None:
            profile.enable()
        t0 = time.perf_counter()
        events = list(agent.step(text))
        elapsed = time.perf_counter() - t0
        if profile is not None:
            profile.disable()
        times.append(elapsed)
        if not any(isinstance(e, AssistantMessage) for e in events) or any(isinstance(e, Error) for e in events):
            raise RuntimeError(f"step {i} did not go as scripted: {events}")
    sizes.append(len(in_context_rows(store, agent.row.id)))
    return times, sizes


def parts(store: Store, agent: Agent, repeats: int = 50) -> dict[str, float]:
    """Median ms of the step's context pieces, measured alone (for the breakdown)."""
    aid = agent.row.id
    fns = agent.functions()
    probes = {
        "build_context (warm cache)": lambda: build_context(store, agent.row, fns, WINDOW, agent._tokens),
        "memory_section": lambda: memory_section(store, aid),
        "recall count query": lambda: messages_store.count(store, aid),
        "in-context rows query": lambda: in_context_rows(store, aid),
    }
    out = {}
    for name, fn in probes.items():
        fn()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        out[name] = statistics.median(samples) * 1000
    return out


def run_size(n: int, steps: int, log) -> dict:
    rng = random.Random(SEED + n)
    with tempfile.TemporaryDirectory(prefix=f"step-bench-{n}-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        settings, store, agent, model = make_agent(home)
        try:
            fill_s = fill(store, agent.row.id, n, rng)
            stored = messages_store.count(store, agent.row.id)
            log(f"N={n:,}: filled {stored:,} messages in {fill_s:.1f}s ({stored / fill_s:,.0f}/s)")
            texts = [_text(rng, (1, 2)) for _ in range(50)]
            run_steps(agent, store, texts, WARMUP)
            gc.collect()
            times, windows = run_steps(agent, store, texts, steps)
            ms = [t * 1000 for t in times]
            result = {
                "n": n,
                "stored": stored,
                "p50": percentile(ms, 0.5),
                "p95": percentile(ms, 0.95),
                "mean": statistics.fmean(ms),
                "window": (min(windows), max(windows)),
                "llm_calls": model.count,
                "parts": parts(store, agent),
                "fill_rate": stored / fill_s,
            }
            log(f"N={n:,}: step p50 {result['p50']:.2f} ms, p95 {result['p95']:.2f} ms "
                f"(window {result['window'][0]}-{result['window'][1]} messages)")
            return result
        finally:
            store.close()


def token_counting(log) -> dict:
    """Counting a full ~8k-token context: from scratch, and with the warm cache a step uses."""
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="step-bench-tokens-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        settings, store, agent, model = make_agent(home)
        try:
            fill(store, agent.row.id, 3_000, rng)
            aid = agent.row.id
            fns = agent.functions()
            rows = [r for r in messages_store.list_messages(store, aid) if r.role != "system"]
            cache = TokenCache()
            base = build_context(store, agent.row, fns, WINDOW, cache)
            fixed = base.total - base.breakdown["summary"] - base.breakdown["messages"]
            # Bring older messages back into the window until the whole prompt is ~8k tokens.
            total, start = fixed, len(rows)
            while start > 0 and total + cache.count(rows[start - 1]) <= TOKEN_CONTEXT:
                start -= 1
                total += cache.count(rows[start])
            messages_store.set_in_context(store, [r.id for r in rows[start:]], True)
            ctx = build_context(store, agent.row, fns, WINDOW, TokenCache())
            memory = memory_section(store, aid)
            prompt = agent.row.system_prompt
            functions_json = json.dumps(fns)
            payloads = [(r.content or "") + (json.dumps(r.tool_calls) if r.tool_calls else "") for r in ctx.rows]

            def median_ms(fn, repeats=TOKEN_REPEATS):
                fn()
                samples = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    fn()
                    samples.append(time.perf_counter() - t0)
                return statistics.median(samples) * 1000

            def scratch_count():
                return (tokens.count(prompt) + tokens.count(memory) + tokens.count(functions_json)
                        + sum(tokens.count(p) for p in payloads))

            warm = TokenCache()
            for r in ctx.rows:
                warm.count(r)

            def warm_count():  # exactly the token work build_context does on each call
                return (tokens.count(prompt) + tokens.count(memory) + tokens.count(functions_json)
                        + sum(warm.count(r) for r in ctx.rows))

            def warm_messages_only():
                return sum(warm.count(r) for r in ctx.rows)

            result = {
                "tokens": ctx.total,
                "messages": len(ctx.rows),
                "breakdown": dict(ctx.breakdown),
                "scratch": median_ms(scratch_count),
                "warm": median_ms(warm_count),
                "warm_messages": median_ms(warm_messages_only),
                "fixed_parts": median_ms(lambda: tokens.count(prompt) + tokens.count(memory) + tokens.count(functions_json)),
                "build_fresh": median_ms(lambda: build_context(store, agent.row, fns, WINDOW, TokenCache())),
                "build_warm": median_ms(lambda: build_context(store, agent.row, fns, WINDOW, warm)),
                "encoding": getattr(tokens.encoding(), "name", None) or "estimate (4 chars a token)",
            }
            log(f"tokens: {result['tokens']:,}-token context ({result['messages']} messages): from scratch "
                f"{result['scratch']:.2f} ms, warm cache {result['warm']:.2f} ms")
            return result
        finally:
            store.close()


def profile_steps(n: int, steps: int, top: int = 25) -> str:
    """cProfile over `steps` steps at size n; the top functions, as text."""
    rng = random.Random(SEED + n)
    with tempfile.TemporaryDirectory(prefix=f"step-bench-prof-{n}-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        settings, store, agent, model = make_agent(home)
        try:
            fill(store, agent.row.id, n, rng)
            texts = [_text(rng, (1, 2)) for _ in range(50)]
            run_steps(agent, store, texts, WARMUP)
            prof = cProfile.Profile()
            run_steps(agent, store, texts, steps, profile=prof)
        finally:
            store.close()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs()
    print(f"cProfile over {steps} steps at N={n:,}, by cumulative time:", file=out)
    stats.sort_stats("cumulative").print_stats(top)
    print("by own time:", file=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- reporting ------------------------------------------------------------------------------


def sqlite_version() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "v.db")
        try:
            return store.db.execute("SELECT sqlite_version()").fetchone()[0]
        finally:
            store.close()


def temp_filesystem() -> str:
    """The file system type the temporary data homes live on (Linux only; '' elsewhere)."""
    try:
        target = os.path.realpath(tempfile.gettempdir())
        best = ("", "")
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and (target == fields[1] or target.startswith(fields[1].rstrip("/") + "/")):
                if len(fields[1]) >= len(best[0]):
                    best = (fields[1], fields[2])
        return best[1]
    except OSError:
        return ""


def render(results: list[dict], tok: dict | None, steps: int, command: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"{os.cpu_count()} cores ({platform.machine()}, {platform.system()} {platform.release()}), "
               f"Python {platform.python_version()}, SQLite {sqlite_version()}")
    fs = temp_filesystem()
    if fs:
        machine += f", data home on {fs}"
    lines = [
        "## Step overhead",
        "",
        f"Measured {stamp} on {machine}, with",
        "",
        f"    {command}",
        "",
        f"One step is `list(agent.step(text))` end to end with a scripted model that answers at once with one "
        f"`send_message` call: everything but the LLM (persist the user message, build and count the context, "
        f"record the call, persist the reply, run send_message, persist its result). {steps} timed steps per size "
        f"after {WARMUP} untimed ones; every {TRIM_EVERY} steps, outside the timed region, the window is trimmed to "
        f"the last ~{KEEP} messages, so every size times the same window. Recall memory is filled first with a "
        f"realistic conversation (packaged user messages, replies with a thought and a send_message call, packaged "
        f"results) in one transaction, all out of context except a summary and the last ~{KEEP} messages.",
        "",
        "| stored messages | window (messages) | step p50 (ms) | step p95 (ms) | mean (ms) | build_context (ms) | memory_section (ms) | recall count query (ms) | in-context rows query (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p = r["parts"]
        lines.append(
            f"| {r['stored']:,} | {r['window'][0]}-{r['window'][1]} | {r['p50']:.2f} | {r['p95']:.2f} | {r['mean']:.2f} "
            f"| {p['build_context (warm cache)']:.2f} | {p['memory_section']:.2f} | {p['recall count query']:.2f} "
            f"| {p['in-context rows query']:.2f} |"
        )
    lines += [
        "",
        "The last four columns are medians of the piece run alone after the timed steps "
        "(build_context includes memory_section, which includes the recall count query). "
        "The store's own pragmas are used (WAL, synchronous=NORMAL, autocheckpoint every 1,000 pages), so p95 "
        "includes the steps on which a WAL checkpoint runs inside a commit.",
    ]
    if tok:
        b = tok["breakdown"]
        lines += [
            "",
            f"Token counting of a full {tok['tokens']:,}-token context ({tok['messages']} messages; system "
            f"{b['system']:,}, core memory {b['core_memory']:,}, functions {b['functions']:,}, summary "
            f"{b['summary']:,}, messages {b['messages']:,} tokens), tokenizer {tok['encoding']}, median of "
            f"{TOKEN_REPEATS}:",
            "",
            "| counting | ms |",
            "|---|---:|",
            f"| from scratch (every part encoded) | {tok['scratch']:.2f} |",
            f"| warm TokenCache, as on each step (system prompt, core memory and functions re-encoded; messages cached) | {tok['warm']:.2f} |",
            f"| of which the cached messages | {tok['warm_messages']:.2f} |",
            f"| of which system prompt + core memory + functions | {tok['fixed_parts']:.2f} |",
            f"| whole build_context, fresh TokenCache | {tok['build_fresh']:.2f} |",
            f"| whole build_context, warm TokenCache | {tok['build_warm']:.2f} |",
        ]
    lines += ["", "| target | measured | status |", "|---|---:|---|"]
    at_target = [r for r in results if r["n"] == TARGET_N]
    if at_target:
        r = at_target[0]
        met = r["p50"] <= TARGET_MS
        lines.append(f"| step overhead p50 <= {TARGET_MS:g} ms at {TARGET_N:,} stored messages "
                     f"| {r['p50']:.2f} ms | {'met' if met else '**not met**'} |")
    else:
        lines.append(f"| step overhead p50 <= {TARGET_MS:g} ms at {TARGET_N:,} stored messages | not run | - |")
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    sections.write_section(path, "step-overhead", body, intro=INTRO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="stored messages N")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per size")
    parser.add_argument("--out", default="docs/benchmarks.md", help="Markdown file whose section is replaced")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--profile", type=int, default=0, metavar="K",
                        help="also cProfile K steps at the largest size (printed to stderr)")
    args = parser.parse_args(argv)
    if any(n < KEEP + 3 for n in args.sizes) or args.steps < 1:
        parser.error(f"sizes must be at least {KEEP + 3}; steps at least 1")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    argv_shown = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/step_overhead.py", *argv_shown])
    started = time.perf_counter()
    tokens.encoding()  # load the tokenizer before anything is timed
    results = [run_size(n, args.steps, log) for n in args.sizes]
    tok = token_counting(log)
    table = render(results, tok, args.steps, command)
    print(table)
    if not args.no_write:
        write_section(Path(args.out), table)
        log(f"wrote the step-overhead section of {args.out}")
    if args.profile:
        log(profile_steps(max(args.sizes), args.profile))
    log(f"done in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
