"""Store contract: segments whose receipt is overdue (issue 8: receipts that never come).

``due_receipt_checks`` finds them through the ``check_at`` their record
carried; ``settle_receipt_checks`` ends them (the message follows, as it
does for receipts) or puts the next check later. Written against the
:class:`~herald.store.Store` protocol only.
"""

from __future__ import annotations

import dataclasses

import pytest

from herald.store import (
    Account,
    Channel,
    CheckResult,
    InvalidRecord,
    ReceiptUpdate,
    SegmentRecord,
    Status,
    Store,
)

from .conftest import T0, MessageFactory

NO_RECEIPT = 0x10005


def _segment(message_id: str, index: int = 0, *, at: float = T0,
             check_at: float | None = T0 + 60, key: str = "") -> SegmentRecord:
    key = key or f"{message_id[-6:]}.{index}"
    return SegmentRecord(message_id, index, "up1", key.upper(), key, at, check_at)


async def test_overdue_segments_are_found_longest_overdue_first(
    store: Store, make_message: MessageFactory
) -> None:
    late, later, young, answered, never = (make_message() for _ in range(5))
    await store.accept([late, later, young, answered, never])
    await store.record_segments([
        _segment(later.id, check_at=T0 + 20),
        _segment(late.id, check_at=T0 + 10),
        _segment(young.id, check_at=T0 + 500),
        _segment(answered.id, check_at=T0 + 5, key="answered"),
        _segment(never.id, check_at=None),  # no check asked for
    ])
    await store.apply_receipts([ReceiptUpdate("up1", "answered", Status.DELIVERED, T0 + 2)])
    due = await store.due_receipt_checks(T0 + 100, limit=10)
    assert [(c.message_id, c.index, c.checks, c.message_status) for c in due] == [
        (late.id, 0, 0, Status.SENT), (later.id, 0, 0, Status.SENT),
    ]  # fmt: skip
    first = due[0]
    assert (first.connector, first.sender) == ("up1", "ACME")
    assert first.upstream_id == first.upstream_key.upper()  # raw id, as the upstream gave it
    assert [c.message_id for c in await store.due_receipt_checks(T0 + 100, limit=1)] == [late.id]
    assert await store.due_receipt_checks(T0 + 9, limit=10) == ()
    await store.record_segments([
        SegmentRecord(young.id, 0, "up2", "Y2", "y2", T0 + 1, T0 + 15),  # resent via another
    ])
    due = await store.due_receipt_checks(T0 + 100, limit=10, exclude=["up1"])
    assert [(c.message_id, c.connector) for c in due] == [(young.id, "up2")]
    assert len(await store.due_receipt_checks(T0 + 100, limit=10, exclude=["up2", "up3"])) == 2


async def test_a_message_still_being_sent_is_not_checked_one_already_final_is(
    store: Store, make_message: MessageFactory
) -> None:
    partial, ended = make_message(segments=2), make_message(segments=2)
    await store.accept([partial, ended])
    await store.record_segments([
        _segment(partial.id, 0, check_at=T0 + 10),  # part 1 not accepted yet: may be resent
        _segment(ended.id, 0, check_at=T0 + 10, key="e0"),
        _segment(ended.id, 1, check_at=T0 + 10, key="e1"),
    ])
    await store.apply_receipts([ReceiptUpdate("up1", "e0", Status.UNDELIVERED, T0 + 5, 1)])
    due = await store.due_receipt_checks(T0 + 100, limit=10)
    assert [(c.message_id, c.index, c.message_status) for c in due] == [
        (ended.id, 1, Status.UNDELIVERED),
    ]


async def test_ending_a_segment_ends_its_message_with_the_usual_event(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await store.update_account(dataclasses.replace(account, callback_url="https://hooks.test/x"))
    one, two = make_message(), make_message(segments=2)
    await store.accept([one, two])
    await store.record_segments([
        _segment(one.id, key="one"),
        _segment(two.id, 0, key="two0"), _segment(two.id, 1, key="two1"),
    ])
    await store.apply_receipts([ReceiptUpdate("up1", "two0", Status.DELIVERED, T0 + 1)])
    await store.settle_receipt_checks([
        CheckResult(one.id, 0, T0 + 70, Status.EXPIRED, NO_RECEIPT),
        CheckResult(two.id, 1, T0 + 70, Status.DELIVERED),  # a query's answer
    ])
    got = await store.get_message(one.id)
    assert (got.status, got.error_code, got.done_at) == (Status.EXPIRED, NO_RECEIPT, T0 + 70)
    assert not got.error_permanent
    assert (await store.get_message(two.id)).status is Status.DELIVERED
    events = await store.claim_outbox(Channel.WEBHOOK, T0 + 100, lease=30, limit=10)
    assert sorted((e.subject_id, e.status) for e in events) == sorted(
        [(one.id, Status.EXPIRED), (two.id, Status.DELIVERED)])
    assert await store.due_receipt_checks(T0 + 1000, limit=10) == ()


async def test_a_receipt_after_the_ending_changes_nothing_and_is_not_parked(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.record_segments([_segment(new.id, key="k")])
    await store.settle_receipt_checks([CheckResult(new.id, 0, T0 + 70, Status.EXPIRED, NO_RECEIPT)])
    await store.apply_receipts([ReceiptUpdate("up1", "k", Status.DELIVERED, T0 + 80)])
    got = await store.get_message(new.id)
    assert (got.status, got.error_code, got.done_at) == (Status.EXPIRED, NO_RECEIPT, T0 + 70)
    (segment,) = await store.get_segments(new.id)
    assert (segment.status, segment.error_code) == (Status.EXPIRED, NO_RECEIPT)
    # Not parked: a later segment with the same key (an upstream reusing ids) is not hit.
    other = make_message()
    await store.accept([other])
    await store.record_segments([_segment(other.id, key="k", at=T0 + 90)])
    assert (await store.get_message(other.id)).status is Status.SENT


async def test_a_check_put_later_counts_and_comes_back_then(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.record_segments([_segment(new.id, check_at=T0 + 10)])
    await store.settle_receipt_checks([CheckResult(new.id, 0, T0 + 11, check_at=T0 + 300)])
    assert await store.due_receipt_checks(T0 + 299, limit=10) == ()
    (due,) = await store.due_receipt_checks(T0 + 300, limit=10)
    assert due.checks == 1
    assert (await store.get_message(new.id)).status is Status.SENT
    # Recorded again (a resend after a crash): a new upstream id, its checks start over.
    await store.record_segments([_segment(new.id, check_at=T0 + 400, key="again")])
    assert await store.due_receipt_checks(T0 + 399, limit=10) == ()
    (due,) = await store.due_receipt_checks(T0 + 400, limit=10)
    assert (due.checks, due.upstream_key) == (0, "again")


async def test_settling_a_segment_a_receipt_ended_meanwhile_changes_nothing(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.record_segments([_segment(new.id, key="k")])
    await store.apply_receipts([ReceiptUpdate("up1", "k", Status.DELIVERED, T0 + 65)])
    await store.settle_receipt_checks([
        CheckResult(new.id, 0, T0 + 70, Status.EXPIRED, NO_RECEIPT),
        CheckResult(new.id, 0, T0 + 70, check_at=T0 + 100),
    ])
    (segment,) = await store.get_segments(new.id)
    assert (segment.status, segment.updated_at) == (Status.DELIVERED, T0 + 65)
    assert (await store.get_message(new.id)).status is Status.DELIVERED


async def test_a_check_result_names_exactly_one_outcome() -> None:
    with pytest.raises(InvalidRecord, match="exactly one"):
        CheckResult("m", 0, T0)
    with pytest.raises(InvalidRecord, match="exactly one"):
        CheckResult("m", 0, T0, Status.EXPIRED, check_at=T0)
    with pytest.raises(InvalidRecord, match="not a final status"):
        CheckResult("m", 0, T0, Status.SENT)
