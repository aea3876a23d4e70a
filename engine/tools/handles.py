"""The narrow handles a tool can ask for by annotating a parameter with their type.

A tool never receives the agent: `core_memory_append(memory: CoreMemory, ...)`
gets the core memory and nothing else. Parameters annotated with a handle type are
filled in by the runner and left out of the schema the model sees.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import httpcore

from engine.errors import ToolError
from engine.memory import ArchivalMemory, CoreMemory, RecallMemory


class Outbox:
    """Where `send_message` puts what the agent says to the user."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message: str) -> None:
        self.sent.append(message)


class HeartbeatControl:
    """Timed heartbeats can be paused by the agent (`pause_heartbeats`)."""

    MAX_MINUTES = 360

    def __init__(self) -> None:
        self.paused_until: float | None = None

    def pause(self, minutes: int) -> float:
        self.paused_until = time.time() + minutes * 60
        return self.paused_until

    def paused(self) -> bool:
        return self.paused_until is not None and time.time() < self.paused_until


class FileSpace:
    """A directory the file functions may read and append to, and nothing outside it."""

    MAX_READ_BYTES = 1_000_000

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def resolve(self, filename: str) -> Path:
        """The real path of `filename` inside the root, or a ToolError.

        Absolute paths and `..` are refused outright; the resolved path (symlinks
        followed) must still be inside the root, so a link pointing out is refused too.
        """
        if not isinstance(filename, str) or not filename.strip():
            raise ToolError("filename is empty.")
        candidate = Path(filename)
        if not candidate.parts:
            raise ToolError("Give a file name, not a folder.")
        if candidate.is_absolute() or filename.startswith(("/", "\\")):
            raise ToolError("Absolute paths are not allowed; give a file name inside your files folder.")
        if ".." in candidate.parts:
            raise ToolError("'..' is not allowed in file names; files live in your files folder only.")
        self.root.mkdir(parents=True, exist_ok=True)
        root = self.root.resolve()
        path = (root / candidate).resolve()
        if path != root and root not in path.parents:
            raise ToolError("That path leads outside your files folder (through a link); it is refused.")
        return path


_BLOCKED_REASON = "loopback, private, link-local or reserved addresses are blocked"

# Every currently allocated global unicast IPv6 address is inside 2000::/3; anything else
# (site-local fec0::/10, unique-local, multicast, NAT64 and the ::/8 oddities) is refused
# even where this Python's ipaddress tables are older than the registry.
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a request to `address` is refused, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = None
        if address.sixtofour is not None:
            embedded = address.sixtofour
        elif address.teredo is not None:
            embedded = address.teredo[1]
        elif any(address in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and address_refusal(embedded):
            return f"it embeds the address {embedded}"
        if address.is_site_local:
            return "site-local addresses are blocked"
        if address not in _GLOBAL_UNICAST_V6:
            return _BLOCKED_REASON
    # ipaddress' is_global misses multicast (and, in older Pythons, some ranges), hence the list.
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    ):
        return _BLOCKED_REASON
    return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None


def checked_addresses(host: str, port: int, *, resolver: Callable[[str, int], Iterable[str]] | None = None,
                      allow_private: bool = False, shown: str | None = None) -> tuple[str, ...]:
    """The addresses `host` (an IP address, or an ASCII name resolved once by `resolver`) stands for, every one
    checked by `address_refusal` unless `allow_private`; a ToolError naming `shown` (default: the host) otherwise."""
    shown = shown or host
    literal = _literal(host)
    if literal is None:
        try:
            answers = list((resolver or _system_resolver)(host, port))
        except (OSError, UnicodeError) as e:
            raise ToolError(f"Cannot resolve host {host!r}: {e}") from e
        if not answers:
            raise ToolError(f"Cannot resolve host {host!r}: no addresses.")
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in answers]
        except ValueError as e:
            raise ToolError(f"Cannot resolve host {host!r}: {e}") from e
    else:
        addresses = [literal]
    addresses = [a.ipv4_mapped if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped else a
                 for a in addresses]
    if not allow_private:
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise ToolError(f"Requests to {shown} ({address}) are refused: {reason}.")
    return tuple(dict.fromkeys(str(a) for a in addresses))


@dataclasses.dataclass(frozen=True)
class Target:
    """One checked hop: where the request goes (`address`) and what it says it is for (`url`)."""

    url: httpcore.URL
    host_header: str
    addresses: tuple[str, ...]  # all checked; tried in order until one accepts the connection

    @property
    def address(self) -> str:
        return self.addresses[0]


@dataclasses.dataclass
class WebAccess:
    """HTTP(S) requests that reach only public addresses, within a total deadline and a size cap.

    The host is resolved once per hop, every resolved address is checked, and the
    connection goes to the checked address itself (the URL's host name still names the
    site for the Host header, SNI and certificate check), so a DNS answer that changes
    between the check and the connection cannot point the request inside. Proxies from
    the environment are not used: a proxy would resolve the name again on its own.
    """

    allow_private: bool = False
    timeout: float = 10.0
    max_bytes: int = 1_000_000
    max_redirects: int = 5
    # (host, port) -> address strings; tests inject one to play a rebinding DNS server.
    resolver: Callable[[str, int], Iterable[str]] | None = None

    def check_url(self, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ToolError(f"Only http and https URLs are allowed, not {parts.scheme or 'no scheme'!r}.")
        if not parts.hostname:
            raise ToolError("The URL has no host name.")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as e:
            raise ToolError(f"The URL's port is not valid: {e}") from e
        host = parts.hostname
        literal = _literal(host)
        if literal is None:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as e:
                raise ToolError(f"The host name {parts.hostname!r} is not valid: {e}") from e
        addresses = checked_addresses(host, port, resolver=self.resolver, allow_private=self.allow_private,
                                      shown=parts.hostname)
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~") + (
            "?" + quote(parts.query, safe="/%:@!$&'()*+,;=~?") if parts.query else "")
        name = f"[{host}]" if literal is not None and literal.version == 6 else host
        host_header = name if parts.port is None else f"{name}:{parts.port}"
        return Target(
            url=httpcore.URL(scheme=parts.scheme, host=host, port=port, target=target),
            host_header=host_header,
            addresses=addresses,
        )

    def request(self, method: str, url: str, body: str | None = None) -> tuple[int, str, bool]:
        """(status, text, truncated). Redirects are followed by hand so each hop is checked."""
        method = method.upper()
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            raise ToolError(f"Unsupported HTTP method {method!r}.")
        deadline = time.monotonic() + self.timeout
        for _ in range(self.max_redirects + 1):
            target = self.check_url(url)
            headers = [("Host", target.host_header), ("Accept-Encoding", "identity")]
            if body:
                headers.append(("Content-Type", "application/json"))
            try:
                with self._open(target, method, headers, body, deadline) as response:
                    location = _header(response.headers, b"location")
                    if response.status in (301, 302, 303, 307, 308) and location is not None:
                        url = urljoin(url, location)
                        if response.status in (301, 302, 303):
                            method, body = "GET", None
                        continue
                    data = bytearray()
                    truncated = False
                    for piece in response.iter_stream():
                        data.extend(piece)
                        if len(data) > self.max_bytes:
                            truncated = True
                            del data[self.max_bytes :]
                            break
                    text = bytes(data).decode(_charset(response.headers), errors="replace")
                    return response.status, text, truncated
            except httpcore.TimeoutException as e:
                raise ToolError(f"The request timed out after {self.timeout:g} s.") from e
            except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as e:
                raise ToolError(f"The request failed: {e or type(e).__name__}") from e
        raise ToolError(f"Too many redirects (more than {self.max_redirects}).")

    @contextlib.contextmanager
    def _open(self, target: Target, method: str, headers: list, body: str | None, deadline: float):
        for n, address in enumerate(target.addresses):
            backend = _PinnedBackend(address, deadline)
            with httpcore.ConnectionPool(ssl_context=ssl.create_default_context(), network_backend=backend,
                                         retries=0) as pool:
                try:
                    stream = pool.stream(method, target.url, headers=headers, content=body.encode() if body else None)
                    response = stream.__enter__()
                except httpcore.ConnectError:
                    if n + 1 < len(target.addresses):
                        continue
                    raise
                try:
                    yield response
                finally:
                    stream.__exit__(None, None, None)
                return


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _charset(headers: list[tuple[bytes, bytes]]) -> str:
    content_type = _header(headers, b"content-type") or ""
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    if match:
        try:
            return codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return "utf-8"


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to one checked address whatever host httpcore asks for, and holds every
    socket operation to what is left of the call's deadline, so a server trickling one
    byte at a time cannot stretch a call past it."""

    def __init__(self, address: str, deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self.address = address
        self.deadline = deadline

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise error("deadline reached")
        return remaining if timeout is None else min(timeout, remaining)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self._inner.connect_tcp(self.address, port, self.left(timeout, httpcore.ConnectTimeout),
                                         local_address, socket_options)
        return _DeadlineStream(stream, self)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.UnsupportedProtocol("Unix sockets are not reachable from http_request.")

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, max(0.0, self.deadline - time.monotonic())))


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: _PinnedBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        inner = self._inner.start_tls(ssl_context, server_hostname, self._backend.left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._backend)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class ChatModel:
    """A second model the agent may consult (`message_chatgpt`)."""

    def __init__(self, ask=None, model: str = "") -> None:
        self._ask = ask
        self.model = model

    def ask(self, message: str) -> str:
        if self._ask is None:
            raise ToolError("No second model is configured for message_chatgpt (it needs OPENAI_API_KEY).")
        return self._ask(message)


HANDLE_TYPES: tuple[type, ...] = (
    CoreMemory,
    RecallMemory,
    ArchivalMemory,
    Outbox,
    HeartbeatControl,
    FileSpace,
    WebAccess,
    ChatModel,
)


@dataclasses.dataclass
class ToolContext:
    """The handles available to one agent's tools; missing ones make a tool fail clearly."""

    core: CoreMemory | None = None
    recall: RecallMemory | None = None
    archival: ArchivalMemory | None = None
    outbox: Outbox = dataclasses.field(default_factory=Outbox)
    heartbeats: HeartbeatControl = dataclasses.field(default_factory=HeartbeatControl)
    files: FileSpace | None = None
    web: WebAccess | None = None
    chat_model: ChatModel | None = None

    def handle_for(self, kind: type):
        for value in (getattr(self, f.name) for f in dataclasses.fields(self)):
            if isinstance(value, kind):
                return value
        return None
