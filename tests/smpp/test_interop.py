"""The codec against independent implementations, in-process (no sockets):
npm ``smpp`` 0.5 (through tests/smpp/npm_codec.js) and PyPI ``smpplib`` 2.2.4.
Each reads what herald writes and herald reads what each writes."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from herald.smpp import codec
from herald.smpp import tlv as T
from herald.smpp._codegen import field_specs
from herald.smpp._fields import Time
from herald.smpp.constants import CommandId, MessageState
from herald.smpp.constants import CommandStatus as S
from herald.smpp.pdus import (
    BindTransceiver,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    Pdu,
    QuerySm,
    SubmitSm,
    SubmitSmResp,
    Unbind,
)
from peers import executable, missing, node_smpp_dir

from .test_vectors import VECTORS

pytestmark = pytest.mark.interop

# npm smpp names the submit_multi lists after their structures
_NPM_NAMES = {"dest_addresses": "dest_address", "unsuccess_smes": "unsuccess_sme"}


def npm_codec(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = executable("node")
    smpp_dir = node_smpp_dir() / "node_modules" / "smpp"
    script = __file__.replace("test_interop.py", "npm_codec.js")
    lines = "".join(json.dumps(r) + "\n" for r in requests)
    done = subprocess.run([node, script, str(smpp_dir)], input=lines, capture_output=True,
                          text=True, timeout=60, check=True)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(requests), done.stderr
    return answers


def _npm_view(name: str, value: Any) -> Any:
    """herald's value as npm smpp shows it after JSON."""
    if name == "dest_addresses":
        return [{"dest_addr_ton": d.ton, "dest_addr_npi": d.npi, "destination_addr": d.address}
                if hasattr(d, "ton") else {"dl_name": d.name} for d in value]
    if name == "unsuccess_smes":
        return [{"dest_addr_ton": u.ton, "dest_addr_npi": u.npi,
                 "destination_addr": u.address, "error_status_code": u.error_status_code}
                for u in value]
    return value


def test_npm_smpp_reads_every_herald_vector() -> None:
    answers = npm_codec([{"op": "decode", "hex": bytes(pdu).hex()} for _, _, pdu in VECTORS])
    for (name, _, pdu), seen in zip(VECTORS, answers, strict=True):
        assert seen["command"] == CommandId(pdu.command_id).name.lower(), name
        assert (seen["sequence_number"], seen["command_status"]) == (
            pdu.sequence_number, pdu.command_status), name
        for field, spec in field_specs(type(pdu)):
            if isinstance(spec, Time) or field == "short_message":
                continue  # npm smpp turns times into Dates and text through its filters
            assert seen[_NPM_NAMES.get(field, field)] == _npm_view(field, getattr(pdu, field)), (
                name, field)


def test_herald_reads_what_npm_smpp_writes() -> None:
    requests: list[dict[str, Any]] = [
        {"op": "encode", "command": "bind_transceiver",
         "options": {"sequence_number": 1, "system_id": "acme", "password": "secret"}},
        {"op": "encode", "command": "submit_sm",
         "options": {"sequence_number": 2, "source_addr_ton": 5, "source_addr": "HERALD",
                     "destination_addr": "447700900123", "short_message": "Hello",
                     "registered_delivery": 1}},
        {"op": "encode", "command": "deliver_sm",
         "options": {"sequence_number": 3, "source_addr": "447700900123",
                     "destination_addr": "HERALD", "esm_class": 4,
                     "short_message": "id:5f3a9c sub:001 dlvrd:001 stat:DELIVRD err:000",
                     "receipted_message_id": "5f3a9c", "message_state": 2}},
        # npm smpp writes a negative response as a bare header
        {"op": "encode", "command": "submit_sm_resp",
         "options": {"sequence_number": 4, "command_status": int(S.ESME_RTHROTTLED)}},
        {"op": "encode", "command": "deliver_sm_resp", "options": {"sequence_number": 5}},
        {"op": "encode", "command": "enquire_link", "options": {"sequence_number": 6}},
    ]
    decoded = [codec.decode(bytes.fromhex(a["hex"])) for a in npm_codec(requests)]
    bind, submit, dlr, nack, dlr_resp, link = decoded
    assert isinstance(bind, BindTransceiver)
    assert (bind.system_id, bind.password, bind.sequence_number) == ("acme", "secret", 1)
    assert isinstance(submit, SubmitSm)
    assert (submit.source_addr, submit.destination_addr, submit.registered_delivery,
            submit.short_message) == ("HERALD", "447700900123", 1, b"Hello")
    assert isinstance(dlr, DeliverSm)
    assert dlr.tlv(T.RECEIPTED_MESSAGE_ID) == "5f3a9c"
    assert dlr.tlv(T.MESSAGE_STATE) == MessageState.DELIVERED
    assert nack == SubmitSmResp(sequence_number=4, command_status=S.ESME_RTHROTTLED)
    assert dlr_resp == DeliverSmResp(sequence_number=5)
    assert link == EnquireLink(sequence_number=6)


# ------------------------------------------------------------------ smpplib


@pytest.fixture
def smpplib_smpp() -> Any:
    try:
        from smpplib import smpp
    except ImportError:
        missing("smpplib", "scripts/bootstrap")
    return smpp


class _Client:
    """smpplib's PDUs take sequence numbers from their client."""

    sequence = 1

    @staticmethod
    def next_sequence() -> int:
        return 1


SMPPLIB_CASES: list[tuple[str, dict[str, Any], Pdu]] = [
    ("bind_transceiver", {"system_id": "acme", "password": "secret"},
     BindTransceiver(sequence_number=1, system_id="acme", password="secret")),
    ("submit_sm", {"source_addr_ton": 5, "source_addr": "HERALD", "dest_addr_ton": 1,
                   "dest_addr_npi": 1, "destination_addr": "447700900123",
                   "registered_delivery": 1, "short_message": b"Hello"},
     SubmitSm(sequence_number=1, source_addr_ton=5, source_addr="HERALD", dest_addr_ton=1,
              dest_addr_npi=1, destination_addr="447700900123", registered_delivery=1,
              short_message=b"Hello")),
    ("submit_sm_resp", {"message_id": "5f3a9c"},
     SubmitSmResp(sequence_number=1, message_id="5f3a9c")),
    ("deliver_sm", {"source_addr": "447700900123", "destination_addr": "HERALD",
                    "esm_class": 4, "short_message": b"id:5f3a9c stat:DELIVRD",
                    "receipted_message_id": "5f3a9c", "message_state": 2},
     DeliverSm(sequence_number=1, source_addr="447700900123", destination_addr="HERALD",
               esm_class=4, short_message=b"id:5f3a9c stat:DELIVRD",
               tlvs=(T.MESSAGE_STATE(2), T.RECEIPTED_MESSAGE_ID("5f3a9c")))),
    ("query_sm", {"message_id": "5f3a9c", "source_addr": "HERALD"},
     QuerySm(sequence_number=1, message_id="5f3a9c", source_addr="HERALD")),
    ("enquire_link", {}, EnquireLink(sequence_number=1)),
    ("unbind", {}, Unbind(sequence_number=1)),
]


@pytest.mark.parametrize(("command", "fields", "pdu"), SMPPLIB_CASES,
                         ids=[c for c, _, _ in SMPPLIB_CASES])
def test_smpplib_and_herald_write_the_same_octets(smpplib_smpp: Any, command: str,
                                                 fields: dict[str, Any], pdu: Pdu) -> None:
    theirs = smpplib_smpp.make_pdu(command, client=_Client, sequence=1, **fields).generate()
    assert codec.decode(theirs) == pdu
    assert bytes(pdu) == theirs
    parsed = smpplib_smpp.parse_pdu(bytes(pdu), client=_Client)
    for key, value in fields.items():
        got = getattr(parsed, key)
        assert (got.decode() if isinstance(got, bytes) and isinstance(value, str) else got) == (
            value), key
