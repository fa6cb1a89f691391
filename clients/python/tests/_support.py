"""Test helpers: a scripted Hookline stand-in on a real 127.0.0.1 socket."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Sequence
from typing import Any

from hookline import Event

API_KEY = "sk-test-SECRET-never-shown-1234"


@dataclass
class Reply:
    """One scripted answer. ``drop`` closes the connection without answering; ``delay`` waits first."""

    status: int = 202
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class FakeHookline:
    """A real HTTP server on 127.0.0.1 that answers from a script, then 202s.

    Unscripted requests to ``/v1/events`` answer ``{"id": <the sent id>}``; to
    ``/v1/events/batch`` every event is accepted.
    """

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    fake.requests.append(Seen("POST", self.path, headers, body, time.monotonic()))
                    reply = fake.script.pop(0) if fake.script else None
                if reply is None:
                    reply = Reply(202, fake.default_body(self.path, body))
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                ctype = "application/json" if reply.status < 400 else "application/problem+json"
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @staticmethod
    def default_body(path: str, body: Any) -> Any:
        if path.endswith("/batch"):
            events = body.get("events", []) if isinstance(body, dict) else []
            return {
                "accepted": len(events),
                "rejected": 0,
                "failed": 0,
                "results": [
                    {"index": i, "id": e.get("id"), "status": "accepted"} for i, e in enumerate(events)
                ],
            }
        return {"id": body.get("id", "evt_server") if isinstance(body, dict) else "evt_server"}

    def then(self, *replies: Reply) -> FakeHookline:
        with self._lock:
            self.script.extend(replies)
        return self

    def start(self) -> FakeHookline:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 body as Hookline sends it."""
    slug = title.lower().replace(" ", "-")
    return {"type": f"urn:hookline:problem:{slug}", "title": title, "status": status, "detail": detail, **extra}


#: A tenant key as Hookline makes them (`hk_<tenant>.<key id>.<secret>`); its secret must never show.
TENANT_KEY_SECRET = "Zt9Qw3SECRETtenantPart0000000000000000000000"
TENANT_KEY = f"hk_acme.key_0123456789abcdef0123456789abcdef.{TENANT_KEY_SECRET}"

#: Not `^[A-Za-z0-9_-]{1,64}$`.
BAD_TENANT_IDS = ["", "acme corp", "acme/1", "acme.eu", "x" * 65, "caf\u00e9", "acme\n", 42]


class Sink:
    """A fake sender: records every batch; can be slow, fail, or wait for a signal."""

    def __init__(self, *, delay: float = 0.0, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.batches: list[list[Event]] = []
        self.delay, self.fail, self.gate = delay, fail, gate
        self.calls = 0

    def send_batch(self, events: Sequence[Event]) -> None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("hookline is down")
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [e for b in self.batches for e in b]
