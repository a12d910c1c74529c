"""From a customer's submit_sm / data_sm / submit_multi to ``NewMessage`` rows.

The field checks are herald's shared intake rules (:mod:`herald.intake`: the
same destination, sender and body rules as the HTTP API); each refusal
answers with the status SMPP 3.4 §5.1.3 names for its field, raised here as
``Refused(status, reason)``. What is SMPP's own:

* the sender's kind comes from its TON (5 alphanumeric, 3 short code,
  1 international; otherwise inferred from its form);
* body: ``short_message`` or the ``message_payload`` TLV, never both
  (ESME_RINVOPTPARSTREAM); a UDH (esm_class 0x40) must parse
  (ESME_RINVESMCLASS); SAR TLVs are turned into a 16-bit-reference UDH so
  dispatch treats both forms alike (a customer-made part is one segment and is
  sent as it came);
* data_coding is read with herald's convention that 0 means GSM 03.38;
* a destination outside the operator's numbering plan, or without a route,
  is refused ESME_RINVDSTADR like any invalid destination (``FrontLimits.destinations``);
* schedule_delivery_time / validity_period are SMPP times (ESME_RINVSCHED /
  ESME_RINVEXPIRY); validity defaults to the intake policy's
  ``default_validity``, is capped at its ``max_validity`` (SMPP's custom: the
  HTTP API refuses instead) and refused below its ``min_validity``; a schedule
  beyond ``max_schedule_ahead`` is refused, one in the past means "now".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from herald.intake import (
    DEFAULT_POLICY,
    NO_RULES,
    DestinationRules,
    IntakeError,
    IntakePolicy,
    SenderKind,
    normalize_destination,
    prepare_encoded,
    validate_sender,
)
from herald.routes import LiveClasses
from herald.smpp.constants import CommandStatus
from herald.smpp.errors import InvalidTlvValue
from herald.smpp.pdus import DataSm, SmeAddress, SubmitMulti, SubmitSm
from herald.smpp.tlv import (
    MESSAGE_PAYLOAD,
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
    TlvDef,
)
from herald.smpp_front._time import SmppTimeError, parse_smpp_time
from herald.store import DEFAULT_PRIORITY, MAX_BODY_OCTETS, NewMessage, Priority, Source
from herald.text import (
    SmscDefault,
    TextError,
    build_udh,
    concat_element,
    parse_data_coding,
    parse_udh,
)

__all__ = ["FrontLimits", "Refused", "messages_from"]

S = CommandStatus
V = TypeVar("V")
UDHI: Final = 0x40
#: SMPP 3.4 §5.2.5 type of number -> herald's sender kind (others: inferred).
SENDER_KIND_OF_TON: Final = {
    1: SenderKind.INTERNATIONAL,
    3: SenderKind.SHORT_CODE,
    5: SenderKind.ALPHANUMERIC,
}


def _no_rules() -> DestinationRules:
    return NO_RULES


@dataclass(frozen=True, slots=True)
class FrontLimits:
    #: the operator's intake rules (number checks, test ranges, validity bounds)
    intake: IntakePolicy = DEFAULT_POLICY
    #: what the customer's data_coding 0 means
    smsc_default: SmscDefault = SmscDefault.GSM7
    #: the numbering plan and routes as they stand, asked once per submit
    #: (the service passes :meth:`herald.numbers.NumberTables.rules`)
    destinations: Callable[[], DestinationRules] = _no_rules
    #: the ``[[classes]]`` entries of the routes in force (``None``: none)
    classes: LiveClasses | None = None


class Refused(Exception):
    """The request cannot be accepted; answer with ``status``."""

    def __init__(self, status: CommandStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    @classmethod
    def of(cls, error: IntakeError) -> Refused:
        return cls(CommandStatus(error.smpp_status), str(error))


def destination(
    address: str, policy: IntakePolicy, rules: DestinationRules = NO_RULES
) -> str:
    try:
        return normalize_destination(address, field="destination_addr", policy=policy,
                                     rules=rules)
    except IntakeError as exc:
        raise Refused.of(exc) from None


def source(address: str, ton: int, policy: IntakePolicy) -> str:
    try:
        return validate_sender(address, kind=SENDER_KIND_OF_TON.get(ton),
                               field="source_addr", policy=policy).value
    except IntakeError as exc:
        raise Refused.of(exc) from None


def _tlv(pdu: SubmitSm | DataSm | SubmitMulti, tag: TlvDef[V]) -> V | None:
    """A TLV's value; one that breaks its definition is refused with its status
    (ESME_RINVPARLEN for a wrong length)."""
    try:
        return pdu.tlv(tag)
    except InvalidTlvValue as exc:
        raise Refused(exc.status, str(exc)) from None


def _body(pdu: SubmitSm | DataSm | SubmitMulti) -> tuple[bytes, bool]:
    """The octets to store and whether they begin with a UDH."""
    payload = _tlv(pdu, MESSAGE_PAYLOAD)
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
    ref, total, seq = (_tlv(pdu, SAR_MSG_REF_NUM), _tlv(pdu, SAR_TOTAL_SEGMENTS),
                       _tlv(pdu, SAR_SEGMENT_SEQNUM))
    if ref is not None or total is not None or seq is not None:
        if ref is None or not total or not seq or seq > total:
            raise Refused(S.ESME_RINVOPTPARSTREAM, "incomplete or inconsistent SAR TLVs")
        return build_udh([concat_element(ref, total, seq, wide=True)]) + body, True
    return body, False


def _segments(body: bytes, udhi: bool, data_coding: int, limits: FrontLimits) -> int:
    if udhi:
        return 1
    try:
        return prepare_encoded(body, data_coding, smsc_default=limits.smsc_default,
                               policy=limits.intake).segments
    except IntakeError as exc:
        raise Refused.of(exc) from None


def messages_from(
    pdu: SubmitSm | DataSm | SubmitMulti,
    *,
    account_id: int,
    new_id: Callable[[float], str],
    now: float,
    limits: FrontLimits,
    default_priority: Priority | None = None,
    account: str = "",
) -> list[NewMessage]:
    """The rows a submit creates (one per destination). Raises ``Refused``.

    The priority class (see ``docs/smpp.md``): a ``service_type`` naming one
    (``otp``, ``bulk``, ...: case-insensitive, also kept as the tag), else
    ``priority_flag`` 3 = otp and 2 = transactional, else the first
    ``[[classes]]`` entry of ``limits.classes`` matching the message (sent by
    ``account``, a name), else the account's default (``default_priority``),
    else transactional.
    """
    priority, tag = _priority_of(pdu)
    rules = limits.destinations()
    if isinstance(pdu, SubmitMulti):
        if not pdu.dest_addresses:
            raise Refused(S.ESME_RINVNUMDESTS, "submit_multi without a destination")
        targets = []
        for dest in pdu.dest_addresses:
            if not isinstance(dest, SmeAddress):
                raise Refused(S.ESME_RINVDESTFLAG, "distribution lists are not supported")
            targets.append(destination(dest.address, limits.intake, rules))
    else:
        targets = [destination(pdu.destination_addr, limits.intake, rules)]
    sender = source(pdu.source_addr, pdu.source_addr_ton, limits.intake)
    body, udhi = _body(pdu)
    if len(body) > MAX_BODY_OCTETS:
        raise Refused(S.ESME_RINVMSGLEN, f"body longer than {MAX_BODY_OCTETS} octets")
    segments = _segments(body, udhi, pdu.data_coding, limits)
    try:
        encoding = parse_data_coding(pdu.data_coding, limits.smsc_default).encoding.value
    except TextError:
        encoding = "binary"  # a coding herald cannot read is relayed as octets
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
    policy = limits.intake
    if send_at is not None and send_at > now + policy.max_schedule_ahead:
        raise Refused(S.ESME_RINVSCHED, f"more than {policy.max_schedule_ahead / 86400:g} "
                                        "days ahead")
    start = max(now, send_at or now)
    if expires_at is None:
        expires_at = start + policy.default_validity
    expires_at = min(expires_at, start + policy.max_validity)
    if expires_at <= start:
        raise Refused(S.ESME_RINVEXPIRY, "validity ends before the message could be sent")
    if expires_at < start + policy.min_validity:
        raise Refused(S.ESME_RINVEXPIRY, f"validity shorter than {policy.min_validity:g} s")
    if send_at is not None and send_at <= now:
        send_at = None
    classes = limits.classes
    if priority is None and classes is None:
        priority = DEFAULT_PRIORITY if default_priority is None else default_priority
    if priority is not None:
        classes_of = [priority] * len(targets)
    else:  # by destination: a submit_multi's may differ (a class is an IntEnum: 0 is otp)
        assert classes is not None
        classes_of = [DEFAULT_PRIORITY if c is None else c for c in (
            classes.of(account_id, account, to, sender, None, default_priority, now)
            for to in targets)]
    return [
        NewMessage(
            id=new_id(now),
            account_id=account_id,
            source=Source.SMPP,
            to=to,
            sender=sender,
            body=body,
            encoding=encoding,
            data_coding=pdu.data_coding,
            segments=segments,
            accepted_at=now,
            expires_at=expires_at,
            send_at=send_at,
            udhi=udhi,
            registered_delivery=pdu.registered_delivery,
            priority=chosen,
            tag=tag,
        )
        for to, chosen in zip(targets, classes_of, strict=True)
    ]


#: Classes ``service_type`` can name, by the lower-cased word (at most 5 octets
#: in SMPP 3.4, which ``transactional`` and ``marketing`` are not: ``txn``, ``mkt``).
SERVICE_TYPES: Final = {
    **{p.label: p for p in Priority if len(p.label) <= 5},
    "txn": Priority.TRANSACTIONAL,
    "mkt": Priority.MARKETING,
}
#: priority_flag (SMPP 3.4 §5.2.14; GSM: 0 non-priority, 1-3 priority) -> class.
_FLAG_CLASSES: Final = {3: Priority.OTP, 2: Priority.TRANSACTIONAL}


def _priority_of(pdu: SubmitSm | DataSm | SubmitMulti) -> tuple[Priority | None, str | None]:
    """The class the request names (``None``: none) and the tag it implies."""
    word = pdu.service_type.strip().lower()
    named = SERVICE_TYPES.get(word)
    if named is not None:
        return named, named.label
    flag = None if isinstance(pdu, DataSm) else _FLAG_CLASSES.get(pdu.priority_flag)
    if flag is not None:
        return flag, None
    return None, None
