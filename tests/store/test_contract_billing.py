"""Store contract: price lists, balances, charges taken atomically with
acceptance, refunds given once with the final status, CDRs (docs/billing.md)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from herald.rating import charge, to_micros
from herald.store import (
    Account,
    ChangeOutcome,
    Charge,
    IdempotencyRecord,
    InsufficientFunds,
    InvalidRecord,
    MessageNotFound,
    NewMessage,
    PriceEntry,
    PriceKind,
    PriceSide,
    ReceiptUpdate,
    RefundPolicy,
    SegmentRecord,
    Status,
    StatusUpdate,
    Store,
    StoredPriceList,
    UnknownAccount,
)

from .conftest import T0, MessageFactory

SELL, BUY = PriceSide.SELL, PriceSide.BUY
NET, COUNTRY, DEFAULT = PriceKind.NETWORK, PriceKind.COUNTRY, PriceKind.DEFAULT


def _charge(amount: int, country: str = "44", network: str | None = "23410") -> Charge:
    return Charge(country, network, "+" + country, amount)


async def _billed(store: Store, account: Account, balance: int, credit: int = 0) -> None:
    await store.put_price_list(StoredPriceList(SELL, str(account.id), (
        PriceEntry(DEFAULT, "", 500_000_000),), T0))  # fmt: skip
    await store.adjust_balance(account.id, add=balance, credit_limit=credit)


async def _balance(store: Store, account: Account) -> int:
    found = await store.get_balance(account.id)
    assert found is not None
    return found.balance


# -- price lists --------------------------------------------------------------------


async def test_price_lists_are_replaced_whole_and_make_generations(
    store: Store, account: Account
) -> None:
    assert await store.price_lists_generation() == 0
    assert await store.get_balance(account.id) is None
    sell = StoredPriceList(SELL, str(account.id), (
        PriceEntry(NET, "26201", 400_000_000), PriceEntry(COUNTRY, "49", 500_000_000),
        PriceEntry(DEFAULT, "", 900_000_000)), T0)  # fmt: skip
    first = await store.put_price_list(sell)
    assert first == await store.price_lists_generation() > 0
    assert await store.price_lists(SELL) == (sell,)
    assert await store.price_lists(BUY) == ()
    balance = await store.get_balance(account.id)  # a billed account has a balance, from 0
    assert balance is not None and (balance.balance, balance.credit_limit) == (0, 0)
    buy = StoredPriceList(BUY, "up1", (PriceEntry(COUNTRY, "49", 300_000_000),), T0 + 1)
    second = await store.put_price_list(buy)
    again = StoredPriceList(SELL, str(account.id), (PriceEntry(DEFAULT, "", 1),), T0 + 2)
    third = await store.put_price_list(again)
    assert first < second < third
    assert await store.price_lists(SELL) == (again,)
    assert await store.price_lists(BUY) == (buy,)
    removed = await store.remove_price_list(SELL, str(account.id))
    assert removed > third and await store.price_lists(SELL) == ()
    assert await store.remove_price_list(SELL, str(account.id)) == removed


async def test_a_sell_list_needs_an_account(store: Store) -> None:
    with pytest.raises(UnknownAccount):
        await store.put_price_list(StoredPriceList(SELL, "999", (), T0))
    with pytest.raises(UnknownAccount):
        await store.adjust_balance(999, add=1)


def test_price_records_check_their_values() -> None:
    with pytest.raises(InvalidRecord):
        PriceEntry(DEFAULT, "49", 1)
    with pytest.raises(InvalidRecord):
        PriceEntry(COUNTRY, "", 1)
    with pytest.raises(InvalidRecord):
        PriceEntry(COUNTRY, "49", -1)
    with pytest.raises(InvalidRecord):
        Charge("49", None, "+49", -5)


# -- balances and charges -----------------------------------------------------------


async def test_top_ups_credit_limits_and_refund_policies(store: Store, account: Account) -> None:
    after = await store.adjust_balance(account.id, add=5_000_000)
    assert (after.balance, after.credit_limit, after.refund_policy) == (
        5_000_000, 0, RefundPolicy.NONE)  # fmt: skip
    after = await store.adjust_balance(account.id, add=-1_000_000, credit_limit=2_000_000,
                                       refund_policy=RefundPolicy.UNDELIVERED)  # fmt: skip
    assert (after.balance, after.available, after.refund_policy) == (
        4_000_000, 6_000_000, RefundPolicy.UNDELIVERED)  # fmt: skip
    assert await store.get_balance(account.id) == after
    with pytest.raises(InvalidRecord):
        await store.adjust_balance(account.id, credit_limit=-1)


async def test_a_charged_accept_takes_its_price_or_stores_nothing(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await _billed(store, account, 100, credit=50)
    first = make_message()
    await store.accept([first], charges=[_charge(120)])  # 100 - 120 = -20 >= -50
    assert await _balance(store, account) == -20
    refused = make_message()
    with pytest.raises(InsufficientFunds):
        await store.accept([refused], charges=[_charge(31)])  # -51 < -50
    with pytest.raises(MessageNotFound):
        await store.get_message(refused.id)
    assert await _balance(store, account) == -20
    exact = make_message()
    await store.accept([exact], charges=[_charge(30)])  # to -50 exactly
    assert await _balance(store, account) == -50
    (cdr1, cdr2) = await store.list_cdrs(T0 - 1, T0 + 100)
    assert (cdr1.message_id, cdr1.sell, cdr1.refunded, cdr1.buy, cdr1.status) == (
        first.id, 120, 0, None, Status.ACCEPTED)  # fmt: skip
    assert (cdr2.message_id, cdr2.country, cdr2.network, cdr2.price_key) == (
        exact.id, "44", "23410", "+44")  # fmt: skip


async def test_a_batch_is_charged_all_or_none(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await _billed(store, account, 250)
    batch = [make_message() for _ in range(3)]
    with pytest.raises(InsufficientFunds):
        await store.accept(batch, charges=[_charge(100)] * 3)
    assert await store.get_messages([m.id for m in batch]) == {}
    await store.accept(batch[:2], charges=[_charge(100)] * 2)
    assert await _balance(store, account) == 50


async def test_an_account_without_a_balance_cannot_be_charged(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    with pytest.raises(InsufficientFunds):
        await store.accept([make_message()], charges=[_charge(0)])
    free = make_message()
    await store.accept([free])  # not charged: as before billing
    assert (await store.get_message(free.id)).status is Status.ACCEPTED
    assert await store.list_cdrs(T0 - 1, T0 + 100) == ()


async def test_an_idempotent_accept_is_charged_once(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await _billed(store, account, 1_000)
    message = make_message()
    record = IdempotencyRecord(account.id, "k1", b"h" * 32, 202, b"answer", T0, T0 + 60)
    assert await store.accept([message], idempotency=record, charges=[_charge(300)]) is None
    earlier = await store.accept([make_message()], idempotency=record, charges=[_charge(300)])
    assert earlier is not None and await _balance(store, account) == 700
    poor = IdempotencyRecord(account.id, "k2", b"h" * 32, 202, b"answer", T0, T0 + 60)
    with pytest.raises(InsufficientFunds):
        await store.accept([make_message()], idempotency=poor, charges=[_charge(800)])
    assert await store.get_idempotency(account.id, "k2", T0) is None  # nothing kept


async def test_concurrent_charged_accepts_never_overdraw(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await _billed(store, account, 3_700)  # 37 messages of 100
    other = await store.create_account("other", T0, rate_limit=100.0, bind_limit=2)
    messages = [make_message() for _ in range(100)]
    unbilled = [make_message(account_id=other.id) for _ in range(20)]

    async def one(message: object, charged: bool) -> bool:
        try:
            await store.accept([message], charges=[_charge(100)] if charged else None)  # type: ignore[list-item]
        except InsufficientFunds:
            return False
        return True

    results = await asyncio.gather(*[one(m, True) for m in messages],
                                   *[one(m, False) for m in unbilled])  # fmt: skip
    assert sum(results[:100]) == 37 and all(results[100:])  # the others were not held up
    assert await _balance(store, account) == 0
    stored = await store.get_messages([m.id for m in messages])
    assert len(stored) == 37
    assert len(await store.list_cdrs(T0 - 1, T0 + 1000)) == 37


# -- refunds ------------------------------------------------------------------------


async def _end(store: Store, message: NewMessage, status: Status) -> None:
    """Move a message to ``status`` the way dispatch, receipts and cancels do."""
    message_id = message.id
    if status is Status.CANCELLED:  # before any claim: its customer took it back
        result = await store.cancel(message_id, T0 + 2, account_id=message.account_id)
        assert result.outcome is ChangeOutcome.APPLIED
        return
    await store.claim(10, T0, 30)
    if status in (Status.DELIVERED, Status.UNDELIVERED):
        await store.record_segments([SegmentRecord(message_id, 0, "up1", "U1", "u1", T0 + 1)])
        await store.apply_receipts([ReceiptUpdate("up1", "u1", status, T0 + 2)])
    else:
        await store.update_statuses([StatusUpdate(message_id, status, T0 + 2)])


_FINALS = (Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED, Status.REJECTED, Status.FAILED,
           Status.CANCELLED)  # fmt: skip


@pytest.mark.parametrize("policy", list(RefundPolicy), ids=lambda p: p.label)
@pytest.mark.parametrize("status", _FINALS, ids=lambda s: s.label)
async def test_refunds_follow_the_policy_once(
    store: Store, account: Account, make_message: MessageFactory,
    policy: RefundPolicy, status: Status,
) -> None:  # fmt: skip
    await _billed(store, account, 1_000)
    await store.adjust_balance(account.id, refund_policy=policy)
    message = make_message()
    await store.accept([message], charges=[_charge(400)])
    await _end(store, message, status)
    refunded = {
        RefundPolicy.NONE: False,
        RefundPolicy.REJECTED: status in (Status.REJECTED, Status.FAILED, Status.CANCELLED),
        RefundPolicy.UNDELIVERED: status is not Status.DELIVERED,
    }[policy]
    assert policy.refunds(status) == refunded
    assert await _balance(store, account) == (1_000 if refunded else 600)
    # a later final status changes nothing: the first one stands, refunded once
    await store.update_statuses([StatusUpdate(message.id, Status.FAILED, T0 + 3)])
    await store.apply_receipts([ReceiptUpdate("up1", "u1", Status.UNDELIVERED, T0 + 4)])
    assert await _balance(store, account) == (1_000 if refunded else 600)
    (cdr,) = await store.list_cdrs(T0 - 1, T0 + 100)
    assert (cdr.status, cdr.refunded) == (status, 400 if refunded else 0)


async def test_an_expiry_sweep_refunds_as_well(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await _billed(store, account, 1_000)
    await store.adjust_balance(account.id, refund_policy=RefundPolicy.UNDELIVERED)
    message = make_message(expires_at=T0 + 10)
    await store.accept([message], charges=[_charge(400)])
    assert await store.expire_unsent(T0 + 20, 10) == 1
    assert await _balance(store, account) == 1_000


# -- CDRs ---------------------------------------------------------------------------


async def test_a_sent_message_takes_its_connectors_buy_price(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await _billed(store, account, 10**9)
    # 0.00012345 per segment: network first, then country, then default
    await store.put_price_list(StoredPriceList(BUY, "up1", (
        PriceEntry(NET, "23410", 1_234_500), PriceEntry(COUNTRY, "44", 2_000_000),
        PriceEntry(DEFAULT, "", 25_000)), T0))  # fmt: skip
    cases = [  # (network, country, segments, connector) -> buy
        ("23410", "44", 3, "up1", charge(Decimal("0.00012345"), 3)),  # 370.35 -> 370
        ("23415", "44", 1, "up1", charge(Decimal("0.0002"), 1)),
        (None, "49", 1, "up1", charge(Decimal("0.0000025"), 1)),  # 2.5 -> 2 (half even)
        (None, "49", 3, "up1", charge(Decimal("0.0000025"), 3)),  # 7.5 -> 8
        ("23410", "44", 1, "up2", None),  # no buy list for up2: unknown
    ]
    messages = []
    for network, country, segments, _, _ in cases:
        m = make_message(segments=segments)
        messages.append(m)
        await store.accept([m], charges=[_charge(1, country, network)])
    await store.claim(10, T0, 30)
    for m, (_, _, segments, connector, _) in zip(messages, cases, strict=True):
        for index in range(segments):
            await store.record_segments([SegmentRecord(m.id, index, connector, f"U{m.id}{index}",
                                       f"u{m.id}{index}", T0 + 1)])  # fmt: skip
    cdrs = {c.message_id: c for c in await store.list_cdrs(T0 - 1, T0 + 100)}
    for m, (_, _, _, connector, buy) in zip(messages, cases, strict=True):
        expected = None if buy is None else to_micros(buy)
        assert (cdrs[m.id].connector, cdrs[m.id].buy, cdrs[m.id].status) == (
            connector, expected, Status.SENT)  # fmt: skip


async def test_cdrs_page_filter_and_sum_up(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    other = await store.create_account("other", T0, rate_limit=100.0, bind_limit=2)
    await _billed(store, account, 10**6)
    await _billed(store, other, 10**6)
    await store.adjust_balance(account.id, refund_policy=RefundPolicy.REJECTED)
    await store.put_price_list(StoredPriceList(BUY, "up1", (PriceEntry(DEFAULT, "", 500_000),),
                                               T0))  # 50 micro-units a segment
    ours = [make_message(accepted_at=T0 + n) for n in range(5)]
    theirs = [make_message(account_id=other.id, accepted_at=T0 + 10 + n) for n in range(3)]
    for m in ours:
        await store.accept([m], charges=[_charge(100)])
    for m in theirs:
        await store.accept([m], charges=[_charge(70, "49", None)])
    await store.claim(100, T0 + 20, 30)
    await store.record_segments([SegmentRecord(ours[0].id, 0, "up1", "A", "a", T0 + 21)])
    await store.record_segments([SegmentRecord(theirs[0].id, 0, "up2", "B", "b", T0 + 21)])
    await store.update_statuses([StatusUpdate(ours[1].id, Status.REJECTED, T0 + 21)])  # refunded
    page1 = await store.list_cdrs(T0, T0 + 100, limit=3)
    page2 = await store.list_cdrs(T0, T0 + 100, limit=3,
                                  after=(page1[-1].accepted_at, page1[-1].message_id))
    page3 = await store.list_cdrs(T0, T0 + 100, limit=3,
                                  after=(page2[-1].accepted_at, page2[-1].message_id))
    assert [c.message_id for c in page1 + page2 + page3] == [m.id for m in ours + theirs]
    assert [c.message_id for c in await store.list_cdrs(T0, T0 + 100, account_id=other.id)] == [
        m.id for m in theirs]  # fmt: skip
    assert [c.message_id for c in await store.list_cdrs(T0 + 1, T0 + 3)] == [
        m.id for m in ours[1:3]]  # fmt: skip
    by_account = await store.margin(T0, T0 + 100, "account")
    assert [(r.key, r.messages, r.revenue, r.cost, r.unpriced) for r in by_account] == [
        (str(account.id), 5, 400, 50, 0), (str(other.id), 3, 210, 0, 1)]  # fmt: skip
    assert by_account[0].margin == 350
    by_connector = await store.margin(T0, T0 + 100, "connector")
    assert [(r.key, r.messages, r.cost) for r in by_connector] == [
        ("", 6, 0), ("up1", 1, 50), ("up2", 1, 0)]  # fmt: skip
    by_country = await store.margin(T0, T0 + 100, "country", account_id=other.id)
    assert [(r.key, r.revenue) for r in by_country] == [("49", 210)]
    with pytest.raises(InvalidRecord):
        await store.margin(T0, T0 + 100, "planet")


async def _summed(store: Store, since: float, until: float, by: str,
                  account_id: int | None = None) -> list[tuple[str, int, int, int, int]]:
    """The margin of ``[since, until)`` added up here from the CDRs themselves."""
    cdrs, after = [], None
    while True:  # bounded: the test's few hundred CDRs, 1,000 a page
        page = await store.list_cdrs(since, until, account_id=account_id, after=after)
        cdrs += page
        if len(page) < 1000:
            break
        after = (page[-1].accepted_at, page[-1].message_id)
    sums: dict[object, list[int]] = {}
    for c in cdrs:
        key = {"account": c.account_id, "connector": c.connector or "", "country": c.country}[by]
        row = sums.setdefault(key, [0, 0, 0, 0])
        for i, v in enumerate((1, c.sell - c.refunded, c.buy or 0,
                               int(c.connector is not None and c.buy is None))):
            row[i] += v
    return [(str(k), *v) for k, v in sorted(sums.items())]  # type: ignore[misc]


async def test_margins_follow_each_change_between_reads(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    # The SQLite store keeps hourly sums brought up to date by each read: sends
    # (connector, buy price) and refunds change CDRs summed earlier, new CDRs come,
    # and periods cut hours. Each answer must be the sum of the CDRs at that moment.
    other = await store.create_account("other", T0, rate_limit=100.0, bind_limit=2)
    await _billed(store, account, 10**9)
    await _billed(store, other, 10**9)
    await store.adjust_balance(account.id, refund_policy=RefundPolicy.UNDELIVERED)
    await store.put_price_list(StoredPriceList(BUY, "up1", (PriceEntry(DEFAULT, "", 500_000),),
                                               T0))  # up2 has no buy list: unpriced
    hour = 3600  # T0 is on an hour
    periods = [(T0 - hour, T0 + 3 * hour), (T0 - 900, T0 + 5000), (T0 + 100, T0 + 2000),
               (T0 + 1800, T0 + 1801), (T0 + 3599, T0 + 3 * hour - 1), (T0, T0)]
    messages: list[NewMessage] = []

    async def accept(n: int, first: float) -> None:
        for k in range(n):  # spread over hours, accounts and countries
            m = make_message(accepted_at=first + k * 397.5,
                             account_id=other.id if k % 3 == 0 else account.id)
            await store.accept([m], charges=[_charge(100 + k, "49" if k % 2 else "44")])
            messages.append(m)

    async def check() -> None:
        for since, until in periods:
            for by in ("account", "connector", "country"):
                for account_id in (None, other.id):
                    rows = await store.margin(since, until, by, account_id=account_id)
                    assert [(r.key, r.messages, r.revenue, r.cost, r.unpriced) for r in rows] \
                        == await _summed(store, since, until, by, account_id), (since, until, by)

    await accept(20, T0 - 1800)
    await check()
    await store.claim(100, T0 + 9000, 30)
    for k, m in enumerate(messages[:12]):  # sent through up1 or up2
        await store.record_segments([SegmentRecord(m.id, 0, f"up{1 + k % 2}", f"U{k}", f"u{k}",
                                                   T0 + 9001)])  # fmt: skip
    await check()
    await store.apply_receipts([ReceiptUpdate(f"up{1 + k % 2}", f"u{k}", Status.UNDELIVERED
                                              if k % 4 == 0 else Status.DELIVERED, T0 + 9002)
                                for k in range(6)])  # some refunded  # fmt: skip
    await store.update_statuses([StatusUpdate(messages[15].id, Status.REJECTED, T0 + 9003)])
    await accept(9, T0 + 100)  # new CDRs in hours summed already
    await check()
    await check()  # nothing changed since: the same answers


async def test_a_quota_and_a_charge_hold_together(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    from herald.store import DailyQuota, QuotaExceeded

    await _billed(store, account, 250)
    quota = DailyQuota(account.id, 20_000, 2)
    await store.accept([make_message()], quota=quota, charges=[_charge(100)])
    with pytest.raises(InsufficientFunds):  # the quota has room, the balance has not
        await store.accept([make_message()], quota=quota, charges=[_charge(200)])
    assert await store.daily_usage(account.id, 20_000) == 1  # not counted
    await store.accept([make_message()], quota=quota, charges=[_charge(100)])
    with pytest.raises(QuotaExceeded):  # the balance has room, the quota has not
        await store.accept([make_message()], quota=quota, charges=[_charge(10)])
    assert await _balance(store, account) == 50  # not charged
