"""Optional parameters (TLVs), SMPP 3.4 §5.3.

Every PDU carries its TLVs as ``pdu.tlvs``, a tuple of raw :class:`Tlv` in wire
order. Decoding only checks the stream's structure (each TLV's length fits the
PDU, at most ``MAX_TLVS_PER_PDU`` of them); unknown tags (the vendor range
0x1400-0x3FFF and anything else) are kept and re-encoded byte for byte, in their
original order.

Each standard TLV is named here with its type and limits, and reads or builds
typed values::

    state = MESSAGE_STATE.get(pdu.tlvs)          # int | None
    msg_id = RECEIPTED_MESSAGE_ID.get(pdu.tlvs)  # str | None
    pdu = SubmitSm(..., tlvs=(MESSAGE_PAYLOAD(b"..."), SAR_MSG_REF_NUM(7)))

Reading a known TLV whose value breaks its definition raises
:class:`InvalidTlvValue` (its ``status`` is ESME_RINVPARLEN or
ESME_RINVOPTPARAMVAL): the check happens on read, so one malformed optional
field does not make a whole delivery receipt unreadable. Call
:func:`validate_tlvs` to check them all at once (an SMSC that wants to reject
such a submit_sm does).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from herald.smpp._wire import TL, Malformed
from herald.smpp.constants import CommandStatus, Tag
from herald.smpp.errors import InvalidField, InvalidTlvValue
from herald.smpp.limits import MAX_TLV_VALUE, MAX_TLVS_PER_PDU

__all__ = [
    "TLV_DEFS",
    "CStringTlv",
    "IntTlv",
    "NetworkErrorCode",
    "NetworkErrorCodeTlv",
    "OctetsTlv",
    "Tlv",
    "TlvDef",
    "pull_tlvs",
    "push_tlvs",
    "validate_tlvs",
]

V = TypeVar("V")

_INVPARLEN = CommandStatus.ESME_RINVPARLEN
_INVPARAMVAL = CommandStatus.ESME_RINVOPTPARAMVAL
_INVSTREAM = CommandStatus.ESME_RINVOPTPARSTREAM


@dataclass(frozen=True, slots=True)
class Tlv:
    """One optional parameter as it is on the wire: tag and raw value."""

    tag: int
    value: bytes

    def __bytes__(self) -> bytes:
        return TL.pack(self.tag, len(self.value)) + self.value

    @property
    def name(self) -> str:
        """The standard name (``message_payload``) or ``tlv_0x1401``."""
        known = TLV_DEFS.get(self.tag)
        return known.name if known is not None else f"tlv_0x{self.tag:04x}"


# pull_tlvs builds Tlv without __init__ (a frozen dataclass's costs an
# object.__setattr__ per field): it is on the hot path of every receipt.
_new = object.__new__
_set_tag = getattr(Tlv, "tag").__set__  # noqa: B009 - the slot descriptor, not a value
_set_value = getattr(Tlv, "value").__set__  # noqa: B009
_unpack_tl = TL.unpack_from


def pull_tlvs(buf: bytes, pos: int, end: int) -> tuple[Tlv, ...]:
    """Read the TLVs in ``buf[pos:end]``, the rest of a PDU body; ``end`` must
    be ``len(buf)`` (decoders hold exactly one PDU).

    Raises the internal ``Malformed`` (ESME_RINVOPTPARSTREAM) when a TLV runs
    past the PDU (never truncate silently: npm ``smpp`` does, reference/smpp.md)
    or when there are more than ``MAX_TLVS_PER_PDU``.
    """
    out: list[Tlv] = []
    if pos >= end:
        return ()
    try:
        for _ in range(MAX_TLVS_PER_PDU):
            tag, length = _unpack_tl(buf, pos)  # struct.error if < 4 octets are left
            pos += 4
            stop = pos + length
            if stop > end:
                raise Malformed(_INVSTREAM, f"tlv 0x{tag:04x}", "length runs past the PDU")
            tlv = _new(Tlv)
            _set_tag(tlv, tag)
            _set_value(tlv, buf[pos:stop])
            out.append(tlv)
            if stop == end:
                return tuple(out)
            pos = stop
    except struct.error:
        raise Malformed(_INVSTREAM, "tlvs", f"{end - pos} trailing octets, not a TLV") from None
    raise Malformed(_INVSTREAM, "tlvs", f"more than {MAX_TLVS_PER_PDU} TLVs")


def push_tlvs(tlvs: Iterable[Tlv]) -> bytes:
    """Encode TLVs in the given order. Raises InvalidField for a tag outside
    16 bits or a value over 65535 octets."""
    parts = []
    for tlv in tlvs:
        value = tlv.value
        if not 0 <= tlv.tag <= 0xFFFF:
            raise InvalidField("tlvs", f"tag {tlv.tag:#x} is not 16 bits", _INVSTREAM)
        if len(value) > MAX_TLV_VALUE:
            raise InvalidField(f"tlv 0x{tlv.tag:04x}", "value over 65535 octets", _INVPARLEN)
        parts.append(TL.pack(tlv.tag, len(value)))
        parts.append(value)
    return b"".join(parts)


class TlvDef(Generic[V]):
    """A standard TLV: its tag, its value's type and its length limits."""

    __slots__ = ("max_len", "min_len", "name", "tag")

    def __init__(self, tag: Tag, min_len: int, max_len: int) -> None:
        self.tag = tag
        self.name = tag.name.lower()
        self.min_len = min_len
        self.max_len = max_len

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} 0x{self.tag:04x}>"

    def decode(self, raw: bytes) -> V:
        """The typed value of ``raw``; InvalidTlvValue if it breaks the spec."""
        if not self.min_len <= len(raw) <= self.max_len:
            raise InvalidTlvValue(
                f"{self.name}: length {len(raw)}, expected {self.min_len}..{self.max_len}",
                _INVPARLEN,
            )
        return self._decode(raw)

    def encode(self, value: V) -> bytes:
        """The wire value of ``value``; InvalidField if it is out of limits."""
        raw = self._encode(value)
        if not self.min_len <= len(raw) <= self.max_len:
            raise InvalidField(
                self.name, f"length {len(raw)}, expected {self.min_len}..{self.max_len}",
                _INVPARLEN,
            )
        return raw

    def __call__(self, value: V) -> Tlv:
        """Build the TLV carrying ``value``."""
        return Tlv(self.tag, self.encode(value))

    def get(self, tlvs: Iterable[Tlv]) -> V | None:
        """The value of the first TLV with this tag, or None when absent."""
        tag = self.tag
        for tlv in tlvs:
            if tlv.tag == tag:
                return self.decode(tlv.value)
        return None

    def _decode(self, raw: bytes) -> V:
        raise NotImplementedError

    def _encode(self, value: V) -> bytes:
        raise NotImplementedError


class IntTlv(TlvDef[int]):
    """An unsigned big-endian integer of 1, 2 or 4 octets (SMPP 3.4 §3.1)."""

    __slots__ = ()

    def __init__(self, tag: Tag, size: int) -> None:
        super().__init__(tag, size, size)

    def _decode(self, raw: bytes) -> int:
        return int.from_bytes(raw, "big")

    def _encode(self, value: int) -> bytes:
        if not 0 <= value < 1 << (8 * self.max_len):
            raise InvalidField(self.name, f"{value} does not fit {self.max_len} octet(s)",
                               _INVPARAMVAL)
        return value.to_bytes(self.max_len, "big")


class CStringTlv(TlvDef[str]):
    """A NUL-terminated string; ``max_len`` counts the NUL, as the spec does.

    Decoding accepts a value without its terminating NUL (SMSCs send
    receipted_message_id that way) but not a NUL inside the text.
    """

    __slots__ = ()

    def __init__(self, tag: Tag, max_len: int) -> None:
        super().__init__(tag, 0, max_len)

    def _decode(self, raw: bytes) -> str:
        text = raw[:-1] if raw.endswith(b"\0") else raw
        if b"\0" in text:
            raise InvalidTlvValue(f"{self.name}: NUL inside the string", _INVPARAMVAL)
        return text.decode("latin-1")

    def _encode(self, value: str) -> bytes:
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidField(self.name, "not Latin-1 text", _INVPARAMVAL) from None
        if b"\0" in raw:
            raise InvalidField(self.name, "NUL inside the string", _INVPARAMVAL)
        return raw + b"\0"


class OctetsTlv(TlvDef[bytes]):
    """An octet string of ``min_len``..``max_len`` octets."""

    __slots__ = ()

    def _decode(self, raw: bytes) -> bytes:
        return raw

    def _encode(self, value: bytes) -> bytes:
        return bytes(value)


@dataclass(frozen=True, slots=True)
class NetworkErrorCode:
    """network_error_code (SMPP 3.4 §5.3.2.31): the network type (1 = ANSI-136,
    2 = IS-95, 3 = GSM, 4 = ANSI-41) and that network's error code."""

    network_type: int
    error_code: int


class NetworkErrorCodeTlv(TlvDef[NetworkErrorCode]):
    __slots__ = ()

    def __init__(self, tag: Tag) -> None:
        super().__init__(tag, 3, 3)

    def _decode(self, raw: bytes) -> NetworkErrorCode:
        return NetworkErrorCode(raw[0], int.from_bytes(raw[1:3], "big"))

    def _encode(self, value: NetworkErrorCode) -> bytes:
        if not (0 <= value.network_type <= 0xFF and 0 <= value.error_code <= 0xFFFF):
            raise InvalidField(self.name, f"{value} out of range", _INVPARAMVAL)
        return bytes((value.network_type,)) + value.error_code.to_bytes(2, "big")


# SMPP 3.4 §5.3.2, table 5-6: every standard TLV with its type and size.
DEST_ADDR_SUBUNIT = IntTlv(Tag.DEST_ADDR_SUBUNIT, 1)
DEST_NETWORK_TYPE = IntTlv(Tag.DEST_NETWORK_TYPE, 1)
DEST_BEARER_TYPE = IntTlv(Tag.DEST_BEARER_TYPE, 1)
DEST_TELEMATICS_ID = IntTlv(Tag.DEST_TELEMATICS_ID, 2)
SOURCE_ADDR_SUBUNIT = IntTlv(Tag.SOURCE_ADDR_SUBUNIT, 1)
SOURCE_NETWORK_TYPE = IntTlv(Tag.SOURCE_NETWORK_TYPE, 1)
SOURCE_BEARER_TYPE = IntTlv(Tag.SOURCE_BEARER_TYPE, 1)
SOURCE_TELEMATICS_ID = IntTlv(Tag.SOURCE_TELEMATICS_ID, 1)  # 1 octet in 3.4 (2 in 5.0)
QOS_TIME_TO_LIVE = IntTlv(Tag.QOS_TIME_TO_LIVE, 4)
PAYLOAD_TYPE = IntTlv(Tag.PAYLOAD_TYPE, 1)
ADDITIONAL_STATUS_INFO_TEXT = CStringTlv(Tag.ADDITIONAL_STATUS_INFO_TEXT, 256)
RECEIPTED_MESSAGE_ID = CStringTlv(Tag.RECEIPTED_MESSAGE_ID, 65)
MS_MSG_WAIT_FACILITIES = IntTlv(Tag.MS_MSG_WAIT_FACILITIES, 1)
PRIVACY_INDICATOR = IntTlv(Tag.PRIVACY_INDICATOR, 1)
SOURCE_SUBADDRESS = OctetsTlv(Tag.SOURCE_SUBADDRESS, 2, 23)
DEST_SUBADDRESS = OctetsTlv(Tag.DEST_SUBADDRESS, 2, 23)
USER_MESSAGE_REFERENCE = IntTlv(Tag.USER_MESSAGE_REFERENCE, 2)
USER_RESPONSE_CODE = IntTlv(Tag.USER_RESPONSE_CODE, 1)
SOURCE_PORT = IntTlv(Tag.SOURCE_PORT, 2)
DESTINATION_PORT = IntTlv(Tag.DESTINATION_PORT, 2)
SAR_MSG_REF_NUM = IntTlv(Tag.SAR_MSG_REF_NUM, 2)
LANGUAGE_INDICATOR = IntTlv(Tag.LANGUAGE_INDICATOR, 1)
SAR_TOTAL_SEGMENTS = IntTlv(Tag.SAR_TOTAL_SEGMENTS, 1)
SAR_SEGMENT_SEQNUM = IntTlv(Tag.SAR_SEGMENT_SEQNUM, 1)
SC_INTERFACE_VERSION = IntTlv(Tag.SC_INTERFACE_VERSION, 1)
CALLBACK_NUM_PRES_IND = IntTlv(Tag.CALLBACK_NUM_PRES_IND, 1)
CALLBACK_NUM_ATAG = OctetsTlv(Tag.CALLBACK_NUM_ATAG, 0, 65)  # data_coding + display text
NUMBER_OF_MESSAGES = IntTlv(Tag.NUMBER_OF_MESSAGES, 1)
CALLBACK_NUM = OctetsTlv(Tag.CALLBACK_NUM, 4, 19)  # digit mode, TON, NPI, digits
DPF_RESULT = IntTlv(Tag.DPF_RESULT, 1)
SET_DPF = IntTlv(Tag.SET_DPF, 1)
MS_AVAILABILITY_STATUS = IntTlv(Tag.MS_AVAILABILITY_STATUS, 1)
NETWORK_ERROR_CODE = NetworkErrorCodeTlv(Tag.NETWORK_ERROR_CODE)
MESSAGE_PAYLOAD = OctetsTlv(Tag.MESSAGE_PAYLOAD, 0, MAX_TLV_VALUE)
DELIVERY_FAILURE_REASON = IntTlv(Tag.DELIVERY_FAILURE_REASON, 1)
MORE_MESSAGES_TO_SEND = IntTlv(Tag.MORE_MESSAGES_TO_SEND, 1)
MESSAGE_STATE = IntTlv(Tag.MESSAGE_STATE, 1)
USSD_SERVICE_OP = IntTlv(Tag.USSD_SERVICE_OP, 1)
DISPLAY_TIME = IntTlv(Tag.DISPLAY_TIME, 1)
SMS_SIGNAL = IntTlv(Tag.SMS_SIGNAL, 2)
MS_VALIDITY = IntTlv(Tag.MS_VALIDITY, 1)
ALERT_ON_MESSAGE_DELIVERY = OctetsTlv(Tag.ALERT_ON_MESSAGE_DELIVERY, 0, 1)  # 0 in 3.4, 1 in 5.0
ITS_REPLY_TYPE = IntTlv(Tag.ITS_REPLY_TYPE, 1)
ITS_SESSION_INFO = OctetsTlv(Tag.ITS_SESSION_INFO, 2, 2)

TLV_DEFS: Mapping[int, TlvDef[Any]] = {
    d.tag: d for d in globals().values() if isinstance(d, TlvDef)
}
__all__ += sorted(d.name.upper() for d in TLV_DEFS.values())


def validate_tlvs(tlvs: Iterable[Tlv]) -> None:
    """Check every known TLV's value; raise the first InvalidTlvValue.
    Unknown tags pass (they are forwarded untouched)."""
    for tlv in tlvs:
        known = TLV_DEFS.get(tlv.tag)
        if known is not None:
            known.decode(tlv.value)
