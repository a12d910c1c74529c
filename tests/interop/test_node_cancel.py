"""npm smpp 0.5.1 (node) cancels and replaces messages through ``herald serve``.

The independent client submits scheduled messages over a real bind, then sends
cancel_sm (by id, and by source and destination) and replace_sm as node-smpp
encodes them. herald's store, dispatch and a ``herald sim`` upstream are all
real: the cancelled messages never reach the operator and come back as
``stat:DELETED`` receipts; the replaced one goes out with its new body at its
new time and is delivered.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from herald.accounts import Accounts
from herald.config import parse_config
from herald.service import Platform
from herald.sim import SimConfig, Simulator
from herald.sim.record import RecordContent, content_of
from herald.smpp.constants import CommandStatus, MessageState
from herald.smpp.receipts import parse_receipt
from herald.store import Status, Store
from peers import executable, node_smpp_dir
from peers.node import NodeChange, NodeMessage, run_node_client_async

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

S = CommandStatus
WAIT = 20.0  # node -> herald -> (1 s schedule) -> sim -> receipt -> herald -> node
SENDER = "herald"
KEPT, CANCELLED, GROUPED = "447911123456", "447911123457", "447911123458"
IN_AN_HOUR = "000000010000000R"  # SMPP 3.4 §7.1.1 relative time
IN_A_SECOND = "000000000001000R"

Rig = tuple[Platform, Simulator, str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    executable("node"), node_smpp_dir()  # a missing peer skips (or fails under CI)
    data: Path = tmp_path_factory.mktemp("node-cancel")
    sim = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.1), keep_records=True, seed=5,
                              record_content=RecordContent.HEX))
    await sim.start()
    config = parse_config({
        "data_dir": str(data / "data"),
        "http": {"listen": "127.0.0.1:0"},
        "smpp": {"listen": "127.0.0.1:0"},
        "connectors": [{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                        "system_id": "herald", "password": "pw"}],
        "routes": [{"prefix": "", "connectors": ["sim"]}],
    })
    passwords: list[str] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        account, _ = await accounts.create("node", time.time())
        passwords.append((await accounts.add_smpp(account.id, "node", time.time())).password)

    platform = await Platform.start(config, prepare=prepare)
    try:
        yield platform, sim, passwords[0]
    finally:
        await platform.stop()
        await sim.stop()


async def test_node_client_cancels_and_replaces_waiting_messages(rig: Rig) -> None:
    platform, sim, password = rig
    # node encodes the text itself: data_coding 1 (IA5), which a replace_sm body keeps
    messages = [NodeMessage(to, text=f"Your code is {n}", source_addr=SENDER,
                            registered_delivery=1,
                            tlvs=(("schedule_delivery_time", IN_AN_HOUR),))
                for n, to in enumerate((CANCELLED, KEPT, GROUPED))]
    changes = [
        NodeChange("cancel_sm", 0, (("source_addr", SENDER),)),
        NodeChange("cancel_sm", 0, (("source_addr", SENDER),)),  # again: still cancelled
        NodeChange("replace_sm", 1, (("source_addr", SENDER), ("registered_delivery", 1),
                                     ("schedule_delivery_time", IN_A_SECOND)),
                   short_message=b"Your new code is 9999"),
        NodeChange("cancel_sm", None, (("source_addr", SENDER),
                                       ("destination_addr", GROUPED))),
        NodeChange("cancel_sm", None, (("message_id", "06hhgn2g03575kbrt78uq2gn1c"),
                                       ("source_addr", SENDER))),
        NodeChange("replace_sm", 0, (("source_addr", SENDER),), short_message=b"too late"),
    ]
    run = await run_node_client_async(
        platform.smpp.port, "node", password, messages, changes=changes, expect_deliver=3,
        timeout=WAIT)
    assert [r.command_status for r in run.submit_resps] == [0, 0, 0]
    assert run.change_statuses == (S.ESME_ROK, S.ESME_ROK, S.ESME_ROK, S.ESME_ROK,
                                   S.ESME_RINVMSGID, S.ESME_RREPLACEFAIL)
    ids = [r.message_id for r in run.submit_resps]
    receipts = {parse_receipt(d.short_message).message_id: parse_receipt(d.short_message)
                for d in run.delivered}
    assert {i: (r.stat, r.state) for i, r in receipts.items()} == {
        ids[0]: ("DELETED", MessageState.DELETED),
        ids[1]: ("DELIVRD", MessageState.DELIVERED),
        ids[2]: ("DELETED", MessageState.DELETED),
    }
    stored = await platform.store.get_messages([i for i in ids if i])
    assert [stored[i].status for i in ids if i] == [
        Status.CANCELLED, Status.DELIVERED, Status.CANCELLED]
    # what reached the operator: the replaced body, once; nothing of the cancelled ones
    records = [(r.destination, r.content) for r in sim.records]
    assert records == [(KEPT, content_of(b"Your new code is 9999", RecordContent.HEX))]
