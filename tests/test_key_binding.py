"""Stored API keys go only to the endpoints they were configured for.

The attacker's way in is an endpoint of their choosing: a WebSocket
`create_agent` with `model_endpoint`, an imported agent file, a URL typed in
the Config tab. Each test runs a real server speaking the OpenAI wire format
that records the credentials it receives, and checks both sides: the
operator's endpoint gets the key (so the binding is proven, not just absence),
any other endpoint never does.
"""

from __future__ import annotations

import json

import pytest
import yaml

from engine import secrets
from engine.api import MemGPT
from engine.config import EmbeddingConfig, LLMConfig
from engine.embeddings import make_embedder
from engine.errors import ConfigError
from engine.llm.providers import make_provider
from tests.support.fake_openai import FakeOpenAI

SECRET = "sk-secret-test"
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, home):
    # set-then-delete so monkeypatch also undoes what secrets.save writes into os.environ
    for name, url_var in (("OPENAI_API_KEY", "OPENAI_BASE_URL"), ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"),
                          ("OPENAI_COMPATIBLE_API_KEY", "OPENAI_COMPATIBLE_BASE_URL")):
        for var in (name, url_var, f"MEMGPT_{name}_ENDPOINTS"):
            monkeypatch.setenv(var, "")
            monkeypatch.delenv(var)


@pytest.fixture
def attacker(embedder):
    server = FakeOpenAI(embed=lambda text: embedder.embed([text])[0]).start()
    yield server
    server.stop()


def chat_once(config: LLMConfig, server: FakeOpenAI) -> str:
    server.queue_chat({"content": "ok"})
    make_provider(config).complete(HELLO, [])
    return server.authorizations[-1]


def test_normalized_urls():
    n = secrets.normalize_url
    assert n("HTTPS://API.OpenAI.com/v1/") == n("https://api.openai.com:443/v1") == "https://api.openai.com:443/v1"
    assert n("http://h/v1") == "http://h:80/v1"
    for other in ("http://api.openai.com/v1", "https://api.openai.com:8443/v1", "https://api.openai.com/v2",
                  "https://api.openai.com/v1/x", "https://api.openai.com.evil.test/v1"):
        assert n(other) != n("https://api.openai.com/v1")
    # userinfo can make a foreign host look like a known one: never a match.
    assert n("https://api.openai.com@evil.test/v1") is None
    assert n("not a url") is None and n("file:///etc/passwd") is None


def test_compatible_key_goes_to_the_operators_endpoint_only(monkeypatch, fake_openai, attacker):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", fake_openai.base_url + "/")  # a trailing slash still matches
    assert chat_once(LLMConfig("openai-compatible", "m", fake_openai.base_url), fake_openai) == f"Bearer {SECRET}"
    assert chat_once(LLMConfig("openai-compatible", "m", attacker.base_url), attacker) == "Bearer not-needed"
    from engine.llm.client import make_client

    assert make_client("completions", attacker.base_url).api_key == "not-needed"
    assert make_client("completions", fake_openai.base_url).api_key == SECRET


def test_openai_key_goes_to_its_base_url_only(monkeypatch, fake_openai, attacker):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    # No endpoint: the operator's OPENAI_BASE_URL, as the openai package itself would pick.
    assert chat_once(LLMConfig("openai", "gpt-4o-mini"), fake_openai) == f"Bearer {SECRET}"
    # endpoint_type "openai" at a URL of the client's choosing: no key, so a local server still works.
    assert chat_once(LLMConfig("openai", "gpt-4o-mini", attacker.base_url), attacker) == "Bearer not-needed"
    assert chat_once(LLMConfig("openai-compatible", "m", attacker.base_url), attacker) == "Bearer not-needed"
    assert SECRET not in json.dumps(attacker.headers)


def test_an_unbound_url_that_wants_a_key_is_explained(monkeypatch, attacker):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    attacker.queue_chat((401, {"error": {"message": "Incorrect API key provided"}}))
    with pytest.raises(Exception) as caught:
        make_provider(LLMConfig("openai", "gpt-4o-mini", attacker.base_url)).complete(HELLO, [])
    assert "no key is bound to that URL" in str(caught.value)
    assert attacker.authorizations == ["Bearer not-needed"]


def test_azure_key_goes_to_its_endpoint_only(monkeypatch, fake_openai, attacker):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with pytest.raises(ConfigError, match="No Azure OpenAI key is bound"):
        make_provider(LLMConfig("azure", "gpt-4o", attacker.base_url))
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", attacker.base_url)
    attacker.queue_chat({"content": "ok"})
    make_provider(LLMConfig("azure", "gpt-4o", attacker.base_url)).complete(HELLO, [])
    assert attacker.authorizations == [SECRET]  # Azure's api-key header, at its configured endpoint


def test_embedder_at_a_chosen_endpoint_gets_no_key(monkeypatch, fake_openai, attacker):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", fake_openai.base_url)
    make_embedder(EmbeddingConfig("openai-compatible", "test-hash", 64, attacker.base_url)).embed(["x"])
    make_embedder(EmbeddingConfig("openai", "test-hash", 64, attacker.base_url)).embed(["x"])
    make_embedder(EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)).embed(["x"])
    assert attacker.authorizations == ["Bearer not-needed"] * 2
    assert fake_openai.authorizations == [f"Bearer {SECRET}"]


def test_saved_key_is_bound_to_the_endpoint_it_was_saved_for(home, fake_openai, attacker):
    assert secrets.save(home, "OPENAI_COMPATIBLE_API_KEY", SECRET, [fake_openai.base_url])
    saved = yaml.safe_load((home / "secrets.yaml").read_text())
    assert saved["OPENAI_COMPATIBLE_API_KEY"]["endpoints"] == [secrets.normalize_url(fake_openai.base_url)]
    assert chat_once(LLMConfig("openai-compatible", "m", fake_openai.base_url), fake_openai) == f"Bearer {SECRET}"
    assert chat_once(LLMConfig("openai-compatible", "m", attacker.base_url), attacker) == "Bearer not-needed"


def test_saved_keys_apply_at_start_and_never_replace_the_operators(home, monkeypatch, fake_openai, attacker):
    secrets.save(home, "OPENAI_API_KEY", "sk-typed-in-the-ui", [attacker.base_url])
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv(secrets.saved_marker("OPENAI_API_KEY"))
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # the operator's, set before start
    secrets.apply(home)
    assert chat_once(LLMConfig("openai", "gpt-4o-mini", attacker.base_url), attacker) == "Bearer not-needed"
    assert not secrets.save(home, "OPENAI_API_KEY", "sk-another", [attacker.base_url])
    assert chat_once(LLMConfig("openai", "gpt-4o-mini", attacker.base_url), attacker) == "Bearer not-needed"
    monkeypatch.delenv("OPENAI_API_KEY")  # a start without the operator's key: the saved one, for its URL only
    secrets.apply(home)
    assert chat_once(LLMConfig("openai", "gpt-4o-mini", attacker.base_url), attacker) == "Bearer sk-another"
    assert chat_once(LLMConfig("openai-compatible", "m", fake_openai.base_url), fake_openai) == "Bearer not-needed"


# ------------------------------------------------------------------ the Config tab

def config_args(provider, endpoint, key):
    return (provider, "gpt-test", endpoint, None, None, False, key,
            "local", "all-MiniLM-L6-v2", 384, "", "memgpt_chat", "sam", "basic")


def test_connection_test_sends_no_stored_key_to_a_typed_url(runtime, monkeypatch, fake_openai, attacker):
    from webapp.config_tab import test_connection

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", fake_openai.base_url)
    api = MemGPT(runtime=runtime)
    for provider in ("openai", "openai-compatible"):
        attacker.queue_chat({"content": "ready"})
        result = test_connection(api, *config_args(provider, attacker.base_url, "")).text
        assert "Connected" in result
    # Each test lists the models (no key to send: no header) and then chats with the placeholder.
    assert attacker.authorizations == ["", "Bearer not-needed"] * 2
    fake_openai.queue_chat({"content": "ready"})
    test_connection(api, *config_args("openai-compatible", fake_openai.base_url, ""))
    assert fake_openai.authorizations == [f"Bearer {SECRET}"] * 2


def test_connection_test_saves_a_typed_key_only_when_it_worked(runtime, home, fake_openai, attacker):
    from webapp.config_tab import test_connection

    api = MemGPT(runtime=runtime)
    attacker.queue_chat((401, {"error": {"message": "bad key"}}))
    result = test_connection(api, *config_args("openai-compatible", attacker.base_url, "sk-typed-1")).text
    assert "failed" in result
    # The typed key went to the typed URL (its /models, then the chat call), for the test.
    assert attacker.authorizations == ["Bearer sk-typed-1"] * 2
    assert not (home / "secrets.yaml").exists() or "sk-typed-1" not in (home / "secrets.yaml").read_text()
    assert not secrets.present("OPENAI_COMPATIBLE_API_KEY")

    fake_openai.queue_chat({"content": "ready"})
    outcome = test_connection(api, *config_args("openai-compatible", fake_openai.base_url, "sk-typed-2"))
    assert "Connected" in outcome.text and "sk-typed-2" not in outcome.html + outcome.note
    assert "sk-typed-2" in (home / "secrets.yaml").read_text()
    # Saved for the URL it was tested with, and for nothing else.
    assert chat_once(LLMConfig("openai-compatible", "m", attacker.base_url), attacker) == "Bearer not-needed"
    assert chat_once(LLMConfig("openai-compatible", "m", fake_openai.base_url), fake_openai) == "Bearer sk-typed-2"


def test_saving_settings_binds_a_typed_key_to_the_typed_urls(runtime, home, fake_openai, attacker):
    from engine import MemGPT
    from webapp.config_tab import save_config

    api = MemGPT(runtime=runtime)
    save_config(api, *config_args("openai-compatible", fake_openai.base_url, "sk-typed-3"))
    assert chat_once(LLMConfig("openai-compatible", "m", fake_openai.base_url), fake_openai) == "Bearer sk-typed-3"
    # Changing the URL without typing the key again does not carry the key along.
    save_config(api, *config_args("openai-compatible", attacker.base_url, ""))
    assert chat_once(runtime.settings.llm, attacker) == "Bearer not-needed"


def test_on_a_public_app_a_visitor_cannot_replace_a_saved_key(runtime, home, fake_openai, attacker):
    import gradio as gr

    from webapp.config_tab import save_config, test_connection

    api = MemGPT(runtime=runtime)
    save_config(api, *config_args("openai-compatible", fake_openai.base_url, "sk-operator"))  # at loopback: the operator
    before, config = (home / "secrets.yaml").read_text(), (home / "config.yaml").read_text()
    with pytest.raises(gr.Error, match="already saved on this server"):
        save_config(api, *config_args("openai-compatible", fake_openai.base_url, "sk-visitor-junk"), exposed=True)
    assert (home / "secrets.yaml").read_text() == before and (home / "config.yaml").read_text() == config
    fake_openai.queue_chat({"content": "ready"})
    outcome = test_connection(api, *config_args("openai-compatible", fake_openai.base_url, "sk-visitor-2"))
    assert "Connected" in outcome.text  # not exposed: the operator at the page replaces it
    assert "sk-visitor-2" in (home / "secrets.yaml").read_text()
    # Settings without a typed key still save on a public app; so does a key where none is saved yet.
    save_config(api, *config_args("openai-compatible", fake_openai.base_url, ""), exposed=True)
    secrets.save(home, "OPENAI_COMPATIBLE_API_KEY", None)
    save_config(api, *config_args("openai-compatible", fake_openai.base_url, "sk-first"), exposed=True)
    assert "sk-first" in (home / "secrets.yaml").read_text()


# ------------------------------------------------------------------ over the real WebSocket route

def test_websocket_agent_at_a_chosen_endpoint_never_sees_the_key(monkeypatch, settings, store, library, registry,
                                                                   fake_openai, attacker):
    from fastapi import FastAPI
    from websockets.sync.client import connect

    from engine.runtime import Runtime
    from tests.support.servers import serve_app
    from tests.test_websocket import exchange, send
    from webapp.websocket import add_route

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", fake_openai.base_url)
    settings.llm = LLMConfig("openai", "gpt-4o-mini")  # the operator's own: OpenAI with its key
    settings.embedding = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    app = FastAPI()
    add_route(app, Runtime(settings, store, library, registry), None)
    with serve_app(app) as port, connect(f"ws://127.0.0.1:{port}/ws") as ws:
        for endpoint_type in ("openai", "openai-compatible"):
            ws.send(json.dumps({"type": "command", "command": "create_agent", "config": {
                "name": f"mallory-{endpoint_type}", "model_endpoint_type": endpoint_type,
                "model_endpoint": attacker.base_url, "embedding_endpoint_type": "openai-compatible",
                "embedding_endpoint": attacker.base_url}}))
            assert json.loads(ws.recv(timeout=10))["status"] == "OK"
            attacker.queue_chat(send("hello"))
            frames = exchange(ws, {"type": "user_message", "message": "hi"})
            assert frames[-1]["type"] == "agent_response_end"
    assert any(path.endswith("/chat/completions") for path, _ in attacker.requests)
    assert attacker.authorizations and SECRET not in json.dumps(attacker.headers)


# ------------------------------------------------------------------ an imported agent file

def test_an_imported_agent_pointing_elsewhere_never_sees_the_key(monkeypatch, runtime, store, make_agent, fake_openai,
                                                                 attacker, embedder, tmp_path):
    """An agent file is a stranger's input too: its endpoint gets no stored key, the operator's still does."""
    from engine.agent import Agent, AgentOptions
    from engine.transfer import dump_agent, import_agent

    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", fake_openai.base_url)
    row = make_agent("original", llm=LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url))
    data = dump_agent(store, row.id)
    for endpoint_type in ("openai", "openai-compatible", "completions"):
        data["agent"]["name"] = f"mallory-{endpoint_type}"
        data["agent"]["llm_config"] = {"endpoint_type": endpoint_type, "model": "gpt-test",
                                       "endpoint": attacker.base_url}
        path = tmp_path / f"{endpoint_type}.json"
        path.write_text(json.dumps(data))
        imported = import_agent(store, path)
        agent = Agent.load(runtime, imported.agent.id, embedder=embedder,
                           options=AgentOptions(verify_first_message=False))
        attacker.queue_chat({"content": "ok"})
        list(agent.step("hello"))
    assert len(attacker.authorizations) >= 3
    assert SECRET not in json.dumps(attacker.headers)
    original = Agent.load(runtime, "original", embedder=embedder, options=AgentOptions(verify_first_message=False))
    fake_openai.queue_chat({"content": "ok"})
    list(original.step("hello"))
    assert fake_openai.authorizations[-1] == f"Bearer {SECRET}"
