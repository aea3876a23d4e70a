"""The embedded models: SmolLM2 speed per step, MiniLM throughput, and the app's memory with both loaded.

Run by hand from the repository root (not in CI):

    python benchmarks/offline_models.py [--steps 10] [--passages 64] [--out docs/benchmarks.md]

1. SmolLM2-135M (llama.cpp, in-process): load time, generation tokens/s without and with
   the function-call grammar, and seconds per agent step (chain limit 1) over real steps.
2. all-MiniLM-L6-v2 in numpy: passages/s at ~300 tokens; and, in the same run, the same
   passages through sentence-transformers when it is importable (it is not a dependency
   of this project; install it in the benchmark's environment to compare).
3. Peak RSS of a fresh process that builds the web app and loads both models, runs a step
   and embeds a batch (target < 1.5 GB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from benchmarks import sections  # noqa: E402

WORDS = ("memory agent window context archive recall summary message user function call heartbeat persona "
         "human search vector passage token model local garden river mountain letter morning quiet").split()

RSS_CHILD = """
import resource, sys, tempfile
sys.path.insert(0, {root!r})
from engine.runtime import open_runtime
from engine.agents import create_agent
from engine.agent import Agent, AgentOptions
from webapp.app import build_demo
rt = open_runtime(tempfile.mkdtemp())
build_demo(rt)
create_agent(rt.store, rt.settings, rt.library, rt.registry, "rss")
agent = Agent.load(rt, "rss", options=AgentOptions(chain_limit=1, verify_first_message=False))
list(agent.step("Hello there, how are you today?"))
agent.embedder.embed(["a passage about gardens " * 60] * 32)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def passages(n: int, words: int = 230) -> list[str]:
    rng = random.Random(7)
    return [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(n)]


def bench_llm(steps: int) -> dict:
    from engine.agent import Agent, AgentOptions
    from engine.agents import create_agent
    from engine.llm.local import LocalProvider, call_schema
    from engine.runtime import open_runtime

    started = time.perf_counter()
    provider = LocalProvider()
    load = time.perf_counter() - started
    llm = provider._model
    prompt = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
    llm.create_chat_completion(messages=prompt, max_tokens=8)  # warm up
    t = time.perf_counter()
    out = llm.create_chat_completion(messages=prompt, max_tokens=96, temperature=0.7)
    free_rate = out["usage"]["completion_tokens"] / (time.perf_counter() - t)
    runtime = open_runtime(tempfile.mkdtemp())
    create_agent(runtime.store, runtime.settings, runtime.library, runtime.registry, "bench")
    agent = Agent.load(runtime, "bench", provider=provider,
                       options=AgentOptions(chain_limit=1, verify_first_message=False))
    schema = call_schema(agent.functions())
    t = time.perf_counter()
    out = llm.create_chat_completion(messages=prompt, max_tokens=96, temperature=0.7,
                                     response_format={"type": "json_object", "schema": schema})
    grammar_rate = out["usage"]["completion_tokens"] / (time.perf_counter() - t)
    messages = ["Hi, I'm Kim.", "What's your name?", "I like hiking in the hills.", "Tell me a joke.",
                "What did I say I like?", "Remember that my cat is Miso.", "How are you?", "Bye for now.",
                "I'm back!", "What's my cat called?"]
    from llama_cpp import llama_cpp as bindings

    durations, prompt_tokens, completion_tokens = [], [], []
    evaluated, prompt_ms, generated, generation_ms = [], [], [], []
    for text in (messages * 3)[:steps]:
        bindings.llama_perf_context_reset(llm._ctx.ctx)
        t = time.perf_counter()
        events = list(agent.step(text))
        durations.append(time.perf_counter() - t)
        # llama.cpp's own counters: prompt tokens it actually evaluated (those after the cached prefix)
        # and their time, and the generated tokens and theirs; the rest of a step is sampling under the
        # grammar and Python.
        perf = bindings.llama_perf_context(llm._ctx.ctx)
        evaluated.append(perf.n_p_eval)
        prompt_ms.append(perf.t_p_eval_ms)
        generated.append(perf.n_eval)
        generation_ms.append(perf.t_eval_ms)
        usage = [e for e in events if e.kind == "usage"]
        if usage:
            prompt_tokens.append(usage[0].prompt_tokens)
            completion_tokens.append(usage[0].completion_tokens)
    return {"load": load, "free_rate": free_rate, "grammar_rate": grammar_rate,
            "step_p50": statistics.median(durations), "step_max": max(durations), "steps": len(durations),
            "prompt_tokens": statistics.median(prompt_tokens), "completion_tokens": statistics.median(completion_tokens),
            "evaluated": statistics.median(evaluated[1:] or evaluated), "first_evaluated": evaluated[0],
            "prompt_s": statistics.median(prompt_ms[1:] or prompt_ms) / 1000,
            "first_prompt_s": prompt_ms[0] / 1000,
            "generation_s": statistics.median(generation_ms) / 1000,
            "eval_rate": sum(evaluated) / (sum(prompt_ms) / 1000) if sum(prompt_ms) else 0.0,
            "gen_rate": sum(generated) / (sum(generation_ms) / 1000) if sum(generation_ms) else 0.0}


def bench_minilm(n: int) -> dict:
    from engine import tokens
    from engine.minilm import MiniLMEmbedder

    texts = passages(n)
    model = MiniLMEmbedder()
    model.embed_array(texts[:4])
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        model.embed_array(texts)
        best = max(best, n / (time.perf_counter() - t))
    result = {"ours": best, "tokens": statistics.median(tokens.count(t) for t in texts), "reference": None}
    try:
        from sentence_transformers import SentenceTransformer

        from engine.minilm import model_dir
    except ImportError:
        return result
    reference = SentenceTransformer(str(model_dir()), device="cpu")
    reference.encode(texts[:4])
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        reference.encode(texts, batch_size=32)
        best = max(best, n / (time.perf_counter() - t))
    result["reference"] = best
    return result


def peak_rss_mb() -> float:
    out = subprocess.run([sys.executable, "-c", RSS_CHILD.format(root=str(ROOT))], capture_output=True, text=True,
                         check=True, env={**os.environ, "MEMGPT_HOME": tempfile.mkdtemp()})
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def write_section(path: Path, body: str) -> None:
    sections.write_section(path, "offline-models", body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--passages", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    llm = bench_llm(args.steps)
    emb = bench_minilm(args.passages)
    rss = peak_rss_mb()
    ratio = emb["reference"] / emb["ours"] if emb["reference"] else None
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Embedded models (offline default)",
        "",
        f"Measured {now} on {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, with",
        "",
        "    python benchmarks/offline_models.py",
        "",
        "| measure | value | target |",
        "|---|---:|---|",
        f"| SmolLM2-135M load | {llm['load']:.2f} s | |",
        f"| SmolLM2 generation, free text | {llm['free_rate']:.1f} tokens/s | |",
        f"| SmolLM2 generation, function-call grammar | {llm['grammar_rate']:.1f} tokens/s | |",
        f"| agent step (one call; median prompt {llm['prompt_tokens']:.0f}, completion {llm['completion_tokens']:.0f} tokens) "
        f"| p50 {llm['step_p50']:.1f} s, max {llm['step_max']:.1f} s over {llm['steps']} steps | |",
        f"| of which reading the prompt: first step | {llm['first_evaluated']} tokens evaluated in "
        f"{llm['first_prompt_s']:.1f} s | |",
        f"| of which reading the prompt: later steps (median) | {llm['evaluated']:.0f} tokens evaluated in "
        f"{llm['prompt_s']:.1f} s (the rest of the prompt is reused from llama.cpp's cache) | |",
        f"| of which generating (median) | {llm['generation_s']:.1f} s | |",
        f"| llama.cpp rates over the steps | prompt {llm['eval_rate']:.0f} tokens/s, generation "
        f"{llm['gen_rate']:.1f} tokens/s | |",
        f"| MiniLM (numpy), ~{emb['tokens']:.0f}-token passages | {emb['ours']:.1f} passages/s | |",
    ]
    if ratio is not None:
        verdict = "met" if ratio <= 1.25 else "**not met**"
        lines.append(f"| sentence-transformers, same passages, same run | {emb['reference']:.1f} passages/s | |")
        lines.append(f"| MiniLM time / sentence-transformers time | {ratio:.2f}x | <= 1.25x: {verdict} |")
    else:
        lines.append("| sentence-transformers | not installed in this environment | |")
    lines.append(f"| peak RSS, app + both models + a step + a batch | {rss:.0f} MB | < 1,500 MB: "
                 f"{'met' if rss < 1500 else '**not met**'} |")
    body = "\n".join(lines)
    print(body)
    write_section(Path(args.out), body)


if __name__ == "__main__":
    main()
