"""The whole stack in one call: M3UA DATA bytes <-> :class:`SignalingMessage`.

:func:`decode` is the guard's hot path: it reads one buffer with offsets from
the M3UA header through SCCP and TCAP into the MAP argument, without copying
the inner layers' bytes more than once and without any generic ASN.1
machinery. :func:`encode` is its inverse, used for test fixtures, the corpus
and block responses (:func:`udts_response`).

What to do with each error: see :mod:`herald.signaling.errors`.
"""

from __future__ import annotations

from typing import Any, Final

from herald.signaling import _ber, m3ua, map_codec, sccp, tcap
from herald.signaling.errors import EncodeError, M3uaError, NotUserData, ReturnCause, SccpError
from herald.signaling.m3ua import Data, decode_m3ua, encode_m3ua, parse_data
from herald.signaling.map_codec import decode_argument, decode_result, encode_argument
from herald.signaling.map_types import OPCODES, MapArgument
from herald.signaling.message import (
    Invoke,
    RoutingLabel,
    SccpAddress,
    SccpMessageType,
    SignalingMessage,
    TcapMessage,
    Unitdata,
)
from herald.signaling.sccp import encode_unitdata, parse_unitdata, udts_for
from herald.signaling.tcap import encode_tcap, parse_tcap

__all__ = [
    "SI_SCCP",
    "build",
    "clear_caches",
    "decode",
    "encode",
    "invoke",
    "udts_response",
]

#: MTP3 service indicator for SCCP (Q.704 §14.2.1).
SI_SCCP: Final = 3

# Decoded values are NamedTuples built with every field given to
# tuple.__new__: their own __new__ is a Python function with defaults, which
# costs as much again (see herald.signaling.message).
_new: Final = tuple.__new__


def decode(data: bytes | bytearray | memoryview) -> SignalingMessage:
    """Decode one M3UA DATA message carrying SCCP/TCAP/MAP.

    Raises a :class:`~herald.signaling.errors.DecodeError` naming the layer and
    offset; :class:`~herald.signaling.errors.NotUserData` (not a fault) for a
    valid M3UA message that is not DATA.
    """
    buf = data if type(data) is bytes else bytes(data)
    try:
        label, start, stop, rc, na, corr = parse_data(buf)
    except M3uaError:
        if len(buf) < 4 or (buf[2] == 1 and buf[3] == 1):
            raise
        data_message = False
    else:
        data_message = True
    if not data_message:
        # Not Transfer/DATA: decode it fully (raises M3uaError if invalid).
        raise NotUserData(decode_m3ua(buf), "not a DATA message")
    if label.si != SI_SCCP:
        raise NotUserData(decode_m3ua(buf), f"service indicator {label.si} is not SCCP")
    sccp, d_s, d_e = parse_unitdata(buf, start, stop)
    tcap = parse_tcap(buf, d_s, d_e, decode_argument, decode_result)
    return _new(SignalingMessage, (label, sccp, tcap, rc, na, corr))


def clear_caches() -> None:
    """Forget everything the decoder memoises: routing labels, SCCP heads and
    addresses, dialogue portions, OIDs, MAP node addresses.

    The caches only save work: a message decodes to the same value, or fails
    with the same error, whether they are warm or cold
    (``tests/signaling/test_caches.py``). Call it to release their memory or
    to measure the decoder cold (``bench/guard.py`` does).
    """
    caches: tuple[dict[Any, Any], ...] = (
        _ber._OID_CACHE,
        m3ua._LABEL_CACHE,
        sccp._ADDRESS_CACHE,
        sccp._HEAD_CACHE,
        map_codec._ADDRESS_CACHE,
        map_codec._OA_CACHE,
        map_codec._AC_IS_MAP,
        *tcap._DIALOGUE_CACHES.values(),
    )
    for cache in caches:
        cache.clear()


def encode(message: SignalingMessage) -> bytes:
    """The M3UA DATA bytes of ``message``.

    The SCCP data is the encoding of ``message.tcap`` (``message.sccp.data`` is
    ignored), so a message built with :func:`build` or edited with
    ``_replace`` stays consistent. Raises EncodeError.
    """
    sccp = message.sccp._replace(data=encode_tcap(message.tcap))
    data = Data(message.label, encode_unitdata(sccp), message.routing_context,
                message.network_appearance, message.correlation_id)
    return encode_m3ua(data)


def build(
    label: RoutingLabel,
    called: SccpAddress,
    calling: SccpAddress,
    tcap: TcapMessage,
    *,
    kind: SccpMessageType = SccpMessageType.UDT,
    routing_context: int | None = None,
    return_on_error: bool = False,
) -> SignalingMessage:
    """A consistent :class:`SignalingMessage` (its SCCP data is the TCAP
    encoding), as :func:`decode` would return it for ``encode(result)``."""
    if kind not in (SccpMessageType.UDT, SccpMessageType.XUDT):
        raise EncodeError("build() makes UDT/XUDT; use udts_response for service messages")
    hop = 15 if kind is SccpMessageType.XUDT else None
    sccp = Unitdata(kind, called, calling, encode_tcap(tcap), 0, return_on_error,
                    hop_counter=hop)
    return SignalingMessage(label, sccp, tcap, routing_context)


def invoke(
    invoke_id: int,
    argument: MapArgument,
    opcode: int | None = None,
    linked_id: int | None = None,
) -> Invoke:
    """An invoke component carrying ``argument`` (encoded and kept decoded).

    ``opcode`` defaults to the argument class's only operation; it is required
    for ForwardSmArg (44 mt-ForwardSM or 46 forwardSM/mo-ForwardSM). The
    argument is stored as decoded from its encoding. Raises EncodeError, and
    MapError if ``argument`` encodes to something the decoder refuses.
    """
    codes = OPCODES[type(argument)]
    if opcode is None:
        if len(codes) != 1:
            raise EncodeError(f"{type(argument).__name__} needs an explicit opcode")
        opcode = codes[0]
    elif opcode not in codes:
        raise EncodeError(f"opcode {opcode} does not take a {type(argument).__name__}")
    parameter = encode_argument(argument)
    # Keep the argument as decode() would return it (e.g. ForwardSmArg.tpdu is
    # derived from user_data), so build() values compare equal to decoded ones.
    decoded = decode_argument(opcode, parameter, 0, len(parameter))
    return Invoke(invoke_id, opcode, parameter, decoded, linked_id)


def udts_response(
    data: bytes | bytearray | memoryview, cause: ReturnCause | int = ReturnCause.UNQUALIFIED
) -> bytes:
    """The M3UA DATA answering a refused UDT/XUDT with a UDTS/XUDTS.

    Q.714 §4.2: the service message goes back to the calling party with the
    original user data and the return cause; the routing label is reversed.
    Decodes only M3UA and SCCP, so it works on messages whose TCAP is broken.
    Raises SccpError when ``data`` is itself a service message (never answered)
    and M3uaError when it is not DATA.
    """
    buf = bytes(data)
    label, start, stop, rc, na, corr = parse_data(buf)
    sccp, _, _ = parse_unitdata(buf, start, stop)
    if sccp.kind in (SccpMessageType.UDTS, SccpMessageType.XUDTS):
        raise SccpError("a service message is never answered", start,
                        ReturnCause.ERROR_IN_LOCAL_PROCESSING)
    back = RoutingLabel(label.dpc, label.opc, label.si, label.ni, label.mp, label.sls)
    answer = udts_for(sccp, cause)
    return m3ua.encode_m3ua(Data(back, encode_unitdata(answer), rc, na, corr))
