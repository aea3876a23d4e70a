"""Clients and providers are built once per process, and a changed key or URL still takes effect at once.

The cache must not loosen the key binding of engine/secrets.py: each test runs
real servers speaking the OpenAI wire format and checks which credentials
reached which one.
"""

from __future__ import annotations

import json
import threading

import pytest

from engine import secrets
from engine.config import EmbeddingConfig, LLMConfig
from engine.embeddings import make_embedder
from engine.llm import client as client_mod
from engine.llm.cache import BoundedCache
from engine.llm.client import make_client
from engine.llm.providers import make_provider
from engine.runtime import Runtime
from tests.support.fake_openai import FakeOpenAI

SECRET = "sk-cache-test-1"
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, home):
    # set-then-delete so monkeypatch also undoes what secrets.save writes into os.environ
    for name in secrets.KEY_NAMES:
        for var in (name, secrets.KEYS[name][0], secrets.saved_marker(name)):
            monkeypatch.setenv(var, "")
            monkeypatch.delenv(var)


@pytest.fixture
def other(embedder):
    server = FakeOpenAI(embed=lambda text: embedder.embed([text])[0]).start()
    yield server
    server.stop()


def test_same_settings_share_one_client_and_provider(fake_openai):
    config = LLMConfig("openai-compatible", "m", fake_openai.base_url)
    assert make_provider(config) is make_provider(LLMConfig("openai-compatible", "m", fake_openai.base_url))
    assert make_client("openai-compatible", fake_openai.base_url) is make_client("openai-compatible",
                                                                                 fake_openai.base_url)
    embedding = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    assert make_embedder(embedding)._client is make_embedder(embedding)._client  # type: ignore[attr-defined]
    # Whatever defines the client is part of its key.
    base = make_client("openai-compatible", fake_openai.base_url)
    assert make_client("openai-compatible", fake_openai.base_url, timeout=5) is not base
    assert make_client("openai-compatible", fake_openai.base_url, max_retries=3) is not base
    assert make_client("openai-compatible", fake_openai.base_url, api_key="sk-typed") is not base
    assert make_provider(LLMConfig("openai-compatible", "m2", fake_openai.base_url)) is not make_provider(config)
    assert make_provider(LLMConfig("openai-compatible", "m", fake_openai.base_url, context_window=4096)
                         ) is not make_provider(config)


def test_a_key_changed_in_the_config_tab_is_sent_on_the_next_message(home, fake_openai, settings, store, library,
                                                                      registry):
    """The path a user takes: an agent answering per request, its key saved, replaced and cleared meanwhile."""
    from engine.api import MemGPT

    api = MemGPT(runtime=Runtime(settings, store, library, registry))
    agent = api.create_agent("Ada", llm=LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url),
                             embedding=EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url))

    def message() -> str:
        call = {"id": "c1", "type": "function",
                "function": {"name": "send_message", "arguments": json.dumps({"message": "ok"})}}
        fake_openai.queue_chat({"content": "thinking", "tool_calls": [call]})
        api.user_message(agent.id, "hello")
        chats = [auth for (path, _), auth in zip(fake_openai.requests, fake_openai.authorizations, strict=True)
                 if path.endswith("/chat/completions")]
        return chats[-1]

    assert message() == "Bearer not-needed"
    for key in (SECRET, "sk-cache-test-2"):
        secrets.save(home, "OPENAI_COMPATIBLE_API_KEY", key, [fake_openai.base_url])
        assert message() == f"Bearer {key}"
    secrets.save(home, "OPENAI_COMPATIBLE_API_KEY", "", None)
    assert message() == "Bearer not-needed"


def test_a_cached_client_never_carries_a_key_to_another_endpoint(home, monkeypatch, fake_openai, other):
    secrets.save(home, "OPENAI_COMPATIBLE_API_KEY", SECRET, [fake_openai.base_url])
    for server, expected in ((fake_openai, f"Bearer {SECRET}"), (other, "Bearer not-needed"),
                             (fake_openai, f"Bearer {SECRET}"), (other, "Bearer not-needed")):
        server.queue_chat({"content": "ok"})
        make_provider(LLMConfig("openai-compatible", "m", server.base_url)).complete(HELLO, [])
        assert server.authorizations[-1] == expected
    # The same key bound to the other URL instead: the first one's cached client is not handed out for it.
    secrets.save(home, "OPENAI_COMPATIBLE_API_KEY", SECRET, [other.base_url])
    assert make_client("openai-compatible", fake_openai.base_url).api_key == client_mod.NO_KEY
    assert make_client("openai-compatible", other.base_url).api_key == SECRET


def test_cache_keys_and_reprs_hold_no_key(fake_openai):
    make_client("openai-compatible", fake_openai.base_url, api_key=SECRET)
    keys = list(client_mod._clients._items)
    assert keys and not any(SECRET in str(part) for key in keys for part in key)
    assert SECRET not in repr(client_mod._clients)


def test_bounded_and_thread_safe():
    cache: BoundedCache[object] = BoundedCache(4)
    for i in range(10):
        cache.get_or_build(i, object)
    assert len(cache) == 4 and sorted(cache._items) == [6, 7, 8, 9]
    cache.get_or_build(6, object)  # used again: now the newest, so 7 goes next
    cache.get_or_build(10, object)
    assert sorted(cache._items) == [6, 8, 9, 10]

    builds = []
    results = []
    barrier = threading.Barrier(16)

    def build():
        builds.append(1)
        return object()

    def ask():
        barrier.wait()
        results.append(cache.get_or_build("shared", build))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len({id(r) for r in results}) == 1


def test_many_endpoints_stay_within_the_bound():
    for port in range(client_mod.CACHE_SIZE + 2):
        make_client("openai-compatible", f"http://127.0.0.1:{port + 1}/v1", timeout=1.5)
    assert len(client_mod._clients) <= client_mod.CACHE_SIZE
