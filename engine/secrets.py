"""API keys saved from the UI: a file in the data home readable by its owner only.

Keys are write-only from the faces' point of view: they can be set or cleared
and their presence reported, never read back for display. At start-up the saved
keys fill in environment variables that are not already set, which is where
`engine.config.api_key` looks.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

SECRETS_FILE = "secrets.yaml"
KEY_NAMES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_COMPATIBLE_API_KEY")


def _path(home: Path) -> Path:
    return Path(home) / SECRETS_FILE


def load(home: Path) -> dict[str, str]:
    path = _path(home)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return {}
    return {k: str(v) for k, v in data.items() if k in KEY_NAMES and v}


def save(home: Path, name: str, value: str | None) -> None:
    """Set (or, with an empty value, clear) one key, and the process environment with it."""
    if name not in KEY_NAMES:
        raise ValueError(f"unknown key name {name!r}")
    data = load(home)
    if value:
        data[name] = value.strip()
        os.environ[name] = value.strip()
    else:
        data.pop(name, None)
        os.environ.pop(name, None)
    path = _path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    os.chmod(tmp, 0o600)
    tmp.write_text(yaml.safe_dump(data), encoding="utf-8")
    tmp.replace(path)


def apply(home: Path) -> None:
    """Fill unset environment variables from the saved keys."""
    for name, value in load(home).items():
        os.environ.setdefault(name, value)


def present(name: str) -> bool:
    return bool(os.environ.get(name))
