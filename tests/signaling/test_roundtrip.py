"""Property tests: decode(encode(x)) == x for every layer's values."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings

from herald.signaling import decode, encode
from herald.signaling.m3ua import Framer, M3uaMessage, decode_m3ua, encode_m3ua
from herald.signaling.map_codec import decode_argument, encode_argument
from herald.signaling.map_types import MapArgument
from herald.signaling.message import GlobalTitle, SccpAddress, SignalingMessage, TcapMessage
from herald.signaling.sccp import MAX_HOP_COUNTER, decode_address, encode_address
from herald.signaling.tcap import decode_tcap, encode_tcap

from . import strategies as s

PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(s.sccp_addresses())
def test_sccp_address_round_trip(address: SccpAddress) -> None:
    assert decode_address(encode_address(address)) == address


@PROPERTY
@given(s.global_titles())
def test_global_title_digits_survive_odd_and_even(gt: GlobalTitle) -> None:
    from herald.signaling.message import RoutingIndicator

    address = SccpAddress(RoutingIndicator.GLOBAL_TITLE, gt=gt)
    decoded = decode_address(encode_address(address)).gt
    assert decoded is not None and decoded.digits == gt.digits


@PROPERTY
@given(s.map_arguments)
def test_map_argument_round_trip(arg: MapArgument) -> None:
    from herald.signaling import invoke

    op = 44 if type(arg).__name__ == "ForwardSmArg" else None
    canonical = invoke(1, arg, op).argument  # ForwardSmArg.tpdu is derived
    assert canonical is not None
    wire = encode_argument(canonical)
    opcode = 44 if op else invoke(1, arg).opcode
    assert opcode is not None
    assert decode_argument(opcode, wire, 0, len(wire)) == canonical


@PROPERTY
@given(s.tcap_messages())
def test_tcap_round_trip(message: TcapMessage) -> None:
    from herald.signaling.map_codec import decode_result
    from herald.signaling.tcap import parse_tcap

    wire = encode_tcap(message)
    assert parse_tcap(wire, 0, len(wire), decode_argument, decode_result) == message
    # Without the MAP decoders the same message comes back minus the MAP values.
    bare = decode_tcap(wire)
    assert (bare.kind, bare.otid, bare.dtid, bare.dialogue) == (
        message.kind, message.otid, message.dtid, message.dialogue)


@PROPERTY
@given(s.signaling_messages())
def test_whole_stack_round_trip(message: SignalingMessage) -> None:
    assume(len(message.sccp.data) <= 200)
    wire = encode(message)
    assert decode(wire) == message
    assert encode(decode(wire)) == wire


@PROPERTY
@given(s.m3ua_messages)
def test_m3ua_round_trip_and_framing(message: M3uaMessage) -> None:
    wire = encode_m3ua(message)
    assert len(wire) % 4 == 0
    assert decode_m3ua(wire) == message
    assert Framer().feed(wire + wire) == [wire, wire]


def test_hop_counter_default_is_the_maximum() -> None:
    # A fresh XUDT starts at the Q.713 maximum so it survives the longest path.
    assert MAX_HOP_COUNTER == 15
