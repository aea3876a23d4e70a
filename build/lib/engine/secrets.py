"""API keys and the endpoints each one may be sent to.

A key is never looked up by endpoint type alone: every key is bound to the base
URLs it was configured for, and `key_for()` hands it out only for one of them.
An agent's endpoint can come from a stranger (a WebSocket `create_agent`, an
imported agent file, a URL typed in the Config tab), so without the binding the
server would send its own key to whatever URL it was given.

Where the bindings come from:

- Keys the operator sets in the environment are bound by the environment too:
  `OPENAI_API_KEY` to https://api.openai.com/v1 and to `OPENAI_BASE_URL` if set;
  `AZURE_OPENAI_API_KEY` to `AZURE_OPENAI_ENDPOINT`; `OPENAI_COMPATIBLE_API_KEY`
  to `OPENAI_COMPATIBLE_BASE_URL`. config.yaml binds nothing: the Config tab
  can rewrite it, so it is not proof of the operator's intent.
- Keys saved from the UI or `configure` live in secrets.yaml (0600) together
  with the endpoints they were saved for, and are bound to exactly those. At
  start-up they fill environment variables the operator left unset, with a
  companion variable holding their endpoints; an operator's key always wins.

URLs are compared normalized: scheme and host lowercased, default port made
explicit, path without its trailing slash. Another scheme, host, port or path
gets no key. Keys are write-only for the faces: set, cleared, reported present.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from urllib.parse import urlsplit

import yaml

SECRETS_FILE = "secrets.yaml"
OPENAI_URL = "https://api.openai.com/v1"

# key name -> (environment variable naming the operator's endpoint for it, endpoint when that is unset)
KEYS: dict[str, tuple[str, str | None]] = {
    "OPENAI_API_KEY": ("OPENAI_BASE_URL", OPENAI_URL),
    "AZURE_OPENAI_API_KEY": ("AZURE_OPENAI_ENDPOINT", None),
    "OPENAI_COMPATIBLE_API_KEY": ("OPENAI_COMPATIBLE_BASE_URL", None),
}
KEY_NAMES = tuple(KEYS)

# Which key each endpoint type reads, own key first. A fallback is safe because
# a key is still only handed out for a URL it is bound to.
KEY_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "azure": ("AZURE_OPENAI_API_KEY", "OPENAI_API_KEY"),
    "openai-compatible": ("OPENAI_COMPATIBLE_API_KEY", "OPENAI_API_KEY"),
    "completions": ("OPENAI_COMPATIBLE_API_KEY", "OPENAI_API_KEY"),
}


def saved_marker(name: str) -> str:
    """The environment variable listing the endpoints of a key that came from secrets.yaml."""
    return f"MEMGPT_{name}_ENDPOINTS"


def normalize_url(url: str | None) -> str | None:
    """`scheme://host:port/path`, or None for something that is not an absolute http(s) URL."""
    if not url or not str(url).strip():
        return None
    try:
        parts = urlsplit(str(url).strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    # userinfo in a base URL is a classic way to make a foreign host look like a known one.
    if scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        return None
    port = port or (443 if scheme == "https" else 80)
    return f"{scheme}://{parts.hostname.lower()}:{port}{parts.path.rstrip('/')}"


def _norm_all(urls: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(u for u in map(normalize_url, urls) if u))


def bound_endpoints(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The normalized base URLs key `name` may be sent to."""
    env = os.environ if env is None else env
    marker = env.get(saved_marker(name))
    if marker is not None:
        return _norm_all(marker.split())
    url_var, default = KEYS[name]
    return _norm_all([default, env.get(url_var)])


def key_for(endpoint_type: str, base_url: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The key to send to `base_url` for this endpoint type, or None when no key is bound to that URL."""
    env = os.environ if env is None else env
    target = normalize_url(base_url)
    if target is None:
        return None
    for name in KEY_FOR_TYPE.get(endpoint_type, ()):
        value = env.get(name)
        if value and target in bound_endpoints(name, env):
            return value
    return None


# ------------------------------------------------------------------ the file

def _path(home: Path) -> Path:
    return Path(home) / SECRETS_FILE


def load(home: Path) -> dict[str, dict]:
    """Saved keys: name -> {"key": value, "endpoints": [normalized URLs]}."""
    path = _path(home)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return {}
    if not isinstance(data, dict):
        return {}
    saved = {}
    for name, entry in data.items():
        if name not in KEYS or not entry:
            continue
        if isinstance(entry, str):
            # Files written before keys were bound: only the OpenAI key has an endpoint beyond doubt.
            saved[name] = {"key": entry, "endpoints": _norm_all([KEYS[name][1]])}
        elif isinstance(entry, dict) and entry.get("key"):
            saved[name] = {"key": str(entry["key"]), "endpoints": _norm_all(entry.get("endpoints") or [])}
    return saved


def _config_endpoints(home: Path, name: str) -> list[str | None]:
    """The endpoints config.yaml names for the endpoint types that read key `name`."""
    from engine.config import load_settings
    from engine.errors import ConfigError

    try:
        settings = load_settings(home, env={})
    except ConfigError:
        return []
    urls = []
    for cfg in (settings.llm, settings.embedding):
        if KEY_FOR_TYPE.get(cfg.endpoint_type, ("",))[0] == name:
            urls.append(cfg.endpoint or (OPENAI_URL if cfg.endpoint_type == "openai" else None))
    return urls


def save(home: Path, name: str, value: str | None, endpoints: Iterable[str | None] | None = None,
         env: MutableMapping[str, str] | None = None) -> bool:
    """Set (or, with an empty value, clear) one key and the endpoints it is for.

    `endpoints` None means the ones the home's config.yaml names for this key's
    endpoint types (what `configure` just wrote at the operator's terminal); the
    web app always passes them. Returns whether the key is in effect now: a key
    the operator set in the environment is never replaced by a saved one.
    """
    if name not in KEYS:
        raise ValueError(f"unknown key name {name!r}")
    env = os.environ if env is None else env
    data = load(home)
    value = (value or "").strip()
    if value:
        urls = _norm_all(_config_endpoints(home, name) if endpoints is None else endpoints)
        if not urls:
            raise ValueError(f"{name} needs the endpoint it is for; a key bound to nothing would never be sent.")
        data[name] = {"key": value, "endpoints": urls}
    else:
        data.pop(name, None)
    path = _path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    os.chmod(tmp, 0o600)
    tmp.write_text(yaml.safe_dump(data), encoding="utf-8")
    tmp.replace(path)
    if _operator_set(name, env):
        return False
    if value:
        env[name] = value
        env[saved_marker(name)] = " ".join(data[name]["endpoints"])
    else:
        env.pop(name, None)
        env.pop(saved_marker(name), None)
    return bool(value)


def _operator_set(name: str, env: Mapping[str, str]) -> bool:
    return bool(env.get(name)) and saved_marker(name) not in env


def apply(home: Path, env: MutableMapping[str, str] | None = None) -> None:
    """Fill in the keys the operator did not set in the environment, each with its endpoints."""
    env = os.environ if env is None else env
    for name, entry in load(home).items():
        if _operator_set(name, env):
            continue
        env[name] = entry["key"]
        env[saved_marker(name)] = " ".join(entry["endpoints"])


def present(name: str) -> bool:
    return bool(os.environ.get(name))
