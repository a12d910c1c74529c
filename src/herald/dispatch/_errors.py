"""What an upstream's answer means for a message, and herald's own error codes (pure).

Every submit_sm_resp status falls in one of three classes (reference/smpp.md,
SMPP 3.4 §5.1.3), and dispatch acts on the class, never on the number:

- :attr:`Outcome.THROTTLED` — ESME_RTHROTTLED, ESME_RMSGQFUL: the upstream is
  busy. The connector pauses briefly (exponential, capped) and the part is
  sent again; nothing counts against the message.
- :attr:`Outcome.PERMANENT` — the upstream will refuse this message whatever
  we do (a bad address, a field it rejects): the next connector of the route
  gets it, and after the last one the message ends ``rejected`` with the code.
- :attr:`Outcome.TRANSIENT` — everything else, including statuses this table
  does not know (vendor codes 0x400..0x4FF among them), timeouts and a
  connection lost mid-flight: retried on the same connector with backoff, then
  the next connector. An unknown code is treated as transient because a
  wrongly retried message costs a few submits, while a wrongly failed one is
  lost to the customer.

A message that ends ``failed``/``rejected`` keeps an ``error_code`` (as does one
that ends ``expired`` because its receipt never came): the SMPP
command_status the upstream gave (0x00000001..0x000004FF), or one of herald's
:class:`ErrorCode` values, which live above the SMPP range so the two never mix.
"""

from __future__ import annotations

import enum
from typing import Final

from herald.smpp.constants import CommandStatus

__all__ = [
    "PERMANENT_STATUSES", "THROTTLE_STATUSES", "ErrorCode", "Outcome", "classify", "status_name",
]

S = CommandStatus


class ErrorCode(enum.IntEnum):
    """herald's own error codes of messages that end ``failed`` (and ``expired``, for
    NO_RECEIPT); see docs/dispatch.md."""

    NO_ROUTE = 0x10001  # no route matches the destination (permanent)
    INVALID_DESTINATION = 0x10002  # the stored destination is not E.164 digits (permanent)
    UNSENDABLE = 0x10003  # no connector of the route can carry the body (permanent)
    NO_RESPONSE = 0x10004  # the upstreams never answered (timeouts, lost connections)
    NO_RECEIPT = 0x10005  # accepted upstream, no final receipt within receipt_timeout (expired)


class Outcome(enum.Enum):
    """What dispatch does with a part after its submit_sm got an answer (or none)."""

    OK = "ok"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


THROTTLE_STATUSES: Final = frozenset({S.ESME_RTHROTTLED, S.ESME_RMSGQFUL})

#: Statuses that mean "this message, as built, will never be accepted here".
PERMANENT_STATUSES: Final = frozenset({
    S.ESME_RINVMSGLEN,  # §5.1.3 message length is invalid
    S.ESME_RINVCMDLEN,  # our PDU is malformed for this peer
    S.ESME_RINVCMDID,  # the peer does not take submit_sm at all
    S.ESME_RINVPRTFLG,
    S.ESME_RINVREGDLVFLG,
    S.ESME_RINVSRCADR,  # the sender is not allowed / not valid upstream
    S.ESME_RINVDSTADR,  # the destination is not valid upstream
    S.ESME_RINVSERTYP,
    S.ESME_RINVESMCLASS,
    S.ESME_RINVSRCTON,
    S.ESME_RINVSRCNPI,
    S.ESME_RINVDSTTON,
    S.ESME_RINVDSTNPI,
    S.ESME_RINVSYSTYP,
    S.ESME_RINVREPFLAG,
    S.ESME_RINVSCHED,
    S.ESME_RINVEXPIRY,
    S.ESME_RINVDFTMSGID,
    S.ESME_RX_P_APPN,  # receiver permanent application error
    S.ESME_RX_R_APPN,  # receiver rejects the message
    S.ESME_RINVOPTPARSTREAM,
    S.ESME_ROPTPARNOTALLWD,
    S.ESME_RINVPARLEN,
    S.ESME_RMISSINGOPTPARAM,
    S.ESME_RINVOPTPARAMVAL,
})

_CLASS: Final[dict[int, Outcome]] = {
    S.ESME_ROK: Outcome.OK,
    **{int(s): Outcome.THROTTLED for s in THROTTLE_STATUSES},
    **{int(s): Outcome.PERMANENT for s in PERMANENT_STATUSES},
}


def classify(command_status: int) -> Outcome:
    """The class of a submit_sm_resp status (unknown statuses are transient)."""
    return _CLASS.get(command_status, Outcome.TRANSIENT)


def status_name(command_status: int) -> str:
    """A submit_sm_resp status as a message's timeline shows it: its SMPP 3.4
    name (``ESME_RSYSERR``), or its number for a code the spec does not name
    (vendor codes 0x400..0x4FF)."""
    try:
        return CommandStatus(command_status).name
    except ValueError:
        return f"0x{command_status:08X}"
