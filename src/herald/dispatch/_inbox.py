"""What upstreams send us: delivery receipts and mobile-originated messages (private).

Theory of operation
-------------------
Every deliver_sm / data_sm from an upstream arrives through its connector's
:meth:`Inbox.handle`, on the event loop, and is answered **only after the
store has committed what it carried**: a crash before the commit leaves the
PDU unanswered, and the SMSC sends it again (SMPP 3.4 §4.6.1: it keeps a
deliver_sm until it is acknowledged). Both kinds are batched, so a burst of
receipts is one store write followed by all their responses; receipts share
the stream of segment records (``_writes``), so they follow the
submit_sm_resp they refer to into the store.

Receipts (esm_class message type 0x04 / 0x10, or a receipted_message_id
TLV): :func:`~herald.smpp.receipts.receipt_of` reads the TLVs first and the
text second; the id becomes the connector's keys
(:func:`~herald.smpp.message_id.receipt_id_keys`) and the state a
:class:`~herald.store.Status`. Non-final states (ENROUTE, ACCEPTD) are
answered at once and change nothing. A receipt the store cannot place yet
(it beat the submit_sm_resp) is parked by the store itself. An unreadable
receipt is answered ESME_ROK and counted: sending it again would not help.

MO messages: the destination number picks the account (``[[inbound]]``
rules); the body is decoded per the connector's ``data_coding_0`` and stored
with herald's own data_coding (0 = GSM 7-bit), so what reaches the customer
means the same on every upstream. Concatenated MO (UDH or SAR) is reassembled
in memory: parts before the last are acknowledged when they arrive, so a
crash while a long MO is incomplete loses its parts (the SMSC will not
resend them). A number no rule covers is answered ESME_ROK, counted and
logged without the number (the red line: no subscriber data in logs).

An MO whose whole body is a STOP-type keyword (``STOP``, ``STOPALL``,
``UNSUBSCRIBE``, ``CANCEL``, ``END``, ``QUIT``; ``START`` or ``UNSTOP`` undo it:
:func:`herald.intake.opt_out_keyword`) also puts its sender on the opt-out
list of the account that owns the number, in the same transaction as the
message, which is still delivered to the customer as any other
(``docs/accounts.md``).

Temporary failures (store busy, an account named in the config that does
not exist yet, the reassembly buffer full) are answered ESME_RX_T_APPN, so
the SMSC retries later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, Protocol

from herald.dispatch._tasks import Batcher
from herald.dispatch._writes import Pending, UpstreamWrites, respond_all
from herald.ids import IdGenerator
from herald.intake import opt_out_keyword, opt_out_number
from herald.metrics import Metrics
from herald.net import SmppConnection
from herald.routing import InboundTable, RoutingError
from herald.smpp.constants import CommandStatus, MessageState
from herald.smpp.errors import InvalidTlvValue, ReceiptError
from herald.smpp.message_id import IdPolicy, receipt_id_keys
from herald.smpp.pdus import DataSm, DeliverSm, Request
from herald.smpp.receipts import Receipt, is_receipt, receipt_of
from herald.smpp.tlv import (
    MESSAGE_PAYLOAD,
    MESSAGE_STATE,
    NETWORK_ERROR_CODE,
    RECEIPTED_MESSAGE_ID,
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
)
from herald.store import (
    InboundMessage,
    InvalidRecord,
    OptOutChange,
    ReceiptUpdate,
    Status,
    Store,
    StoreError,
    UnknownAccount,
)
from herald.text import (
    Concat,
    DecodeError,
    Encoding,
    Reassembler,
    ReassemblyError,
    ReassemblyFull,
    SmscDefault,
    TextError,
    data_coding_for,
    decode,
    read_message,
)

__all__ = ["RECEIPT_STATUS", "Inbox", "opt_out_of", "receipt_error_code", "receipt_updates"]

log = logging.getLogger("herald.dispatch")
S = CommandStatus
M = MessageState

#: SMPP 3.4 §5.2.28 message_state -> the message status it means. ENROUTE and
#: ACCEPTED are not final: they are answered and change nothing.
RECEIPT_STATUS: Final[dict[MessageState, Status]] = {
    M.DELIVERED: Status.DELIVERED,
    M.EXPIRED: Status.EXPIRED,
    M.DELETED: Status.UNDELIVERED,
    M.UNDELIVERABLE: Status.UNDELIVERED,
    M.UNKNOWN: Status.UNDELIVERED,
    M.REJECTED: Status.REJECTED,
}
#: SMPP 3.4 §4.4.2: a message id is at most 65 octets; a longer key is no id.
_MAX_KEY: Final = 65
#: An ``err:`` value longer than this is not a number we keep.
_MAX_ERR_DIGITS: Final = 9
#: An MO body longer than this is no opt-out keyword (UNSUBSCRIBE in UCS-2
#: with spaces around it fits).
_MAX_KEYWORD_OCTETS: Final = 40
#: Seconds between attempts to find an account the [[inbound]] rules name.
_ACCOUNT_RETRY: Final = 5.0


class InboxConnector(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def policy(self) -> IdPolicy: ...
    @property
    def smsc_default(self) -> SmscDefault: ...


def opt_out_of(message: InboundMessage) -> OptOutChange | None:
    """The opt-out change an MO asks for: its sender out (STOP...) or back in
    (START, UNSTOP); ``None`` for any other body or a sender that is not a number."""
    if len(message.body) > _MAX_KEYWORD_OCTETS or message.encoding == Encoding.BINARY.value:
        return None
    try:
        text = decode(message.body, Encoding(message.encoding), strict=False)
    except (ValueError, TextError):
        return None
    keyword = opt_out_keyword(text)
    number = opt_out_number(message.sender)
    if keyword is None or number is None:
        return None
    return OptOutChange(number, keyword, message.received_at, "keyword")


def receipt_error_code(receipt: Receipt) -> int | None:
    """The error a receipt reports: the network_error_code TLV's, else a numeric
    ``err:`` field; None for a delivered message or no error."""
    if receipt.state is M.DELIVERED:
        return None
    if receipt.network_error is not None:
        return receipt.network_error.error_code
    err = receipt.err
    if err is not None and err.isdigit() and len(err) <= _MAX_ERR_DIGITS:
        return int(err) or None
    return None


def receipt_updates(
    pdu: DeliverSm | DataSm, connector: str, policy: IdPolicy, now: float
) -> tuple[ReceiptUpdate, ...]:
    """The store updates a receipt PDU asks for: none for a non-final state.

    Raises :class:`~herald.smpp.errors.ReceiptError` when the PDU carries no
    usable id and state.
    """
    message_id, state, error = _from_tlvs(pdu)
    if message_id is None or state is None or (
        error is None and state is not M.DELIVERED and state in RECEIPT_STATUS
    ):
        # No usable TLVs (or a failure whose error only the text gives): read
        # it all, TLVs first and text second (receipt_of's rule).
        receipt = receipt_of(pdu)
        message_id, state, error = receipt.message_id, receipt.state, receipt_error_code(receipt)
    status = RECEIPT_STATUS.get(state)
    if status is None:
        return ()
    if status is Status.DELIVERED:
        error = None
    keys = receipt_id_keys(message_id, policy)
    if not keys or any(not k or len(k) > _MAX_KEY for k in keys):
        raise ReceiptError("the receipt's message id is empty or too long")
    return tuple(ReceiptUpdate(connector, key, status, now, error) for key in keys)


_ID_TAG: Final = RECEIPTED_MESSAGE_ID.tag
_STATE_TAG: Final = MESSAGE_STATE.tag
_ERROR_TAG: Final = NETWORK_ERROR_CODE.tag


def _from_tlvs(pdu: DeliverSm | DataSm) -> tuple[str | None, MessageState | None, int | None]:
    """Id, state and network error from the receipt TLVs alone (the fast path:
    the receipt text, with its dates, is not parsed). Malformed TLVs count as absent."""
    message_id: str | None = None
    state: MessageState | None = None
    error: int | None = None
    for tlv in pdu.tlvs:
        tag = tlv.tag
        try:
            if tag == _ID_TAG:
                message_id = RECEIPTED_MESSAGE_ID.decode(tlv.value) or None
            elif tag == _STATE_TAG:
                state = MessageState(MESSAGE_STATE.decode(tlv.value))
            elif tag == _ERROR_TAG:
                error = NETWORK_ERROR_CODE.decode(tlv.value).error_code
        except (InvalidTlvValue, ValueError):
            continue
    return message_id, state, error


class Inbox:
    """Receipts and MO from every connector; see the module docstring."""

    def __init__(
        self,
        store: Store,
        table: InboundTable,
        metrics: Metrics,
        clock: Callable[[], float],
        ids: IdGenerator,
        writes: UpstreamWrites,
    ) -> None:
        self._store = store
        self._writes = writes
        self._table = table
        self._clock = clock
        self._ids = ids
        self._accounts: dict[str, int] = {}
        self._resolved_at = -_ACCOUNT_RETRY
        self._resolving: asyncio.Task[None] | None = None
        self._reassembler = Reassembler()
        self._inbound: Batcher[tuple[InboundMessage, Pending]] = Batcher(
            "inbound", self._write_inbound)
        self._mo_stored = metrics.accepted.labels("mo")
        self._mo_unknown = metrics.rejected_at_intake.labels("mo", "unknown_number")
        self._mo_refused = metrics.rejected_at_intake.labels("mo", "invalid")
        self.receipts_unreadable = 0

    async def start(self) -> None:
        await self._resolve_accounts()
        self._inbound.start()

    async def close(self) -> None:
        await self._inbound.close()
        if self._resolving is not None:
            self._resolving.cancel()

    def housekeeping(self, now: float) -> None:
        """Drop MO parts that waited too long for the rest (``now``: loop time)."""
        expired = self._reassembler.expire(now)
        if expired:
            log.warning("%d incomplete MO messages dropped after waiting for their parts",
                        len(expired))

    # ---------------------------------------------------------------- accounts

    async def _resolve_accounts(self) -> None:
        self._resolved_at = asyncio.get_running_loop().time()
        for name in sorted(self._table.accounts - set(self._accounts)):
            try:
                self._accounts[name] = (await self._store.get_account_by_name(name)).id
            except UnknownAccount:
                log.warning("inbound rules name account %r, which does not exist", name)
            except StoreError as exc:
                log.warning("cannot look up inbound account %r: %s", name, exc)

    def _resolve_soon(self) -> None:
        now = asyncio.get_running_loop().time()
        if (self._resolving is None or self._resolving.done()) and (
            now - self._resolved_at >= _ACCOUNT_RETRY
        ):
            self._resolving = asyncio.create_task(self._resolve_accounts())

    # ------------------------------------------------------------------ intake

    def handle(self, connector: InboxConnector, conn: SmppConnection, request: Request) -> None:
        if not isinstance(request, DeliverSm | DataSm):
            conn.respond(request.response())  # nothing else is expected from an SMSC
            return
        if is_receipt(request):
            self._receipt(connector, conn, request)
        else:
            self._mo(connector, conn, request)

    def _receipt(self, connector: InboxConnector, conn: SmppConnection,
                 pdu: DeliverSm | DataSm) -> None:
        try:
            updates = receipt_updates(pdu, connector.name, connector.policy, self._clock())
        except ReceiptError as exc:
            self.receipts_unreadable += 1
            log.warning("%s: unreadable receipt answered and dropped (%s)", connector.name, exc)
            conn.respond(pdu.response())
            return
        if not updates:
            conn.respond(pdu.response())  # ENROUTE / ACCEPTD: nothing to record
            return
        self._writes.receipts(updates, (conn, pdu))

    def _mo(self, connector: InboxConnector, conn: SmppConnection,
            pdu: DeliverSm | DataSm) -> None:
        try:
            name = self._table.lookup(pdu.destination_addr)
        except RoutingError:
            self._mo_unknown.inc()
            log.info("%s: MO to a number no inbound rule covers: acknowledged, dropped",
                     connector.name)
            conn.respond(pdu.response())
            return
        account_id = self._accounts.get(name)
        if account_id is None:
            self._resolve_soon()
            conn.respond(pdu.response(S.ESME_RX_T_APPN))
            return
        try:
            body, encoding, data_coding, concat = _read_body(pdu, connector.smsc_default)
        except TextError:
            self._mo_refused.inc()
            conn.respond(pdu.response(S.ESME_RX_P_APPN))
            return
        pending: Pending = (conn, pdu)
        if concat is not None and concat.total > 1:
            key = (connector.name, pdu.source_addr, pdu.destination_addr, concat.reference)
            try:
                whole = self._reassembler.feed(key, concat.total, concat.seq, body,
                                               asyncio.get_running_loop().time())
            except ReassemblyFull:
                conn.respond(pdu.response(S.ESME_RX_T_APPN))
                return
            except ReassemblyError:
                whole = None  # impossible numbering: the part is a message of its own
            else:
                conn.respond(pdu.response())  # see the module docstring
                if whole is None:
                    return  # more parts to come
                body, pending = whole.payload, None
        now = self._clock()
        try:
            message = InboundMessage(
                id=self._ids.new_id(now), account_id=account_id,
                to=pdu.destination_addr or "-", sender=pdu.source_addr or "-", body=body,
                encoding=encoding.value, data_coding=data_coding, connector=connector.name,
                received_at=now,
            )
        except InvalidRecord as exc:
            self._mo_refused.inc()
            log.warning("%s: MO refused (%s)", connector.name, exc.field)
            respond_all([pending], S.ESME_RX_P_APPN)
            return
        self._inbound.add((message, pending))

    async def _add(self, message: InboundMessage) -> None:
        change = opt_out_of(message)
        if change is None:
            await self._store.add_inbound(message)
        else:
            await self._store.add_inbound(message, opt_out=change)
            log.info("MO %s: its sender opted %s (account %d)", message.id,
                     "out" if change.opted_out else "back in", message.account_id)

    async def _write_inbound(self, batch: list[tuple[InboundMessage, Pending]]) -> None:
        results = await asyncio.gather(*(self._add(m) for m, _ in batch),
                                       return_exceptions=True)
        ok: list[Pending] = []
        failed: list[Pending] = []
        for (_, pending), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("MO not stored (%s); the upstream will resend it", result)
                failed.append(pending)
            else:
                self._mo_stored.inc()
                ok.append(pending)
        respond_all(ok, S.ESME_ROK)
        respond_all(failed, S.ESME_RX_T_APPN)


def _read_body(
    pdu: DeliverSm | DataSm, smsc_default: SmscDefault
) -> tuple[bytes, Encoding, int, Concat | None]:
    """(body without UDH, encoding, herald's data_coding, concatenation) of an MO PDU.

    A data_coding herald cannot decode keeps the octets as binary. Raises
    TextError for a header that claims more than the body holds.
    """
    raw = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    try:
        if not raw:
            raw = pdu.tlv(MESSAGE_PAYLOAD) or b""
        sar = (pdu.tlv(SAR_MSG_REF_NUM), pdu.tlv(SAR_TOTAL_SEGMENTS), pdu.tlv(SAR_SEGMENT_SEQNUM))
    except InvalidTlvValue as exc:
        raise DecodeError("tlv", 0, str(exc)) from None
    try:
        read = read_message(raw, esm_class=pdu.esm_class, data_coding=pdu.data_coding,
                            smsc_default=smsc_default, strict=False)
    except TextError:
        if pdu.esm_class & 0x40:
            raise
        return raw, Encoding.BINARY, pdu.data_coding, None
    encoding = read.coding.encoding
    data_coding = pdu.data_coding
    if data_coding == 0 and encoding is not Encoding.BINARY:
        # The upstream's "default" in herald's terms (herald's default is GSM 7-bit).
        data_coding = data_coding_for(encoding, SmscDefault.GSM7)
    concat = read.udh.concat if read.udh is not None else None
    if concat is None:
        ref, total, seq = sar
        if ref is not None and total is not None and seq is not None:
            concat = Concat(ref, total, seq)
    if concat is not None and not concat.valid:
        concat = None
    return read.body, encoding, data_coding, concat
