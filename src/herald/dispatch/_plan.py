"""A stored message as the submit_sm PDUs one connector needs (pure).

Theory of operation
-------------------
The store keeps a message's body whole, already encoded: ``encoding`` names
the alphabet (GSM 7-bit unpacked, one septet per octet; UCS-2 as UTF-16BE;
Latin-1; ASCII; binary), ``data_coding`` is the value the customer's side
chose. What goes upstream depends on the connector:

1. **The data_coding octet.** A non-zero value names its alphabet explicitly
   (SMPP 3.4 §5.2.19, TS 23.038 §4) and travels unchanged. Zero is "SMSC
   default", whose meaning is the *upstream's*: herald sends 0 only when the
   connector's default alphabet (``data_coding_0``) is the body's encoding, and
   the explicit value otherwise (Latin-1 3, IA5 1, UCS-2 8). A GSM 7-bit body
   has no explicit class-less value (SMPP 3.4 reserves none), so for a
   connector whose data_coding 0 means Latin-1 or ASCII the text is decoded
   and **re-encoded** in the cheapest alphabet that upstream can name: its
   default if the text fits (data_coding 0), else Latin-1 (3), else UCS-2 (8).
   Sending the GSM octets with data_coding 0 there would turn "£" into "B"
   (reference/smpp.md), and sending them as data_coding 0xF0 would make the
   message a flash-class message on some handsets: both are worse than a
   re-encoding, whose only cost is that a text with GSM-only characters
   (Greek capitals, for instance) may need UCS-2 and so more parts.
2. **Parts.** A body that fits one SMS goes as it is. A longer one is cut
   with the connector's concatenation method (``udh8`` default, ``udh16``,
   ``sar``, or ``payload``: one PDU with the body in message_payload). The
   part count may differ from the one intake computed (UDH8, connector-blind);
   the caller then records the new count (``Store.set_segments``) before any
   part is recorded, so "sent" and "delivered" still mean "all parts".
3. **A body with the customer's own UDH** (``udhi``: a part of a message the
   customer split over SMPP) is one part whose header is kept as it is.

Everything a body cannot become on a connector raises :class:`Unsendable`:
the next connector of the route may still carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from herald.dispatch._errors import ErrorCode
from herald.smpp.constants import ReceiptRequest
from herald.smpp.pdus import QuerySm, SubmitSm
from herald.smpp.tlv import (
    MESSAGE_PAYLOAD,
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
    Tlv,
)
from herald.store import Message
from herald.text import (
    UDHI,
    Encoding,
    EncodingUnavailable,
    Method,
    Segmented,
    SmscDefault,
    TextError,
    choose_encoding,
    data_coding_for,
    decode,
    encode,
    parse_udh,
    split_binary,
    split_text,
)

__all__ = [
    "SHORT_CODE_MAX_DIGITS",
    "Unsendable",
    "Upstream",
    "build_submits",
    "query_pdu",
    "source_ton_npi",
    "validity_period",
]

#: TS 23.040 §9.2.3.16: 140 octets of user data; unpacked GSM 7-bit carries 160
#: septets in them, one septet per octet of short_message.
_SINGLE_OCTETS: Final = 140
_SINGLE_SEPTETS: Final = 160
#: SMPP 3.4 §5.2.21: short_message holds at most 254 octets.
_MAX_SHORT_MESSAGE: Final = 254
#: SMPP 3.4 §5.3.2.32: message_payload holds at most 65535 octets.
_MAX_PAYLOAD: Final = 0xFFFF
#: A numeric sender of at most this many digits is a short code (herald.intake
#: uses the same bound when it stores senders).
SHORT_CODE_MAX_DIGITS: Final = 8

# SMPP 3.4 §5.2.5-6 TON / NPI values for the three kinds of sender.
_INTERNATIONAL: Final = (1, 1)  # TON international, NPI E.164
_NETWORK_SPECIFIC: Final = (3, 0)  # a short code
_ALPHANUMERIC: Final = (5, 0)

# SMPP 3.4 §5.2.17 bits 1..0 = 01: a receipt on final success or failure.
_RECEIPT: Final = int(ReceiptRequest.ALWAYS)

# The alphabet split_text should assume as "default" so that it never asks
# for a data_coding it cannot name (we choose the data_coding ourselves).
_NEUTRAL: Final = {
    Encoding.GSM7: SmscDefault.GSM7,
    Encoding.LATIN1: SmscDefault.LATIN1,
    Encoding.ASCII: SmscDefault.ASCII,
    Encoding.UCS2: SmscDefault.GSM7,
}


_DEFAULT_ENCODING: Final = {d: d.encoding for d in SmscDefault}
_ENCODINGS: Final = {e.value: e for e in Encoding}


class Unsendable(Exception):
    """This connector cannot carry this body (the reason says why)."""

    error_code = ErrorCode.UNSENDABLE


@dataclass(frozen=True, slots=True)
class Upstream:
    """The connector settings that shape its submit_sm PDUs."""

    smsc_default: SmscDefault = SmscDefault.GSM7
    method: Method = Method.UDH8
    source_ton: int | None = None
    source_npi: int | None = None


def source_ton_npi(sender: str) -> tuple[str, int, int]:
    """The source_addr, its TON and NPI for a stored sender.

    ``+digits`` and long digit strings are international numbers, short digit
    strings short codes, anything else an alphanumeric name.
    """
    if sender.startswith("+") and sender[1:].isdigit():
        return (sender[1:], *_INTERNATIONAL)
    if sender.isdigit() and sender.isascii():
        kind = _NETWORK_SPECIFIC if len(sender) <= SHORT_CODE_MAX_DIGITS else _INTERNATIONAL
        return (sender, *kind)
    return (sender, *_ALPHANUMERIC)


_last_validity: list[tuple[int, str]] = [(-1, "")]


def validity_period(expires_at: float) -> str:
    """``expires_at`` (epoch seconds) as an SMPP 3.4 §7.1.1 absolute time in UTC.

    ``YYMMDDhhmmss`` then tenths of a second, the quarter-hour offset from UTC
    (00) and its direction (``+``).
    """
    second = int(expires_at)
    last = _last_validity[0]
    if last[0] == second:  # messages accepted in the same second share it
        return last[1]
    text = datetime.fromtimestamp(second, UTC).strftime("%y%m%d%H%M%S") + "000+"
    _last_validity[0] = (second, text)
    return text


def _cheapest(text: str, upstream: Upstream) -> tuple[Encoding, bytes, int]:
    """Re-encode ``text`` for an upstream whose data_coding 0 is not GSM 7-bit."""
    encoding = choose_encoding(text, smsc_default=upstream.smsc_default, allow_latin1=True)
    return encoding, encode(text, encoding), data_coding_for(encoding, upstream.smsc_default)


def _target(message: Message, encoding: Encoding, upstream: Upstream) -> int | None:
    """The data_coding to send the body with as it is, or None if it must be re-encoded."""
    if encoding is Encoding.BINARY or message.data_coding != 0:
        return message.data_coding
    if encoding is _DEFAULT_ENCODING[upstream.smsc_default]:
        return 0  # the common case, without data_coding_for's enum lookups
    try:
        return data_coding_for(encoding, upstream.smsc_default)
    except EncodingUnavailable:
        return None


def _with_udh(message: Message, encoding: Encoding, upstream: Upstream) -> tuple[bytes, int]:
    """The customer's own UDH part: (short_message, data_coding)."""
    body = message.body
    target = _target(message, encoding, upstream)
    if target is not None:
        return body, target
    udh, payload = parse_udh(body)
    _, encoded, target = _cheapest(decode(payload, encoding, strict=False), upstream)
    short = body[: udh.length] + encoded
    if len(short) > _SINGLE_OCTETS:
        raise Unsendable(f"re-encoded part is {len(short)} octets, more than one SMS")
    return short, target


def _split(message: Message, encoding: Encoding, upstream: Upstream, reference: int) -> Segmented:
    method = upstream.method
    if method is Method.UDH8:
        reference &= 0xFF
    if encoding is Encoding.BINARY:
        return split_binary(message.body, method=method, reference=reference,
                            data_coding=message.data_coding)
    text = decode(message.body, encoding, strict=False)
    if _target(message, encoding, upstream) is None:
        return split_text(text, method=method, reference=reference,
                          smsc_default=upstream.smsc_default, allow_latin1=True)
    return split_text(text, method=method, reference=reference, encoding=encoding,
                      smsc_default=_NEUTRAL[encoding])


@dataclass(frozen=True, slots=True)
class _Envelope:
    """The fields every part of one message shares."""

    source_addr: str
    source_ton: int
    source_npi: int
    destination_addr: str
    validity: str

    def pdu(
        self, data_coding: int, short_message: bytes = b"", *, esm_class: int = 0,
        tlvs: tuple[Tlv, ...] = (),
    ) -> SubmitSm:
        return SubmitSm(
            source_addr_ton=self.source_ton,
            source_addr_npi=self.source_npi,
            source_addr=self.source_addr,
            dest_addr_ton=_INTERNATIONAL[0],
            dest_addr_npi=_INTERNATIONAL[1],
            destination_addr=self.destination_addr,
            esm_class=esm_class,
            registered_delivery=_RECEIPT,
            validity_period=self.validity,
            data_coding=data_coding,
            short_message=short_message,
            tlvs=tlvs,
        )


def _source(sender: str, upstream: Upstream) -> tuple[str, int, int]:
    """source_addr, TON and NPI as this upstream gets them (its overrides applied)."""
    source, ton, npi = source_ton_npi(sender)
    return (source, ton if upstream.source_ton is None else upstream.source_ton,
            npi if upstream.source_npi is None else upstream.source_npi)


def query_pdu(upstream_id: str, sender: str, upstream: Upstream) -> QuerySm:
    """The query_sm asking ``upstream`` about the part it accepted as ``upstream_id``.

    SMPP 3.4 §4.8.1: the source address must be the original submit's, so
    it is built as :func:`build_submits` built it.
    """
    source, ton, npi = _source(sender, upstream)
    return QuerySm(message_id=upstream_id, source_addr_ton=ton, source_addr_npi=npi,
                   source_addr=source)


def build_submits(message: Message, upstream: Upstream, *, reference: int) -> tuple[SubmitSm, ...]:
    """The submit_sm PDUs (one per part, in order) that carry ``message`` upstream.

    ``reference`` is the concatenation reference the connector allocated
    (only its low 8 bits are used with UDH8). Raises :class:`Unsendable`.
    """
    encoding = _ENCODINGS.get(message.encoding)
    if encoding is None:
        raise Unsendable(f"unknown encoding {message.encoding!r}")
    envelope = _Envelope(
        *_source(message.sender, upstream),
        message.to.removeprefix("+"),
        validity_period(message.expires_at),
    )
    try:
        return _build(message, encoding, upstream, reference, envelope)
    except TextError as exc:
        raise Unsendable(str(exc)) from None


def _build(
    message: Message, encoding: Encoding, upstream: Upstream, reference: int, envelope: _Envelope
) -> tuple[SubmitSm, ...]:
    if message.udhi:
        short, data_coding = _with_udh(message, encoding, upstream)
        if len(short) > _MAX_SHORT_MESSAGE:
            raise Unsendable(f"a {len(short)}-octet part with its own UDH does not fit")
        return (envelope.pdu(data_coding, short, esm_class=UDHI),)
    body = message.body
    target = _target(message, encoding, upstream)
    if upstream.method is Method.PAYLOAD:
        if target is None:
            _, body, target = _cheapest(decode(body, encoding, strict=False), upstream)
        if len(body) > _MAX_PAYLOAD:
            raise Unsendable(f"{len(body)} octets exceed message_payload's {_MAX_PAYLOAD}")
        return (envelope.pdu(target, tlvs=(MESSAGE_PAYLOAD(body),)),)
    single = _SINGLE_SEPTETS if encoding is Encoding.GSM7 else _SINGLE_OCTETS
    if target is not None and len(body) <= single:
        return (envelope.pdu(target, body),)  # the common case: one part, as stored
    segmented = _split(message, encoding, upstream, reference)
    if target is None:
        target = segmented.data_coding
    pdus = []
    for part in segmented.parts:
        tlvs: tuple[Tlv, ...] = ()
        if part.sar is not None:
            sar = part.sar
            tlvs = (SAR_MSG_REF_NUM(sar.reference), SAR_TOTAL_SEGMENTS(sar.total),
                    SAR_SEGMENT_SEQNUM(sar.seq))
        pdus.append(envelope.pdu(target, part.short_message,
                                 esm_class=UDHI if part.udhi else 0, tlvs=tlvs))
    return tuple(pdus)
