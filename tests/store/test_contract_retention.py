"""Store contract: message retention (``[store] message_days``, ``cdr_days``): old
final messages go with everything that references them, messages not final
stay whatever their age, CDRs follow their own setting, and balances and
margin sums stay right."""

from __future__ import annotations

import pytest

from herald.store import (
    Account,
    Channel,
    InvalidRecord,
    MessageNotFound,
    NewMessage,
    PriceEntry,
    PriceKind,
    PriceSide,
    ReceiptUpdate,
    RefundPolicy,
    RouteRecord,
    SegmentRecord,
    Status,
    StatusUpdate,
    Store,
    StoredPriceList,
    SubmitFailure,
)

from .conftest import T0, MessageFactory
from .test_contract_billing import _balance, _billed, _charge, _summed

HOOK = "https://hooks.example.com/x"
CUTOFF = T0 + 100


async def _purge_messages(store: Store, before: float, limit: int = 2000) -> int:
    deleted, after = 0, 0
    for _ in range(1000):  # bounded: every step moves ``after`` on
        step = await store.purge_messages(before, after=after, limit=limit)
        deleted += step.deleted
        if step.after is None:
            return deleted
        assert step.after > after
        after = step.after
    raise AssertionError("the pass never ended")


async def _purge_cdrs(store: Store, before: float, limit: int = 2000) -> int:
    deleted: int = 0
    after: tuple[float, str] | None = None
    for _ in range(1000):
        step = await store.purge_cdrs(before, after=after, limit=limit)
        deleted += step.deleted
        if step.after is None:
            return deleted
        after = step.after
    raise AssertionError("the pass never ended")


async def _gone(store: Store, message: NewMessage) -> bool:
    try:
        await store.get_message(message.id)
    except MessageNotFound:
        return True
    return False


async def _send(store: Store, messages: list[NewMessage], at: float) -> None:
    """Claim and record one segment of each (they are sent)."""
    await store.claim(100, at, 30)
    await store.record_segments([SegmentRecord(m.id, 0, "up1", f"U{m.id}", f"u{m.id}", at)
                                 for m in messages])  # fmt: skip


async def _drain_webhooks(store: Store, now: float, keep: set[str], give_up: set[str]) -> None:
    """Deliver every webhook event due at ``now`` but those of ``keep`` (left to
    retry later) and ``give_up`` (given up on)."""
    for _ in range(20):  # bounded: a few events a message
        events = await store.claim_outbox(Channel.WEBHOOK, now, 30, 100)
        if not events:
            return
        await store.complete_outbox([e.id for e in events
                                     if e.subject_id not in keep | give_up])  # fmt: skip
        for e in events:
            if e.subject_id in give_up:
                await store.retry_outbox(e.id, None, "HTTP 500")
            elif e.subject_id in keep:
                await store.retry_outbox(e.id, now + 10**6, "HTTP 500")
    raise AssertionError("the outbox never drained")


async def test_old_final_messages_go_with_what_references_them(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    delivered, rejected, retried, sent, late = (make_message(callback_url=HOOK)
                                                for _ in range(5))  # fmt: skip
    newest = make_message(accepted_at=CUTOFF + 50)
    await store.accept([delivered, rejected, retried, sent, late, newest])
    await store.claim(100, T0 + 1, 30)  # all but the newest
    queued = make_message(callback_url=HOOK)  # as old as the rest, never claimed
    await store.accept([queued])
    await store.update_statuses([StatusUpdate(rejected.id, Status.REJECTED, T0 + 2)])
    await store.record_segments([SegmentRecord(m.id, 0, "up1", f"U{m.id}", f"u{m.id}", T0 + 1)
                                 for m in (delivered, retried, sent, late)])  # fmt: skip
    await store.apply_receipts([ReceiptUpdate("up1", f"u{m.id}", Status.DELIVERED, T0 + 3)
                                for m in (delivered, retried)])  # fmt: skip
    await store.apply_receipts([ReceiptUpdate("up1", f"u{late.id}", Status.DELIVERED, CUTOFF + 5)])
    await store.record_routes([RouteRecord(delivered.id, "uk", T0 + 1)])
    await store.record_conversion(delivered.id, account.id, T0 + 4)
    await store.record_failed_submits([SubmitFailure(delivered.id, 0, T0 + 1, "up1", "timeout")])
    assert await store.message_attempts(delivered.id)
    await _drain_webhooks(store, T0 + 1000, keep={retried.id}, give_up={rejected.id})
    assert len(await store.failed_deliveries(rejected.id, account.id)) == 1  # given up
    assert await store.failed_deliveries(retried.id, account.id)  # to retry
    await store.margin(T0, T0, "account")  # the sums up to date (see RetentionStore)

    assert await _purge_messages(store, CUTOFF) == 2
    assert await _gone(store, delivered) and await _gone(store, rejected)
    assert await store.get_segments(delivered.id) == ()
    assert await store.get_message_routes([delivered.id]) == {}
    assert await store.get_conversion(delivered.id, account.id) is None
    assert await store.message_attempts(delivered.id) == ()
    assert await store.failed_deliveries(rejected.id, account.id) == ()
    # kept: events still to deliver, not final (queued, awaiting its receipt),
    # ended after the cutoff, accepted after it
    for kept in (retried, queued, sent, late, newest):
        assert not await _gone(store, kept), kept
    assert (await store.get_message(sent.id)).status is Status.SENT
    assert (await store.get_message(queued.id)).status is Status.ACCEPTED  # waits for dispatch
    assert len(await store.get_segments(sent.id)) == 1
    # a later pass takes them once they are done
    await _drain_webhooks(store, T0 + 2 * 10**6, keep=set(), give_up=set())
    await store.apply_receipts([ReceiptUpdate("up1", f"u{sent.id}", Status.DELIVERED, T0 + 50)])
    await _drain_webhooks(store, T0 + 2 * 10**6, keep=set(), give_up=set())
    await store.margin(T0, T0, "account")
    assert await _purge_messages(store, CUTOFF) == 2  # retried, sent
    assert await _gone(store, retried) and await _gone(store, sent)
    assert await _purge_messages(store, CUTOFF) == 0
    for kept in (queued, late, newest):
        assert not await _gone(store, kept), kept


async def test_messages_the_margin_sums_have_not_counted_stay(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await _billed(store, account, 10**6)
    messages = [make_message() for _ in range(3)] + [make_message(accepted_at=CUTOFF + 1)]
    for m in messages:
        await store.accept([m], charges=[_charge(100)])
    await store.update_statuses([StatusUpdate(m.id, Status.REJECTED, T0 + 2)
                                 for m in messages[:3]])  # fmt: skip
    assert await _purge_messages(store, CUTOFF) == 0  # no margin read since they came
    await store.margin(T0, T0, "account")
    assert await _purge_messages(store, CUTOFF) == 3


async def test_steps_are_bounded_and_resume_where_they_stopped(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    messages = [make_message() for _ in range(7)] + [make_message(accepted_at=CUTOFF + 1)]
    await store.accept(messages)
    await store.update_statuses([StatusUpdate(m.id, Status.REJECTED, T0 + 2)
                                 for m in messages[:7]])  # fmt: skip
    await store.margin(T0, T0, "account")
    first = await store.purge_messages(CUTOFF, limit=3)
    assert (first.deleted, first.after is not None) == (3, True)
    assert await _purge_messages(store, CUTOFF, limit=3) == 4
    assert not await _gone(store, messages[-1])
    for limit in (0, 10_001):
        with pytest.raises(InvalidRecord):
            await store.purge_messages(CUTOFF, limit=limit)
        with pytest.raises(InvalidRecord):
            await store.purge_cdrs(CUTOFF, limit=limit)


async def test_cdrs_follow_their_own_setting_and_balances_and_margins_stay_right(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    hour = 3600  # T0 is on an hour
    await _billed(store, account, 10**9)
    await store.adjust_balance(account.id, refund_policy=RefundPolicy.UNDELIVERED)
    await store.put_price_list(StoredPriceList(PriceSide.BUY, "up1", (
        PriceEntry(PriceKind.DEFAULT, "", 500_000),), T0))  # fmt: skip
    # 12 messages over 4 hours; the last is accepted after every cutoff
    messages = [make_message(accepted_at=T0 + k * 1000.5, expires_at=T0 + 10**6)
                for k in range(12)] + [make_message(accepted_at=T0 + 5 * hour)]  # fmt: skip
    for k, m in enumerate(messages):
        await store.accept([m], charges=[_charge(100 + k, "49" if k % 2 else "44")])
    await _send(store, messages[:10], T0 + 4 * hour)
    await store.apply_receipts([ReceiptUpdate(
        "up1", f"u{m.id}", Status.UNDELIVERED if k % 3 == 0 else Status.DELIVERED,
        T0 + 4 * hour + 1) for k, m in enumerate(messages[:9])])  # fmt: skip
    # messages[9] sent (awaiting its receipt), [10] and [11] queued, [12] waiting
    periods = [(T0, T0 + 6 * hour), (T0 + 900, T0 + 2 * hour + 100), (T0 + hour, T0 + 2 * hour)]

    async def margins() -> list[object]:
        return [[(r.key, r.messages, r.revenue, r.cost, r.unpriced)
                 for r in await store.margin(since, until, by)]
                for since, until in periods for by in ("account", "connector", "country")]

    before = await margins()
    balance = await _balance(store, account)
    cdrs = {c.message_id: c for c in await store.list_cdrs(T0, T0 + 6 * hour)}
    assert await _purge_messages(store, T0 + 4 * hour + 10) == 9
    # The CDRs stay, with their messages' final statuses; nothing else moves.
    assert {c.message_id: c for c in await store.list_cdrs(T0, T0 + 6 * hour)} == cdrs
    assert await margins() == before
    assert await _balance(store, account) == balance

    # CDRs accepted before T0 + 2 h + 1: messages 0..7, in steps of 3
    assert await _purge_cdrs(store, T0 + 2 * hour + 1, limit=3) == 8
    assert [c.message_id for c in await store.list_cdrs(T0, T0 + 6 * hour)] == [
        m.id for m in messages[8:]]  # fmt: skip
    assert await _purge_cdrs(store, T0 + 9 * hour) == 1  # 8; 9..12 are not final
    kept = await store.list_cdrs(T0, T0 + 6 * hour)
    assert [c.message_id for c in kept] == [m.id for m in messages[9:]]
    assert await _balance(store, account) == balance
    for since, until in periods:
        for by in ("account", "connector", "country"):
            rows = await store.margin(since, until, by)
            assert [(r.key, r.messages, r.revenue, r.cost, r.unpriced) for r in rows] \
                == await _summed(store, since, until, by), (since, until, by)
    # once final and summed, the last CDRs may go as well
    await store.update_statuses([StatusUpdate(m.id, Status.EXPIRED, T0 + 6 * hour)
                                 for m in messages[9:]])  # fmt: skip
    balance = await _balance(store, account)  # refunded: they expired
    await store.margin(T0, T0, "account")
    assert await _purge_cdrs(store, T0 + 9 * hour) == 4
    assert await store.list_cdrs(T0, T0 + 6 * hour) == ()
    assert await store.margin(T0, T0 + 6 * hour, "account") == ()
    assert await _balance(store, account) == balance


async def _erase_texts(store: Store, before: float, limit: int = 2000) -> int:
    erased = 0
    for _ in range(1000):  # bounded: every step reads new rows or empties the list
        step = await store.erase_texts(before, limit=limit)
        erased += step.erased
        if not step.more:
            return erased
    raise AssertionError("the pass never ended")


async def test_texts_of_old_final_messages_are_erased_and_the_rows_stay(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    ended, waiting, late = (make_message() for _ in range(3))
    later = make_message(accepted_at=CUTOFF + 1)
    await store.accept([ended, waiting, late, later])
    await store.claim(10, CUTOFF + 1, 30)
    await store.update_statuses([StatusUpdate(ended.id, Status.REJECTED, T0 + 2),
                                 StatusUpdate(late.id, Status.REJECTED, CUTOFF + 5),
                                 StatusUpdate(later.id, Status.REJECTED, CUTOFF + 6)])

    async def bodies() -> list[bytes]:
        return [(await store.get_message(m.id)).body for m in (ended, waiting, late, later)]

    assert await _erase_texts(store, CUTOFF, limit=1) == 1
    assert await bodies() == [b"", waiting.body, late.body, later.body]
    assert (await store.get_message(ended.id)).status is Status.REJECTED  # the row stays
    assert await _erase_texts(store, CUTOFF) == 0  # nothing new: the mark holds
    # read while in flight, erased once it has ended; the others when their time comes
    await store.update_statuses([StatusUpdate(waiting.id, Status.REJECTED, T0 + 50)])
    assert await _erase_texts(store, CUTOFF) == 1
    assert await _erase_texts(store, CUTOFF + 10) == 2
    assert await bodies() == [b"", b"", b"", b""]
    # a message purged while it waited leaves nothing behind
    gone = make_message(accepted_at=CUTOFF + 2)
    await store.accept([gone, make_message(accepted_at=CUTOFF + 100)])
    await store.claim(10, CUTOFF + 100, 30)
    assert await _erase_texts(store, CUTOFF + 50) == 0  # `gone` waits: not final
    await store.update_statuses([StatusUpdate(gone.id, Status.REJECTED, CUTOFF + 3)])
    await store.margin(T0, T0, "account")
    assert await _purge_messages(store, CUTOFF + 50) == 5
    assert await _erase_texts(store, CUTOFF + 50) == 0
    for limit in (0, 10_001):
        with pytest.raises(InvalidRecord):
            await store.erase_texts(CUTOFF, limit=limit)
