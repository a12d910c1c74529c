"""``[[classes]]`` entries imported with ``herald routes import`` (another connection)
reach a running herald's intake without a restart: over HTTP and SMPP, a message
whose request names no class gets the entry's."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from herald.cli import main
from herald.net import ClientSettings, SmppClient
from herald.routes import CHECK_INTERVAL
from herald.smpp.pdus import BindTransceiver, SubmitSm
from herald.store import Priority

from .test_destinations import Deployment, deployment
from .test_serve import eventually

__all__ = ["deployment"]  # the fixture

ROUTES = """
[[classes]]
name = "shop-de"
accounts = ["shop"]
prefixes = ["49"]
priority = "bulk"
"""


async def test_imported_class_entries_reach_a_running_intake(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    before = await d.send("+491701234567")
    assert (before.status_code, before.json()["priority"]) == (202, "transactional")

    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)
    assert await asyncio.to_thread(main, ["routes", "import", str(routes), "--data-dir",
                                          str(tmp_path / "data")]) == 0  # fmt: skip
    started = time.monotonic()

    async def entries_in_use() -> bool:  # test mode: classified, answered, never stored
        return (await d.send("+491701234567", test=True)).json()["priority"] == "bulk"

    await eventually(entries_in_use, timeout=CHECK_INTERVAL + 5)
    assert time.monotonic() - started < CHECK_INTERVAL + 5
    after = await d.send("+491701234567")
    assert after.status_code == 202
    stored = await d.platform.store.get_message(after.json()["id"])
    assert stored.priority is Priority.BULK
    other = await d.send("+447911123456")  # no entry matching: the default
    assert other.json()["priority"] == "transactional"
    named = await d.http.post("/v1/messages", json={"to": "+491701234567", "from": "SHOP",
                                                    "text": "hi", "priority": "otp"})
    assert named.json()["priority"] == "otp"  # the request's class wins

    customer = SmppClient(ClientSettings(
        "127.0.0.1", d.platform.smpp.port, BindTransceiver(system_id="shop",
                                                            password=d.password)))  # fmt: skip
    await customer.start()
    try:
        await customer.wait_bound(10)
        resp = await customer.submit(SubmitSm(source_addr="SHOP", source_addr_ton=5,
                                              destination_addr="491701234567",
                                              short_message=b"hi"))
        assert resp.command_status == 0
    finally:
        await customer.stop()
    message = await d.platform.store.get_message(resp.message_id)  # type: ignore[attr-defined]
    assert message.priority is Priority.BULK
