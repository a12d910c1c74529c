"""The simulator's deterministic behaviours, chosen by destination number.

A test (or a demo user) picks what the simulated SMSC does with a message by
the number it sends to. Numbers in country code 999 select a behaviour:

    999 CC [PARAMETER] [anything]

``CC`` is a two-digit behaviour code (``BEHAVIOURS`` lists them, and
``herald sim --help`` and docs/sim.md print the same table); digits after it
are free, so a test can use many distinct numbers per behaviour
(``99907000001``, ``99907000002``, ...). A leading ``+`` is ignored. Every other
destination, including ``999`` with a code not listed here, gets the normal
treatment: accepted, then a receipt after the configured delay with an outcome
drawn from the configured mix.

Why 999: ITU-T E.164 leaves country code 999 unassigned (reserved), so no real
subscriber number, and none that herald's own tests or benchmarks generate
for load, falls into the scheme by accident.

Pure code: no I/O, no clock.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from enum import Enum
from typing import Final

__all__ = [
    "BEHAVIOURS",
    "NORMAL",
    "SCHEME_PREFIX",
    "Behaviour",
    "Plan",
    "describe_scheme",
    "plan_for",
]

#: E.164 country code 999 is reserved (unassigned): see the module docstring.
SCHEME_PREFIX: Final = "999"
_CODE_AT: Final = len(SCHEME_PREFIX)
_PARAM_AT: Final = _CODE_AT + 2
#: the delay behaviour reads two digits of seconds after its code
_DELAY_DIGITS: Final = 2


class Behaviour(Enum):
    """What the simulator does with one submitted message. The value is the
    two-digit code that selects it after the 999 prefix (NORMAL has none)."""

    NORMAL = ""
    DELAY = "01"
    NO_RESPONSE = "02"
    SUBMIT_FAIL = "03"
    THROTTLED = "04"
    QUEUE_FULL = "05"
    INVALID_DESTINATION = "06"
    UNDELIVERED = "07"
    EXPIRED = "08"
    MO_ECHO = "09"
    RECEIPT_FIRST = "10"
    OUT_OF_ORDER = "11"
    ACCEPT_ONCE = "12"
    NO_RECEIPT = "13"


@dataclass(frozen=True, slots=True)
class Plan:
    """The behaviour for one destination; ``delay`` (seconds) overrides the
    configured receipt delay when set (the DELAY behaviour)."""

    behaviour: Behaviour
    delay: float | None = None


NORMAL: Final = Plan(Behaviour.NORMAL)

_BY_CODE: Final = {b.value: Plan(b) for b in Behaviour if b.value}

#: (example destination, what happens): the table --help and docs/sim.md show.
BEHAVIOURS: Final[tuple[tuple[Behaviour, str, str], ...]] = (
    (Behaviour.DELAY, "99901DD...",
     "accepted; DELIVRD receipt after DD seconds (00-99), whatever --receipt-delay says"),
    (Behaviour.NO_RESPONSE, "99902...",
     "no submit_sm_resp at all: the submit is swallowed (no receipt either)"),
    (Behaviour.SUBMIT_FAIL, "99903...", "answered ESME_RSUBMITFAIL (0x45)"),
    (Behaviour.THROTTLED, "99904...", "answered ESME_RTHROTTLED (0x58)"),
    (Behaviour.QUEUE_FULL, "99905...", "answered ESME_RMSGQFUL (0x14)"),
    (Behaviour.INVALID_DESTINATION, "99906...",
     "answered ESME_RINVDSTADR (0x0B), a permanent error"),
    (Behaviour.UNDELIVERED, "99907...", "accepted; UNDELIV receipt (message_state 5)"),
    (Behaviour.EXPIRED, "99908...", "accepted; EXPIRED receipt (message_state 3)"),
    (Behaviour.MO_ECHO, "99909...",
     "accepted; DELIVRD receipt, then an MO deliver_sm with the same text "
     "from the destination back to the source"),
    (Behaviour.RECEIPT_FIRST, "99910...",
     "accepted; the DELIVRD receipt is written before the submit_sm_resp "
     "(when a receiver bind has window room)"),
    (Behaviour.OUT_OF_ORDER, "99911...",
     "accepted; DELIVRD receipt, then an ENROUTE receipt for the same message"),
    (Behaviour.ACCEPT_ONCE, "99912...",
     "the first submit to this exact number is accepted (DELIVRD receipt); "
     "every later one is answered ESME_RSUBMITFAIL (for failover tests)"),
    (Behaviour.NO_RECEIPT, "99913...", "accepted; no receipt is ever sent"),
)


def plan_for(destination: str) -> Plan:
    """The plan for a destination_addr (see the module docstring). Never raises:
    anything outside the scheme is NORMAL."""
    if not destination.startswith(SCHEME_PREFIX):
        if not destination.startswith("+" + SCHEME_PREFIX):
            return NORMAL  # the hot path: one startswith for ordinary numbers
        destination = destination[1:]
    plan = _BY_CODE.get(destination[_CODE_AT:_PARAM_AT])
    if plan is None:
        return NORMAL
    if plan.behaviour is Behaviour.DELAY:
        digits = destination[_PARAM_AT:_PARAM_AT + _DELAY_DIGITS]
        valid = len(digits) == _DELAY_DIGITS and digits.isascii() and digits.isdigit()
        seconds = int(digits) if valid else 0
        return Plan(Behaviour.DELAY, float(seconds))
    return plan


def describe_scheme(columns: int = 79) -> str:
    """The behaviour table as plain text (for ``--help``), wrapped to ``columns``."""
    width = max(len(example) for _, example, _ in BEHAVIOURS)
    indent = " " * (width + 4)
    lines: list[str] = []
    for _, example, text in BEHAVIOURS:
        lines.extend(textwrap.wrap(text, columns, initial_indent=f"  {example:<{width}}  ",
                                   subsequent_indent=indent))
    return "\n".join(lines)
