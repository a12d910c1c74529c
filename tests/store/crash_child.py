"""The process the crash test SIGKILLs: writes to the store as fast as it can.

Usage: ``python crash_child.py DATA_DIR ACK_LOG SEED``. The data directory must
hold an account named ``crash`` already.

After each write is *acknowledged* (its ``await`` returned) it appends a line
to ACK_LOG with ``os.write`` on an ``O_APPEND`` descriptor (the kernel keeps
the line when the process dies right after):

- ``A <id>``: ``accept`` returned for this message;
- ``D <id>``: ``update_statuses`` to DELIVERED returned (one-segment messages);
- ``R <id>``: a two-segment message's receipts and segments were all
  acknowledged (one receipt parked before its segment), so it is delivered.

``READY`` is written once the store is open. The parent checks every
acknowledged fact after reopening the store.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from pathlib import Path

from herald.ids import SortableIdGenerator
from herald.store import (
    NewMessage,
    ReceiptUpdate,
    SegmentRecord,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    StatusUpdate,
    Store,
)

WRITERS = 32  # concurrent tasks, so commits carry many writes each


async def _writer(store: Store, account_id: int, log: int, rng: random.Random, n: int) -> None:
    ids = SortableIdGenerator()
    for round_ in range(1_000_000):  # bounded: the parent kills us long before
        now = time.time()
        two_parts = rng.random() < 0.3
        batch = [
            NewMessage(
                id=ids.new_id(now),
                account_id=account_id,
                source=Source.HTTP,
                to=f"+4477{n:04d}{round_ % 10_000:04d}",
                sender="CRASH",
                body=b"x" * 10,
                encoding="gsm7",
                data_coding=0,
                segments=2 if two_parts else 1,
                accepted_at=now,
                expires_at=now + 3600,
            )
            for _ in range(1 if two_parts else rng.randint(1, 4))
        ]
        await store.accept(batch)
        os.write(log, "".join(f"A {m.id}\n" for m in batch).encode())
        for m in batch:
            if two_parts:
                key = f"{m.id}-"
                await store.apply_receipts([  # parked
                    ReceiptUpdate("up", key + "1", Status.DELIVERED, now)])
                await store.record_segments([
                    SegmentRecord(m.id, 0, "up", key + "0", key + "0", now)])
                await store.record_segments([
                    SegmentRecord(m.id, 1, "up", key + "1", key + "1", now)])
                await store.apply_receipts([ReceiptUpdate("up", key + "0", Status.DELIVERED, now)])
                os.write(log, f"R {m.id}\n".encode())
            elif rng.random() < 0.5:
                await store.update_statuses([StatusUpdate(m.id, Status.DELIVERED, now)])
                os.write(log, f"D {m.id}\n".encode())


async def main(data_dir: Path, ack_log: Path, seed: int) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=data_dir))
    account = await store.get_account_by_name("crash")
    log = os.open(ack_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(log, b"READY\n")
    rng = random.Random(seed)
    await asyncio.gather(
        *(_writer(store, account.id, log, random.Random(rng.random()), n) for n in range(WRITERS))
    )


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
