"""Platform egress against herald's PostgreSQL store: a real ``herald guard
proxy --store postgresql://...`` lets the platform's lookup of a number through
only while a customer message to it waits in the database; ``guard scan``
reads the same; a URL it cannot use stops it at start with one clear line."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald.ids import SortableIdGenerator
from herald.store import NewMessage, Source, Status, StatusUpdate
from herald.store.postgres import PostgresStore
from peers.postgres import free_port

from . import m3ua_fixtures as fx
from .builders import HOME_MSISDN, PLATFORM, POLICY_TOML
from .proxy_process import proxy_process

_ids = SortableIdGenerator()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML)
    return path


@pytest.fixture
async def pg_store(pg_store_dsn: str) -> AsyncIterator[PostgresStore]:
    opened = await PostgresStore.open(pg_store_dsn)
    try:
        yield opened
    finally:
        await opened.aclose()


def _message(to: str = HOME_MSISDN) -> NewMessage:
    now = time.time()
    return NewMessage(id=_ids.new_id(now), account_id=1, source=Source.HTTP, to=to,
                      sender="SHOP", body=b"code 1234", encoding="gsm7", data_coding=0,
                      segments=1, accepted_at=now, expires_at=now + 3600)  # fmt: skip


async def test_the_proxy_follows_the_postgresql_store(
    policy_file: Path, pg_store: PostgresStore, pg_store_dsn: str
) -> None:
    async with proxy_process(policy_file, "--store", pg_store_dsn, stderr=True) as running:
        a, b = await running.connect()
        first, _ = fx.sri_sm(PLATFORM)  # the platform looks HOME_MSISDN up
        await a.send(first, fx.aspup())
        assert await b.next() == fx.aspup()  # nothing queued: the lookup never reached B

        message = _message()
        await pg_store.accept([message])
        queued, _ = fx.sri_sm(PLATFORM)
        await a.send(queued)
        assert await b.next() == queued

        await pg_store.update_statuses([StatusUpdate(message.id, Status.DELIVERED, time.time())])
        late, _ = fx.sri_sm(PLATFORM)
        await a.send(late, fx.aspup())
        assert await b.next() == fx.aspup()  # delivered: a lookup now is not the platform's

        running.process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(running.process.communicate(), 30)
    assert running.process.returncode == 0
    assert "blocked by platform-egress: 2" in out.decode()
    # Said once at start: without a fixed hash seed the engine's state is not
    # kept in the store (home routing's correlations would be, were it on).
    assert "kept in memory only" in err.decode()
    assert "Traceback" not in err.decode()


async def test_scan_reads_the_platform_queue_from_the_postgresql_store(
    policy_file: Path, pg_store: PostgresStore, pg_store_dsn: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from herald.cli import main
    from herald.guard.pcap import write_pcap

    sri, _ = fx.sri_sm(PLATFORM)
    capture = tmp_path / "c.pcap"
    write_pcap(capture, [(time.time(), sri)])
    command = ["guard", "scan", str(capture), "--policy", str(policy_file), "--format", "json",
               "--store", pg_store_dsn]  # fmt: skip
    assert main(command) == 1
    assert json.loads(capsys.readouterr().out)["rule"] == "platform-egress"
    await pg_store.accept([_message()])
    assert main(command) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "allow"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://herald:secret@127.0.0.1:{port}/", "names no database"),
        ("postgresql://herald:secret@127.0.0.1:{port}/herald", "cannot connect to"),
    ],
)
def test_a_store_url_it_cannot_use_stops_the_proxy_at_start(
    policy_file: Path, capsys: pytest.CaptureFixture[str], url: str, said: str
) -> None:
    from herald.cli import main

    url = url.format(port=free_port())  # nothing listens there
    command = ["guard", "proxy", "--listen", "127.0.0.1:0", "--peer", "127.0.0.1:1",
               "--policy", str(policy_file), "--store", url, "--duration", "1"]  # fmt: skip
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("herald guard: --store: ") and said in err
    assert "secret" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_database_without_a_herald_store_stops_the_proxy_at_start(
    policy_file: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from herald.cli import main

    command = ["guard", "proxy", "--listen", "127.0.0.1:0", "--peer", "127.0.0.1:1",
               "--policy", str(policy_file), "--store", pg_dsn, "--duration", "1"]  # fmt: skip
    assert main(command) == 2
    assert "holds no herald store" in capsys.readouterr().err
