"""Store contract: messages, statuses, segments, receipts, claims, idempotency.

Written against the :class:`~herald.store.Store` protocol only; every store
implementation must pass it (see ``conftest.store``).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from herald.store import (
    Account,
    DuplicateMessageId,
    IdempotencyMismatch,
    IdempotencyRecord,
    InboundMessage,
    InvalidRecord,
    MessageFilter,
    MessageNotFound,
    ReceiptUpdate,
    RecentFilter,
    Reschedule,
    SegmentRecord,
    Source,
    Status,
    StatusUpdate,
    Store,
)

from .conftest import T0, MessageFactory

# -- accept and read back ------------------------------------------------------------


async def test_accepted_message_reads_back_as_written(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message(
        source=Source.SMPP,
        body=b"\x00\xe9t\xe9",
        encoding="ucs2",
        data_coding=8,
        segments=2,
        udhi=True,
        reference="order-17",
        metadata='{"k": [1, 2]}',
        callback_url="https://example.test/hook",
        registered_delivery=1,
        send_at=T0 + 60,
    )
    await store.accept([new])
    got = await store.get_message(new.id)
    assert (got.id, got.account_id, got.source, got.to, got.sender) == (
        new.id, new.account_id, Source.SMPP, new.to, new.sender,
    )  # fmt: skip
    assert (got.body, got.encoding, got.data_coding, got.udhi, got.segments) == (
        b"\x00\xe9t\xe9", "ucs2", 8, True, 2,
    )  # fmt: skip
    assert (got.reference, got.metadata, got.callback_url) == (
        "order-17", '{"k": [1, 2]}', "https://example.test/hook",
    )  # fmt: skip
    assert (got.registered_delivery, got.test, got.send_at, got.expires_at) == (
        1, False, T0 + 60, new.expires_at,
    )  # fmt: skip
    assert got.status is Status.ACCEPTED
    assert (got.accepted_at, got.queued_at, got.sent_at, got.done_at) == (
        new.accepted_at, None, None, None,
    )  # fmt: skip
    assert (got.error_code, got.error_permanent, got.attempt) == (None, False, 0)


async def test_unknown_or_foreign_message_is_not_found(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    with pytest.raises(MessageNotFound):
        await store.get_message("0" * 26)
    with pytest.raises(MessageNotFound):
        await store.get_message(new.id, account_id=account.id + 1)
    assert (await store.get_message(new.id, account_id=account.id)).id == new.id


async def test_many_messages_read_back_at_once(
    store: Store, make_message: MessageFactory
) -> None:
    news = [make_message() for _ in range(1203)]  # more than one query's worth of ids
    await store.accept(news)
    await store.update_statuses([StatusUpdate(news[7].id, Status.DELIVERED, T0 + 5)])
    asked = [n.id for n in reversed(news)] + [news[0].id, "no-such-id", "x" * 500]
    got = await store.get_messages(asked)
    assert set(got) == {n.id for n in news}  # unknown ids absent, repeats once
    one = await store.get_message(news[7].id)
    assert got[news[7].id] == one and one.status is Status.DELIVERED
    assert got[news[8].id].body == news[8].body
    assert await store.get_messages([]) == {}


async def test_accept_is_all_or_nothing(store: Store, make_message: MessageFactory) -> None:
    first = make_message()
    await store.accept([first])
    fresh = make_message()
    clash = make_message(id=first.id)
    with pytest.raises(DuplicateMessageId):
        await store.accept([fresh, clash])
    with pytest.raises(MessageNotFound):
        await store.get_message(fresh.id)


async def test_concurrent_writers_are_answered_only_after_commit(
    store: Store, make_message: MessageFactory
) -> None:
    """Every awaiting writer can read its own write the moment it is answered."""

    async def submit_then_read(n: int) -> Status:
        new = make_message()
        await store.accept([new])
        if n % 2:
            await store.update_statuses([StatusUpdate(new.id, Status.FAILED, T0 + 1, error_code=n)])
        return (await store.get_message(new.id)).status

    statuses = await asyncio.gather(*(submit_then_read(n) for n in range(200)))
    assert statuses == [Status.FAILED if n % 2 else Status.ACCEPTED for n in range(200)]


# -- monotonic status ----------------------------------------------------------------


def _expected(updates: tuple[Status, ...]) -> Status:
    """The rule, stated independently: the first final wins; otherwise the greatest."""
    finals = [s for s in updates if s.final]
    return finals[0] if finals else max(updates, default=Status.ACCEPTED)


async def test_status_never_moves_backwards_whatever_the_order(
    store: Store, make_message: MessageFactory
) -> None:
    updates = (Status.QUEUED, Status.SENT, Status.DELIVERED, Status.UNDELIVERED)
    orders = list(itertools.permutations(updates))
    messages = [make_message() for _ in orders]
    await store.accept(messages)
    for message, order in zip(messages, orders, strict=True):
        for n, status in enumerate(order):
            await store.update_statuses([StatusUpdate(message.id, status, T0 + n)])
    for message, order in zip(messages, orders, strict=True):
        got = await store.get_message(message.id)
        assert got.status is _expected(order), order


async def test_concurrent_updates_to_one_message_keep_the_first_final(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.update_statuses([StatusUpdate(new.id, Status.SENT, T0 + 1)])
    await asyncio.gather(
        store.update_statuses([StatusUpdate(new.id, Status.DELIVERED, T0 + 2)]),
        store.update_statuses([StatusUpdate(new.id, Status.QUEUED, T0 + 3)]),
        store.update_statuses([StatusUpdate(new.id, Status.SENT, T0 + 4)]),
    )
    await store.update_statuses([StatusUpdate(new.id, Status.EXPIRED, T0 + 5)])
    got = await store.get_message(new.id)
    assert (got.status, got.sent_at, got.done_at) == (Status.DELIVERED, T0 + 1, T0 + 2)


async def test_each_stage_keeps_its_own_timestamp(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.update_statuses([StatusUpdate(new.id, Status.QUEUED, T0 + 1)])
    await store.update_statuses([StatusUpdate(new.id, Status.SENT, T0 + 2)])
    await store.update_statuses([
        StatusUpdate(new.id, Status.FAILED, T0 + 3, error_code=0x45, permanent=True)])
    got = await store.get_message(new.id)
    assert (got.accepted_at, got.queued_at, got.sent_at, got.done_at) == (
        new.accepted_at, T0 + 1, T0 + 2, T0 + 3,
    )  # fmt: skip
    assert (got.status, got.error_code, got.error_permanent) == (Status.FAILED, 0x45, True)


async def test_a_message_cannot_be_moved_back_to_accepted(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    with pytest.raises(InvalidRecord):
        await store.update_statuses([StatusUpdate(new.id, Status.ACCEPTED, T0)])


# -- segments and receipts -----------------------------------------------------------


async def test_a_message_is_sent_then_delivered_when_all_its_segments_are(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message(segments=3)
    await store.accept([new])
    for index in range(3):
        assert (await store.get_message(new.id)).status is Status.ACCEPTED
        await store.record_segments([
            SegmentRecord(new.id, index, "up1", f"ID{index}", f"id{index}", T0 + index)])
    got = await store.get_message(new.id)
    assert (got.status, got.sent_at) == (Status.SENT, T0 + 2)
    for index in range(3):
        assert (await store.get_message(new.id)).status is Status.SENT
        await store.apply_receipts([
            ReceiptUpdate("up1", f"id{index}", Status.DELIVERED, T0 + 10 + index)])
    got = await store.get_message(new.id)
    assert (got.status, got.done_at) == (Status.DELIVERED, T0 + 12)
    segments = await store.get_segments(new.id)
    assert [(s.index, s.upstream_id, s.upstream_key, s.status) for s in segments] == [
        (i, f"ID{i}", f"id{i}", Status.DELIVERED) for i in range(3)
    ]


async def test_one_undelivered_segment_ends_the_message(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message(segments=2)
    await store.accept([new])
    await store.record_segments([SegmentRecord(new.id, 0, "up1", "a", "a", T0)])
    await store.record_segments([SegmentRecord(new.id, 1, "up1", "b", "b", T0)])
    await store.apply_receipts([
        ReceiptUpdate("up1", "b", Status.UNDELIVERED, T0 + 5, error_code=11)])
    await store.apply_receipts([ReceiptUpdate("up1", "a", Status.DELIVERED, T0 + 6)])
    got = await store.get_message(new.id)
    assert (got.status, got.error_code, got.done_at) == (Status.UNDELIVERED, 11, T0 + 5)


async def test_a_receipt_that_beats_the_submit_response_is_parked_then_applied(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.apply_receipts([ReceiptUpdate("up1", "77", Status.DELIVERED, T0 + 1)])
    assert (await store.get_message(new.id)).status is Status.ACCEPTED
    await store.record_segments([SegmentRecord(new.id, 0, "up1", "0x4D", "77", T0 + 2)])
    got = await store.get_message(new.id)
    assert (got.status, got.done_at) == (Status.DELIVERED, T0 + 1)


async def test_parked_receipts_apply_in_arrival_order(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.apply_receipts([ReceiptUpdate("up1", "k", Status.SENT, T0)])  # stat:ENROUTE
    await store.apply_receipts([
        ReceiptUpdate("up1", "k", Status.UNDELIVERED, T0 + 1, error_code=5)])
    await store.apply_receipts([ReceiptUpdate("up1", "k", Status.DELIVERED, T0 + 2)])
    await store.record_segments([SegmentRecord(new.id, 0, "up1", "K", "k", T0 + 3)])
    got = await store.get_message(new.id)
    assert (got.status, got.error_code) == (Status.UNDELIVERED, 5)


async def test_a_non_final_receipt_changes_nothing(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.apply_receipts([ReceiptUpdate("up1", "k", Status.SENT, T0)])  # e.g. stat:ENROUTE
    await store.record_segments([SegmentRecord(new.id, 0, "up1", "K", "k", T0 + 1)])
    await store.apply_receipts([ReceiptUpdate("up1", "k", Status.DELIVERED, T0 + 2)])
    await store.apply_receipts([  # ENROUTE after DELIVRD
        ReceiptUpdate("up1", "k", Status.SENT, T0 + 3)])
    got = await store.get_message(new.id)
    assert (got.status, got.done_at) == (Status.DELIVERED, T0 + 2)


async def test_receipts_match_within_their_connector_only(
    store: Store, make_message: MessageFactory
) -> None:
    a, b = make_message(), make_message()
    await store.accept([a, b])
    await store.record_segments([SegmentRecord(a.id, 0, "up1", "1", "1", T0)])
    await store.record_segments([SegmentRecord(b.id, 0, "up2", "1", "1", T0)])
    await store.apply_receipts([ReceiptUpdate("up2", "1", Status.REJECTED, T0 + 1)])
    assert (await store.get_message(a.id)).status is Status.SENT
    assert (await store.get_message(b.id)).status is Status.REJECTED


async def test_a_resent_segment_takes_its_new_upstream_id(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.record_segments([SegmentRecord(new.id, 0, "up1", "old", "old", T0)])
    await store.record_segments([SegmentRecord(new.id, 0, "up2", "new", "new", T0 + 1)])
    await store.apply_receipts([ReceiptUpdate("up1", "old", Status.DELIVERED, T0 + 2)])
    assert (await store.get_message(new.id)).status is Status.SENT
    await store.apply_receipts([ReceiptUpdate("up2", "new", Status.DELIVERED, T0 + 3)])
    assert (await store.get_message(new.id)).status is Status.DELIVERED
    [segment] = await store.get_segments(new.id)
    assert (segment.connector, segment.upstream_id) == ("up2", "new")


async def test_a_resent_segment_applies_the_receipt_parked_for_its_new_upstream_id(
    store: Store, make_message: MessageFactory
) -> None:
    # The resend's receipt beat its submit_sm_resp: parked, applied when the
    # part is recorded again under that id (a record that replaces one).
    new = make_message()
    await store.accept([new])
    await store.record_segments([SegmentRecord(new.id, 0, "up1", "old", "old", T0)])
    await store.apply_receipts([
        ReceiptUpdate("up2", "new", Status.UNDELIVERED, T0 + 1, error_code=9)])
    assert (await store.get_message(new.id)).status is Status.SENT
    await store.record_segments([SegmentRecord(new.id, 0, "up2", "new", "new", T0 + 2)])
    got = await store.get_message(new.id)
    assert (got.status, got.error_code, got.done_at) == (Status.UNDELIVERED, 9, T0 + 1)
    [segment] = await store.get_segments(new.id)
    assert (segment.connector, segment.upstream_id, segment.status) == (
        "up2", "new", Status.UNDELIVERED)


async def test_a_segment_index_beyond_the_count_is_not_recorded(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message(segments=2)
    await store.accept([new])
    await store.record_segments([SegmentRecord(new.id, 0, "up1", "a", "a", T0)])
    await store.record_segments([SegmentRecord(new.id, 5, "up1", "x", "x", T0)])
    assert (await store.get_message(new.id)).status is Status.ACCEPTED
    assert [s.index for s in await store.get_segments(new.id)] == [0]
    with pytest.raises(InvalidRecord):
        await store.record_segments([SegmentRecord(new.id, -1, "up1", "y", "y", T0)])


# -- claims and leases ---------------------------------------------------------------


async def test_claim_hands_out_ready_messages_once_per_lease(
    store: Store, make_message: MessageFactory
) -> None:
    ready = [make_message() for _ in range(3)]
    later = make_message(send_at=T0 + 40)
    await store.accept([*ready, later])
    claimed = await store.claim(10, T0 + 1, lease=30)
    assert [m.id for m in claimed] == [m.id for m in ready]
    assert {(m.status, m.attempt, m.queued_at) for m in claimed} == {
        (Status.QUEUED, 1, T0 + 1)
    }
    assert await store.claim(10, T0 + 2, lease=30) == ()
    # The lease runs out (the claimer crashed): the messages come back.
    again = await store.claim(10, T0 + 31, lease=30)
    assert [(m.id, m.attempt, m.queued_at) for m in again] == [
        (m.id, 2, T0 + 1) for m in ready
    ]
    assert [m.id for m in await store.claim(10, T0 + 40, lease=30)] == [later.id]


async def test_claim_respects_its_limit_and_due_order(
    store: Store, make_message: MessageFactory
) -> None:
    messages = [make_message(send_at=T0 + 10 - n) for n in range(5)]
    await store.accept(messages)
    first = await store.claim(2, T0 + 20, lease=30)
    assert [m.id for m in first] == [messages[4].id, messages[3].id]
    rest = await store.claim(10, T0 + 20, lease=30)
    assert [m.id for m in rest] == [messages[2].id, messages[1].id, messages[0].id]


async def test_concurrent_claims_never_share_a_message(
    store: Store, make_message: MessageFactory
) -> None:
    messages = [make_message() for _ in range(60)]
    await store.accept(messages)
    batches = await asyncio.gather(*(store.claim(7, T0 + 1, lease=30) for _ in range(12)))
    ids = [m.id for batch in batches for m in batch]
    assert sorted(ids) == sorted(m.id for m in messages)


async def test_sent_and_test_messages_are_never_claimed(
    store: Store, make_message: MessageFactory
) -> None:
    sent, test = make_message(), make_message(test=True)
    await store.accept([sent, test])
    await store.update_statuses([StatusUpdate(sent.id, Status.SENT, T0)])
    assert await store.claim(10, T0 + 1000, lease=30) == ()
    assert (await store.get_message(test.id)).status is Status.ACCEPTED


async def test_reschedule_returns_a_claim_for_later(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    [claimed] = await store.claim(1, T0 + 1, lease=60)
    await store.reschedule_many([  # ESME_RTHROTTLED: back off
        Reschedule(new.id, claimed.attempt, T0 + 5, release=True)])
    assert await store.claim(1, T0 + 4, lease=60) == ()
    [again] = await store.claim(1, T0 + 5, lease=60)
    assert again.attempt == claimed.attempt + 1


async def test_a_stale_claimer_cannot_release_a_newer_claim(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    [old] = await store.claim(1, T0, lease=10)
    [current] = await store.claim(1, T0 + 10, lease=10)  # old's lease ran out
    await store.reschedule_many([Reschedule(new.id, old.attempt, T0 + 11, release=True)])
    assert await store.claim(1, T0 + 11, lease=10) == ()
    await store.reschedule_many([Reschedule(new.id, current.attempt, T0 + 11, release=True)])
    assert [m.attempt for m in await store.claim(1, T0 + 11, lease=10)] == [3]


async def test_a_message_past_its_validity_expires_instead_of_being_claimed(
    store: Store, make_message: MessageFactory
) -> None:
    stale = make_message(expires_at=T0 + 50)
    fresh = make_message()
    await store.accept([stale, fresh])
    claimed = await store.claim(10, T0 + 60, lease=30)
    assert [m.id for m in claimed] == [fresh.id]
    got = await store.get_message(stale.id)
    assert (got.status, got.done_at) == (Status.EXPIRED, T0 + 60)


async def test_sent_messages_without_a_receipt_expire_after_the_cutoff(
    store: Store, make_message: MessageFactory
) -> None:
    waiting = [make_message(expires_at=T0 + 100 + n) for n in range(3)]
    delivered = make_message(expires_at=T0 + 100)
    young = make_message(expires_at=T0 + 1000)
    await store.accept([*waiting, delivered, young])
    for m in [*waiting, delivered, young]:
        await store.update_statuses([StatusUpdate(m.id, Status.SENT, T0 + 1)])
    await store.update_statuses([StatusUpdate(delivered.id, Status.DELIVERED, T0 + 2)])
    assert await store.expire_sent(T0 + 200, T0 + 500, limit=2) == 2
    assert await store.expire_sent(T0 + 200, T0 + 501, limit=10) == 1
    statuses = [(await store.get_message(m.id)).status for m in [*waiting, delivered, young]]
    assert statuses == [Status.EXPIRED] * 3 + [Status.DELIVERED, Status.SENT]
    assert (await store.get_message(waiting[0].id)).done_at == T0 + 500


# -- idempotency ---------------------------------------------------------------------


def _record(account: Account, key: str, body: bytes, at: float) -> IdempotencyRecord:
    return IdempotencyRecord(
        account_id=account.id,
        key=key,
        request_hash=b"h:" + body,
        status_code=202,
        response=b'{"answer": "' + body + b'"}',
        created_at=at,
        expires_at=at + 86_400,
    )


async def test_an_idempotency_key_replays_the_first_answer_for_a_day(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    first = make_message()
    assert await store.accept([first], idempotency=_record(account, "k1", b"A", T0)) is None
    retry = make_message()
    replay = await store.accept([retry], idempotency=_record(account, "k1", b"A", T0 + 60))
    assert replay is not None and (replay.response, replay.created_at) == (b'{"answer": "A"}', T0)
    with pytest.raises(MessageNotFound):
        await store.get_message(retry.id)  # the replay stored nothing
    with pytest.raises(IdempotencyMismatch):
        await store.accept([make_message()], idempotency=_record(account, "k1", b"B", T0 + 61))
    assert await store.get_idempotency(account.id, "k1", T0 + 86_399) is not None
    # A day later the key is free again.
    assert await store.get_idempotency(account.id, "k1", T0 + 86_400) is None
    later = make_message()
    fresh = _record(account, "k1", b"B", T0 + 86_400)
    assert await store.accept([later], idempotency=fresh) is None
    assert (await store.get_message(later.id)).id == later.id


async def test_idempotency_keys_belong_to_one_account(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    other = await store.create_account("other", T0, rate_limit=1.0, bind_limit=1)
    await store.accept([make_message()], idempotency=_record(account, "k", b"A", T0))
    theirs = make_message(account_id=other.id)
    assert await store.accept([theirs], idempotency=_record(other, "k", b"B", T0)) is None
    assert (await store.get_message(theirs.id)).account_id == other.id


# -- listing -------------------------------------------------------------------------


async def test_listing_pages_through_an_accounts_messages_newest_first(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    other = await store.create_account("other", T0, rate_limit=1.0, bind_limit=1)
    mine = [make_message() for _ in range(25)]
    await store.accept([*mine, make_message(account_id=other.id)])
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await store.list_messages(MessageFilter(account.id, limit=10), cursor)
        seen += [m.id for m in page.messages]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [m.id for m in reversed(mine)]


async def test_listing_filters_by_status_number_reference_and_time(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    a = make_message(to="+441111", reference="r1", accepted_at=T0 + 1)
    b = make_message(to="+442222", reference="r2", accepted_at=T0 + 2)
    c = make_message(to="+441111", accepted_at=T0 + 3)
    await store.accept([a, b, c])
    await store.update_statuses([StatusUpdate(b.id, Status.FAILED, T0 + 4)])

    async def ids(**criteria: object) -> list[str]:
        page = await store.list_messages(MessageFilter(account.id, **criteria))  # type: ignore[arg-type]
        return [m.id for m in page.messages]

    assert await ids(status=Status.FAILED) == [b.id]
    assert await ids(to="+441111") == [c.id, a.id]
    assert await ids(reference="r1") == [a.id]
    assert await ids(since=T0 + 2) == [c.id, b.id]
    assert await ids(until=T0 + 2) == [a.id]
    assert await ids(to="+441111", since=T0 + 2, until=T0 + 3) == []


async def test_a_claimed_message_lists_and_is_searched_as_queued(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    claimed = make_message()
    waiting = make_message(send_at=T0 + 600)  # not due: stays accepted
    test = make_message(test=True)  # never claimed: accepted for good
    await store.accept([claimed, waiting, test])
    (m,) = await store.claim(10, T0 + 1, lease=30)
    assert m.id == claimed.id

    async def listed(status: Status) -> list[str]:
        page = await store.list_messages(MessageFilter(account.id, status=status))
        return [m.id for m in page.messages]

    assert await listed(Status.QUEUED) == [claimed.id]
    assert await listed(Status.ACCEPTED) == [test.id, waiting.id]
    recent = await store.recent_messages(RecentFilter(status=int(Status.QUEUED)))
    assert [m.id for m in recent] == [claimed.id]


async def test_a_forged_cursor_is_refused(store: Store, account: Account) -> None:
    with pytest.raises(InvalidRecord):
        await store.list_messages(MessageFilter(account.id), "1; DROP TABLE messages")


async def test_a_cursor_says_nothing_about_other_accounts(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    # A row number would tell how many messages the whole platform took in
    # between two pages (issue 8): the cursor is the page's last message's id.
    other = await store.create_account("other", T0, rate_limit=1.0, bind_limit=1)
    mine = [make_message() for _ in range(3)]
    theirs = make_message(account_id=other.id)
    await store.accept([mine[0], theirs, mine[1], mine[2]])
    page = await store.list_messages(MessageFilter(account.id, limit=2))
    assert page.next_cursor == mine[1].id
    rest = await store.list_messages(MessageFilter(account.id, limit=2), page.next_cursor)
    assert [m.id for m in rest.messages] == [mine[0].id] and rest.next_cursor is None
    for foreign in (theirs.id, "1", "12345"):  # another account's id; an old-style number
        with pytest.raises(InvalidRecord):
            await store.list_messages(MessageFilter(account.id), foreign)


# -- inbound -------------------------------------------------------------------------


async def test_inbound_messages_are_stored_once(store: Store, account: Account) -> None:
    mo = InboundMessage(
        id="in-1", account_id=account.id, to="+447000", sender="+447999", body=b"STOP",
        encoding="gsm7", data_coding=0, connector="up1", received_at=T0,
    )  # fmt: skip
    await store.add_inbound(mo)
    assert await store.get_inbound("in-1") == mo
    with pytest.raises(DuplicateMessageId):
        await store.add_inbound(mo)
    with pytest.raises(MessageNotFound):
        await store.get_inbound("in-2")


# -- the newest messages (an operator's search by status or time) -----------------------


async def test_recent_messages_look_only_at_the_newest_window(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    other = await store.create_account("globex", T0, rate_limit=100.0, bind_limit=2)
    messages = [make_message(), make_message(account_id=other.id), make_message(),
                make_message(account_id=other.id), make_message()]  # fmt: skip
    await store.accept(messages)
    await store.cancel(messages[2].id, T0 + 1, account_id=account.id)
    newest_first = [m.id for m in reversed(messages)]
    assert [m.id for m in await store.recent_messages(RecentFilter())] == newest_first
    assert [m.id for m in await store.recent_messages(RecentFilter(limit=2))] == newest_first[:2]
    mine = await store.recent_messages(RecentFilter(account_id=account.id))
    assert [m.id for m in mine] == [messages[4].id, messages[2].id, messages[0].id]
    cancelled = await store.recent_messages(RecentFilter(status=int(Status.CANCELLED)))
    assert [m.id for m in cancelled] == [messages[2].id]
    window = await store.recent_messages(RecentFilter(status=int(Status.ACCEPTED), window=3))
    assert [m.id for m in window] == [messages[4].id, messages[3].id]  # not [1]: too old
    timed = await store.recent_messages(RecentFilter(since=messages[1].accepted_at,
                                                     until=messages[4].accepted_at))
    assert [m.id for m in timed] == [messages[3].id, messages[2].id, messages[1].id]
    with pytest.raises(InvalidRecord):
        RecentFilter(limit=0)
