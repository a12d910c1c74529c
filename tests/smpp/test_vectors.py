"""Annotated byte vectors, one or more per SMPP 3.4 PDU, hand-built from the
specification's field tables (SMPP 3.4 §4). Each is decoded whole, byte by
byte, and with trailing bytes, and re-encoded to the same octets."""

from __future__ import annotations

import pytest

from herald.smpp import codec
from herald.smpp.constants import CommandStatus, EsmType
from herald.smpp.pdus import (
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DistributionList,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    UnsuccessSme,
)
from herald.smpp.tlv import Tlv

from .wire import wire

RECEIPT_TEXT = (
    b"id:5f3a9c sub:001 dlvrd:001 submit date:2411250338 done date:2411250339"
    b" stat:DELIVRD err:000 text:Hello"
)

VECTORS: list[tuple[str, str, Pdu]] = [
    ("bind_transmitter", """
        00000023            # command_length 35
        00000002            # command_id bind_transmitter
        00000000            # command_status
        00000001            # sequence_number 1
        "herald" 00         # system_id
        "secret" 00         # password
        00                  # system_type ""
        34                  # interface_version 3.4
        00                  # addr_ton
        00                  # addr_npi
        00                  # address_range ""
     """, BindTransmitter(sequence_number=1, system_id="herald", password="secret")),
    ("bind_transmitter_resp", """
        0000001a 80000002 00000000 00000001   # header: 26 octets
        "SMSC" 00                             # system_id
        0210 0001 34                          # TLV sc_interface_version = 0x34
     """, BindTransmitterResp(sequence_number=1, system_id="SMSC",
                              tlvs=(Tlv(0x0210, b"\x34"),))),
    ("bind_receiver", """
        00000021 00000001 00000000 00000002   # header: 33 octets, seq 2
        "rx" 00                               # system_id
        "pw" 00                               # password
        "VMA" 00                              # system_type
        34 01 01                              # interface_version, addr_ton, addr_npi
        "^44" 00                              # address_range (a regular expression)
     """, BindReceiver(sequence_number=2, system_id="rx", password="pw", system_type="VMA",
                       addr_ton=1, addr_npi=1, address_range="^44")),
    ("bind_receiver_resp", """
        00000011 80000001 00000000 00000002   # header: 17 octets
        00                                    # system_id ""
     """, BindReceiverResp(sequence_number=2)),
    ("bind_transceiver, password longer than the spec's 8 characters", """
        00000026 00000009 00000000 00000003   # header: 38 octets
        "trx" 00                              # system_id
        "longpassword" 00                     # password: 12 characters (reference/smpp.md)
        00 34 00 00 00                        # system_type, version, ton, npi, address_range
     """, BindTransceiver(sequence_number=3, system_id="trx", password="longpassword")),
    ("bind_transceiver_resp with an error and the 1-octet body", """
        00000011 80000009 0000000e 00000003   # status ESME_RINVPASWD
        00                                    # system_id ""
     """, BindTransceiverResp(sequence_number=3,
                              command_status=CommandStatus.ESME_RINVPASWD)),
    ("outbind", """
        00000018 0000000b 00000000 00000004   # header: 24 octets
        "smsc" 00                             # system_id
        "pw" 00                               # password
     """, Outbind(sequence_number=4, system_id="smsc", password="pw")),
    ("unbind", "00000010 00000006 00000000 00000005", Unbind(sequence_number=5)),
    ("unbind_resp", "00000010 80000006 00000000 00000005", UnbindResp(sequence_number=5)),
    ("generic_nack", """
        00000010 80000000 00000003 00000006   # status ESME_RINVCMDID
     """, GenericNack(sequence_number=6, command_status=CommandStatus.ESME_RINVCMDID)),
    ("submit_sm", """
        00000038 00000004 00000000 00000007   # header: 56 octets
        00                                    # service_type ""
        05 00                                 # source_addr_ton alphanumeric, npi unknown
        "HERALD" 00                           # source_addr
        01 01                                 # dest_addr_ton international, npi ISDN
        "447700900123" 00                     # destination_addr
        00 00 00                              # esm_class, protocol_id, priority_flag
        00                                    # schedule_delivery_time ""
        00                                    # validity_period ""
        01                                    # registered_delivery: receipt always
        00 00 00                              # replace_if_present, data_coding, default_msg_id
        05 "Hello"                            # sm_length, short_message
     """, SubmitSm(sequence_number=7, source_addr_ton=5, source_addr="HERALD", dest_addr_ton=1,
                   dest_addr_npi=1, destination_addr="447700900123", registered_delivery=1,
                   short_message=b"Hello")),
    ("submit_sm_resp", """
        00000017 80000004 00000000 00000007   # header: 23 octets
        "5f3a9c" 00                           # message_id
     """, SubmitSmResp(sequence_number=7, message_id="5f3a9c")),
    ("submit_multi", """
        0000004e 00000021 00000000 00000008   # header: 78 octets
        00                                    # service_type
        05 00 "HERALD" 00                     # source ton, npi, addr
        02                                    # number_of_dests
        01 01 01 "447700900123" 00            # dest_flag SME, ton, npi, address
        02 "staff" 00                         # dest_flag distribution list, dl_name
        00 00 00                              # esm_class, protocol_id, priority_flag
        00                                    # schedule_delivery_time ""
        "000001000000000R" 00                 # validity_period: relative, 1 day
        00 00 00 00                           # registered_delivery .. sm_default_msg_id
        02 "hi"                               # sm_length, short_message
     """, SubmitMulti(sequence_number=8, source_addr_ton=5, source_addr="HERALD",
                      dest_addresses=(SmeAddress(1, 1, "447700900123"),
                                      DistributionList("staff")),
                      validity_period="000001000000000R", short_message=b"hi")),
    ("submit_multi_resp", """
        00000027 80000021 00000000 00000008   # header: 39 octets
        "m1" 00                               # message_id
        01                                    # no_unsuccess
        01 01 "447700900999" 00               # ton, npi, destination_addr
        0000000b                              # error_status_code ESME_RINVDSTADR
     """, SubmitMultiResp(sequence_number=8, message_id="m1",
                          unsuccess_smes=(UnsuccessSme(1, 1, "447700900999", 0x0B),))),
    ("deliver_sm carrying a delivery receipt", f"""
        000000b0 00000005 00000000 00000009   # header: 176 octets
        00                                    # service_type
        01 01 "447700900123" 00               # source: the handset
        05 00 "HERALD" 00                     # destination: the original sender
        04 00 00                              # esm_class: SMSC delivery receipt
        00 00 00 00 00 00                     # unused in deliver_sm (times, flags)
        67                                    # sm_length 103
        "{RECEIPT_TEXT.decode()}"
        001e 0007 "5f3a9c" 00                 # TLV receipted_message_id
        0427 0001 02                          # TLV message_state DELIVERED
        1401 0002 abcd                        # vendor TLV, kept as is
     """, DeliverSm(sequence_number=9, source_addr_ton=1, source_addr_npi=1,
                    source_addr="447700900123", dest_addr_ton=5, destination_addr="HERALD",
                    esm_class=EsmType.DELIVERY_RECEIPT, short_message=RECEIPT_TEXT,
                    tlvs=(Tlv(0x001E, b"5f3a9c\0"), Tlv(0x0427, b"\x02"),
                          Tlv(0x1401, b"\xab\xcd")))),
    ("deliver_sm_resp", """
        00000011 80000005 00000000 00000009   # header: 17 octets
        00                                    # message_id (unused, NULL)
     """, DeliverSmResp(sequence_number=9)),
    ("data_sm", """
        00000042 00000103 00000000 0000000a   # header: 66 octets
        "WAP" 00                              # service_type
        01 01 "447700900123" 00               # source
        01 01 "447700900999" 00               # destination
        00 01 04                              # esm_class, registered_delivery, data_coding
        0424 0003 010203                      # TLV message_payload
        020a 0002 0b84                        # TLV source_port 2948
     """, DataSm(sequence_number=10, service_type="WAP", source_addr_ton=1, source_addr_npi=1,
                 source_addr="447700900123", dest_addr_ton=1, dest_addr_npi=1,
                 destination_addr="447700900999", registered_delivery=1, data_coding=4,
                 tlvs=(Tlv(0x0424, b"\x01\x02\x03"), Tlv(0x020A, b"\x0b\x84")))),
    ("data_sm_resp", """
        0000001a 80000103 00000000 0000000a   # header: 26 octets
        "d1" 00                               # message_id
        0423 0003 03 0022                     # TLV network_error_code: GSM, 34
     """, DataSmResp(sequence_number=10, message_id="d1",
                     tlvs=(Tlv(0x0423, b"\x03\x00\x22"),))),
    ("query_sm", """
        00000020 00000003 00000000 0000000b   # header: 32 octets
        "5f3a9c" 00                           # message_id
        05 00 "HERALD" 00                     # source ton, npi, addr
     """, QuerySm(sequence_number=11, message_id="5f3a9c", source_addr_ton=5,
                  source_addr="HERALD")),
    ("query_sm_resp", """
        0000002a 80000003 00000000 0000000b   # header: 42 octets
        "5f3a9c" 00                           # message_id
        "241125033900000+" 00                 # final_date, absolute
        02 00                                 # message_state DELIVERED, error_code
     """, QuerySmResp(sequence_number=11, message_id="5f3a9c", final_date="241125033900000+",
                      message_state=2)),
    ("cancel_sm", """
        00000030 00000008 00000000 0000000c   # header: 48 octets
        00                                    # service_type
        "5f3a9c" 00                           # message_id
        05 00 "HERALD" 00                     # source
        01 01 "447700900123" 00               # destination
     """, CancelSm(sequence_number=12, message_id="5f3a9c", source_addr_ton=5,
                   source_addr="HERALD", dest_addr_ton=1, dest_addr_npi=1,
                   destination_addr="447700900123")),
    ("cancel_sm_resp", "00000010 80000008 00000000 0000000c", CancelSmResp(sequence_number=12)),
    ("replace_sm", """
        00000028 00000007 00000000 0000000d   # header: 40 octets
        "5f3a9c" 00                           # message_id
        05 00 "HERALD" 00                     # source
        00 00                                 # schedule_delivery_time, validity_period
        01 00                                 # registered_delivery, sm_default_msg_id
        03 "new"                              # sm_length, short_message
     """, ReplaceSm(sequence_number=13, message_id="5f3a9c", source_addr_ton=5,
                    source_addr="HERALD", registered_delivery=1, short_message=b"new")),
    ("replace_sm_resp", "00000010 80000007 00000000 0000000d",
     ReplaceSmResp(sequence_number=13)),
    ("enquire_link", "00000010 00000015 00000000 0000000e", EnquireLink(sequence_number=14)),
    ("enquire_link_resp", "00000010 80000015 00000000 0000000e",
     EnquireLinkResp(sequence_number=14)),
    ("alert_notification", """
        0000002d 00000102 00000000 0000000f   # header: 45 octets
        01 01 "447700900123" 00               # source: the handset now available
        05 00 "HERALD" 00                     # esme_addr
        0422 0001 00                          # TLV ms_availability_status: available
     """, AlertNotification(sequence_number=15, source_addr_ton=1, source_addr_npi=1,
                            source_addr="447700900123", esme_addr_ton=5, esme_addr="HERALD",
                            tlvs=(Tlv(0x0422, b"\x00"),))),
]

IDS = [name for name, _, _ in VECTORS]


def test_every_pdu_class_has_a_vector() -> None:
    from herald.smpp.pdus import PDU_CLASSES

    covered = {type(pdu) for _, _, pdu in VECTORS}
    assert covered == set(PDU_CLASSES.values())


@pytest.mark.parametrize(("name", "text", "pdu"), VECTORS, ids=IDS)
def test_decode_whole(name: str, text: str, pdu: Pdu) -> None:
    data = wire(text)
    assert codec.decode(data) == pdu


@pytest.mark.parametrize(("name", "text", "pdu"), VECTORS, ids=IDS)
def test_encode(name: str, text: str, pdu: Pdu) -> None:
    assert bytes(pdu) == wire(text)


@pytest.mark.parametrize(("name", "text", "pdu"), VECTORS, ids=IDS)
def test_stream_byte_by_byte(name: str, text: str, pdu: Pdu) -> None:
    data = wire(text)
    decoder = codec.PduDecoder()
    outcomes = []
    for i in range(len(data)):
        decoder.feed(data[i:i + 1])
        outcome = decoder.next_outcome()
        if outcome is not codec.NEED_DATA:
            outcomes.append((i, outcome))
    assert outcomes == [(len(data) - 1, pdu)]
    assert decoder.buffered == 0


@pytest.mark.parametrize(("name", "text", "pdu"), VECTORS, ids=IDS)
def test_stream_with_trailing_bytes(name: str, text: str, pdu: Pdu) -> None:
    data = wire(text)
    follower = bytes(EnquireLink(sequence_number=99))
    decoder = codec.PduDecoder()
    decoder.feed(data + follower[:7])  # the next PDU's first 7 octets
    assert decoder.next_outcome() == pdu
    assert decoder.next_outcome() is codec.NEED_DATA
    assert decoder.buffered == 7
    decoder.feed(follower[7:])
    assert decoder.next_outcome() == EnquireLink(sequence_number=99)
    assert decoder.next_outcome() is codec.NEED_DATA


def test_many_pdus_in_one_feed_come_out_in_order() -> None:
    decoder = codec.PduDecoder()
    decoder.feed(b"".join(wire(text) for _, text, _ in VECTORS))
    got = []
    for _ in range(len(VECTORS) + 1):
        outcome = decoder.next_outcome()
        if outcome is codec.NEED_DATA:
            break
        got.append(outcome)
    assert got == [pdu for _, _, pdu in VECTORS]
