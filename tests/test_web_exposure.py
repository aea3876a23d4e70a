"""The web app cannot be made to read the server's files, tried over HTTP against `python app.py` itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from engine.errors import ConfigError
from tests.support import gradio_http
from tests.support.servers import free_port
from webapp.exposure import Exposure, Refused, is_exposed

ROOT = Path(__file__).resolve().parent.parent
FOLDER_LABEL = "…or a folder on this machine"


@pytest.fixture
def start_app(tmp_path, fake_openai):
    """`python app.py` in its own process over a fresh home; returns (base URL, home)."""
    procs = []

    def start(*args: str, env: dict[str, str] | None = None, name: str = "home"):
        home = tmp_path / name
        home.mkdir()
        (home / "config.yaml").write_text(yaml.safe_dump({
            "llm": {"endpoint_type": "openai-compatible", "model": "gpt-test", "endpoint": fake_openai.base_url},
            "embedding": {"endpoint_type": "openai-compatible", "model": "test-hash", "dim": 64,
                          "endpoint": fake_openai.base_url},
        }))
        (home / "secrets.yaml").write_text("OPENAI_API_KEY: sk-secret-in-the-home\n")
        port = free_port()
        full_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
                    **(env or {})}
        full_env.pop("OPENAI_API_KEY", None)
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--home", str(home), "--port", str(port),
                                 "--host", "127.0.0.1", *args], env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{base}config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.3)
        return base, home

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _load_handler(base: str):
    cfg = gradio_http.config(base)
    folder = gradio_http.component_id(cfg, FOLDER_LABEL)
    fn_index, inputs = gradio_http.handler_with_input(cfg, folder)
    return cfg, fn_index, inputs, folder


def _sources(home: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(home / "memgpt.db")
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sources")]
    finally:
        conn.close()


def _folder_request(inputs: list[int], folder_id: int, path: str) -> list:
    # [files, folder, source name, agent id state]: the handler's inputs in order.
    values = {folder_id: path}
    data = [values.get(i) for i in inputs]
    data[2] = "stolen"
    return data


@pytest.mark.parametrize("target", ["/etc", "home", "home-secrets"])
def test_a_default_app_reads_no_server_folder(start_app, target):
    base, home = start_app()
    cfg, fn_index, inputs, folder = _load_handler(base)
    shown = next(c for c in cfg["components"] if c["id"] == folder)
    assert shown["props"].get("visible") is False  # not offered ...
    path = {"/etc": "/etc", "home": str(home), "home-secrets": str(home / "secrets.yaml")}[target]
    reply = gradio_http.call(base, fn_index, _folder_request(inputs, folder, path))
    assert "--import-root" in gradio_http.refusal(reply)  # ... and refused when called anyway
    assert _sources(home) == []


def test_an_uploaded_file_must_come_from_the_upload_folder(start_app):
    base, home = start_app()
    _, fn_index, inputs, folder = _load_handler(base)
    data = [None] * len(inputs)
    data[0] = [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd"}]
    data[2] = "stolen"
    reply = gradio_http.call(base, fn_index, data)
    assert gradio_http.refusal(reply)
    assert _sources(home) == []


def test_a_space_offers_no_folder_even_with_an_import_root(start_app, tmp_path):
    root = tmp_path / "shared"
    root.mkdir()
    (root / "doc.md").write_text("Some shared notes about comets.")
    base, home = start_app("--import-root", str(root), env={"SPACE_ID": "someone/memgpt"})
    _, fn_index, inputs, folder = _load_handler(base)
    reply = gradio_http.call(base, fn_index, _folder_request(inputs, folder, str(root)))
    assert "public app" in gradio_http.refusal(reply)
    assert _sources(home) == []


def test_no_event_is_a_documented_api(start_app):
    base, _ = start_app()
    info = httpx.get(f"{base}gradio_api/info", timeout=30).json()
    assert info["named_endpoints"] == {} and info["unnamed_endpoints"] == {}


def test_the_data_home_cannot_be_an_import_root(tmp_path):
    home = tmp_path / "home"
    (home / "sub").mkdir(parents=True)
    with pytest.raises(ConfigError, match="inside the data home"):
        Exposure.build(exposed=False, roots=[str(home / "sub")], home=home)


def test_folders_only_under_the_root(tmp_path):
    home = tmp_path / "home"
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    home.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    policy = Exposure.build(exposed=False, roots=[str(root)], home=home)
    assert policy.folders_offered
    assert policy.check_folder(str(root / "docs")) == (root / "docs").resolve()
    assert policy.check_folder("docs") == (root / "docs").resolve()
    for bad in ("/etc", str(root / ".." / "outside"), str(root / "escape"), "../outside", str(home)):
        with pytest.raises(Refused):
            policy.check_folder(bad)
    above = Exposure.build(exposed=False, roots=[str(tmp_path)], home=home)
    with pytest.raises(Refused, match="data home"):
        above.check_folder(str(tmp_path))
    assert not Exposure.build(exposed=True, roots=[str(root)], home=home).folders_offered


def test_what_counts_as_exposed():
    assert not is_exposed("127.0.0.1", False, env={})
    assert is_exposed("127.0.0.1", True, env={})
    assert is_exposed("0.0.0.0", False, env={})
    assert is_exposed("127.0.0.1", False, env={"SPACE_ID": "a/b"})
