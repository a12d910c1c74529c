"""Store contract: the live pumping defence's settings, decisions (and their
webhook events), spend per country, history and outcomes; Verify texts; cancel."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from herald.store import (
    Account,
    Channel,
    Conflict,
    EventKind,
    FraudAction,
    FraudDecision,
    FraudMode,
    FraudReason,
    FraudSettings,
    InvalidRecord,
    NotFound,
    Status,
    StatusUpdate,
    Store,
    UnknownAccount,
    Verification,
    VerificationStatus,
)

from .conftest import T0, MessageFactory


def _decision(account: Account, n: int, *, action: FraudAction = FraudAction.ALLOW,
              at: float = T0, country: str = "GB", price: int | None = 40_000,
              message_id: str | None = None, engine: bool = True) -> FraudDecision:  # fmt: skip
    return FraudDecision(
        f"dec{n:04d}", account.id, at, "+447700900123", action,
        (FraudReason("within_budget", "GB", {"excess": 0.1, "budget": 3.0}),), engine,
        country, price, "EUR", f"ver{n:04d}", message_id,
        {"use_case": "login", "ip": "192.0.2.1"},
    )  # fmt: skip


async def test_settings_default_and_round_trip(store: Store, account: Account) -> None:
    assert await store.get_fraud_settings(account.id) == FraudSettings()
    settings = FraudSettings(FraudMode.MONITOR, True, ("+4477009",), ("+882", "+44770090012"),
                             {"GB": Decimal("5.50"), "NG": Decimal("0")})  # fmt: skip
    await store.set_fraud_settings(account.id, settings)
    assert await store.get_fraud_settings(account.id) == settings
    await store.set_fraud_settings(account.id, FraudSettings(deny=("+882",)))  # replaced whole
    assert await store.get_fraud_settings(account.id) == FraudSettings(deny=("+882",))
    with pytest.raises(UnknownAccount):
        await store.set_fraud_settings(account.id + 99, settings)
    with pytest.raises(UnknownAccount):
        await store.get_fraud_settings(account.id + 99)


@pytest.mark.parametrize(("field", "value"), [
    ("allow", ("4477",)), ("deny", ("+44a",)), ("deny", ("+",)),
    ("country_caps", {"gb": Decimal(1)}), ("country_caps", {"GB": Decimal(-1)}),
])  # fmt: skip
def test_settings_refuse_malformed_entries(field: str, value: object) -> None:
    with pytest.raises(InvalidRecord):
        FraudSettings(**{field: value})  # type: ignore[arg-type]


async def test_decisions_read_back_newest_first(store: Store, account: Account) -> None:
    first = _decision(account, 1, at=T0)
    second = _decision(account, 2, action=FraudAction.BLOCK, at=T0 + 1)
    for d in (first, second):
        await store.record_fraud_decision(d)
    assert await store.get_fraud_decision(first.id, account.id) == first
    with pytest.raises(NotFound):
        await store.get_fraud_decision(first.id, account.id + 1)
    assert await store.list_fraud_decisions(account.id) == (second, first)
    assert await store.list_fraud_decisions(account.id, action=FraudAction.BLOCK) == (second,)
    assert await store.list_fraud_decisions(account.id, since=T0 + 0.5) == (second,)
    assert await store.list_fraud_decisions(account.id, until=T0 + 0.5) == (first,)
    assert await store.list_fraud_decisions(account.id, verification_id="ver0001") == (first,)
    assert await store.list_fraud_decisions(account.id, limit=1) == (second,)
    assert await store.list_fraud_decisions(account.id + 1) == ()
    assert await store.get_fraud_decisions(["dec0002", "nope"]) == {"dec0002": second}


async def test_decisions_of_one_instant_are_ordered_by_id(store: Store,
                                                          account: Account) -> None:  # fmt: skip
    for n in (2, 3, 1):
        await store.record_fraud_decision(_decision(account, n))
    assert [d.id for d in await store.list_fraud_decisions(account.id)] == [
        "dec0003", "dec0002", "dec0001"]
    assert [d.id for d in await store.list_fraud_decisions(account.id, limit=2)] == [
        "dec0003", "dec0002"]
    assert [d.id for d in await store.fraud_history(T0)] == ["dec0001", "dec0002", "dec0003"]


async def test_a_decision_id_is_recorded_once(store: Store, account: Account) -> None:
    first = _decision(account, 1)
    await store.record_fraud_decision(first)
    with pytest.raises(Conflict):  # the port's error, not a store failure
        await store.record_fraud_decision(replace(first, action=FraudAction.BLOCK))
    assert await store.get_fraud_decision(first.id, account.id) == first


async def test_a_block_writes_its_webhook_event(store: Store) -> None:
    hooked = await store.create_account("hooked", T0, rate_limit=10.0, bind_limit=1,
                                        callback_url="https://example.com/hook")
    quiet = await store.create_account("quiet", T0, rate_limit=10.0, bind_limit=1)
    await store.record_fraud_decision(_decision(hooked, 1))  # an allow: no event
    await store.record_fraud_decision(_decision(hooked, 2, action=FraudAction.WOULD_BLOCK))
    await store.record_fraud_decision(_decision(hooked, 3, action=FraudAction.BLOCK))
    await store.record_fraud_decision(_decision(quiet, 4, action=FraudAction.BLOCK))  # no URL
    events = await store.claim_outbox(Channel.WEBHOOK, T0 + 10, T0 + 40, 10)
    assert [(e.kind, e.subject_id, e.url) for e in events] == [
        (EventKind.FRAUD, "dec0003", "https://example.com/hook")]


async def test_spend_counts_what_was_let_through(store: Store, account: Account) -> None:
    await store.record_fraud_decision(_decision(account, 1, at=T0 - 90_000))  # a day ago
    await store.record_fraud_decision(_decision(account, 2, at=T0 - 10))
    await store.record_fraud_decision(_decision(account, 3, action=FraudAction.WOULD_BLOCK))
    await store.record_fraud_decision(_decision(account, 4, action=FraudAction.BLOCK))
    await store.record_fraud_decision(_decision(account, 5, country="FR"))
    await store.record_fraud_decision(_decision(account, 6, price=None))
    assert await store.fraud_spend(account.id, "GB", T0 - 86_400) == 80_000
    assert await store.fraud_spend(account.id, "DE", T0 - 86_400) == 0


async def test_a_decision_is_recorded_within_a_ceiling_or_not_at_all(
    store: Store, account: Account,
) -> None:
    await store.record_fraud_decision(_decision(account, 1))  # 40,000 spent in GB
    await store.record_fraud_decision(_decision(account, 2, at=T0 - 90_000))  # before `since`
    ceiling = Decimal("100000")
    assert await store.record_within_ceiling(_decision(account, 3), ceiling, T0 - 86_400) is None
    # 80,000 spent: another 40,000 would pass 100,000; nothing is stored.
    assert await store.record_within_ceiling(_decision(account, 4), ceiling,
                                             T0 - 86_400) == 80_000  # fmt: skip
    with pytest.raises(NotFound):
        await store.get_fraud_decision("dec0004", account.id)
    assert await store.record_within_ceiling(_decision(account, 5, price=20_000), ceiling,
                                             T0 - 86_400) is None  # fmt: skip
    assert await store.fraud_spend(account.id, "GB", T0 - 86_400) == 100_000  # exactly full
    # Another country has its own ceiling; a fractional ceiling compares exactly.
    assert await store.record_within_ceiling(_decision(account, 6, country="FR"),
                                             Decimal("39999.5"), T0 - 86_400) == 0  # fmt: skip
    with pytest.raises(Conflict):
        await store.record_within_ceiling(_decision(account, 5, price=0), ceiling, T0 - 86_400)


async def test_history_and_outcomes(store: Store, account: Account,
                                    make_message: MessageFactory) -> None:  # fmt: skip
    delivered, pending = make_message(), make_message()
    await store.accept([delivered, pending])
    await store.record_fraud_decision(_decision(account, 1, at=T0 - 8 * 86_400))
    await store.record_fraud_decision(_decision(account, 2, message_id=delivered.id))
    await store.record_fraud_decision(_decision(account, 3, engine=False))  # a customer list
    await store.record_fraud_decision(_decision(account, 4, at=T0 + 1, message_id=pending.id))
    assert [d.id for d in await store.fraud_history(T0 - 86_400)] == ["dec0002", "dec0004"]
    await store.update_statuses([StatusUpdate(delivered.id, Status.DELIVERED, T0 + 5)])
    await store.record_conversion(delivered.id, account.id, T0 + 20)
    outcomes = {o.message_id: o for o in await store.fraud_outcomes([delivered.id, pending.id,
                                                                      "missing"])}
    assert set(outcomes) == {delivered.id, pending.id}
    assert (outcomes[delivered.id].status, outcomes[delivered.id].done_at,
            outcomes[delivered.id].converted_at) == (Status.DELIVERED, T0 + 5, T0 + 20)
    assert (outcomes[pending.id].status, outcomes[pending.id].converted_at) == (None, None)


async def test_the_tail_gives_each_engine_decision_and_conversion_once(
        store: Store, account: Account, make_message: MessageFactory) -> None:  # fmt: skip
    sent, other = make_message(), make_message()
    await store.accept([sent, other])
    await store.record_fraud_decision(_decision(account, 1, message_id=sent.id))
    await store.record_conversion(sent.id, account.id, T0 + 3)
    start = await store.fraud_tail(None)  # the cursor of now, nothing before it
    assert (start.decisions, start.conversions) == ((), ())
    nothing = await store.fraud_tail(start.cursor)
    assert (nothing.decisions, nothing.conversions) == ((), ())
    second = _decision(account, 2, at=T0 + 5, message_id=other.id)
    await store.record_fraud_decision(second)
    await store.record_fraud_decision(_decision(account, 3, at=T0 + 6, engine=False))
    await store.record_fraud_decision(_decision(account, 4, action=FraudAction.BLOCK,
                                                at=T0 + 7))  # fmt: skip
    await store.record_conversion(other.id, account.id, T0 + 9)
    tail = await store.fraud_tail(nothing.cursor)
    assert [d.id for d in tail.decisions] == ["dec0002", "dec0004"]  # the engine's only
    assert tail.decisions[0] == second
    assert tail.conversions == ((other.id, T0 + 9),)
    again = await store.fraud_tail(tail.cursor)
    assert (again.decisions, again.conversions) == ((), ())
    await store.record_conversion(other.id, account.id, T0 + 12)  # recorded before: kept
    assert (await store.fraud_tail(again.cursor)).conversions == ()


async def test_verify_templates(store: Store, account: Account) -> None:
    assert await store.verify_templates(account.id) == {}
    await store.set_verify_template(account.id, "en", "{app}: {code}")
    await store.set_verify_template(account.id, "pt-BR", "{code} é seu código {app}")
    await store.set_verify_template(account.id, "en", "{app} code {code}")
    assert await store.verify_templates(account.id) == {
        "en": "{app} code {code}", "pt-BR": "{code} é seu código {app}"}
    await store.set_verify_template(account.id, "en", None)
    assert await store.verify_templates(account.id) == {"pt-BR": "{code} é seu código {app}"}
    with pytest.raises(UnknownAccount):
        await store.set_verify_template(account.id + 99, "en", "{code}")


async def test_cancel_verification(store: Store, account: Account) -> None:
    v = Verification("ver0001", account.id, "+14155552671", "login", "Acme", "en", 6,
                     VerificationStatus.PENDING, T0, T0 + 600, b"s" * 16, b"h" * 32)
    await store.start_verification(v, "msg-1", window=3600, limit=5)
    canceled = await store.cancel_verification(v.id, account.id, T0 + 1)
    assert canceled.status is VerificationStatus.CANCELED
    with pytest.raises(Conflict):
        await store.cancel_verification(v.id, account.id, T0 + 2)
    with pytest.raises(NotFound):
        await store.cancel_verification(v.id, account.id + 1, T0 + 2)
