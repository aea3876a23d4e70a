"""Connecting a public app's model and embedding calls only to the addresses that were checked.

`EndpointGuard` (engine/endpoints.py) checks a visitor's endpoint when it is
stored, but an HTTP client resolves the host name again for every connection. A
DNS server that answers a public address to the check and 127.0.0.1 (or the
cloud's metadata address) to the call, DNS rebinding, would get past the check.
So on a public app the clients of these calls get a network backend that, for
each new connection, resolves the name once, refuses it unless every address it
resolved to is public (the rule of `http_request`, engine/tools/handles.py), and
connects to those very addresses. httpcore still hands the URL's host name to
`start_tls`, so the TLS SNI and the certificate check are those of the name.

Connected as usual, without the backend:
- the operator's endpoints (the environment's, config.yaml's as the server
  started: the guard's first rule), which may be private on purpose;
- hosts whose address no DNS server chooses: IP addresses, and `localhost`. A
  private one got into an agent only as the operator's (the guard refuses it
  from a visitor unless an existing agent already uses it).
Everything else, including an older agent's endpoint on a LAN host *name* the
operator did not name in config.yaml or the environment, reaches public
addresses only. Environment proxies are not used by the checked clients: a
proxy would resolve the name again on its own.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Collection, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2

from engine import secrets
from engine.llm.base import LLMError

Resolver = Callable[[str, int], Iterable[str]]
Refusal = Callable[[Any], str | None]  # an address -> why it is refused, None when allowed
# The pool limits httpx2 gives a client by default (its DEFAULT_LIMITS is not public).
_LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class AddressRefused(LLMError):
    """A call's host resolved, when connecting, to an address a public app does not connect to.

    An LLMError raised inside the transport: neither httpx2 nor the `openai`
    client wraps it, so the words reach the user (a chat error, a tool's failed
    result), and retrying does not help.
    """


def _fixed_address(host: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class PublicOnly:
    """The connection rule of a public app: which base URLs get checked connections, resolved by `resolver`.

    `exempt()` gives the normalized base URLs connected as usual (the
    operator's); it is asked per call, so a changed environment counts.
    """

    resolver: Resolver
    exempt: Callable[[], Collection[str]] = dataclasses.field(default=lambda: (), compare=False)

    def applies(self, url: str | None) -> bool:
        """Whether calls to `url` must go through the checked backend."""
        if not url:
            return False
        if secrets.normalize_url(url) in self.exempt():
            return False
        return not _fixed_address(urlsplit(url.strip()).hostname or "")

    def transport(self, verify: Any = True) -> httpx2.HTTPTransport:
        return CheckedTransport(self.resolver, verify=verify)


class CheckedBackend(httpcore2.NetworkBackend):
    """httpcore's network backend with the lookup done here: resolved once, every address checked, connected to."""

    def __init__(self, resolver: Resolver, refusal: Refusal | None = None) -> None:
        self._inner = httpcore2.SyncBackend()
        self._resolver = resolver
        self._refusal = refusal

    def _addresses(self, host: str, port: int) -> tuple[str, ...]:
        from engine.errors import ToolError
        from engine.tools.handles import address_refusal, checked_addresses

        try:
            # Checked below with our own refusal rule, so a test can let loopback stand for "public".
            addresses = checked_addresses(host, port, resolver=self._resolver, allow_private=True)
        except ToolError as e:
            # A name that does not resolve now is a connection failure like any other (it may come back).
            raise httpcore2.ConnectError(str(e)) from None
        refusal = self._refusal or address_refusal
        for address in addresses:
            reason = refusal(ipaddress.ip_address(address))
            if reason:
                raise AddressRefused(
                    f"{host} resolved to {address} when the call connected ({reason}). This app is reachable by "
                    "others, so its model and embedding calls connect only to public addresses.")
        return addresses

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        addresses = self._addresses(host, port)
        for n, address in enumerate(addresses):
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore2.ConnectError:
                if n + 1 == len(addresses):
                    raise
        raise httpcore2.ConnectError(f"{host} has no address")  # not reached: checked_addresses never gives none

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        raise httpcore2.UnsupportedProtocol("A public app's calls do not use Unix sockets.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class CheckedTransport(httpx2.HTTPTransport):
    """httpx2's own transport over a `CheckedBackend`.

    Its constructor takes no network backend and only builds `_pool`, the one
    attribute its methods use; so that pool is built here instead, with the
    settings the constructor would give plus the backend (and without building
    a second TLS context for a pool that would be thrown away).
    """

    def __init__(self, resolver: Resolver, *, verify: Any = True, refusal: Refusal | None = None) -> None:
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(verify=verify), network_backend=CheckedBackend(resolver, refusal),
            max_connections=_LIMITS.max_connections, max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry)
