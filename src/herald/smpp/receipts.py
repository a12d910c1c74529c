"""Delivery receipts: the text form, its variants, and the receipt TLVs.

SMPP 3.4 Appendix B gives the receipt text only as an example::

    id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm
    stat:DDDDDDD err:E text:...

and SMSCs vary it (reference/smpp.md): 12-digit dates with seconds, ``Text:``
for ``text:``, ``submit_date`` for ``submit date``, fields missing, fields
added, vendor stat words. :func:`parse_receipt` reads all of those; ``text:``
is always the last field and takes the rest of the string, colons included.

:func:`parse_receipt` raises :class:`ReceiptError` when the text has no ``id``
or no ``stat`` (it is not a receipt); it never returns None. A date it cannot
read becomes None rather than an error: the status is what matters.

:func:`receipt_of` reads a deliver_sm/data_sm the way correlation should: the
TLVs first (receipted_message_id, message_state, network_error_code), the text
second (reference/smpp.md).

The red line: fields that locate or identify a subscriber (``imsi``, ``msc``,
``vlr``, ``sgsn``, ``imei``, cell and location keys), which some SMSCs add to
receipt text, are dropped by the parser and so never reach a Receipt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from herald.smpp.constants import ESM_TYPE_MASK, EsmType, MessageState
from herald.smpp.errors import InvalidTlvValue, ReceiptError
from herald.smpp.pdus import DataSm, DeliverSm
from herald.smpp.tlv import (
    MESSAGE_PAYLOAD,
    MESSAGE_STATE,
    NETWORK_ERROR_CODE,
    RECEIPTED_MESSAGE_ID,
    NetworkErrorCode,
)

__all__ = [
    "STAT_STATES",
    "Receipt",
    "format_receipt",
    "is_receipt",
    "parse_receipt",
    "receipt_of",
    "stat_from_state",
    "state_from_stat",
]

M = MessageState

#: stat word -> message_state: the spec's seven-letter words, then the long
#: forms and vendor words seen in the wild.
STAT_STATES: Final[dict[str, MessageState]] = {
    "ENROUTE": M.ENROUTE,
    "DELIVRD": M.DELIVERED,
    "EXPIRED": M.EXPIRED,
    "DELETED": M.DELETED,
    "UNDELIV": M.UNDELIVERABLE,
    "ACCEPTD": M.ACCEPTED,
    "UNKNOWN": M.UNKNOWN,
    "REJECTD": M.REJECTED,
    # vendor extras
    "DELIVERED": M.DELIVERED,
    "UNDELIVERABLE": M.UNDELIVERABLE,
    "UNDELIVERED": M.UNDELIVERABLE,
    "FAILED": M.UNDELIVERABLE,
    "ACCEPTED": M.ACCEPTED,
    "REJECTED": M.REJECTED,
    "EXPIRD": M.EXPIRED,
    "BUFFRED": M.ENROUTE,
    "BUFFERED": M.ENROUTE,
    "SENT": M.ENROUTE,
    "SCHEDULED": M.ENROUTE,
}

_STATE_STATS: Final = {
    M.ENROUTE: "ENROUTE",
    M.DELIVERED: "DELIVRD",
    M.EXPIRED: "EXPIRED",
    M.DELETED: "DELETED",
    M.UNDELIVERABLE: "UNDELIV",
    M.ACCEPTED: "ACCEPTD",
    M.UNKNOWN: "UNKNOWN",
    M.REJECTED: "REJECTD",
}

# Keys that would carry where a phone is or who a subscriber is: never kept.
_PRIVATE_KEYS: Final = frozenset({
    "imsi", "imei", "msc", "mscaddr", "msc_addr", "vlr", "sgsn", "cell", "cellid", "cell_id",
    "ci", "lac", "location", "loc", "lat", "lon", "lng",
})

_KNOWN_KEYS: Final = ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text")

# A key is a word (or "<word> date"/"<word>_date") right after the start or a
# space, followed by a colon.
_MARKER = re.compile(r"(?:^|(?<=\s))([A-Za-z][A-Za-z]*(?:[ _]date)?)[ ]?:")

# Receipt text is at most a few hundred octets (short_message <= 254, or a
# payload); bound the work on a hostile message_payload all the same.
_MAX_RECEIPT_TEXT: Final = 1024


@dataclass(frozen=True, slots=True)
class Receipt:
    """One delivery receipt. ``stat`` is the word as sent (upper-cased);
    ``state`` is what it means (a word this module does not know reads as
    UNKNOWN). Dates are as the SMSC wrote them, naive (its local time)."""

    message_id: str
    stat: str
    state: MessageState
    sub: int | None = None
    dlvrd: int | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    err: str | None = None
    text: str | None = None
    network_error: NetworkErrorCode | None = None
    extras: tuple[tuple[str, str], ...] = ()


def state_from_stat(stat: str) -> MessageState | None:
    """The message_state a stat word means, or None for a word not in
    ``STAT_STATES``."""
    return STAT_STATES.get(stat.strip().upper())


def stat_from_state(state: MessageState) -> str:
    """The spec's seven-letter stat word for a message_state."""
    return _STATE_STATS[state]


def _normal_key(raw: str) -> str:
    return raw.lower().replace("_", " ")


def _fields(text: str) -> dict[str, str]:
    """key -> value for every ``key:value`` in receipt text, in order; the
    ``text`` field takes the rest of the string."""
    text = text[:_MAX_RECEIPT_TEXT]
    markers = list(_MARKER.finditer(text))
    out: dict[str, str] = {}
    for k, marker in enumerate(markers):
        key = _normal_key(marker.group(1))
        if key == "text":
            out[key] = text[marker.end():]
            break
        stop = markers[k + 1].start() if k + 1 < len(markers) else len(text)
        out.setdefault(key, text[marker.end():stop].strip())
    return out


def _date(value: str | None) -> datetime | None:
    if value is None or not value.isdigit():
        return None
    try:
        if len(value) == 10:  # YYMMDDhhmm, the spec's example
            return datetime.strptime(value, "%y%m%d%H%M")
        if len(value) == 12:  # YYMMDDhhmmss
            return datetime.strptime(value, "%y%m%d%H%M%S")
        if len(value) == 14:  # YYYYMMDDhhmmss
            return datetime.strptime(value, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return None


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _as_text(text: str | bytes) -> str:
    return text.decode("latin-1") if isinstance(text, bytes | bytearray) else text


def _build(fields: dict[str, str], message_id: str | None, state: MessageState | None,
           network_error: NetworkErrorCode | None = None) -> Receipt:
    message_id = message_id if message_id is not None else fields.get("id")
    stat = fields.get("stat")
    if state is None and stat is not None:
        state = state_from_stat(stat) or M.UNKNOWN
    if not message_id:
        raise ReceiptError("no message id (neither receipted_message_id nor id:)")
    if state is None:
        raise ReceiptError("no status (neither message_state nor stat:)")
    extras = tuple(
        (key, value) for key, value in fields.items()
        if key not in _KNOWN_KEYS and key not in _PRIVATE_KEYS
    )
    return Receipt(
        message_id=message_id,
        stat=stat.upper() if stat else stat_from_state(state),
        state=state,
        sub=_count(fields.get("sub")),
        dlvrd=_count(fields.get("dlvrd")),
        submit_date=_date(fields.get("submit date")),
        done_date=_date(fields.get("done date")),
        err=fields.get("err"),
        text=fields.get("text"),
        network_error=network_error,
        extras=extras,
    )


def parse_receipt(text: str | bytes) -> Receipt:
    """Parse receipt text. Raises ReceiptError when it has no ``id`` or no
    ``stat``. Bytes are read as Latin-1 (receipt text is ASCII)."""
    return _build(_fields(_as_text(text)), None, None)


def is_receipt(pdu: DeliverSm | DataSm) -> bool:
    """True for an SMSC delivery receipt or intermediate notification (esm_class
    message type, SMPP 3.4 §5.2.12), or any PDU carrying receipted_message_id."""
    kind = pdu.esm_class & ESM_TYPE_MASK
    if kind in (EsmType.DELIVERY_RECEIPT, EsmType.INTERMEDIATE_NOTIFICATION):
        return True
    return any(t.tag == RECEIPTED_MESSAGE_ID.tag for t in pdu.tlvs)


def receipt_of(pdu: DeliverSm | DataSm) -> Receipt:
    """The receipt a deliver_sm or data_sm carries: TLVs first (an id or state
    from a TLV wins over the text's), then the text in short_message or
    message_payload. A malformed TLV is ignored in favour of the text. Raises
    ReceiptError when neither gives an id and a status."""

    try:
        message_id = pdu.tlv(RECEIPTED_MESSAGE_ID) or None
    except InvalidTlvValue:
        message_id = None
    try:
        raw_state = pdu.tlv(MESSAGE_STATE)
        state = None if raw_state is None else M(raw_state)
    except (InvalidTlvValue, ValueError):  # malformed, or not a 3.4 message_state
        state = None
    try:
        network_error = pdu.tlv(NETWORK_ERROR_CODE)
    except InvalidTlvValue:
        network_error = None
    body: bytes = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    if not body:
        try:
            body = pdu.tlv(MESSAGE_PAYLOAD) or b""
        except InvalidTlvValue:
            body = b""
    return _build(_fields(_as_text(body)), message_id, state, network_error)


def _format_date(value: datetime, seconds: bool) -> str:
    return value.strftime("%y%m%d%H%M%S" if seconds else "%y%m%d%H%M")


def format_receipt(receipt: Receipt, *, seconds: bool = False) -> str:
    """Receipt text in the SMPP 3.4 Appendix B layout. Fields that are None
    are left out; extras go before ``text:``, which is always last. Dates are
    10 digits, or 12 with ``seconds=True``. The caller shortens ``text`` (the
    appendix suggests its first 20 characters)."""
    parts = [f"id:{receipt.message_id}"]
    if receipt.sub is not None:
        parts.append(f"sub:{receipt.sub:03d}")
    if receipt.dlvrd is not None:
        parts.append(f"dlvrd:{receipt.dlvrd:03d}")
    if receipt.submit_date is not None:
        parts.append(f"submit date:{_format_date(receipt.submit_date, seconds)}")
    if receipt.done_date is not None:
        parts.append(f"done date:{_format_date(receipt.done_date, seconds)}")
    parts.append(f"stat:{receipt.stat}")
    if receipt.err is not None:
        parts.append(f"err:{receipt.err}")
    parts.extend(f"{key}:{value}" for key, value in receipt.extras)
    if receipt.text is not None:
        parts.append(f"text:{receipt.text}")
    return " ".join(parts)
