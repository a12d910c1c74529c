"""The signaling codecs' error hierarchy.

Every decoding failure is a :class:`DecodeError` subclass naming the layer that
refused the bytes (M3UA, SCCP, TCAP or MAP) and the byte offset where it did,
counted from the start of the buffer handed to the decoder (for ``decode()``:
from the first octet of the M3UA common header). Each layer's error also carries
the wire code that answers it, so a proxy can respond without a lookup table:

===========  ==================================  ==========================================
layer        exception                           wire code carried
===========  ==================================  ==========================================
M3UA         :class:`M3uaError`                  ``error_code``: RFC 4666 §3.8.1 ERR code
SCCP         :class:`SccpError`                  ``return_cause``: Q.713 §3.12 (for a UDTS)
TCAP         :class:`TcapError`                  ``abort_cause``: Q.773 P-AbortCause, or a
                                                 component ``problem`` for a Reject
MAP          :class:`MapError`                   ``problem``: Q.773 invoke problem (Reject)
===========  ==================================  ==========================================

What the caller should do:

- :class:`DecodeError` is the peer's fault (remote). A scanner counts it as a
  malformed message; a proxy drops or answers it (M3UA ERR, SCCP UDTS, TCAP
  Abort / Reject) using the carried code. Never let it escape as a traceback.
- :class:`NotUserData` is not a fault: ``decode()`` was given an M3UA message
  that carries no SCCP user data (ASP management, SSNM, ...). A proxy forwards
  it; a scanner skips it. ``message`` holds the decoded M3UA value.
- :class:`EncodeError` is our own misuse (local): a value out of the range the
  wire format can carry. Fix the caller.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type-only import: m3ua imports this module at run time
    from herald.signaling.m3ua import M3uaMessage

__all__ = [
    "DecodeError",
    "EncodeError",
    "Layer",
    "M3uaError",
    "M3uaErrorCode",
    "MapError",
    "NotUserData",
    "PAbortCause",
    "RejectProblem",
    "ReturnCause",
    "SccpError",
    "SignalingError",
    "TcapComponentError",
    "TcapError",
]


class Layer(StrEnum):
    M3UA = "M3UA"
    SCCP = "SCCP"
    TCAP = "TCAP"
    MAP = "MAP"


class M3uaErrorCode(IntEnum):
    """RFC 4666 §3.8.1, Error Code parameter values."""

    INVALID_VERSION = 0x01
    UNSUPPORTED_MESSAGE_CLASS = 0x03
    UNSUPPORTED_MESSAGE_TYPE = 0x04
    UNSUPPORTED_TRAFFIC_MODE_TYPE = 0x05
    UNEXPECTED_MESSAGE = 0x06
    PROTOCOL_ERROR = 0x07
    INVALID_STREAM_IDENTIFIER = 0x09
    REFUSED_MANAGEMENT_BLOCKING = 0x0D
    ASP_IDENTIFIER_REQUIRED = 0x0E
    INVALID_ASP_IDENTIFIER = 0x0F
    INVALID_PARAMETER_VALUE = 0x11
    PARAMETER_FIELD_ERROR = 0x12
    UNEXPECTED_PARAMETER = 0x13
    DESTINATION_STATUS_UNKNOWN = 0x14
    INVALID_NETWORK_APPEARANCE = 0x15
    MISSING_PARAMETER = 0x16
    INVALID_ROUTING_CONTEXT = 0x19
    NO_CONFIGURED_AS_FOR_ASP = 0x1A


class ReturnCause(IntEnum):
    """Q.713 §3.12, Return cause carried by UDTS/XUDTS."""

    NO_TRANSLATION_FOR_NATURE = 0
    NO_TRANSLATION_FOR_ADDRESS = 1
    SUBSYSTEM_CONGESTION = 2
    SUBSYSTEM_FAILURE = 3
    UNEQUIPPED_USER = 4
    MTP_FAILURE = 5
    NETWORK_CONGESTION = 6
    UNQUALIFIED = 7
    ERROR_IN_MESSAGE_TRANSPORT = 8
    ERROR_IN_LOCAL_PROCESSING = 9
    DESTINATION_CANNOT_REASSEMBLE = 10
    SCCP_FAILURE = 11
    HOP_COUNTER_VIOLATION = 12
    SEGMENTATION_NOT_SUPPORTED = 13
    SEGMENTATION_FAILURE = 14


class PAbortCause(IntEnum):
    """Q.773 §3.1 (TCAP transaction portion), P-AbortCause."""

    UNRECOGNIZED_MESSAGE_TYPE = 0
    UNRECOGNIZED_TRANSACTION_ID = 1
    BADLY_FORMATTED_TRANSACTION_PORTION = 2
    INCORRECT_TRANSACTION_PORTION = 3
    RESOURCE_LIMITATION = 4


class RejectProblem(IntEnum):
    """Q.773 §3.2 Reject problem, flattened as ``(problem type << 8) | code``.

    Problem type 0 is general, 1 invoke, 2 return result, 3 return error.
    """

    GENERAL_UNRECOGNIZED_COMPONENT = 0x000
    GENERAL_MISTYPED_COMPONENT = 0x001
    GENERAL_BADLY_STRUCTURED_COMPONENT = 0x002
    INVOKE_DUPLICATE_INVOKE_ID = 0x100
    INVOKE_UNRECOGNIZED_OPERATION = 0x101
    INVOKE_MISTYPED_PARAMETER = 0x102
    INVOKE_RESOURCE_LIMITATION = 0x103
    INVOKE_INITIATING_RELEASE = 0x104
    INVOKE_UNRECOGNIZED_LINKED_ID = 0x105
    INVOKE_LINKED_RESPONSE_UNEXPECTED = 0x106
    INVOKE_UNEXPECTED_LINKED_OPERATION = 0x107
    RESULT_UNRECOGNIZED_INVOKE_ID = 0x200
    RESULT_UNEXPECTED = 0x201
    RESULT_MISTYPED_PARAMETER = 0x202

    @property
    def problem_type(self) -> int:
        return self.value >> 8

    @property
    def code(self) -> int:
        return self.value & 0xFF


class SignalingError(Exception):
    """Base of every error raised by ``herald.signaling``."""


class DecodeError(SignalingError):
    """The bytes are not a valid message of ``layer`` (the remote peer's fault).

    ``offset`` is where decoding stopped, from the start of the caller's buffer.
    """

    layer: Layer = Layer.M3UA

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{self.layer.value} at offset {offset}: {reason}")
        self.reason = reason
        self.offset = offset


class M3uaError(DecodeError):
    layer = Layer.M3UA

    def __init__(
        self,
        reason: str,
        offset: int,
        error_code: M3uaErrorCode = M3uaErrorCode.PROTOCOL_ERROR,
    ) -> None:
        super().__init__(reason, offset)
        self.error_code = error_code


class NotUserData(M3uaError):
    """A valid M3UA message that carries no SCCP user data (see module doc)."""

    def __init__(self, message: M3uaMessage, reason: str) -> None:
        super().__init__(reason, 0, M3uaErrorCode.UNEXPECTED_MESSAGE)
        self.message = message


class SccpError(DecodeError):
    layer = Layer.SCCP

    def __init__(
        self,
        reason: str,
        offset: int,
        return_cause: ReturnCause = ReturnCause.UNQUALIFIED,
    ) -> None:
        super().__init__(reason, offset)
        self.return_cause = return_cause


class TcapError(DecodeError):
    """``abort_cause`` is set for transaction-portion faults (answer: TC Abort);
    ``problem`` for component-portion faults (answer: a Reject component)."""

    layer = Layer.TCAP

    def __init__(
        self,
        reason: str,
        offset: int,
        abort_cause: PAbortCause | None = PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION,
        problem: RejectProblem | None = None,
    ) -> None:
        super().__init__(reason, offset)
        self.abort_cause = abort_cause
        self.problem = problem


class TcapComponentError(TcapError):
    """A fault inside one component: answer it with a Reject carrying
    ``problem`` (the transaction itself was well formed)."""

    def __init__(
        self,
        reason: str,
        offset: int,
        abort_cause: PAbortCause | None = None,
        problem: RejectProblem | None = RejectProblem.GENERAL_BADLY_STRUCTURED_COMPONENT,
    ) -> None:
        super().__init__(reason, offset, abort_cause, problem)


class MapError(DecodeError):
    """A MAP argument or result that does not match TS 29.002 (answer: Reject)."""

    layer = Layer.MAP

    def __init__(
        self,
        reason: str,
        offset: int,
        problem: RejectProblem = RejectProblem.INVOKE_MISTYPED_PARAMETER,
    ) -> None:
        super().__init__(reason, offset)
        self.problem = problem


class EncodeError(SignalingError, ValueError):
    """A value the wire format cannot carry (our misuse, not the peer's)."""
