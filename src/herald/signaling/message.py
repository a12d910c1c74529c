"""The decoded signaling message: one frozen value for the whole SIGTRAN stack.

``herald.signaling.decode(data)`` turns one M3UA message (the bytes of a DATA
message, common header included) into a :class:`SignalingMessage`. This module
defines that value; the policy engine reads it and nothing else.

Theory of operation
-------------------
An SS7 MAP message over SIGTRAN is four nested layers, and the value mirrors
them, outermost first::

    SignalingMessage
    ├── label: RoutingLabel            M3UA DATA, Protocol Data (RFC 4666 §3.3.1)
    │     opc, dpc, si, ni, mp, sls    ... plus routing_context / network_appearance
    ├── sccp: Unitdata                 SCCP UDT/XUDT/UDTS/XUDTS (Q.713 §4.10-4.19)
    │     kind, called, calling        SccpAddress: routing indicator, SSN, PC, GlobalTitle
    │     return_cause, hop_counter    (GlobalTitle: GTI, TT, NP, NAI and the digits)
    └── tcap: TcapMessage              TCAP (Q.773): Begin/Continue/End/Abort/Unidirectional
          kind, otid, dtid
          dialogue: Dialogue | None    AARQ/AARE/ABRT: application_context OID
          components: (Invoke | ReturnResult | ReturnError | Reject, ...)
                Invoke.opcode          local operation code (int), or global_opcode (OID)
                Invoke.argument        decoded MAP argument (map_types), when known

Reading it from a policy engine
-------------------------------
- *Who sent it, to whom*: ``msg.calling.gt.digits`` / ``msg.called.gt.digits``
  (``msg.calling_digits`` / ``msg.called_digits`` are the None-safe shortcuts),
  the SSNs ``msg.calling.ssn`` / ``msg.called.ssn``, and the MTP point codes
  ``msg.label.opc`` / ``msg.label.dpc``.
- *What it asks*: ``msg.application_context`` (an OID tuple, or None when the
  message has no dialogue portion: a MAP v1 Begin, or a Continue/End after the
  dialogue was set up); :func:`herald.signaling.map_ops.map_ac` turns it into
  ``(MapAc, version)``. ``msg.invokes`` are the operations invoked;
  ``invoke.opcode`` is a :class:`~herald.signaling.map_ops.MapOperation` value
  for local codes, None with ``invoke.global_opcode`` set for global ones.
- *About whom*: ``invoke.argument`` is one of the classes in
  :mod:`herald.signaling.map_types` (e.g. ``UpdateLocationArg.imsi``,
  ``RoutingInfoForSmArg.msisdn.digits``, ``ForwardSmArg.tpdu.pid``), or None
  when the operation is not one the codec decodes or the dialogue is not MAP.
  Results (``ReturnResult.result``) are decoded for SRI-SM and UpdateLocation.
- *Transaction*: ``msg.tcap.kind`` and ``otid``/``dtid`` (raw 1-4 octets) tie a
  Continue/End back to its Begin.

Invariants the decoder guarantees (so the engine need not re-check): every
length was checked; ``tcap.kind`` BEGIN has ``otid`` and no ``dtid``, END and
ABORT have ``dtid`` only, CONTINUE both; ``Invoke`` has exactly one of
``opcode`` / ``global_opcode``; digits contain only ``0-9`` (and ``* # a b c``
where TBCD allows them).

The values are ``NamedTuple`` classes made type-strict by
:func:`herald.signaling.privacy.value` (equal only to the same class with the
same fields): immutable and typed like frozen dataclasses, about 3x cheaper to
construct, and the decoder builds several per message. Build modified copies
with ``value._replace(field=...)``.

Identifiers: the value holds IMSIs and MSC/VLR numbers because rules need
them. ``repr()`` masks them (and all raw bytes); never log a field directly, log
:func:`herald.signaling.privacy.salted_hash` of it.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import NamedTuple

from herald.signaling.map_types import MapArgument, MapResult
from herald.signaling.privacy import masked_repr, value

__all__ = [
    "Component",
    "Dialogue",
    "DialogueKind",
    "GlobalTitle",
    "Invoke",
    "Reject",
    "ReturnError",
    "ReturnResult",
    "RoutingIndicator",
    "RoutingLabel",
    "SccpAddress",
    "SccpMessageType",
    "SignalingMessage",
    "TcapMessage",
    "TcapMessageType",
    "Unitdata",
]


# -------------------------------------------------------------------------- M3UA


@value
class RoutingLabel(NamedTuple):
    """RFC 4666 §3.3.1 Protocol Data: the MTP3 routing label M3UA carries.

    Point codes are the 32-bit fields as sent (ITU: 14 bits used). ``si`` 3 is
    SCCP; ``ni`` 0 international, 2 national; ``mp`` message priority.
    """

    opc: int
    dpc: int
    si: int = 3
    ni: int = 0
    mp: int = 0
    sls: int = 0


# -------------------------------------------------------------------------- SCCP


class SccpMessageType(IntEnum):
    """Q.713 §2.1 connectionless message types the codec handles."""

    UDT = 0x09
    UDTS = 0x0A
    XUDT = 0x11
    XUDTS = 0x12


class RoutingIndicator(IntEnum):
    """Q.713 §3.4.1 address indicator bit 7."""

    GLOBAL_TITLE = 0
    SSN = 1


@value
class GlobalTitle(NamedTuple):
    """Q.713 §3.4.2.3: a global title, digits BCD-encoded on the wire.

    ``indicator`` (GTI) says which fields are present: 1 nature only; 2
    translation type only; 3 TT + numbering plan (+ encoding scheme); 4 TT + NP
    + nature. Absent fields are None. The encoding scheme (BCD odd/even) is
    implied by the digit count and not stored.
    """

    digits: str
    indicator: int = 4
    translation_type: int | None = 0
    numbering_plan: int | None = 1  # E.164
    nature: int | None = 4  # international number

    def __repr__(self) -> str:
        return masked_repr(self, ("digits",))


@value
class SccpAddress(NamedTuple):
    """Q.713 §3.4 called/calling party address."""

    routing: RoutingIndicator
    ssn: int | None = None
    point_code: int | None = None
    gt: GlobalTitle | None = None
    #: Address indicator bit 8: reserved for national use (Q.713 §3.4.1).
    national: bool = False

    @property
    def digits(self) -> str | None:
        """The global title digits, or None without a global title."""
        return None if self.gt is None else self.gt.digits


@value
class Unitdata(NamedTuple):
    """A connectionless SCCP message (Q.713 §4.10 UDT, §4.11 UDTS, §4.18 XUDT,
    §4.19 XUDTS).

    UDT/XUDT carry ``protocol_class`` (0 or 1) and ``return_on_error``;
    UDTS/XUDTS carry ``return_cause`` instead. XUDT/XUDTS carry
    ``hop_counter`` and the optional ``segmentation`` / ``importance``.
    ``data`` is the user data (the TCAP message).
    """

    kind: SccpMessageType
    called: SccpAddress
    calling: SccpAddress
    data: bytes
    protocol_class: int = 0
    return_on_error: bool = False
    return_cause: int | None = None
    hop_counter: int | None = None
    segmentation: bytes | None = None
    importance: int | None = None

    def __repr__(self) -> str:
        return masked_repr(self, ("data",))


# -------------------------------------------------------------------------- TCAP


class TcapMessageType(IntEnum):
    """Q.773 §4.2 message types: the [APPLICATION n] tag octets."""

    UNIDIRECTIONAL = 0x61
    BEGIN = 0x62
    END = 0x64
    CONTINUE = 0x65
    ABORT = 0x67


class DialogueKind(StrEnum):
    """Q.773 §4.2.3 dialogue PDUs."""

    REQUEST = "AARQ"
    RESPONSE = "AARE"
    ABORT = "ABRT"
    UNIDIRECTIONAL = "AUDT"


@value
class Dialogue(NamedTuple):
    """The dialogue portion (Q.773 §4.2.3): the application context and, for an
    AARE, the result (0 accepted, 1 reject-permanent) and diagnostic
    ``(source, value)`` with source 1 = service user, 2 = service provider; for
    an ABRT the abort source (0 user, 1 provider). ``user_information`` is the
    raw content of the [30] field (MAP-OPEN etc.)."""

    kind: DialogueKind
    application_context: tuple[int, ...] | None = None
    protocol_version: bool = True
    result: int | None = None
    diagnostic: tuple[int, int] | None = None
    abort_source: int | None = None
    user_information: bytes | None = None

    def __repr__(self) -> str:
        return masked_repr(self, ("user_information",))


@value
class Invoke(NamedTuple):
    """An invoke component (Q.773 §3.2). Exactly one of ``opcode`` (local) and
    ``global_opcode`` (OID) is set. ``parameter`` is the argument's complete
    BER encoding (tag, length, contents) or None; ``argument`` its decoded MAP
    value when the codec knows the operation."""

    invoke_id: int
    opcode: int | None
    parameter: bytes | None = None
    argument: MapArgument | None = None
    linked_id: int | None = None
    global_opcode: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return masked_repr(self, ("parameter",))


@value
class ReturnResult(NamedTuple):
    """returnResultLast (``last`` True) or returnResultNotLast. ``opcode`` /
    ``parameter`` are None for an empty result (no SEQUENCE)."""

    invoke_id: int
    last: bool = True
    opcode: int | None = None
    parameter: bytes | None = None
    result: MapResult | None = None
    global_opcode: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return masked_repr(self, ("parameter",))


@value
class ReturnError(NamedTuple):
    """returnError: ``error_code`` local (TS 29.002 §17.6.6) or ``global_error``."""

    invoke_id: int
    error_code: int | None
    parameter: bytes | None = None
    global_error: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return masked_repr(self, ("parameter",))


@value
class Reject(NamedTuple):
    """reject: ``invoke_id`` None when the peer could not derive it (NULL);
    ``problem_type`` 0 general, 1 invoke, 2 return result, 3 return error."""

    invoke_id: int | None
    problem_type: int
    problem_code: int


Component = Invoke | ReturnResult | ReturnError | Reject


@value
class TcapMessage(NamedTuple):
    """A TCAP message (Q.773 §3.1). Transaction ids are the raw 1-4 octets.

    ``abort_cause`` is the P-AbortCause of a provider abort; a user abort
    carries a ``dialogue`` (ABRT, or an AARE with a reject result) instead.
    """

    kind: TcapMessageType
    otid: bytes | None = None
    dtid: bytes | None = None
    dialogue: Dialogue | None = None
    components: tuple[Component, ...] = ()
    abort_cause: int | None = None

    @property
    def application_context(self) -> tuple[int, ...] | None:
        return None if self.dialogue is None else self.dialogue.application_context


# ------------------------------------------------------------------------- stack


@value
class SignalingMessage(NamedTuple):
    """One M3UA DATA message decoded through SCCP and TCAP down to MAP.

    See the module docstring for how a policy engine reads it.
    """

    label: RoutingLabel
    sccp: Unitdata
    tcap: TcapMessage
    routing_context: int | None = None
    network_appearance: int | None = None
    correlation_id: int | None = None

    @property
    def calling(self) -> SccpAddress:
        return self.sccp.calling

    @property
    def called(self) -> SccpAddress:
        return self.sccp.called

    @property
    def calling_digits(self) -> str | None:
        """Calling party global title digits, or None (routed on PC/SSN)."""
        gt = self.sccp.calling.gt
        return None if gt is None else gt.digits

    @property
    def called_digits(self) -> str | None:
        """Called party global title digits, or None (routed on PC/SSN)."""
        gt = self.sccp.called.gt
        return None if gt is None else gt.digits

    @property
    def application_context(self) -> tuple[int, ...] | None:
        """The dialogue's application-context OID, or None without a dialogue."""
        dialogue = self.tcap.dialogue
        return None if dialogue is None else dialogue.application_context

    @property
    def invokes(self) -> tuple[Invoke, ...]:
        """The invoke components, in message order."""
        return tuple(c for c in self.tcap.components if isinstance(c, Invoke))

    @property
    def operation(self) -> int | None:
        """The local opcode of the first invoke (else of the first result
        that names one), or None: what "the operation" of this message is."""
        for c in self.tcap.components:
            if isinstance(c, Invoke | ReturnResult) and c.opcode is not None:
                return c.opcode
        return None

    @property
    def argument(self) -> MapArgument | None:
        """The decoded MAP argument of the first invoke, or None."""
        for c in self.tcap.components:
            if isinstance(c, Invoke):
                return c.argument
        return None
