"""The SQLite store's chat-channel windows (:class:`~herald.store.ChatStore`).

A mixin of :class:`~herald.store.SQLiteStore`. Recording keeps the latest
time, so webhooks that arrive out of order never shorten a window.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final, TypeVar

from herald.store._errors import InvalidRecord, UnknownAccount
from herald.store._sqlite_conn import Readers

__all__ = ["MAX_CHAT_ADDRESS_LENGTH", "SQLiteChat"]

T = TypeVar("T")
#: Characters of a channel name, a sender (a phone number id, a sender name) or a
#: user (a phone number, a WhatsApp id).
MAX_CHAT_ADDRESS_LENGTH: Final = 64


def _check(**values: str) -> None:
    for name, value in values.items():
        if not value or len(value) > MAX_CHAT_ADDRESS_LENGTH:
            raise InvalidRecord(name, f"must be 1..{MAX_CHAT_ADDRESS_LENGTH} characters")


class SQLiteChat:
    """Chat windows on SQLite."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def record_chat_inbound(self, account_id: int, channel: str, sender: str, user: str,
                                  at: float) -> None:
        _check(channel=channel, sender=sender, user=user)

        def write(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() \
                    is None:
                raise UnknownAccount(f"no account {account_id}")
            conn.execute(
                "INSERT INTO chat_windows (account_id, channel, sender, user, last_inbound_at)"
                " VALUES (?,?,?,?,?) ON CONFLICT (account_id, channel, sender, user) DO UPDATE"
                " SET last_inbound_at = max(last_inbound_at, excluded.last_inbound_at)",
                (account_id, channel, sender, user, at))

        await self._write(write)

    async def chat_window_opened(self, account_id: int, channel: str, sender: str,
                                 user: str) -> float | None:
        def read(conn: sqlite3.Connection) -> float | None:
            r = conn.execute("SELECT last_inbound_at FROM chat_windows WHERE account_id = ?"
                             " AND channel = ? AND sender = ? AND user = ?",
                             (account_id, channel, sender, user)).fetchone()
            return None if r is None else float(r[0])

        return await self._readers.run(read)
