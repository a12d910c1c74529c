"""The operator's intake settings (``[intake]`` in ``herald.toml``) and their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from herald.store import MAX_SEGMENTS

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_VALIDITY_PERIOD",
    "MAX_SCHEDULE_AHEAD",
    "MAX_VALIDITY_PERIOD",
    "MIN_VALIDITY_PERIOD",
    "SEND_AT_SKEW",
    "IntakePolicy",
]

#: Validity when the customer gives none: two days, the common SMSC default.
DEFAULT_VALIDITY_PERIOD: Final = 48 * 3600.0
#: Shorter validities expire before dispatch can reasonably try once.
MIN_VALIDITY_PERIOD: Final = 30.0
#: Upstream SMSCs cap validity at a week or less; holding a message longer
#: only fills the queue with messages nobody will read.
MAX_VALIDITY_PERIOD: Final = 7 * 24 * 3600.0
#: A send_at this far in the past is still "now": the customer's clock may lag.
SEND_AT_SKEW: Final = 60.0
#: Scheduling further ahead is refused: the queue is not a calendar.
MAX_SCHEDULE_AHEAD: Final = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class IntakePolicy:
    """The operator's intake settings; every field has a working default.

    - ``require_valid_number``: refuse destinations ``phonenumbers`` knows are
      not assigned (True), or accept every *possible* number (False: test
      ranges such as +44 7700 900xxx, new ranges the metadata lacks).
    - ``default_validity`` / ``min_validity`` / ``max_validity``: seconds.
    - ``send_at_skew``: seconds a send_at may lie in the past.
    - ``max_schedule_ahead``: seconds a send_at may lie in the future.
    - ``max_parts``: parts a message may need (at most 255, TS 23.040
      §9.2.3.24.1).
    - ``test_prefixes``: E.164-digit prefixes of an operator's test range
      (e.g. ``"999"``, the unassigned country code ``herald sim`` uses for its
      scripted behaviours): such destinations skip the numbering-plan checks
      and need only be 1..15 digits. Empty by default; ``--demo`` sets it.
    """

    require_valid_number: bool = True
    test_prefixes: tuple[str, ...] = ()
    default_validity: float = DEFAULT_VALIDITY_PERIOD
    min_validity: float = MIN_VALIDITY_PERIOD
    max_validity: float = MAX_VALIDITY_PERIOD
    send_at_skew: float = SEND_AT_SKEW
    max_schedule_ahead: float = MAX_SCHEDULE_AHEAD
    max_parts: int = MAX_SEGMENTS

    def __post_init__(self) -> None:
        if not 0 < self.min_validity <= self.default_validity <= self.max_validity:
            raise ValueError("need 0 < min_validity <= default_validity <= max_validity")
        if self.send_at_skew < 0 or self.max_schedule_ahead < 0:
            raise ValueError("send_at_skew and max_schedule_ahead must not be negative")
        if not 1 <= self.max_parts <= MAX_SEGMENTS:
            raise ValueError(f"max_parts must be 1..{MAX_SEGMENTS}")
        if not all(p.isdigit() and p.isascii() for p in self.test_prefixes):
            raise ValueError("test_prefixes must be E.164 digits")


DEFAULT_POLICY: Final = IntakePolicy()
