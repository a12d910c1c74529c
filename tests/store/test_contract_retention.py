"""Store contract: message retention (``[store] message_days``, ``cdr_days``): old
final messages go with everything that references them, messages not final
stay whatever their age, CDRs follow their own setting, and balances and
margin sums stay right."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from herald.store import (
    Account,
    ChainChange,
    Channel,
    FraudAction,
    FraudDecision,
    InboundMessage,
    InvalidRecord,
    LegUpdate,
    MessageNotFound,
    NewChain,
    NewChatLeg,
    NewMessage,
    NotFound,
    PriceEntry,
    PriceKind,
    PriceSide,
    ReceiptUpdate,
    RefundPolicy,
    Retained,
    RouteRecord,
    SegmentRecord,
    SQLiteStore,
    Status,
    StatusEvents,
    StatusUpdate,
    Store,
    StoredPriceList,
    SubmitFailure,
    Verification,
    VerificationStatus,
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
    await _drain(store, Channel.WEBHOOK, T0 + 1000, keep={retried.id}, give_up={rejected.id})
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
    await _drain(store, Channel.WEBHOOK, T0 + 2 * 10**6, keep=set(), give_up=set())
    await store.apply_receipts([ReceiptUpdate("up1", f"u{sent.id}", Status.DELIVERED, T0 + 50)])
    await _drain(store, Channel.WEBHOOK, T0 + 2 * 10**6, keep=set(), give_up=set())
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


# -- the rest of the history (Store.purge_records, Retained) --------------------------


async def _purge_records(store: Store, kind: Retained, before: float, limit: int = 2000) -> int:
    deleted = 0
    after: tuple[float, str] | None = None
    for _ in range(1000):  # bounded: every step moves ``after`` on
        step = await store.purge_records(kind, before, after=after, limit=limit)
        deleted += step.deleted
        if step.after is None:
            return deleted
        assert after is None or step.after > after
        after = step.after
    raise AssertionError("the pass never ended")


async def _drain(store: Store, channel: Channel, now: float, keep: set[str],
                 give_up: set[str]) -> None:  # fmt: skip
    """Deliver ``channel``'s events due at ``now`` but those of ``keep`` (retried
    later) and ``give_up`` (given up on)."""
    for _ in range(20):
        events = await store.claim_outbox(channel, now, 30, 100)
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


async def _inbound_gone(store: Store, inbound_id: str) -> bool:
    try:
        await store.get_inbound(inbound_id)
    except MessageNotFound:
        return True
    return False


async def test_old_inbound_messages_go_unless_their_event_is_still_to_deliver(
    store: Store, account: Account
) -> None:
    await store.update_account(dataclasses.replace(account, callback_url=HOOK))

    def mo(name: str, at: float) -> InboundMessage:
        return InboundMessage(id=name, account_id=account.id, to="+447000", sender="+447999",
                              body=b"hi", encoding="gsm7", data_coding=0, connector="up1",
                              received_at=at)  # fmt: skip

    names = ["done", "given-up", "retried", "also-done"]
    for k, name in enumerate(names):
        await store.add_inbound(mo(name, T0 + k))
    await store.add_inbound(mo("recent", CUTOFF + 1))
    await _drain(store, Channel.WEBHOOK, T0 + 10, keep={"retried"}, give_up={"given-up"})
    assert await _purge_records(store, Retained.INBOUND, CUTOFF, limit=1) == 3
    assert [await _inbound_gone(store, n) for n in [*names, "recent"]] == [
        True, True, False, True, False]  # fmt: skip
    assert await store.failed_deliveries("given-up", account.id) == ()  # its event went too
    # once delivered, a later pass takes it; one received after the cutoff stays
    await _drain(store, Channel.WEBHOOK, T0 + 2 * 10**6, keep=set(), give_up=set())
    assert await _purge_records(store, Retained.INBOUND, CUTOFF) == 1
    assert await _inbound_gone(store, "retried") and not await _inbound_gone(store, "recent")
    for limit in (0, 10_001):
        with pytest.raises(InvalidRecord):
            await store.purge_records(Retained.INBOUND, CUTOFF, limit=limit)


async def test_old_chains_go_with_their_legs_once_over(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await store.update_account(dataclasses.replace(account, callback_url=HOOK))
    wa = NewChatLeg("whatsapp", "1065550001", '{"template":"t","language":"en","parameters":[]}',
                    "read", 60.0)  # fmt: skip

    def chain(name: str, *, sms_first: bool = False, at: float = T0) -> NewChain:
        sms = NewChatLeg("sms", "ACME", sms=make_message(callback_events=StatusEvents.NONE))
        return NewChain(name * 26, account.id, "+447700900123",
                        (sms,) if sms_first else (wa, sms), at)  # fmt: skip

    async def end(name: str, at: float, **change: Any) -> None:
        assert await store.change_chain(ChainChange(name * 26, 0, at, Status.DELIVERED,
                                                    delivered_by=0, notify=True, **change))

    for c in (chain("a"), chain("b"), chain("c"), chain("d", sms_first=True), chain("e"),
              chain("f"), chain("g", at=CUTOFF + 1)):
        await store.accept_chain(c)
    await end("a", T0 + 1, legs={0: LegUpdate("read")})
    await end("c", T0 + 1, arm={1: T0 + 50})  # a timer still set (not over)
    await end("d", T0 + 1)  # its SMS leg's message is not final
    await end("e", T0 + 1, legs={0: LegUpdate("read")})  # its webhook is retried
    await end("f", CUTOFF + 5, legs={0: LegUpdate("read")})  # ended after the cutoff
    await end("g", CUTOFF + 5, legs={0: LegUpdate("read")})
    await _drain(store, Channel.WEBHOOK, T0 + 10, keep={"e" * 26}, give_up=set())

    async def gone(name: str) -> bool:
        try:
            await store.get_chain(name * 26)
        except MessageNotFound:
            return True
        return False

    assert await _purge_records(store, Retained.CHAINS, CUTOFF, limit=2) == 1
    assert [await gone(n) for n in "abcdefg"] == [True, False, False, False, False, False,
                                                  False]  # fmt: skip
    assert await store.chain_leg_content("a" * 26, 0) is None  # its legs went with it
    assert await store.chain_of_provider_id("whatsapp", "x") is None
    sms = (await store.get_chain("d" * 26)).legs[0].message_id
    assert sms is not None
    await store.update_statuses([StatusUpdate(sms, Status.REJECTED, T0 + 2)])
    await _drain(store, Channel.WEBHOOK, T0 + 2 * 10**6, keep=set(), give_up=set())
    assert await _purge_records(store, Retained.CHAINS, CUTOFF) == 2  # d, e
    assert [await gone(n) for n in "bcdefg"] == [False, False, True, True, False, False]


async def test_verifications_go_once_expired_before_the_cutoff(
    store: Store, account: Account
) -> None:
    def verification(n: int, at: float) -> Verification:
        return Verification(f"ver{n:04d}", account.id, f"+1415555{n:04d}", "login", "Acme",
                            "en", 6, VerificationStatus.PENDING, at, at + 60, b"s" * 16,
                            bytes([n]) * 32, client={"ip": "192.0.2.1"})  # fmt: skip

    for n in range(5):  # 0..3 over before the cutoff: approved, cancelled, pending
        await store.start_verification(verification(n, T0 + n), f"msg-{n}", window=3600,
                                       limit=100)  # fmt: skip
    await store.record_check("ver0000", account.id, sends=1, matched=True, now=T0 + 5,
                             max_checks=5)  # fmt: skip
    await store.cancel_verification("ver0001", account.id, T0 + 5)
    cutoff = T0 + 63.5  # 0..2 expired before it, 3 (T0 + 63) too, 4 after it
    assert await _purge_records(store, Retained.VERIFICATIONS, cutoff, limit=2) == 4
    for n in range(4):
        with pytest.raises(NotFound):
            await store.get_verification(f"ver{n:04d}", account.id)
        assert await store.verification_sends(f"ver{n:04d}", account.id) == ()
    assert (await store.get_verification("ver0004", account.id)).status \
        is VerificationStatus.PENDING
    assert len(await store.verification_sends("ver0004", account.id)) == 1
    assert await _purge_records(store, Retained.VERIFICATIONS, cutoff) == 0


async def test_the_pumping_defences_old_decisions_go_on_sqlite(
    store: Store, account: Account
) -> None:
    """On PostgreSQL they live in day partitions that ``history_days`` drops."""
    await store.update_account(dataclasses.replace(account, callback_url=HOOK))

    def decision(n: int, at: float, action: FraudAction = FraudAction.ALLOW) -> FraudDecision:
        return FraudDecision(f"dec{n:04d}", account.id, at, "+447700900123", action, (), True,
                             "GB", 40_000, "EUR", None, None, {"ip": "192.0.2.1"})  # fmt: skip

    for n in range(4):
        await store.record_fraud_decision(decision(n, T0 + n, FraudAction.BLOCK if n == 1
                                                   else FraudAction.ALLOW))  # fmt: skip
    await store.record_fraud_decision(decision(9, CUTOFF + 1))
    await _drain(store, Channel.WEBHOOK, T0 + 10, keep={"dec0001"}, give_up=set())
    purged = await _purge_records(store, Retained.FRAUD_DECISIONS, CUTOFF, limit=2)
    left = {d.id for d in await store.list_fraud_decisions(account.id)}
    if isinstance(store, SQLiteStore):
        assert (purged, left) == (3, {"dec0001", "dec0009"})  # its block event is retried
    else:
        assert (purged, len(left)) == (0, 5)


async def test_a_history_purge_moves_no_money(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await _billed(store, account, 10**6)
    sms = NewChatLeg("sms", "ACME", sms=make_message(callback_events=StatusEvents.NONE))
    await store.accept_chain(NewChain("a" * 26, account.id, "+447700900123", (sms,), T0))
    chain = await store.get_chain("a" * 26)
    message_id = chain.legs[0].message_id
    assert message_id is not None
    await store.update_statuses([StatusUpdate(message_id, Status.REJECTED, T0 + 1)])
    assert await store.change_chain(ChainChange("a" * 26, chain.version, T0 + 1,
                                                Status.REJECTED))  # fmt: skip
    await store.margin(T0, T0, "account")
    balance = await _balance(store, account)
    margins = await store.margin(T0, T0 + 3600, "account")
    for kind in Retained:
        await _purge_records(store, kind, CUTOFF)
    assert await _balance(store, account) == balance
    assert await store.margin(T0, T0 + 3600, "account") == margins
