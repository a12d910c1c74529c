"""The pumping defence for OTP submits over SMPP (docs/fraud.md, "Live"; docs/smpp.md):
screened when the account enables it, refused with ESME_RFRAUDBLOCKED, never
stored or charged, every decision recorded with its reasons."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from herald.accounts import Accounts
from herald.defence import LiveDefence
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.net import ServerSettings, SmppServer
from herald.rating import parse_price_list
from herald.smpp.pdus import SmeAddress, SubmitMulti, SubmitSm
from herald.smpp_front import CustomerSmpp, SmppNotifier
from herald.smpp_front._screen import ESME_RFRAUDBLOCKED
from herald.store import (
    FraudAction,
    FraudSettings,
    MessageFilter,
    PriceSide,
    SQLiteConfig,
    SQLiteStore,
)

from .test_front import Front, _registry, bound

#: A price the range's budgets meet within a few codes (the engine's budgets are money).
#: Not more: two codes at 1.00 in flight to a never-seen country pass its source's
#: unfamiliar group (1.5 USD) and the second would be refused before any range is blocked.
PREMIUM = parse_price_list(["destination,price\n", "+44,0.35\n"])
#: UK mobile numbers of one 1k range, spaced so that they are not a sequential sweep.
RANGE = [f"44791112{2100 + 7 * n:04d}" for n in range(40)]


@pytest.fixture
async def billed(tmp_path: Path) -> AsyncIterator[Front]:
    """The SMPP front of a billed account, with the pumping defence."""
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    accounts = Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024,
                                                      parallelism=1))
    account, _ = await accounts.create("acme", time.time(), rate_limit=200, bind_limit=2)
    issued = await accounts.add_smpp(account.id, "acme", time.time())
    await store.put_price_list(PREMIUM.stored(PriceSide.SELL, str(account.id), 0.0))
    await store.adjust_balance(account.id, add=1_000_000_000)
    ids = SortableIdGenerator()
    accepted: list[str] = []
    handler = CustomerSmpp(store, accounts, ids.new_id, time.time, Metrics(_registry()),
                           on_accepted=lambda rows: accepted.extend(m.id for m in rows),
                           prices=lambda _account: PREMIUM,
                           defence=LiveDefence(store, ids))
    notifier = SmppNotifier(store, handler, time.time)
    server = SmppServer(handler, ServerSettings(port=0))
    await server.start()
    yield Front(store, accounts, handler, notifier, server, account.id, "acme",
                issued.password, accepted)
    await server.stop(1)
    accounts.close()
    await store.aclose()


def _otp(to: str, **fields: object) -> SubmitSm:
    return SubmitSm(**{"service_type": "otp", "source_addr": "ACME", "destination_addr": to,
                       "short_message": b"Your code is 4711", **fields})  # type: ignore[arg-type]


async def test_otp_submits_are_screened_and_a_block_is_neither_stored_nor_billed(
    billed: Front,
) -> None:
    store = billed.store
    await store.set_fraud_settings(billed.account_id, FraudSettings(otp_messages=True))
    client = await bound(billed.client())
    statuses = []
    for to in RANGE:  # bounded by the list
        statuses.append((await client.submit(_otp(to))).command_status)
        if statuses[-1]:
            break
    assert statuses[-1] == ESME_RFRAUDBLOCKED and set(statuses[:-1]) == {0}
    assert len(statuses) <= 8  # a few premium codes, not a day's budget
    stored = await store.list_messages(MessageFilter(account_id=billed.account_id))
    assert len(stored.messages) == len(statuses) - 1  # the refused one was not stored
    balance = (await store.get_balance(billed.account_id)).balance  # type: ignore[union-attr]
    again = await client.submit(_otp(RANGE[-1], service_type="", priority_flag=3))
    assert again.command_status == ESME_RFRAUDBLOCKED  # priority_flag 3 is OTP too
    assert (await store.get_balance(billed.account_id)).balance == balance  # never billed
    decisions = await store.list_fraud_decisions(billed.account_id, limit=100)
    assert len(decisions) == len(statuses) + 1  # every OTP submit asked and recorded
    block = decisions[0]
    assert block.action is FraudAction.BLOCK and block.message_id is None
    assert block.verification_id is None and block.engine
    assert block.reasons[-1].code == "cell_blocked"
    assert block.request["use_case"] == "otp"  # the message's tag
    first = decisions[1].reasons[-1]
    assert first.code == "loss_budget" and first.figures["budget"] > 0
    # A transactional submit to the same range is not asked: it goes.
    plain = await client.submit(_otp(RANGE[-1], service_type="txn"))
    assert plain.command_status == 0
    assert len(await store.list_fraud_decisions(billed.account_id, limit=100)) == len(decisions)
    await client.stop()


async def test_otp_submits_are_not_screened_unless_enabled(billed: Front) -> None:
    client = await bound(billed.client())
    assert (await client.submit(_otp(RANGE[0]))).command_status == 0
    assert await billed.store.list_fraud_decisions(billed.account_id) == ()
    # The account's own deny list refuses once OTP messages are screened (a change
    # through the store is read within the settings' TTL; the API's PATCH at once).
    await billed.store.set_fraud_settings(billed.account_id, FraudSettings(
        otp_messages=True, deny=("+44791112",)))
    billed.handler.defence.forget(billed.account_id)  # type: ignore[union-attr]
    multi = SubmitMulti(service_type="otp", source_addr="ACME", short_message=b"code 4711",
                        dest_addresses=(SmeAddress(address="447912345678"),
                                        SmeAddress(address=RANGE[1])))
    assert (await client.submit(multi)).command_status == ESME_RFRAUDBLOCKED
    decisions = await billed.store.list_fraud_decisions(billed.account_id)
    assert [d.action for d in decisions] == [FraudAction.BLOCK, FraudAction.ALLOW]
    assert decisions[0].reasons[0].code == "deny_list" and not decisions[0].engine
    stored = await billed.store.list_messages(MessageFilter(account_id=billed.account_id))
    assert len(stored.messages) == 1  # the first submit only: none of the refused PDU's
    await client.stop()
