"""Platform egress against herald's real store: a lookup is allowed only while a
customer message to that number waits in the SQLite store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald.guard.egress import PlatformEgress
from herald.signaling.policy import Action, Rule
from herald.store import (
    NewMessage,
    Source,
    SQLiteConfig,
    SQLitePendingMessages,
    SQLiteStore,
    Status,
    StatusUpdate,
)

from . import m3ua_fixtures as fx
from .builders import HOME_MSISDN, PLATFORM, policy


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    yield opened
    await opened.aclose()


async def queue_message(store: SQLiteStore, to: str, now: float) -> str:
    account = await store.create_account("shop", now, rate_limit=10, bind_limit=1)
    message = NewMessage(id="m1", account_id=account.id, source=Source.HTTP, to=to,
                         sender="SHOP", body=b"code 1234", encoding="gsm7", data_coding=0,
                         segments=1, accepted_at=now, expires_at=now + 3600)
    await store.accept([message])
    return message.id


async def test_lookups_follow_the_store(store: SQLiteStore, tmp_path: Path) -> None:
    now = time.time()
    pending = SQLitePendingMessages(tmp_path / "data")
    egress = PlatformEgress(policy(), pending)
    sri, _ = fx.sri_sm(PLATFORM)  # a lookup of HOME_MSISDN from the platform's GT
    before = egress.check(sri, now)
    assert (before.action, before.rule) == (Action.BLOCK, Rule.PLATFORM_EGRESS)

    message_id = await queue_message(store, HOME_MSISDN, now)
    assert pending.has_pending(HOME_MSISDN, now)
    assert pending.has_pending("+" + HOME_MSISDN, now)
    assert not pending.has_pending(HOME_MSISDN, now + 7200)  # past its validity
    assert egress.check(sri, now).action is Action.ALLOW

    await store.update_statuses([
        StatusUpdate(message_id, Status.FAILED, now, error_code=1, permanent=True)])
    assert not pending.has_pending(HOME_MSISDN, now)
    assert egress.check(sri, now).action is Action.BLOCK
    pending.close()


def test_a_missing_store_fails_closed(tmp_path: Path) -> None:
    pending = SQLitePendingMessages(tmp_path / "nowhere")
    assert not pending.has_pending(HOME_MSISDN, time.time())


async def test_the_proxy_asks_the_store_on_the_wall_clock(
    store: SQLiteStore, tmp_path: Path
) -> None:
    from herald.guard.egress import LiveStore

    now = time.time()
    await queue_message(store, HOME_MSISDN, now - 7200)  # expired an hour ago
    pending = SQLitePendingMessages(tmp_path / "data")
    monotonic_now = 1_000.0  # what the proxy's event loop clock reads
    assert pending.has_pending(HOME_MSISDN, monotonic_now)  # the wrong clock: "pending"
    assert not LiveStore(pending).has_pending(HOME_MSISDN, monotonic_now)
    pending.close()


async def test_scan_reads_the_platform_queue_from_herald_store(
    store: SQLiteStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from herald.cli import main
    from herald.guard.pcap import write_pcap

    from .builders import POLICY_TOML

    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY_TOML)
    now = time.time()
    sri, _ = fx.sri_sm(PLATFORM)
    capture = tmp_path / "c.pcap"
    write_pcap(capture, [(now, sri)])
    command = ["guard", "scan", str(capture), "--policy", str(policy_file), "--format", "json",
               "--store", str(tmp_path / "data")]  # fmt: skip
    assert main(command) == 1  # nothing queued yet: the platform's lookup is blocked
    assert json.loads(capsys.readouterr().out)["rule"] == "platform-egress"
    await queue_message(store, HOME_MSISDN, now)
    assert main(command) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "allow"
    assert main(["guard", "scan", str(capture), "--policy", str(policy_file),
                 "--store", str(tmp_path / "nowhere")]) == 2  # fmt: skip
    assert "holds no herald store" in capsys.readouterr().err
