"""Frames for clients of another process: WebSocket fan-out over PostgreSQL LISTEN/NOTIFY.

Two servers on one PostgreSQL database (web + ws, or replicas behind a load
balancer) serve the same agents; a client connected to one must hear the
agent's frames from a step the other runs. Each process sends its own clients
directly and hands every frame to the others through `pg_notify`; each listens
on the channel and passes what other processes sent to its local clients,
one frame at a time, in the order they were sent.

NOTIFY payloads stop at 8,000 bytes, so a bigger frame is stored in
`broadcast_frames` and only its id travels; such rows are deleted after a few
minutes. Publishing and listening run on threads with connections of their
own, so the event loop never waits on the database; a dropped connection is
reopened.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable

log = logging.getLogger(__name__)

CHANNEL = "memgpt_frames"
MAX_PAYLOAD = 7_000  # bytes; below PostgreSQL's 8,000 with room for the envelope
KEEP_STORED = "10 minutes"
RETRY = 1.0  # seconds before reconnecting


class FrameRelay:
    """Publishes this process's frames and delivers other processes' frames through `deliver(agent_id, data)`."""

    def __init__(self, url: str, deliver: Callable[[int, str], None]):
        self.url = url
        self.deliver = deliver
        self.origin = uuid.uuid4().hex
        self._out: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self.listening = threading.Event()  # set once LISTEN is in place (tests wait on it)
        self._threads = [
            threading.Thread(target=self._publish_loop, name="relay-publish", daemon=True),
            threading.Thread(target=self._listen_loop, name="relay-listen", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def publish(self, agent_id: int, data: str) -> None:
        self._out.put((agent_id, data))

    def close(self) -> None:
        self._stop.set()
        self._out.put(None)

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True, application_name="memgpt-relay")

    def _publish_loop(self) -> None:
        conn = None
        sent = 0
        while not self._stop.is_set():
            item = self._out.get()
            if item is None:
                break
            agent_id, data = item
            while not self._stop.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = self._connect()
                    payload = json.dumps({"o": self.origin, "a": agent_id, "d": data}, ensure_ascii=False)
                    if len(payload.encode("utf-8")) > MAX_PAYLOAD:
                        row = conn.execute("INSERT INTO broadcast_frames (payload) VALUES (%s) RETURNING id",
                                           [data]).fetchone()
                        payload = json.dumps({"o": self.origin, "a": agent_id, "r": row[0]})
                    conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])
                    sent += 1
                    if sent % 500 == 0:
                        conn.execute(f"DELETE FROM broadcast_frames WHERE created_at < now() - interval '{KEEP_STORED}'")
                    break
                except Exception:
                    log.warning("could not hand a frame to the other servers; retrying", exc_info=True)
                    conn = None
                    time.sleep(RETRY)
        if conn is not None:
            conn.close()

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            try:
                # Two connections: a query cannot run on the one whose notifies() is being read.
                with self._connect() as conn, self._connect() as reader:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._receive(reader, note.payload)
            except Exception:
                self.listening.clear()
                if not self._stop.is_set():
                    log.warning("lost the frame channel to the other servers; reconnecting", exc_info=True)
                    time.sleep(RETRY)

    def _receive(self, conn, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message.get("o") == self.origin:
                return
            data = message.get("d")
            if data is None:
                row = conn.execute("SELECT payload FROM broadcast_frames WHERE id = %s", [message["r"]]).fetchone()
                if row is None:
                    return
                data = row[0]
            self.deliver(int(message["a"]), data)
        except Exception:
            log.exception("a frame from another server could not be delivered")
