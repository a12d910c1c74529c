"""What was per process and holds across nodes on PostgreSQL: the pumping
defence's per-country ceilings, the accounts' message rates and the
failed-login throttles.

Each test runs two nodes (two stores, each with its own pool, and their own
in-process objects) on one database, racing, and checks that together they
stay within the one limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts, FailedLogins
from herald.admin import Admin, AdminKeys
from herald.api import AdminContext, ApiContext, ApiLimits, create_app
from herald.cluster.budgets import HOLD_SECONDS, LocalBudgets, SharedBudgets
from herald.defence import LiveDefence
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.net import ClientSettings, ServerSettings, SmppClient, SmppServer
from herald.rating import KeyKind, PriceKey, Rating
from herald.smpp.codec import encode as encode_pdu
from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import BindTransceiver, BindTransmitter, SubmitSm
from herald.smpp_front import CustomerSmpp
from herald.smpp_front._handler import ADDRESS_FAILURE_BURST, BURST_SECONDS
from herald.store import AdminScope, FraudAction, FraudSettings
from herald.store.postgres import PostgresStore

from .conftest import T0

pytestmark = pytest.mark.postgres

WAIT_LIMIT = 10.0  # seconds for every racer to be waiting on the held lock


async def _held(pool: Any, hold: str, calls: list[Awaitable[Any]]) -> list[Any]:
    """Run ``calls`` at once while a transaction that ran ``hold`` is open; end it
    once every call waits on a lock (so all have started before any goes on)."""
    async with pool.acquire() as blocker, pool.acquire() as watcher:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(hold)
        tasks = [asyncio.ensure_future(c) for c in calls]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_LIMIT
        try:
            while await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'") < len(calls):  # fmt: skip
                assert loop.time() < deadline, "the racers never all waited"
                await asyncio.sleep(0.01)
        finally:
            await tx.rollback()
        return await asyncio.gather(*tasks)


async def test_two_nodes_cannot_both_take_the_last_of_a_country_ceiling(
    two_stores: tuple[PostgresStore, PostgresStore], pool: Any,
) -> None:
    a, b = two_stores
    account = await a.create_account("shop", T0, rate_limit=100.0, bind_limit=2)
    # Room for one SMS at 0.04 a day, not two.
    await a.set_fraud_settings(account.id, FraudSettings(country_caps={"GB": Decimal("0.06")}))
    nodes = [LiveDefence(store, SortableIdGenerator()) for store in (a, b)]
    for node in nodes:
        await node.prepare(T0)
    price = Decimal("0.04")
    rating = Rating(PriceKey(KeyKind.COUNTRY, "44"), price, 1, price, "44")
    # Both nodes read the spend (held back by a lock on the decisions) before
    # either records its SMS.
    screenings = await _held(pool, "LOCK TABLE fraud_decisions IN ACCESS EXCLUSIVE MODE", [
        node.screen(account_id=account.id, to=f"+4477009001{n}", use_case="login",
                    message_id=f"msg{n}", rating=rating, now=T0 + n * 0.001)
        for n, node in enumerate(nodes)])  # fmt: skip
    actions = sorted(s.decision.action.value for s in screenings)
    assert actions == [FraudAction.ALLOW.value, FraudAction.BLOCK.value]
    blocked = next(s.decision for s in screenings if s.refuse)
    assert blocked.reasons[-1].code == "country_ceiling"
    assert blocked.reasons[-1].figures == {"spent": 0.04, "price": 0.04, "ceiling": 0.06}
    assert await a.fraud_spend(account.id, "GB", T0 - 86_400) == 40_000


# -- the shared token buckets ---------------------------------------------------------


async def test_a_shared_bucket_grants_what_it_holds_refills_and_goes_into_debt(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_stores
    grant = await a.take_tokens("t", "k", 10.0, 20.0, 1, 5, T0)  # a new bucket starts full
    assert (grant.granted, grant.tokens) == (5, 15)
    grant = await b.take_tokens("t", "k", 10.0, 20.0, 1, 100, T0)  # the other node: the rest
    assert (grant.granted, grant.tokens) == (15, 0)
    refused = await a.take_tokens("t", "k", 10.0, 20.0, 3, 3, T0 + 0.1)  # 1 token refilled
    assert (refused.granted, refused.tokens) == (0, pytest.approx(1))
    assert refused.wait(3, 10.0, 20.0) == pytest.approx(0.2)
    assert (await a.take_tokens("t", "k", 10.0, 20.0, 3, 3, T0 + 0.5)).granted == 3
    # A take larger than the capacity, once the bucket is full, leaves it in debt.
    big = await a.take_tokens("t", "k", 10.0, 20.0, 30, 30, T0 + 10)
    assert (big.granted, big.tokens) == (30, -10)
    assert (await a.take_tokens("t", "k", 10.0, 20.0, 1, 1, T0 + 10.5)).granted == 0
    # A clock behind the last take refills nothing; giving back stops at the capacity.
    assert (await b.take_tokens("t", "k", 10.0, 20.0, 0, 0, T0)).tokens == -5  # as at 10.5
    await b.settle_tokens("t", "k", 100)
    assert (await a.take_tokens("t", "k", 10.0, 20.0, 0, 0, T0 + 10)).tokens == 20
    # Failures noted; full buckets with no recent failure are forgotten.
    await a.settle_tokens("t", "f", 0, failed_at=T0)  # no bucket: nothing
    await a.take_tokens("t", "f", 1.0, 5.0, 1, 1, T0)
    await b.settle_tokens("t", "f", 0, failed_at=T0 + 1)
    assert (await a.take_tokens("t", "f", 1.0, 5.0, 0, 0, T0 + 2)).failed_at == T0 + 1
    assert await a.forget_tokens(T0 + 1) == 0  # both were used (or failed) since
    assert await a.forget_tokens(T0 + 100) == 2
    with pytest.raises(ValueError):
        await a.take_tokens("t", "k", 0.0, 20.0, 1, 1, T0)


async def test_two_nodes_drawing_slices_admit_no_more_than_one_bucket(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    rate, capacity = 50.0, 50.0  # slices of 5
    nodes = [SharedBudgets(store, "api-messages", 100) for store in two_stores]
    takes = [nodes[n % 2].take(7, rate, capacity, 1, T0) for n in range(120)]
    waits = await asyncio.gather(*takes)
    assert sum(w == 0 for w in waits) == capacity  # the clock stands still: no refill
    assert all(w > 0 for w in waits if w)
    asked = sum(node.asked for node in nodes)
    # Refusals are remembered: at most one round trip each after the bucket ran dry.
    assert asked < len(takes)
    # Each node's own memory (SQLite's buckets) would admit a bucket each.
    local = [LocalBudgets(100) for _ in range(2)]
    assert sum(local[n % 2].take_now(7, rate, capacity, 1, T0) == 0
               for n in range(120)) == 2 * capacity  # fmt: skip


async def test_a_slice_not_spent_in_time_is_dropped(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    node = SharedBudgets(two_stores[0], "api-messages", 100)
    assert await node.take(1, 100.0, 100.0, 1, T0) == 0  # draws 1 and a slice of 10
    assert node.take_now(1, 100.0, 100.0, 1, T0 + HOLD_SECONDS / 2) == 0  # from the slice
    assert node.asked == 1
    assert node.take_now(1, 100.0, 100.0, 1, T0 + HOLD_SECONDS * 2) is None  # dropped
    # The shared bucket counted the dropped tokens: another node finds them gone.
    other = await two_stores[1].take_tokens("api-messages", "1", 100.0, 100.0, 0, 0, T0)
    assert other.tokens == 89


async def test_while_the_store_fails_each_node_counts_by_itself(
    pg_store_dsn: str, caplog: pytest.LogCaptureFixture,
) -> None:
    store = await PostgresStore.open(pg_store_dsn)
    rate = 10.0  # slices of 1
    node = SharedBudgets(store, "api-messages", 100)
    logins = FailedLogins(0.1, 2, ledger=store, scope="api-logins")
    assert await node.take(1, rate, rate, 1, T0) == 0  # one message, one in its slice
    await store.aclose()  # the store is away from now on
    waits = [await node.take(1, rate, rate, 1, T0) for _ in range(3 * int(rate))]
    # The message of its slice, then the whole rate in a bucket of its own.
    assert sum(w == 0 for w in waits) == 1 + rate
    assert sum("per node while the store fails" in r.getMessage() for r in caplog.records) == 1
    # Failed logins: this node's buckets alone (never a lockout for the store's absence).
    assert await logins.shared_take("192.0.2.1", T0, T0) == 0.0
    await logins.shared_settle("192.0.2.1", T0, failed=True)  # logged, not raised


CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


async def test_an_accounts_message_rate_holds_across_two_api_nodes(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    services = [Accounts(store, hasher=CHEAP_HASHER) for store in two_stores]
    clients = []
    try:
        rate = 3.0
        burst = round(rate * ApiLimits().burst_seconds)  # what one bucket admits at once
        _, issued = await services[0].create("shop", T0, rate_limit=rate)
        for store, service in zip(two_stores, services, strict=True):
            app = create_app(ApiContext(
                store=store, accounts=service, ids=SortableIdGenerator(), clock=lambda: T0,
                metrics=Metrics(CollectorRegistry())))  # fmt: skip
            clients.append(httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 40000)),
                base_url="http://herald.test"))  # fmt: skip
        auth = {"Authorization": f"Bearer {issued.key}"}
        sends = [clients[n % 2].post("/v1/messages", headers=auth, json={
            "to": f"+4479551234{n:02d}", "from": "ACME", "text": "hi"}) for n in range(3 * burst)]
        answers = [r.status_code for r in await asyncio.gather(*sends)]
        # The clock stands still: one burst in all (each node's own bucket would
        # have let a burst through on each).
        assert sorted(answers) == [202] * burst + [429] * (2 * burst)
    finally:
        for client in clients:
            await client.aclose()
        for service in services:
            service.close()


async def test_an_accounts_message_rate_holds_across_two_smpp_nodes(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    services = [Accounts(store, hasher=CHEAP_HASHER) for store in two_stores]
    servers, clients = [], []
    rate = 3.0
    burst = round(rate * BURST_SECONDS)
    try:
        account, _ = await services[0].create("shop", T0, rate_limit=rate, bind_limit=2)
        issued = await services[0].add_smpp(account.id, "shop", T0)
        for store, service in zip(two_stores, services, strict=True):
            handler = CustomerSmpp(store, service, SortableIdGenerator().new_id, lambda: T0,
                                   Metrics(CollectorRegistry()))  # fmt: skip
            server = SmppServer(handler, ServerSettings(port=0))
            await server.start()
            servers.append(server)
            client = SmppClient(ClientSettings("127.0.0.1", server.port, BindTransceiver(
                system_id="shop", password=issued.password)))  # fmt: skip
            await client.start()
            await client.wait_bound(10)
            clients.append(client)
        submits = [clients[n % 2].submit(SubmitSm(
            source_addr="ACME", destination_addr="447955123456", short_message=b"hi"))
            for n in range(3 * burst)]  # fmt: skip
        statuses = [r.command_status for r in await asyncio.gather(*submits)]
        # The clock stands still: one burst in all, not one per node.
        assert sorted(statuses) == [0] * burst + [CommandStatus.ESME_RTHROTTLED] * 2 * burst
    finally:
        for client in clients:
            await client.stop()
        for server in servers:
            await server.stop(1)
        for service in services:
            service.close()


# -- failed logins --------------------------------------------------------------------


def _app_client(store: PostgresStore, service: Accounts, address: str) -> httpx.AsyncClient:
    app = create_app(ApiContext(store=store, accounts=service, ids=SortableIdGenerator(),
                                clock=lambda: T0, metrics=Metrics(CollectorRegistry())))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                             base_url="http://herald.test")  # fmt: skip


async def test_a_wrong_api_key_at_one_node_counts_at_the_other(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    services = [Accounts(store, hasher=CHEAP_HASHER) for store in two_stores]
    a, b = (_app_client(store, service, "192.0.2.7")
            for store, service in zip(two_stores, services, strict=True))  # fmt: skip
    elsewhere = _app_client(two_stores[1], services[1], "192.0.2.8")
    try:
        _, issued = await services[0].create("shop", T0)
        wrong = issued.key[:-1] + ("a" if issued.key[-1] != "a" else "b")
        body = {"to": "+447955123456", "from": "ACME", "text": "hi"}

        async def send(client: httpx.AsyncClient, key: str) -> int:
            answer = await client.post("/v1/messages", json=body,
                                       headers={"Authorization": f"Bearer {key}"})
            return answer.status_code

        burst = int(ApiLimits().auth_failure_burst)
        assert [await send(a, wrong) for _ in range(burst)] == [401] * burst
        # Node b has seen no failure from the address, the store has: locked out
        # there too, with no verification, even for the right key.
        assert await send(b, wrong) == 429
        assert await send(b, issued.key) == 429
        assert await send(elsewhere, issued.key) == 202  # another address is not
    finally:
        for client in (a, b, elsewhere):
            await client.aclose()
        for service in services:
            service.close()


async def test_a_wrong_admin_key_at_one_node_counts_at_the_other(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    """The admin API's (and so the console sign-in's) failed-login budget."""
    services = [Accounts(store, hasher=CHEAP_HASHER) for store in two_stores]
    keys = [AdminKeys(store, hasher=CHEAP_HASHER) for store in two_stores]
    admins = [Admin(store, s, k) for store, s, k in zip(two_stores, services, keys, strict=True)]
    clients = []
    try:
        issued = await admins[0].issue_admin_key("cli:test", "ops", AdminScope.READ)
        for store, service, admin in zip(two_stores, services, admins, strict=True):
            app = create_app(ApiContext(
                store=store, accounts=service, ids=SortableIdGenerator(), clock=lambda: T0,
                metrics=Metrics(CollectorRegistry()), admin=AdminContext(admin)))  # fmt: skip
            clients.append(httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("192.0.2.9", 40000)),
                base_url="http://herald.test"))  # fmt: skip
        wrong = issued.key[:-1] + ("x" if issued.key[-1] != "x" else "y")

        async def ask(client: httpx.AsyncClient, key: str) -> int:
            answer = await client.get("/v1/admin/accounts",
                                      headers={"Authorization": f"Bearer {key}"})
            return answer.status_code

        burst = int(ApiLimits().auth_failure_burst)
        assert [await ask(clients[0], wrong) for _ in range(burst)] == [401] * burst
        assert await ask(clients[1], wrong) == 429
        assert await ask(clients[1], issued.key) == 429  # locked out, right key or not
    finally:
        for client in clients:
            await client.aclose()
        for closing in (*keys, *services):
            closing.close()


async def _raw_bind(port: int, address: str, system_id: str, password: str) -> int:
    """One bind from ``address``; the bind_resp's status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    try:
        writer.write(encode_pdu(BindTransmitter(system_id=system_id, password=password,
                                                sequence_number=1)))  # fmt: skip
        answer = await asyncio.wait_for(reader.readexactly(16), 10)
        return int.from_bytes(answer[8:12], "big")
    finally:
        writer.close()


async def test_a_failed_bind_at_one_node_counts_at_the_other(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    services = [Accounts(store, hasher=CHEAP_HASHER) for store in two_stores]
    servers = []
    try:
        account, _ = await services[0].create("shop", T0)
        issued = await services[0].add_smpp(account.id, "shop", T0)
        for store, service in zip(two_stores, services, strict=True):
            handler = CustomerSmpp(store, service, SortableIdGenerator().new_id, lambda: T0,
                                   Metrics(CollectorRegistry()))  # fmt: skip
            handler.lockout_delay = 0.0
            server = SmppServer(handler, ServerSettings(port=0))
            await server.start()
            servers.append(server)
        a, b = (server.port for server in servers)
        burst = int(ADDRESS_FAILURE_BURST)
        wrong = [await _raw_bind(a, "127.0.0.2", "shop", f"wrong{n}") for n in range(burst)]
        assert wrong == [CommandStatus.ESME_RINVPASWD] * burst
        # Node b: the address is locked out by node a's failures, right password or not.
        assert await _raw_bind(b, "127.0.0.2", "shop", "wrong") == CommandStatus.ESME_RBINDFAIL
        assert await _raw_bind(b, "127.0.0.2", "shop",
                               issued.password) == CommandStatus.ESME_RBINDFAIL  # fmt: skip
        assert await _raw_bind(b, "127.0.0.3", "shop", issued.password) == 0
    finally:
        for server in servers:
            await server.stop(1)
        for service in services:
            service.close()
