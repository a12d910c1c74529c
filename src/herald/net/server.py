"""``SmppServer``: accept SMPP binds over TCP (optionally TLS), one Session each.

The application is a ``ServerHandler``:

* ``authenticate(conn, bind)`` (async) returns the bind response to send:
  ``bind.response(system_id=...)`` to accept, ``bind.response(ESME_RINVPASWD)``
  (etc.) to refuse. At most ``max_concurrent_auth`` run at once (password
  hashing is expensive; a bind flood must not starve the loop); the others wait,
  bounded by the session_init timeout, which closes a connection that does not
  bind in time.
* ``on_request(conn, request)`` for every request of a bound peer (submit_sm,
  data_sm, query_sm, ...). Answer with ``conn.respond(request.response(...))``,
  now or later (after a store commit, say). While the application owes more
  than ``max_unanswered`` answers on a connection, the server stops reading
  from it: TCP slows the peer down.
* ``on_bound(conn)``, ``on_closed(conn, reason)`` bracket a bound session;
  ``conn.request(deliver_sm)`` sends to the peer (receipts, MO messages).

Refusals a peer sees: ``ESME_RINVBNDSTS`` for a PDU in the wrong state (the
session), the handler's bind status (and then the connection is closed: a
client tries again on a new one), ``ESME_RSYSERR`` if ``authenticate`` raised
(logged, never sent as text), and an immediate close by the admission rules.

Admission: connections that have not bound yet cost us a session and hold a
slot without proving anything, so they are kept few and short-lived while
bound customers always find room:

* at most ``max_connections`` in all, and ``max_per_address`` from one client
  address (bound or not);
* at most ``max_unbound_per_address`` not yet bound from one address: a new
  one beyond it is closed at once;
* at most ``max_unbound`` not yet bound in all: a new one beyond it evicts the
  oldest unbound connection of the address holding the most (an honest client
  binds within milliseconds of connecting and holds one; a flood holds many);
* an unbound connection lives ``session.session_init_timeout`` at most.

Since ``max_unbound`` is far below ``max_connections``, unbound connections can
never fill the room bound customers use.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from herald.net._connection import ConnectionOwner, SmppConnection
from herald.smpp.constants import CommandStatus
from herald.smpp.events import (
    BindRequested,
    Closed,
    CloseReason,
    Event,
    ProtocolError,
    RequestReceived,
)
from herald.smpp.pdus import BindRequest, BindResponse, Request
from herald.smpp.session import SessionConfig
from herald.smpp.states import Role

__all__ = ["ServerConnection", "ServerHandler", "ServerSettings", "SmppServer"]

log = logging.getLogger("herald.smpp.server")

#: Connections beyond this are closed at once: each costs a session and buffers.
DEFAULT_MAX_CONNECTIONS: Final = 1000
#: Connections from one client address, bound or not.
DEFAULT_MAX_PER_ADDRESS: Final = 100
#: Connections not yet bound, in all and from one address (see the module docstring).
DEFAULT_MAX_UNBOUND: Final = 64
DEFAULT_MAX_UNBOUND_PER_ADDRESS: Final = 8
#: Seconds between two warnings about refused connections (a flood logs a count).
REFUSAL_LOG_INTERVAL: Final = 5.0
#: Password checks in flight at once (argon2 costs ~100 ms of CPU each).
DEFAULT_MAX_CONCURRENT_AUTH: Final = 4


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 2775  # 0 picks a free port (tests)
    ssl: ssl.SSLContext | None = None
    session: SessionConfig = field(
        default_factory=lambda: SessionConfig(role=Role.SMSC, window=64))
    max_unanswered: int = 1000  # per connection, before we stop reading
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    max_unbound: int = DEFAULT_MAX_UNBOUND
    max_unbound_per_address: int = DEFAULT_MAX_UNBOUND_PER_ADDRESS
    max_concurrent_auth: int = DEFAULT_MAX_CONCURRENT_AUTH

    def __post_init__(self) -> None:
        if self.session.role is not Role.SMSC:
            raise ValueError("a server's sessions take the SMSC role")
        if min(self.max_connections, self.max_per_address, self.max_unbound,
               self.max_unbound_per_address) < 1:
            raise ValueError("connection limits must be positive")


class ServerConnection(SmppConnection):
    """A customer's connection. ``context`` is the application's (e.g. the account)."""

    system_id: str | None
    context: Any

    def __init__(self, server: SmppServer, settings: ServerSettings, conn_id: int) -> None:
        super().__init__(settings.session, server, max_unanswered=settings.max_unanswered,
                         name=f"smpp-in-{conn_id}")
        self.server = server
        self.conn_id = conn_id
        self.system_id = None
        self.context = None
        self.address = ""  # the client's address, once connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = self.peer
        self.address = str(peer[0]) if peer else ""
        self.server.admit(self)


class ServerHandler:
    """Override what the application needs; the defaults refuse every bind."""

    async def authenticate(self, conn: ServerConnection, bind: BindRequest) -> BindResponse:
        return bind.response(CommandStatus.ESME_RBINDFAIL)

    def on_bound(self, conn: ServerConnection) -> None:
        pass

    def on_request(self, conn: ServerConnection, request: Request) -> None:
        conn.respond(request.response(CommandStatus.ESME_RSYSERR))

    def on_closed(self, conn: ServerConnection, reason: CloseReason) -> None:
        pass


class SmppServer(ConnectionOwner):
    """See the module docstring. ``await start()``, then ``await stop()``."""

    def __init__(self, handler: ServerHandler, settings: ServerSettings | None = None) -> None:
        self.handler = handler
        self.settings = settings or ServerSettings()
        self.connections: set[ServerConnection] = set()
        self._server: asyncio.Server | None = None
        self._auth: asyncio.Semaphore | None = None
        self._next_id = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_address: Counter[str] = Counter()
        #: Connections not bound yet, per address, oldest first.
        self._unbound: dict[str, dict[ServerConnection, None]] = {}
        self._unbound_count = 0
        self.refused = 0  # connections closed by the admission rules
        self._refusals_logged_at = -REFUSAL_LOG_INTERVAL
        self._refusals_unlogged = 0

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._auth = asyncio.Semaphore(self.settings.max_concurrent_auth)
        self._server = await loop.create_server(
            self._make_connection, self.settings.host, self.settings.port,
            ssl=self.settings.ssl, reuse_address=True,
        )

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, unbind every session (bounded), close."""
        self.stop_accepting()
        conns = list(self.connections)
        if conns:
            await asyncio.gather(*(c.aclose(timeout) for c in conns), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    def _make_connection(self) -> SmppConnection:
        self._next_id += 1
        return ServerConnection(self, self.settings, self._next_id)

    # -------------------------------------------------------------- admission

    @property
    def unbound(self) -> int:
        """Connections open and not bound (yet)."""
        return self._unbound_count

    def admit(self, conn: ServerConnection) -> None:
        """Count a new connection in, or close it (see the module docstring)."""
        s, address = self.settings, conn.address
        if len(self.connections) >= s.max_connections:
            self._refuse(conn, f"{len(self.connections)} connections open")
            return
        if self._per_address[address] >= s.max_per_address:
            self._refuse(conn, f"{address} has {s.max_per_address} connections open")
            return
        waiting = self._unbound.setdefault(address, {})
        if len(waiting) >= s.max_unbound_per_address:
            self._refuse(conn, f"{address} has {len(waiting)} connections not bound")
            return
        if self._unbound_count >= s.max_unbound:
            crowded = max(self._unbound.values(), key=len)
            oldest = next(iter(crowded))
            self._refuse(oldest, f"{self._unbound_count} connections not bound; "
                                 f"the oldest of {oldest.address} makes room")
        self.connections.add(conn)
        self._per_address[address] += 1
        waiting[conn] = None
        self._unbound_count += 1

    def _bound(self, conn: ServerConnection) -> None:
        """``conn`` no longer counts as unbound (it bound, or it is gone)."""
        waiting = self._unbound.get(conn.address)
        if waiting is None or conn not in waiting:
            return
        del waiting[conn]
        self._unbound_count -= 1
        if not waiting:
            del self._unbound[conn.address]

    def _forget(self, conn: ServerConnection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self._bound(conn)
        self._per_address[conn.address] -= 1
        if self._per_address[conn.address] <= 0:
            del self._per_address[conn.address]

    def _refuse(self, conn: ServerConnection, why: str) -> None:
        self._forget(conn)
        self.refused += 1
        conn.close()
        if conn.transport is not None:
            conn.transport.abort()  # nothing to flush: never bound
        now = conn.loop.time()
        if now - self._refusals_logged_at < REFUSAL_LOG_INTERVAL:
            self._refusals_unlogged += 1
            return
        more = (f" ({self._refusals_unlogged} more refused since the last warning)"
                if self._refusals_unlogged else "")
        log.warning("%s: closed: %s%s", conn.name, why, more)
        self._refusals_logged_at, self._refusals_unlogged = now, 0

    # -------------------------------------------------------- ConnectionOwner

    def on_event(self, conn: SmppConnection, event: Event) -> None:
        assert isinstance(conn, ServerConnection)
        match event:
            case RequestReceived(request):
                self.handler.on_request(conn, request)
            case BindRequested(request):
                self._spawn(self._authenticate(conn, request))
            case Closed(reason):
                self._forget(conn)
                if conn.system_id is not None:
                    self.handler.on_closed(conn, reason)
            case ProtocolError(status, reason):
                log.info("%s: %s (%s)", conn.name, reason, status.name)
            case _:
                pass

    def on_connection_lost(self, conn: SmppConnection, exc: Exception | None) -> None:
        if isinstance(conn, ServerConnection):
            self._forget(conn)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _authenticate(self, conn: ServerConnection, bind: BindRequest) -> None:
        assert self._auth is not None
        try:
            async with self._auth:
                if not conn.is_open:
                    return
                response = await self.handler.authenticate(conn, bind)
        except Exception:
            log.exception("%s: authentication failed with an error", conn.name)
            response = bind.response(CommandStatus.ESME_RSYSERR)
        if not conn.is_open:
            return
        if response.sequence_number != bind.sequence_number:
            response = response.with_header(bind.sequence_number)
        conn.respond(response)
        if response.command_status == CommandStatus.ESME_ROK:
            conn.system_id = bind.system_id
            self._bound(conn)
            self.handler.on_bound(conn)
        else:
            log.info("%s: bind refused for system_id %r (%s)", conn.name, bind.system_id,
                     CommandStatus(response.command_status).name
                     if response.command_status in CommandStatus._value2member_map_
                     else response.command_status)
            conn.close()  # the answer goes out first; a retry takes a new connection
