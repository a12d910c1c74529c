"""``herald serve``: the whole platform in one process, over real sockets.

The README's newcomer path (``serve --demo`` then ``send``) runs here as real
subprocesses; the rest drives an in-process ``Platform`` against a separate
simulator, the way an operator's deployment looks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from herald.accounts import Accounts, load_master_key, webhook_secret
from herald.config import parse_config
from herald.net import ClientHandler, ClientSettings, SmppClient, SmppConnection
from herald.service import Platform
from herald.sim import SimConfig, Simulator
from herald.smpp.pdus import BindTransceiver, DeliverSm, Request, SubmitSm
from herald.smpp.receipts import receipt_of
from herald.store import Status, Store

HERALD = [sys.executable, "-m", "herald"]
TO = "+447911123456"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check() if callable(check) else check
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


# -- the newcomer's path, as subprocesses -------------------------------------------


def test_demo_then_send_shows_delivered(tmp_path: Path) -> None:
    http, smpp = free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [*HERALD, "serve", "--demo", "--http", f"127.0.0.1:{http}", "--smpp",
         f"127.0.0.1:{smpp}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        banner = ""
        assert server.stdout is not None
        deadline = time.monotonic() + 60
        while "Stop with Ctrl+C" not in banner:
            assert time.monotonic() < deadline and server.poll() is None, banner
            banner += server.stdout.readline()
        demo_env = tmp_path / "herald-data" / "demo.env"
        assert stat.S_IMODE(demo_env.stat().st_mode) == 0o600
        phones = tmp_path / "herald-data" / "demo-phones.tsv"  # bodies, Verify codes too
        assert stat.S_IMODE(phones.stat().st_mode) == 0o600
        saved = dict(line.split("=", 1) for line in demo_env.read_text().splitlines()
                     if "=" in line and not line.startswith("#"))
        assert saved["HERALD_API_KEY"] in banner  # printed once, and kept for `send`
        assert f"export HERALD_API_KEY={saved['HERALD_API_KEY']}" in banner  # for the curl
        assert saved["HERALD_API"] == f"http://127.0.0.1:{http}"  # where it really listens
        sent = subprocess.run(  # the README's command: no --api, no key
            [*HERALD, "send", "--to", TO, "--text", "Hello from herald"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        lines = sent.stdout.splitlines()
        assert [line.split()[-1] for line in lines[1:]][-1] == "delivered"
        assert "accepted" in sent.stdout
        _verify_in_the_demo(tmp_path / "herald-data", saved["HERALD_API"],
                            saved["HERALD_API_KEY"])  # fmt: skip
        assert f"http://127.0.0.1:{http}/console" in banner
        assert saved["HERALD_ADMIN_KEY"] in banner  # the console's demo login
        _console_in_the_demo(saved["HERALD_API"], saved["HERALD_ADMIN_KEY"])
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out
    assert "herald: stopped" in out


def _console_in_the_demo(api: str, admin_key: str) -> None:
    """docs/console.md's first minute: sign in, see the demo's traffic and connector."""
    with httpx.Client(base_url=api, timeout=10) as client:
        signed_in = client.post("/console/login", data={"key": admin_key})
        assert signed_in.status_code == 303, signed_in.text
        overview = client.get("/console/")
        assert overview.status_code == 200 and "demo-admin" in overview.text
        assert ">sim<" in overview.text  # the demo's simulator connector
        accepted = int(overview.text.split('id="total-accepted">')[1].split("<")[0])
        assert accepted >= 1  # the message `send` just sent


def _verify_in_the_demo(data: Path, api: str, key: str) -> None:
    """docs/verify.md's session: the code is read where the demo's phones got it."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api, headers=auth, timeout=10) as client:
        created = client.post("/v1/verifications", json={"to": "+447911123457", "app": "Acme"})
        assert created.status_code == 201, created.text
        vid = created.json()["id"]
        code = None
        deadline = time.monotonic() + 20  # the simulator flushes its record every 0.5 s
        while code is None:
            assert time.monotonic() < deadline
            time.sleep(0.2)
            for line in (data / "demo-phones.tsv").read_text().splitlines()[1:]:
                text = bytes.fromhex(line.split("\t")[6].removeprefix("hex:")).decode()
                if text.endswith("is your Acme verification code."):
                    code = text.split()[0]
        checked = client.post(f"/v1/verifications/{vid}/check", json={"code": code})
        assert checked.json()["status"] == "approved", checked.text


def test_serve_without_config_explains_itself(tmp_path: Path) -> None:
    result = subprocess.run([*HERALD, "serve"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "--demo" in result.stderr and "herald.toml" in result.stderr


def test_serve_reports_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*HERALD, "serve", "--demo", "--http", f"127.0.0.1:{free_port()}", "--smpp",
             f"127.0.0.1:{port}"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "address already in use" in result.stderr.lower()


# -- an operator's deployment, in process --------------------------------------------


class Collect(ClientHandler):
    def __init__(self) -> None:
        self.got: list[DeliverSm] = []

    def on_request(self, client: SmppClient, conn: SmppConnection, request: Request) -> None:
        assert isinstance(request, DeliverSm)
        self.got.append(request)
        conn.respond(request.response())


class Receiver:
    """A webhook endpoint on loopback recording every POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, v in
                       (line.split(":", 1) for line in lines[1:] if ":" in line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.posts.append((headers, body))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[tuple[Platform, Simulator]]:
    sim = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.2), seed=7))
    await sim.start()
    config = parse_config({
        "data_dir": str(tmp_path / "data"),
        "http": {"listen": "127.0.0.1:0"},
        "smpp": {"listen": "127.0.0.1:0"},
        "connectors": [{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                        "system_id": "herald", "password": "pw", "binds": 2, "tps": 500}],
        "routes": [{"prefix": "", "connectors": ["sim"]}],
        "webhooks": {"block_private_addresses": False},  # the receiver is on 127.0.0.1
    })
    platform = await Platform.start(config)
    yield platform, sim
    await platform.stop()
    await sim.stop()


async def test_private_callback_urls_are_refused_by_default(tmp_path: Path) -> None:
    # [webhooks] block_private_addresses is on unless a config says otherwise
    # (issue 8): a callback_url naming a private, loopback or link-local address
    # is refused at submission, naming the field; nothing is stored or posted.
    config = parse_config({"data_dir": str(tmp_path / "data"), "http": {"listen": "127.0.0.1:0"},
                           "smpp": {"listen": "127.0.0.1:0"}})  # fmt: skip
    assert config.webhooks.block_private_addresses
    keys: list[str] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        keys.append((await accounts.create("shop", time.time()))[1].key)

    platform = await Platform.start(config, prepare=prepare)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{platform.http_port}",
                                     headers={"Authorization": f"Bearer {keys[0]}"}) as client:
            for url in ("http://169.254.169.254/latest/meta-data", "http://localhost:6379/",
                        "http://[::1]:22/", "http://0x7f000001/internal-admin",
                        "http://10.0.0.7/hook"):
                answer = await client.post("/v1/messages", json={
                    "to": TO, "from": "SHOP", "text": "hi", "callback_url": url})
                assert answer.status_code == 422, (url, answer.text)
                codes = {e["field"]: e["code"] for e in answer.json()["errors"]}
                # This herald has no routes: the destination is refused too (issue 9).
                assert codes == {"callback_url": "blocked_address", "to": "unroutable"}
            listed = await client.get("/v1/messages")
            assert listed.json()["messages"] == []
    finally:
        await platform.stop()


async def test_http_and_smpp_messages_come_back_delivered(
    deployment: tuple[Platform, Simulator],
) -> None:
    platform, sim = deployment
    receiver = Receiver()
    hook_port = await receiver.start()
    account, key = await platform.accounts.create("shop", time.time(), bind_limit=2)
    creds = await platform.accounts.add_smpp(account.id, "shop", time.time())
    api = f"http://127.0.0.1:{platform.http_port}"
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        answer = await client.post(
            "/v1/messages", headers={"Authorization": f"Bearer {key.key}"},
            json={"to": TO, "from": "SHOP", "text": "Your order has shipped",
                  "callback_url": f"http://127.0.0.1:{hook_port}/hook"})
        assert answer.status_code == 202, answer.text
        http_id = answer.json()["id"]

        async def http_delivered() -> bool:
            got = await client.get(f"/v1/messages/{http_id}",
                                   headers={"Authorization": f"Bearer {key.key}"})
            return bool(got.json()["status"] == "delivered")

        await eventually(http_delivered)
    # the webhook arrives signed with the account's secret
    await eventually(lambda: any(json.loads(b)["message"]["status"] == "delivered"
                                 for _, b in receiver.posts))
    headers, body = next((h, b) for h, b in receiver.posts
                         if json.loads(b)["message"]["status"] == "delivered")
    assert headers["herald-event-id"]
    secret = webhook_secret(load_master_key(platform.config.data_dir), account.id,
                            account.webhook_secret_version)
    fields = dict(part.split("=", 1) for part in headers["herald-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    await receiver.stop()

    # SMPP: submit with a receipt requested, get the receipt on the same bind
    collect = Collect()
    customer = SmppClient(ClientSettings(
        "127.0.0.1", platform.smpp.port,
        BindTransceiver(system_id="shop", password=creds.password)), collect)
    await customer.start()
    await customer.wait_bound(10)
    resp = await customer.submit(SubmitSm(source_addr="SHOP", source_addr_ton=5,
                                          destination_addr=TO[1:], registered_delivery=1,
                                          short_message=b"Your code is 4321"))
    assert resp.command_status == 0
    await eventually(lambda: len(collect.got) == 1)
    receipt = receipt_of(collect.got[0])
    assert receipt.message_id == resp.message_id  # type: ignore[attr-defined]
    assert receipt.stat == "DELIVRD"
    await customer.stop()
    assert sim.counters.accepted >= 2


async def test_mo_reaches_the_owning_account(tmp_path: Path) -> None:
    sim = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.05)))
    await sim.start()
    config = parse_config({
        "data_dir": str(tmp_path / "data"), "http": {"listen": "127.0.0.1:0"},
        "smpp": {"listen": "127.0.0.1:0"},
        "connectors": [{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                        "system_id": "herald", "password": "pw"}],
        "routes": [{"prefix": "", "connectors": ["sim"]}],
        "inbound": [{"prefix": "", "account": "shop"}],
        "intake": {"test_prefixes": ["999"]},
        "webhooks": {"block_private_addresses": False},  # the receiver is on 127.0.0.1
    })
    created: list[str] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        account, _ = await accounts.create("shop", time.time())
        created.append((await accounts.add_smpp(account.id, "shop", time.time())).password)

    platform = await Platform.start(config, prepare=prepare)
    try:
        collect = Collect()
        customer = SmppClient(ClientSettings(
            "127.0.0.1", platform.smpp.port,
            BindTransceiver(system_id="shop", password=created[0])), collect)
        await customer.start()
        await customer.wait_bound(10)
        # the simulator echoes messages to 99909... back as MO
        resp = await customer.submit(SubmitSm(source_addr="447911123456", source_addr_ton=1,
                                              destination_addr="99909123456",
                                              short_message=b"ECHO me"))
        assert resp.command_status == 0
        await eventually(lambda: any(not (d.esm_class & 0x04) for d in collect.got))
        mo = next(d for d in collect.got if not d.esm_class & 0x04)
        assert mo.short_message == b"ECHO me"
        await customer.stop()
        stored = await platform.store.get_message(resp.message_id)  # type: ignore[attr-defined]
        assert stored.status in (Status.SENT, Status.DELIVERED)
    finally:
        await platform.stop()
        await sim.stop()
