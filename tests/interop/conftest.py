"""herald's SMPP server as the SMSC that the independent peers talk to.

``HeraldSmsc`` is the test's ``ServerHandler``: it authenticates against a
fixed account table, answers every submit_sm / data_sm with a herald-style id
(``SortableIdGenerator``: 26 characters of base32hex), records what arrived,
decoded the way the platform will decode it (``herald.text.read_message`` per
part, then ``Reassembler`` for UDH and SAR concatenation, then one strict
decode of the joined octets), and sends deliver_sm: delivery receipts built
with ``herald.smpp.receipts`` (automatic when registered_delivery asks for
one) and MO messages.

Every wait is bounded and names what it waited for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from herald.ids import SortableIdGenerator
from herald.net import ServerConnection, ServerHandler, ServerSettings, SmppNetError, SmppServer
from herald.smpp.constants import CommandStatus, EsmType, MessageState
from herald.smpp.events import CloseReason
from herald.smpp.pdus import (
    BindRequest,
    BindResponse,
    DataSm,
    DeliverSm,
    Request,
    Response,
    SubmitSm,
)
from herald.smpp.receipts import Receipt, format_receipt, state_from_stat
from herald.smpp.session import SessionConfig
from herald.smpp.states import Role
from herald.smpp.tlv import (
    MESSAGE_PAYLOAD,
    MESSAGE_STATE,
    RECEIPTED_MESSAGE_ID,
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
)
from herald.text import (
    Inbound,
    Reassembler,
    SmscDefault,
    TextError,
    decode,
    read_message,
)

S = CommandStatus

# Within smpplib's 15/8-character limits, so every peer can bind with them.
ACCOUNTS = {"esme1": "secret12", "esme2": "other123"}
PHONE = "4915112345"
SENDER = "herald"
# Bound on every wait in these tests: loopback round trips take milliseconds,
# Kannel's HTTP callbacks tens of milliseconds.
WAIT = 5.0
# SMPP 3.4 Appendix B: the receipt's text: field quotes the message's start.
RECEIPT_TEXT_CHARS = 20


@dataclass(frozen=True)
class Arrival:
    """One submit_sm or data_sm as herald's server received and answered it."""

    conn_id: int
    system_id: str
    pdu: SubmitSm | DataSm
    message_id: str  # "" when refused
    command_status: int
    body: bytes  # short_message, or message_payload when short_message is empty
    inbound: Inbound | None  # read_message(strict=False) of body
    error: TextError | None  # what read_message raised, if it did

    @property
    def concat(self) -> tuple[str, int, int, int] | None:
        """(method, reference, total, seq) when the part belongs to a longer message."""
        if self.inbound is not None and self.inbound.udh is not None:
            c = self.inbound.udh.concat
            if c is not None:
                return ("udh", c.reference, c.total, c.seq)
        ref = self.pdu.tlv(SAR_MSG_REF_NUM)
        total = self.pdu.tlv(SAR_TOTAL_SEGMENTS)
        seq = self.pdu.tlv(SAR_SEGMENT_SEQNUM)
        if ref is not None and total is not None and seq is not None:
            return ("sar", ref, total, seq)
        return None


@dataclass(frozen=True)
class Message:
    """A whole message: one arrival, or every part of a concatenated one."""

    system_id: str
    source_addr: str
    destination_addr: str
    method: str  # "single", "payload", "udh" or "sar"
    data_coding: int
    text: str | None  # strict decode of the joined body; None when it failed
    error: TextError | None
    parts: tuple[Arrival, ...]

    @property
    def message_ids(self) -> tuple[str, ...]:
        return tuple(p.message_id for p in self.parts)


@dataclass(frozen=True)
class Sent:
    """A deliver_sm herald's server sent, and the peer's answer (or the failure)."""

    pdu: DeliverSm
    response: Response | None
    error: BaseException | None = None


class Waitable:
    """Bounded polling on the event loop the server runs on."""

    async def until(self, check: Callable[[], object], what: str, timeout: float = WAIT) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"herald server: no {what} within {timeout:.1f}s; "
                                     f"{self.summary()}")
            await asyncio.sleep(0.01)

    def summary(self) -> str:
        return ""


class HeraldSmsc(ServerHandler, Waitable):
    """See the module docstring. ``receipt`` picks the stat word of the automatic
    receipt for an arrival (None: no receipt); ``smsc_default`` is what
    data_coding 0 means on this link."""

    def __init__(
        self, accounts: dict[str, str] | None = None, *,
        receipt: Callable[[Arrival], str | None] = lambda _: "DELIVRD",
        receipt_delay: float = 0.0, smsc_default: SmscDefault = SmscDefault.GSM7,
    ) -> None:
        self.accounts = dict(ACCOUNTS if accounts is None else accounts)
        self.receipt = receipt
        self.receipt_delay = receipt_delay
        self.smsc_default = smsc_default
        self.ids = SortableIdGenerator()
        self.reassembler = Reassembler(timeout=60.0)
        self.arrivals: list[Arrival] = []
        self.messages: list[Message] = []
        self.sent: list[Sent] = []
        self.binds: list[tuple[str, int]] = []  # (system_id, status) of every bind
        self.bound: list[ServerConnection] = []
        self.closed: list[tuple[str | None, CloseReason]] = []
        self.other_requests: list[Request] = []
        self._parts: dict[tuple[object, ...], list[Arrival]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def summary(self) -> str:
        return (f"binds {self.binds}, {len(self.arrivals)} arrivals, "
                f"messages {[m.text for m in self.messages]}, {len(self.sent)} deliver_sm sent")

    # ---- ServerHandler ------------------------------------------------------------

    async def authenticate(self, conn: ServerConnection, bind: BindRequest) -> BindResponse:
        if bind.system_id not in self.accounts:
            response = bind.response(S.ESME_RINVSYSID)
        elif bind.password != self.accounts[bind.system_id]:
            response = bind.response(S.ESME_RINVPASWD)
        else:
            response = bind.response(system_id="herald")
        self.binds.append((bind.system_id, response.command_status))
        return response

    def on_bound(self, conn: ServerConnection) -> None:
        self.bound.append(conn)

    def on_closed(self, conn: ServerConnection, reason: CloseReason) -> None:
        self.closed.append((conn.system_id, reason))

    def on_request(self, conn: ServerConnection, request: Request) -> None:
        if not isinstance(request, SubmitSm | DataSm):
            self.other_requests.append(request)
            conn.respond(request.response(S.ESME_RINVCMDID))
            return
        arrival = self._receive(conn, request)
        conn.respond(request.response(arrival.command_status, message_id=arrival.message_id))
        if arrival.message_id and request.registered_delivery & 0x01:
            stat = self.receipt(arrival)
            if stat is not None:
                self._spawn(self._auto_receipt(conn, arrival, stat))

    # ---- receiving ----------------------------------------------------------------

    def _receive(self, conn: ServerConnection, pdu: SubmitSm | DataSm) -> Arrival:
        body = pdu.short_message if isinstance(pdu, SubmitSm) else b""
        if not body:
            body = pdu.tlv(MESSAGE_PAYLOAD) or b""
        inbound: Inbound | None = None
        error: TextError | None = None
        try:
            inbound = read_message(body, esm_class=pdu.esm_class, data_coding=pdu.data_coding,
                                   smsc_default=self.smsc_default, strict=False)
        except TextError as exc:
            error = exc
        status = error.command_status if error is not None else S.ESME_ROK
        message_id = self.ids.new_id(time.time()) if status == S.ESME_ROK else ""
        arrival = Arrival(conn.conn_id, conn.system_id or "", pdu, message_id, status, body,
                          inbound, error)
        self.arrivals.append(arrival)
        if inbound is not None:
            self._assemble(arrival, inbound)
        return arrival

    def _assemble(self, arrival: Arrival, inbound: Inbound) -> None:
        pdu = arrival.pdu
        concat = arrival.concat
        if concat is None:
            method = "payload" if isinstance(pdu, DataSm) or not pdu.short_message else "single"
            self._complete(arrival, method, (arrival,), inbound.body)
            return
        method, ref, total, seq = concat
        key = (arrival.conn_id, pdu.source_addr, pdu.destination_addr, method, ref)
        parts = self._parts.setdefault((key, total), [])
        parts.append(arrival)
        done = self.reassembler.feed(key, total, seq, inbound.body,
                                     asyncio.get_running_loop().time())
        if done is not None:
            del self._parts[(key, total)]
            ordered = tuple(sorted(parts, key=lambda a: (a.concat or ("", 0, 0, 0))[3]))
            self._complete(arrival, method, ordered, done.payload)

    def _complete(self, last: Arrival, method: str, parts: tuple[Arrival, ...],
                  body: bytes) -> None:
        assert last.inbound is not None
        text: str | None = None
        error: TextError | None = None
        if last.inbound.text is not None:  # not binary
            try:
                text = decode(body, last.inbound.coding.encoding, strict=True)
            except TextError as exc:
                error = exc
        pdu = last.pdu
        self.messages.append(Message(last.system_id, pdu.source_addr, pdu.destination_addr,
                                     method, pdu.data_coding, text, error, parts))

    # ---- sending ------------------------------------------------------------------

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _auto_receipt(self, conn: ServerConnection, arrival: Arrival, stat: str) -> None:
        if self.receipt_delay:
            await asyncio.sleep(self.receipt_delay)
        await self.send_receipt(conn, arrival, stat)

    @staticmethod
    def receipt_pdu(arrival: Arrival, stat: str = "DELIVRD") -> DeliverSm:
        """The receipt for ``arrival``: Appendix B text and the receipt TLVs
        (SMPP 3.4 §5.3.2.12 receipted_message_id, §5.3.2.35 message_state),
        addressed back from the phone to the original sender."""
        state = state_from_stat(stat) or MessageState.UNKNOWN
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        preview = arrival.inbound.text if arrival.inbound and arrival.inbound.text else ""
        delivered = 1 if state is MessageState.DELIVERED else 0
        text = format_receipt(Receipt(
            message_id=arrival.message_id, stat=stat, state=state, sub=1, dlvrd=delivered,
            submit_date=now, done_date=now, err="000",
            text=preview[:RECEIPT_TEXT_CHARS].replace("\x1b", ""),
        ))
        pdu = arrival.pdu
        return DeliverSm(
            source_addr_ton=pdu.dest_addr_ton, source_addr_npi=pdu.dest_addr_npi,
            source_addr=pdu.destination_addr, dest_addr_ton=pdu.source_addr_ton,
            dest_addr_npi=pdu.source_addr_npi, destination_addr=pdu.source_addr,
            esm_class=EsmType.DELIVERY_RECEIPT,
            short_message=text.encode("ascii", "replace"),
            tlvs=(RECEIPTED_MESSAGE_ID(arrival.message_id), MESSAGE_STATE(int(state))),
        )

    async def send_receipt(self, conn: ServerConnection, arrival: Arrival,
                           stat: str = "DELIVRD") -> Sent:
        return await self.deliver(conn, self.receipt_pdu(arrival, stat))

    async def deliver(self, conn: ServerConnection | None, pdu: DeliverSm) -> Sent:
        """Send ``pdu`` on ``conn`` (default: the latest bound), record the answer."""
        target = conn or self.bound[-1]
        try:
            response = await asyncio.wait_for(target.request(pdu), WAIT)
            sent = Sent(pdu, response)
        except (SmppNetError, TimeoutError) as exc:
            sent = Sent(pdu, None, exc)
        self.sent.append(sent)
        return sent

    # ---- waits --------------------------------------------------------------------

    async def wait_messages(self, count: int, timeout: float = WAIT) -> list[Message]:
        await self.until(lambda: len(self.messages) >= count, f"{count} whole messages", timeout)
        return self.messages[:count]

    async def wait_sent(self, count: int, timeout: float = WAIT) -> list[Sent]:
        await self.until(lambda: len(self.sent) >= count, f"{count} deliver_sm answered",
                         timeout)
        return self.sent[:count]

    async def wait_bound(self, count: int = 1, timeout: float = WAIT) -> ServerConnection:
        await self.until(lambda: len(self.bound) >= count, f"{count} bound sessions", timeout)
        return self.bound[count - 1]

    async def drain(self) -> None:
        """Let automatic receipts still being sent finish (bounded)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=WAIT)


async def start_herald(handler: HeraldSmsc, **settings: object) -> SmppServer:
    session = settings.pop("session", SessionConfig(role=Role.SMSC, window=64))
    server = SmppServer(handler, ServerSettings(port=0, session=session,  # type: ignore[arg-type]
                                                **settings))  # type: ignore[arg-type]
    await server.start()
    return server


@pytest.fixture
async def herald() -> AsyncIterator[tuple[SmppServer, HeraldSmsc]]:
    """herald's server on 127.0.0.1 and an ephemeral port, with a HeraldSmsc."""
    handler = HeraldSmsc()
    server = await start_herald(handler)
    try:
        yield server, handler
    finally:
        await handler.drain()
        await server.stop(timeout=1)
