"""Receipts and MO messages to SMPP customers, from the store's durable outbox.

The store writes an SMPP outbox event in the same commit as the change it
reports: a message became final and its ``registered_delivery`` asked for a
receipt, or an inbound message arrived for the account. ``SmppNotifier``
claims the events of every account that has a receiver or transceiver bound,
sends each as a deliver_sm on one of those binds (round robin), and completes
the event only when the customer answered ESME_ROK. ESME_RX_P_APPN gives it up
(kept with the error until purged); any other refusal, a timeout or a
lost connection puts the event back with an exponential backoff; an account
with no receiver bound keeps its events until one binds (the store holds them:
a restart loses nothing).

Receipt deliver_sm (SMPP 3.4 §4.6.1, Appendix B): source is the handset, the
destination the customer's sender; esm_class 0x04; the short_message is the
receipt text (``id:… sub:001 dlvrd:… submit date:… done date:… stat:… err:…
text:…`` with the first 20 characters of the text); TLVs receipted_message_id
and message_state, left out for a bind with interface_version below 0x34
(SMPP 3.3 has no TLVs). Nothing about where the handset is goes into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Final

from herald.intake import SenderKind, sender_kind
from herald.net import ServerConnection, SmppNetError
from herald.smpp.constants import CommandStatus, EsmType
from herald.smpp.pdus import DeliverSm
from herald.smpp.receipts import Receipt, format_receipt, stat_from_state
from herald.smpp.tlv import MESSAGE_PAYLOAD, MESSAGE_STATE, RECEIPTED_MESSAGE_ID
from herald.smpp_front._handler import (
    MESSAGE_STATE_OF,
    SMPP_34,
    Binding,
    CustomerSmpp,
    customer_error,
)
from herald.store import (
    Channel,
    EventKind,
    InboundMessage,
    Message,
    MessageNotFound,
    NotFound,
    OutboxEvent,
    Store,
    StoreError,
)
from herald.text import Encoding, TextError, decode

__all__ = ["SmppNotifier"]

log = logging.getLogger("herald.smpp.notify")

#: Events claimed per account per round.
BATCH: Final = 256
#: Events being delivered per account at once (claimed, deliver_sm sent or
#: waiting for window room): two rounds, so a claim overlaps the deliveries
#: of the round before instead of waiting for its last deliver_sm_resp.
MAX_IN_FLIGHT: Final = 2 * BATCH
#: Seconds an event stays leased to this process while it is being delivered.
LEASE: Final = 60.0
#: Retry backoff bounds, seconds.
RETRY_MIN: Final = 1.0
RETRY_MAX: Final = 300.0
#: Poll interval when nothing wakes the notifier, seconds.
IDLE_POLL: Final = 1.0
#: Characters of the message text quoted in a receipt (SMPP 3.4 Appendix B).
RECEIPT_TEXT_CHARS: Final = 20
#: SMPP 3.4 §5.2.5 / §5.2.6.
TON_INTERNATIONAL: Final = 1
TON_NETWORK_SPECIFIC: Final = 3
TON_ALPHANUMERIC: Final = 5
NPI_UNKNOWN: Final = 0
NPI_E164: Final = 1
#: deliver_sm_resp statuses that say the customer will never take this
#: deliver_sm (SMPP 3.4 §5.1.3: a permanent application error): give it up.
GIVE_UP_STATUSES: Final = frozenset({CommandStatus.ESME_RX_P_APPN})


def _receipt_text(message: Message) -> str:
    text = ""
    if not message.udhi:  # a customer-made part starts with a header, not words
        try:
            text = decode(message.body, Encoding(message.encoding), strict=False)
        except (TextError, ValueError):
            text = ""
    state = MESSAGE_STATE_OF[message.status]
    return format_receipt(Receipt(
        message_id=message.id,
        stat=stat_from_state(state),
        state=state,
        sub=1,
        dlvrd=1 if message.status.name == "DELIVERED" else 0,
        submit_date=datetime.fromtimestamp(message.accepted_at, UTC).replace(tzinfo=None),
        done_date=(datetime.fromtimestamp(message.done_at, UTC).replace(tzinfo=None)
                   if message.done_at is not None else None),
        err=f"{customer_error(message.error_code):03d}",
        text=text[:RECEIPT_TEXT_CHARS],
    ))


def sender_address(stored: str) -> tuple[int, int, str]:
    """(TON, NPI, address) of a message's sender as SMPP carries it back: an
    international number as TON 1 / NPI 1 (E.164) without its ``+``, a short
    code as TON 3 (network specific) / NPI 0, a name as TON 5 / NPI 0 — the
    TONs a customer submits them with."""
    kind = sender_kind(stored)
    if kind is SenderKind.INTERNATIONAL:
        return TON_INTERNATIONAL, NPI_E164, stored[1:]
    if kind is SenderKind.SHORT_CODE:
        return TON_NETWORK_SPECIFIC, NPI_UNKNOWN, stored
    return TON_ALPHANUMERIC, NPI_UNKNOWN, stored


def receipt_pdu(message: Message) -> DeliverSm:
    state = MESSAGE_STATE_OF[message.status]
    ton, npi, sender = sender_address(message.sender)
    return DeliverSm(
        source_addr_ton=TON_INTERNATIONAL if message.to.isdigit() else 0,
        source_addr_npi=NPI_E164 if message.to.isdigit() else 0,
        source_addr=message.to,
        dest_addr_ton=ton,
        dest_addr_npi=npi,
        destination_addr=sender,
        esm_class=EsmType.DELIVERY_RECEIPT,
        short_message=_receipt_text(message).encode("ascii", "replace"),
        tlvs=(RECEIPTED_MESSAGE_ID(message.id), MESSAGE_STATE(int(state))),
    )


def _pdu(event: OutboxEvent) -> DeliverSm:
    """The deliver_sm of an event, from the record its claim read (the receipt of a
    message, or the MO itself); :class:`MessageNotFound` if that record is gone."""
    subject = event.subject
    if event.kind is EventKind.STATUS and isinstance(subject, Message):
        return receipt_pdu(subject)
    if event.kind is EventKind.INBOUND and isinstance(subject, InboundMessage):
        short = len(subject.body) <= 254
        return DeliverSm(
            source_addr_ton=1 if subject.sender.isdigit() else 5,
            source_addr=subject.sender,
            dest_addr_ton=1 if subject.to.isdigit() else 0,
            destination_addr=subject.to,
            data_coding=subject.data_coding,
            short_message=subject.body if short else b"",
            tlvs=() if short else (MESSAGE_PAYLOAD(subject.body),),
        )
    raise MessageNotFound(f"the {event.kind.name.lower()} record {event.subject_id} is gone")


class SmppNotifier:
    """See the module docstring. ``start()``, ``wake(account_id)``, ``stop()``."""

    def __init__(self, store: Store, front: CustomerSmpp, clock: Callable[[], float]) -> None:
        self.store = store
        self.front = front
        self.clock = clock
        self.delivered = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._turn = 0
        self._in_flight: dict[int, int] = {}  # account -> events being delivered
        self._rounds: set[asyncio.Task[None]] = set()

    def wake(self, account_id: int | None = None) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="smpp-notifier")

    async def stop(self) -> None:
        """Stop claiming; deliveries under way are cancelled (their events stay
        leased and are delivered again after the lease, by this or another herald)."""
        tasks = [t for t in (self._task, *self._rounds) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            busy = False
            for account_id in [a for a, conns in self.front.binds.items() if conns]:
                if (self._in_flight.get(account_id, 0) + BATCH <= MAX_IN_FLIGHT
                        and self.front.receivers(account_id)):
                    try:
                        busy |= await self._round(account_id)
                    except StoreError as exc:
                        log.warning("SMPP notifications paused: %s", exc)
            if not busy:  # a round ending wakes us too (room to claim again)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL)

    async def _round(self, account_id: int) -> bool:
        """Claim a batch and start delivering it; True if more may be waiting.

        The deliveries (and the batch's completion) run in their own task, so
        the next claim overlaps them, up to MAX_IN_FLIGHT events per account.
        """
        now = self.clock()
        events = await self.store.claim_outbox(Channel.SMPP, now, LEASE, BATCH,
                                               account_id=account_id)
        if not events:
            return False
        self._in_flight[account_id] = self._in_flight.get(account_id, 0) + len(events)
        task = asyncio.create_task(self._deliver_all(account_id, events),
                                   name="smpp-notifier-round")
        self._rounds.add(task)
        task.add_done_callback(partial(self._round_done, account_id, len(events)))
        return len(events) == BATCH

    def _round_done(self, account_id: int, count: int, task: asyncio.Task[None]) -> None:
        self._rounds.discard(task)
        self._in_flight[account_id] -= count
        if not task.cancelled() and task.exception() is not None:
            log.warning("SMPP notifications: %s", task.exception())
        self._wake.set()

    async def _deliver_all(self, account_id: int, events: tuple[OutboxEvent, ...]) -> None:
        results = await asyncio.gather(*(self._deliver(account_id, e) for e in events))
        done = [e.id for e, ok in zip(events, results, strict=True) if ok]
        await self.store.complete_outbox(done)
        self.delivered += len(done)

    async def _deliver(self, account_id: int, event: OutboxEvent) -> bool:
        try:
            pdu = _pdu(event)
        except NotFound:
            return True  # its subject is gone (purged): nothing to say
        conns = self.front.receivers(account_id)
        if not conns:
            await self._retry(event, "no receiver bound")
            return False
        self._turn += 1
        conn: ServerConnection = conns[self._turn % len(conns)]
        binding = conn.context
        if (isinstance(binding, Binding) and binding.version < SMPP_34
                and pdu.esm_class == EsmType.DELIVERY_RECEIPT):
            pdu = dataclasses.replace(pdu, tlvs=())  # an SMPP 3.3 client knows no TLVs
        try:
            response = await conn.request(pdu)
        except SmppNetError as exc:
            await self._retry(event, f"deliver_sm failed: {exc}")
            return False
        status = response.command_status
        if status in GIVE_UP_STATUSES:
            log.warning("%s refused a deliver_sm for good (0x%08X); not sending it again",
                        conn.name, status)
            await self.store.retry_outbox(event.id, None, f"customer answered 0x{status:08X}")
            return False
        if status != CommandStatus.ESME_ROK:
            await self._retry(event, f"customer answered 0x{status:08X}")
            return False
        return True

    async def _retry(self, event: OutboxEvent, error: str) -> None:
        delay = min(RETRY_MAX, RETRY_MIN * 2 ** min(event.attempts, 16))
        await self.store.retry_outbox(
            event.id, self.clock() + delay * (0.5 + random.random() / 2), error)

