"""Debian Kannel as a customer of the whole platform (issue 3).

Kannel (bearerbox + smsbox) binds to ``herald serve``'s SMPP listener with an
account's SMPP login, submits what arrives at its sendsms interface, and gets
herald's receipts back at its dlr-url. Between the two: herald's store,
dispatch and a ``herald sim`` upstream, all real. The receipt Kannel reports
is herald's own (for herald's id), produced when the simulator's receipt for
the upstream id came back and was correlated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from herald.accounts import Accounts
from herald.config import parse_config
from herald.service import Platform
from herald.sim import SimConfig, Simulator
from herald.smpp.receipts import parse_receipt
from herald.store import Status, Store
from herald.text import Encoding, decode
from peers.kannel import Coding, DlrType, Kannel, Smsc

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

WAIT = 20.0  # Kannel -> herald -> sim -> receipt -> herald -> Kannel, on a loaded machine
FAILING = "99907123456"  # the simulator's scheme: 999 07 = an UNDELIV receipt

Rig = tuple[Platform, Simulator, Kannel]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    data: Path = tmp_path_factory.mktemp("kannel-platform")
    sim = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.2), keep_records=True, seed=3))
    await sim.start()
    config = parse_config({
        "data_dir": str(data / "data"),
        "http": {"listen": "127.0.0.1:0"},
        "smpp": {"listen": "127.0.0.1:0"},
        "connectors": [{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                        "system_id": "herald", "password": "pw"}],
        "routes": [{"prefix": "", "connectors": ["sim"]}],
        "intake": {"test_prefixes": ["999"]},
    })
    passwords: list[str] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        account, _ = await accounts.create("kannel", time.time())
        passwords.append((await accounts.add_smpp(account.id, "kannel", time.time())).password)

    platform = await Platform.start(config, prepare=prepare)
    try:
        smsc = Smsc(port=platform.smpp.port, system_id="kannel", password=passwords[0])
        async with Kannel(smsc) as kannel:
            yield platform, sim, kannel
    finally:
        await platform.stop()
        await sim.stop()


async def upstream_records(sim: Simulator, number: str) -> list[str]:
    deadline = time.monotonic() + WAIT
    while True:
        found = [r for r in sim.records if r.destination == number]
        if found:
            return [r.content for r in found]
        assert time.monotonic() < deadline, f"nothing for {number} reached the simulator"
        await asyncio.sleep(0.05)


async def test_kannel_message_is_delivered_and_its_receipt_reaches_the_dlr_url(rig: Rig) -> None:
    platform, sim, kannel = rig
    number, text = "447911123456", "Hello {world} € [x] ~ ^ | \\ @ £ $"
    ticket = await kannel.asend(number, "herald", text)
    ack = await kannel.await_dlr(ticket.ref, DlrType.SMSC_ACK, timeout=WAIT)
    dlr = await kannel.await_dlr(ticket.ref, DlrType.DELIVERED, timeout=WAIT)
    herald_id = ack.foreign_id
    assert dlr.foreign_id == herald_id
    receipt = parse_receipt(dlr.reply)
    assert (receipt.message_id, receipt.stat) == (herald_id, "DELIVRD")
    stored = await platform.store.get_message(herald_id)
    assert stored.status is Status.DELIVERED and stored.to == number
    # what reached the operator is the text Kannel was given, GSM-encoded
    assert decode(stored.body, Encoding.GSM7) == text
    assert len(await upstream_records(sim, number)) == 1  # once, not resent


async def test_ucs2_through_kannel_and_an_undelivered_receipt(rig: Rig) -> None:
    platform, _, kannel = rig
    ticket = await kannel.asend("447911123457", "herald", "Привет 👋", coding=Coding.UCS2)
    await kannel.await_dlr(ticket.ref, DlrType.DELIVERED, timeout=WAIT)
    failing = await kannel.asend(FAILING, "herald", "this one fails")
    dlr = await kannel.await_dlr(failing.ref, DlrType.UNDELIVERED, timeout=WAIT)
    assert parse_receipt(dlr.reply).stat == "UNDELIV"
    stored = await platform.store.get_message(dlr.foreign_id)
    assert stored.status is Status.UNDELIVERED
