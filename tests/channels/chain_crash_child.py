"""The chat service over a data directory, until killed (tests/channels/test_chain_crash.py).

argv: data directory, seconds to add to the clock (so that every timer is due).
Prints READY once the store is open; then fires timers a few at a time, with a
pause between steps so that a kill -9 lands in the middle of the work (a timer
claimed and not yet consumed, a chain half done).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from herald.chat import ChatService, ChatSettings
from herald.store import SQLiteConfig, SQLiteStore


async def main(data: Path, offset: float) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    chat = ChatService(store, ChatSettings(batch=5, timer_lease=30.0),
                       clock=lambda: time.time() + offset, adapters={})
    print("READY", flush=True)
    while True:
        await chat.step()
        await asyncio.sleep(0.005)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2])))
