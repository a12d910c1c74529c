"""cancel_sm and replace_sm: a customer changes a message that has not gone out.

Both apply under the store's rule (:meth:`herald.store.Store.cancel`): the
message waits (``accepted``, or ``queued`` and not held by dispatch) and no
part of it went upstream. What is SMPP's own:

* cancel_sm (SMPP 3.4 §4.9) with a ``message_id`` (herald's, from
  submit_sm_resp) cancels that message, provided ``source_addr`` is the
  message's sender (and ``destination_addr``, when given, its destination):
  ESME_ROK, also for a message cancelled already; ESME_RINVMSGID for an id
  the account does not have; ESME_RINVSRCADR / ESME_RINVDSTADR when an address
  does not match; ESME_RCANCELFAIL when it is too late or dispatch holds it.
* cancel_sm without a ``message_id`` cancels every waiting message of the
  account from ``source_addr`` to ``destination_addr`` (both required):
  ESME_ROK when it cancelled at least one, else ESME_RCANCELFAIL. A
  ``service_type`` narrows the group when it names a priority class (a submit
  naming one keeps it as the message's tag, ``_messages``): only the messages
  with that tag. herald keeps no other service_type, so a group cancel naming
  one is refused (ESME_RCANCELFAIL) rather than cancelling messages of other
  service types.
* replace_sm (§4.10) replaces the body (``short_message``, or the
  ``message_payload`` TLV as SMPP 5.0 allows), checked and counted as a
  submit's body is, in the message's own data_coding (replace_sm has none);
  ``schedule_delivery_time`` and ``validity_period`` when given (empty keeps
  them, under the same bounds as a submit); and ``registered_delivery``
  always, as the spec says. Only messages submitted by SMPP can be replaced
  (an HTTP message's body is in the API's encoding). ESME_RREPLACEFAIL when
  it is too late or dispatch holds it; a bad field gets a submit's status
  for it.

Every cancel goes through the store, so a cancelled message is reported
(deliver_sm receipt ``stat:DELETED``, message_state DELETED, when
``registered_delivery`` asked for receipts) like any other final status.
"""

from __future__ import annotations

import logging
from typing import Final

from herald.intake import NO_RULES, IntakeError, prepare_encoded
from herald.smpp.constants import CommandStatus
from herald.smpp.errors import InvalidTlvValue
from herald.smpp.pdus import CancelSm, ReplaceSm
from herald.smpp.tlv import MESSAGE_PAYLOAD
from herald.smpp_front._messages import SERVICE_TYPES, FrontLimits, Refused, destination, source
from herald.smpp_front._time import SmppTimeError, parse_smpp_time
from herald.store import (
    MAX_BODY_OCTETS,
    ChangeOutcome,
    InvalidRecord,
    Message,
    MessageNotFound,
    Replacement,
    Source,
    Status,
    Store,
)
from herald.text import TextError, parse_udh

__all__ = ["MAX_GROUP_CANCEL", "cancel_sm", "replace_sm"]

log = logging.getLogger("herald.smpp.front")
S = CommandStatus

#: Messages one cancel_sm without a message_id cancels at most: one write of
#: bounded size (a customer with more waiting to one number sends it again).
MAX_GROUP_CANCEL: Final = 10_000


def _same_sender(message: Message, address: str, ton: int, limits: FrontLimits) -> bool:
    """Whether ``address`` names the message's sender, in any form a submit takes."""
    if address == message.sender:
        return True
    try:
        return source(address, ton, limits.intake) == message.sender
    except Refused:
        return False


def _same_destination(message: Message, address: str, limits: FrontLimits) -> bool:
    try:
        return destination(address, limits.intake) == message.to
    except Refused:
        return False


async def _own(store: Store, account_id: int, message_id: str) -> Message:
    """The account's message; Refused(ESME_RINVMSGID) for any other id."""
    try:
        return await store.get_message(message_id, account_id=account_id)
    except MessageNotFound:
        raise Refused(S.ESME_RINVMSGID, "no such message") from None


async def cancel_sm(store: Store, account_id: int, pdu: CancelSm, now: float,
                    limits: FrontLimits) -> CommandStatus:
    """The status to answer ``pdu`` with, after cancelling what it names.
    Raises ``Refused`` (and the store's errors)."""
    if not pdu.message_id:
        return await _cancel_group(store, account_id, pdu, now, limits)
    message = await _own(store, account_id, pdu.message_id)
    if not _same_sender(message, pdu.source_addr, pdu.source_addr_ton, limits):
        raise Refused(S.ESME_RINVSRCADR, "source_addr is not the message's sender")
    if pdu.destination_addr and not _same_destination(message, pdu.destination_addr, limits):
        raise Refused(S.ESME_RINVDSTADR, "destination_addr is not the message's destination")
    result = await store.cancel(message.id, now, account_id=account_id)
    if result.outcome is ChangeOutcome.APPLIED or result.message.status is Status.CANCELLED:
        return S.ESME_ROK
    raise Refused(S.ESME_RCANCELFAIL, _why(result.outcome, result.message))


async def _cancel_group(store: Store, account_id: int, pdu: CancelSm, now: float,
                        limits: FrontLimits) -> CommandStatus:
    tag = None
    if pdu.service_type:
        named = SERVICE_TYPES.get(pdu.service_type.strip().lower())
        if named is None:
            raise Refused(S.ESME_RCANCELFAIL, "herald keeps no such service_type to cancel by")
        tag = named.label
    if not pdu.destination_addr:
        raise Refused(S.ESME_RINVDSTADR, "a cancel_sm without message_id names a destination")
    to = destination(pdu.destination_addr, limits.intake, NO_RULES)
    sender = source(pdu.source_addr, pdu.source_addr_ton, limits.intake)
    cancelled = await store.cancel_matching(account_id, now, limit=MAX_GROUP_CANCEL, to=to,
                                            sender=sender, tag=tag)
    if not cancelled:
        raise Refused(S.ESME_RCANCELFAIL, "no waiting message from that sender to that number")
    return S.ESME_ROK


def _why(outcome: ChangeOutcome, message: Message) -> str:
    if outcome is ChangeOutcome.IN_PROGRESS:
        return "dispatch is submitting it"
    return f"it is {message.status.label}"


def _new_body(pdu: ReplaceSm, message: Message, limits: FrontLimits) -> tuple[bytes, int]:
    """The replacement body and its segment count, checked like a submit's."""
    try:
        payload = pdu.tlv(MESSAGE_PAYLOAD)
    except InvalidTlvValue as exc:
        raise Refused(exc.status, str(exc)) from None
    if payload is not None and pdu.short_message:
        raise Refused(S.ESME_RINVOPTPARSTREAM, "short_message and message_payload both set")
    body = pdu.short_message or payload or b""
    if len(body) > MAX_BODY_OCTETS:
        raise Refused(S.ESME_RINVMSGLEN, f"body longer than {MAX_BODY_OCTETS} octets")
    if message.udhi:  # a customer-made part stays one, header first
        try:
            parse_udh(body)
        except TextError:
            raise Refused(S.ESME_RINVESMCLASS, "the message has a UDH; the new body has none"
                          ) from None
        return body, 1
    try:
        counted = prepare_encoded(body, message.data_coding, smsc_default=limits.smsc_default,
                                  policy=limits.intake)
    except IntakeError as exc:
        refused = Refused.of(exc)
        if refused.status == S.ESME_RSUBMITFAIL:  # a submit's catch-all, not a replace's
            raise Refused(S.ESME_RREPLACEFAIL, refused.reason) from None
        raise refused from None
    return body, counted.segments


def _new_times(pdu: ReplaceSm, message: Message, now: float,
               limits: FrontLimits) -> tuple[float | None, float | None]:
    """``(send_at, expires_at)`` to set (None: keep), under a submit's bounds."""
    policy = limits.intake
    try:
        send_at = parse_smpp_time(pdu.schedule_delivery_time, now)
    except SmppTimeError as exc:
        raise Refused(S.ESME_RINVSCHED, str(exc)) from None
    try:
        expires_at = parse_smpp_time(pdu.validity_period, now)
    except SmppTimeError as exc:
        raise Refused(S.ESME_RINVEXPIRY, str(exc)) from None
    if send_at is not None and send_at > now + policy.max_schedule_ahead:
        raise Refused(S.ESME_RINVSCHED, f"more than {policy.max_schedule_ahead / 86400:g} "
                                        "days ahead")
    if send_at is not None and send_at < now:
        send_at = now  # "as soon as possible", as for a submit
    start = max(now, send_at if send_at is not None else (message.send_at or now))
    if expires_at is not None:
        expires_at = min(expires_at, start + policy.max_validity)
        if expires_at < start + policy.min_validity:
            raise Refused(S.ESME_RINVEXPIRY, f"validity shorter than {policy.min_validity:g} s")
    elif message.expires_at <= start:
        raise Refused(S.ESME_RINVSCHED, "the schedule is after the message's validity ends")
    return send_at, expires_at


async def replace_sm(store: Store, account_id: int, pdu: ReplaceSm, now: float,
                     limits: FrontLimits) -> CommandStatus:
    """The status to answer ``pdu`` with, after replacing what it names.
    Raises ``Refused`` (and the store's errors)."""
    message = await _own(store, account_id, pdu.message_id)
    if not _same_sender(message, pdu.source_addr, pdu.source_addr_ton, limits):
        raise Refused(S.ESME_RINVSRCADR, "source_addr is not the message's sender")
    if message.source is not Source.SMPP:
        raise Refused(S.ESME_RREPLACEFAIL, "only messages submitted by SMPP can be replaced")
    body, segments = _new_body(pdu, message, limits)
    send_at, expires_at = _new_times(pdu, message, now, limits)
    change = Replacement(body=body, segments=segments, send_at=send_at, expires_at=expires_at,
                         registered_delivery=pdu.registered_delivery)
    try:
        result = await store.replace(message.id, change, now, account_id=account_id)
    except InvalidRecord as exc:  # the validity would end before the schedule
        raise Refused(S.ESME_RINVEXPIRY, str(exc)) from None
    if result.outcome is not ChangeOutcome.APPLIED:
        raise Refused(S.ESME_RREPLACEFAIL, _why(result.outcome, result.message))
    return S.ESME_ROK
