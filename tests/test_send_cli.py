"""``herald send`` end to end: a real ``herald`` process against the API served by
uvicorn on an ephemeral loopback port, with statuses driven through the store."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts
from herald.api import ApiContext, create_app
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.send_cli import (
    EXIT_DELIVERED,
    EXIT_NOT_DELIVERED,
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
)
from herald.store import (
    ReceiptUpdate,
    SegmentRecord,
    SQLiteConfig,
    SQLiteStore,
    Status,
    StatusUpdate,
)

#: Seconds any single step of these tests may take before it counts as hung.
STEP = 20.0


@dataclass
class Served:
    url: str
    key: str
    store: SQLiteStore


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    accounts = Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    _, issued = await accounts.create("acme", time.time())
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
        yield Served(f"http://127.0.0.1:{port}", issued.key, store)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STEP)
        await store.aclose()
        accounts.close()


async def _herald(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("HERALD_API_KEY", "HERALD_API")} | (env or {})
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "herald", "send", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ,
    )  # fmt: skip


async def _line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), STEP)).decode().rstrip("\n")


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), STEP)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _status_of(line: str) -> str:
    return line.split()[1]


async def test_send_follows_each_status_to_delivered(served: Served) -> None:
    proc = await _herald(
        "--to", "+1 415 555 2671", "--text", "Your code is 123456", "--api", served.url,
        "--api-key", served.key, "--interval", "0.05", "--wait", "30",
    )  # fmt: skip
    header = await _line(proc)
    assert header.endswith("(1 part, gsm7)")
    message_id = header.split()[1]
    assert _status_of(await _line(proc)) == "accepted"

    now = time.time()
    claimed = await served.store.claim(10, now, 30)
    assert [m.id for m in claimed] == [message_id]
    assert _status_of(await _line(proc)) == "queued"
    await served.store.record_segments([SegmentRecord(message_id, 0, "op", "U1", "u1", now + 0.1)])
    assert _status_of(await _line(proc)) == "sent"
    await served.store.apply_receipts([ReceiptUpdate("op", "u1", Status.DELIVERED, now + 0.2)])
    delivered = await _line(proc)
    assert _status_of(delivered) == "delivered"
    assert delivered.split()[0].endswith("Z")  # the time herald recorded, RFC 3339
    code, rest, _ = await _finish(proc)
    assert (code, rest) == (EXIT_DELIVERED, "")


async def test_send_exits_on_another_final_status(served: Served, tmp_path: Path) -> None:
    # The key from <data-dir>/demo.env, as `herald serve --demo` writes it.
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "demo.env").write_text(f"# demo\nHERALD_API_KEY={served.key}\n")
    proc = await _herald(
        "--to", "+14155552671", "--text", "hi", "--api", served.url,
        "--data-dir", str(tmp_path / "demo"), "--interval", "0.05",
    )  # fmt: skip
    message_id = (await _line(proc)).split()[1]
    assert _status_of(await _line(proc)) == "accepted"
    await served.store.update_statuses([StatusUpdate(message_id, Status.UNDELIVERED, time.time(),
                                     error_code=11, permanent=True)])  # fmt: skip
    final = await _line(proc)
    assert _status_of(final) == "undelivered" and "(error 11, permanent)" in final
    code, _, _ = await _finish(proc)
    assert code == EXIT_NOT_DELIVERED


async def test_send_gives_up_after_wait(served: Served) -> None:
    proc = await _herald("--to", "+14155552671", "--text", "hi", "--api", served.url,
                         "--wait", "0.5", "--interval", "0.1",
                         env={"HERALD_API_KEY": served.key})  # fmt: skip
    code, out, err = await _finish(proc)
    assert code == EXIT_TIMEOUT
    assert out.splitlines()[-1].endswith("accepted")
    assert "still accepted after 0.5 s" in err


async def test_send_reports_refusals_by_field(served: Served, tmp_path: Path) -> None:
    proc = await _herald("--to", "+1415", "--text", "hi", "--api", served.url,
                         "--api-key", served.key)  # fmt: skip
    code, out, err = await _finish(proc)
    assert (code, out) == (EXIT_REFUSED, "")
    assert "refused (422)" in err and "to: is too short for its country (too_short)" in err

    proc = await _herald("--to", "+14155552671", "--text", "hi", "--api", served.url,
                         "--api-key", "hk_wrong", "--data-dir", str(tmp_path))  # fmt: skip
    code, _, err = await _finish(proc)
    assert code == EXIT_REFUSED and "refused (401)" in err

    proc = await _herald("--to", "+14155552671", "--text", "hi", "--api", served.url,
                         "--data-dir", str(tmp_path / "none"))  # fmt: skip
    code, _, err = await _finish(proc)
    assert code == EXIT_REFUSED and "no API key" in err


async def test_send_to_an_api_that_is_not_there(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await _herald("--to", "+14155552671", "--text", "hi",
                         "--api", f"http://127.0.0.1:{port}", "--api-key", "hk_x")  # fmt: skip
    code, _, err = await _finish(proc)
    assert code == EXIT_UNREACHABLE and "cannot reach the API" in err


async def test_send_finds_the_api_and_key_in_the_environment_or_demo_env(
    served: Served, tmp_path: Path
) -> None:
    # What `herald serve --demo` writes: the key and where the API really listens.
    demo = tmp_path / "demo-data"
    demo.mkdir()
    (demo / "demo.env").write_text(f"HERALD_API_KEY={served.key}\nHERALD_API={served.url}\n")
    proc = await _herald("--to", "+14155552671", "--text", "hi", "--wait", "0",
                         "--data-dir", str(demo))  # fmt: skip
    header = await _line(proc)
    assert header.startswith("id ")
    await _finish(proc)
    # $HERALD_API beats demo.env, and --api beats both.
    (demo / "demo.env").write_text(f"HERALD_API_KEY={served.key}\nHERALD_API=http://127.0.0.1:9\n")
    proc = await _herald("--to", "+14155552671", "--text", "hi", "--wait", "0",
                         "--data-dir", str(demo), env={"HERALD_API": served.url})  # fmt: skip
    assert (await _line(proc)).startswith("id ")
    await _finish(proc)
    proc = await _herald("--to", "+14155552671", "--text", "hi", "--wait", "0",
                         "--data-dir", str(demo), "--api", "http://127.0.0.1:9")  # fmt: skip
    code, _, err = await _finish(proc)
    assert code == EXIT_UNREACHABLE and "127.0.0.1:9" in err
