"""From a customer's submit_sm / data_sm / submit_multi to ``NewMessage`` rows.

Each check answers with the status SMPP 3.4 §5.1.3 names for its field, as a
``Refused(status, reason)``; the handler turns it into the response. The
rules (herald as an SMSC):

* destination: digits (a leading ``+`` is tolerated), 1..15 of them, a
  possible E.164 number when TON is international/unknown; else
  ESME_RINVDSTADR;
* source: alphanumeric (TON 5) up to 11 characters, or 1..15 digits; else
  ESME_RINVSRCADR;
* body: ``short_message`` or the ``message_payload`` TLV, never both
  (ESME_RINVOPTPARSTREAM); a UDH (esm_class 0x40) must parse
  (ESME_RINVESMCLASS); SAR TLVs are turned into a 16-bit-reference UDH so
  dispatch treats both forms alike (a customer-made part is one segment and
  is sent as it came);
* data_coding: read with herald's convention that 0 means GSM 03.38; a value
  herald cannot interpret is relayed as opaque octets;
* schedule_delivery_time / validity_period: SMPP times (ESME_RINVSCHED /
  ESME_RINVEXPIRY); validity defaults to ``default_validity`` and is capped at
  ``max_validity``.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import phonenumbers

from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import DataSm, SmeAddress, SubmitMulti, SubmitSm
from herald.smpp.tlv import MESSAGE_PAYLOAD, SAR_MSG_REF_NUM, SAR_SEGMENT_SEQNUM, SAR_TOTAL_SEGMENTS
from herald.smpp_front._time import SmppTimeError, parse_smpp_time
from herald.store import MAX_BODY_OCTETS, NewMessage, Source
from herald.text import (
    Encoding,
    SmscDefault,
    TextError,
    analyze,
    build_udh,
    concat_element,
    decode,
    parse_data_coding,
    parse_udh,
)

__all__ = ["FrontLimits", "Refused", "messages_from"]

S = CommandStatus
UDHI: Final = 0x40
TON_ALPHANUMERIC: Final = 5
MAX_ALPHANUMERIC: Final = 11  # GSM 03.40 TP-OA: 11 characters in 7-bit
MAX_E164_DIGITS: Final = 15  # ITU-T E.164
_ALNUM: Final = frozenset(string.ascii_letters + string.digits + " -_.&'!?@#")


@dataclass(frozen=True, slots=True)
class FrontLimits:
    default_validity: float = 48 * 3600.0  # seconds, when the customer gives none
    max_validity: float = 7 * 86400.0  # seconds; longer requests are capped
    smsc_default: SmscDefault = SmscDefault.GSM7  # what the customer's data_coding 0 means


class Refused(Exception):
    """The request cannot be accepted; answer with ``status``."""

    def __init__(self, status: CommandStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def destination(address: str, ton: int) -> str:
    digits = address[1:] if address.startswith("+") else address
    if not digits.isdigit() or not 1 <= len(digits) <= MAX_E164_DIGITS:
        raise Refused(S.ESME_RINVDSTADR, "destination must be 1..15 digits")
    if ton in (0, 1):
        try:
            number = phonenumbers.parse("+" + digits)
        except phonenumbers.NumberParseException:
            raise Refused(S.ESME_RINVDSTADR, "destination is not an E.164 number") from None
        if not phonenumbers.is_possible_number(number):
            raise Refused(S.ESME_RINVDSTADR, "destination is not a possible number")
    return digits


def source(address: str, ton: int) -> str:
    if ton == TON_ALPHANUMERIC or not address.lstrip("+").isdigit():
        if not address or len(address) > MAX_ALPHANUMERIC or not set(address) <= _ALNUM:
            raise Refused(S.ESME_RINVSRCADR,
                          f"alphanumeric source must be 1..{MAX_ALPHANUMERIC} plain characters")
        return address
    digits = address.lstrip("+")
    if not 1 <= len(digits) <= MAX_E164_DIGITS:
        raise Refused(S.ESME_RINVSRCADR, "numeric source must be 1..15 digits")
    return digits


def _body(pdu: SubmitSm | DataSm | SubmitMulti) -> tuple[bytes, bool]:
    """The octets to store and whether they begin with a UDH."""
    payload = pdu.tlv(MESSAGE_PAYLOAD)
    short = b"" if isinstance(pdu, DataSm) else pdu.short_message
    if payload is not None and short:
        raise Refused(S.ESME_RINVOPTPARSTREAM, "short_message and message_payload both set")
    body = short or payload or b""
    udhi = bool(pdu.esm_class & UDHI)
    if udhi:
        try:
            parse_udh(body)
        except TextError:
            raise Refused(S.ESME_RINVESMCLASS, "esm_class says UDH, the body has none") from None
        return body, True
    ref, total, seq = (pdu.tlv(SAR_MSG_REF_NUM), pdu.tlv(SAR_TOTAL_SEGMENTS),
                       pdu.tlv(SAR_SEGMENT_SEQNUM))
    if ref is not None or total is not None or seq is not None:
        if ref is None or not total or not seq or seq > total:
            raise Refused(S.ESME_RINVOPTPARSTREAM, "incomplete or inconsistent SAR TLVs")
        return build_udh([concat_element(ref, total, seq, wide=True)]) + body, True
    return body, False


def _segments(body: bytes, udhi: bool, encoding: Encoding, smsc_default: SmscDefault) -> int:
    if udhi or not body:
        return 1
    if encoding is Encoding.BINARY:
        return 1 if len(body) <= 140 else -(-len(body) // 134)
    try:
        text = decode(body, encoding, strict=False)
        return analyze(text, encoding=encoding, smsc_default=smsc_default).segments
    except TextError as exc:
        raise Refused(S.ESME_RINVMSGLEN, str(exc)) from None


def messages_from(
    pdu: SubmitSm | DataSm | SubmitMulti,
    *,
    account_id: int,
    new_id: Callable[[float], str],
    now: float,
    limits: FrontLimits,
) -> list[NewMessage]:
    """The rows a submit creates (one per destination). Raises ``Refused``."""
    sender = source(pdu.source_addr, pdu.source_addr_ton)
    body, udhi = _body(pdu)
    if len(body) > MAX_BODY_OCTETS:
        raise Refused(S.ESME_RINVMSGLEN, f"body longer than {MAX_BODY_OCTETS} octets")
    coding = parse_data_coding(pdu.data_coding, limits.smsc_default)
    encoding = coding.encoding
    segments = _segments(body, udhi, encoding, limits.smsc_default)
    schedule = "" if isinstance(pdu, DataSm) else pdu.schedule_delivery_time
    validity = "" if isinstance(pdu, DataSm) else pdu.validity_period
    try:
        send_at = parse_smpp_time(schedule, now)
    except SmppTimeError as exc:
        raise Refused(S.ESME_RINVSCHED, str(exc)) from None
    try:
        expires_at = parse_smpp_time(validity, now)
    except SmppTimeError as exc:
        raise Refused(S.ESME_RINVEXPIRY, str(exc)) from None
    start = max(now, send_at or now)
    if expires_at is None:
        expires_at = start + limits.default_validity
    expires_at = min(expires_at, start + limits.max_validity)
    if expires_at <= start:
        raise Refused(S.ESME_RINVEXPIRY, "validity ends before the message could be sent")
    if send_at is not None and send_at <= now:
        send_at = None
    if isinstance(pdu, SubmitMulti):
        targets = []
        for dest in pdu.dest_addresses:
            if not isinstance(dest, SmeAddress):
                raise Refused(S.ESME_RINVDESTFLAG, "distribution lists are not supported")
            targets.append(destination(dest.address, dest.ton))
    else:
        targets = [destination(pdu.destination_addr, pdu.dest_addr_ton)]
    return [
        NewMessage(
            id=new_id(now),
            account_id=account_id,
            source=Source.SMPP,
            to=to,
            sender=sender,
            body=body,
            encoding=encoding.value,
            data_coding=pdu.data_coding,
            segments=segments,
            accepted_at=now,
            expires_at=expires_at,
            send_at=send_at,
            udhi=udhi,
            registered_delivery=pdu.registered_delivery,
        )
        for to in targets
    ]
