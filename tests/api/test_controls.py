"""Account controls over HTTP: daily quota, senders, countries, opt-outs, client networks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts
from herald.api import ApiContext, create_app
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.store import AccountControls, OptOutChange, SQLiteConfig, SQLiteStore

from .conftest import CHEAP_HASHER, T0, VALID_TO, Api, ApiFactory, message

#: T0 is 08:00 UTC: a used-up quota renews in 16 hours.
TO_MIDNIGHT = 16 * 3600
DE = "+4915112345678"
STEP = 20.0


@pytest.fixture(params=[True, False], ids=["fast", "route"])
async def api(request: pytest.FixtureRequest, make_api: ApiFactory) -> Api:
    made: Api = await make_api(fast_send=request.param)
    return made


async def _controls(api: Api, **fields: object) -> None:
    await api.store.set_controls(api.account.id, AccountControls(**fields))  # type: ignore[arg-type]


def _codes(response: httpx.Response) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


async def test_the_daily_quota_at_its_boundary(api: Api) -> None:
    await _controls(api, daily_quota=2)
    assert [(await api.send(message())).status_code for _ in range(2)] == [202, 202]
    refused = await api.send(message())
    assert refused.status_code == 429
    assert refused.json()["type"] == "urn:herald:problem:daily-quota-exceeded"
    assert refused.headers["retry-after"] == str(TO_MIDNIGHT)
    assert len(api.accepted) == 2
    api.clock.advance(TO_MIDNIGHT)  # a new UTC day
    assert (await api.send(message())).status_code == 202
    assert await api.store.daily_usage(api.account.id, int(T0 // 86400)) == 2


async def test_a_batch_that_would_cross_the_quota_is_refused_whole(api: Api) -> None:
    await _controls(api, daily_quota=3)
    assert (await api.send(message())).status_code == 202
    batch = {"messages": [message(), message(), message()]}
    refused = await api.client.post("/v1/messages/batch", json=batch, headers=api.auth)
    assert refused.status_code == 429 and len(api.accepted) == 1
    batch = {"messages": [message(), message()]}
    ok = await api.client.post("/v1/messages/batch", json=batch, headers=api.auth)
    assert ok.status_code == 202 and len(api.accepted) == 3


async def test_concurrent_sends_never_pass_the_quota(api: Api) -> None:
    await _controls(api, daily_quota=7)
    answers = await asyncio.gather(*(api.send(message()) for _ in range(20)))
    assert sorted(a.status_code for a in answers) == [202] * 7 + [429] * 13
    assert len(api.accepted) == 7


@pytest.mark.parametrize(
    ("controls", "fields", "refused"),
    [
        ({"senders": ("ACME", "SHOP*")}, {"from": "SHOP-DE"}, []),
        ({"senders": ("ACME", "SHOP*")}, {"from": "OTHER"}, [("from", "sender_not_allowed")]),
        ({"sender_rules": ("US:numeric",)}, {"from": "ACME"},
         [("from", "sender_not_allowed_in_country")]),
        ({"sender_rules": ("US:numeric",)}, {"from": "12345"}, []),
        ({"countries": ("DE", "FR")}, {"to": DE}, []),
        ({"countries": ("DE", "FR")}, {}, [("to", "country_not_allowed")]),
        ({"countries": ("DE",), "senders": ("OTHER",)}, {},
         [("to", "country_not_allowed"), ("from", "sender_not_allowed")]),
    ],
)
async def test_sender_and_country_controls(
    api: Api, controls: dict[str, tuple[str, ...]], fields: dict[str, str],
    refused: list[tuple[str, str]],
) -> None:  # fmt: skip
    await _controls(api, **controls)
    response = await api.send(message(**fields))
    if not refused:
        assert response.status_code == 202
        return
    assert response.status_code == 422 and _codes(response) == refused
    assert api.accepted == []


async def test_an_opted_out_number_is_refused_and_let_back_in(api: Api) -> None:
    digits = VALID_TO.removeprefix("+")
    await api.store.change_opt_outs(api.account.id, [OptOutChange(digits, True, T0, "cli")])
    refused = await api.send(message())
    assert refused.status_code == 422 and _codes(refused) == [("to", "opted_out")]
    assert (await api.send(message(to=DE))).status_code == 202  # only that number
    await api.store.change_opt_outs(api.account.id, [OptOutChange(digits, False, T0, "cli")])
    api.clock.advance(2.0)  # OPT_OUT_REFRESH
    assert (await api.send(message())).status_code == 202


async def test_a_batch_refuses_only_the_controlled_messages(api: Api) -> None:
    await _controls(api, countries=("US",))
    batch = {"messages": [message(), message(to=DE), message()]}
    response = await api.client.post("/v1/messages/batch", json=batch, headers=api.auth)
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "refused", "accepted"]
    assert results[1]["errors"][0]["code"] == "country_not_allowed"
    assert results[1]["errors"][0]["field"] == "messages[1].to"


async def test_changes_apply_to_a_running_api_within_the_cache_time(api: Api) -> None:
    assert (await api.send(message())).status_code == 202
    await _controls(api, countries=("DE",))
    api.clock.advance(api.context.limits.account_cache_ttl)
    assert (await api.send(message())).status_code == 422
    await _controls(api)
    api.clock.advance(api.context.limits.account_cache_ttl)
    assert (await api.send(message())).status_code == 202


async def test_a_test_message_is_checked_too(api: Api) -> None:
    await _controls(api, countries=("DE",))
    response = await api.send(message(test=True))
    assert response.status_code == 422 and _codes(response) == [("to", "country_not_allowed")]


# -- client networks, over a real socket -------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str, SQLiteStore, int]]:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    accounts = Accounts(store, hasher=CHEAP_HASHER)
    account, issued = await accounts.create("acme", time.time())
    app = create_app(ApiContext(
        store=store, accounts=accounts, ids=SortableIdGenerator(), clock=time.time,
        metrics=Metrics(CollectorRegistry()),
    ))  # fmt: skip
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(400):  # bounded: up to STEP seconds for the server to listen
        if server.started or task.done():
            break
        await asyncio.sleep(STEP / 400)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", issued.key, store, account.id
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STEP)
        await store.aclose()
        accounts.close()


@pytest.mark.parametrize(
    ("networks", "status"),
    [((), 202), (("127.0.0.0/8",), 202), (("10.0.0.0/8", "127.0.0.1/32"), 202),
     (("10.0.0.0/8",), 403), (("::1/128",), 403)],
)
async def test_api_keys_work_only_from_the_account_networks(
    served: tuple[str, str, SQLiteStore, int], networks: tuple[str, ...], status: int
) -> None:
    url, key, store, account_id = served
    await store.set_controls(account_id, AccountControls(api_networks=networks))
    async with httpx.AsyncClient(base_url=url, timeout=STEP) as client:
        response = await client.post("/v1/messages", json=message(),
                                     headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == status
        if status == 403:
            assert response.json()["type"] == "urn:herald:problem:address-not-allowed"
            listing = await client.get("/v1/messages", headers={"Authorization": f"Bearer {key}"})
            assert listing.status_code == 403  # every endpoint, not only sends
