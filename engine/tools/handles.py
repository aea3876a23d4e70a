"""The narrow handles a tool can ask for by annotating a parameter with their type.

A tool never receives the agent: `core_memory_append(memory: CoreMemory, ...)`
gets the core memory and nothing else. Parameters annotated with a handle type are
filled in by the runner and left out of the schema the model sees.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

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


@dataclasses.dataclass
class WebAccess:
    """HTTP(S) requests with a scheme check, an address check, a timeout and a size cap."""

    allow_private: bool = False
    timeout: float = 10.0
    max_bytes: int = 1_000_000
    max_redirects: int = 5

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ToolError(f"Only http and https URLs are allowed, not {parts.scheme or 'no scheme'!r}.")
        if not parts.hostname:
            raise ToolError("The URL has no host name.")
        try:
            port = parts.port
        except ValueError as e:
            raise ToolError(f"The URL's port is not valid: {e}") from e
        if self.allow_private:
            return
        try:
            infos = socket.getaddrinfo(parts.hostname, port or 0, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as e:
            raise ToolError(f"Cannot resolve host {parts.hostname!r}: {e}") from e
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            # not is_global also covers shared (100.64/10), documentation and benchmark ranges.
            if (
                address.is_loopback
                or address.is_private
                or address.is_link_local
                or address.is_multicast
                or address.is_reserved
                or address.is_unspecified
                or not address.is_global
            ):
                raise ToolError(f"Requests to {parts.hostname} ({address}) are refused: {_BLOCKED_REASON}.")

    def request(self, method: str, url: str, body: str | None = None) -> tuple[int, str, bool]:
        """(status, text, truncated). Redirects are followed by hand so each hop is checked."""
        import httpx

        method = method.upper()
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            raise ToolError(f"Unsupported HTTP method {method!r}.")
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for _ in range(self.max_redirects + 1):
                self.check_url(url)
                try:
                    with client.stream(
                        method, url, content=body.encode() if body else None,
                        headers={"Content-Type": "application/json"} if body else None,
                    ) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            if response.status_code in (301, 302, 303):
                                method, body = "GET", None
                            continue
                        data = bytearray()
                        truncated = False
                        for piece in response.iter_bytes():
                            data.extend(piece)
                            if len(data) > self.max_bytes:
                                truncated = True
                                del data[self.max_bytes :]
                                break
                        text = bytes(data).decode(response.encoding or "utf-8", errors="replace")
                        return response.status_code, text, truncated
                except httpx.TimeoutException as e:
                    raise ToolError(f"The request timed out after {self.timeout:g} s.") from e
                except httpx.HTTPError as e:
                    raise ToolError(f"The request failed: {e}") from e
        raise ToolError(f"Too many redirects (more than {self.max_redirects}).")


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
