"""Reading and writing captures of M3UA traffic (an adapter: file I/O only).

Reading: :func:`read_capture` takes a pcap (µs or ns timestamps, either byte
order) or pcapng file, or a raw stream of M3UA messages, and yields one
:class:`CaptureRecord` per M3UA message, in capture order:

- link layers: Ethernet (with 802.1Q/802.1ad tags), Linux cooked (SLL, SLL2),
  raw IP (LINKTYPE_RAW, IPV4, IPV6) and BSD loopback (NULL);
- network: IPv4 (non-first fragments skipped) and IPv6 (extension headers
  walked);
- transport: SCTP DATA chunks with payload protocol id 3 (M3UA, RFC 4666
  §1.4.8), fragmented user messages reassembled per stream; and M3UA over TCP,
  where each direction is a byte stream split by the common header's length
  (:class:`herald.signaling.m3ua.Framer`).

A raw file is a plain concatenation of M3UA messages (it starts with the M3UA
version octet 1); its records get timestamp 0.0.

Writing: :func:`write_pcap` writes M3UA messages as SCTP over IPv4 in Ethernet
frames, between addresses in the documentation ranges of RFC 5737 (never a
routable network), with valid SCTP CRC32c checksums (RFC 4960 App. B) so that
tshark and every SCTP dissector accept them.

Everything is bounded: records and packets are read one at a time; reassembly
buffers are capped by :data:`MAX_REASSEMBLY`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import BinaryIO, Final, TypeVar

from herald.signaling.errors import M3uaError
from herald.signaling.m3ua import HEADER_LENGTH, MAX_MESSAGE_LENGTH, Framer, message_length

__all__ = [
    "M3UA_PORT",
    "MAX_REASSEMBLY",
    "PPID_M3UA",
    "CaptureError",
    "CaptureRecord",
    "crc32c",
    "read_capture",
    "write_pcap",
]

#: SCTP payload protocol identifier for M3UA (RFC 4666 §1.4.8; IANA).
PPID_M3UA: Final = 3
#: The registered M3UA port (RFC 4666 §1.4.8).
M3UA_PORT: Final = 2905
#: Largest captured packet accepted (pcap snaplen of the usual 256 KiB).
MAX_PACKET: Final = 256 * 1024
#: Bytes held per SCTP stream or TCP direction while a message is incomplete;
#: a capture that would need more is corrupt (or hostile) and the flow resets.
MAX_REASSEMBLY: Final = 4 * MAX_MESSAGE_LENGTH
#: Flows tracked at once for reassembly; the oldest is dropped beyond this.
MAX_FLOWS: Final = 4096

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"

# LINKTYPE_* values (tcpdump.org/linktypes.html).
LINK_NULL, LINK_ETHERNET, LINK_RAW, LINK_SLL = 0, 1, 101, 113
LINK_IPV4, LINK_IPV6, LINK_SLL2 = 228, 229, 276
_ETH_IPV4, _ETH_IPV6, _ETH_VLAN, _ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
_PROTO_TCP, _PROTO_SCTP = 6, 132
_IPV6_EXTENSIONS = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44


_K = TypeVar("_K")
_V = TypeVar("_V")


class CaptureError(ValueError):
    """The file is not a capture herald can read (bad magic, truncated header).

    Malformed *packets* inside a readable capture are skipped, not raised.
    """


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One M3UA message from a capture.

    ``timestamp`` is seconds since the epoch as recorded; ``src``/``dst`` are
    ``"address:port"`` ('' for raw files); ``transport`` is ``"sctp"``,
    ``"tcp"`` or ``"raw"``; ``stream`` the SCTP stream id (0 otherwise);
    ``packet`` the 0-based packet number the message completed in.
    """

    timestamp: float
    #: Not in repr: the SS7 payload carries subscriber identities.
    data: bytes = field(repr=False)
    src: str = ""
    dst: str = ""
    transport: str = "raw"
    stream: int = 0
    packet: int = 0


# ---------------------------------------------------------------- containers


def read_capture(
    source: Path | str | bytes, damage: list[str] | None = None
) -> Iterator[CaptureRecord]:
    """Every M3UA message in the capture (a path, or the file's bytes).

    Raises CaptureError when the container itself cannot be read. A capture
    that stops being readable part way (a record whose length runs past the
    end of the file or beyond :data:`MAX_PACKET`, a cut-off last record, a
    broken pcapng block) yields what came before, and appends to ``damage``
    where and how much was not read: a scan that judged part of a capture must
    be able to say so (``herald guard scan`` exits non-zero).
    """
    if damage is None:
        damage = []
    if isinstance(source, bytes):
        yield from _read(source, damage)
        return
    data = Path(source).read_bytes()
    yield from _read(data, damage)


def _read(data: bytes, damage: list[str]) -> Iterator[CaptureRecord]:
    magic = data[:4]
    if magic in _PCAP_MAGIC:
        packets = _pcap_packets(data, damage)
    elif magic == _PCAPNG_SHB:
        packets = _pcapng_packets(data, damage)
    elif len(data) >= HEADER_LENGTH and data[0] == 1 and data[1] == 0:
        yield from _raw_records(data)
        return
    else:
        raise CaptureError("not a pcap, pcapng or raw M3UA file")
    flows = _Flows()
    for number, (ts, linktype, frame) in enumerate(packets):
        yield from flows.packet(number, ts, linktype, frame)


def _raw_records(data: bytes) -> Iterator[CaptureRecord]:
    framer = Framer()
    try:
        messages = framer.feed(data)
    except M3uaError as exc:
        raise CaptureError(f"raw M3UA stream: {exc}") from None
    if framer.buffered:
        raise CaptureError(f"raw M3UA stream ends inside a message ({framer.buffered} octets)")
    for i, message in enumerate(messages):
        yield CaptureRecord(0.0, message, packet=i)


def _pcap_packets(data: bytes, damage: list[str]) -> Iterator[tuple[float, int, bytes]]:
    order, unit = _PCAP_MAGIC[data[:4]]
    if len(data) < 24:
        raise CaptureError("truncated pcap header")
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    pos = 24
    number = 0
    while pos + 16 <= len(data):
        sec, frac, caplen, _origlen = record.unpack_from(data, pos)
        if caplen > MAX_PACKET or pos + 16 + caplen > len(data):
            damage.append(
                f"record {number} at offset {pos} claims {caplen} octets"
                f" ({'more than the file holds' if caplen <= MAX_PACKET else 'over the limit'}):"
                f" {len(data) - pos} octets from there on not read"
            )
            return
        pos += 16
        yield sec + frac * unit, linktype, data[pos : pos + caplen]
        pos += caplen
        number += 1
    if pos < len(data):
        damage.append(f"{len(data) - pos} octets after record {number - 1} are not a whole record")


def _pcapng_packets(data: bytes, damage: list[str]) -> Iterator[tuple[float, int, bytes]]:
    interfaces: list[tuple[int, float]] = []  # per section: (linktype, seconds per tick)
    order = "<"
    pos = 0
    while pos + 12 <= len(data):
        block_type = data[pos : pos + 4]
        if block_type == _PCAPNG_SHB:
            bom = data[pos + 8 : pos + 12]
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            if bom not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                raise CaptureError("pcapng section with a bad byte-order magic")
            interfaces = []
        (btype, length) = struct.unpack_from(order + "II", data, pos)
        if length < 12 or length % 4 or pos + length > len(data):
            if pos == 0:
                raise CaptureError("truncated pcapng header")
            damage.append(f"block at offset {pos} claims {length} octets: {len(data) - pos}"
                          " octets from there on not read")  # fmt: skip
            return
        body = data[pos + 8 : pos + length - 4]
        if btype == 1:  # Interface Description Block
            linktype = struct.unpack_from(order + "H", body, 0)[0]
            interfaces.append((linktype, _if_tsresol(body[8:], order)))
        elif btype == 6 and len(body) >= 20:  # Enhanced Packet Block
            iface, hi, lo, caplen = struct.unpack_from(order + "IIII", body, 0)
            if iface < len(interfaces) and caplen <= min(MAX_PACKET, len(body) - 20):
                linktype, unit = interfaces[iface]
                yield ((hi << 32) | lo) * unit, linktype, body[20 : 20 + caplen]
            else:
                damage.append(f"packet block at offset {pos} is unreadable (interface {iface},"
                              f" {caplen} octets captured in a {length}-octet block): skipped")
        elif btype == 3 and len(body) >= 4 and interfaces:  # Simple Packet Block
            linktype, _ = interfaces[0]
            yield 0.0, linktype, body[4:]
        pos += length
    if pos < len(data):
        damage.append(f"{len(data) - pos} octets at the end are not a whole block")


def _if_tsresol(options: bytes, order: str) -> float:
    """Seconds per timestamp tick from the IDB's if_tsresol option (default µs)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(order + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = options[pos + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        pos += 4 + length + (-length % 4)
    return 1e-6


# -------------------------------------------------------------- link and IP


def _network(linktype: int, frame: bytes) -> tuple[int, bytes] | None:
    """(ethertype, network-layer bytes) of a frame, or None."""
    if linktype == LINK_ETHERNET:
        if len(frame) < 14:
            return None
        ethertype = (frame[12] << 8) | frame[13]
        pos = 14
        while ethertype in (_ETH_VLAN, _ETH_QINQ) and pos + 4 <= len(frame):
            ethertype = (frame[pos + 2] << 8) | frame[pos + 3]
            pos += 4
        return ethertype, frame[pos:]
    if linktype == LINK_SLL:
        return (((frame[14] << 8) | frame[15]), frame[16:]) if len(frame) >= 16 else None
    if linktype == LINK_SLL2:
        return (((frame[0] << 8) | frame[1]), frame[20:]) if len(frame) >= 20 else None
    if linktype in (LINK_RAW, LINK_IPV4, LINK_IPV6):
        if not frame:
            return None
        return (_ETH_IPV4 if frame[0] >> 4 == 4 else _ETH_IPV6), frame
    if linktype == LINK_NULL and len(frame) >= 4:
        family = frame[0] if frame[0] else frame[3]  # host byte order of the writer
        return (_ETH_IPV4 if family == 2 else _ETH_IPV6), frame[4:]
    return None


def _transport(ethertype: int, packet: bytes) -> tuple[str, str, int, bytes] | None:
    """(source address, destination address, IP protocol, payload) or None."""
    if ethertype == _ETH_IPV4 and len(packet) >= 20 and packet[0] >> 4 == 4:
        ihl = (packet[0] & 0x0F) * 4
        total = (packet[2] << 8) | packet[3]
        if ihl < 20 or total < ihl or total > len(packet):
            return None
        if ((packet[6] & 0x1F) << 8) | packet[7]:
            return None  # a non-first fragment: no transport header here
        return (str(IPv4Address(packet[12:16])), str(IPv4Address(packet[16:20])), packet[9],
                packet[ihl:total])
    if ethertype == _ETH_IPV6 and len(packet) >= 40 and packet[0] >> 4 == 6:
        payload_length = (packet[4] << 8) | packet[5]
        end = 40 + payload_length
        if end > len(packet):
            return None
        nxt, pos = packet[6], 40
        for _ in range(8):  # a bounded walk over extension headers
            if nxt in _IPV6_EXTENSIONS and pos + 8 <= end:
                nxt, pos = packet[pos], pos + 8 + packet[pos + 1] * 8
            elif nxt == _IPV6_FRAGMENT and pos + 8 <= end:
                if ((packet[pos + 2] << 8) | packet[pos + 3]) & 0xFFF8:
                    return None
                nxt, pos = packet[pos], pos + 8
            else:
                break
        if pos > end:
            return None
        return (str(IPv6Address(packet[8:24])), str(IPv6Address(packet[24:40])), nxt,
                packet[pos:end])
    return None


# ------------------------------------------------------------- SCTP and TCP


class _Flows:
    """Reassembly state: SCTP fragments per (flow, stream), TCP byte streams."""

    def __init__(self) -> None:
        self._sctp: dict[tuple[str, str, int], bytearray] = {}
        self._tcp: dict[tuple[str, str], Framer] = {}

    def packet(self, number: int, ts: float, linktype: int, frame: bytes) -> Iterator[
            CaptureRecord]:
        net = _network(linktype, frame)
        if net is None:
            return
        t = _transport(*net)
        if t is None:
            return
        src_ip, dst_ip, proto, payload = t
        if proto == _PROTO_SCTP:
            yield from self._sctp_packet(number, ts, src_ip, dst_ip, payload)
        elif proto == _PROTO_TCP:
            yield from self._tcp_packet(number, ts, src_ip, dst_ip, payload)

    def _sctp_packet(self, number: int, ts: float, src_ip: str, dst_ip: str,
                     payload: bytes) -> Iterator[CaptureRecord]:
        if len(payload) < 12:
            return
        sport, dport = struct.unpack_from("!HH", payload, 0)
        src, dst = _endpoint(src_ip, sport), _endpoint(dst_ip, dport)
        pos = 12
        # RFC 4960 §3.2: chunks padded to 4 octets; each is >= 4 octets long.
        while pos + 4 <= len(payload):
            ctype, flags, length = struct.unpack_from("!BBH", payload, pos)
            if length < 4 or pos + length > len(payload):
                return
            if ctype == 0 and length >= 16:  # DATA (RFC 4960 §3.3.1)
                _tsn, stream, _ssn, ppid = struct.unpack_from("!IHHI", payload, pos + 4)
                if ppid == PPID_M3UA:
                    data = payload[pos + 16 : pos + length]
                    message = self._sctp_fragment((src, dst, stream), flags, data)
                    if message is not None:
                        yield CaptureRecord(ts, message, src, dst, "sctp", stream, number)
            pos += length + (-length % 4)

    def _sctp_fragment(self, key: tuple[str, str, int], flags: int, data: bytes) -> bytes | None:
        begin, end = bool(flags & 0x02), bool(flags & 0x01)
        if begin and end:
            self._sctp.pop(key, None)
            return data
        if begin:
            self._bounded(self._sctp)
            self._sctp[key] = bytearray(data)
            return None
        buffer = self._sctp.get(key)
        if buffer is None:
            return None  # a middle/last fragment whose first we never saw
        buffer += data
        if len(buffer) > MAX_REASSEMBLY:
            del self._sctp[key]
            return None
        if end:
            del self._sctp[key]
            return bytes(buffer)
        return None

    def _tcp_packet(self, number: int, ts: float, src_ip: str, dst_ip: str,
                    payload: bytes) -> Iterator[CaptureRecord]:
        if len(payload) < 20:
            return
        sport, dport = struct.unpack_from("!HH", payload, 0)
        offset = (payload[12] >> 4) * 4
        data = payload[offset:]
        if offset < 20 or not data:
            return
        src, dst = _endpoint(src_ip, sport), _endpoint(dst_ip, dport)
        key = (src, dst)
        framer = self._tcp.get(key)
        if framer is None:
            if not _looks_like_m3ua(data):
                return  # not (the start of) an M3UA stream
            self._bounded(self._tcp)
            framer = self._tcp[key] = Framer()
        try:
            messages = framer.feed(data)
        except M3uaError:
            del self._tcp[key]  # lost framing: resynchronise on a later header
            return
        for message in messages:
            yield CaptureRecord(ts, message, src, dst, "tcp", 0, number)

    @staticmethod
    def _bounded(table: dict[_K, _V]) -> None:
        if len(table) >= MAX_FLOWS:
            del table[next(iter(table))]


def _looks_like_m3ua(data: bytes) -> bool:
    if len(data) < HEADER_LENGTH:
        return False
    try:
        return message_length(data[:HEADER_LENGTH]) >= HEADER_LENGTH
    except M3uaError:
        return False


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# ------------------------------------------------------------------- writing

# RFC 4960 Appendix B / RFC 3309: CRC32c (Castagnoli), reflected polynomial.
_CRC32C_POLY: Final = 0x82F63B78


def _crc_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _CRC32C_POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC32c of ``data`` (RFC 3720 §B.4 check value: crc32c(b"123456789") ==
    0xE3069283)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


#: RFC 5737 documentation addresses: the writer's default endpoints.
DEFAULT_SRC: Final = ("192.0.2.10", M3UA_PORT)
DEFAULT_DST: Final = ("198.51.100.20", M3UA_PORT)
# Per direction (forward, reverse): the verification tag a packet carries is
# the receiver's, and each endpoint starts its own TSN space (RFC 4960 §5.1).
_VERIFICATION_TAGS: Final = {False: 0x48524C44, True: 0x444C5248}
_INITIAL_TSN: Final = {False: 1000, True: 5000}


def _sctp_packet(src: tuple[str, int], dst: tuple[str, int], tag: int, tsn: int, stream: int,
                 ssn: int, message: bytes) -> bytes:
    chunk_length = 16 + len(message)
    chunk = struct.pack("!BBHIHHI", 0, 0x03, chunk_length, tsn, stream, ssn, PPID_M3UA)
    chunk += message + b"\0" * (-chunk_length % 4)
    header = struct.pack("!HHII", src[1], dst[1], tag, 0)
    # RFC 4960 §6.8: the checksum covers the whole packet with the field zeroed,
    # and is written in network byte order as the little-endian CRC value.
    checksum = crc32c(header + chunk)
    return header[:8] + struct.pack("<I", checksum) + chunk


def _ipv4(src: str, dst: str, payload: bytes, ident: int) -> bytes:
    total = 20 + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0x4000, 64,
                         _PROTO_SCTP, 0, IPv4Address(src).packed, IPv4Address(dst).packed)
    s = sum(struct.unpack("!10H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return header[:10] + struct.pack("!H", ~s & 0xFFFF) + header[12:] + payload


def _ethernet(payload: bytes) -> bytes:
    # Locally administered unicast MACs (IEEE 802 U/L bit set): never real NICs.
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + payload


def write_pcap(
    destination: Path | str | BinaryIO,
    messages: Iterable[tuple[float, bytes] | tuple[float, bytes, bool]],
    *,
    src: tuple[str, int] = DEFAULT_SRC,
    dst: tuple[str, int] = DEFAULT_DST,
) -> int:
    """Write M3UA ``messages`` as one SCTP association in a pcap file.

    Each item is ``(timestamp, m3ua_bytes)`` or ``(timestamp, m3ua_bytes,
    reverse)``, where ``reverse`` sends it from ``dst`` to ``src``. Each
    message is one unfragmented DATA chunk on stream 0 (TSNs and stream
    sequence numbers count per direction). Returns the number written.
    """
    for address in (src[0], dst[0]):
        if not (IPv4Address(address).is_private or IPv4Address(address).is_reserved):
            raise ValueError(f"{address} is routable: captures use documentation addresses")
    out: BinaryIO
    close = False
    if isinstance(destination, (str, Path)):
        out = open(destination, "wb")  # noqa: SIM115 (closed below)
        close = True
    else:
        out = destination
    try:
        # pcap global header: µs timestamps, snaplen, LINKTYPE_ETHERNET.
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, MAX_PACKET, LINK_ETHERNET))
        tsn = dict(_INITIAL_TSN)
        ssn = {False: 0, True: 0}
        count = 0
        for ts, message, *rest in messages:
            reverse = bool(rest and rest[0])
            a, b = (dst, src) if reverse else (src, dst)
            sctp = _sctp_packet(a, b, _VERIFICATION_TAGS[reverse], tsn[reverse], 0, ssn[reverse],
                                message)
            tsn[reverse] += 1
            ssn[reverse] = (ssn[reverse] + 1) & 0xFFFF
            frame = _ethernet(_ipv4(a[0], b[0], sctp, count))
            sec = int(ts)
            usec = min(999_999, round((ts - sec) * 1e6))
            out.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            out.write(frame)
            count += 1
        return count
    finally:
        if close:
            out.close()
