"""The facts the guard's rules read about one signaling message.

A :class:`Facts` value is a flat, frozen summary of one M3UA DATA message: the
routing label, the SCCP addresses, the TCAP transaction, the application context,
the operation and the handful of MAP argument fields the rules look at. The
policy engine reads nothing else, so it can be driven from the codec's decoded
message (:func:`herald.signaling.policy.bridge.facts_from_message`), from a test
table, or from the platform's own outbound signaling.

Identifiers (IMSI, MSISDN, node addresses) are held here because the rules must
compare them; nothing built from a ``Facts`` for output may carry them (the
engine emits salted hashes only). ``repr`` masks them for the same reason.

Time is an argument: ``time`` is in seconds on whatever clock the caller uses
(capture timestamps in scan mode, the event loop's monotonic clock in the
proxy). All windows in the policy are compared against it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from herald.signaling.map_types import SmRpDaKind
from herald.signaling.message import SccpMessageType as SccpKind
from herald.signaling.message import TcapMessageType as TcapKind

__all__ = [
    "ComponentKind",
    "Direction",
    "Facts",
    "SccpKind",
    "SmRpDaKind",
    "TcapKind",
]


class Direction(IntEnum):
    """Where the message was seen going, when the capture or link says so.

    Informational: the engine classifies a message by its calling global title,
    because a capture's direction cannot be trusted.
    """

    UNKNOWN = 0
    INBOUND = 1  # from the interconnect towards the home network
    OUTBOUND = 2  # from the home network or the platform towards the interconnect


class ComponentKind(IntEnum):
    """TCAP component type tag (ITU-T Q.773 §4.2, table 13)."""

    INVOKE = 0xA1
    RETURN_RESULT_LAST = 0xA2
    RETURN_ERROR = 0xA3
    REJECT = 0xA4
    RETURN_RESULT_NOT_LAST = 0xA7


# Fields whose values identify a subscriber or a node that may be serving one
# (the calling GT of an UpdateLocation is the VLR): masked in repr.
_MASKED = frozenset(
    {
        "calling_gt",
        "called_gt",
        "imsi",
        "msisdn",
        "lmsi",
        "msc_number",
        "vlr_number",
        "service_centre",
    }
)


class Facts(NamedTuple):
    """One message as the rules see it. Absent string fields are ``""``.

    A ``NamedTuple`` rather than a frozen dataclass: immutable and typed, and
    several times cheaper to build, which matters at 50,000 messages/s.

    ``opcode`` is the local operation code of the first invoke (or of the
    first result, when the message carries no invoke and the result names its
    operation); ``invokes`` lists the local codes of every invoke, so a benign
    first invoke cannot hide a second one. ``ac`` is ``(id, version)`` of a MAP
    application context, ``None`` when the message has no dialogue portion;
    ``ac_other`` is set when a dialogue portion names a non-MAP context.
    ``sm_rp_da`` is the SM-RP-DA choice of a forwarded short message (None for
    other operations). The SCCP and TCAP kinds are the codec's enums.
    """

    time: float
    calling_gt: str = ""
    called_gt: str = ""
    calling_ssn: int = 0
    called_ssn: int = 0
    opc: int = 0
    dpc: int = 0
    direction: Direction = Direction.UNKNOWN
    sccp: SccpKind = SccpKind.UDT
    tcap: TcapKind = TcapKind.BEGIN
    otid: bytes = b""
    dtid: bytes = b""
    ac: tuple[int, int] | None = None
    ac_other: bool = False
    component: ComponentKind | None = None
    opcode: int | None = None
    invokes: tuple[int, ...] = ()
    global_opcode: bool = False
    # MAP argument (or result) fields the rules read.
    imsi: str = ""
    msisdn: str = ""
    lmsi: str = ""
    msc_number: str = ""
    vlr_number: str = ""
    service_centre: str = ""
    sm_rp_da: SmRpDaKind | None = None
    tp_pid: int | None = None
    delivery_not_intended: bool = False

    @property
    def is_invoke(self) -> bool:
        return self.component is ComponentKind.INVOKE

    @property
    def is_result(self) -> bool:
        return self.component in (
            ComponentKind.RETURN_RESULT_LAST,
            ComponentKind.RETURN_RESULT_NOT_LAST,
        )

    def __repr__(self) -> str:
        parts = []
        for name, value in zip(self._fields, self, strict=True):
            if name in _MASKED and isinstance(value, str) and value:
                value = f"<{len(value)} digits>"
            parts.append(f"{name}={value!r}")
        return f"Facts({', '.join(parts)})"
