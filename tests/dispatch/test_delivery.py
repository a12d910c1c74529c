"""Dispatch end to end: claim, route, submit, correlate receipts (real SQLite, real sockets)."""

from __future__ import annotations

import pytest

from herald.dispatch import ErrorCode
from herald.smpp.constants import MessageState
from herald.smpp.message_id import IdPolicy
from herald.store import Status
from herald.text import Method, SmscDefault, gsm_encode

from .conftest import Rig, connector, eventually
from .upstream import Answer, Upstream, hex_then_decimal


async def test_messages_are_submitted_and_delivered_by_their_receipts(rig: Rig) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port)])  # type: ignore[union-attr]
    ids = await rig.send(20)
    await rig.wait_all(ids, Status.DELIVERED)
    assert len(up.submits) == 20
    first = up.submits[0].pdu
    assert (first.destination_addr, first.dest_addr_ton, first.dest_addr_npi) == (
        "447700900000", 1, 1,
    )  # fmt: skip
    assert (first.source_addr, first.source_addr_ton) == ("HERALD", 5)  # alphanumeric
    assert first.registered_delivery == 1  # a receipt on success or failure
    assert first.short_message == b"code 0" and first.data_coding == 0
    assert len(first.validity_period) == 16 and first.validity_period.endswith("000+")
    segments = await rig.store.get_segments(ids[0])
    assert [(s.connector, s.upstream_id, s.status) for s in segments] == [
        ("a", up.submits[0].upstream_id, Status.DELIVERED),
    ]
    message = await rig.get(ids[0])
    assert message.sent_at is not None and message.done_at is not None
    assert rig.counter("herald_upstream_submits_total", connector="a", outcome="ok") == 20
    # Ended by receipts, in the store's triggers: counted all the same (issue 8).
    assert rig.counter("herald_messages_final_total", status="delivered") == 20


async def test_a_destination_without_a_route_fails_permanently(rig: Rig) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port)], routes=[("44", ("a",))])  # type: ignore[union-attr]
    routed, unrouted = await rig.send(1), await rig.send(1, to="33612345678")
    await rig.wait_all(routed, Status.DELIVERED)
    await rig.wait_all(unrouted, Status.FAILED)
    failed = await rig.get(unrouted[0])
    assert (failed.error_code, failed.error_permanent) == (ErrorCode.NO_ROUTE, True)
    assert [s.pdu.destination_addr for s in up.submits] == ["447700900000"]
    assert rig.counter("herald_messages_final_total", status="failed") == 1


@pytest.mark.parametrize(
    ("policy", "delivered"),
    [(IdPolicy.HEX_TO_DEC, True), (IdPolicy.AS_IS, False)],
)
async def test_receipts_match_through_the_connectors_id_policy(
    rig: Rig, policy: IdPolicy, delivered: bool
) -> None:
    """The upstream answers ids in hex and quotes them in decimal in its receipts."""
    up = await rig.upstream(Upstream(ids=hex_then_decimal))
    await rig.dispatcher([connector("a", up.server.port, receipt_id_policy=policy)])  # type: ignore[union-attr]
    ids = await rig.send(3)
    await eventually(lambda: _acked(up, 3))
    await rig.wait_all(ids, Status.DELIVERED if delivered else Status.SENT)
    segment = (await rig.store.get_segments(ids[0]))[0]
    assert segment.upstream_id == up.submits[0].upstream_id  # raw, as the upstream wrote it
    if delivered:
        assert segment.upstream_key == str(int(segment.upstream_id, 16))


async def _acked(up: Upstream, n: int) -> bool:
    return up.receipts_acked >= n


async def test_a_receipt_that_beats_the_submit_response_still_delivers(rig: Rig) -> None:
    """The upstream writes the receipt and waits for its deliver_sm_resp (so herald
    has committed it) before it answers the submit_sm."""
    up = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(receipt_first=True)))
    await rig.dispatcher([connector("a", up.server.port)])  # type: ignore[union-attr]
    ids = await rig.send(5)
    await rig.wait_all(ids, Status.DELIVERED)
    assert up.receipts_acked == 5


async def test_out_of_order_receipts_never_move_a_final_status_back(rig: Rig) -> None:
    M = MessageState
    up = await rig.upstream(Upstream(
        decide=lambda pdu, n: Answer(receipts=(M.DELIVERED, M.ENROUTE, M.UNDELIVERABLE))))
    await rig.dispatcher([connector("a", up.server.port)])  # type: ignore[union-attr]
    ids = await rig.send(4)
    await eventually(lambda: _acked(up, 12))
    assert await rig.statuses(ids) == [Status.DELIVERED] * 4


async def test_an_undelivered_receipt_ends_the_message_with_its_error(rig: Rig) -> None:
    up = await rig.upstream(Upstream(
        decide=lambda pdu, n: Answer(receipts=(MessageState.ENROUTE, MessageState.UNDELIVERABLE))))
    await rig.dispatcher([connector("a", up.server.port)])  # type: ignore[union-attr]
    ids = await rig.send(1)
    await rig.wait_all(ids, Status.UNDELIVERED)


async def test_a_three_part_message_is_delivered_only_when_all_parts_are(rig: Rig) -> None:
    up = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(hold=True)))
    await rig.dispatcher([connector("a", up.server.port)])  # type: ignore[union-attr]
    text = "".join(chr(ord("a") + i % 26) for i in range(400))  # 400 septets: 3 x 153
    ids = await rig.send(1, body=text.encode(), segments=3)
    await rig.wait_all(ids, Status.SENT)
    udhs = [s.pdu.short_message[:6] for s in up.submits]
    assert [u[:5] for u in udhs] == [udhs[0][:5]] * 3  # one reference, total 3
    assert [u[5] for u in udhs] == [1, 2, 3] and udhs[0][4] == 3
    assert all(s.pdu.esm_class & 0x40 for s in up.submits)
    assert b"".join(s.pdu.short_message[6:] for s in up.submits) == text.encode()
    for released in (1, 2):
        up.release(1)
        await eventually(lambda: _acked(up, released))  # noqa: B023
        assert await rig.statuses(ids) == [Status.SENT]
    up.release(1)
    await rig.wait_all(ids, Status.DELIVERED)


@pytest.mark.parametrize(("method", "parts"), [(Method.UDH16, 3), (Method.PAYLOAD, 1)])
async def test_a_connector_that_splits_otherwise_records_its_own_part_count(
    rig: Rig, method: Method, parts: int
) -> None:
    """306 septets: intake counted 2 parts (UDH8); UDH16 needs 3, payload 1."""
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port, concatenation=method)])  # type: ignore[union-attr]
    ids = await rig.send(1, body=b"x" * 306, segments=2)
    await rig.wait_all(ids, Status.DELIVERED)
    assert len(up.submits) == parts
    message = await rig.get(ids[0])
    assert message.segments == parts
    assert len(await rig.store.get_segments(ids[0])) == parts


async def test_a_latin1_upstream_gets_latin1_text(rig: Rig) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port, smsc_default=SmscDefault.LATIN1)])  # type: ignore[union-attr]
    ids = await rig.send(1, body=gsm_encode("£10 off"))
    await rig.wait_all(ids, Status.DELIVERED)
    assert (up.submits[0].pdu.short_message, up.submits[0].pdu.data_coding) == (
        "£10 off".encode("latin-1"), 0)
