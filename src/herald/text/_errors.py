"""The one error hierarchy of `herald.text`.

Two branches, as in h11: a `LocalTextError` is the caller's problem (text that
the requested encoding cannot carry, a reference number out of range, more
parts than allowed); a `RemoteTextError` is the peer's (bytes that are not
valid in the announced coding, a malformed user data header, a bad
concatenation part). Every class knows the SMPP 3.4 `command_status` to answer
a submit_sm with (SMPP 3.4 §5.1.3) and whether the condition is transient, so
that the SMPP layer can pick ESME_RX_T_APPN (0x63) or ESME_RX_P_APPN (0x64)
when it is the receiver of a deliver_sm instead. Nothing else escapes the
package: codec failures of the standard library are translated here.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "DataCodingError",
    "DecodeError",
    "EncodeError",
    "EncodingUnavailable",
    "LocalTextError",
    "MessageTooLong",
    "ReassemblyError",
    "ReassemblyFull",
    "RemoteTextError",
    "TextError",
    "TooManyParts",
    "UdhError",
]

# SMPP 3.4 §5.1.3 command_status values used by this package. Kept local so the
# text package depends on the standard library only (docs/DEVELOPING.md).
ESME_RINVMSGLEN = 0x00000001
ESME_RSYSERR = 0x00000008
ESME_RMSGQFUL = 0x00000014
ESME_RINVESMCLASS = 0x00000043
ESME_RSUBMITFAIL = 0x00000045


class TextError(Exception):
    """Base class. `command_status` is the SMPP 3.4 answer to a submit_sm."""

    command_status: ClassVar[int] = ESME_RSUBMITFAIL
    transient: ClassVar[bool] = False


class LocalTextError(TextError, ValueError):
    """The caller asked for something impossible; fix the call or the input."""

    command_status: ClassVar[int] = ESME_RSYSERR


class RemoteTextError(TextError):
    """The peer sent bytes that violate the spec; reject or degrade that message."""


class EncodeError(LocalTextError):
    """`text` holds a character the requested encoding cannot represent.

    `position` is the index of the first such character in the text. The HTTP
    API answers 400; an SMPP server answers ESME_RSUBMITFAIL.
    """

    command_status: ClassVar[int] = ESME_RSUBMITFAIL

    def __init__(self, encoding: str, text: str, position: int, reason: str) -> None:
        self.encoding = encoding
        self.position = position
        self.character = text[position] if 0 <= position < len(text) else ""
        super().__init__(
            f"cannot encode U+{ord(self.character or chr(0)):04X} at position {position} "
            f"as {encoding}: {reason}"
        )


class EncodingUnavailable(LocalTextError):
    """The connector cannot carry the requested encoding/message-class combination.

    Example: GSM 7-bit on a connector whose data_coding 0 means Latin-1 (SMPP 3.4
    has no other value for class-less GSM 7-bit). Choose another encoding.
    """

    command_status: ClassVar[int] = ESME_RSUBMITFAIL


class MessageTooLong(LocalTextError):
    """The message does not fit its carrier (e.g. message_payload, 65535 octets).

    Answer ESME_RINVMSGLEN (SMPP) or 400 (HTTP); the caller must shorten the text.
    """

    command_status: ClassVar[int] = ESME_RINVMSGLEN


class TooManyParts(MessageTooLong):
    """The text needs more parts than allowed (255 at most, TS 23.040 §9.2.3.24.1).

    `needed` is exact when the text is within twice the limit, else a lower
    bound (counting stops early on huge input).
    """

    def __init__(self, needed: int, allowed: int) -> None:
        self.needed = needed
        self.allowed = allowed
        super().__init__(f"message needs {needed} parts, at most {allowed} allowed")


class DecodeError(RemoteTextError):
    """Bytes that are not valid in the announced coding (strict decoding only).

    `offset` is the byte offset of the first bad octet in the payload handed
    to the decoder. Decode with `strict=False` to degrade instead of failing.
    """

    def __init__(self, encoding: str, offset: int, reason: str) -> None:
        self.encoding = encoding
        self.offset = offset
        super().__init__(f"invalid {encoding} at byte {offset}: {reason}")


class DataCodingError(RemoteTextError):
    """A data_coding value that is reserved or names an alphabet herald does not decode.

    The message may still be relayed as opaque octets; it cannot become text.
    """

    def __init__(self, value: int, reason: str) -> None:
        self.value = value
        super().__init__(f"data_coding 0x{value:02X}: {reason}")


class UdhError(RemoteTextError):
    """The user data header announced by esm_class 0x40 is malformed.

    Answer ESME_RINVESMCLASS: the UDHI bit claims a header that is not there.
    """

    command_status: ClassVar[int] = ESME_RINVESMCLASS


class ReassemblyError(RemoteTextError):
    """A concatenated part whose numbering is impossible (seq 0, seq > total, ...)."""


class ReassemblyFull(RemoteTextError):
    """The reassembly buffer is at its bound; the part was not stored.

    Transient: answer ESME_RMSGQFUL (or ESME_RX_T_APPN to a deliver_sm) so the
    peer retries later, after pending messages complete or expire.
    """

    command_status: ClassVar[int] = ESME_RMSGQFUL
    transient: ClassVar[bool] = True
