"""Crash safety: SIGKILL a writing process at random moments; nothing acknowledged is lost.

``crash_child.py`` writes through the real store and logs every acknowledged
write; this test kills it (SIGKILL: no cleanup, no flush, no atexit) after a
random delay, reopens the same data directory, and checks that every
acknowledged message is there with (at least) its acknowledged status, and
that the database is intact. The CI run does a few rounds in a few seconds;
``-m slow`` does many more.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from herald.store import SQLiteConfig, SQLiteStore, Status

CHILD = Path(__file__).with_name("crash_child.py")
READY_TIMEOUT = 20.0  # seconds for the child to import and open the store


async def _stderr(child: asyncio.subprocess.Process) -> str:
    assert child.stderr is not None
    return (await child.stderr.read()).decode(errors="replace")


def _read_log(path: Path) -> list[str]:
    text = path.read_text()
    lines = text.split("\n")
    return lines[:-1]  # a line cut by the kill has no newline: it was never acknowledged


async def _crash_rounds(tmp_path: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    data = tmp_path / "data"
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    await store.create_account("crash", 0.0, rate_limit=1e6, bind_limit=1)
    await store.aclose()
    accepted: set[str] = set()
    delivered: set[str] = set()
    for round_ in range(rounds):
        ack_log = tmp_path / f"acks-{round_}.log"
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), str(data), str(ack_log), str(rng.randrange(2**32)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            # Ready, and a first write acknowledged (a loaded machine can take longer
            # than the shortest delay below for that): then kill at a random moment.
            while not (ack_log.exists() and ack_log.read_bytes().startswith(b"READY\n")
                       and ack_log.read_bytes().count(b"\n") > 1):
                assert child.returncode is None, await _stderr(child)
                assert time.monotonic() < deadline, "the child never wrote through the store"
                await asyncio.sleep(0.01)
            await asyncio.sleep(rng.uniform(0.05, 0.6))
            assert child.returncode is None, await _stderr(child)
        finally:
            if child.returncode is None:
                os.kill(child.pid, signal.SIGKILL)
            await asyncio.wait_for(child.wait(), timeout=10)
        acks = _read_log(ack_log)[1:]
        assert acks, "the child acknowledged nothing before it was killed"
        accepted.update(line[2:] for line in acks if line[0] == "A")
        delivered.update(line[2:] for line in acks if line[0] in "DR")

        # Reopen exactly as herald would after the crash, then look at every row.
        store = SQLiteStore.open(SQLiteConfig(data_dir=data))
        await store.aclose()
        with sqlite3.connect(data / "herald.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            rows = dict(db.execute("SELECT id, status FROM messages").fetchall())
        db.close()
        missing = accepted - rows.keys()
        assert not missing, f"seed {seed} round {round_}: {len(missing)} acknowledged messages lost"
        wrong = {i: rows[i] for i in delivered if rows[i] != Status.DELIVERED}
        assert not wrong, f"seed {seed} round {round_}: acknowledged deliveries lost: {wrong}"
    assert len(accepted) > rounds  # the rounds did real work


async def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    await _crash_rounds(tmp_path, rounds=3, seed=random.randrange(2**32))


@pytest.mark.slow
async def test_sigkill_loses_no_acknowledged_write_long(tmp_path: Path) -> None:
    await _crash_rounds(tmp_path, rounds=40, seed=random.randrange(2**32))
