"""PyPI ``smpp34`` (Rust core) as an SMPP client and as an SMPP server (asyncio).

smpp34 is asyncio-native, so these wrappers are too; use them from
``async def`` tests (pytest-asyncio, ``asyncio_mode = auto``).

Server (an SMSC for herald's client, or for another peer):

    async with Smpp34Server() as smsc:           # 127.0.0.1, a free port
        ... connect to smsc.port ...
        (submit,) = await smsc.submits.await_for(timeout=5)
        await smsc.receipts.await_for(lambda r: r.message_id == submit.message_id, timeout=5)

Every submit_sm is answered by ``policy(submit) -> Decision`` (default: accept
with the next decimal id, and when registered_delivery asks for it, a DELIVRD
receipt 20 ms later). A Decision can reject, choose the id, choose the receipt
stat, and send the receipt *before* the submit_sm_resp (smpp34's natural
behaviour on a busy server, and the case Kannel 1.4.5 mishandles).
``await smsc.deliver(...)`` pushes an MO deliver_sm to a bound ESME.

Client (an ESME against herald's server):

    async with Smpp34Client(port, "esme1", "secret") as esme:
        resp = await esme.submit("4915112345", b"Hello", registered_delivery=1)
        (rcpt,) = await esme.delivered.await_for(lambda d: d.is_receipt, timeout=5)

A background task drains every deliver_sm (smpp34 acknowledges them itself) into
``delivered``. Quirks of smpp34 1.5.0 are listed in tests/peers/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import Any

from . import missing
from .base import (
    LOOPBACK,
    PeerError,
    PeerRefused,
    PeerStartError,
    Recorder,
    SmPdu,
    SubmitResp,
    free_port,
)

__all__ = ["Bound", "Decision", "Delivered", "Smpp34Client", "Smpp34Server", "Submit"]

# Server start attempts: the free port may be taken before smpp34 binds it.
START_ATTEMPTS = 5
# Bound on connect + bind of the client.
CONNECT_TIMEOUT = 5.0
# Bound on each request the wrappers await (submit_sm, deliver_sm, unbind).
REQUEST_TIMEOUT = 5.0
# How long stop()/close() yield to smpp34's threads before returning (see _settle).
SETTLE_DELAY = 0.05
# Default delay between a submit_sm_resp and its receipt.
RECEIPT_DELAY = 0.02
# SMPP 3.4 §5.2.28 message_state for each receipt stat: word.
MESSAGE_STATE = {"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5,
                 "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}
# SMPP 3.4 §5.2.12 / §5.3.2.
ESM_DELIVERY_RECEIPT = 0x04
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_STATE = 0x0427
# smpp34's names for the three bind operations.
BIND_TYPES = {"transceiver": "TRX", "transmitter": "TX", "receiver": "RX"}
_STATUS_IN_ERROR = re.compile(r"\(0x([0-9A-Fa-f]{8})\)")


def _smpp34() -> ModuleType:
    try:
        import smpp34
    except ImportError:
        missing("smpp34 (PyPI)", "scripts/bootstrap")
    return smpp34


async def _settle() -> None:
    """Let smpp34's tokio threads finish with the Python objects they still hold.

    smpp34 1.5.0 resolves a pending ``next()`` from a tokio thread after the
    session or server is gone; if that happens while the interpreter finalizes,
    the process dies (SIGSEGV / "PyGILState_Release" abort) after the tests
    passed. Dropping the objects and yielding to the loop briefly while it still
    runs avoided that in every run here (0 crashes in 65 runs, against 10 in 45
    without; see tests/peers/README.md).
    """
    gc.collect()
    await asyncio.sleep(SETTLE_DELAY)


def _tlvs(pairs: tuple[tuple[int, bytes], ...]) -> list[Any]:
    smpp34 = _smpp34()
    return [smpp34.Tlv(tag, value) for tag, value in pairs]


def _pairs(tlvs: list[Any]) -> tuple[tuple[int, bytes], ...]:
    return tuple((int(t.tag), bytes(t.value)) for t in tlvs)


def _status(exc: BaseException) -> int:
    """The command_status an SmppError names ("ESME_RBINDFAIL (0x0000000D)"), or -1."""
    match = _STATUS_IN_ERROR.search(str(exc))
    return int(match.group(1), 16) if match else -1


def receipt_text(message_id: str, stat: str, submitted: float, done: float, err: int = 0) -> bytes:
    """The SMPP 3.4 Appendix B receipt text (10-digit dates, UTC)."""
    def date(at: float) -> str:
        return time.strftime("%y%m%d%H%M", time.gmtime(at))
    dlvrd = "001" if stat == "DELIVRD" else "000"
    return (f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{date(submitted)} "
            f"done date:{date(done)} stat:{stat} err:{err:03d} text:").encode("ascii")


# ---- server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    """A submit_sm smpp34's server received, and the id it answered with."""

    session_id: str
    system_id: str
    source_addr: str
    destination_addr: str
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    tlvs: tuple[tuple[int, bytes], ...]
    message_id: str | None  # None when rejected
    command_status: int
    at: float = field(compare=False)

    def tlv(self, tag: int) -> bytes | None:
        return next((value for t, value in self.tlvs if t == tag), None)


@dataclass(frozen=True)
class Decision:
    """How the server answers one submit_sm."""

    command_status: int = 0
    message_id: str | None = None  # None: the server's next id
    receipt: str | None = "DELIVRD"  # stat: word; None for no receipt
    receipt_delay: float = RECEIPT_DELAY
    receipt_before_resp: bool = False


@dataclass(frozen=True)
class Bound:
    session_id: str
    system_id: str


@dataclass(frozen=True)
class Delivered:
    """A deliver_sm the server sent (receipt or MO) and the ESME's answer."""

    session_id: str
    deliver: SmPdu
    command_status: int  # of deliver_sm_resp; -1 when it failed
    message_id: str | None = None  # the receipted id, for receipts


def accept_all(submit: Submit) -> Decision:
    return Decision()


class Smpp34Server:
    """smpp34's SMSC on 127.0.0.1; see the module docstring."""

    def __init__(
        self, *, policy: Callable[[Submit], Decision] = accept_all,
        message_ids: Iterator[str] | None = None, system_id: str = "smpp34",
    ) -> None:
        self.policy = policy
        self.system_id = system_id
        self._ids = message_ids or (str(n) for n in itertools.count(1))
        self.port = 0
        self.binds: Recorder[Bound] = Recorder("smpp34 server binds")
        self.unbinds: Recorder[str] = Recorder("smpp34 server unbinds")
        self.submits: Recorder[Submit] = Recorder("smpp34 server submits")
        self.receipts: Recorder[Delivered] = Recorder("smpp34 server deliver_sm sent")
        self._server: Any = None
        self._esmes: dict[str, Any] = {}
        self._latest: str | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None

    async def start(self) -> Smpp34Server:
        smpp34 = _smpp34()
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            server = smpp34.Server(LOOPBACK, port, system_id=self.system_id)
            try:
                await server.start()
            except smpp34.SmppError as exc:
                if "in use" not in str(exc) or attempt == START_ATTEMPTS:
                    raise PeerStartError(f"smpp34 server did not start: {exc}") from exc
                continue
            self._server, self.port = server, port
            break
        self._loop_task = asyncio.create_task(self._run(), name="smpp34-server")
        return self

    async def _run(self) -> None:
        smpp34 = _smpp34()
        try:
            while True:
                event = await self._server.next()
                if isinstance(event, smpp34.Esme):
                    self._esmes[event.session_id] = event
                    self._latest = event.session_id
                    self.binds.append(Bound(event.session_id, event.system_id))
                elif isinstance(event, smpp34.SubmitSmEvent):
                    self._spawn(self._answer(event))
                elif isinstance(event, smpp34.Unbound):
                    self._esmes.pop(event.session_id, None)
                    self.unbinds.append(event.session_id)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced by every later wait via close()
            self.failure = exc
            for recorder in (self.binds, self.submits, self.receipts, self.unbinds):
                recorder.close(f"smpp34 server loop failed: {exc!r}")

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """Keep a failed answer task's error (for the test to see) instead of losing it
        to asyncio's "exception was never retrieved" at garbage collection."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.failure = task.exception()

    async def _answer(self, event: Any) -> None:
        esme = self._esmes.get(event.session_id)
        at = time.time()
        probe = Submit(
            event.session_id, esme.system_id if esme else "", event.source_addr,
            event.destination_addr, event.esm_class, event.data_coding,
            event.registered_delivery, bytes(event.short_message), _pairs(event.tlvs),
            None, 0, at,
        )
        decision = self.policy(probe)
        ok = decision.command_status == 0
        message_id = (decision.message_id or next(self._ids)) if ok else None
        submit = dataclasses.replace(probe, message_id=message_id,
                                     command_status=decision.command_status)
        wants = ok and decision.receipt is not None and submit.registered_delivery & 0x01
        if wants and decision.receipt_before_resp:
            await self._receipt(submit, decision, at)
        if ok:
            assert message_id is not None
            event.accept(message_id)
        else:
            event.reject(decision.command_status)
        self.submits.append(submit)
        if wants and not decision.receipt_before_resp:
            await asyncio.sleep(decision.receipt_delay)
            await self._receipt(submit, decision, at)

    async def _receipt(self, submit: Submit, decision: Decision, submitted: float) -> None:
        assert submit.message_id is not None and decision.receipt is not None
        stat = decision.receipt
        tlvs = ((TAG_RECEIPTED_MESSAGE_ID, submit.message_id.encode("ascii") + b"\x00"),
                (TAG_MESSAGE_STATE, bytes([MESSAGE_STATE.get(stat, 7)])))
        await self.deliver(
            submit.source_addr, receipt_text(submit.message_id, stat, submitted, time.time()),
            source_addr=submit.destination_addr, esm_class=ESM_DELIVERY_RECEIPT,
            tlvs=tlvs, session_id=submit.session_id, receipted=submit.message_id,
        )

    async def deliver(
        self, destination_addr: str, short_message: bytes, *, source_addr: str = "",
        esm_class: int = 0, data_coding: int = 0, tlvs: tuple[tuple[int, bytes], ...] = (),
        session_id: str | None = None, receipted: str | None = None,
    ) -> Delivered:
        """Send a deliver_sm (an MO by default) to ``session_id`` or the latest bound ESME."""
        sid = session_id or self._latest
        esme = self._esmes.get(sid or "")
        if esme is None:
            raise PeerError(f"smpp34 server: no bound ESME session {sid!r} to deliver to")
        message = SmPdu(source_addr, destination_addr, esm_class, data_coding,
                            short_message, tlvs)
        try:
            resp = await asyncio.wait_for(
                esme.deliver_sm(destination_addr, short_message, source_addr=source_addr,
                                esm_class=esm_class, data_coding=data_coding,
                                tlvs=_tlvs(tlvs)),
                REQUEST_TIMEOUT,
            )
            status = int(resp.command_status)
        except (TimeoutError, _smpp34().SmppError):
            status = -1
        delivered = Delivered(esme.session_id, message, status, receipted)
        self.receipts.append(delivered)
        return delivered

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._loop_task] if self._loop_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for esme in list(self._esmes.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(esme.unbind(), REQUEST_TIMEOUT)
        self._esmes.clear()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        for recorder in (self.binds, self.submits, self.receipts, self.unbinds):
            recorder.close("smpp34 server stopped")
        await _settle()

    async def __aenter__(self) -> Smpp34Server:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


# ---- client ---------------------------------------------------------------------------


class Smpp34Client:
    """smpp34's ESME bound to ``host:port``; see the module docstring."""

    def __init__(
        self, port: int, system_id: str, password: str, *, host: str = LOOPBACK,
        bind_type: str = "transceiver", system_type: str = "", window_size: int = 10,
    ) -> None:
        self.host, self.port = host, port
        self.system_id, self.password = system_id, password
        self.bind_type, self.system_type, self.window_size = bind_type, system_type, window_size
        self.delivered: Recorder[SmPdu] = Recorder("smpp34 client deliver_sm")
        self.disconnected = asyncio.Event()
        self._client: Any = None
        self._smsc: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> Smpp34Client:
        """Connect and bind. Raises ``PeerRefused`` (``.status``) when the bind is refused."""
        smpp34 = _smpp34()
        self._client = smpp34.Client(
            self.host, self.port, self.system_id, self.password,
            bind_type=BIND_TYPES[self.bind_type],
            system_type=self.system_type, window_size=self.window_size,
            connect_timeout_ms=int(CONNECT_TIMEOUT * 1000),
        )
        try:
            self._smsc = await asyncio.wait_for(self._client.connect(), CONNECT_TIMEOUT * 2)
        except smpp34.SmppError as exc:
            raise PeerRefused(f"smpp34 client bind to {self.host}:{self.port} failed: {exc}",
                              status=_status(exc)) from exc
        self._reader = asyncio.create_task(self._read(), name="smpp34-client-reader")
        return self

    async def _read(self) -> None:
        smpp34 = _smpp34()
        try:
            while True:
                event = await self._smsc.next()
                if isinstance(event, smpp34.Disconnected):
                    break
                self.delivered.append(SmPdu(
                    source_addr=event.source_addr, destination_addr=event.destination_addr,
                    esm_class=event.esm_class, data_coding=event.data_coding,
                    short_message=bytes(event.short_message), tlvs=_pairs(event.tlvs),
                    registered_delivery=event.registered_delivery,
                    source_addr_ton=event.source_addr_ton, source_addr_npi=event.source_addr_npi,
                    dest_addr_ton=event.dest_addr_ton, dest_addr_npi=event.dest_addr_npi,
                    protocol_id=event.protocol_id, service_type=event.service_type,
                ))
        finally:
            self.disconnected.set()
            self.delivered.close("smpp34 client disconnected")

    async def submit(
        self, destination_addr: str, short_message: bytes = b"", *, source_addr: str = "",
        data_coding: int = 0, esm_class: int = 0, registered_delivery: int = 0,
        source_addr_ton: int = 0, source_addr_npi: int = 0, dest_addr_ton: int = 0,
        dest_addr_npi: int = 0, tlvs: tuple[tuple[int, bytes], ...] = (),
        timeout: float = REQUEST_TIMEOUT,
    ) -> SubmitResp:
        """submit_sm and its response (a negative status is returned, not raised)."""
        if self._smsc is None:
            raise PeerError("smpp34 client: connect() first")
        resp = await asyncio.wait_for(self._smsc.submit_sm(
            destination_addr, short_message, source_addr=source_addr, data_coding=data_coding,
            esm_class=esm_class, registered_delivery=registered_delivery,
            source_addr_ton=source_addr_ton, source_addr_npi=source_addr_npi,
            dest_addr_ton=dest_addr_ton, dest_addr_npi=dest_addr_npi, tlvs=_tlvs(tlvs),
        ), timeout)
        return SubmitResp(int(resp.command_status), resp.message_id)

    async def close(self) -> None:
        """Unbind (bounded) and stop the session; safe to call twice."""
        if self._smsc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._smsc.unbind(), REQUEST_TIMEOUT)
            self._smsc = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.stop()
            self._client = None
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):  # ends at Disconnected after the unbind
                await asyncio.wait_for(asyncio.shield(self._reader), REQUEST_TIMEOUT)
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        await _settle()

    async def __aenter__(self) -> Smpp34Client:
        return await self.connect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
