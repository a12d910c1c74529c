"""Admin changes reach a running herald without a restart, over real HTTP.

The CLI runs as another process would (its own store connections and
caches; in a thread here, for speed). The bound under test: a change made
through the admin API applies to the next request; one made by the CLI
within herald.admin.CHANGE_POLL_INTERVAL (1 s) plus a read.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from herald.accounts import Accounts
from herald.admin import CHANGE_POLL_INTERVAL
from herald.billing import CHECK_INTERVAL
from herald.cli import main
from herald.config import parse_config
from herald.net import ClientHandler, ClientSettings, SmppClient
from herald.service import Platform
from herald.sim import SimConfig, Simulator
from herald.smpp.constants import CommandStatus as S
from herald.smpp.pdus import BindTransceiver, SubmitSm
from herald.smpp_front import ACCOUNT_RECHECK
from herald.store import Store

#: How long a CLI change may take to apply: a poll interval, a poll's reads, margin.
BOUND = 2 * CHANGE_POLL_INTERVAL + 1.0


@dataclass
class Running:
    platform: Platform
    data: Path
    key: str  # the account "shop"'s API key
    http: httpx.AsyncClient
    password: str  # of its SMPP login "shop"

    def binds(self) -> int:
        return sum(len(conns) for conns in self.platform.front.binds.values())

    async def bound_customer(self) -> SmppClient:
        client = SmppClient(ClientSettings("127.0.0.1", self.platform.smpp.port, BindTransceiver(
            system_id="shop", password=self.password)), ClientHandler())
        await client.start()
        await client.wait_bound(10)
        for _ in range(100):  # bounded: the server side registers the bind
            if self.binds() == 1:
                break
            await asyncio.sleep(0.02)
        assert self.binds() == 1
        return client

    async def until_unbound(self) -> float:
        """Seconds until herald holds no customer bind (bounded by BOUND)."""
        started = time.monotonic()
        while self.binds():
            assert time.monotonic() - started < BOUND, f"a bind still open after {BOUND} s"
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def herald(self, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
        """Run a herald command on the same data directory; its output."""
        status = await asyncio.to_thread(main, [*argv, "--data-dir", str(self.data)])
        out, err = capsys.readouterr()
        assert status == 0, err
        return out

    async def status(self, key: str, path: str = "/v1/messages") -> int:
        answer = await self.http.get(path, headers={"Authorization": f"Bearer {key}"})
        return answer.status_code

    async def until(self, key: str, code: int, path: str = "/v1/messages") -> float:
        """Seconds until a request with ``key`` is answered ``code`` (bounded by BOUND)."""
        started = time.monotonic()
        while await self.status(key, path) != code:
            assert time.monotonic() - started < BOUND, f"not {code} within {BOUND} s"
            await asyncio.sleep(0.05)
        return time.monotonic() - started


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    sim = Simulator(SimConfig(port=0))
    await sim.start()
    data = tmp_path / "data"
    config = parse_config({
        "data_dir": str(data), "http": {"listen": "127.0.0.1:0"},
        "smpp": {"listen": "127.0.0.1:0"},
        "connectors": [{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                        "system_id": "herald", "password": "pw", "binds": 2}],
        "routes": [{"prefix": "", "connectors": ["sim"]}],
    })  # fmt: skip
    keys: list[str] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        account, key = await accounts.create("shop", time.time())
        keys.append(key.key)
        keys.append((await accounts.add_smpp(account.id, "shop", time.time())).password)

    platform = await Platform.start(config, prepare=prepare, processes=1)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{platform.http_port}", timeout=20)
    try:
        yield Running(platform, data, keys[0], http, keys[1])
    finally:
        await http.aclose()
        await platform.stop()
        await sim.stop()


async def test_cli_changes_reach_a_running_herald(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await running.status(running.key) == 200  # key and account now cached
    await running.herald(capsys, "accounts", "disable", "shop")
    await running.until(running.key, 401)  # without the change feed: 5 s (account cache)
    await running.herald(capsys, "accounts", "enable", "shop")
    await running.until(running.key, 200)
    key_id = running.key.split("_")[1]
    await running.herald(capsys, "accounts", "revoke-key", key_id)
    await running.until(running.key, 401)  # without the change feed: 60 s (key cache)


async def test_admin_api_changes_apply_to_the_next_request(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await running.herald(capsys, "admin", "keys", "create", "ops")
    [admin_key] = re.findall(r"ha_[a-z0-9]{12}_[A-Za-z0-9]{40}", out)
    admin = {"Authorization": f"Bearer {admin_key}"}
    assert await running.status(running.key) == 200
    answer = await running.http.post("/v1/admin/accounts/shop/disable", headers=admin)
    assert answer.status_code == 200, answer.text
    assert await running.status(running.key) == 401  # the next request: no wait
    await running.http.post("/v1/admin/accounts/shop/enable", headers=admin)
    assert await running.status(running.key) == 200
    issued = (await running.http.post("/v1/admin/accounts/shop/keys", headers=admin)).json()
    assert await running.status(issued["api_key"]) == 200
    revoked = await running.http.delete(f"/v1/admin/accounts/shop/keys/{issued['key_id']}",
                                        headers=admin)  # fmt: skip
    assert revoked.status_code == 204
    assert await running.status(issued["api_key"]) == 401
    # The connectors as dispatch sees them (two binds to the simulator).
    for _ in range(100):  # bounded: the binds come up within a few seconds
        connectors = (await running.http.get("/v1/admin/connectors", headers=admin)).json()
        if connectors["connectors"][0]["state"] == "up":
            break
        await asyncio.sleep(0.1)
    assert connectors["reporting"] is True
    assert [(c["name"], c["bound"], c["binds"], c["state"]) for c in connectors["connectors"]] \
        == [("sim", 2, 2, "up")]
    # Who did what, from both paths.
    audit = (await running.http.get("/v1/admin/audit", headers=admin)).json()["entries"]
    actors = {(e["actor"].split(":")[0], e["action"]) for e in audit}
    assert {("cli", "admin_key.issue"), ("key", "account.disable"), ("key", "account.enable"),
            ("key", "api_key.issue"), ("key", "api_key.revoke")} <= actors
    # A revoked admin key is refused from its next request, whoever revoked it.
    await running.herald(capsys, "admin", "keys", "revoke", "ops")
    assert await running.status(admin_key, "/v1/admin/accounts") == 401


async def test_binds_are_closed_as_soon_as_their_account_or_login_changes(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    assert BOUND < ACCOUNT_RECHECK  # what this test tells apart from the periodic recheck
    out = await running.herald(capsys, "admin", "keys", "create", "ops")
    [admin_key] = re.findall(r"ha_[a-z0-9]{12}_[A-Za-z0-9]{40}", out)
    admin = {"Authorization": f"Bearer {admin_key}"}
    customer = await running.bound_customer()
    try:
        await running.http.post("/v1/admin/accounts/shop/disable", headers=admin)
        await running.until_unbound()
    finally:
        await customer.stop()
    await running.http.post("/v1/admin/accounts/shop/enable", headers=admin)
    customer = await running.bound_customer()
    try:
        await running.herald(capsys, "accounts", "remove-smpp", "shop")  # another process
        await running.until_unbound()
    finally:
        await customer.stop()


async def test_controls_and_opt_outs_reach_a_running_herald(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await running.herald(capsys, "admin", "keys", "create", "ops")
    [admin_key] = re.findall(r"ha_[a-z0-9]{12}_[A-Za-z0-9]{40}", out)
    admin = {"Authorization": f"Bearer {admin_key}"}
    auth = {"Authorization": f"Bearer {running.key}"}

    async def send(to: str) -> int:
        answer = await running.http.post("/v1/messages", headers=auth, json={
            "to": to, "from": "SHOP", "text": "Your code is 123456"})  # fmt: skip
        return answer.status_code

    async def until_sent(to: str, code: int) -> float:
        started = time.monotonic()
        while await send(to) != code:
            assert time.monotonic() - started < BOUND, f"not {code} within {BOUND} s"
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    us, de = "+14155552671", "+4915112345678"
    assert await send(us) == 202  # the account, its controls and the lists now cached
    # Through the admin API: the next request.
    answer = await running.http.patch("/v1/admin/accounts/shop/controls", headers=admin,
                                      json={"countries": ["DE"]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert await send(us) == 422
    await running.http.post("/v1/admin/accounts/shop/opt-outs", headers=admin,
                            json={"numbers": [de]})  # fmt: skip
    assert await send(de) == 422
    # From the CLI (another process): within the bound, not the 5 s of the account cache.
    await running.herald(capsys, "accounts", "set", "shop", "--countries", "all")
    await until_sent(us, 202)
    await running.herald(capsys, "optouts", "remove", "--account", "shop", de)
    await until_sent(de, 202)


async def test_an_opt_out_through_the_api_reaches_open_binds_at_once(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    assert BOUND < ACCOUNT_RECHECK  # what this test tells apart from the periodic recheck
    out = await running.herald(capsys, "admin", "keys", "create", "ops")
    [admin_key] = re.findall(r"ha_[a-z0-9]{12}_[A-Za-z0-9]{40}", out)
    customer = await running.bound_customer()  # the bind read the lists just now
    try:
        await running.http.post("/v1/admin/accounts/shop/opt-outs", json={
            "numbers": ["+4915112345678"]}, headers={"Authorization": f"Bearer {admin_key}"})
        started = time.monotonic()
        for _ in range(200):  # bounded by BOUND
            answer = await customer.submit(SubmitSm(
                source_addr="SHOP", destination_addr="4915112345678", short_message=b"x"))
            if answer.command_status == S.ESME_RINVDSTADR:
                break
            assert time.monotonic() - started < BOUND, "still accepted"
            await asyncio.sleep(0.05)
        assert answer.command_status == S.ESME_RINVDSTADR
    finally:
        await customer.stop()


async def test_a_sell_list_put_through_the_admin_api_charges_the_next_messages(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await running.herald(capsys, "admin", "keys", "create", "ops")
    [admin_key] = re.findall(r"ha_[a-z0-9]{12}_[A-Za-z0-9]{40}", out)
    admin = {"Authorization": f"Bearer {admin_key}"}
    customer = {"Authorization": f"Bearer {running.key}"}
    message = {"to": "+491701234567", "from": "SHOP", "text": "hi"}
    free = await running.http.post("/v1/messages", json=message, headers=customer)
    assert free.status_code == 202 and "price" not in free.json()  # not billed yet
    topped = await running.http.post("/v1/admin/accounts/shop/balance/top-up",
                                     json={"amount": "1"}, headers=admin)  # fmt: skip
    assert topped.status_code == 200, topped.text
    put = await running.http.put("/v1/admin/prices/account/shop",
                                 content=b"destination,price\ndefault,0.05\n",
                                 headers={**admin, "Content-Type": "text/csv"})  # fmt: skip
    assert put.status_code == 200, put.text
    # Intake reloads the lists within CHECK_INTERVAL; test sends are priced, never charged.
    bound = 2 * CHECK_INTERVAL + 1.0
    started = time.monotonic()
    while True:
        probe = await running.http.post("/v1/messages", json={**message, "test": True},
                                        headers=customer)  # fmt: skip
        if "price" in probe.json():
            break
        assert time.monotonic() - started < bound, f"not priced within {bound} s"
        await asyncio.sleep(0.1)
    sent = await running.http.post("/v1/messages", json=message, headers=customer)
    assert sent.status_code == 202, sent.text
    assert sent.json()["price"]["amount"] == "0.050000"
    balance = (await running.http.get("/v1/admin/accounts/shop/balance", headers=admin)).json()
    assert (balance["balance"], balance["billed"]) == ("0.950000", True)
