"""`pip install .` gives the importable packages, the shipped presets and the `memgpt` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_built_package_installs_and_runs(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("*.whl"))
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    # Outside the checkout, with only the installed copy (and the test environment's dependencies) to import.
    env = {**os.environ, "PYTHONPATH": str(target), "MEMGPT_HOME": str(tmp_path / "home")}
    env.pop("OPENAI_API_KEY", None)
    probe = ("import engine, webapp, cli; from engine import MemGPT; from engine.presets import SHIPPED; "
             "print(engine.__file__); print(SHIPPED); "
             "m = MemGPT(); print(sorted(m.library.preset_names())); print(m.preset('memgpt_chat').functions[0]); "
             "m.close()")
    ran = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith(str(target)) and lines[1].startswith(str(target))
    assert "memgpt_chat" in lines[2] and lines[3] == "send_message"
    script = target / "bin" / "memgpt"
    helped = subprocess.run([str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "serve the web app" in helped.stdout and "backup" in helped.stdout


def test_the_engine_starts_without_pandas_and_pandas_still_imports(tmp_path):
    """sqlite-utils would import pandas (0.6 s of every terminal command's start); gradio still gets it."""
    probe = ("import sys; from engine import MemGPT; m = MemGPT(); m.create_agent('ada'); "
             "print('pandas' in sys.modules); import pandas, sqlite_utils.db; print(pandas.Timestamp is not None); "
             "m.close()")
    env = {**os.environ, "MEMGPT_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    ran = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["False", "True"]
