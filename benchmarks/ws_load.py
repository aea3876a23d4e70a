"""WebSocket server under load: many clients chatting at once against an instant fake LLM.

Run by hand from the repository root (not in CI):

    python benchmarks/ws_load.py [--compare /path/to/other/checkout] [--clients 20] [--messages 10]
                                 [--py-spy profile.txt] [--out docs/benchmarks.md]

What runs is what a user meets: `python app.py ws` as its own process on a fresh
data home whose chat and embedding endpoints are a real HTTP server speaking the
OpenAI wire format (tests/support/fake_openai.py), started in a process of its
own so it does not share a GIL with the clients. It answers every chat request
at once with one `send_message` call (so each message is one step with one LLM
call) and embeds with a hashed bag of words.

1. Each of `--clients` WebSocket clients creates its own agent, plus one
   bystander agent on a connection of its own.
2. The bystander sends a few messages alone: its reply latency on an idle server.
3. All clients start together and each sends `--messages` messages one after
   another, each timed from sending the frame to its `agent_response_end`.
   Meanwhile the bystander keeps sending one message at a time (0.25 s apart),
   timed the same way: what a user of another agent sees while the server is busy.
4. Reported: messages/s over the load (all clients' messages / wall time), p50 and
   p95 reply latency, the bystander's latencies, and replies that were not a
   normal answer (an error frame, no assistant message).

`--compare DIR` first runs the same load against the checkout in DIR (e.g. one made
with `git worktree add /tmp/before <commit>`), then against this one, and puts both in
the table. `--py-spy FILE` samples this checkout's server during the load with py-spy
and prints the functions where it spent its time.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_RATE = 25.0
TARGET_P95 = 2.0
REPLY_TIMEOUT = 300.0
BYSTANDER_PAUSE = 0.25
IDLE_SAMPLES = 5


# ------------------------------------------------------------------ the fake LLM (its own process)

class _EndlessReplies:
    """Stands in for FakeOpenAI's reply queue: every chat request gets a send_message call at once."""

    def __bool__(self) -> bool:
        return True

    def popleft(self) -> dict:
        call = {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                "function": {"name": "send_message", "arguments": json.dumps({"message": "Noted, thank you!"})}}
        return {"content": "The user wrote; a short answer will do.", "tool_calls": [call]}


def serve_fake_llm() -> None:
    from tests.support.embedder import HashEmbedder
    from tests.support.fake_openai import FakeOpenAI

    embedder = HashEmbedder(64)
    fake = FakeOpenAI(embed=lambda text: embedder.embed([text])[0])
    fake.chat_replies = _EndlessReplies()  # type: ignore[assignment]
    fake.start()
    print(fake.base_url, flush=True)
    # Recording every request would grow without bound over a long run; nothing here reads them.
    while True:
        time.sleep(5)
        with fake.lock:
            fake.requests.clear()
            fake.headers.clear()


@contextlib.contextmanager
def fake_llm():
    proc = subprocess.Popen([sys.executable, __file__, "--fake-llm"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ------------------------------------------------------------------ the server under test

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(checkout: Path, home: Path, log_path: Path):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(checkout), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("OPENAI_API_KEY", None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(checkout / "app.py"), "ws", "--home", str(home),
                                 "--host", "127.0.0.1", "--port", str(port)],
                                cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {log_path.read_text()[-2000:]}")
            try:
                with connect(url, open_timeout=2):
                    break
            except (OSError, InvalidStatus, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ clients

MESSAGES = (
    "Hi! I'm {name}, nice to meet you.",
    "I work as a nurse in Lyon and I love climbing on weekends.",
    "Do you remember what I told you about my job?",
    "My sister Camille is visiting next week; she is bringing her dog, Biscuit.",
    "What should I cook for her? She is vegetarian.",
    "Here is a longer note about my week: " + "meetings, a night shift, groceries, a long run by the river. " * 8,
    "Can you look up what we said about climbing?",
    "Thanks, that helps a lot.",
    "One more fact: my birthday is on the 14th of March.",
    "Good night, talk tomorrow!",
)


class Chat:
    """One WebSocket connection with its own agent."""

    def __init__(self, url: str, name: str):
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(url, open_timeout=30, max_size=None))
        self.name = name
        self.ws.send(json.dumps({"type": "command", "command": "create_agent", "config": {"name": name}}))
        reply = json.loads(self.ws.recv(timeout=REPLY_TIMEOUT))
        if reply.get("status") != "OK":
            self.close()
            raise RuntimeError(f"create_agent {name} failed: {reply}")

    def say(self, text: str) -> tuple[float, bool]:
        """(seconds from sending to agent_response_end, whether it was a normal answer)."""
        start = time.perf_counter()
        self.ws.send(json.dumps({"type": "user_message", "message": text}))
        answered, failed = False, False
        while True:
            frame = json.loads(self.ws.recv(timeout=REPLY_TIMEOUT))
            kind = frame.get("type")
            if kind == "agent_response" and frame.get("message_type") == "assistant_message":
                answered = True
            elif kind in ("agent_response_error", "server_error"):
                failed = True
            if kind == "agent_response_end" or kind == "server_error":
                return time.perf_counter() - start, answered and not failed

    def close(self) -> None:
        self._stack.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_load(url: str, clients: int, messages: int, on_start=None) -> dict:
    bystander = Chat(url, "bystander")
    idle = [bystander.say(f"Quiet moment number {i}.")[0] for i in range(IDLE_SAMPLES)]

    ready = threading.Barrier(clients + 1)
    latencies: list[float] = []
    bad = 0
    failures: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        nonlocal bad
        try:
            chat = Chat(url, f"user-{i}")
        except Exception as e:  # a client that cannot even start is a result too
            failures.append(f"user-{i}: {e}")
            ready.abort()
            return
        try:
            ready.wait()
            for j in range(messages):
                seconds, ok = chat.say(MESSAGES[(i + j) % len(MESSAGES)].format(name=f"user-{i}"))
                with lock:
                    latencies.append(seconds)
                    bad += not ok
        except threading.BrokenBarrierError:
            pass  # another client could not start; the run is reported as failed
        except Exception as e:
            failures.append(f"user-{i}: {type(e).__name__}: {e}")
        finally:
            chat.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        raise RuntimeError("; ".join(failures)) from None
    start = time.perf_counter()
    if on_start is not None:
        on_start()

    under_load: list[float] = []
    loading = threading.Event()
    loading.set()

    def watch() -> None:
        for t in threads:
            t.join()
        loading.clear()

    threading.Thread(target=watch, daemon=True).start()
    n = 0
    while loading.is_set():
        under_load.append(bystander.say(f"Are you still there? ({n})")[0])
        n += 1
        time.sleep(BYSTANDER_PAUSE)
    wall = time.perf_counter() - start
    bystander.close()
    if failures:
        raise RuntimeError("; ".join(failures))
    return {
        "messages": len(latencies), "wall": wall, "rate": len(latencies) / wall,
        "p50": _pct(latencies, 0.5), "p95": _pct(latencies, 0.95), "max": max(latencies),
        "bad": bad, "idle_p50": statistics.median(idle),
        "by_p50": statistics.median(under_load), "by_p95": _pct(under_load, 0.95), "by_n": len(under_load),
    }


# ------------------------------------------------------------------ profiling

def _top_frames(raw: Path, count: int = 25) -> str:
    """Own and total sample shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        k = int(n)
        samples += k
        frames = stack.split(";")
        if frames and frames[0].startswith(("process ", "thread ")):
            frames = frames[1:]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        own[frames[-1]] += k
        for f in set(frames):
            total[f] += k
    lines = [f"{samples} samples; own time:"]
    lines += [f"  {100 * k / samples:5.1f}%  {f}" for f, k in own.most_common(count)]
    lines.append("total (inclusive) time:")
    lines += [f"  {100 * k / samples:5.1f}%  {f}" for f, k in total.most_common(count)]
    return "\n".join(lines)


# ------------------------------------------------------------------ main

def _describe(checkout: Path) -> str:
    try:
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return f"`{commit}`"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(checkout: Path, clients: int, messages: int, py_spy: Path | None) -> dict:
    from tests.support.servers import fake_home

    with tempfile.TemporaryDirectory(prefix="ws-load-") as tmp, fake_llm() as base_url:
        home = fake_home(Path(tmp) / "home", base_url)
        with app_server(checkout, home, Path(tmp) / "server.log") as (url, pid):
            spy: subprocess.Popen | None = None

            def start_profile() -> None:
                nonlocal spy
                if py_spy is not None:
                    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                    # --gil: only the thread holding the GIL, i.e. the Python work that caps throughput;
                    # --nonblocking: py-spy otherwise pauses the server for every sample, halving its rate.
                    spy = subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw", "--threads", "--gil", "--nonblocking",
                                            "--rate", "200", "--output", str(py_spy)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            cpu_before = _cpu_seconds(pid)
            result = run_load(url, clients, messages, on_start=start_profile)
            result["cpu_ms"] = 1000 * (_cpu_seconds(pid) - cpu_before) / max(1, result["messages"] + result["by_n"])
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
                spy.wait(timeout=60)
    result["code"] = _describe(checkout)
    return result


def table(rows: list[dict], clients: int, messages: int) -> str:
    cpu = os.cpu_count()
    out = [
        "## WebSocket server under load",
        "",
        f"`python benchmarks/ws_load.py`: {clients} WebSocket clients x {messages} messages, each client its own "
        "agent, against `python app.py ws` on a fresh SQLite home; the LLM and embedding endpoint is the OpenAI "
        "wire-format fake in a process of its own, answering every chat request at once with one `send_message` "
        f"call. A bystander agent on its own connection sends one message at a time ({BYSTANDER_PAUSE} s apart) "
        "during the load. Latency: from sending `user_message` to `agent_response_end`. "
        f"Target: >= {TARGET_RATE:g} messages/s and p95 <= {TARGET_P95:g} s. "
        f"Measured {time.strftime('%Y-%m-%d')} on {cpu} cores ({platform.python_implementation()} "
        f"{platform.python_version()}); the machine was shared, so compare rows of one run.",
        "",
        "| code | messages/s | p50 | p95 | max | not answered | bystander p50 / p95 under load (n) "
        "| bystander p50 idle | server CPU per message |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        out.append(f"| {r['label']} {r['code']} | {r['rate']:.1f} | {r['p50']:.2f} s | {r['p95']:.2f} s "
                   f"| {r['max']:.2f} s | {r['bad']} / {r['messages']} | {r['by_p50']:.2f} s / {r['by_p95']:.2f} s "
                   f"({r['by_n']}) | {r['idle_p50'] * 1000:.0f} ms | {r['cpu_ms']:.0f} ms |")
    last = rows[-1]
    met = last["rate"] >= TARGET_RATE and last["p95"] <= TARGET_P95
    out += ["", f"Target {'met' if met else 'missed'} by {last['code']}: {last['rate']:.1f} messages/s, "
                f"p95 {last['p95']:.2f} s."]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--compare", type=Path, help="another checkout to measure first (the code before a change)")
    parser.add_argument("--py-spy", type=Path, help="sample this checkout's server with py-spy into this file")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--fake-llm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_llm:
        return serve_fake_llm()

    rows = []
    runs = [("before", args.compare.resolve())] if args.compare else []
    runs.append(("after" if args.compare else "this", ROOT))
    for label, checkout in runs:
        print(f"measuring {checkout} ...", file=sys.stderr, flush=True)
        result = measure(checkout, args.clients, args.messages, args.py_spy if checkout == ROOT else None)
        result["label"] = label
        print(json.dumps(result), file=sys.stderr, flush=True)
        rows.append(result)
    body = table(rows, args.clients, args.messages)
    print(body)
    if args.py_spy is not None and args.py_spy.exists():
        print("\n" + _top_frames(args.py_spy), file=sys.stderr)
    if not args.no_write:
        from benchmarks import sections

        sections.write_section(args.out, "ws-load", body)


if __name__ == "__main__":
    main()
