"""The chat service over a store, until killed (tests/channels/test_chain_crash.py).

argv: a data directory (SQLite) or a PostgreSQL URL, seconds to add to the
clock (so that every timer is due), and optionally the pause between steps
(seconds; 0.005).
Prints READY once the store is open; then fires timers a few at a time, with a
pause between steps so that a kill -9 lands in the middle of the work (a timer
claimed and not yet consumed, a chain half done).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from herald.chat import ChatService, ChatSettings
from herald.store import SQLiteConfig, SQLiteStore
from herald.store.postgres import PostgresStore, is_postgres_url


async def main(where: str, offset: float, pause: float) -> None:
    store: Any
    if is_postgres_url(where):
        store = await PostgresStore.open(where)
    else:
        store = SQLiteStore.open(SQLiteConfig(data_dir=Path(where)))
    chat = ChatService(store, ChatSettings(batch=5, timer_lease=30.0),
                       clock=lambda: time.time() + offset, adapters={})
    print("READY", flush=True)
    while True:
        await chat.step()
        await asyncio.sleep(pause)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float((sys.argv[3:] or ["0.005"])[0])))
