"""Senders: an alphanumeric name, a short code or an E.164 number.

A sender is stored as the customer will see it, and its kind is recoverable
from that form alone (:func:`sender_kind`): ``+`` and digits for an
international number, digits for a short code, anything else is alphanumeric.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from herald.intake._errors import InvalidSource
from herald.intake._numbers import e164, strip_formatting
from herald.intake._policy import DEFAULT_POLICY, IntakePolicy
from herald.text import gsm_encode, is_gsm

__all__ = [
    "MAX_ALPHANUMERIC_SEPTETS",
    "MAX_SHORT_CODE_DIGITS",
    "MIN_SHORT_CODE_DIGITS",
    "Sender",
    "SenderKind",
    "sender_kind",
    "validate_sender",
]

#: TS 23.040 §9.1.2.5: an alphanumeric originating address is at most 10
#: octets of packed GSM 7-bit, i.e. 11 septets (an extension character is two).
MAX_ALPHANUMERIC_SEPTETS: Final = 11
#: Short codes are national and 3 to 8 digits long wherever they exist;
#: longer digit strings are read as E.164 numbers.
MIN_SHORT_CODE_DIGITS: Final = 3
MAX_SHORT_CODE_DIGITS: Final = 8

_SENDER_FORBIDDEN = frozenset("\n\r\x0c\x1b")  # GSM characters that are not printable


class SenderKind(enum.Enum):
    """What a sender is; SMPP 3.4 §5.2.5-6 gives each its TON/NPI."""

    ALPHANUMERIC = "alphanumeric"  # TON 5 (alphanumeric), NPI 0
    SHORT_CODE = "short_code"  # TON 3 (network specific), NPI 0
    INTERNATIONAL = "international"  # TON 1 (international), NPI 1 (E.164)

    @property
    def ton(self) -> int:
        return _TON_NPI[self][0]

    @property
    def npi(self) -> int:
        return _TON_NPI[self][1]


_TON_NPI: Final = {
    SenderKind.ALPHANUMERIC: (5, 0),
    SenderKind.SHORT_CODE: (3, 0),
    SenderKind.INTERNATIONAL: (1, 1),
}


@dataclass(frozen=True, slots=True)
class Sender:
    """A validated sender: ``value`` is the stored form (see the module docstring)."""

    value: str
    kind: SenderKind


def sender_kind(stored: str) -> SenderKind:
    """The kind of a sender in its stored form (``+`` digits, digits, or a name)."""
    if stored.startswith("+") and stored[1:].isdigit():
        return SenderKind.INTERNATIONAL
    if stored.isdigit() and stored.isascii():
        return SenderKind.SHORT_CODE
    return SenderKind.ALPHANUMERIC


def validate_sender(
    value: str,
    *,
    kind: SenderKind | None = None,
    field: str = "from",
    policy: IntakePolicy = DEFAULT_POLICY,
) -> Sender:
    """Validate a sender; ``kind=None`` infers it from the form.

    Inferred: ``+`` or more than :data:`MAX_SHORT_CODE_DIGITS` digits is an E.164
    number; 3..8 digits a short code; anything with a non-digit an
    alphanumeric name (at most 11 GSM 7-bit septets, printable, no leading or
    trailing space). The SMPP intake passes ``kind`` from the source TON.
    Raises :class:`InvalidSource` (codes ``required``, ``too_long``,
    ``too_short``, ``invalid_characters`` and the number codes of
    :func:`normalize_destination`).
    """
    if not isinstance(value, str) or not value:
        raise InvalidSource(field, "is required", "required")
    if kind is None:
        digits = strip_formatting(value)
        if digits.startswith("+") or (
            digits.isdigit() and digits.isascii() and len(digits) > MAX_SHORT_CODE_DIGITS
        ):
            kind = SenderKind.INTERNATIONAL
        elif digits.isdigit() and digits.isascii():
            kind = SenderKind.SHORT_CODE
        else:
            kind = SenderKind.ALPHANUMERIC
    if kind is SenderKind.INTERNATIONAL:
        return Sender("+" + e164(value, field, InvalidSource, policy.require_valid_number), kind)
    if kind is SenderKind.SHORT_CODE:
        value = strip_formatting(value)
        if not (value.isdigit() and value.isascii()):
            raise InvalidSource(field, "a short code is digits only", "invalid_characters")
        if not MIN_SHORT_CODE_DIGITS <= len(value) <= MAX_SHORT_CODE_DIGITS:
            code = "too_short" if len(value) < MIN_SHORT_CODE_DIGITS else "too_long"
            raise InvalidSource(
                field,
                f"a short code has {MIN_SHORT_CODE_DIGITS}..{MAX_SHORT_CODE_DIGITS} digits",
                code,
            )
        return Sender(value, kind)
    return Sender(_alphanumeric(value, field), kind)


def _alphanumeric(value: str, field: str) -> str:
    if len(value) > MAX_ALPHANUMERIC_SEPTETS:
        raise InvalidSource(
            field, f"an alphanumeric sender has at most {MAX_ALPHANUMERIC_SEPTETS} characters",
            "too_long",
        )
    if not is_gsm(value) or any(c in _SENDER_FORBIDDEN for c in value):
        raise InvalidSource(
            field, "an alphanumeric sender uses printable GSM 7-bit characters only",
            "invalid_characters",
        )
    if len(gsm_encode(value)) > MAX_ALPHANUMERIC_SEPTETS:
        raise InvalidSource(
            field,
            f"an alphanumeric sender has at most {MAX_ALPHANUMERIC_SEPTETS} GSM septets"
            " (^ { } [ ] ~ \\ | and the euro sign count two)",
            "too_long",
        )
    if value != value.strip(" "):
        raise InvalidSource(field, "must not begin or end with a space", "invalid_characters")
    return value
