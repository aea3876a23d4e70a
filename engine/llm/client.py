"""Building the `openai` client: the only place in the engine that does.

OpenAI, Azure OpenAI and every OpenAI-compatible server (Ollama, llama.cpp,
vLLM, LM Studio...) are reached through the same client with a different
`base_url`.

Keys: a stored key is sent only to a base URL it is bound to
(`engine.secrets`); an `api_key` passed in is the caller's own and is used as
given. Anything else gets the placeholder `NO_KEY`, which local servers ignore
and real providers refuse with a 401 that the provider explains. Every
argument the `openai` package would otherwise fill from the environment (key,
base URL, Azure endpoint) is passed explicitly, so it never picks a key itself.

The client's HTTP layer also enforces the deadline of `engine.llm.retry`
(each timeout shrinks to the time left) and turns a reply that is not JSON
(a proxy's HTML error page, a web UI at the wrong URL) into words.

Clients are built once per process (`engine.llm.cache`), keyed by what defines
them: endpoint type, base URL, API version, timeout, retries and the key that
is sent. The key is resolved (and its binding checked) on every call, before
the cache is asked, and the cache compares only a salted digest of it; so a
key reaches only the client of an endpoint it is bound to, and a key changed in
the Config tab builds a new client on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import re
from typing import Any

import httpx2
import openai

from engine import config as config_mod
from engine import secrets
from engine.errors import ConfigError
from engine.llm import retry
from engine.llm.cache import BoundedCache
from engine.llm.public_only import PublicOnly, Resolver

DEFAULT_TIMEOUT = 60.0
AZURE_API_VERSION = "2024-10-21"
NO_KEY = "not-needed"
SNIPPET_CHARS = 200
_READ_CAP = 64_000  # enough of an error page to quote; the rest is never needed
CACHE_SIZE = 32

_clients: BoundedCache[openai.OpenAI] = BoundedCache(CACHE_SIZE)
# Per process and random: the digests in cache keys say nothing about a key outside this process.
_DIGEST_SALT = os.urandom(16)


class NotJSONReply(openai.OpenAIError):
    """A reply that is not the JSON the API speaks. An `OpenAIError` so the client passes it through unwrapped."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def openai_base_url(endpoint: str | None) -> str:
    """Where an `openai` endpoint with this setting goes (the package's own default order)."""
    return (endpoint or "").strip() or os.environ.get("OPENAI_BASE_URL") or secrets.OPENAI_URL


_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def _snippet(text: str) -> str:
    plain = html.unescape(_TAG.sub(" ", _SCRIPT.sub(" ", text)))
    plain = " ".join(plain.split())
    return plain[:SNIPPET_CHARS] + ("..." if len(plain) > SNIPPET_CHARS else "")


def describe_non_json(url: str, status: int, content_type: str, body: str) -> str:
    """A reply that is not JSON, in words a user can act on."""
    looks_html = "html" in content_type or body.lstrip()[:15].lower().startswith(("<!doctype", "<html"))
    what = "an HTML page" if looks_html else (f"'{content_type}'" if content_type else "a reply without a content type")
    snippet = _snippet(body)
    quoted = f": {snippet}" if snippet else " (empty)"
    return (f"The server at {url} answered with {what} instead of JSON (status {status}){quoted}; "
            "check the base URL.")


def _request_hook(request: httpx2.Request) -> None:
    left = retry.time_left()
    if left is None:
        return
    if left <= 0:
        raise httpx2.ConnectTimeout("the call's deadline has passed", request=request)
    current = request.extensions.get("timeout") or dict.fromkeys(("connect", "read", "write", "pool"))
    request.extensions["timeout"] = {k: left if v is None else min(v, left) for k, v in current.items()}


def _response_hook(response: httpx2.Response) -> None:
    if 300 <= response.status_code < 400:
        url = response.request.url
        raise NotJSONReply(
            f"The server at {url.scheme}://{url.host}{url.path} redirects (status {response.status_code}) to "
            f"{response.headers.get('location', 'another address')}; use that as the base URL.",
            response.status_code,
        )
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.endswith("json") or content_type == "text/event-stream":
        return
    # An error status with a plain-text body is left to the client: context-length refusals come that way.
    if response.status_code >= 400 and "html" not in content_type:
        return
    raw = b""
    for chunk in response.iter_bytes():
        raw += chunk
        if len(raw) >= _READ_CAP:
            break
    response.close()
    url = response.request.url
    where = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "") + url.path
    message = describe_non_json(where, response.status_code, content_type, raw.decode("utf-8", "replace"))
    raise NotJSONReply(message, response.status_code)


def _http_client(timeout: float, checked: Resolver | None = None) -> httpx2.Client:
    # Event hooks rather than a transport: they also run when an environment proxy supplies the transport.
    # No redirects: a key header (Azure's `api-key` is not stripped across hosts) must not follow one.
    # `checked`: a public app's call, connected only to the checked addresses (engine/llm/public_only.py);
    # giving a transport also turns environment proxies off, which would resolve the name again.
    transport = PublicOnly(checked).transport() if checked is not None else None
    return httpx2.Client(timeout=timeout, follow_redirects=False, transport=transport,
                         event_hooks={"request": [_request_hook], "response": [_response_hook]})


def _digest(key: str) -> bytes:
    return hmac.new(_DIGEST_SALT, key.encode("utf-8"), hashlib.sha256).digest()


def _cached(kind: str, endpoint_type: str, url: str, key: str, timeout: float, max_retries: int,
            api_version: str | None = None, public_only: PublicOnly | None = None) -> openai.OpenAI:
    checked = public_only.resolver if public_only is not None and public_only.applies(url) else None

    def build() -> openai.OpenAI:
        common: dict[str, Any] = dict(api_key=key, timeout=timeout, max_retries=max_retries,
                                      http_client=_http_client(timeout, checked))
        if kind == "azure":
            return openai.AzureOpenAI(azure_endpoint=url, api_version=api_version, **common)
        return openai.OpenAI(base_url=url, **common)

    cache_key = (kind, endpoint_type, url, api_version, _digest(key), float(timeout), max_retries, checked)
    return _clients.get_or_build(cache_key, build)


def make_client(
    endpoint_type: str,
    endpoint: str | None = None,
    *,
    api_key: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = 0,
    public_only: PublicOnly | None = None,
) -> openai.OpenAI:
    """A configured client (shared: built once per process for these settings and key).

    Retries are ours (with events), so the client's are off by default.
    `api_key` is a key the caller brought for this very endpoint (a URL and key
    typed together); without it, only a key bound to the endpoint is sent.
    `public_only`: a public app's rule; a URL it applies to gets a client that
    connects only to checked public addresses.
    """
    own_key = (api_key or "").strip() or None
    if endpoint_type == "azure":
        if not endpoint:
            raise ConfigError("Azure OpenAI needs its endpoint URL (https://<resource>.openai.azure.com).")
        key = own_key or config_mod.api_key("azure", endpoint)
        if not key:
            raise ConfigError(
                f"No Azure OpenAI key is bound to {endpoint}: set AZURE_OPENAI_API_KEY with "
                "AZURE_OPENAI_ENDPOINT set to this endpoint, or save a key for it in the Config tab."
            )
        version = os.environ.get("AZURE_OPENAI_API_VERSION", AZURE_API_VERSION)
        return _cached("azure", endpoint_type, endpoint, key, timeout, max_retries, version, public_only)
    if endpoint_type == "openai":
        base_url = openai_base_url(endpoint)
        key = own_key or config_mod.api_key("openai", base_url)
        if not key and secrets.normalize_url(base_url) == secrets.normalize_url(secrets.OPENAI_URL):
            raise ConfigError("OpenAI needs an API key: set OPENAI_API_KEY.")
        # Another URL with no key bound to it is most likely a local server speaking OpenAI's API.
        return _cached("openai", endpoint_type, base_url, key or NO_KEY, timeout, max_retries, None, public_only)
    if endpoint_type in ("openai-compatible", "completions"):
        if not endpoint:
            raise ConfigError(f"An {endpoint_type} endpoint needs a base URL (for example http://localhost:8080/v1).")
        key = own_key or config_mod.api_key(endpoint_type, endpoint)
        return _cached("openai", endpoint_type, endpoint, key or NO_KEY, timeout, max_retries, None, public_only)
    raise ConfigError(f"Endpoint type {endpoint_type!r} is not reached through the openai client.")
