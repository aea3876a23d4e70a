"""Starting servers on loopback for tests: a free port, an ASGI app on a thread, `python app.py` as a process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(demo, **kwargs) -> int:
    """Launch a Gradio app on a free loopback port without blocking; returns the port.

    As the app does (webapp/serve.py launch_checked, which retries when Gradio's own startup
    check times out on a loaded machine), and on a new port when another process took the
    free one first (tests in parallel).
    """
    from webapp.serve import launch_checked

    for attempt in range(3):
        port = free_port()
        try:
            launch_checked(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                           **kwargs)
            return port
        except OSError:
            demo.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def serve_app(app, **config) -> Iterator[int]:
    """Serve an ASGI app with uvicorn on a daemon thread; yields its port, stops it after."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def fake_home(home: Path, base_url: str) -> Path:
    """Create a data home whose config points chat and embeddings at a fake OpenAI server."""
    import yaml

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump({
        "llm": {"endpoint_type": "openai-compatible", "model": "gpt-test", "endpoint": base_url},
        "embedding": {"endpoint_type": "openai-compatible", "model": "test-hash", "dim": 64, "endpoint": base_url},
    }))
    return home


def app_home(tmp_path: Path, monkeypatch, fake) -> Path:
    """A fresh data home whose defaults point at the fake OpenAI server `fake`, and Gradio's environment for a test."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return fake_home(tmp_path / "home", fake.base_url)


@contextlib.contextmanager
def built_app(home: Path):
    """(MemGPT, the web app's Blocks) over `home`, built in-process and not launched: its handlers are called directly."""
    from engine.api import MemGPT
    from engine.runtime import open_runtime
    from webapp.app import build_demo

    runtime = open_runtime(home)
    demo = build_demo(runtime)
    try:
        yield MemGPT(runtime=runtime), demo
    finally:
        demo.close()
        runtime.close()


def app_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    env.update(extra)
    return env


class AppProcess:
    def __init__(self, home: Path, web: bool = False, env: dict[str, str] | None = None):
        """`python app.py ws`, or with `web` the whole web app (its /ws mounted on it)."""
        self.port = free_port()
        face = [] if web else ["ws"]
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), *face, "--home", str(home), "--host", "127.0.0.1",
             "--port", str(self.port)], env=env or app_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 90
        while True:  # ready when a WebSocket handshake succeeds
            assert self.proc.poll() is None, self.proc.stdout.read()
            try:
                with connect(self.url, open_timeout=2):
                    break
            except (OSError, InvalidStatus, TimeoutError):
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
