"""The SQLite store's verifications and conversions (:class:`~herald.store.VerifyStore`).

A mixin of :class:`~herald.store.SQLiteStore`. The per-number send limit is
counted in the write that records the send: the writer runs one transaction
at a time (across processes too), so two requests for one number cannot both
take the last send of the window.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from herald.store._errors import Conflict, MessageNotFound, NotFound
from herald.store._model_verify import (
    SendLimitExceeded,
    Verification,
    VerificationSend,
    VerificationStatus,
    checked,
    require_pending,
    resent,
)
from herald.store._sqlite_conn import Readers

__all__ = ["SQLiteVerify"]

T = TypeVar("T")

_COLUMNS = (
    "id, account_id, to_number, use_case, app, locale, code_length, status, created_at,"
    " expires_at, salt, code_hash, sends, checks, client"
)


def _row(v: Verification) -> tuple[Any, ...]:
    return (v.id, v.account_id, v.to, v.use_case, v.app, v.locale, v.code_length,
            int(v.status), v.created_at, v.expires_at, v.salt, v.code_hash, v.sends, v.checks,
            json.dumps(dict(v.client), sort_keys=True))  # fmt: skip


def _verification(r: Sequence[Any]) -> Verification:
    return Verification(r[0], r[1], r[2], r[3], r[4], r[5], r[6], VerificationStatus(r[7]),
                        r[8], r[9], bytes(r[10]), bytes(r[11]), r[12], r[13],
                        json.loads(r[14]))  # fmt: skip


def _read(conn: sqlite3.Connection, verification_id: str, account_id: int) -> Verification:
    r = conn.execute(f"SELECT {_COLUMNS} FROM verifications WHERE id = ? AND account_id = ?",
                     (verification_id, account_id)).fetchone()  # fmt: skip
    if r is None:
        raise NotFound(f"no verification {verification_id}")
    return _verification(r)


def _take_send(conn: sqlite3.Connection, account_id: int, to: str, now: float,
               window: float, limit: int) -> None:  # fmt: skip
    """Raise :class:`SendLimitExceeded` if ``to`` had ``limit`` sends in ``window``."""
    rows = conn.execute(
        "SELECT sent_at FROM verification_sends WHERE account_id = ? AND to_number = ?"
        " AND sent_at > ? ORDER BY sent_at LIMIT ?", (account_id, to, now - window, limit),
    ).fetchall()  # fmt: skip
    if len(rows) >= limit:
        raise SendLimitExceeded(limit, rows[0][0] + window)


def _add_send(conn: sqlite3.Connection, v: Verification, attempt: int, message_id: str,
              now: float) -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO verification_sends (verification_id, attempt, account_id, to_number,"
        " message_id, sent_at) VALUES (?,?,?,?,?,?)",
        (v.id, attempt, v.account_id, v.to, message_id, now),
    )  # fmt: skip


class SQLiteVerify:
    """Verifications, their sends and message conversions on SQLite."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def start_verification(
        self, verification: Verification, message_id: str, *, window: float, limit: int
    ) -> None:
        v = verification

        def start(conn: sqlite3.Connection) -> None:
            _take_send(conn, v.account_id, v.to, v.created_at, window, limit)
            try:
                conn.execute(f"INSERT INTO verifications ({_COLUMNS})"
                             " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", _row(v))
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"verification {v.id} exists") from exc
            _add_send(conn, v, 1, message_id, v.created_at)

        await self._write(start)

    async def resend_verification(
        self, verification_id: str, account_id: int, *, salt: bytes, code_hash: bytes,
        expires_at: float, message_id: str, now: float, window: float, limit: int,
    ) -> Verification:  # fmt: skip
        def resend(conn: sqlite3.Connection) -> Verification:
            v = _read(conn, verification_id, account_id)
            require_pending(v, now)
            _take_send(conn, account_id, v.to, now, window, limit)
            new = resent(v, salt=salt, code_hash=code_hash, expires_at=expires_at)
            conn.execute(
                "UPDATE verifications SET salt = ?, code_hash = ?, expires_at = ?, sends = ?"
                " WHERE id = ?", (salt, code_hash, expires_at, new.sends, v.id),
            )  # fmt: skip
            _add_send(conn, new, new.sends, message_id, now)
            return new

        return await self._write(resend)

    async def undo_verification_send(
        self, verification_id: str, attempt: int, restore: Verification | None
    ) -> None:
        def undo(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM verification_sends WHERE verification_id = ?"
                         " AND attempt = ?", (verification_id, attempt))  # fmt: skip
            if restore is None:
                conn.execute("DELETE FROM verifications WHERE id = ?", (verification_id,))
            else:
                r = restore
                conn.execute(
                    "UPDATE verifications SET salt = ?, code_hash = ?, expires_at = ?,"
                    " sends = ? WHERE id = ?",
                    (r.salt, r.code_hash, r.expires_at, r.sends, verification_id),
                )  # fmt: skip

        await self._write(undo)

    async def cancel_verification(self, verification_id: str, account_id: int,
                                  now: float) -> Verification:
        def cancel(conn: sqlite3.Connection) -> Verification:
            require_pending(_read(conn, verification_id, account_id), now)
            conn.execute("UPDATE verifications SET status = ? WHERE id = ?",
                         (int(VerificationStatus.CANCELED), verification_id))  # fmt: skip
            return _read(conn, verification_id, account_id)

        return await self._write(cancel)

    async def get_verification(self, verification_id: str, account_id: int) -> Verification:
        return await self._readers.run(lambda c: _read(c, verification_id, account_id))

    async def verification_sends(
        self, verification_id: str, account_id: int
    ) -> tuple[VerificationSend, ...]:
        def read(conn: sqlite3.Connection) -> tuple[VerificationSend, ...]:
            rows = conn.execute(
                "SELECT verification_id, attempt, message_id, sent_at FROM verification_sends"
                " WHERE verification_id = ? AND account_id = ? ORDER BY attempt",
                (verification_id, account_id),
            ).fetchall()  # fmt: skip
            return tuple(VerificationSend(*r) for r in rows)

        return await self._readers.run(read)

    async def record_check(
        self, verification_id: str, account_id: int, *, sends: int, matched: bool,
        now: float, max_checks: int,
    ) -> Verification:  # fmt: skip
        def check(conn: sqlite3.Connection) -> Verification:
            v = _read(conn, verification_id, account_id)
            after = checked(v, sends=sends, matched=matched, now=now, max_checks=max_checks)
            if after is not v:
                conn.execute("UPDATE verifications SET checks = ?, status = ? WHERE id = ?",
                             (after.checks, int(after.status), v.id))  # fmt: skip
            return after

        return await self._write(check)

    async def record_conversion(self, message_id: str, account_id: int, at: float) -> float:
        def record(conn: sqlite3.Connection) -> float:
            if conn.execute("SELECT 1 FROM messages WHERE id = ? AND account_id = ?",
                            (message_id, account_id)).fetchone() is None:  # fmt: skip
                raise MessageNotFound(f"no message {message_id}")
            # The next seq (fraud_tail), under the write lock.
            conn.execute("INSERT OR IGNORE INTO conversions (message_id, account_id,"
                         " converted_at, seq) VALUES (?,?,?, (SELECT coalesce(max(seq), 0)"
                         " + 1 FROM conversions))", (message_id, account_id, at))
            row = conn.execute("SELECT converted_at FROM conversions WHERE message_id = ?",
                               (message_id,)).fetchone()  # fmt: skip
            return float(row[0])

        return await self._write(record)

    async def get_conversion(self, message_id: str, account_id: int) -> float | None:
        def read(conn: sqlite3.Connection) -> float | None:
            row = conn.execute("SELECT converted_at FROM conversions WHERE message_id = ?"
                               " AND account_id = ?", (message_id, account_id)).fetchone()
            return None if row is None else float(row[0])

        return await self._readers.run(read)
