"""Bodies: text in the cheapest (or the requested) encoding, or opaque octets,
cut into at most 255 parts by :mod:`herald.text`."""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from typing import Final

from herald.intake._errors import InvalidBody, TooLong
from herald.intake._policy import DEFAULT_POLICY, IntakePolicy
from herald.store import MAX_BODY_OCTETS
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
    parse_data_coding,
    split_binary,
    split_text,
)

__all__ = [
    "Body",
    "EncodingChoice",
    "decode_base64",
    "prepare_binary",
    "prepare_encoded",
    "prepare_text",
]


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
