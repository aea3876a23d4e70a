"""A public app refuses model and embedding endpoints that lead into the server's own network.

Real parts: a real store, the real MemGPT client, the real address rule of
`http_request`. DNS is replaced by a resolver hook where a test needs a host
name to answer something; nothing here connects to the internet (a public
literal address is only checked, never called).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest

from engine import MemGPT
from engine.config import CONFIG_FILE, EmbeddingConfig, LLMConfig, load_settings
from engine.errors import ConfigError
from engine.runtime import Runtime

PUBLIC = "http://93.184.215.14/v1"  # a global address: allowed, and never contacted by these tests
REFUSED = [
    "http://127.0.0.1:8080/v1",
    "http://10.1.2.3/v1",
    "http://192.168.1.5:11434/v1",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]:8000/v1",
    "http://localhost:8080/v1",
    "http://inside.example.test/v1",  # resolves to loopback through the hook below
    "http://user@93.184.215.14/v1",  # user@ is never a usable base URL
]
NAMES = {"inside.example.test": ["127.0.0.1"], "outside.example.test": ["93.184.215.14"],
         "localhost": ["127.0.0.1", "::1"]}


def resolve(host, port):
    if host not in NAMES:
        raise OSError(f"{host} not found")
    return NAMES[host]


@pytest.fixture(autouse=True)
def no_operator_environment(monkeypatch):
    for name in ("OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "OPENAI_COMPATIBLE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def open_api(settings, store, library, registry):
    """A client over a runtime opened now (what the operator's config.yaml says is taken at this point)."""

    def make(public=True, settings=settings) -> MemGPT:
        api = MemGPT(runtime=Runtime(settings, store, library, registry))
        if public:
            api.restrict_endpoints(resolver=resolve)
        return api

    return make


def compatible(url: str | None, model="m") -> LLMConfig:
    return LLMConfig(endpoint_type="openai-compatible", model=model, endpoint=url)


def embedder_at(url: str | None) -> EmbeddingConfig:
    return EmbeddingConfig(endpoint_type="openai-compatible", model="e", dim=64, endpoint=url)


@pytest.mark.parametrize("url", REFUSED)
def test_a_new_agent_may_not_use_a_private_model_endpoint(open_api, url):
    api = open_api()
    with pytest.raises(ConfigError, match="refused|not a usable base URL"):
        api.create_agent("ada", llm=compatible(url))
    assert api.list_agents() == []


@pytest.mark.parametrize("url", REFUSED)
def test_a_new_agent_may_not_use_a_private_embedding_endpoint(open_api, url):
    api = open_api()
    with pytest.raises(ConfigError, match="embedder endpoint"):
        api.create_agent("ada", llm=compatible(PUBLIC), embedding=embedder_at(url))
    assert api.list_agents() == []


def test_the_refusal_says_what_and_why(open_api):
    with pytest.raises(ConfigError) as caught:
        open_api().create_agent("ada", llm=compatible("http://169.254.169.254/v1"))
    words = str(caught.value)
    assert "169.254.169.254" in words and "link-local" in words and "public" in words


@pytest.mark.parametrize("url", [PUBLIC, "https://outside.example.test/v1"])
def test_public_addresses_are_allowed(open_api, url):
    api = open_api()
    made = api.create_agent("ada", llm=compatible(url), embedding=embedder_at(url))
    assert made.llm.endpoint == url


def test_a_native_backend_with_no_endpoint_would_go_to_localhost(open_api):
    # llamacpp's default base URL is http://localhost:8080: a visitor picking the type alone reaches loopback.
    with pytest.raises(ConfigError, match="localhost"):
        open_api().create_agent("ada", llm=LLMConfig(endpoint_type="llamacpp", model="m"))


def test_a_local_app_keeps_every_endpoint(open_api):
    api = open_api(public=False)
    assert api.create_agent("ada", llm=compatible("http://127.0.0.1:9/v1")).llm.endpoint == "http://127.0.0.1:9/v1"


def test_the_operators_environment_urls_are_allowed(open_api, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://10.9.9.9:8000/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    api = open_api()
    assert api.create_agent("ada", llm=compatible("http://10.9.9.9:8000/v1/")).name == "ada"
    # The openai type with no endpoint goes to OPENAI_BASE_URL: the operator's own.
    assert api.create_agent("bo", llm=LLMConfig(endpoint_type="openai", model="m")).name == "bo"
    with pytest.raises(ConfigError):
        api.create_agent("cy", llm=compatible("http://10.9.9.10:8000/v1"))


def test_the_config_file_the_server_started_with_is_the_operators(home, open_api):
    (home / CONFIG_FILE).write_text(json.dumps({
        "llm": {"endpoint_type": "openai-compatible", "model": "m", "endpoint": "http://192.168.7.7:8000/v1"},
        "embedding": {"endpoint_type": "openai-compatible", "model": "e", "dim": 64,
                      "endpoint": "http://192.168.7.7:8000/v1"}}))
    api = open_api(settings=load_settings(home, env={}))
    assert api.create_agent("ada").llm.endpoint == "http://192.168.7.7:8000/v1"  # the defaults
    assert api.create_agent("bo", llm=compatible("http://192.168.7.7:8000/v1", model="other")).name == "bo"


def test_defaults_written_after_the_start_are_not_the_operators(open_api):
    api = open_api()
    # What an unchecked Config tab once did: the running settings rewritten in place after the start.
    api.settings.llm = compatible("http://10.0.0.8/v1")
    with pytest.raises(ConfigError, match="10.0.0.8"):
        api.create_agent("ada")
    assert api.list_agents() == []


@pytest.mark.parametrize("url", ["http://10.0.0.8/v1", "http://localhost:11434/v1"])
def test_saving_defaults_refuses_private_endpoints_and_writes_nothing(home, open_api, url):
    api = open_api()
    before = dataclasses.replace(api.settings.llm), dataclasses.replace(api.settings.embedding)
    with pytest.raises(ConfigError):
        api.save_defaults(llm=compatible(url), embedding=embedder_at(PUBLIC))
    with pytest.raises(ConfigError):
        api.save_defaults(llm=compatible(PUBLIC), embedding=embedder_at(url))
    assert not (home / CONFIG_FILE).exists()
    assert (api.settings.llm, api.settings.embedding) == before


def test_saving_public_defaults_works(home, open_api):
    api = open_api()
    api.save_defaults(llm=compatible(PUBLIC), embedding=embedder_at(PUBLIC), persona="sam")
    saved = load_settings(home, env={})
    assert saved.llm.endpoint == PUBLIC and saved.embedding.endpoint == PUBLIC


def test_a_local_model_file_cannot_be_named(open_api):
    api = open_api()
    with pytest.raises(ConfigError, match="local model's file"):
        api.create_agent("ada", llm=LLMConfig(endpoint_type="local", endpoint="/etc/passwd"))
    with pytest.raises(ConfigError, match="local model's file"):
        api.save_defaults(llm=LLMConfig(endpoint_type="local", endpoint="/proc/self/environ"))
    assert api.create_agent("ada", llm=LLMConfig(endpoint_type="local")).llm.endpoint is None  # the shipped one


@pytest.fixture
def operators_agent(open_api):
    """An agent the operator made on a private model server, before the app went public."""
    open_api(public=False).create_agent("house", llm=compatible("http://10.0.0.5:8000/v1"),
                                        embedding=embedder_at("http://10.0.0.5:8000/v1"))
    return open_api()


def test_existing_agents_keep_their_endpoints(operators_agent):
    api = operators_agent
    kept = api.update_agent("house", llm=compatible("http://10.0.0.5:8000/v1", model="bigger"))
    assert kept.llm.model == "bigger"
    with pytest.raises(ConfigError, match="10.0.0.6"):
        api.update_agent("house", llm=compatible("http://10.0.0.6:8000/v1"))
    with pytest.raises(ConfigError, match="169.254.169.254"):
        api.update_agent("house", embedding=embedder_at("http://169.254.169.254/"))
    agent = api.get_agent("house")
    assert agent.llm.endpoint == agent.embedding.endpoint == "http://10.0.0.5:8000/v1"
    assert agent.llm.model == "bigger"


def test_an_imported_agent_file_is_checked(operators_agent, tmp_path):
    api = operators_agent
    path = tmp_path / "house.json"
    api.export_agent("house", path)
    assert api.import_agent(path).agent.name == "house (2)"  # a copy of an existing agent reaches nothing new
    for section, url in (("llm_config", "http://169.254.169.254/v1"), ("embedding_config", "http://[::1]:9/v1")):
        data = json.loads(path.read_text())
        data["agent"][section]["endpoint"] = url
        path.write_text(json.dumps(data))
        with pytest.raises(ConfigError, match="refused"):
            api.import_agent(path)
        path.write_text(path.read_text().replace(url, "http://10.0.0.5:8000/v1"))
    assert [a.name for a in api.list_agents()] == ["house", "house (2)"]


def test_public_true_uses_the_systems_resolver(settings, store, library, registry):
    api = MemGPT(runtime=Runtime(settings, store, library, registry), public=True)
    with pytest.raises(ConfigError, match="localhost"):
        api.create_agent("ada", llm=compatible("http://localhost:9/v1"))


def test_an_exposed_web_app_restricts_its_client(open_api, tmp_path):
    from webapp.app import build_demo
    from webapp.exposure import Exposure

    local, public = open_api(public=False), open_api(public=False)
    build_demo(local, Exposure(exposed=False, home=tmp_path))
    build_demo(public, Exposure(exposed=True, home=tmp_path))
    # (Another address than below: an endpoint an existing agent uses passes.)
    assert local.create_agent("ada", llm=compatible("http://10.0.0.2/v1")).name == "ada"
    with pytest.raises(ConfigError, match="10.0.0.1"):
        public.create_agent("bo", llm=compatible("http://10.0.0.1/v1"))


def test_an_exposed_websocket_server_refuses_a_private_endpoint(fake_openai, settings, store, library, registry):
    from fastapi import FastAPI
    from websockets.sync.client import connect

    from tests.support.servers import serve_app
    from webapp.websocket import add_route

    # The operator's own model server, on loopback: agents made with the defaults may use it.
    settings.llm = compatible(fake_openai.base_url)
    settings.embedding = embedder_at(fake_openai.base_url)
    app = FastAPI()
    add_route(app, Runtime(settings, store, library, registry), None, public=True)
    with serve_app(app) as port, connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
        def command(config):
            ws.send(json.dumps({"type": "command", "command": "create_agent", "config": config}))
            return json.loads(ws.recv(timeout=10))

        error = command({"name": "intruder", "model_endpoint": "http://169.254.169.254/latest"})
        assert error["type"] == "server_error" and "169.254.169.254" in error["message"]
        assert json.loads(ws.recv(timeout=10))["status"] == "error"
        error = command({"name": "intruder", "embedding_endpoint_type": "openai-compatible",
                         "embedding_endpoint": "http://192.168.0.1:11434/v1"})
        assert error["type"] == "server_error" and "192.168.0.1" in error["message"]
        assert json.loads(ws.recv(timeout=10))["status"] == "error"
        assert command({"name": "house"}) == {"type": "command_response", "status": "OK", "agent_name": "house"}
    assert [a.name for a in MemGPT(runtime=Runtime(settings, store, library, registry)).list_agents()] == ["house"]


def test_the_config_tabs_save_refuses_with_a_readable_error_and_saves_nothing(open_api, home):
    import gradio as gr

    from webapp.config_tab import save_config

    api = open_api()
    with pytest.raises(gr.Error, match="10.0.0.9"):
        save_config(api, "openai-compatible", "m", "http://10.0.0.9/v1", None, None, False, "sk-typed",
                    "local", "all-MiniLM-L6-v2", 384, "", "memgpt_chat", "sam", "basic")
    assert not (home / CONFIG_FILE).exists() and not (home / "secrets.yaml").exists()
    assert api.settings.llm.endpoint_type == "local"


@pytest.mark.parametrize("web", [False, True], ids=["python app.py ws", "python app.py"])
def test_a_server_on_a_space_refuses_a_private_endpoint_over_its_websocket(tmp_path, fake_openai, web):
    from websockets.sync.client import connect

    from tests.support.servers import AppProcess, app_env, fake_home

    # config.yaml names the fake model server on loopback: the operator's, so agents with the defaults work.
    home = fake_home(tmp_path / "home", fake_openai.base_url)
    server = AppProcess(home, web=web, env=app_env(SPACE_ID="someone/memgpt"))  # a Space: exposed
    try:
        with connect(server.url, open_timeout=10) as ws:
            def command(config):
                ws.send(json.dumps({"type": "command", "command": "create_agent", "config": config}))
                return json.loads(ws.recv(timeout=30))

            error = command({"name": "intruder", "model_endpoint": "http://10.20.30.40:8000/v1"})
            assert error["type"] == "server_error" and "10.20.30.40" in error["message"]
            assert json.loads(ws.recv(timeout=10))["status"] == "error"
            assert command({"name": "house"})["status"] == "OK"
    finally:
        server.stop()
    conn = sqlite3.connect(home / "memgpt.db")
    try:
        assert [r[0] for r in conn.execute("SELECT name FROM agents")] == ["house"]
    finally:
        conn.close()
