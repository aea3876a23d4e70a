"""DNS rebinding against a public app: a host name checked as public must not be connected to at a private address.

Real parts: the fake OpenAI server on 127.0.0.1 (a real HTTP server), a real
store, the real MemGPT client and its HTTP stack. What plays the hostile DNS
server is `socket.getaddrinfo` itself, for one made-up name: the first lookup
(the endpoint check) answers a public address, every later one (the HTTP
client's) answers 127.0.0.1, where the fake server listens. Without the checked
connections the call reaches the fake server; with them it is refused.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading

import httpx2
import pytest

from engine import MemGPT
from engine.config import EmbeddingConfig, LLMConfig
from engine.events import Error
from engine.llm.public_only import AddressRefused, CheckedTransport, PublicOnly
from engine.runtime import Runtime

HOSTILE = "rebind.example.test"
PUBLIC_ADDRESS = "93.184.215.14"  # the first answer: passes the check, and is never connected to


@pytest.fixture(autouse=True)
def no_operator_environment(monkeypatch):
    for name in ("OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "OPENAI_COMPATIBLE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def rebinding_dns(monkeypatch):
    """The system resolver, with HOSTILE answering public once and loopback from then on; the lookups, counted."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode("ascii")
        if host != HOSTILE:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = PUBLIC_ADDRESS if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def hostile_url(fake_openai) -> str:
    return fake_openai.base_url.replace("127.0.0.1", HOSTILE)


def chat_requests(fake_openai) -> list[str]:
    return [path for path, _ in fake_openai.requests if "embeddings" not in path]


@pytest.fixture
def public_api(settings, store, library, registry, fake_openai, embedder):
    # The operator's embedder is the fake server on loopback: theirs, so it connects as usual.
    settings.embedding = EmbeddingConfig(endpoint_type="openai-compatible", model=embedder.name,
                                         dim=embedder.dimension, endpoint=fake_openai.base_url)
    return MemGPT(runtime=Runtime(settings, store, library, registry), public=True)


@pytest.mark.parametrize("endpoint_type", ["openai-compatible", "completions", "llamacpp"])
def test_a_model_host_that_rebinds_after_the_check_is_refused_when_the_call_connects(
        public_api, fake_openai, rebinding_dns, endpoint_type):
    agent = public_api.create_agent("mallory", llm=LLMConfig(endpoint_type=endpoint_type, model="m",
                                                             endpoint=hostile_url(fake_openai)))
    assert rebinding_dns == [HOSTILE]  # the check saw the public answer
    fake_openai.queue_chat({"content": "I am inside"})
    events = public_api.user_message(agent.id, "hello")
    errors = [e for e in events if isinstance(e, Error)]
    assert errors and "127.0.0.1" in errors[-1].message and "public addresses" in errors[-1].message
    assert chat_requests(fake_openai) == []  # nothing reached the server on loopback
    assert len(rebinding_dns) == 2  # refused at the first connection, not retried


def test_an_embedding_host_that_rebinds_is_refused_too(public_api, fake_openai, rebinding_dns, embedder):
    hostile = EmbeddingConfig(endpoint_type="openai-compatible", model=embedder.name, dim=embedder.dimension,
                              endpoint=hostile_url(fake_openai))
    agent = public_api.create_agent("mallory", embedding=hostile)
    with pytest.raises(AddressRefused, match="127.0.0.1"):
        public_api.insert_archival(agent.id, "a passage")
    assert fake_openai.requests == []


def test_the_connection_test_of_a_public_app_is_not_rebound(fake_openai, rebinding_dns):
    from engine.llm.probe import probe_llm

    result = probe_llm(LLMConfig(endpoint_type="openai-compatible", model="m", endpoint=hostile_url(fake_openai)),
                       allow_private=False)
    assert not result.ok and "127.0.0.1" in result.summary, result.summary
    assert fake_openai.requests == []


def test_a_local_app_connects_as_the_system_resolves(settings, store, library, registry, fake_openai,
                                                      rebinding_dns):
    # Not public: the name is the user's own, so the call goes where DNS says (here: the fake server).
    socket.getaddrinfo(HOSTILE, 80)  # the public first answer is used up: no address outside is ever tried
    api = MemGPT(runtime=Runtime(settings, store, library, registry))
    agent = api.create_agent("ada", llm=LLMConfig(endpoint_type="openai-compatible", model="m",
                                                  endpoint=hostile_url(fake_openai)),
                             embedding=EmbeddingConfig(endpoint_type="openai-compatible", model="e", dim=64,
                                                       endpoint=fake_openai.base_url))
    fake_openai.queue_chat({"content": "hi", "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "send_message", "arguments": '{"message": "hello there"}'}}]})
    api.user_message(agent.id, "hello")
    assert chat_requests(fake_openai)


def test_the_rule_leaves_the_operators_endpoints_and_fixed_addresses_alone():
    rule = PublicOnly(lambda host, port: [], lambda: {"http://models.lan:8000/v1"})
    assert not rule.applies("http://models.lan:8000/v1/")  # the operator's (compared normalized)
    assert not rule.applies("http://10.0.0.5:8000/v1")  # an address no DNS answer can change
    assert not rule.applies("http://[::1]:8000/v1")
    assert not rule.applies("http://localhost:11434/v1")
    assert rule.applies("http://models.lan:9000/v1")
    assert rule.applies("https://api.example.com/v1")


# ------------------------------------------------------------------ the backend on its own

def loopback_allowed(address):
    return None if address.is_loopback else "not loopback"


def test_the_connection_goes_to_the_resolved_address_under_the_name(fake_openai):
    # A name no system resolver knows: reaching the server proves the backend's own lookup was used.
    port = int(fake_openai.base_url.rsplit(":", 1)[1].split("/")[0])
    transport = CheckedTransport(lambda host, port: ["127.0.0.1"], refusal=loopback_allowed)
    with httpx2.Client(transport=transport) as client:
        assert client.get(f"http://model.example.test:{port}/v1/models").status_code in (200, 404)
    assert fake_openai.headers[-1]["host"] == f"model.example.test:{port}"


def test_one_refused_answer_among_several_refuses_the_name(fake_openai):
    port = int(fake_openai.base_url.rsplit(":", 1)[1].split("/")[0])
    transport = CheckedTransport(lambda host, port: [PUBLIC_ADDRESS, "127.0.0.1"])
    with httpx2.Client(transport=transport) as client, pytest.raises(AddressRefused, match="127.0.0.1"):
        client.get(f"http://two.example.test:{port}/v1/models")
    assert fake_openai.requests == []


@pytest.fixture
def tls_server(tmp_path):
    """An https server on 127.0.0.1 whose self-signed certificate names model.example.test only."""
    if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=model.example.test",
                    "-addext", "subjectAltName=DNS:model.example.test"], check=True, capture_output=True)
    names: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], ssl.create_default_context(cafile=str(cert)), names
    server.shutdown()
    server.server_close()


def test_tls_still_checks_the_certificate_against_the_name(tls_server):
    port, trusted, names = tls_server
    transport = CheckedTransport(lambda host, port: ["127.0.0.1"], verify=trusted, refusal=loopback_allowed)
    with httpx2.Client(transport=transport) as client:
        assert client.get(f"https://model.example.test:{port}/").text == "ok"
        assert names == ["model.example.test"]  # SNI: the name, not the address connected to
        # The same address under another name: its certificate does not name it, so no connection.
        with pytest.raises(httpx2.ConnectError, match="(?i)certificate|hostname"):
            client.get(f"https://other.example.test:{port}/")
