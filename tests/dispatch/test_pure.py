"""Dispatch's pure parts: the token bucket and backoff as tables of ticks, the
status classes, and what a receipt PDU asks of the store."""

from __future__ import annotations

import math

import pytest

from herald.dispatch import (
    PERMANENT_STATUSES,
    THROTTLE_STATUSES,
    Backoff,
    DispatchSettings,
    ErrorCode,
    Outcome,
    TokenBucket,
    Upstream,
    after_query,
    classify,
    query_answer,
    query_pdu,
    receipt_updates,
)
from herald.dispatch._pace import UNLIMITED_TOKENS
from herald.smpp.constants import CommandStatus, MessageState
from herald.smpp.errors import ReceiptError
from herald.smpp.message_id import IdPolicy
from herald.smpp.pdus import DataSm, DeliverSm, GenericNack, QuerySm, QuerySmResp
from herald.smpp.tlv import MESSAGE_PAYLOAD, MESSAGE_STATE, NETWORK_ERROR_CODE, RECEIPTED_MESSAGE_ID
from herald.smpp.tlv import NetworkErrorCode as NetErr
from herald.store import CheckResult, ReceiptCheck, Status

S = CommandStatus


def test_a_new_bucket_holds_one_token_then_paces_at_its_rate() -> None:
    bucket = TokenBucket(10.0, now=100.0)
    assert bucket.take(100.0) == 0.0
    assert bucket.take(100.0) == pytest.approx(0.1)
    assert bucket.take(100.05) == pytest.approx(0.05)
    assert bucket.take(100.1) == 0.0


def test_an_unlimited_bucket_never_waits() -> None:
    bucket = TokenBucket(math.inf, now=0.0)
    assert all(bucket.take(0.0) == 0.0 for _ in range(10_000))
    assert bucket.available(0.0) == UNLIMITED_TOKENS


def test_a_late_wake_up_keeps_its_surplus_up_to_the_capacity() -> None:
    bucket = TokenBucket(10.0, now=0.0)  # capacity: max(2, 10 * 0.05) = 2 tokens
    assert bucket.capacity == 2.0
    bucket.take(0.0)
    assert bucket.take(0.15) == 0.0  # woke 50 ms late: 0.5 token kept...
    assert bucket.take(0.2) == 0.0  # ...so the next one is not delayed
    assert bucket.available(10.0) == 2  # idle: at most the capacity


@pytest.mark.parametrize("rate", [1.0, 37.0, 200.0, 5000.0])
def test_over_many_takes_the_rate_is_exact(rate: float) -> None:
    """Simulate a caller that sleeps exactly as told plus a 1 ms wake-up delay."""
    bucket = TokenBucket(rate, now=0.0)
    now, sent = 0.0, 0
    first = last = None
    for _ in range(20_000):  # bounded: enough for 2,000 sends at every rate here
        wait = bucket.take(now)
        if wait == 0.0:
            sent += 1
            first = now if first is None else first
            last = now
            if sent == 2000:
                break
        else:
            now += wait + 0.001
    assert sent == 2000 and first is not None and last is not None
    assert (sent - 1) / (last - first) == pytest.approx(rate, rel=0.01)


def test_a_bucket_needs_a_positive_rate_and_a_whole_token() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0.0, now=0.0)
    with pytest.raises(ValueError):
        TokenBucket(1.0, now=0.0, capacity=0.5)


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    b = Backoff(0.1, 1.0)
    assert [b.next() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    b.reset()
    assert b.next() == 0.1
    assert [Backoff.delay(n, 0.5, 5.0) for n in (0, 1, 2, 3, 5, 10_000)] == [
        0.5, 0.5, 1.0, 2.0, 5.0, 5.0]
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)


def test_statuses_fall_in_exactly_one_class() -> None:
    assert classify(S.ESME_ROK) is Outcome.OK
    assert {classify(s) for s in THROTTLE_STATUSES} == {Outcome.THROTTLED}
    assert {classify(s) for s in PERMANENT_STATUSES} == {Outcome.PERMANENT}
    assert not THROTTLE_STATUSES & PERMANENT_STATUSES
    for transient in (S.ESME_RSYSERR, S.ESME_RSUBMITFAIL, S.ESME_RX_T_APPN,
                      S.ESME_RUNKNOWNERR, 0x400, 0x4FF, 0x12345):
        assert classify(transient) is Outcome.TRANSIENT
    assert classify(S.ESME_RINVDSTADR) is Outcome.PERMANENT
    assert classify(S.ESME_RTHROTTLED) is Outcome.THROTTLED


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="lease"):
        DispatchSettings(lease=0)
    with pytest.raises(ValueError, match="retry_max"):
        DispatchSettings(retry_initial=2, retry_max=1)
    with pytest.raises(ValueError, match="max_claim"):
        DispatchSettings(max_claim=0)
    with pytest.raises(ValueError, match="query_attempts"):
        DispatchSettings(query_attempts=0)


def _receipt(**fields: object) -> DeliverSm:
    return DeliverSm(esm_class=0x04, **fields)  # type: ignore[arg-type]


def test_receipt_tlvs_win_over_the_text() -> None:
    pdu = _receipt(
        short_message=b"id:999 sub:001 dlvrd:000 stat:UNDELIV err:034 text:x",
        tlvs=(RECEIPTED_MESSAGE_ID("00FF"), MESSAGE_STATE(int(MessageState.DELIVERED))),
    )
    (update,) = receipt_updates(pdu, "a", IdPolicy.DEC_TO_HEX, now=5.0)  # receipt ids in hex
    assert (update.connector, update.upstream_key, update.status, update.at) == (
        "a", "255", Status.DELIVERED, 5.0)
    assert update.error_code is None  # delivered: no error


def test_receipt_text_alone_is_enough_and_its_error_is_kept() -> None:
    pdu = _receipt(short_message=b"id:12 sub:001 dlvrd:000 stat:UNDELIV err:034 text:x")
    (update,) = receipt_updates(pdu, "a", IdPolicy.AS_IS, now=1.0)
    assert (update.upstream_key, update.status, update.error_code) == ("12", Status.UNDELIVERED,
                                                                       34)
    pdu = _receipt(tlvs=(RECEIPTED_MESSAGE_ID("12"), MESSAGE_STATE(int(MessageState.REJECTED)),
                         NETWORK_ERROR_CODE(NetErr(3, 11))))
    assert receipt_updates(pdu, "a", IdPolicy.AS_IS, now=1.0)[0].error_code == 11


@pytest.mark.parametrize("state", [MessageState.ENROUTE, MessageState.ACCEPTED])
def test_non_final_receipts_ask_for_nothing(state: MessageState) -> None:
    pdu = _receipt(tlvs=(RECEIPTED_MESSAGE_ID("1"), MESSAGE_STATE(int(state))))
    assert receipt_updates(pdu, "a", IdPolicy.AS_IS, now=1.0) == ()


def test_data_sm_receipts_and_unreadable_ones() -> None:
    pdu = DataSm(esm_class=0x04, tlvs=(MESSAGE_PAYLOAD(b"id:7 stat:EXPIRED err:000"),))
    assert receipt_updates(pdu, "a", IdPolicy.AS_IS, now=1.0)[0].status is Status.EXPIRED
    with pytest.raises(ReceiptError):
        receipt_updates(_receipt(short_message=b"no receipt here"), "a", IdPolicy.AS_IS, 1.0)
    with pytest.raises(ReceiptError):
        receipt_updates(_receipt(short_message=b"id:" + b"9" * 80 + b" stat:DELIVRD"), "a",
                        IdPolicy.AS_IS, 1.0)


# -- query_sm for a part whose receipt is overdue ----------------------------------


@pytest.mark.parametrize(("state", "expected"), [
    (MessageState.DELIVERED, (Status.DELIVERED, None)),
    (MessageState.UNDELIVERABLE, (Status.UNDELIVERED, 1)),
    (MessageState.DELETED, (Status.UNDELIVERED, 1)),
    (MessageState.EXPIRED, (Status.EXPIRED, 1)),
    (MessageState.REJECTED, (Status.REJECTED, 1)),
    (MessageState.ENROUTE, None),
    (MessageState.ACCEPTED, None),
    (MessageState.UNKNOWN, None),  # the SMSC cannot tell: no information
])
def test_a_query_answer_is_read_as_a_receipt_with_that_state(
    state: MessageState, expected: tuple[Status, int | None] | None
) -> None:
    answer = QuerySmResp(message_id="7", message_state=state, error_code=1)
    assert query_answer(answer) == expected


def test_errors_and_strange_answers_say_nothing() -> None:
    assert query_answer(None) is None  # no answer
    assert query_answer(QuerySmResp(command_status=S.ESME_RQUERYFAIL)) is None
    assert query_answer(QuerySmResp(command_status=S.ESME_RINVMSGID)) is None
    assert query_answer(GenericNack(command_status=S.ESME_RINVCMDID)) is None
    assert query_answer(QuerySmResp(message_state=99)) is None  # not an SMPP 3.4 state
    assert query_answer(QuerySmResp(message_state=MessageState.UNDELIVERABLE)) == (
        Status.UNDELIVERED, None)  # error_code 0: none given


def test_after_a_query_the_part_ends_or_is_asked_again_until_the_last_attempt() -> None:
    first = ReceiptCheck("m1", 1, "a", "7F", "7f", "HERALD", 0, Status.SENT)
    last = ReceiptCheck("m1", 1, "a", "7F", "7f", "HERALD", 2, Status.SENT)
    delivered = QuerySmResp(message_state=MessageState.DELIVERED)
    enroute = QuerySmResp(message_state=MessageState.ENROUTE)
    assert after_query(first, delivered, 100.0, timeout=60, attempts=3) == CheckResult(
        "m1", 1, 100.0, Status.DELIVERED)
    assert after_query(first, enroute, 100.0, timeout=60, attempts=3) == CheckResult(
        "m1", 1, 100.0, check_at=160.0)
    assert after_query(last, None, 100.0, timeout=60, attempts=3) == CheckResult(
        "m1", 1, 100.0, Status.EXPIRED, ErrorCode.NO_RECEIPT)
    assert after_query(last, delivered, 100.0, timeout=60, attempts=3).status is Status.DELIVERED


def test_query_sm_names_the_source_address_as_the_submit_did() -> None:
    assert query_pdu("7F", "+447700900123", Upstream()) == QuerySm(
        message_id="7F", source_addr_ton=1, source_addr_npi=1, source_addr="447700900123")
    assert query_pdu("7F", "HERALD", Upstream()) == QuerySm(
        message_id="7F", source_addr_ton=5, source_addr_npi=0, source_addr="HERALD")
    assert query_pdu("7F", "HERALD", Upstream(source_ton=2, source_npi=9)) == QuerySm(
        message_id="7F", source_addr_ton=2, source_addr_npi=9, source_addr="HERALD")
