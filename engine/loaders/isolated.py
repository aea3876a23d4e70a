"""Reading untrusted files in a child process with hard limits.

The readers parse in pure Python (html.parser, pypdf, json), and some inputs cost
far more than their size: html.parser is quadratic on `<a<a<a...` (200 KB took 17 s),
pypdf parses content that a few KB of Flate inflate to MBs. Read in the server's own
process, such a file holds a core and the GIL for every visitor. Here the existing
readers run in a fresh interpreter (never a fork of the threaded server, which can
copy a lock another thread holds), under an address-space limit and a CPU-time limit
armed afresh for each file, while the parent waits at most a wall-clock time.

Files go to the worker one at a time and their items come back pickled, so a file
that exceeds a limit costs only itself: the worker is killed (by the kernel's
SIGXCPU, or by the parent on the wall clock), that file becomes a `Skipped`, and a
new worker reads the rest. Starting a worker (an interpreter importing engine.loaders)
took 0.3-0.4 s on the development machine; a load pays it once, plus once per file
that had to be stopped.

The parent asks `live.refusal()` before sending a path: the worker's own registry of
live files is empty, so only the parent knows which files are the app's.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import pickle
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path

from engine.loaders.readers import DEFAULT_MAX_BYTES, Item, Skipped, list_directory, read_file
from engine.store import live

# Ordinary files read in well under a second; pypdf parses page content at 1-2 MB a
# second, so a 2,000-page book (the PDF reader's own cap) takes seconds to tens of
# seconds. 30 s of CPU passes that and still bounds a hostile file to half a minute of
# one core.
CPU_SECONDS = 30
# The wall clock also counts waiting for a core on a busy machine (a third of one on a
# shared two-core host) and the worker's start; past it the parent kills the worker.
WALL_SECONDS = 120
# A 20 MB upload becomes a few copies of its text (bytes, str, parts joined, pickled):
# hundreds of MB, beside the worker's own 175 MB. 2 GiB of address space leaves room
# for that and stops a reader that would take the host's memory.
MEMORY_BYTES = 2 * 1024**3
# CPU an interpreter takes to start and import the readers (about 0.3 s), given to the
# worker's lifetime ceiling on top of its files' limits.
START_CPU_SECONDS = 5
WORKER_NICENESS = 10


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one file may cost its worker: CPU seconds, wall-clock seconds, bytes of address space."""

    cpu_seconds: int = CPU_SECONDS
    wall_seconds: float = WALL_SECONDS
    memory_bytes: int = MEMORY_BYTES


def _arm_cpu(cpu_seconds: int) -> None:
    """Let the next file use `cpu_seconds` more than the worker has used so far.

    RLIMIT_CPU counts the process's whole life, so the soft limit moves with each file;
    passing it sends SIGXCPU, whose default action ends the process.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _serve(requests: Connection, replies: Connection, limits: Limits, files: int) -> None:
    """The worker: (path, name, max_bytes) requests in, a list of items out, until None or EOF.

    `files` is how many it may be sent: its lifetime's hard CPU limit (SIGKILL, which
    nothing can catch) is their soft limits together, plus its start.
    """
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)  # an ignored SIGXCPU would survive exec
    # Below the server in the scheduler: several loads at once (each a worker busy for up to its
    # CPU limit) then take the cores the server does not need, not the ones its visitors wait on.
    os.nice(WORKER_NICENESS)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    except (ValueError, OSError):  # macOS refuses an address-space limit; the CPU limits still hold there
        pass
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    ceiling = (files + 1) * (limits.cpu_seconds + 1) + START_CPU_SECONDS
    if hard == resource.RLIM_INFINITY or hard > ceiling:
        resource.setrlimit(resource.RLIMIT_CPU, (ceiling, ceiling))
    while True:
        try:
            request = requests.recv()
        except EOFError:
            return
        if request is None:
            return
        path, name, max_bytes = request
        _arm_cpu(limits.cpu_seconds)
        items: list[Item] | None = None
        try:
            items = list(read_file(path, name=name, max_bytes=max_bytes))
        except MemoryError:
            pass  # answered below: until this block ends, the traceback's frames hold the memory
        except Exception as e:  # a reader bug on one input must not end the others
            items = [Skipped(name, f"could not be read ({type(e).__name__}: {e})")]
        if items is None:
            items = [Skipped(name, f"needs more than {limits.memory_bytes // 2**20:,} MiB of memory to read: skipped")]
        replies.send(items)


def _worker_main(requests_fd: int, replies_fd: int, cpu_seconds: int, memory_bytes: int, files: int) -> None:
    """Entry point of the worker's interpreter (see _Worker)."""
    limits = Limits(cpu_seconds=cpu_seconds, memory_bytes=memory_bytes)
    _serve(Connection(requests_fd, writable=False), Connection(replies_fd, readable=False), limits, files)


class _ItemUnpickler(pickle.Unpickler):
    """Unpickles items and nothing else.

    The worker parsed hostile input; were a parser ever made to run the attacker's code
    there, an arbitrary pickle would carry that code into the server. Items need only
    their two classes (their fields are str, int, float, list, dict and None).
    """

    def find_class(self, module: str, name: str):
        if module == "engine.loaders.readers" and name in ("Document", "Skipped"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a reader worker sent {module}.{name}, which is not an item")


# The worker is a fresh interpreter (fork and exec, as multiprocessing's "spawn"), but
# started by subprocess: multiprocessing's spawn re-runs the parent's main script in
# the child, and a script without an `if __name__ == "__main__"` guard (one serving the
# web app, say) would run again there. Only the package root is put on the path.
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from engine.loaders.isolated import _worker_main; " \
        "_worker_main(*map(int, sys.argv[2:]))"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class _Worker:
    def __init__(self, limits: Limits, files: int) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, _PACKAGE_ROOT, str(request_read), str(reply_write),
                 str(limits.cpu_seconds), str(limits.memory_bytes), str(files)],
                pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL, close_fds=True,
            )
        finally:
            os.close(request_read)  # the worker holds them now; its death then reads as EOF here
            os.close(reply_write)
        self.requests = Connection(request_write, readable=False)
        self.replies = Connection(reply_read, writable=False)

    def read(self, path: Path, name: str, max_bytes: int, limits: Limits) -> list[Item]:
        """The file's items; when the worker dies or runs out of time it is gone and the file is skipped."""
        reason = ""
        try:
            self.requests.send((path, name, max_bytes))
            if wait([self.replies], limits.wall_seconds):
                return _ItemUnpickler(io.BytesIO(self.replies.recv_bytes())).load()
            reason = f"took longer than {limits.wall_seconds:g} s to read: skipped"
        except pickle.UnpicklingError:
            reason = "its reader sent back something other than items: skipped"
        except (EOFError, OSError):
            try:  # its end closed the pipe: let it finish dying, so its own exit code is read
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        code = self.process.returncode
        if reason:
            return [Skipped(name, reason)]
        if code in (-signal.SIGXCPU, -signal.SIGKILL):  # the soft CPU limit, or the hard one
            return [Skipped(name, f"took longer than {limits.cpu_seconds} s to read: skipped")]
        return [Skipped(name, f"its reader failed (exit code {code}): skipped")]

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.requests.close()
        self.replies.close()

    def close(self) -> None:
        """Let the worker end on its own (it is waiting for the next request), else kill it."""
        try:
            self.requests.send(None)
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.stop()


def read_files_isolated(
    files: Iterable[Path | tuple[Path, str]],
    *,
    limits: Limits = Limits(),
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_file: Callable[[int, int, str], None] | None = None,
) -> Iterator[Item]:
    """The items of each file, as `read_file` gives them, read in a limited worker process.

    `files` are paths or (path, name) pairs, the name recorded as the source (an upload's
    original name). `on_file(done, total, name)` is called before each file is read.
    """
    pending = [(Path(f), None) if not isinstance(f, tuple) else (Path(f[0]), f[1]) for f in files]
    worker: _Worker | None = None
    try:
        for index, (path, given) in enumerate(pending):
            name = given or str(path.resolve())
            if on_file:
                on_file(index, len(pending), given or path.name)
            refused = live.refusal(path)
            if refused:
                yield Skipped(name, f"not read: {refused}")
                continue
            if worker is None:
                worker = _Worker(limits, len(pending) - index)
            found = worker.read(path, name, max_bytes, limits)
            if not worker.alive:
                worker = None
            yield from found
    finally:
        if worker is not None:
            worker.close()


def read_directory_isolated(
    path: str | Path,
    *,
    recursive: bool = False,
    extensions: Iterable[str] | None = None,
    include_hidden: bool = False,
    limits: Limits = Limits(),
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_file: Callable[[int, int, str], None] | None = None,
) -> Iterator[Item]:
    """`read_directory`, each file read by `read_files_isolated` (the listing stays here: it only stats)."""
    files = list_directory(path, recursive=recursive, extensions=extensions, include_hidden=include_hidden)
    if not files:
        yield Skipped(str(Path(path).resolve()), "no matching files")
        return
    yield from read_files_isolated(files, limits=limits, max_bytes=max_bytes, on_file=on_file)
