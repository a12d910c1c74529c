"""herald.guard.pcap: reading every container/link/transport the guard accepts,
and writing captures that read back (tshark's view is in test_tshark.py).

Inputs other than the writer's own are built with dpkt and struct, so the
reader is checked against an independent encoder of the outer layers.
"""

from __future__ import annotations

import io
import itertools
import struct
from ipaddress import IPv6Address
from pathlib import Path

import dpkt
import pytest

from herald.guard.pcap import (
    PPID_M3UA,
    CaptureError,
    CaptureRecord,
    crc32c,
    read_capture,
    write_pcap,
)
from signaling.vectors import ASPUP, NTFY, UL_M3UA

SRC4, DST4 = "192.0.2.1", "192.0.2.2"
SRC6, DST6 = "2001:db8::1", "2001:db8::2"


def test_crc32c_check_values() -> None:
    # RFC 3720 §B.4 test vectors for CRC32c.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


def test_written_capture_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    items = [(1_700_000_000.25, UL_M3UA, False), (1_700_000_000.5, ASPUP, True),
             (1_700_000_001.0, NTFY, False)]
    assert write_pcap(path, items) == 3
    records = list(read_capture(path))
    assert [r.data for r in records] == [UL_M3UA, ASPUP, NTFY]
    assert [r.timestamp for r in records] == [t for t, _, _ in items]
    assert records[0].src == records[1].dst == "192.0.2.10:2905"
    assert records[0].dst == records[1].src == "198.51.100.20:2905"
    assert {r.transport for r in records} == {"sctp"}
    assert [r.packet for r in records] == [0, 1, 2]
    assert list(read_capture(path.read_bytes())) == records


def test_writer_refuses_routable_addresses(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_pcap(tmp_path / "x.pcap", [(0.0, UL_M3UA)], src=("8.8.8.8", 2905))


def _sctp(message: bytes, *, ppid: int = PPID_M3UA, flags: int = 0x03, stream: int = 1,
          extra_chunk: bool = False) -> bytes:
    """An SCTP packet (RFC 4960 §3) with one DATA chunk, built field by field."""
    chunk_len = 16 + len(message)
    data = struct.pack("!BBHIHHI", 0, flags, chunk_len, 7, stream, 0, ppid)
    data += message + bytes(-chunk_len % 4)
    if extra_chunk:  # a SACK before the DATA chunk (type 3), which must be skipped
        data = struct.pack("!BBHIIHH", 3, 0, 16, 6, 65535, 0, 0) + data
    packet = struct.pack("!HHII", 2905, 2906, 1, 0) + data
    return packet[:8] + struct.pack("<I", crc32c(packet)) + packet[12:]


def _ip4(payload: bytes, proto: int = 132) -> dpkt.ip.IP:
    ip = dpkt.ip.IP(src=bytes(map(int, SRC4.split("."))), dst=bytes(map(int, DST4.split("."))),
                    p=proto, ttl=64)
    ip.data = payload
    ip.len = 20 + len(payload)
    return ip


def _ip6(payload: bytes) -> dpkt.ip6.IP6:
    ip = dpkt.ip6.IP6(src=IPv6Address(SRC6).packed, dst=IPv6Address(DST6).packed, nxt=132,
                      hlim=64)
    ip.data = payload
    ip.plen = len(payload)
    return ip


def _pcap(frames: list[bytes], linktype: int, nano: bool = False) -> bytes:
    buf = io.BytesIO()
    writer = dpkt.pcap.Writer(buf, snaplen=65535, linktype=linktype, nano=nano)
    for i, frame in enumerate(frames):
        writer.writepkt(frame, ts=1_600_000_000 + i + 0.125)
    return buf.getvalue()


def _eth(ip: object, vlan: bool = False) -> bytes:
    eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x02\x00\x00\x00\x00\x09",
                                 type=0x0800 if isinstance(ip, dpkt.ip.IP) else 0x86DD, data=ip)
    raw = bytes(eth)
    if vlan:  # insert an 802.1Q tag (TPID 0x8100, VLAN 42)
        raw = raw[:12] + b"\x81\x00\x00\x2a" + raw[12:]
    return raw


def test_ethernet_vlan_ipv4_sctp() -> None:
    frames = [_eth(_ip4(_sctp(UL_M3UA, extra_chunk=True)), vlan=True),
              _eth(_ip4(_sctp(ASPUP)))]
    records = list(read_capture(_pcap(frames, 1)))
    assert [r.data for r in records] == [UL_M3UA, ASPUP]
    assert records[0].src == f"{SRC4}:2905" and records[0].dst == f"{DST4}:2906"
    assert records[0].stream == 1 and records[0].timestamp == pytest.approx(1_600_000_000.125)


def test_nanosecond_pcap_and_raw_ip_link() -> None:
    records = list(read_capture(_pcap([bytes(_ip4(_sctp(NTFY)))], 101, nano=True)))
    assert [r.data for r in records] == [NTFY]
    assert records[0].timestamp == pytest.approx(1_600_000_000.125)


def test_linux_cooked_ipv6_sctp() -> None:
    ip = bytes(_ip6(_sctp(UL_M3UA)))
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", 0x86DD) + ip
    sll2 = struct.pack("!HHIHBB8s", 0x86DD, 0, 1, 1, 0, 6, b"\x02" * 6 + b"\0\0") + ip
    for linktype, frame in ((113, sll), (276, sll2)):
        (record,) = read_capture(_pcap([frame], linktype))
        assert record.data == UL_M3UA
        assert record.src == f"[{SRC6}]:2905"


def test_sctp_fragments_are_reassembled_and_other_ppids_ignored() -> None:
    parts = [UL_M3UA[:50], UL_M3UA[50:100], UL_M3UA[100:]]
    frames = [
        _eth(_ip4(_sctp(parts[0], flags=0x02))),   # B
        _eth(_ip4(_sctp(ASPUP, ppid=46))),        # not M3UA (Diameter PPID)
        _eth(_ip4(_sctp(parts[1], flags=0x00))),   # middle
        _eth(_ip4(_sctp(parts[2], flags=0x01))),   # E
        _eth(_ip4(_sctp(parts[2], flags=0x01))),   # an E without its B: dropped
    ]
    records = list(read_capture(_pcap(frames, 1)))
    assert [(r.data, r.packet) for r in records] == [(UL_M3UA, 3)]


def _tcp(payload: bytes, seq: int) -> dpkt.tcp.TCP:
    return dpkt.tcp.TCP(sport=40000, dport=2905, seq=seq, flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
                        data=payload)


def test_m3ua_over_tcp_is_split_by_the_header_length() -> None:
    stream = UL_M3UA + ASPUP + NTFY
    cuts = [0, 30, 145, len(stream)]  # a message split over segments, two in one
    frames = [_eth(_ip4(bytes(_tcp(stream[a:b], 1 + a)), proto=6))
              for a, b in itertools.pairwise(cuts)]
    frames.insert(1, _eth(_ip4(bytes(_tcp(b"", 0)), proto=6)))  # a bare ACK
    records = list(read_capture(_pcap(frames, 1)))
    assert [r.data for r in records] == [UL_M3UA, ASPUP, NTFY]
    assert {r.transport for r in records} == {"tcp"}
    assert [r.packet for r in records] == [2, 3, 3]


def test_pcapng_with_dpkt_writer() -> None:
    buf = io.BytesIO()
    writer = dpkt.pcapng.Writer(buf, snaplen=65535, linktype=1)
    writer.writepkt(_eth(_ip4(_sctp(UL_M3UA))), ts=1_650_000_000.5)
    writer.writepkt(_eth(_ip4(_sctp(ASPUP))), ts=1_650_000_001.0)
    records = list(read_capture(buf.getvalue()))
    assert [r.data for r in records] == [UL_M3UA, ASPUP]
    assert records[0].timestamp == pytest.approx(1_650_000_000.5)


def test_malformed_packets_are_skipped_not_fatal() -> None:
    good = _eth(_ip4(_sctp(ASPUP)))
    frames = [good[:20], good[:40], b"", _eth(_ip4(b"\x00" * 5)), good]
    assert [r.data for r in read_capture(_pcap(frames, 1))] == [ASPUP]


def test_raw_m3ua_file(tmp_path: Path) -> None:
    path = tmp_path / "records.m3ua"
    path.write_bytes(UL_M3UA + ASPUP)
    assert list(read_capture(path)) == [CaptureRecord(0.0, UL_M3UA),
                                        CaptureRecord(0.0, ASPUP, packet=1)]
    with pytest.raises(CaptureError):
        list(read_capture(UL_M3UA + ASPUP[:10]))


@pytest.mark.parametrize("data", [b"", b"hello world, not a capture", b"\xd4\xc3\xb2\xa1\x02"])
def test_unreadable_containers_raise_capture_error(data: bytes) -> None:
    with pytest.raises(CaptureError):
        list(read_capture(data))


def test_damage_is_reported_not_swallowed() -> None:
    # A cut or corrupt capture yields what it can and says what it could not read
    # (herald guard scan then exits 3: issue 8 item 9).
    frames = [_eth(_ip4(_sctp(ASPUP)))] * 10
    data = _pcap(frames, 1)
    intact: list[str] = []
    assert len(list(read_capture(data, intact))) == 10 and intact == []
    for cut in (len(data) - 5, len(data) // 2):
        damage: list[str] = []
        assert len(list(read_capture(data[:cut], damage))) < 10
        assert len(damage) == 1, damage
    huge = bytearray(data)
    huge[24 + 8 : 24 + 12] = (0x7FFFFFFF).to_bytes(4, "little")  # record 0's captured length
    damage = []
    assert list(read_capture(bytes(huge), damage)) == []
    assert damage and "claims 2147483647 octets" in damage[0]
    buf = io.BytesIO()
    writer = dpkt.pcapng.Writer(buf, snaplen=65535, linktype=1)
    for n in range(4):
        writer.writepkt(_eth(_ip4(_sctp(ASPUP))), ts=1_650_000_000.0 + n)
    damage = []
    assert len(list(read_capture(buf.getvalue()[:-7], damage))) == 3
    assert len(damage) == 1 and "not read" in damage[0]
