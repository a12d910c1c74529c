"""tshark (Wireshark's dissectors, an independent implementation) reads the
generated captures exactly as herald's codec does, message by message and field
by field: operation codes, application context, calling/called global titles,
transaction ids, IMSIs, E.164 numbers, TP-OA and TP-PID. It also validates the
writer's SCTP CRC32c and IPv4 header checksums.

One tshark run per capture (its start-up dominates): ``-T fields`` with every
occurrence of each field, aggregated with commas.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from herald.guard.corpus import big_capture, build_corpus
from herald.guard.pcap import write_pcap
from herald.signaling import SignalingMessage, decode
from herald.signaling.map_types import AddressString, TpAddress
from herald.signaling.message import Invoke, ReturnError, ReturnResult
from peers import executable
from signaling.samples import extra_messages

pytestmark = pytest.mark.interop

FIELDS = {
    "frame": "frame.number",
    "sctp_checksum": "sctp.checksum.status",
    "ip_checksum": "ip.checksum.status",
    "sccp_type": "sccp.message_type",
    "calling": "sccp.calling.digits",
    "called": "sccp.called.digits",
    "otid": "tcap.otid",
    "dtid": "tcap.dtid",
    "ac": "tcap.application_context_name",
    "opcodes": "gsm_old.localValue",  # local operation and error codes
    "imsi": "e212.imsi",
    "e164": "e164.msisdn",
    "tp_oa": "gsm_sms.tp-oa",
    "tp_pid": "gsm_sms.tp-pid",
}
SEPARATOR = "|"
TIMEOUT_S = 120


def tshark_fields(capture: Path) -> list[dict[str, str]]:
    tshark = executable("tshark")
    command = [
        tshark, "-n", "-r", str(capture),
        "-o", "sctp.checksum:CRC-32C", "-o", "ip.check_checksum:TRUE",
        "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
        "-E", f"separator={SEPARATOR}",
    ]
    for field in FIELDS.values():
        command += ["-e", field]
    out = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        values = line.split(SEPARATOR)
        assert len(values) == len(FIELDS), line
        rows.append(dict(zip(FIELDS, values, strict=True)))
    return rows


def _walk(value: Any, name: str = "") -> Iterator[tuple[str, Any]]:
    """Every (field name, leaf value) under a decoded MAP value."""
    if isinstance(value, AddressString | TpAddress):
        yield name, value
    elif isinstance(value, tuple) and hasattr(value, "_fields"):
        for field in value._fields:
            yield from _walk(getattr(value, field), field)
    else:
        yield name, value


def herald_fields(msg: SignalingMessage) -> dict[str, str]:
    """The same fields as tshark would print them, from herald's decoded value."""
    opcodes: list[str] = []
    imsis: list[str] = []
    e164: list[str] = []
    tp_oa = tp_pid = ""
    for c in msg.tcap.components:
        payload: Any = None
        if isinstance(c, Invoke | ReturnResult) and c.opcode is not None:
            opcodes.append(str(c.opcode))
        elif isinstance(c, ReturnError) and c.error_code is not None:
            opcodes.append(str(c.error_code))  # tshark's localValue covers error codes too
        if isinstance(c, Invoke):
            payload = c.argument
        elif isinstance(c, ReturnResult):
            payload = c.result
        for name, leaf in _walk(payload):
            if name == "imsi" and leaf is not None:
                imsis.append(leaf)
            elif isinstance(leaf, AddressString) and leaf.numbering_plan == 1:
                e164.append(leaf.digits)
            elif isinstance(leaf, TpAddress) and leaf.numbering_plan == 1:
                e164.append(leaf.digits)
                # An SMS-SUBMIT's address is TP-DA, which tshark names so.
                tpdu = getattr(payload, "tpdu", None)
                if tpdu is None or tpdu.mti == 0:
                    tp_oa = leaf.digits
            elif name == "pid":
                tp_pid = str(leaf)
    ac = msg.application_context
    return {
        "sccp_type": f"0x{msg.sccp.kind:02x}",
        "calling": msg.calling_digits or "",
        "called": msg.called_digits or "",
        "otid": (msg.tcap.otid or b"").hex(),
        "dtid": (msg.tcap.dtid or b"").hex(),
        "ac": "" if ac is None else ".".join(map(str, ac)),
        "opcodes": ",".join(opcodes),
        "imsi": ",".join(sorted(imsis)),
        "e164": ",".join(sorted(e164)),
        "tp_oa": tp_oa,
        "tp_pid": tp_pid,
    }


def _normalise(row: dict[str, str]) -> dict[str, str]:
    # tshark prints transaction ids as colon-separated hex and lists in order of
    # appearance; herald's side sorts the identifier lists (order is compared
    # through the opcode list and the single-valued fields).
    out = dict(row)
    for key in ("otid", "dtid"):
        out[key] = out[key].replace(":", "")
    for key in ("imsi", "e164"):
        out[key] = ",".join(sorted(filter(None, out[key].split(","))))
    return out


def _agree(tmp: Path, name: str, records: list[tuple[float, bytes, bool]]) -> int:
    capture = tmp / f"{name}.pcap"
    write_pcap(capture, records)
    rows = tshark_fields(capture)
    assert len(rows) == len(records)
    compared = 0
    for (_, data, _), row in zip(records, rows, strict=True):
        theirs = _normalise(row)
        assert theirs["sctp_checksum"] == "1", f"frame {row['frame']}: bad SCTP checksum"
        assert theirs["ip_checksum"] == "1", f"frame {row['frame']}: bad IPv4 checksum"
        ours = herald_fields(decode(data))
        for key, value in ours.items():
            assert theirs[key] == value, f"frame {row['frame']} {key}: tshark {theirs[key]!r}"
            compared += 1
    return compared


def test_tshark_reads_the_scenario_corpus_like_herald(tmp_path: Path) -> None:
    corpus = build_corpus()
    records = [(m.timestamp, m.data, not m.inbound) for m in corpus.messages]
    compared = _agree(tmp_path, "corpus", records)
    assert compared == len(records) * 11


def test_tshark_reads_a_big_mixed_capture_like_herald(tmp_path: Path) -> None:
    big = big_capture(3_000, seed=3)
    records = [(m.timestamp, m.data, not m.inbound) for m in big.messages]
    assert _agree(tmp_path, "big", records) == len(records) * 11


def test_the_comparison_can_fail(tmp_path: Path) -> None:
    # Guard against a vacuous comparison: a corrupted herald view must differ.
    corpus = build_corpus()
    m = next(m for m in corpus.messages if decode(m.data).argument is not None)
    write_pcap(tmp_path / "one.pcap", [(m.timestamp, m.data)])
    (row,) = tshark_fields(tmp_path / "one.pcap")
    ours = herald_fields(decode(m.data))
    assert _normalise(row)["opcodes"] == ours["opcodes"] != ""
    assert _normalise(row)["calling"] != ours["calling"] + "1"


def test_tshark_reads_other_versions_and_shapes_like_herald(tmp_path: Path) -> None:
    records = [(1_700_000_000.0 + i, data, False) for i, data in enumerate(extra_messages())]
    assert _agree(tmp_path, "extras", records) == len(records) * 11
