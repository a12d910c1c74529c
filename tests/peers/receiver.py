"""A local HTTP server that records every request it gets: Kannel's dlr-url and
get-url callbacks, and later herald's webhooks.

    with HttpReceiver() as rx:
        url = rx.url("/dlr")                      # http://127.0.0.1:<ephemeral>/dlr
        ...
        call = rx.calls.wait_for(lambda c: c.path == "/dlr", timeout=5)[0]
        call.param("type"), call.param_bytes("text")

Every request is answered with ``status`` and ``body`` (settable between
requests, e.g. to make a webhook receiver fail) and recorded as a frozen
``Callback``; the server runs on daemon threads and stops in ``close()``.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import ClassVar

from .base import LOOPBACK, Recorder

__all__ = ["Callback", "HttpReceiver"]

# A callback body larger than this is refused with 413: Kannel's and herald's
# callbacks are a few hundred bytes; a megabyte means something is wrong.
MAX_BODY = 1 << 20
# serve_forever's shutdown poll: the bound on how long close() waits for the loop.
SHUTDOWN_POLL = 0.05


@dataclass(frozen=True)
class Callback:
    """One recorded request. ``query`` is the raw (still percent-encoded) query."""

    method: str
    path: str
    query: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    at: float = field(compare=False)  # time.monotonic() on arrival

    def params(self) -> dict[str, str]:
        """Query parameters decoded as UTF-8 (undecodable octets replaced); last wins."""
        return dict(urllib.parse.parse_qsl(self.query, keep_blank_values=True, errors="replace"))

    def param(self, name: str) -> str | None:
        return self.params().get(name)

    def param_bytes(self, name: str) -> bytes | None:
        """A query parameter's exact octets (for binary and UCS-2 payloads)."""
        for pair in self.query.split("&"):
            key, _, value = pair.partition("=")
            if urllib.parse.unquote_plus(key) == name:
                return urllib.parse.unquote_to_bytes(value.replace("+", " "))
        return None

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413, "callback body too large")
            return
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        owner = self.server.owner
        owner.calls.append(
            Callback(self.command, path, query, body, tuple(self.headers.items()), time.monotonic())
        )
        status, reply = owner.status, owner.body
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = _record

    def log_message(self, format: str, *args: object) -> None:
        """Requests are in ``calls``; keep pytest's output clean."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HttpReceiver


class HttpReceiver:
    """Records every HTTP request to ``url(...)`` in ``calls`` (a ``Recorder``)."""

    instances: ClassVar[int] = 0

    def __init__(self, *, status: int = 200, body: bytes = b"ok") -> None:
        self.status = status
        self.body = body
        self.calls: Recorder[Callback] = Recorder("http receiver")
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("HttpReceiver is not started")
        port: int = self._server.server_address[1]
        return port

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def start(self) -> HttpReceiver:
        server = _Server((LOOPBACK, 0), _Handler)
        server.owner = self
        self._server = server
        HttpReceiver.instances += 1
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
            name=f"http-receiver-{HttpReceiver.instances}", daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.calls.close("receiver closed")

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
