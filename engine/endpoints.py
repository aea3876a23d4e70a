"""Which model and embedding endpoints a public app lets a visitor name.

On a public app (a Space, a share link, a server bound beyond loopback) the
endpoint of a new agent, a changed agent, an imported agent file or the saved
defaults comes from a stranger, and every chat turn or embedding then makes
the server send a request there. Left open, that is a way into the server's
own network: loopback, the LAN, a cloud's metadata address. So `MemGPT`, when
told it serves the public (`public=True` or `restrict_endpoints()`), checks
every endpoint it is asked to store by `EndpointGuard.check`:

- The operator's endpoints pass as they are, private or not: the base URLs of
  the environment (`OPENAI_BASE_URL`, `AZURE_OPENAI_ENDPOINT`,
  `OPENAI_COMPATIBLE_BASE_URL`) and the llm/embedding endpoints config.yaml held
  when the server started (`OperatorEndpoints`, taken once with the runtime).
  What the Config tab writes later is not the operator's word: a visitor may
  have written it.
- An endpoint some agent of this home already uses passes too: any visitor of
  a public app can already chat with that agent, so naming its endpoint again
  reaches nothing new (this is what lets Duplicate copy an operator's agent
  that runs on a private server). Existing agents are never re-checked.
- Anything else must be an http(s) URL whose host resolves to public addresses
  only, by the rule `http_request` uses (`engine.tools.handles.WebAccess`).
  The HTTP client would resolve the name again when the agent calls the model,
  so the check alone would not stop a rebinding DNS server: `PublicOnly`
  (`calls`, engine/llm/public_only.py) makes the runtime's calls connect only
  to addresses checked by the same rule at connection time.
- The `local` model's endpoint is a GGUF file the server opens: a visitor may
  only leave it blank (the shipped model) or name a file the operator or an
  existing agent already uses.

A refusal is a `ConfigError` saying what was refused and why; nothing is written.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping

from engine import secrets
from engine.config import EmbeddingConfig, LLMConfig, Settings
from engine.errors import ConfigError, ToolError
from engine.llm.public_only import PublicOnly

LOOKUP_TIMEOUT = 8.0  # seconds for the DNS answer of a visitor's host name
# The environment variables that name the operator's own endpoints (engine/secrets.py binds keys to them).
ENVIRONMENT_URLS = tuple(variable for variable, _ in secrets.KEYS.values())

Resolver = Callable[[str, int], Iterable[str]]  # the same shape as engine.llm.public_only.Resolver
Configs = Iterable[tuple[LLMConfig | None, EmbeddingConfig | None]]


def _url(endpoint_type: str, endpoint: str | None) -> str | None:
    from engine.llm.probe import base_url

    return base_url(endpoint_type, endpoint)[0]


def _file(path: str) -> str:
    return os.path.realpath(os.path.expanduser(path.strip()))


@dataclasses.dataclass(frozen=True)
class Reach:
    """Where configs send requests: normalized base URLs, and the model files they open."""

    urls: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()

    @classmethod
    def of(cls, configs: Configs) -> Reach:
        urls: set[str] = set()
        files: set[str] = set()
        for llm, embedding in configs:
            for config in (llm, embedding):
                if config is None:
                    continue
                if config.endpoint_type == "local":
                    # Only the model opens its endpoint as a file; the local embedder ignores it.
                    if isinstance(config, LLMConfig) and (config.endpoint or "").strip():
                        files.add(_file(config.endpoint or ""))
                    continue
                url = secrets.normalize_url(_url(config.endpoint_type, config.endpoint))
                if url:
                    urls.add(url)
        return cls(frozenset(urls), frozenset(files))


@dataclasses.dataclass(frozen=True)
class OperatorEndpoints:
    """The endpoints of the home's settings as the server started with them (config.yaml, the environment)."""

    reach: Reach = Reach()

    @classmethod
    def snapshot(cls, settings: Settings) -> OperatorEndpoints:
        return cls(Reach.of([(settings.llm, settings.embedding)]))


def _lookup(host: str, port: int) -> list[str]:
    # getaddrinfo has no timeout of its own; a resolver that hangs must not hold the request.
    from engine.llm.probe import _resolve

    try:
        return _resolve(host, port, LOOKUP_TIMEOUT)
    except concurrent.futures.TimeoutError:
        raise OSError(f"no answer within {LOOKUP_TIMEOUT:g} s") from None


class EndpointGuard:
    """Refuses endpoints a visitor of a public app may not name (see the module docstring)."""

    def __init__(self, operator: OperatorEndpoints, *, resolver: Resolver | None = None,
                 env: Mapping[str, str] | None = None):
        self.operator = operator
        self.resolver = resolver or _lookup
        self._env = env
        # The rule of the calls themselves: the same resolver, and the operator's endpoints connected as usual.
        self.calls = PublicOnly(self.resolver, self._operators_urls)

    def _environment_urls(self) -> set[str]:
        env = os.environ if self._env is None else self._env
        urls = {secrets.normalize_url(env.get(name)) for name in ENVIRONMENT_URLS}
        urls.add(secrets.normalize_url(secrets.OPENAI_URL))  # a fixed public address: no lookup needed
        return {u for u in urls if u}

    def _operators_urls(self) -> set[str]:
        return set(self.operator.reach.urls) | self._environment_urls()

    def check(self, llm: LLMConfig | None, embedding: EmbeddingConfig | None,
              in_use: Callable[[], Configs] = lambda: ()) -> None:
        """Raise ConfigError unless both configs reach only allowed places. `in_use`: the existing agents' configs."""
        existing: Reach | None = None
        for config, what in ((llm, "model"), (embedding, "embedder")):
            if config is None:
                continue
            if config.endpoint_type == "local":
                if isinstance(config, LLMConfig) and (config.endpoint or "").strip():
                    if existing is None:
                        existing = Reach.of(in_use())
                    self._check_file(config.endpoint or "", existing)
                continue
            raw = _url(config.endpoint_type, config.endpoint)
            if raw is None:
                continue  # nothing to reach: building the provider says what is missing
            url = secrets.normalize_url(raw)
            if url is not None and url in self._operators_urls():
                continue
            if url is not None:
                if existing is None:
                    existing = Reach.of(in_use())
                if url in existing.urls:
                    continue
            self._check_public(raw.strip(), url, what)

    def _check_file(self, path: str, existing: Reach) -> None:
        from engine.llm.local import default_model_path

        wanted = _file(path)
        allowed = set(self.operator.reach.files) | set(existing.files)
        try:
            allowed.add(_file(str(default_model_path())))
        except Exception:  # the shipped model's package is missing: then only blank means it
            pass
        if wanted not in allowed:
            raise ConfigError("A local model's file cannot be chosen on a public app; leave the endpoint blank for "
                              "the built-in model (the operator sets others in config.yaml).")

    def _check_public(self, raw: str, url: str | None, what: str) -> None:
        from engine.tools.handles import WebAccess

        shown = raw[:200]
        if url is None:
            raise ConfigError(f"The {what} endpoint {shown!r} is not a usable base URL: give http:// or https:// "
                              "and a host, with no user name.")
        try:
            WebAccess(allow_private=False, resolver=self.resolver).check_url(raw)
        except ToolError as e:
            raise ConfigError(f"The {what} endpoint {shown} is refused: {e} This app is reachable by others, so "
                              "the endpoints it is given must be public addresses.") from None
