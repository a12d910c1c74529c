"""Bytes to PDUs and back, sans I/O.

Parsing has four explicit outcomes (the ``Outcome`` union):

* ``NEED_DATA``: not a whole PDU yet; feed more bytes.
* a ``Pdu``: decoded.
* an ``UnparsedPdu``: the header was valid, the body was not (or the
  command_id is unknown). The stream is still in step: answer it with
  ``outcome.answer()`` (the right response class, or generic_nack, carrying
  ``outcome.error`` such as ESME_RINVMSGLEN, ESME_RINVOPTPARSTREAM,
  ESME_RINVCMDID) and carry on.
* a ``BrokenFraming``: command_length is below 16 or above the maximum, so the
  stream can no longer be split into PDUs. Fatal: send ``outcome.answer()``
  (generic_nack ESME_RINVCMDLEN), flush, close. The decoder keeps returning it.

Leniency, each for a bug seen in the wild (reference/smpp.md):

* a response with an empty body decodes with default field values (an ESME's
  16-octet deliver_sm_resp, an SMSC's body-less negative submit_sm_resp);
* a response with a non-zero command_status and a malformed body (a
  bind_transceiver_resp with a 1-octet body) decodes with default field
  values: it is an error to report, not a corrupt connection;
* passwords longer than the spec's 8 characters are accepted.

Use :class:`PduDecoder` on a byte stream (``feed`` then ``next_outcome`` until
``NEED_DATA``); :func:`decode` for one whole PDU; :func:`encode` (or
``bytes(pdu)``) to encode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from herald.smpp._wire import HEADER, Malformed
from herald.smpp.constants import RESPONSE_BIT, CommandStatus
from herald.smpp.errors import BufferLimitExceeded, FramingError, PduDecodeError
from herald.smpp.limits import HEADER_SIZE, MAX_BUFFERED_BYTES, MAX_PDU_SIZE
from herald.smpp.pdus import PDU_CLASSES, GenericNack, Pdu, Response

__all__ = [
    "NEED_DATA",
    "BrokenFraming",
    "NeedData",
    "Outcome",
    "PduDecoder",
    "UnparsedPdu",
    "decode",
    "decode_pdu",
    "encode",
]

S = CommandStatus


class NeedData:
    """Not a whole PDU yet. There is one instance, ``NEED_DATA``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True, slots=True)
class UnparsedPdu:
    """A PDU whose header was valid but whose body was not (or whose command_id
    is unknown). ``error`` is the command_status to answer with."""

    command_id: int
    command_status: int
    sequence_number: int
    command_length: int
    error: CommandStatus
    reason: str

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    def answer(self) -> Response | None:
        """What to send back: the request's response class with ``error``, a
        generic_nack for an unknown command_id or a request with no response
        class, or None for a response (responses are never answered)."""
        if self.is_response:
            return None
        cls = PDU_CLASSES.get(self.command_id)
        response_class = getattr(cls, "response_class", None)
        if response_class is None:
            return GenericNack(sequence_number=self.sequence_number, command_status=self.error)
        answer: Response = response_class(
            sequence_number=self.sequence_number, command_status=self.error
        )
        return answer


@dataclass(frozen=True, slots=True)
class BrokenFraming:
    """The stream cannot be split into PDUs any more. Fatal."""

    command_length: int
    reason: str
    #: the offending header's sequence_number, when 16 octets were there to read
    sequence_number: int | None = None
    error: CommandStatus = S.ESME_RINVCMDLEN

    def answer(self) -> GenericNack:
        """generic_nack ESME_RINVCMDLEN (SMPP 3.4 §4.3.1), to send before closing."""
        return GenericNack(sequence_number=self.sequence_number or 0, command_status=self.error)


Outcome = Pdu | UnparsedPdu | BrokenFraming | NeedData

_unpack_header = HEADER.unpack_from

# Dispatch table keyed by command_id: (class, generated decoder).
_DECODERS = {cid: (cls, cls._codec.decode) for cid, cls in PDU_CLASSES.items()}
_DECODE = {cid: cls._codec.decode for cid, cls in PDU_CLASSES.items()}


def decode_pdu(data: bytes, command_id: int, command_status: int,
               sequence_number: int) -> Pdu | UnparsedPdu:
    """Decode one whole PDU whose header has been read and checked (``data``
    includes the header). The building block of the other decoders."""
    entry = _DECODERS.get(command_id)
    if entry is None:
        return UnparsedPdu(command_id, command_status, sequence_number, len(data),
                           S.ESME_RINVCMDID, f"unknown command_id {command_id:#010x}")
    cls, decoder = entry
    try:
        pdu: Pdu = decoder(data, sequence_number, command_status)
        return pdu
    except Malformed as bad:
        if command_id & RESPONSE_BIT and (command_status or len(data) == HEADER_SIZE):
            lenient: Pdu = cls(sequence_number=sequence_number, command_status=command_status)
            return lenient
        return UnparsedPdu(command_id, command_status, sequence_number, len(data),
                           bad.status, str(bad))


def _check_length(length: int, max_pdu_size: int) -> str | None:
    if length < HEADER_SIZE:
        return f"command_length {length} is shorter than the 16-octet header"
    if length > max_pdu_size:
        return f"command_length {length} is over the {max_pdu_size}-octet maximum"
    return None


class PduDecoder:
    """Split a byte stream into PDUs: ``feed(data)``, then call
    ``next_outcome()`` until it returns ``NEED_DATA``.

    ``feed`` raises BufferLimitExceeded when more than ``max_buffered`` octets
    wait undecoded: pull outcomes between feeds.

    Fed chunks are kept as they are and joined only when a whole PDU (or a
    header) can be cut from them, so each octet is copied a bounded number of
    times however the stream is chunked (a 70 kB PDU fed one octet at a time
    is joined once, not 70 000 times).
    """

    __slots__ = ("_broken", "_buf", "_max_buffered", "_max_pdu_size", "_pos", "_tail",
                 "_tail_size")

    def __init__(self, max_pdu_size: int = MAX_PDU_SIZE,
                 max_buffered: int = MAX_BUFFERED_BYTES) -> None:
        if max_buffered < max_pdu_size:
            raise ValueError("max_buffered must hold at least one PDU of max_pdu_size")
        self._buf = b""  # joined input; what is unread starts at _pos
        self._pos = 0
        self._tail: list[bytes] = []  # chunks fed since the last join
        self._tail_size = 0
        self._max_pdu_size = max_pdu_size
        self._max_buffered = max_buffered
        self._broken: BrokenFraming | None = None

    @property
    def buffered(self) -> int:
        """Octets fed and not yet consumed by an outcome."""
        return len(self._buf) - self._pos + self._tail_size

    @property
    def max_buffered(self) -> int:
        return self._max_buffered

    def feed(self, data: bytes) -> None:
        size = self.buffered + len(data)
        if size > self._max_buffered:
            raise BufferLimitExceeded(
                f"{size} undecoded octets, the limit is {self._max_buffered}: pull outcomes "
                "before feeding more"
            )
        if data:
            self._tail.append(data if type(data) is bytes else bytes(data))
            self._tail_size += len(data)

    def _contiguous(self, size: int) -> bool:
        """Make ``size`` unread octets contiguous in ``_buf`` if they are here."""
        unread = len(self._buf) - self._pos
        if unread >= size:
            return True
        if unread + self._tail_size < size:
            return False
        self._buf = b"".join([self._buf[self._pos:], *self._tail])
        self._pos = 0
        self._tail.clear()
        self._tail_size = 0
        return True

    def next_outcome(self) -> Outcome:
        if self._broken is not None:
            return self._broken
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < HEADER_SIZE:
            if not self._contiguous(HEADER_SIZE):
                if self._contiguous(4):
                    # command_length alone can already be judged: reject a bad
                    # one now rather than wait for a header that may not come.
                    length = int.from_bytes(self._buf[self._pos:self._pos + 4], "big")
                    reason = _check_length(length, self._max_pdu_size)
                    if reason is not None:
                        self._broken = BrokenFraming(length, reason)
                        return self._broken
                return NEED_DATA
            buf = self._buf
            pos = self._pos
        length, command_id, status, seq = _unpack_header(buf, pos)
        if length < HEADER_SIZE or length > self._max_pdu_size:
            self._broken = BrokenFraming(
                length, _check_length(length, self._max_pdu_size) or "", seq
            )
            return self._broken
        if len(buf) - pos < length:
            if not self._contiguous(length):
                return NEED_DATA
            buf = self._buf
            pos = self._pos
        self._pos = pos + length
        data = buf if length == len(buf) else buf[pos:pos + length]
        decoder = _DECODE.get(command_id)
        if decoder is not None:
            try:
                pdu: Pdu = decoder(data, seq, status)
                return pdu
            except Malformed:
                pass  # decode_pdu says what, or decodes leniently
        return decode_pdu(data, command_id, status, seq)


def decode(data: bytes, max_pdu_size: int = MAX_PDU_SIZE) -> Pdu:
    """Decode exactly one whole PDU.

    Raises FramingError when ``data`` is not exactly one PDU (too short for its
    header or its command_length, trailing octets, command_length out of
    bounds) and PduDecodeError (``status`` = the error to answer with) when the
    body is bad.
    """
    size = len(data)
    try:
        length, command_id, status, seq = _unpack_header(data, 0)
    except struct.error:
        raise FramingError(f"{size} octets cannot hold a 16-octet header") from None
    if length != size or length > max_pdu_size:
        raise FramingError(
            _check_length(length, max_pdu_size)
            or f"command_length {length} but {size} octets given"
        )
    if type(data) is not bytes:
        data = bytes(data)  # the decoders slice it: slices must be bytes
    decoder = _DECODE.get(command_id)
    if decoder is not None:
        try:
            pdu: Pdu = decoder(data, seq, status)
            return pdu
        except Malformed:
            pass  # the slow path below says what, or decodes leniently
    outcome = decode_pdu(data, command_id, status, seq)
    if isinstance(outcome, UnparsedPdu):
        raise PduDecodeError(outcome.reason, outcome.error)
    return outcome


def encode(pdu: Pdu) -> bytes:
    """The PDU's wire form (same as ``bytes(pdu)``). Raises InvalidField when a
    field is over its limit."""
    return bytes(pdu)
