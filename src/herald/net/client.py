"""``SmppClient``: one ESME bind to an SMSC, kept up with reconnects and backoff.

Usage::

    client = SmppClient(ClientSettings(host, port, BindTransceiver(system_id=..., password=...)))
    await client.start()            # connects and binds in the background
    await client.wait_bound(10)     # optional: wait for the first bind
    resp = await client.submit(SubmitSm(...))   # limited by the window
    await client.stop()             # unbind, close, stop reconnecting

``submit`` (any request with a response, really) waits for window room, sends
and returns the response PDU; check ``resp.command_status``. It raises
``NotBound`` when no session is bound (the caller decides whether to wait
with ``wait_bound`` and retry), ``ConnectionClosed`` / ``ResponseTimeout`` /
``UnparsedResponse`` when the outcome is unknown (the SMSC may have accepted
it: a resend may duplicate).

Requests from the SMSC (deliver_sm: receipts and MO; data_sm) go to
``ClientHandler.on_request(client, conn, request)``; answer with
``conn.respond(...)`` — after storing a receipt durably, for instance. The
default answers ESME_ROK at once.

Reconnects: after a connection fails or ends (other than by ``stop``), the
client waits ``reconnect_min`` seconds, doubling up to ``reconnect_max``, with
jitter, and reconnects; a refused bind also backs off (a wrong password is not
retried faster than ``reconnect_max``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from dataclasses import dataclass, field

from herald.net._connection import ConnectionOwner, SmppConnection, SmppNetError
from herald.smpp.constants import CommandStatus
from herald.smpp.events import Closed, Event, ProtocolError, RequestReceived
from herald.smpp.pdus import BindRequest, Request, Response
from herald.smpp.session import SessionConfig
from herald.smpp.states import BOUND_STATES, Role

__all__ = ["BindFailed", "ClientHandler", "ClientSettings", "NotBound", "SmppClient"]

log = logging.getLogger("herald.smpp.client")


class NotBound(SmppNetError):
    """No bound session right now; nothing was sent."""


class BindFailed(SmppNetError):
    """The SMSC refused the bind (``status``)."""

    def __init__(self, status: int) -> None:
        name = CommandStatus(status).name if status in CommandStatus._value2member_map_ else status
        super().__init__(f"bind refused: {name}")
        self.status = status


@dataclass(frozen=True, slots=True)
class ClientSettings:
    host: str
    port: int
    bind: BindRequest = field(repr=False)  # the bind PDU to send (its type picks the mode)
    ssl: ssl.SSLContext | None = None
    server_hostname: str | None = None
    session: SessionConfig = field(default_factory=lambda: SessionConfig(role=Role.ESME))
    connect_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    max_unanswered: int = 1000
    name: str = "smpp-out"

    def __post_init__(self) -> None:
        if self.session.role is not Role.ESME:
            raise ValueError("a client's session takes the ESME role")


class ClientHandler:
    def on_request(self, client: SmppClient, conn: SmppConnection, request: Request) -> None:
        conn.respond(request.response())

    def on_bound(self, client: SmppClient, conn: SmppConnection) -> None:
        pass

    def on_unbound(self, client: SmppClient, conn: SmppConnection) -> None:
        pass


class SmppClient(ConnectionOwner):
    """See the module docstring."""

    def __init__(self, settings: ClientSettings, handler: ClientHandler | None = None) -> None:
        self.settings = settings
        self.handler = handler or ClientHandler()
        self.conn: SmppConnection | None = None
        self.last_error: BaseException | None = None
        self.binds = 0  # successful binds so far (reconnects included)
        self._bound = asyncio.Event()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ control

    @property
    def bound(self) -> bool:
        conn = self.conn
        return conn is not None and conn.is_open and conn.state in BOUND_STATES

    async def start(self) -> None:
        """Start connecting and binding in the background (returns at once)."""
        if self._runner is None:
            self._stopping = False  # started again after a stop (a slot regained)
            self._runner = asyncio.create_task(self._run(), name=self.settings.name)

    async def wait_bound(self, timeout: float) -> None:
        """Wait until bound; raise TimeoutError (with the last error) otherwise."""
        try:
            await asyncio.wait_for(self._bound.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.settings.name}: not bound ({self.last_error!r})") from None

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop reconnecting; unbind (bounded by ``timeout``) and close. No
        session of this client is open once it returns, whenever it is
        called (a connection being made meanwhile included)."""
        self._stopping = True
        conn = self.conn
        if conn is not None:
            await conn.aclose(timeout)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        late = self.conn
        if late is not None and late is not conn and late.transport is not None:
            await late.aclose(timeout)  # made while the runner was being stopped

    # ----------------------------------------------------------------- requests

    @property
    def window_room(self) -> int:
        conn = self.conn
        return conn.session.window_room if conn is not None and self.bound else 0

    async def submit(self, pdu: Request) -> Response:
        """Send ``pdu`` when the window has room; return its response."""
        conn = self.conn
        if conn is None or not self.bound:
            raise NotBound(self.settings.name)
        return await conn.request(pdu)

    # ------------------------------------------------------------------ session

    async def _run(self) -> None:
        settings = self.settings
        delay = settings.reconnect_min
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                await self._connect_and_bind(loop)
                delay = settings.reconnect_min
                assert self.conn is not None
                await asyncio.shield(self.conn.closed)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, SmppNetError) as exc:
                self.last_error = exc
                log.warning("%s: %s", settings.name, exc)
            finally:
                self._bound.clear()
            # stop() cancels this task, so the sleep never outlives the client
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(settings.reconnect_max, delay * 2)

    async def _connect_and_bind(self, loop: asyncio.AbstractEventLoop) -> None:
        settings = self.settings

        def made() -> SmppConnection:
            # Kept at once: a stop() that cancels the connect while asyncio is
            # handing the connection over still finds it to close.
            self.conn = SmppConnection(settings.session, self,
                                       max_unanswered=settings.max_unanswered,
                                       name=settings.name)  # fmt: skip
            return self.conn

        # asyncio.timeout, not wait_for: Python 3.11's wait_for returns a result
        # that arrives as its task is cancelled and swallows the cancellation,
        # and this client then bound after stop() had begun.
        async with asyncio.timeout(settings.connect_timeout):
            _, conn = await loop.create_connection(
                made, settings.host, settings.port, ssl=settings.ssl,
                server_hostname=settings.server_hostname if settings.ssl else None,
            )
        self.conn = conn
        if self._stopping:  # stop() began while connecting: never bind
            conn.close()
            return
        response = await conn.send(settings.bind)
        if response.command_status != CommandStatus.ESME_ROK:
            conn.close()
            raise BindFailed(response.command_status)
        self.binds += 1
        self._bound.set()
        self.handler.on_bound(self, conn)

    # -------------------------------------------------------- ConnectionOwner

    def on_event(self, conn: SmppConnection, event: Event) -> None:
        match event:
            case RequestReceived(request):
                self.handler.on_request(self, conn, request)
            case Closed():
                self._bound.clear()
                self.handler.on_unbound(self, conn)
            case ProtocolError(status, reason):
                log.info("%s: %s (%s)", conn.name, reason, status.name)
            case _:
                pass  # Bound / BindRejected resolve the bind future in _connect_and_bind
