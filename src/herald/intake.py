"""Intake validation shared by the HTTP API and the SMPP intake.

Theory of operation
-------------------
A customer's submission becomes a :class:`~herald.store.NewMessage` in four
independent checks, each a function of its input (and of ``now`` where time
matters; this module reads no clock and does no I/O):

- the destination, normalised to E.164 digits without ``+``
  (:func:`normalize_destination`, with ``phonenumbers``);
- the sender: an alphanumeric name, a short code or an E.164 number
  (:func:`validate_sender`);
- the body: text in the cheapest (or the requested) encoding, or opaque octets,
  cut into at most 255 parts by :mod:`herald.text` (:func:`prepare_text`,
  :func:`prepare_binary`, :func:`prepare_encoded` for SMPP's already-coded
  ``short_message``);
- the schedule: ``send_at`` and the expiry that follows from the validity
  period (:func:`schedule`).

Every refusal is an :class:`IntakeError` naming the field it is about (in the
caller's vocabulary: ``field=`` is ``"to"`` for HTTP and may be
``"destination_addr"`` for SMPP), a stable machine-readable ``code`` and a
sentence for a human. Each subclass knows how to answer: ``http_status`` and
the SMPP 3.4 ``smpp_status`` (§5.1.3) for a submit_sm_resp.
A caller that checks several fields reports every refusal at once with
:class:`InvalidSubmission`; :func:`build_message` makes the record.

Stored forms: ``to`` is E.164 digits (``"14155552671"``), the form route
prefixes are written in. A sender is stored as the customer will see it and
its kind is recoverable from that form alone (:func:`sender_kind`): ``+``
and digits for an international number, digits for a short code, anything
else is alphanumeric.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Final
from urllib.parse import urlsplit

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberType,
    ValidationResult,
    phonenumberutil,
)

from herald.smpp.constants import CommandStatus
from herald.store import (
    MAX_BODY_OCTETS,
    MAX_CALLBACK_URL_LENGTH,
    MAX_METADATA_LENGTH,
    MAX_REFERENCE_LENGTH,
    MAX_SEGMENTS,
    NewMessage,
    Source,
    StatusEvents,
)
from herald.text import (
    DataCodingError,
    DecodeError,
    EncodeError,
    Encoding,
    MessageTooLong,
    SmscDefault,
    TextError,
    TooManyParts,
    decode,
    gsm_encode,
    is_gsm,
    parse_data_coding,
    split_binary,
    split_text,
)

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_VALIDITY_PERIOD",
    "MAX_ALPHANUMERIC_SEPTETS",
    "MAX_E164_DIGITS",
    "MAX_NUMBER_INPUT_LENGTH",
    "MAX_SCHEDULE_AHEAD",
    "MAX_SHORT_CODE_DIGITS",
    "MAX_VALIDITY_PERIOD",
    "MIN_SHORT_CODE_DIGITS",
    "MIN_VALIDITY_PERIOD",
    "NUMBER_CACHE_SIZE",
    "SEND_AT_SKEW",
    "Body",
    "EncodingChoice",
    "IntakeError",
    "IntakePolicy",
    "InvalidBody",
    "InvalidDestination",
    "InvalidField",
    "InvalidSchedule",
    "InvalidSource",
    "InvalidSubmission",
    "InvalidValidity",
    "Schedule",
    "Sender",
    "SenderKind",
    "TooLong",
    "build_message",
    "check_callback_events",
    "check_callback_url",
    "check_reference",
    "decode_base64",
    "normalize_destination",
    "parse_time",
    "prepare_binary",
    "prepare_encoded",
    "prepare_text",
    "schedule",
    "sender_kind",
    "serialize_metadata",
    "validate_sender",
]

# -- limits ------------------------------------------------------------------------

#: Numbers whose verdict is remembered (about 200 octets each).
NUMBER_CACHE_SIZE: Final = 16_384
#: ITU-T E.164 §6.1: at most 15 digits including the country code.
MAX_E164_DIGITS: Final = 15
#: Raw number input looked at, formatting included (``"+1 (415) 555-2671"``);
#: anything longer is refused before ``phonenumbers`` parses it.
MAX_NUMBER_INPUT_LENGTH: Final = 32
#: TS 23.040 §9.1.2.5: an alphanumeric originating address is at most 10
#: octets of packed GSM 7-bit, i.e. 11 septets (an extension character is two).
MAX_ALPHANUMERIC_SEPTETS: Final = 11
#: Short codes are national and 3 to 8 digits long wherever they exist;
#: longer digit strings are read as E.164 numbers.
MIN_SHORT_CODE_DIGITS: Final = 3
MAX_SHORT_CODE_DIGITS: Final = 8
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
#: Epoch times beyond this (year 9999) are refused before any arithmetic.
_MAX_EPOCH: Final = 253402300799.0

_E164_DIGITS = re.compile(r"\+?[0-9]{1,15}")
_DIGITS = re.compile(r"\+?[0-9]+")
_NUMBER_FORMATTING = str.maketrans("", "", " -.()/")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SENDER_FORBIDDEN = frozenset("\n\r\x0c\x1b")  # GSM characters that are not printable


# -- errors ------------------------------------------------------------------------


class IntakeError(ValueError):
    """A submission field is refused. Answer the client and keep serving.

    ``field`` names the field in the caller's vocabulary, ``code`` is a stable
    machine-readable reason (documented in ``docs/api.md``), ``message`` a
    sentence for a human. HTTP answers ``http_status`` (422) with a problem
    body naming the field; SMPP answers ``smpp_status`` in the submit_sm_resp.
    """

    http_status: ClassVar[int] = 422
    smpp_status: ClassVar[CommandStatus] = CommandStatus.ESME_RSUBMITFAIL

    def __init__(self, field: str, message: str, code: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


class InvalidDestination(IntakeError):
    """The destination is not a usable phone number (ESME_RINVDSTADR)."""

    smpp_status = CommandStatus.ESME_RINVDSTADR


class InvalidSource(IntakeError):
    """The sender is not an alphanumeric name, short code or number (ESME_RINVSRCADR)."""

    smpp_status = CommandStatus.ESME_RINVSRCADR


class TooLong(IntakeError):
    """The body needs more parts (or octets) than a message may have (ESME_RINVMSGLEN)."""

    smpp_status = CommandStatus.ESME_RINVMSGLEN


class InvalidBody(IntakeError):
    """The body is missing, empty, not encodable, or not valid base64 / data_coding."""


class InvalidSchedule(IntakeError):
    """send_at is unreadable, in the past, too far ahead or after expiry (ESME_RINVSCHED)."""

    smpp_status = CommandStatus.ESME_RINVSCHED


class InvalidValidity(IntakeError):
    """The validity period is out of bounds (ESME_RINVEXPIRY)."""

    smpp_status = CommandStatus.ESME_RINVEXPIRY


class InvalidField(IntakeError):
    """reference, metadata or callback_url breaks its format or size limit."""


class InvalidSubmission(IntakeError):
    """Several fields are refused at once; ``errors`` holds each, in field order.

    ``field``, ``code`` and ``smpp_status`` are those of the first error, so an
    SMPP caller can answer with it directly.
    """

    def __init__(self, errors: tuple[IntakeError, ...]) -> None:
        if not errors:
            raise ValueError("InvalidSubmission needs at least one error")
        first = errors[0]
        super().__init__(first.field, first.message, first.code)
        self.errors = errors
        self.smpp_status = first.smpp_status  # type: ignore[misc]  # per instance


# -- policy ------------------------------------------------------------------------


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


# -- destination -------------------------------------------------------------------

_PARSE_ERRORS: Final = {
    NumberParseException.INVALID_COUNTRY_CODE: (
        "invalid_country_code", "has no valid country code",
    ),
    NumberParseException.TOO_SHORT_AFTER_IDD: ("too_short", "is too short to be a number"),
    NumberParseException.TOO_SHORT_NSN: ("too_short", "is too short to be a number"),
    NumberParseException.TOO_LONG: ("too_long", f"is longer than {MAX_E164_DIGITS} digits"),
}
_POSSIBLE_ERRORS: Final = {
    ValidationResult.INVALID_COUNTRY_CODE: ("invalid_country_code", "has no valid country code"),
    ValidationResult.TOO_SHORT: ("too_short", "is too short for its country"),
    ValidationResult.TOO_LONG: ("too_long", "is too long for its country"),
    ValidationResult.INVALID_LENGTH: ("not_possible", "has a length its country never uses"),
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: (
        "not_possible", "is only dialable locally, not an international number",
    ),
}


def _e164(
    value: str, field: str, error: type[IntakeError], require_valid: bool
) -> str:
    """E.164 digits (no ``+``) of ``value``, or ``error`` naming why not."""
    if not isinstance(value, str) or not value:
        raise error(field, "is required", "required")
    if len(value) > MAX_NUMBER_INPUT_LENGTH:
        raise error(field, f"is longer than {MAX_NUMBER_INPUT_LENGTH} characters", "too_long")
    compact = value.translate(_NUMBER_FORMATTING)
    if not _E164_DIGITS.fullmatch(compact):
        if _DIGITS.fullmatch(compact):
            raise error(field, f"is longer than {MAX_E164_DIGITS} digits", "too_long")
        raise error(field, "is not a phone number (E.164: '+' and up to 15 digits)", "not_a_number")
    verdict = _judge_number(compact.lstrip("+"), require_valid)
    if isinstance(verdict, tuple):
        raise error(field, verdict[1], verdict[0])
    return verdict


@functools.lru_cache(maxsize=NUMBER_CACHE_SIZE)
def _judge_number(digits: str, require_valid: bool) -> str | tuple[str, str]:
    """The E.164 digits of an acceptable number, or (code, message) saying why not.

    Cached: ``phonenumbers`` takes tens of microseconds per number, and the
    same numbers come back (one-time codes, repeated campaigns). The result
    depends only on the arguments and the library's metadata.
    """
    number = _direct(digits)
    direct = number is not None
    if number is None:
        # A national (trunk) prefix may follow the country code, which the
        # parser strips ("+7 8 912..." is +7 912...): let it decide. Digits
        # without '+' are read as international too, as E.164 is the only form
        # herald accepts and SMPP carries TON=1 numbers without the '+'.
        try:
            number = phonenumbers.parse("+" + digits, None)
        except NumberParseException as exc:
            if exc.error_type == NumberParseException.NOT_A_NUMBER:
                # Only digits reach the parser: "not a number" means too few of them.
                return "too_short", "is too short to be a number"
            return _PARSE_ERRORS.get(exc.error_type, ("not_a_number", "is not a phone number"))
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        return _POSSIBLE_ERRORS.get(reason, ("not_possible", "is not a possible number"))
    if require_valid and not _is_valid(number):
        return "not_valid", "is not an assigned number in its country's numbering plan"
    if direct:  # built from these very digits: their E.164 form is themselves
        return digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


# phonenumbers' own per-region type check (private; absent in another version,
# the public is_valid_number is used instead).
_type_of = getattr(phonenumberutil, "_number_type_helper", None)


def _is_valid(number: PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number``, with one numbering-plan match instead of two
    for country codes that several regions share (+1, +7, +44, ...).

    The library finds the region by matching the number against each region's
    plan, then matches it again against the region it found. When the region
    was found by that match (it has no leading-digits rule) the second match
    can only agree, so it is skipped; otherwise this does what the library
    does. ``tests/test_intake.py`` compares the verdicts on every region's
    example numbers.
    """
    regions = COUNTRY_CODE_TO_REGION_CODE.get(number.country_code or 0, ())
    if _type_of is None or len(regions) < 2:
        return bool(phonenumbers.is_valid_number(number))
    national = phonenumbers.national_significant_number(number)
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re.match(metadata.leading_digits, national):
                return bool(_type_of(national, metadata) != PhoneNumberType.UNKNOWN)
        elif _type_of(national, metadata) != PhoneNumberType.UNKNOWN:
            return True
    return False


def _direct(digits: str) -> PhoneNumber | None:
    """``digits`` as the parser would read ``+digits``, built without parsing, or
    ``None`` where the parser would do more than split off the country code.

    This halves the cost of a number (the parser normalises, tries formats
    and extensions first). It mirrors ``phonenumbers.parse`` exactly for
    E.164 digits: the country code is the first 1-3 digits that name one
    (ITU-T E.164 codes are prefix-free); the rest is the national
    significant number, leading zeros recorded as the parser records them.
    Anything else (no such code, too short, a national prefix the parser
    might strip) goes to the parser; ``tests/test_intake.py`` compares both
    on every region's example numbers.
    """
    if digits[0] == "0":
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if len(national) < 2:
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and re.match(prefix, national):
        return None
    number = PhoneNumber(country_code=code, national_number=int(national))
    if national[0] == "0":  # as phonenumbers' _set_italian_leading_zeros_for_phone_number
        number.italian_leading_zero = True
        zeros = len(national) - len(national.lstrip("0"))
        zeros = min(zeros, len(national) - 1)  # an all-zero number keeps its last zero
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    return number


def normalize_destination(
    value: str, *, field: str = "to", policy: IntakePolicy = DEFAULT_POLICY
) -> str:
    """The destination as E.164 digits without ``+`` (``"+1 415-555-2671"`` -> ``"14155552671"``).

    Spaces, ``-``, ``.``, ``/`` and parentheses are ignored; a leading ``+`` is
    optional (digits are always read as an international number). A national
    (trunk) prefix after the country code is dropped where ``phonenumbers``
    recognises one (``+7 8 912 345 67 89`` -> ``79123456789``). Raises
    :class:`InvalidDestination` with code ``required``, ``too_long``,
    ``not_a_number``, ``invalid_country_code``, ``too_short``, ``not_possible``
    or ``not_valid``.
    """
    if policy.test_prefixes and isinstance(value, str):
        compact = value.translate(_NUMBER_FORMATTING).lstrip("+")
        if compact.startswith(policy.test_prefixes) and _E164_DIGITS.fullmatch(compact):
            return compact
    return _e164(value, field, InvalidDestination, policy.require_valid_number)


# -- sender ------------------------------------------------------------------------


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
        digits = value.translate(_NUMBER_FORMATTING)
        if digits.startswith("+") or (
            digits.isdigit() and digits.isascii() and len(digits) > MAX_SHORT_CODE_DIGITS
        ):
            kind = SenderKind.INTERNATIONAL
        elif digits.isdigit() and digits.isascii():
            kind = SenderKind.SHORT_CODE
        else:
            kind = SenderKind.ALPHANUMERIC
    if kind is SenderKind.INTERNATIONAL:
        return Sender("+" + _e164(value, field, InvalidSource, policy.require_valid_number), kind)
    if kind is SenderKind.SHORT_CODE:
        value = value.translate(_NUMBER_FORMATTING)
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


# -- body --------------------------------------------------------------------------


class EncodingChoice(enum.Enum):
    """The ``encoding`` a customer may ask for."""

    AUTO = "auto"  # the cheapest that represents the text (GSM 7-bit, else UCS-2)
    GSM7 = "gsm7"
    UCS2 = "ucs2"
    BINARY = "binary"  # with a binary body only


@dataclass(frozen=True, slots=True)
class Body:
    """A body ready to store: ``data`` encoded (GSM 7-bit unpacked, one septet
    per octet), its :class:`~herald.text.Encoding`, the data_coding octet
    herald uses for it, and the number of parts it will be sent in."""

    data: bytes
    encoding: Encoding
    data_coding: int
    segments: int


_UNIT_NAME: Final = {Encoding.GSM7: "GSM septets"}


def _check_octets(
    data: bytes, encoding: Encoding, segments: int, field: str, max_parts: int
) -> None:
    if len(data) > MAX_BODY_OCTETS:
        # GSM 7-bit is stored one septet per octet, so 255 parts of 153 septets
        # (39,015) do not fit the store's 35,700 octets: the smaller limit holds.
        raise TooLong(
            field,
            f"is {len(data)} {_UNIT_NAME.get(encoding, 'octets')} encoded; at most"
            f" {MAX_BODY_OCTETS} fit in one message",
            "too_long",
        )
    if segments > max_parts:
        raise TooLong(field, f"needs {segments} parts; at most {max_parts}", "too_long")


def _too_many_parts(exc: TooManyParts, field: str) -> TooLong:
    return TooLong(
        field, f"needs {exc.needed} parts; at most {exc.allowed} are allowed", "too_long"
    )


_TEXT_ENCODING: Final = {
    EncodingChoice.AUTO: None,
    EncodingChoice.GSM7: Encoding.GSM7,
    EncodingChoice.UCS2: Encoding.UCS2,
}


def prepare_text(
    text: str,
    choice: EncodingChoice = EncodingChoice.AUTO,
    *,
    field: str = "text",
    encoding_field: str = "encoding",
    policy: IntakePolicy = DEFAULT_POLICY,
) -> Body:
    """Encode ``text`` and count its parts (UDH concatenation, 8-bit reference).

    Raises :class:`InvalidBody` (``empty``; ``not_encodable`` when a forced
    ``gsm7`` cannot carry a character; ``conflict`` on ``encoding_field`` for
    ``binary``) and :class:`TooLong` (``too_long``, naming the limit).
    """
    if not isinstance(text, str) or not text:
        raise InvalidBody(field, "must not be empty", "empty")
    if choice is EncodingChoice.BINARY:
        raise InvalidBody(encoding_field, "'binary' needs a binary body, not text", "conflict")
    try:
        segmented = split_text(text, encoding=_TEXT_ENCODING[choice], max_parts=policy.max_parts)
    except TooManyParts as exc:
        raise _too_many_parts(exc, field) from None
    except EncodeError as exc:
        raise InvalidBody(
            field,
            f"character U+{ord(exc.character or chr(0)):04X} at position {exc.position}"
            f" cannot be sent as {choice.value}; use encoding 'auto' or 'ucs2'",
            "not_encodable",
        ) from None
    except MessageTooLong as exc:
        raise TooLong(field, str(exc), "too_long") from None
    parts = segmented.parts
    data = parts[0].payload if len(parts) == 1 else b"".join(p.payload for p in parts)
    _check_octets(data, segmented.encoding, segmented.segments, field, policy.max_parts)
    return Body(data, segmented.encoding, segmented.data_coding, segmented.segments)


def prepare_binary(
    data: bytes, *, field: str = "binary", policy: IntakePolicy = DEFAULT_POLICY
) -> Body:
    """Opaque octets (data_coding 0x04) and their parts. Raises :class:`InvalidBody`
    (``empty``) and :class:`TooLong`."""
    if not data:
        raise InvalidBody(field, "must not be empty", "empty")
    try:
        segmented = split_binary(data, max_parts=policy.max_parts)
    except TooManyParts as exc:
        raise _too_many_parts(exc, field) from None
    except MessageTooLong as exc:
        raise TooLong(field, str(exc), "too_long") from None
    _check_octets(data, segmented.encoding, segmented.segments, field, policy.max_parts)
    return Body(data, Encoding.BINARY, segmented.data_coding, segmented.segments)


def decode_base64(value: str, *, field: str = "binary") -> bytes:
    """Standard base64 (RFC 4648 §4, padding required). Raises :class:`InvalidBody`
    (``invalid_base64``)."""
    if not isinstance(value, str) or not value.isascii():
        raise InvalidBody(field, "is not base64 (RFC 4648 §4)", "invalid_base64")
    if len(value) > (MAX_BODY_OCTETS + 2) // 3 * 4:
        raise TooLong(field, f"decodes to more than {MAX_BODY_OCTETS} octets", "too_long")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise InvalidBody(field, "is not base64 (RFC 4648 §4)", "invalid_base64") from None


def prepare_encoded(
    payload: bytes,
    data_coding: int,
    *,
    field: str = "short_message",
    smsc_default: SmscDefault = SmscDefault.GSM7,
    policy: IntakePolicy = DEFAULT_POLICY,
) -> Body:
    """A body that arrives already coded (SMPP ``short_message`` / ``message_payload``,
    reassembled and without UDH), checked and counted.

    ``data_coding`` 0 means ``smsc_default`` (herald's own default alphabet
    for its customers). The text codings are decoded strictly so a body that
    does not decode is refused here rather than garbled upstream. The stored
    ``data_coding`` is the customer's. Raises :class:`InvalidBody`
    (``empty``, ``invalid_data_coding``, ``not_decodable``) and :class:`TooLong`.
    """
    if not payload:
        raise InvalidBody(field, "must not be empty", "empty")
    try:
        coding = parse_data_coding(data_coding, smsc_default)
    except DataCodingError as exc:
        raise InvalidBody("data_coding", str(exc), "invalid_data_coding") from None
    if coding.encoding is Encoding.BINARY:
        body = prepare_binary(payload, field=field, policy=policy)
        return Body(payload, Encoding.BINARY, data_coding, body.segments)
    try:
        text = decode(payload, coding.encoding)
        segmented = split_text(text, encoding=coding.encoding, max_parts=policy.max_parts)
    except DecodeError as exc:
        raise InvalidBody(field, str(exc), "not_decodable") from None
    except TooManyParts as exc:
        raise _too_many_parts(exc, field) from None
    except TextError as exc:
        raise InvalidBody(field, str(exc), "not_encodable") from None
    _check_octets(payload, coding.encoding, segmented.segments, field, policy.max_parts)
    return Body(payload, coding.encoding, data_coding, segmented.segments)


# -- schedule ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    """When to send (``None``: now) and when to give up (epoch seconds)."""

    send_at: float | None
    expires_at: float


def parse_time(value: object, *, field: str = "send_at") -> float:
    """Epoch seconds from a number (epoch seconds) or an RFC 3339 date-time.

    RFC 3339 §5.6 requires the offset (``Z`` or ``+hh:mm``); a local time
    without one is refused. Raises :class:`InvalidSchedule` (``invalid_time``).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidSchedule(
            field, "must be epoch seconds or an RFC 3339 date-time", "invalid_time"
        )
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40 or not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt ].+", text):
            raise InvalidSchedule(field, "is not an RFC 3339 date-time", "invalid_time")
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "zZ" else text)
        except ValueError:
            raise InvalidSchedule(field, "is not an RFC 3339 date-time", "invalid_time") from None
        if moment.tzinfo is None:
            raise InvalidSchedule(
                field, "needs a UTC offset (RFC 3339 §5.6), e.g. 'Z'", "invalid_time"
            )
        return moment.timestamp()
    seconds = float(value)
    if not (math.isfinite(seconds) and 0 <= seconds <= _MAX_EPOCH):
        raise InvalidSchedule(field, "is not a time herald can schedule", "invalid_time")
    return seconds


def schedule(
    now: float,
    *,
    validity_period: object = None,
    send_at: object = None,
    expires_at: float | None = None,
    policy: IntakePolicy = DEFAULT_POLICY,
    validity_field: str = "validity_period",
    send_at_field: str = "send_at",
) -> Schedule:
    """The schedule of a message accepted at ``now`` (epoch seconds).

    ``validity_period`` (seconds) counts from acceptance, as SMPP's relative
    validity does (SMPP 3.4 §7.1.1); ``expires_at`` is the absolute form (SMPP
    absolute validity), mutually exclusive with it. Without either, a message
    lives ``policy.default_validity`` from when it is due to be sent, so a
    scheduled message never expires before its time. ``send_at`` may be a
    number or RFC 3339 (see :func:`parse_time`); a value at or before ``now``
    means "now".

    Raises :class:`InvalidValidity` (``wrong_type``, ``out_of_range``) and
    :class:`InvalidSchedule` (``invalid_time``, ``in_the_past``, ``too_far``,
    ``after_expiry``).
    """
    if validity_period is not None and expires_at is not None:
        raise ValueError("give validity_period or expires_at, not both")
    due: float | None = None
    if send_at is not None:
        due = parse_time(send_at, field=send_at_field)
        if due < now - policy.send_at_skew:
            raise InvalidSchedule(
                send_at_field,
                f"is more than {policy.send_at_skew:g} s in the past",
                "in_the_past",
            )
        if due > now + policy.max_schedule_ahead:
            raise InvalidSchedule(
                send_at_field,
                f"is more than {policy.max_schedule_ahead / 86400:g} days ahead",
                "too_far",
            )
        if due <= now:
            due = None
    if validity_period is not None:
        if isinstance(validity_period, bool) or not isinstance(validity_period, int | float):
            raise InvalidValidity(validity_field, "must be a number of seconds", "wrong_type")
        period = float(validity_period)
        if not (math.isfinite(period) and policy.min_validity <= period <= policy.max_validity):
            raise InvalidValidity(
                validity_field,
                f"must be {policy.min_validity:g}..{policy.max_validity:g} seconds",
                "out_of_range",
            )
        expiry = now + period
    elif expires_at is not None:
        if not (
            math.isfinite(expires_at)
            and now + policy.min_validity <= expires_at <= now + policy.max_validity
        ):
            raise InvalidValidity(
                validity_field,
                f"must end {policy.min_validity:g}..{policy.max_validity:g} seconds from now",
                "out_of_range",
            )
        expiry = expires_at
    else:
        expiry = (now if due is None else due) + policy.default_validity
    if due is not None and due >= expiry:
        raise InvalidSchedule(
            send_at_field,
            "is not before the message expires (acceptance + validity_period)",
            "after_expiry",
        )
    return Schedule(due, expiry)


# -- the other fields --------------------------------------------------------------


def check_reference(value: object, *, field: str = "reference") -> str | None:
    """The customer's own reference: 1..128 printable characters, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string", "wrong_type")
    if not value:
        raise InvalidField(field, "must not be empty (leave it out instead)", "empty")
    if len(value) > MAX_REFERENCE_LENGTH:
        raise InvalidField(field, f"has at most {MAX_REFERENCE_LENGTH} characters", "too_long")
    if _CONTROL.search(value):
        raise InvalidField(field, "must not contain control characters", "invalid_characters")
    return value


def serialize_metadata(value: object, *, field: str = "metadata") -> str | None:
    """A JSON object, serialised compactly for the store (at most 4096 characters)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidField(field, "must be a JSON object", "wrong_type")
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidField(field, f"is not JSON: {exc}", "wrong_type") from None
    if len(text) > MAX_METADATA_LENGTH:
        raise InvalidField(
            field, f"is {len(text)} characters as JSON; at most {MAX_METADATA_LENGTH}", "too_long"
        )
    return text


def check_callback_url(value: object, *, field: str = "callback_url") -> str | None:
    """An absolute ``http`` or ``https`` URL without credentials, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string", "wrong_type")
    if len(value) > MAX_CALLBACK_URL_LENGTH:
        raise InvalidField(field, f"has at most {MAX_CALLBACK_URL_LENGTH} characters", "too_long")
    if _CONTROL.search(value) or " " in value:
        raise InvalidField(field, "must not contain spaces or control characters", "invalid_url")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise InvalidField(field, "is not a URL", "invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField(field, "must be an absolute http:// or https:// URL", "invalid_url")
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL would be stored and shown in clear; webhooks
        # are authenticated by their HMAC signature instead.
        raise InvalidField(field, "must not carry a user name or password", "invalid_url")
    del port
    return value


def check_callback_events(value: object, *, field: str = "callback_events") -> StatusEvents | None:
    """``"all"``, ``"final"``, ``"none"`` or a list of status labels; ``None``: the account's."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() not in ("all", "final", "none"):
            raise InvalidField(
                field, 'must be "all", "final", "none" or a list of statuses', "invalid_choice"
            )
    elif not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise InvalidField(
            field, 'must be "all", "final", "none" or a list of status names', "wrong_type"
        )
    try:
        return StatusEvents.parse(value)
    except ValueError as exc:
        raise InvalidField(field, str(exc), "invalid_choice") from None


# -- the message ------------------------------------------------------------------


def build_message(
    *,
    message_id: str,
    account_id: int,
    source: Source,
    to: str,
    sender: Sender,
    body: Body,
    schedule: Schedule,
    now: float,
    reference: str | None = None,
    metadata: str | None = None,
    callback_url: str | None = None,
    registered_delivery: int = 0,
    test: bool = False,
    callback_events: StatusEvents | None = None,
) -> NewMessage:
    """The :class:`NewMessage` for validated parts, accepted at ``now``."""
    return NewMessage(
        id=message_id,
        account_id=account_id,
        source=source,
        to=to,
        sender=sender.value,
        body=body.data,
        encoding=body.encoding.value,
        data_coding=body.data_coding,
        segments=body.segments,
        accepted_at=now,
        expires_at=schedule.expires_at,
        send_at=schedule.send_at,
        reference=reference,
        metadata=metadata,
        callback_url=callback_url,
        registered_delivery=registered_delivery,
        test=test,
        callback_events=callback_events,
    )
