"""The pumping defence for SMPP submits (docs/fraud.md, "Live"; docs/smpp.md).

An OTP message (``service_type`` ``otp``, ``priority_flag`` 3, or the class a
``[[classes]]`` entry or the account gives it: ``messages_from``) of an account
that enables ``otp_messages`` is screened like one of ``POST /v1/messages``:
the same :class:`herald.defence.LiveDefence`, its decision recorded with its
reasons before the answer. A submit the defence refuses is answered
:data:`ESME_RFRAUDBLOCKED` and nothing of it is stored or charged.

Plain submits do not wait for this: :func:`screened` decides from memory (the
message's class, the account's settings as last read), and only a submit it
names goes through the coroutine :func:`first_block`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from herald.defence import LiveDefence
from herald.rating import Rating
from herald.store import FraudDecision, NewMessage, Priority

__all__ = ["ESME_RFRAUDBLOCKED", "first_block", "screened"]

#: The command_status of a submit the pumping defence (or the account's own
#: deny list or country ceiling) refused. SMPP 3.4 §5.1.3 reserves
#: 0x400-0x4FF for SMSC vendor-specific errors; none of the standard codes
#: says this without saying something false: ESME_RTHROTTLED makes clients
#: retry within seconds (each retry a new request to a blocked range),
#: ESME_RINVDSTADR makes some clients drop the number for good (a block
#: expires), ESME_RSUBMITFAIL already means a bad body, the daily quota or the
#: balance. Not to be retried before the block expires; the decision is
#: readable at ``GET /v1/fraud/decisions``.
ESME_RFRAUDBLOCKED: Final = 0x00000400


def screened(defence: LiveDefence | None, account_id: int, messages: Sequence[NewMessage],
             now: float) -> bool:
    """Whether a submit waits for the defence: it holds an OTP message and its
    account screens them, or its settings are not in memory yet."""
    if defence is not None:
        for message in messages:  # a loop, not any(): this runs for every submit
            if message.priority is Priority.OTP:
                return defence.watches_messages(account_id, now) is not False
    return False


async def first_block(defence: LiveDefence, account_id: int, messages: Sequence[NewMessage],
                      ratings: Sequence[Rating] | None, now: float) -> FraudDecision | None:
    """Ask the defence about each OTP message of a submit (a submit_multi's, in
    order, up to the first refused); the decision that refused one, or ``None``:
    send them all. Raises the store's errors (nothing was stored)."""
    for n, message in enumerate(messages):
        if message.priority is not Priority.OTP:
            continue
        decision = await defence.refusal(account_id, message,
                                         None if ratings is None else ratings[n], now)
        if decision is not None:
            return decision
    return None
