"""http_request against a hostile web: non-public addresses in every spelling, DNS answers
that change after the check, servers that trickle bytes, and TLS to a pinned address."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.tools.handles import ToolContext, WebAccess
from engine.tools.runner import FAILED, OK, run_tool


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hits.append((self.path, self.headers.get("Host")))
        try:
            if self.path == "/trickle":
                self.send_response(200)
                self.send_header("Content-Length", "30")
                self.end_headers()
                for _ in range(30):
                    if self.server.stop.wait(1):
                        return
                    self.wfile.write(b"x")
                    self.wfile.flush()
            else:
                body = b"hello"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except OSError:
            pass


def _serve(tls: ssl.SSLContext | None = None):
    server = _Server(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.hits = []
    server.stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def server():
    server, thread = _serve()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def http(web: WebAccess, url: str):
    return run_tool(_registry(), "http_request", {"method": "GET", "url": url, "request_heartbeat": True},
                    ToolContext(web=web))


def _registry():
    from engine.tools.registry import builtin_registry

    return builtin_registry()


@pytest.mark.parametrize("url", [
    "http://localhost/",
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[2002:a00:1::]/",  # 6to4 around 10.0.0.1
    "http://[fec0::1]/",  # site-local
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[64:ff9b::7f00:1]/",  # NAT64 around 127.0.0.1
    "http://[64:ff9b:1::a00:1]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[ff02::1]/",  # multicast; ipaddress calls it global in Python 3.11
    "http://224.0.0.1/",
    "http://[fd00::1]/",
    "http://100.64.0.1/",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0177.0.0.1/",  # octal
    "http://0x7f.1/",
    "http://127.1/",
])
def test_non_public_addresses_in_any_spelling_are_refused(url):
    started = time.monotonic()
    outcome = http(WebAccess(timeout=1.0), url)
    assert outcome.status == FAILED and "are refused" in outcome.message, outcome.message
    assert time.monotonic() - started < 3


def test_a_public_address_passes_the_check():
    assert WebAccess(resolver=lambda host, port: ["2606:4700::1111"]).check_url("https://one.example/x?q=1").address \
        == "2606:4700::1111"
    assert WebAccess().check_url("http://[2002:808:808::]/").address == "2002:808:808::"


def test_a_name_resolving_to_any_private_address_is_refused():
    web = WebAccess(resolver=lambda host, port: ["93.184.215.14", "10.1.2.3"])
    outcome = http(web, "http://mixed.example/")
    assert outcome.status == FAILED and "(10.1.2.3) are refused" in outcome.message


def test_the_connection_goes_to_the_checked_address(server):
    """A rebinding DNS answers a public address for the check and loopback afterwards."""
    answers = iter([["1.1.1.1"], ["127.0.0.1"], ["127.0.0.1"]])
    calls = []

    def rebinding(host, port):
        calls.append(host)
        return next(answers)

    port = server.server_address[1]
    web = WebAccess(timeout=1.0, resolver=rebinding)
    started = time.monotonic()
    outcome = http(web, f"http://rebind.example:{port}/hello")
    assert outcome.status == FAILED, outcome.message
    assert calls == ["rebind.example"]
    assert server.hits == []
    assert time.monotonic() - started < 3


def test_pinned_address_serves_the_named_host(server):
    port = server.server_address[1]
    web = WebAccess(allow_private=True, timeout=2.0, resolver=lambda host, port: ["127.0.0.1"])
    outcome = http(web, f"http://site.example:{port}/hello")
    assert outcome.status == OK and outcome.message == "HTTP 200\nhello", outcome.message
    assert server.hits == [("/hello", f"site.example:{port}")]


def test_a_trickling_server_is_cut_at_the_total_deadline(server):
    port = server.server_address[1]
    web = WebAccess(allow_private=True, timeout=2.0)
    started = time.monotonic()
    outcome = http(web, f"http://127.0.0.1:{port}/trickle")
    elapsed = time.monotonic() - started
    assert outcome.status == FAILED and "timed out after 2 s" in outcome.message, outcome.message
    assert elapsed < 3.5, elapsed


def test_allow_private_still_reaches_loopback(server):
    port = server.server_address[1]
    outcome = http(WebAccess(allow_private=True, timeout=2.0), f"http://localhost:{port}/hello")
    assert outcome.status == OK, outcome.message


@pytest.fixture
def tls_site(tmp_path, monkeypatch):
    """An HTTPS server on 127.0.0.1 whose certificate names only site.example, trusted via SSL_CERT_FILE."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=site.example",
         "-addext", "subjectAltName=DNS:site.example", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server, thread = _serve(context)
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_https_to_a_pinned_address_verifies_the_host_name(tls_site):
    port = tls_site.server_address[1]
    web = WebAccess(allow_private=True, timeout=3.0, resolver=lambda host, port: ["127.0.0.1"])
    outcome = http(web, f"https://site.example:{port}/hello")
    assert outcome.status == OK and outcome.message == "HTTP 200\nhello", outcome.message

    outcome = http(web, f"https://other.example:{port}/hello")
    assert outcome.status == FAILED and "certificate" in outcome.message.lower(), outcome.message
    assert [path for path, _ in tls_site.hits] == ["/hello"]


def test_every_checked_address_is_tried_in_turn(server):
    """A name with an unreachable first address still works through its second, as browsers do."""
    if not _can_bind("127.0.0.2"):
        pytest.skip("needs a second loopback address, where nothing listens, to refuse the first connection")
    port = server.server_address[1]
    web = WebAccess(allow_private=True, timeout=2.0, resolver=lambda host, p: ["127.0.0.2", "127.0.0.1"])
    assert web.check_url(f"http://two.example:{port}/hello").addresses == ("127.0.0.2", "127.0.0.1")
    outcome = http(web, f"http://two.example:{port}/hello")
    assert outcome.status == OK, outcome.message
    assert server.hits == [("/hello", f"two.example:{port}")]


def _can_bind(address: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False
