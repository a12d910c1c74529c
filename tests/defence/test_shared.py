"""One pumping defence across intake processes and nodes (docs/fraud.md, "Live";
issues 10 and 11): two :class:`LiveDefence` on one store, two SQLite stores on
one file (two intake processes) and two PostgreSQL stores on one database (two
nodes), each learning every decision and conversion the other made.

An attack's codes alternate between the two; each is judged after the other's
last one was committed and a poll (1 s) has passed, so each engine has fed
every earlier request, in time order, once: the defence blocks after as many
codes as one engine fed the whole attack does (counted here against a bare
:class:`herald.fraud.Engine`). Fed twice, it would block sooner; not fed, the
attack would get about twice as many codes through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from herald.defence import LiveDefence
from herald.fraud import Action, Engine, Prices, Request
from herald.ids import SortableIdGenerator
from herald.rating import KeyKind, PriceKey, Rating
from herald.store import Account, NewMessage, Source, SQLiteConfig, SQLiteStore, Store

T0 = 1_800_000_000.0
#: A price the range's budgets meet within a few codes (the engine's budgets are money).
#: Not more: two codes at 1.00 in flight to a never-seen country pass its source's
#: unfamiliar group (1.5 USD) and the second would be refused before any range is blocked.
PRICE = Decimal("0.35")
RATING = Rating(PriceKey(KeyKind.COUNTRY, "1"), PRICE, 1, PRICE, "1")
#: Numbers of one 1k range, spaced so that they are not a sequential sweep.
RANGE = [f"+1415555{2600 + 7 * n:04d}" for n in range(40)]
#: Seconds between two requests of the attack: more than a poll.
STEP = 5.0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def stores(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> AsyncIterator[tuple[Store, Store]]:  # fmt: skip
    """Two stores on one database: two processes on one SQLite file, two nodes on
    one PostgreSQL database."""
    opened: list[Any] = []
    try:
        if request.param == "sqlite":
            config = SQLiteConfig(data_dir=tmp_path / "data")
            opened += [SQLiteStore.open(config), SQLiteStore.open(config)]
        else:
            from herald.store.postgres import PostgresStore

            dsn = request.getfixturevalue("pg_store_dsn")
            opened += [await PostgresStore.open(dsn), await PostgresStore.open(dsn)]
        yield opened[0], opened[1]
    finally:
        for store in opened:
            await store.aclose()


async def _account(store: Store) -> Account:
    return await store.create_account("acme", T0, rate_limit=100.0, bind_limit=2)


async def _prepared(*stores: Store, now: float = T0) -> list[LiveDefence]:
    nodes = [LiveDefence(store, SortableIdGenerator()) for store in stores]
    for node in nodes:
        await node.prepare(now)
    return nodes


def _engine_figure(account: Account) -> int:
    """Codes one engine fed the whole attack lets through before its first block."""
    engine = Engine(Prices(country={"US": float(PRICE)}))
    for n, to in enumerate(RANGE):
        request = Request(f"r{n}", round((T0 + n * STEP) * 1000), str(account.id), "login",
                          to, "US")  # fmt: skip
        if engine.request(request).action is Action.BLOCK:
            return n
    raise AssertionError("one engine never blocked the attack")


async def _attack(nodes: list[LiveDefence], account: Account, start: float = T0
                  ) -> tuple[int, float]:  # fmt: skip
    """The range's numbers through the nodes in turn until the first refusal: the
    codes sent before it, and the time of the next request."""
    for n, to in enumerate(RANGE):
        now = start + n * STEP
        screening = await nodes[n % len(nodes)].screen(
            account_id=account.id, to=to, use_case="login", message_id=f"m{n}",
            rating=RATING, now=now)  # fmt: skip
        if screening.refuse:
            return n, now + STEP
    raise AssertionError("the attack was never blocked")


async def test_an_attack_spread_over_two_is_blocked_as_through_one(
        stores: tuple[Store, Store]) -> None:  # fmt: skip
    a, b = stores
    account = await _account(a)
    figure = _engine_figure(account)
    assert figure >= 2  # an attack, not a first-code refusal
    nodes = await _prepared(a, b)
    sent, later = await _attack(nodes, account)
    # Each node's own codes and the other's, each fed once: the same count as one engine.
    assert sent == figure
    # Both refuse the range now; the other node was told of the block.
    for node in nodes:
        again = await node.screen(account_id=account.id, to=RANGE[-1], use_case="login",
                                  message_id="again", rating=RATING, now=later)  # fmt: skip
        assert again.refuse, again.decision
        assert again.decision.reasons[-1].code == "cell_blocked"
        later += STEP


async def test_one_process_alone_feeds_its_own_decisions_once(
        stores: tuple[Store, Store]) -> None:  # fmt: skip
    a, _b = stores
    account = await _account(a)
    (node,) = await _prepared(a)
    assert (await _attack([node], account))[0] == _engine_figure(account)


async def test_a_code_typed_through_one_makes_the_number_trusted_on_the_other(
        stores: tuple[Store, Store]) -> None:  # fmt: skip
    a, b = stores
    account = await _account(a)
    node_a, node_b = await _prepared(a, b)
    message = _message(account, RANGE[0], T0)
    await a.accept([message])
    first = await node_a.screen(account_id=account.id, to=RANGE[0], use_case="login",
                                message_id=message.id, rating=RATING, now=T0)  # fmt: skip
    assert not first.refuse
    # The user types the code through B, 20 s later (as the API does: stored, then fed).
    await node_b.screen(account_id=account.id, to="+442079460000", use_case="login",
                        message_id="elsewhere", rating=None, now=T0 + 10)  # fmt: skip
    await b.record_conversion(message.id, account.id, T0 + 20)
    node_b.converted(message.id, T0 + 20)
    sent, later = await _attack([node_a], account, start=T0 + 30)
    assert sent >= 1
    trusted = await node_a.screen(account_id=account.id, to=RANGE[0], use_case="login",
                                  message_id="trusted", rating=RATING, now=later)  # fmt: skip
    assert not trusted.refuse, trusted.decision
    assert "trusted_number" in [r.code for r in trusted.decision.reasons]


async def test_a_restart_rebuilds_the_state_the_two_hold(stores: tuple[Store, Store]) -> None:
    a, b = stores
    account = await _account(a)
    nodes = await _prepared(a, b)
    _sent, later = await _attack(nodes, account)
    for node in nodes:  # each catches up with the other's last decision
        await node.screen(account_id=account.id, to="+442079460000", use_case="login",
                          message_id="poll", rating=None, now=later)  # fmt: skip
    held = [node.blocks(account.id, later) for node in nodes]
    assert held[0] and held[0] == held[1]
    (restarted,) = await _prepared(b, now=later)
    assert restarted.blocks(account.id, later) == held[0]


def _message(account: Account, to: str, at: float) -> NewMessage:
    return NewMessage(
        id=SortableIdGenerator().new_id(at), account_id=account.id, source=Source.HTTP, to=to,
        sender="ACME", body=b"code", encoding="gsm7", data_coding=0, segments=1,
        accepted_at=at, expires_at=at + 3600)  # fmt: skip
