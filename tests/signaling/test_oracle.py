"""pycrate (a general ASN.1 / protocol library) as the test oracle.

For every message of the scenario corpus and a sample of the big capture,
pycrate decodes M3UA -> SCCP -> TCAP/MAP on its own and must find the same
operation codes, application context, global titles, IMSIs and E.164 numbers
as herald's hand-written decoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pycrate_asn1dir import TCAP_MAPv2v3
from pycrate_mobile.M3UA import parse_M3UA
from pycrate_mobile.SCCP import parse_SCCP
from pycrate_mobile.TS24008_IE import decode_bcd
from pycrate_mobile.TS29002_MAPIE import AddressString as PyAddressString

from herald.guard.corpus import big_capture, build_corpus
from herald.signaling import decode
from herald.signaling.map_types import AddressString
from herald.signaling.message import Invoke, ReturnResult

from .samples import extra_messages
from .vectors import UL_M3UA

TCAP_MAP = TCAP_MAPv2v3.GLOBAL.MOD["TCAP-MAP-Messages"]["TCAP-MAP-Message"]
PROTOCOL_DATA_TAG = 0x0210
# MAP argument fields (TS 29.002 names, as pycrate keys them) holding an
# AddressString, and those holding an IMSI.
ADDRESS_FIELDS = {
    "msisdn", "serviceCentreAddress", "serviceCentreAddressOA", "serviceCentreAddressDA",
    "msc-Number", "vlr-Number", "gsmSCF-Address", "mlc-Number", "gmsc-OrGsmSCF-Address",
    "networkNode-Number", "hlr-Number", "ISDN-AddressString", "AddressString",
}
# (A v2 sendAuthenticationInfo argument *is* the IMSI: pycrate names it by type.)
IMSI_FIELDS = {"imsi", "IMSI", "SendAuthenticationInfoArg"}


def _gt_digits(address: Any) -> str | None:
    value = address["Value"]
    if value["AddrInd"]["GTInd"].get_val() == 0:
        return None
    gt = value["GT"].get_alt()
    digits = str(gt["Addr"].get_alt().decode())
    if gt["EncodingScheme"].get_val() == 1:  # BCD, odd: drop the filler
        digits = digits[:-1]
    return digits


def _walk(value: Any, name: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, name)
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        yield from _walk(value[1], value[0])
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], tuple):
        yield from _walk(value[1], value[0][1])  # (("Module", "Type"), value): by type
    else:
        yield name, value


def pycrate_view(data: bytes) -> dict[str, Any]:
    m3ua, err = parse_M3UA(data)
    assert not err
    (pd,) = [p["Val"] for p in m3ua[1] if p["Tag"].get_val() == PROTOCOL_DATA_TAG]
    sccp, err = parse_SCCP(pd["Data"].get_val())
    assert not err
    TCAP_MAP.from_ber(sccp["Data"]["Value"].get_val())
    kind, body = TCAP_MAP.get_val()
    opcodes: list[int] = []
    ac = None
    imsis: list[str] = []
    numbers: list[str] = []
    for name, leaf in _walk(body):
        if name == "application-context-name":
            ac = leaf
        elif name in IMSI_FIELDS and isinstance(leaf, bytes):
            imsis.append(decode_bcd(leaf))
        elif name in ADDRESS_FIELDS and isinstance(leaf, bytes):
            address = PyAddressString()
            address.from_bytes(leaf)
            if address["NumPlan"].get_val() == 1:
                numbers.append(str(address["Num"].get_alt().decode()))
    for component in body.get("components", []):
        _, (ctype, comp) = component
        if ctype == "invoke" and comp["opcode"][0] == "local":
            opcodes.append(comp["opcode"][1])
        elif ctype in ("returnResult", "returnResultLast", "returnResultNotLast"):
            result = comp.get("result")
            if result is not None and result["opcode"][0] == "local":
                opcodes.append(result["opcode"][1])
    return {
        "kind": kind,
        "calling": _gt_digits(sccp["CallingPartyAddr"]),
        "called": _gt_digits(sccp["CalledPartyAddr"]),
        "ac": ac,
        "opcodes": opcodes,
        "imsi": sorted(imsis),
        "e164": sorted(numbers),
    }


def herald_view(data: bytes) -> dict[str, Any]:
    msg = decode(data)
    opcodes: list[int] = []
    imsis: list[str] = []
    numbers: list[str] = []
    for c in msg.tcap.components:
        payload: Any = None
        if isinstance(c, Invoke):
            payload = c.argument
        elif isinstance(c, ReturnResult):
            payload = c.result
        if isinstance(c, Invoke | ReturnResult) and c.opcode is not None:
            opcodes.append(c.opcode)
        stack = [payload]
        while stack:  # a bounded walk over the decoded NamedTuples
            value = stack.pop()
            if isinstance(value, AddressString):
                if value.numbering_plan == 1:
                    numbers.append(value.digits)
            elif isinstance(value, tuple) and hasattr(value, "_fields"):
                for field in value._fields:
                    item = getattr(value, field)
                    if field == "imsi" and isinstance(item, str):
                        imsis.append(item)
                    elif field != "tpdu":  # TP-OA is not a MAP field for pycrate
                        stack.append(item)
    kind = {0x62: "begin", 0x64: "end", 0x65: "continue", 0x67: "abort", 0x61: "unidirectional"}
    return {
        "kind": kind[msg.tcap.kind],
        "calling": msg.calling_digits,
        "called": msg.called_digits,
        "ac": msg.application_context,
        "opcodes": opcodes,
        "imsi": sorted(imsis),
        "e164": sorted(numbers),
    }


def _messages() -> list[bytes]:
    return ([UL_M3UA] + extra_messages() + [m.data for m in build_corpus().messages]
            + [m.data for m in big_capture(2_000, seed=11).messages[::4]])


@pytest.mark.parametrize("data", _messages(), ids=lambda d: str(len(d)))
def test_pycrate_decodes_what_herald_decodes(data: bytes) -> None:
    assert herald_view(data) == pycrate_view(data)


def test_the_oracle_sees_the_identifiers() -> None:
    # The comparison is not vacuous: pycrate finds the IMSI and numbers itself.
    view = pycrate_view(UL_M3UA)
    assert view["imsi"] == ["001010123456789"]
    assert view["e164"] == ["2888000101", "2888000102"]
    assert view["opcodes"] == [2] and view["ac"] == (0, 4, 0, 0, 1, 0, 1, 3)
