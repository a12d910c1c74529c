"""What a chat provider's statuses and error codes mean in herald's words (pure tables).

Every provider answer falls in one class, and callers act on the class, never
on the number (as dispatch does for SMPP, ``herald.dispatch._errors``):

- ``THROTTLED``: the provider's rate limit (WhatsApp 130429). Sent again on
  the same channel after a back-off; never counts against the message.
- ``TRANSIENT``: the provider is down or answered oddly; retried, and
  after the retries the leg fails over. Unknown codes land here: a wrongly
  retried send costs a request, a wrongly failed one is lost to the customer.
- ``PERMANENT``: this message will never be taken on this channel (no window,
  no such template, the recipient is not on the app): the leg ends
  ``rejected`` and a chain goes to its next leg at once.

A leg that ends keeps a herald :class:`ChannelErrorCode`; the provider's own
number is kept beside it (``provider_code``) for support. The codes live in
0x20001.., above SMPP's command_status range (..0x4FF) and dispatch's
``ErrorCode`` (0x10001..), so the three never mix in ``messages.error_code``.

WhatsApp codes are the Cloud API's published error codes (Graph API error
``code``; the same numbers come in ``statuses[].errors[].code`` of a ``failed``
status webhook).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from herald.channels._legs import LegEvent

__all__ = [
    "VIBER_DEFAULT_ERRORS",
    "VIBER_DEFAULT_STATUSES",
    "WHATSAPP_ERRORS",
    "WHATSAPP_STATUSES",
    "WHATSAPP_THROTTLED",
    "WHATSAPP_WINDOW_CLOSED",
    "ChannelErrorCode",
    "ErrorClass",
    "ErrorMeaning",
    "whatsapp_error",
]


class ChannelErrorCode(enum.IntEnum):
    """herald's error codes of chat-channel legs (docs/channels.md)."""

    WINDOW_CLOSED = 0x20001  # free-form text outside the 24-hour customer-service window
    NOT_ON_CHANNEL = 0x20002  # the recipient has no account on the app, or cannot get it
    TEMPLATE_REJECTED = 0x20003  # no such template, paused, disabled, parameters do not fit
    THROTTLED = 0x20004  # the provider's rate limit, after herald's back-off gave up
    PROVIDER_REFUSED = 0x20005  # herald's credentials or the business account are refused
    PROVIDER_UNAVAILABLE = 0x20006  # the provider is down or did not answer
    INVALID_REQUEST = 0x20007  # the provider refused the request's form
    POLICY_BLOCKED = 0x20008  # the provider chose not to deliver (spam, marketing limits)
    TTL_EXPIRED = 0x20009  # the provider's time to live ran out before delivery
    PROVIDER_ERROR = 0x2000A  # a provider code herald does not know
    INSUFFICIENT_FUNDS = 0x2000B  # an SMS leg could not be charged when it was to start
    CANCELLED = 0x2000C  # the customer cancelled the chain before the leg went out
    FRAUD_BLOCKED = 0x2000D  # the pumping defence blocked a fallback OTP SMS leg


class ErrorClass(enum.Enum):
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class ErrorMeaning:
    """What one provider error code means: herald's code and the class to act on."""

    code: ChannelErrorCode
    klass: ErrorClass

    @property
    def permanent(self) -> bool:
        return self.klass is ErrorClass.PERMANENT


E, K = ChannelErrorCode, ErrorClass

#: Cloud API: "Re-engagement message": more than 24 hours since the user last wrote.
WHATSAPP_WINDOW_CLOSED: Final = 131047
#: Cloud API: "Rate limit hit": the number's throughput (80 msg/s to start) is exceeded.
WHATSAPP_THROTTLED: Final = 130429


def _rows(meaning: ErrorMeaning, *codes: int) -> dict[int, ErrorMeaning]:
    return dict.fromkeys(codes, meaning)


#: Cloud API error code -> meaning. Codes not here: ``PROVIDER_ERROR``, transient.
WHATSAPP_ERRORS: Final[Mapping[int, ErrorMeaning]] = {
    **_rows(ErrorMeaning(E.WINDOW_CLOSED, K.PERMANENT), WHATSAPP_WINDOW_CLOSED),
    # 130429 throughput; 80007 and 4: the business account's / app's call rate.
    # 131056: too many to one recipient in a short time: waiting is the remedy.
    **_rows(ErrorMeaning(E.THROTTLED, K.THROTTLED), WHATSAPP_THROTTLED, 80007, 4, 131056),
    # 131026 undeliverable (not on WhatsApp, old app, terms not accepted);
    # 131021 recipient is the sender.
    **_rows(ErrorMeaning(E.NOT_ON_CHANNEL, K.PERMANENT), 131026, 131021),
    # 132000 parameter count, 132001 no such template/language, 132005 text too
    # long, 132007 format policy, 132012 parameter format, 132015 paused,
    # 132016 disabled.
    **_rows(ErrorMeaning(E.TEMPLATE_REJECTED, K.PERMANENT),
            132000, 132001, 132005, 132007, 132012, 132015, 132016),
    # 0/190 token, 10/200 permission, 3 capability, 131031 account locked,
    # 131042 payment, 133010 number not registered, 368 policy block.
    **_rows(ErrorMeaning(E.PROVIDER_REFUSED, K.PERMANENT),
            0, 190, 10, 200, 3, 131031, 131042, 133010, 368),
    # 1 unknown, 2 service, 131000 something went wrong, 131016 service
    # unavailable, 131057 maintenance mode.
    **_rows(ErrorMeaning(E.PROVIDER_UNAVAILABLE, K.TRANSIENT), 1, 2, 131000, 131016, 131057),
    # 100 invalid parameter, 131008 missing parameter, 131009 bad value,
    # 131051 unsupported type, 131052/131053 media.
    **_rows(ErrorMeaning(E.INVALID_REQUEST, K.PERMANENT),
            100, 131008, 131009, 131051, 131052, 131053),
    # 131048 spam rate limit, 131049 Meta chose not to deliver (marketing
    # limits), 131050 the user stopped marketing messages, 130472 experiment.
    **_rows(ErrorMeaning(E.POLICY_BLOCKED, K.PERMANENT), 131048, 131049, 131050, 130472),
}

_UNKNOWN: Final = ErrorMeaning(E.PROVIDER_ERROR, K.TRANSIENT)


def whatsapp_error(code: int) -> ErrorMeaning:
    """The meaning of a Cloud API error code (unknown codes: transient ``PROVIDER_ERROR``)."""
    return WHATSAPP_ERRORS.get(code, _UNKNOWN)


#: ``statuses[].status`` of a Cloud API status webhook -> leg event. ``played``
#: (a voice message was played) says at least ``read``; ``deleted`` and
#: ``warning`` say nothing about delivery and are not here (ignored).
WHATSAPP_STATUSES: Final[Mapping[str, LegEvent]] = {
    "sent": LegEvent.SENT,
    "delivered": LegEvent.DELIVERED,
    "read": LegEvent.READ,
    "played": LegEvent.READ,
    "failed": LegEvent.FAILED,
}

#: A Viber business-messaging provider's callback status words -> leg event:
#: the words the providers commonly use; a provider's own are configured over
#: these (``ViberSettings.statuses``).
VIBER_DEFAULT_STATUSES: Final[Mapping[str, LegEvent]] = {
    "sent": LegEvent.SENT,
    "delivered": LegEvent.DELIVERED,
    "seen": LegEvent.READ,
    "read": LegEvent.READ,
    "expired": LegEvent.EXPIRED,
    "undelivered": LegEvent.FAILED,
    "failed": LegEvent.FAILED,
    "rejected": LegEvent.FAILED,
}

#: A Viber provider's error words -> meaning; configured over per provider.
VIBER_DEFAULT_ERRORS: Final[Mapping[str, ErrorMeaning]] = {
    "not_viber_user": ErrorMeaning(E.NOT_ON_CHANNEL, K.PERMANENT),
    "blocked": ErrorMeaning(E.POLICY_BLOCKED, K.PERMANENT),
    "invalid_request": ErrorMeaning(E.INVALID_REQUEST, K.PERMANENT),
    "unauthorized": ErrorMeaning(E.PROVIDER_REFUSED, K.PERMANENT),
    "throttled": ErrorMeaning(E.THROTTLED, K.THROTTLED),
    "ttl_expired": ErrorMeaning(E.TTL_EXPIRED, K.PERMANENT),
    "unavailable": ErrorMeaning(E.PROVIDER_UNAVAILABLE, K.TRANSIENT),
}
