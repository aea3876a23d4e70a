"""Launching the web app: address, login, public link, with safe defaults.

Binding beyond loopback or sharing a public link requires a login unless the
user explicitly waives it. A public link needs Gradio's share server on the
internet; where it cannot be reached we fail at once with a clear message
instead of hanging.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from engine.errors import ConfigError
from webapp.login import LoginGuard

SHARE_HOST = ("api.gradio.app", 443)


# Events of one listener that may run at once (all sessions): a turn holds one for its whole length.
QUEUE_CONCURRENCY = 8

def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError("Login must be given as user:password.")
    return user, password


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, share: bool, auth: tuple[str, str] | None, waive: bool) -> None:
    if auth or waive:
        return
    if share or not is_loopback(host):
        where = "a public share link" if share else f"address {host}"
        raise ConfigError(
            f"Serving on {where} needs a login: pass --auth user:password (or set MEMGPT_AUTH), "
            "or --no-auth to accept that anyone who can reach it may use it."
        )


def internet_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(SHARE_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def launch(demo, runtime, *, host: str, port: int, share: bool, auth: str | None, waive_auth: bool) -> None:
    from webapp.exposure import is_exposed

    credentials = parse_auth(auth or os.environ.get("MEMGPT_AUTH"))
    check_exposure(host, share, credentials, waive_auth)
    if share and not internet_reachable():
        raise ConfigError(
            "A public link needs Gradio's share server on the internet, which this machine cannot reach. "
            "Run without --share, or bind to your network with --host 0.0.0.0 and --auth."
        )
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY)
    guard = LoginGuard(*credentials) if credentials else None  # one count of failures for the page and the socket
    # /ws is one of the routes the app is built with, so it answers from the server's first connection
    # (mounted after launch() returned, it was missing for a moment in which pages already answered: a 403).
    routes = websocket_routes(demo, runtime, credentials, guard, public=is_exposed(host, share))
    # blocked_paths: Gradio's /file= route must never serve the data home, whatever else it allows.
    launch_checked(demo, server_name=host, server_port=port, share=share, auth=guard.check if guard else None,
                   show_error=True, prevent_thread_lock=True, blocked_paths=[str(runtime.settings.home)],
                   app_kwargs={"routes": routes}, max_file_size=MAX_UPLOAD,
                   footer_links=["gradio", "settings"])  # no "Use via API": every event is private (webapp/app.py)
    print(f"WebSocket API on ws://{host}:{port}/ws")
    demo.block_thread()


# Gradio takes uploads of any size otherwise. The largest any handler reads: an agent file
# (webapp/agent_tab.IMPORT_MAX_BYTES); data files are 20 MB each (engine/loaders/readers.py).
MAX_UPLOAD = "64mb"
STARTUP_ATTEMPTS = 3
GRADIO_STARTUP_FAILED = "localhost is not accessible"  # the start of Gradio's error when its startup check fails


def launch_checked(demo, attempts: int = STARTUP_ATTEMPTS, **kwargs) -> None:
    """`demo.launch(**kwargs)`, tried again when only Gradio's own startup check failed.

    After starting the server Gradio asks it for the page once, with a 3 s timeout, and on a
    timeout stops with an error that blames localhost and suggests share=True. On a busy
    machine the server is fine, just slow to answer that first request, so it is started again.
    """
    for attempt in range(1, attempts + 1):
        try:
            demo.launch(**kwargs)
            return
        except ValueError as e:
            if GRADIO_STARTUP_FAILED not in str(e):
                raise
            demo.close()
            if attempt == attempts:
                raise ConfigError(
                    f"The web server started but did not answer its own first request within Gradio's 3 s, "
                    f"{attempts} times: the machine is probably too busy. Try again when it is less loaded."
                ) from e


def websocket_routes(demo, runtime, credentials, guard=None, public: bool = False) -> list:
    """The WebSocket API at /ws, as routes for the app `demo.launch()` builds; a web login (cookie) or Basic
    auth admits it."""
    from fastapi.routing import APIWebSocketRoute

    from webapp.websocket import websocket_endpoint

    def cookie_check(cookies) -> bool:
        app = demo.app  # the server's app, built by launch(): read when a client connects, not before
        return any(app.tokens.get(value) for key, value in cookies.items() if key.startswith("access-token"))

    endpoint, _ = websocket_endpoint(runtime, credentials, cookie_check, guard=guard, public=public)
    return [APIWebSocketRoute("/ws", endpoint)]
