"""``herald sim`` as a process: starts, serves, stops cleanly on SIGTERM; its
help and docs/sim.md document every behaviour."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from herald.sim import BEHAVIOURS, read_records
from herald.smpp.receipts import receipt_of

from .helpers import PASSWORD, SYSTEM_ID, bound_client, submit

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "sim.md"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def _herald(*args: str) -> list[str]:
    return [sys.executable, "-m", "herald", *args]


async def _start(*args: str, env: dict[str, str] | None = None
                 ) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        *_herald("sim", "--listen", "127.0.0.1:0", *args),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    found = re.search(rb"listening on 127\.0\.0\.1:(\d+) \(seed (\d+)\)", line)
    assert found, line
    return proc, int(found.group(1))


async def test_the_cli_serves_records_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    record = tmp_path / "sim.tsv"
    proc, port = await _start(
        "--system-id", SYSTEM_ID, "--receipt-delay", "0:0.05", "--seed", "42",
        "--outcomes", "undelivered=1", "--id-style", "decimal", "--record", str(record),
        env={"HERALD_SIM_PASSWORD": PASSWORD},
    )
    try:
        async with bound_client(port) as (client, inbox):
            resp = await client.submit(submit("447700900123", b"via the CLI"))
            assert resp.command_status == 0
            (receipt,) = await inbox.wait(1)
            parsed = receipt_of(receipt)
            assert parsed.stat == "UNDELIV"
            assert parsed.message_id == resp.message_id  # type: ignore[attr-defined]
            assert parsed.message_id.isdigit()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT)
    assert proc.returncode == 0, err.decode()
    assert b"1 submits, 1 accepted" in out and b"1 receipts sent" in out
    (line,) = read_records(record)
    assert (line.system_id, line.destination, line.status) == (SYSTEM_ID, "447700900123", 0)


async def test_the_cli_refuses_a_wrong_password() -> None:
    proc, port = await _start("--system-id", SYSTEM_ID, "--password", "other")
    try:
        from herald.net import SmppClient

        from .helpers import client_settings, eventually
        client = SmppClient(client_settings(port))
        await client.start()
        await eventually(lambda: client.last_error is not None, "a refused bind")
        await client.stop(timeout=0.2)
        assert getattr(client.last_error, "status", None) == 0x0E  # ESME_RINVPASWD
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT)
    assert proc.returncode == 0


@pytest.mark.parametrize(("args", "complaint"), [
    (["--receipt-delay", "soon"], "receipt-delay"),
    (["--outcomes", "lost=1"], "outcomes"),
    (["--system-id", "acme"], "system-id"),
    (["--listen", "nowhere"], "listen"),
    (["--tps", "-5"], "tps"),
    (["--drop-receipts", "2"], "drop-receipts"),
])
def test_bad_options_exit_2_naming_the_option(args: list[str], complaint: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HERALD_SIM_PASSWORD"}
    done = subprocess.run(_herald("sim", *args), capture_output=True, text=True,
                          timeout=30, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith(f"herald sim: {complaint}:"), done.stderr


def test_a_taken_port_exits_1() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(_herald("sim", "--listen", f"127.0.0.1:{port}"),
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "herald sim:" in done.stderr


def test_help_and_docs_document_every_behaviour() -> None:
    done = subprocess.run(_herald("sim", "--help"), capture_output=True, text=True,
                          timeout=30, env={**os.environ, "COLUMNS": "120"})
    assert done.returncode == 0
    text = DOC.read_text()
    for behaviour, example, _ in BEHAVIOURS:
        assert example in done.stdout, f"--help lacks {behaviour.name}"
        assert f"`{example}`" in text, f"docs/sim.md lacks {behaviour.name}"
    for option in ("--receipt-delay", "--outcomes", "--tps", "--seed", "--record",
                   "--id-style", "--receipt-id", "--drop-receipts"):
        assert option in done.stdout and f"`{option}" in text
