"""The SMS TPDU fields a signaling policy reads (3GPP TS 23.040 §9.2).

An MT-ForwardSM's sm-RP-UI is an SMS-DELIVER, an MO-ForwardSM's an
SMS-SUBMIT. The guard needs little of either: the originator (TP-OA) or
destination (TP-DA) address and TP-PID, whose value 0x40 (Short Message Type
0) marks the "silent SMS" used to ping a phone. :func:`decode_tpdu` checks the
lengths of everything up to and including TP-UD, so a TPDU that lies about
its size is refused (MapError: it arrived inside a MAP argument).
"""

from __future__ import annotations

from typing import Final

from herald.signaling._digits import decode_gsm7, decode_tbcd, encode_tbcd
from herald.signaling.errors import EncodeError, MapError
from herald.signaling.map_types import SmsTpdu, TpAddress

__all__ = [
    "MAX_TP_ADDRESS_DIGITS",
    "MAX_USER_DATA_OCTETS",
    "decode_tpdu",
    "encode_tpdu",
]

# Values are built with every field given to tuple.__new__ (see codec._new).
_new: Final = tuple.__new__

#: TS 23.040 §9.2.3.16: user data is at most 140 octets / 160 septets.
MAX_USER_DATA_OCTETS: Final = 140
#: TS 23.040 §9.1.2.5: an address field carries at most 20 semi-octets.
MAX_TP_ADDRESS_DIGITS: Final = 20


def _tp_address(raw: bytes, pos: int, base: int) -> tuple[TpAddress, int]:
    """TS 23.040 §9.1.2.5: length in semi-octets, type of address, value."""
    if pos + 2 > len(raw):
        raise MapError("TPDU truncated in an address", base + pos)
    count, toa = raw[pos], raw[pos + 1]
    if count > MAX_TP_ADDRESS_DIGITS:
        raise MapError(f"TP address of {count} semi-octets", base + pos)
    octets = (count + 1) // 2
    stop = pos + 2 + octets
    if stop > len(raw):
        raise MapError("TPDU truncated in an address", base + pos)
    value = raw[pos + 2 : stop]
    ton, npi = (toa >> 4) & 0x07, toa & 0x0F
    if ton == 5:  # alphanumeric, GSM 7-bit packed (§9.1.2.5)
        digits = decode_gsm7(value, count * 4 // 7)
    else:
        digits = decode_tbcd(value)
        if digits is not None and len(digits) != count:
            digits = None
    if digits is None:
        raise MapError("TP address value does not match its length", base + pos + 2)
    return _new(TpAddress, (digits, ton, npi)), stop


def _user_data_octets(dcs: int, udl: int) -> int:
    """Octets of TP-UD for TP-UDL ``udl`` under data coding scheme ``dcs``
    (TS 23.038 §4): septets for the GSM default alphabet, octets otherwise."""
    group = dcs >> 4
    if group <= 0x7:  # general data coding (00xx) and automatic deletion (01xx)
        septets = not dcs & 0x20 and (dcs >> 2) & 0x03 in (0, 3)
    elif group == 0xE:
        septets = False  # UCS2 message waiting
    elif group == 0xF:
        septets = not dcs & 0x04
    else:  # 1000-1011 reserved (treated as default alphabet), 1100-1101 GSM7 MWI
        septets = True
    return (udl * 7 + 7) // 8 if septets else udl


def decode_tpdu(raw: bytes, base: int = 0) -> SmsTpdu | None:
    """SMS-DELIVER / SMS-SUBMIT fields of sm-RP-UI; None for other TPDU types.

    Raises MapError when a DELIVER/SUBMIT is malformed (lengths inconsistent).
    """
    if not raw:
        raise MapError("empty sm-RP-UI", base)
    first = raw[0]
    mti = first & 0x03
    if mti == 0:  # SMS-DELIVER: first octet, TP-OA, PID, DCS, SCTS(7), UDL
        address, pos = _tp_address(raw, 1, base)
        tail = 2 + 7
    elif mti == 1:  # SMS-SUBMIT: first octet, MR, TP-DA, PID, DCS, VP, UDL
        address, pos = _tp_address(raw, 2, base)
        vpf = (first >> 3) & 0x03
        tail = 2 + (0, 7, 1, 7)[vpf]
    else:
        return None
    if pos + tail + 1 > len(raw):
        raise MapError("TPDU truncated before TP-UDL", base + len(raw))
    pid, dcs = raw[pos], raw[pos + 1]
    udl = raw[pos + tail]
    octets = _user_data_octets(dcs, udl)
    if octets > MAX_USER_DATA_OCTETS or pos + tail + 1 + octets != len(raw):
        raise MapError(f"TP-UDL {udl} does not match the {len(raw)}-octet TPDU", base + pos + tail)
    return _new(SmsTpdu, (mti, address, pid, dcs))


def encode_tpdu(
    tpdu: SmsTpdu, user_data: bytes = b"", udl: int | None = None,
    timestamp: bytes = bytes(7), message_reference: int = 0,
) -> bytes:
    """An SMS-DELIVER (mti 0) or SMS-SUBMIT (mti 1, no validity period) TPDU.

    ``udl`` defaults to ``len(user_data)`` (right for 8-bit/UCS2 data; pass the
    septet count for GSM 7-bit). TON 5 (alphanumeric) addresses are not encoded.
    """
    a = tpdu.address
    digits = encode_tbcd(a.digits)
    if digits is None or a.type_of_number == 5 or len(a.digits) > MAX_TP_ADDRESS_DIGITS:
        raise EncodeError("TP address must be up to 20 TBCD digits")
    address = bytes((len(a.digits), 0x80 | (a.type_of_number << 4) | a.numbering_plan)) + digits
    length = len(user_data) if udl is None else udl
    if _user_data_octets(tpdu.dcs, length) != len(user_data) or len(user_data) > 140:
        raise EncodeError("TP-UDL does not match the user data")
    if tpdu.mti == 0:
        if len(timestamp) != 7:
            raise EncodeError("TP-SCTS is 7 octets")
        return (bytes((0x04,)) + address + bytes((tpdu.pid, tpdu.dcs)) + timestamp
                + bytes((length,)) + user_data)
    if tpdu.mti == 1:
        return (bytes((0x01, message_reference & 0xFF)) + address
                + bytes((tpdu.pid, tpdu.dcs, length)) + user_data)
    raise EncodeError(f"TPDU type {tpdu.mti} is not encoded")
