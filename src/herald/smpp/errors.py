"""The SMPP layer's exceptions: one hierarchy, split by whose fault it is.

* ``LocalProtocolError``: our caller misused the API (a field over its limit, a
  PDU not allowed in the session's state, a full window). Fix the calling code,
  or check first (``Session.window_room``, ``Session.can_send``).
* ``RemoteProtocolError``: the peer sent something wrong. The exception's
  ``status`` is the ``command_status`` to answer with.

Every exception carries ``status``, a :class:`CommandStatus`, so a shell or the
pipeline can turn any of them into a response without a lookup table of its
own. Nothing here leaks to a customer as a stack trace: adapters translate.
"""

from __future__ import annotations

from herald.smpp.constants import CommandStatus

__all__ = [
    "BufferLimitExceeded",
    "FramingError",
    "InvalidField",
    "InvalidTlvValue",
    "LocalProtocolError",
    "PduDecodeError",
    "ReceiptError",
    "RemoteProtocolError",
    "SessionStateError",
    "SmppError",
    "WindowFull",
]


class SmppError(Exception):
    """Base of every error raised by ``herald.smpp``."""

    default_status = CommandStatus.ESME_RUNKNOWNERR

    def __init__(self, message: str, status: CommandStatus | None = None) -> None:
        super().__init__(message)
        self.status: CommandStatus = self.default_status if status is None else status


class LocalProtocolError(SmppError):
    """The caller asked for something SMPP does not allow. Fix the caller."""


class RemoteProtocolError(SmppError):
    """The peer broke the protocol; answer it with ``status``."""


class InvalidField(LocalProtocolError):
    """A PDU or TLV field holds a value that cannot be encoded (too long, out of
    range, not Latin-1). ``field`` names it; ``status`` is the code a peer would
    get for the same value (e.g. ESME_RINVSRCADR for a long source_addr)."""

    def __init__(self, field: str, message: str, status: CommandStatus) -> None:
        super().__init__(f"{field}: {message}", status)
        self.field = field


class SessionStateError(LocalProtocolError):
    """The PDU may not be sent in the session's current state or role (SMPP 3.4
    §2.3); ``status`` is ESME_RINVBNDSTS. Wait for the bind, or don't send it."""

    default_status = CommandStatus.ESME_RINVBNDSTS


class WindowFull(LocalProtocolError):
    """Every in-flight slot is taken. Wait for a ResponseReceived or
    RequestTimedOut event (``Session.window_room`` says when there is room)."""

    default_status = CommandStatus.ESME_RTHROTTLED


class BufferLimitExceeded(LocalProtocolError):
    """More undecoded bytes than ``MAX_BUFFERED_BYTES`` were fed: the shell must
    pull outcomes/events between reads (stop reading until it has)."""

    default_status = CommandStatus.ESME_RMSGQFUL


class PduDecodeError(RemoteProtocolError):
    """A PDU's header was valid but its body was not (one-shot ``decode``).
    Answer its request with ``status``; the connection stays usable."""


class FramingError(RemoteProtocolError):
    """The byte stream can no longer be split into PDUs (command_length < 16 or
    over the maximum). Fatal: send what is queued, then close."""

    default_status = CommandStatus.ESME_RINVCMDLEN


class InvalidTlvValue(RemoteProtocolError):
    """A known TLV's value breaks its definition (SMPP 3.4 §5.3.2). Raised when
    the TLV is read, so one bad optional field does not make a whole PDU (a
    delivery receipt, say) unreadable. Answer with ``status`` if it matters."""

    default_status = CommandStatus.ESME_RINVPARLEN


class ReceiptError(RemoteProtocolError):
    """A delivery receipt's text is not a receipt (no ``id:`` or no ``stat:``).
    ``status`` is ESME_RX_P_APPN (resending the same text will not help); most
    callers acknowledge the deliver_sm anyway and correlate by TLV."""

    default_status = CommandStatus.ESME_RX_P_APPN
