"""Store contract: account controls, the daily quota counted with the accept, opt-outs."""

from __future__ import annotations

import asyncio

import pytest

from herald.ids import SortableIdGenerator
from herald.store import (
    NO_CONTROLS,
    Account,
    AccountControls,
    DailyQuota,
    IdempotencyRecord,
    InboundMessage,
    InvalidRecord,
    OptOutChange,
    QuotaExceeded,
    Store,
    UnknownAccount,
)

from .conftest import T0, MessageFactory

DAY = 20_000


async def test_controls_round_trip_and_default(store: Store, account: Account) -> None:
    assert await store.get_controls(account.id) == NO_CONTROLS
    controls = AccountControls(5, True, ("ACME", "+49151*"), ("US:numeric",), ("DE", "FR"),
                               ("10.0.0.0/8",), ("192.0.2.0/24", "2001:db8::/32"))
    await store.set_controls(account.id, controls)
    assert await store.get_controls(account.id) == controls
    await store.set_controls(account.id, NO_CONTROLS)
    assert await store.get_controls(account.id) == NO_CONTROLS
    with pytest.raises(UnknownAccount):
        await store.set_controls(account.id + 99, controls)
    with pytest.raises(UnknownAccount):
        await store.get_controls(account.id + 99)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"daily_quota": -1}, "daily_quota"),
        ({"senders": ("",)}, "senders"),
        ({"countries": ("X" * 65,)}, "countries"),
        ({"api_networks": ("10.0.0.0/8",) * 1001}, "api_networks"),
    ],
)
def test_controls_records_check_their_bounds(bad: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        AccountControls(**bad)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("limit", "used_before", "batch", "accepted"),
    [
        (3, 0, 3, True),  # exactly the quota
        (3, 2, 1, True),  # the last one
        (3, 3, 1, False),  # one past it
        (3, 2, 2, False),  # a batch that would cross it: all or nothing
        (0, 0, 1, False),  # a quota of 0 refuses everything
    ],
)
async def test_the_quota_at_its_boundary(
    store: Store, account: Account, make_message: MessageFactory,
    limit: int, used_before: int, batch: int, accepted: bool,
) -> None:  # fmt: skip
    quota = DailyQuota(account.id, DAY, limit)
    if used_before:
        await store.accept([make_message() for _ in range(used_before)], quota=quota)
    messages = [make_message() for _ in range(batch)]
    if accepted:
        await store.accept(messages, quota=quota)
        assert await store.daily_usage(account.id, DAY) == used_before + batch
        await store.get_message(messages[0].id)
    else:
        with pytest.raises(QuotaExceeded) as info:
            await store.accept(messages, quota=quota)
        assert (info.value.limit, info.value.used, info.value.wanted) == (
            limit, used_before, batch)
        assert await store.daily_usage(account.id, DAY) == used_before  # nothing counted
        assert (await store.get_messages([m.id for m in messages])) == {}  # nor stored


async def test_concurrent_accepts_never_pass_the_quota(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    quota = DailyQuota(account.id, DAY, 25)
    results = await asyncio.gather(
        *(store.accept([make_message()], quota=quota) for _ in range(60)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert [r for r in results if r is not None and not isinstance(r, QuotaExceeded)] == []
    assert len(refused) == 35
    assert await store.daily_usage(account.id, DAY) == 25


async def test_the_quota_counts_segments_and_days_apart(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    by_segments = DailyQuota(account.id, DAY, 5, segments=True)
    await store.accept([make_message(segments=3)], quota=by_segments)
    with pytest.raises(QuotaExceeded):
        await store.accept([make_message(segments=3)], quota=by_segments)
    await store.accept([make_message(segments=2)], quota=by_segments)
    assert await store.daily_usage(account.id, DAY) == 5
    await store.accept([make_message(segments=3)], quota=DailyQuota(account.id, DAY + 1, 5, True))
    assert await store.daily_usage(account.id, DAY + 1) == 3


async def test_an_idempotent_replay_counts_nothing(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    quota = DailyQuota(account.id, DAY, 1)
    record = IdempotencyRecord(account.id, "k", b"h" * 32, 202, b"{}", T0, T0 + 60)
    assert await store.accept([make_message()], idempotency=record, quota=quota) is None
    again = await store.accept([make_message()], idempotency=record, quota=quota)
    assert again is not None and await store.daily_usage(account.id, DAY) == 1


async def test_opt_outs_change_and_are_followed_by_seq(store: Store, account: Account) -> None:
    other = await store.create_account("other", T0, rate_limit=1.0, bind_limit=1)
    changed = await store.change_opt_outs(account.id, [
        OptOutChange("491", True, T0, "import"), OptOutChange("492", True, T0, "import"),
        OptOutChange("491", True, T0, "import"),  # already out: no change
    ])  # fmt: skip
    assert changed == 2
    await store.change_opt_outs(other.id, [OptOutChange("491", True, T0, "cli")])
    assert [e.number for e in await store.list_opt_outs(account.id)] == ["491", "492"]
    seen = await store.opt_out_changes(0, 100)
    assert [(e.account_id, e.number) for e in seen] == [
        (account.id, "491"), (account.id, "492"), (other.id, "491")]
    last = seen[-1].seq
    assert await store.change_opt_outs(account.id, [OptOutChange("491", False, T0 + 1, "cli")]) == 1
    news = await store.opt_out_changes(last, 100)
    assert [(e.number, e.opted_out, e.source) for e in news] == [("491", False, "cli")]
    assert [e.number for e in await store.list_opt_outs(account.id)] == ["492"]
    assert len(await store.opt_out_changes(0, 2)) == 2  # paged
    with pytest.raises(UnknownAccount):
        await store.change_opt_outs(account.id + 99, [OptOutChange("1", True, T0, "cli")])


async def test_each_change_in_a_batch_counts_and_the_last_one_stays(
    store: Store, account: Account
) -> None:
    changed = await store.change_opt_outs(account.id, [
        OptOutChange("491", True, T0, "import"), OptOutChange("491", False, T0 + 1, "cli"),
        OptOutChange("491", False, T0 + 2, "cli"),  # no news
        OptOutChange("492", False, T0 + 3, "cli"),  # never out: an entry all the same
    ])  # fmt: skip
    assert changed == 3
    assert await store.list_opt_outs(account.id) == ()
    entries = await store.opt_out_changes(0, 10)
    assert [(e.number, e.opted_out, e.updated_at, e.source) for e in entries] == [
        ("491", False, T0 + 1, "cli"), ("492", False, T0 + 3, "cli")]
    assert entries[0].seq < entries[1].seq
    assert await store.change_opt_outs(account.id, []) == 0


async def test_opt_outs_are_listed_in_pages_by_number(store: Store, account: Account) -> None:
    numbers = [f"4917{i:04d}" for i in range(7)]
    await store.change_opt_outs(account.id, [OptOutChange(n, True, T0, "cli") for n in numbers])
    await store.change_opt_outs(account.id, [OptOutChange(numbers[3], False, T0, "cli")])
    seen: list[str] = []
    after: str | None = None
    for _ in range(10):  # bounded
        page = await store.list_opt_outs(account.id, after=after, limit=2)
        seen += [e.number for e in page]
        if len(page) < 2:
            break
        after = page[-1].number
    assert seen == numbers[:3] + numbers[4:]  # in order, once each, not the one opted in
    assert await store.list_opt_outs(account.id, after=numbers[-1]) == ()
    assert [e.number for e in await store.list_opt_outs(account.id, limit=1)] == numbers[:1]


async def test_an_inbound_stop_is_stored_with_its_opt_out(store: Store, account: Account) -> None:
    ids = SortableIdGenerator()

    def inbound(sender: str, body: bytes) -> InboundMessage:
        return InboundMessage(ids.new_id(T0), account.id, "4915100000", sender, body, "gsm7", 0,
                              "up", T0)

    stop = inbound("4917012345", b"STOP")
    await store.add_inbound(stop, opt_out=OptOutChange("4917012345", True, T0, "keyword"))
    assert (await store.get_inbound(stop.id)).body == b"STOP"
    assert [e.number for e in await store.list_opt_outs(account.id)] == ["4917012345"]
    start = inbound("4917012345", b"START")
    await store.add_inbound(start, opt_out=OptOutChange("4917012345", False, T0, "keyword"))
    assert await store.list_opt_outs(account.id) == ()
    await store.get_inbound(start.id)
