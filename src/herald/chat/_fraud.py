"""The pumping defence for a chain's fallback SMS legs (docs/channels.md, "The
pumping defence").

An OTP SMS that is a chain's *first* leg is screened at intake, like a plain
OTP send. One that a chain falls back to starts later, in the chat service,
when WhatsApp or Viber did not deliver: :func:`fraud_screen` asks the same
defence then, with what intake would ask it (the account's ``otp_messages``
switch, the SMS's destination and price), before the leg's message is
stored or charged. A Verify chain's SMS (tag ``verify``) was screened when
the verification was made, and is not asked twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from herald.billing import Unpriced, rate
from herald.defence import LiveDefence
from herald.intake import DestinationRules
from herald.rating import PriceList
from herald.store import VERIFY_TAG, FraudDecision, NewMessage, Priority

__all__ = ["SmsScreen", "fraud_screen"]


#: (account id, the SMS a leg is about to send, now) -> the defence's decision
#: refusing it, or None: send it. Raises the store's errors.
SmsScreen = Callable[[int, NewMessage, float], Awaitable[FraudDecision | None]]


def fraud_screen(defence: LiveDefence, prices: Callable[[int], PriceList | None],
                 destinations: Callable[[], DestinationRules]) -> SmsScreen:
    """The screen of fallback SMS legs with ``defence``, pricing each as intake
    does (``prices``: the accounts' sell lists; ``destinations``: the numbering
    rules in force)."""

    async def screen(account_id: int, message: NewMessage, now: float) -> FraudDecision | None:
        if message.priority is not Priority.OTP or message.tag == VERIFY_TAG:
            return None
        if defence.watches_messages(account_id, now) is False:  # known: not screened
            return None
        rating = None
        price_list = prices(account_id)
        if price_list is not None:
            with contextlib.suppress(Unpriced):  # priced when the chain was accepted
                rating = rate(price_list, message.to, message.segments, destinations())
        return await defence.refusal(account_id, message, rating, now)

    return screen
