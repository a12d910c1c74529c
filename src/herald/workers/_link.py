"""The link between ``herald serve``'s processes: wake-ups and metrics (private).

One ``AF_UNIX`` ``SOCK_SEQPACKET`` socket pair joins the front process
(intake, receipts to customers' binds) and the delivery process (dispatch,
webhooks). Each
datagram is one message: a kind octet, then a payload for the kinds that
carry one. The store carries the work itself; the link only says *when* to
look at it, so it may lose nothing that matters:

- Wake-ups coalesce: :meth:`Link.send` of a kind already waiting to go out
  is a no-op, and everything waiting goes out once per event-loop turn. A
  wake-up that cannot be sent because the peer is not reading (its buffer is
  full) is dropped: the peer has wake-ups of that kind waiting already, and
  every component also polls the store at a low rate.
- A report (metrics, the upstream binds) that cannot be sent is dropped; the
  next one follows.
- End of file (the peer died or closed) is reported once through ``on_closed``.

No process trusts the link beyond this: a message of an unknown kind is
logged and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Final

__all__ = [
    "ACCEPTED",
    "EVENTS_SMPP",
    "MAX_MESSAGE",
    "METRICS",
    "QUIT",
    "READY",
    "UPSTREAMS",
    "Link",
    "link_pair",
]

log = logging.getLogger("herald.workers")

#: Front -> delivery: messages were accepted (committed): claim.
ACCEPTED: Final = b"A"
#: Delivery -> front: it committed SMPP events (receipts, MO for customers' binds).
EVENTS_SMPP: Final = b"S"
#: Delivery -> front: started (binds being made); the front may announce itself.
READY: Final = b"R"
#: Front -> delivery: stop gracefully (hand work back, unbind) and exit.
QUIT: Final = b"Q"
#: Delivery -> front: ``M`` + its metrics in the Prometheus text format.
METRICS: Final = b"M"
#: Delivery -> front: ``U`` + its connectors' bound sessions, JSON ``{"name": bound}``.
UPSTREAMS: Final = b"U"
#: The largest datagram read or sent: a metrics snapshot is a few KiB; the
#: bound keeps a confused peer from making this process allocate without end.
MAX_MESSAGE: Final = 256 * 1024
#: Datagrams read per wake-up of the reader before the loop gets a turn.
_READS_PER_TURN: Final = 64
_SIGNALS: Final = frozenset({ACCEPTED, EVENTS_SMPP, READY, QUIT})
_REPORTS: Final = frozenset({METRICS, UPSTREAMS})  # the kinds with a payload


def link_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of sockets; give one end to the child process."""
    one, two = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for end in (one, two):  # metrics snapshots must fit whole
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE)
    return one, two


class Link:
    """One end of the pair, driven by the running event loop.

    ``on_message(kind, payload)`` is called for every message received,
    ``on_closed()`` once when the peer is gone. Call :meth:`close` when done.
    """

    def __init__(
        self,
        sock: socket.socket,
        on_message: Callable[[bytes, bytes], None],
        on_closed: Callable[[], None] = lambda: None,
    ) -> None:
        self._sock = sock
        self._on_message = on_message
        self._on_closed = on_closed
        self._pending: set[bytes] = set()
        self._flushing = False
        self._closed = False
        sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, kind: bytes) -> None:
        """Queue a one-octet signal; it goes out at the end of this loop turn."""
        if self._closed or kind in self._pending:
            return
        self._pending.add(kind)
        if not self._flushing:
            self._flushing = True
            self._loop.call_soon(self._flush)

    def send_now(self, kind: bytes, payload: bytes = b"") -> bool:
        """Send one message at once; ``False`` if the peer's buffer is full or it is gone."""
        if self._closed:
            return False
        try:
            self._sock.send(kind + payload)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._peer_gone()
            return False
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()

    def _flush(self) -> None:
        self._flushing = False
        pending, self._pending = self._pending, set()
        for kind in pending:
            self.send_now(kind)

    def _readable(self) -> None:
        for _ in range(_READS_PER_TURN):
            try:
                data = self._sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._peer_gone()
                return
            kind, payload = data[:1], data[1:]
            if kind not in _SIGNALS and kind not in _REPORTS:
                log.warning("link: ignoring a message of unknown kind %r", kind)
                continue
            try:
                self._on_message(kind, payload)
            except Exception:
                log.exception("link: handling %r failed", kind)

    def _peer_gone(self) -> None:
        if self._closed:
            return
        self.close()
        self._on_closed()
