"""Store contract: the batch methods dispatch uses, and re-splitting a claimed message.

``record_segments``, ``apply_receipts``, ``update_statuses`` and
``reschedule_many`` must behave exactly like their one-at-a-time versions;
``set_segments`` changes a claimed message's segment count. Written against
the :class:`~herald.store.Store` protocol only.
"""

from __future__ import annotations

import pytest

from herald.store import (
    InvalidRecord,
    ReceiptUpdate,
    Reschedule,
    SegmentRecord,
    Status,
    StatusUpdate,
    Store,
)

from .conftest import T0, MessageFactory


async def test_record_segments_marks_each_message_sent_when_complete(
    store: Store, make_message: MessageFactory
) -> None:
    two, one = make_message(segments=2), make_message()
    await store.accept([two, one])
    await store.record_segments([
        SegmentRecord(two.id, 0, "up1", "A0", "a0", T0 + 1),
        SegmentRecord(one.id, 0, "up1", "B0", "b0", T0 + 2),
    ])
    assert (await store.get_message(two.id)).status is Status.ACCEPTED  # one part missing
    got = await store.get_message(one.id)
    assert (got.status, got.sent_at) == (Status.SENT, T0 + 2)
    await store.record_segments([SegmentRecord(two.id, 1, "up1", "A1", "a1", T0 + 3)])
    got = await store.get_message(two.id)
    assert (got.status, got.sent_at) == (Status.SENT, T0 + 3)
    segments = await store.get_segments(two.id)
    assert [(s.index, s.upstream_id, s.upstream_key) for s in segments] == [
        (0, "A0", "a0"), (1, "A1", "a1"),
    ]  # fmt: skip


async def test_record_segments_refuses_a_bad_row_before_writing_any(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    with pytest.raises(InvalidRecord) as info:
        await store.record_segments([
            SegmentRecord(new.id, 0, "up1", "A0", "a0", T0),
            SegmentRecord(new.id, 0, "up1", "x" * 66, "a0", T0),
        ])
    assert info.value.field == "upstream_id"
    assert await store.get_segments(new.id) == ()


async def test_apply_receipts_delivers_parks_and_skips_non_final(
    store: Store, make_message: MessageFactory
) -> None:
    early, late = make_message(), make_message()
    await store.accept([early, late])
    await store.record_segments([SegmentRecord(early.id, 0, "up1", "E", "e", T0)])
    await store.apply_receipts([
        ReceiptUpdate("up1", "e", Status.DELIVERED, T0 + 1),
        ReceiptUpdate("up1", "l", Status.SENT, T0 + 1),
        ReceiptUpdate("up1", "l", Status.UNDELIVERED, T0 + 2, error_code=27),
    ])
    assert (await store.get_message(early.id)).status is Status.DELIVERED
    # The receipt for "l" beat its segment: parked, applied when it is recorded.
    await store.record_segments([SegmentRecord(late.id, 0, "up1", "L", "l", T0 + 3)])
    got = await store.get_message(late.id)
    assert (got.status, got.error_code) == (Status.UNDELIVERED, 27)


async def test_update_statuses_follows_the_monotonic_rules(
    store: Store, make_message: MessageFactory
) -> None:
    a, b, c = make_message(), make_message(), make_message()
    await store.accept([a, b, c])
    await store.update_statuses([
        StatusUpdate(a.id, Status.QUEUED, T0 + 1),
        StatusUpdate(b.id, Status.FAILED, T0 + 1, error_code=0x10001, permanent=True),
        StatusUpdate(c.id, Status.SENT, T0 + 1),
    ])
    await store.update_statuses([
        StatusUpdate(b.id, Status.DELIVERED, T0 + 2),  # b is final already
        StatusUpdate(c.id, Status.QUEUED, T0 + 2),  # backwards: ignored
    ])
    got = {m: await store.get_message(m) for m in (a.id, b.id, c.id)}
    assert got[a.id].status is Status.QUEUED
    assert (got[b.id].status, got[b.id].error_code, got[b.id].error_permanent) == (
        Status.FAILED, 0x10001, True,
    )  # fmt: skip
    assert (got[c.id].status, got[c.id].sent_at) == (Status.SENT, T0 + 1)
    with pytest.raises(InvalidRecord):
        await store.update_statuses([StatusUpdate(a.id, Status.ACCEPTED, T0)])


async def test_reschedule_many_releases_and_extends_only_current_claims(
    store: Store, make_message: MessageFactory
) -> None:
    a, b = make_message(), make_message()
    await store.accept([a, b])
    claimed = {m.id: m for m in await store.claim(10, T0 + 10, lease=30)}
    assert set(claimed) == {a.id, b.id}
    await store.reschedule_many([
        Reschedule(a.id, claimed[a.id].attempt, T0 + 10),  # give back now
        Reschedule(b.id, claimed[b.id].attempt, T0 + 100),  # extend the lease
        Reschedule(b.id, claimed[b.id].attempt - 1, T0 + 10),  # a stale claim: ignored
    ])
    assert [m.id for m in await store.claim(10, T0 + 11, lease=1000)] == [a.id]
    assert await store.claim(10, T0 + 99, lease=30) == ()
    assert [m.id for m in await store.claim(10, T0 + 100, lease=30)] == [b.id]


async def test_only_failed_hand_backs_count_as_tries(
    store: Store, make_message: MessageFactory
) -> None:
    """``attempt`` counts claims (the lease token); ``tries`` only the claims a
    hand-back marks ``failed`` (throttling or a full queue are no failure)."""
    new = make_message()
    await store.accept([new])
    now = T0 + 10
    for failed in (False, True, False, True, True):
        (m,) = await store.claim(1, now, lease=30)
        await store.reschedule_many([Reschedule(m.id, m.attempt, now, failed)])
        await store.reschedule_many([Reschedule(m.id, m.attempt - 1, now, True)])  # stale
        now += 1
    got = await store.get_message(new.id)
    assert (got.attempt, got.tries) == (5, 3)
    (m,) = await store.claim(1, now, lease=30)
    assert (m.attempt, m.tries) == (6, 3)  # the claim reads back what is stored


async def test_set_segments_resizes_the_current_claim_only(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message(segments=2)
    await store.accept([new])
    (claimed,) = await store.claim(1, T0 + 10, lease=30)
    assert not await store.set_segments(new.id, claimed.attempt + 1, 3)
    assert await store.set_segments(new.id, claimed.attempt, 3)
    assert (await store.get_message(new.id)).segments == 3
    await store.record_segments([
        SegmentRecord(new.id, i, "up1", f"X{i}", f"x{i}", T0 + 11) for i in range(2)
    ])
    assert (await store.get_message(new.id)).status is Status.QUEUED  # 2 of 3
    await store.record_segments([SegmentRecord(new.id, 2, "up1", "X2", "x2", T0 + 12)])
    assert (await store.get_message(new.id)).status is Status.SENT
    assert not await store.set_segments(new.id, claimed.attempt, 1)  # sent: too late
    with pytest.raises(InvalidRecord):
        await store.set_segments(new.id, claimed.attempt, 0)


async def test_set_segments_forgets_parts_of_an_earlier_split(
    store: Store, make_message: MessageFactory
) -> None:
    """A message split in 3 on one connector, then in 1 (payload) on another."""
    new = make_message(segments=3)
    await store.accept([new])
    (claimed,) = await store.claim(1, T0 + 10, lease=30)
    await store.record_segments([
        SegmentRecord(new.id, i, "up1", f"X{i}", f"x{i}", T0 + 11) for i in (1, 2)
    ])
    await store.apply_receipts([ReceiptUpdate("up1", "x1", Status.DELIVERED, T0 + 12)])
    assert await store.set_segments(new.id, claimed.attempt, 1)
    assert await store.get_segments(new.id) == ()
    await store.record_segments([SegmentRecord(new.id, 0, "up2", "Y", "y", T0 + 13)])
    assert (await store.get_message(new.id)).status is Status.SENT
    await store.apply_receipts([ReceiptUpdate("up2", "y", Status.DELIVERED, T0 + 14)])
    got = await store.get_message(new.id)
    assert (got.status, got.segments, got.done_at) == (Status.DELIVERED, 1, T0 + 14)


async def test_expire_unsent_ends_unclaimed_messages_past_their_validity(
    store: Store, make_message: MessageFactory
) -> None:
    old = make_message(accepted_at=T0, expires_at=T0 + 10)
    leased = make_message(accepted_at=T0, expires_at=T0 + 10)
    young = make_message(accepted_at=T0, expires_at=T0 + 100)
    test = make_message(accepted_at=T0, expires_at=T0 + 10, test=True)
    sent = make_message(accepted_at=T0, expires_at=T0 + 10)
    await store.accept([old, leased, young, test, sent])
    await store.update_statuses([StatusUpdate(sent.id, Status.SENT, T0 + 1)])
    claimed = await store.claim(10, T0 + 5, lease=1000)
    assert {m.id for m in claimed} == {old.id, leased.id, young.id}
    await store.reschedule_many([Reschedule(m.id, m.attempt, T0 + 5)
                                 for m in claimed if m.id != leased.id])
    assert await store.expire_unsent(T0 + 20, 10) == 1
    got = {m: (await store.get_message(m)) for m in (old.id, leased.id, young.id, test.id, sent.id)}
    assert (got[old.id].status, got[old.id].done_at) == (Status.EXPIRED, T0 + 20)
    assert got[leased.id].status is Status.QUEUED  # dispatch still holds it
    assert got[young.id].status is Status.QUEUED
    assert got[test.id].status is Status.ACCEPTED
    assert got[sent.id].status is Status.SENT  # expire_sent's business
    assert await store.expire_unsent(T0 + 20, 10) == 0


async def test_a_parked_receipt_still_lets_the_message_pass_through_sent(
    store: Store, make_message: MessageFactory
) -> None:
    """Receipt before submit_sm_resp: the message is sent (with its time) and then delivered."""
    one, two = make_message(), make_message(segments=2)
    await store.accept([one, two])
    await store.apply_receipts([ReceiptUpdate("up1", "k1", Status.DELIVERED, T0 + 1),
                                ReceiptUpdate("up1", "k2a", Status.DELIVERED, T0 + 1)])
    await store.record_segments([SegmentRecord(one.id, 0, "up1", "K1", "k1", T0 + 2)])
    got = await store.get_message(one.id)
    assert (got.status, got.sent_at, got.done_at) == (Status.DELIVERED, T0 + 2, T0 + 1)
    await store.record_segments([SegmentRecord(two.id, 0, "up1", "K2a", "k2a", T0 + 3)])
    assert (await store.get_message(two.id)).status is Status.ACCEPTED  # one part of two
    await store.record_segments([SegmentRecord(two.id, 1, "up1", "K2b", "k2b", T0 + 4)])
    got = await store.get_message(two.id)
    assert (got.status, got.sent_at) == (Status.SENT, T0 + 4)
