"""SIGTRAN / SS7 codecs: M3UA (RFC 4666), SCCP (Q.713), TCAP (Q.773), MAP (TS 29.002).

Pure core: no I/O, no clock. Start with :mod:`herald.signaling.message` (the
decoded value the policy engine reads) and :func:`decode`:

>>> msg = decode(m3ua_bytes)                       # doctest: +SKIP
>>> msg.calling_digits, msg.operation, msg.argument  # doctest: +SKIP

Modules: ``m3ua``, ``sccp``, ``tcap``, ``map_codec`` and ``sms`` (one layer
each, decoders and encoders), ``codec`` (the whole stack), ``message`` and ``map_types`` (the
values), ``map_ops`` (operation codes and application contexts), ``errors``
(typed failures carrying wire codes), ``privacy`` (masking and salted hashes).
"""

from herald.signaling.codec import build, decode, encode, invoke, udts_response
from herald.signaling.errors import (
    DecodeError,
    EncodeError,
    Layer,
    M3uaError,
    MapError,
    NotUserData,
    SccpError,
    SignalingError,
    TcapError,
)
from herald.signaling.message import SignalingMessage

__all__ = [
    "DecodeError",
    "EncodeError",
    "Layer",
    "M3uaError",
    "MapError",
    "NotUserData",
    "SccpError",
    "SignalingError",
    "SignalingMessage",
    "TcapError",
    "build",
    "decode",
    "encode",
    "invoke",
    "udts_response",
]
