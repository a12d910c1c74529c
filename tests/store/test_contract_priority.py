"""Store contract: claims by priority class, and accounts taking turns (issue 9).

A table of waiting messages goes in, the order and the limits of what claims
hand out are checked. Written against the :class:`~herald.store.Store`
protocol only.
"""

from __future__ import annotations

import pytest

from herald.store import Account, InvalidRecord, NewMessage, Priority, Store

from .conftest import T0, MessageFactory

P = Priority


async def _accounts(store: Store, count: int) -> list[Account]:
    return [await store.create_account(f"acct{n}", T0, rate_limit=100.0, bind_limit=1)
            for n in range(count)]


def _labels(claimed: tuple[object, ...], names: dict[str, str]) -> list[str]:
    return [names[m.id] for m in claimed]  # type: ignore[attr-defined]


async def _waiting(store: Store, make: MessageFactory,
                   rows: list[tuple[str, Account, Priority]]) -> dict[str, str]:
    """Accept one message per (label, account, class), in order; their labels by id."""
    messages: list[NewMessage] = []
    names: dict[str, str] = {}
    for label, account, cls in rows:
        m = make(account_id=account.id, priority=cls)
        messages.append(m)
        names[m.id] = label
    await store.accept(messages)
    return names


async def test_a_class_goes_before_the_next_whatever_its_age(
    store: Store, make_message: MessageFactory
) -> None:
    (a,) = await _accounts(store, 1)
    names = await _waiting(store, make_message, [
        ("bulk1", a, P.BULK), ("mkt1", a, P.MARKETING), ("bulk2", a, P.BULK),
        ("otp1", a, P.OTP), ("tx1", a, P.TRANSACTIONAL), ("otp2", a, P.OTP),
    ])  # fmt: skip
    claimed = await store.claim(10, T0 + 60, lease=30)
    assert _labels(claimed, names) == ["otp1", "otp2", "tx1", "bulk1", "bulk2", "mkt1"]
    assert [m.priority for m in claimed] == [P.OTP, P.OTP, P.TRANSACTIONAL, P.BULK, P.BULK,
                                             P.MARKETING]


async def test_accounts_take_turns_within_a_class(
    store: Store, make_message: MessageFactory
) -> None:
    """A's backlog is older than everything of B and C; they still share."""
    a, b, c = await _accounts(store, 3)
    rows = [(f"a{n}", a, P.BULK) for n in range(6)]
    rows += [("b0", b, P.BULK), ("b1", b, P.BULK), ("c0", c, P.BULK)]
    names = await _waiting(store, make_message, rows)
    claimed = await store.claim(6, T0 + 60, lease=30)
    assert _labels(claimed, names) == ["a0", "b0", "c0", "a1", "b1", "a2"]
    # what one account cannot use goes to the others
    assert _labels(await store.claim(10, T0 + 60, lease=30), names) == ["a3", "a4", "a5"]


@pytest.mark.parametrize(("claims", "expected"), [
    (1, ["a0", "b0", "a1", "b1", "a2", "b2"]),  # one at a time: the turn passes on
    (2, ["a0", "b0", "a1", "b1", "a2", "b2"]),
    (3, ["a0", "b0", "a1", "b1", "a2", "b2"]),
])  # fmt: skip
async def test_the_turn_carries_over_from_claim_to_claim(
    store: Store, make_message: MessageFactory, claims: int, expected: list[str]
) -> None:
    a, b = await _accounts(store, 2)
    rows = [(f"{x}{n}", acct, P.TRANSACTIONAL) for n in range(3) for x, acct in (("a", a),)]
    rows += [(f"b{n}", b, P.TRANSACTIONAL) for n in range(3)]
    names = await _waiting(store, make_message, rows)
    order: list[str] = []
    for _ in range(10):  # bounded: each claim takes at least one until none is left
        claimed = await store.claim(claims, T0 + 60, lease=30)
        if not claimed:
            break
        order += _labels(claimed, names)
    assert sorted(order) == sorted(expected)
    if claims < 3:  # turns of one message each: strictly alternating
        assert order == expected
    # while both wait, neither gets ahead by more than a turn's share
    for n in range(1, 7):
        ahead = sum(1 if x[0] == "a" else -1 for x in order[:n])
        assert abs(ahead) <= 2, order


@pytest.mark.parametrize(("limits", "expected"), [
    ((5, 5, 5, 5), ["otp0", "tx0", "bulk0", "bulk1", "mkt0"]),
    ((5, 5, 0, 0), ["otp0", "tx0"]),  # no room for bulk: urgent only
    ((5, 5, 2, 0), ["otp0", "tx0"]),  # urgent ones placed leave bulk no room
    ((1, 1, 1, 1), ["otp0"]),  # the caps count the classes before them too
    ((5, 2, 4, 4), ["otp0", "tx0", "bulk0", "bulk1"]),
    ((0, 5, 5, 5), ["tx0", "bulk0", "bulk1", "mkt0"]),  # each class its own room
])  # fmt: skip
async def test_class_limits_cap_each_class_with_those_before_it(
    store: Store, make_message: MessageFactory, limits: tuple[int, ...], expected: list[str]
) -> None:
    (a,) = await _accounts(store, 1)
    names = await _waiting(store, make_message, [
        ("mkt0", a, P.MARKETING), ("bulk0", a, P.BULK), ("bulk1", a, P.BULK),
        ("tx0", a, P.TRANSACTIONAL), ("otp0", a, P.OTP),
    ])  # fmt: skip
    claimed = await store.claim(10, T0 + 60, lease=30, class_limits=limits)
    assert _labels(claimed, names) == expected


async def test_expired_and_leased_messages_are_not_handed_out(
    store: Store, make_message: MessageFactory
) -> None:
    a, b = await _accounts(store, 2)
    old = make_message(account_id=a.id, priority=P.OTP, accepted_at=T0, expires_at=T0 + 30)
    fresh = [make_message(account_id=b.id, priority=P.OTP) for _ in range(2)]
    await store.accept([old, *fresh])
    claimed = await store.claim(2, T0 + 60, lease=30)
    assert [m.id for m in claimed] == [m.id for m in fresh]
    assert (await store.get_message(old.id)).status.label == "expired"
    assert await store.claim(5, T0 + 61, lease=30) == ()  # both leased


async def test_class_limits_must_name_every_class(store: Store) -> None:
    with pytest.raises(InvalidRecord, match="class_limits"):
        await store.claim(5, T0, lease=30, class_limits=(1, 2))


async def test_priority_and_tag_are_stored_and_the_accounts_default_kept(
    store: Store, make_message: MessageFactory
) -> None:
    (a,) = await _accounts(store, 1)
    assert a.priority is None  # messages that name no class: transactional
    m = make_message(account_id=a.id, priority=P.MARKETING, tag="promo-may")
    await store.accept([m])
    got = await store.get_message(m.id)
    assert (got.priority, got.tag) == (P.MARKETING, "promo-may")
    import dataclasses

    await store.update_account(dataclasses.replace(a, priority=P.BULK))
    assert (await store.get_account(a.id)).priority is P.BULK


@pytest.mark.parametrize("limit", [1, 3, 8])
async def test_accounts_share_segments_not_messages(
    store: Store, make_message: MessageFactory, limit: int
) -> None:
    """Deficit round robin: A's messages have 3 parts, B's 1; over many claims of any
    size, each gets about the same number of parts onto the connector (one message
    per turn would give A three times B's)."""
    a, b = await _accounts(store, 2)
    await store.accept([make_message(account_id=a.id, priority=P.BULK, segments=3)
                        for _ in range(60)])
    await store.accept([make_message(account_id=b.id, priority=P.BULK) for _ in range(120)])
    parts = {a.id: 0, b.id: 0}
    for _ in range(90 // limit):  # bounded: both backlogs outlast the claims
        for m in await store.claim(limit, T0 + 60, lease=30):
            parts[m.account_id] += m.segments
    assert parts[b.id] > 40, parts  # both kept claiming
    assert abs(parts[a.id] - parts[b.id]) <= 6, parts  # two of A's messages at most


async def test_a_long_message_waits_for_its_credit_but_is_never_starved(
    store: Store, make_message: MessageFactory
) -> None:
    a, b = await _accounts(store, 2)
    big = make_message(account_id=a.id, priority=P.BULK, segments=40)
    await store.accept([big])
    await store.accept([make_message(account_id=b.id, priority=P.BULK) for _ in range(200)])
    order = []
    for _ in range(60):  # one message per claim: the tightest room there is
        order += [m.id for m in await store.claim(1, T0 + 60, lease=30)]
    assert big.id in order
    assert 20 <= order.index(big.id) <= 45, order.index(big.id)  # after ~40 parts of B's
