"""Test connection, against real servers on loopback: the URL tried and the cause, in words, for each way it fails.

Every case is a real socket: the fake OpenAI server (with /models, a required
key, a wrong prefix, a web page), a port nobody listens on, a socket that
accepts and never answers, plain HTTP spoken to as https, and a `.invalid`
host name that no resolver knows (RFC 2606).
"""

from __future__ import annotations

import socket

import pytest

from engine.api import MemGPT
from engine.config import EmbeddingConfig, LLMConfig
from engine.llm import probe
from tests.support.servers import free_port

LOCAL_EMBEDDER = EmbeddingConfig()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_COMPATIBLE_API_KEY", "OPENAI_COMPATIBLE_BASE_URL",
                "MEMGPT_OPENAI_API_KEY_ENDPOINTS", "MEMGPT_OPENAI_COMPATIBLE_API_KEY_ENDPOINTS"):
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)


def llm(url: str, model: str = "gpt-test", kind: str = "openai-compatible") -> LLMConfig:
    return LLMConfig(endpoint_type=kind, model=model, endpoint=url)


def test_success_names_the_url_the_model_and_lists_the_servers_models(fake_openai):
    fake_openai.models = ["gpt-test", "other-model"]
    fake_openai.queue_chat({"content": "ready"})
    result = probe.probe_llm(llm(fake_openai.base_url))
    assert result.ok, result.summary
    assert result.url == fake_openai.base_url
    assert fake_openai.base_url in result.summary and "model gpt-test answered: ready" in result.summary
    assert result.models == ("gpt-test", "other-model")
    assert [path for path, _ in fake_openai.requests] == ["/v1/models", "/v1/chat/completions"]


def test_a_server_without_models_route_is_not_a_failure(fake_openai):
    fake_openai.queue_chat({"content": "ready"})
    result = probe.probe_llm(llm(fake_openai.base_url))
    assert result.ok and result.models == ()


def test_unknown_model_is_told_apart_from_a_wrong_base_url(fake_openai):
    fake_openai.models = ["llama-3", "qwen"]
    result = probe.probe_llm(llm(fake_openai.base_url, model="gpt-nope"))
    assert not result.ok
    assert "has no model named 'gpt-nope'" in result.summary and "It offers: llama-3, qwen" in result.summary
    assert result.models == ("llama-3", "qwen")

    fake_openai.prefix = "/v1"
    wrong = fake_openai.base_url.removesuffix("/v1") + "/api"
    result = probe.probe_llm(llm(wrong))
    assert not result.ok
    assert f"Nothing answers at {wrong}/chat/completions (404)" in result.summary
    assert "base URL is probably wrong" in result.summary and "no model named" not in result.summary


def test_refused_connection_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    result = probe.probe_llm(llm(url))
    assert not result.ok and result.url == url
    assert f"Could not reach {url}" in result.summary and "connection was refused" in result.summary


def test_unknown_host_name_is_a_dns_failure():
    result = probe.probe_llm(llm("http://no-such-server.invalid:8080/v1"))
    assert not result.ok
    assert "no-such-server.invalid was not found (DNS)" in result.summary


def test_a_server_that_never_answers_times_out_quickly():
    with socket.socket() as silent:  # accepts connections (the backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        result = probe.probe_llm(llm(url), timeout=1.0)
    assert not result.ok and "timed out" in result.summary and url in result.summary


def test_https_to_a_plain_http_server_is_a_tls_error(fake_openai):
    url = fake_openai.base_url.replace("http://", "https://")
    result = probe.probe_llm(llm(url))
    assert not result.ok and "TLS" in result.summary and url in result.summary


def test_a_web_page_instead_of_the_api(fake_openai):
    fake_openai.web_page = "<!doctype html><html><body><h1>Welcome to my router</h1></body></html>"
    result = probe.probe_llm(llm(fake_openai.base_url))
    assert not result.ok
    assert "an HTML page instead of JSON" in result.summary and "Welcome to my router" in result.summary
    assert "check the base URL" in result.summary


def test_a_refused_key_is_named_and_never_printed(fake_openai):
    fake_openai.required_key = "sk-right"
    result = probe.probe_llm(llm(fake_openai.base_url), api_key="sk-wrong-123")
    assert not result.ok and "refused the API key (401)" in result.summary
    assert "sk-wrong-123" not in result.summary
    assert fake_openai.authorizations == ["Bearer sk-wrong-123"]  # stopped at /models, no chat call after it

    result = probe.probe_llm(llm(fake_openai.base_url))
    assert "wants an API key (401), and none is bound to this URL" in result.summary

    fake_openai.queue_chat({"content": "ready"})
    assert probe.probe_llm(llm(fake_openai.base_url), api_key="sk-right").ok


def test_a_server_echoing_the_key_does_not_show_it(fake_openai):
    fake_openai.queue_chat((400, {"error": {"message": "bad request for key sk-echoed-999"}}))
    result = probe.probe_llm(llm(fake_openai.base_url), api_key="sk-echoed-999")
    assert not result.ok and "sk-echoed-999" not in result.summary and "***" in result.summary


def test_embedder_reports_the_probed_dimension_and_a_mismatch(fake_openai):
    config = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    result = probe.probe_embedder(config)
    assert result.ok and result.dimension == 64 and "64 dimensions" in result.summary
    assert "configured dimension" not in result.summary

    result = probe.probe_embedder(EmbeddingConfig("openai-compatible", "test-hash", 1536, fake_openai.base_url))
    assert result.ok and result.dimension == 64
    assert "The configured dimension is 1536: it should be 64" in result.summary


def test_embedder_failures_are_explained_too(fake_openai):
    fake_openai.models = ["test-hash"]
    result = probe.probe_embedder(EmbeddingConfig("openai-compatible", "nope-embed", 64, fake_openai.base_url))
    assert not result.ok and "has no model named 'nope-embed'" in result.summary
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = probe.probe_embedder(EmbeddingConfig("openai-compatible", "test-hash", 64, url))
    assert not result.ok and f"Could not reach {url}" in result.summary and "refused" in result.summary


def test_the_embedded_embedder_needs_no_network():
    result = probe.probe_embedder(LOCAL_EMBEDDER)
    assert result.ok and result.dimension == 384 and result.url is None
    assert "all-MiniLM-L6-v2" in result.summary and "384 dimensions" in result.summary
    wrong = probe.probe_embedder(EmbeddingConfig(dim=768))
    assert wrong.dimension == 384 and "The configured dimension is 768: it should be 384" in wrong.summary


def test_private_addresses_are_refused_when_the_app_is_public(fake_openai):
    result = probe.probe_llm(llm(fake_openai.base_url), allow_private=False)
    assert not result.ok and "are refused" in result.summary and "tests only public addresses" in result.summary
    assert fake_openai.requests == []  # nothing reached the server
    result = probe.probe_embedder(EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url),
                                  allow_private=False)
    assert not result.ok and fake_openai.requests == []
    for url in ("file:///etc/passwd", "http://user@127.0.0.1/v1", "gopher://x/"):
        assert "not a usable base URL" in probe.probe_llm(llm(url), allow_private=False).summary


def test_the_operators_own_url_from_the_environment_is_tested_and_marked(monkeypatch, fake_openai):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.queue_chat({"content": "ready"})
    result = probe.probe_llm(LLMConfig("openai", "gpt-test"), allow_private=False)  # the operator chose it
    assert result.ok and result.from_environment and result.url == fake_openai.base_url


def test_a_typed_key_goes_to_the_embedder_only_at_the_same_url(runtime, fake_openai, embedder):
    from tests.support.fake_openai import FakeOpenAI

    other = FakeOpenAI(embed=lambda text: embedder.embed([text])[0]).start()
    try:
        api = MemGPT(runtime=runtime)
        fake_openai.queue_chat({"content": "ready"})
        report = api.test_connection(llm(fake_openai.base_url),
                                     EmbeddingConfig("openai-compatible", "test-hash", 64, other.base_url),
                                     api_key="sk-typed-for-fake")
        assert report.llm.ok and report.embedder.ok
        assert set(fake_openai.authorizations) == {"Bearer sk-typed-for-fake"}
        assert other.authorizations == ["Bearer not-needed"]
        fake_openai.queue_chat({"content": "ready"})
        api.test_connection(llm(fake_openai.base_url),
                            EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url),
                            api_key="sk-typed-for-fake")
        assert fake_openai.authorizations[-1] == "Bearer sk-typed-for-fake"
        assert fake_openai.requests[-1][0] == "/v1/embeddings"
    finally:
        other.stop()


def test_the_config_tab_shows_an_environment_url_only_to_a_private_app(monkeypatch, fake_openai, runtime):
    from webapp.config_tab import environment_note, test_connection
    from webapp.exposure import Exposure

    assert environment_note(Exposure()) == ""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    assert f"from the environment: `OPENAI_BASE_URL` = `{fake_openai.base_url}`" in environment_note(Exposure())
    public = environment_note(Exposure(exposed=True))
    assert "OPENAI_BASE_URL" in public and fake_openai.base_url not in public

    api = MemGPT(runtime=runtime)
    args = ("openai", "gpt-test", "", None, None, False, "", "local", "all-MiniLM-L6-v2", 384, "")
    fake_openai.queue_chat({"content": "ready"})
    shown = test_connection(api, *args).text
    assert f"Connected to {fake_openai.base_url}" in shown and "OPENAI_BASE_URL, from the environment" in shown
    fake_openai.queue_chat({"content": "ready"})
    shown = test_connection(api, *args, exposed=True).text
    assert "Connected to the base URL from the server's environment" in shown and fake_openai.base_url not in shown


def test_server_text_in_the_result_is_escaped(fake_openai, runtime):
    from webapp.config_tab import test_connection

    fake_openai.web_page = "<html><body><script>alert(1)</script><b>x</b> &lt;img src=x onerror=alert(2)&gt;</body></html>"
    outcome = test_connection(MemGPT(runtime=runtime), "openai-compatible", "m", fake_openai.base_url, None, None,
                              False, "", "local", "all-MiniLM-L6-v2", 384, "")
    assert "<img" not in outcome.html and "<script" not in outcome.html and "&lt;img" in outcome.html


def test_oversized_or_unknown_input_is_refused_before_any_request(fake_openai, runtime):
    import gradio as gr

    from webapp.config_tab import test_connection

    api = MemGPT(runtime=runtime)
    tail = ("local", "all-MiniLM-L6-v2", 384, "")
    with pytest.raises(gr.Error, match="longer than 300"):
        test_connection(api, "openai-compatible", "m" * 301, fake_openai.base_url, None, None, False, "", *tail)
    with pytest.raises(gr.Error, match="longer than 2000"):
        test_connection(api, "openai-compatible", "m", fake_openai.base_url + "x" * 2000, None, None, False, "",
                        *tail)
    with pytest.raises(gr.Error, match="from the lists"):
        test_connection(api, "gopher", "m", fake_openai.base_url, None, None, False, "", *tail)
    assert fake_openai.requests == []
    # A dimension the browser mangled is a test that says which one the embedder gives.
    fake_openai.queue_chat({"content": "ready"})
    outcome = test_connection(api, "openai-compatible", "m", fake_openai.base_url, None, None, False, "",
                              "openai-compatible", "test-hash", "abc", fake_openai.base_url)
    assert outcome.dimension == 64 and "it should be 64" in outcome.text
