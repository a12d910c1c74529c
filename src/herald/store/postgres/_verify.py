"""Verifications and conversions on PostgreSQL (the port's VerifyStore; private).

A mixin of :class:`~herald.store.postgres.PostgresStore`; codes are kept as
the caller hashed them (``salt``, ``code_hash``), as on SQLite, and the rules
are the shared ones of :mod:`herald.store._model_verify`.

Theory of operation: SQLite runs one write transaction at a time, so its
limits hold by themselves; here several nodes write at once, so each method
that reads a verification in order to change it reads it ``FOR UPDATE`` (a
check, a resend or a cancel of one verification wait for each other, and the
second sees the first's result: never more checks counted than allowed, never
two approvals). The per-number send limit counts rows that may not exist yet
(a number's first verification has none to lock), so a send first takes a
transaction advisory lock on (account, number): two sends to one number take
turns, and the second counts the first's row (its count is a statement after
the lock: under READ COMMITTED, the store's isolation, it sees that row).
"""

from __future__ import annotations

import json
from typing import Any

from herald.store._errors import Conflict, InvalidRecord, MessageNotFound, NotFound
from herald.store._model_verify import (
    SendLimitExceeded,
    Verification,
    VerificationSend,
    VerificationStatus,
    checked,
    require_pending,
    resent,
)
from herald.store.postgres._part import StorePart
from herald.store.postgres._queue import Record

__all__ = ["PostgresVerify", "check_storable"]

_COLUMNS = (
    "id, account_id, to_number, use_case, app, locale, code_length, status, created_at,"
    " expires_at, salt, code_hash, sends, checks, client"
)

# A new verification and its first send, in one statement.
_START = f"""
WITH v AS (
    INSERT INTO verifications ({_COLUMNS})
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    RETURNING id, account_id, to_number, created_at)
INSERT INTO verification_sends (verification_id, attempt, account_id, to_number, message_id,
                                sent_at)
SELECT id, 1, account_id, to_number, $16, created_at FROM v"""

# A resend: the new code, expiry and send count, and the send (attempt = sends).
_RESEND = """
WITH v AS (
    UPDATE verifications SET salt = $2, code_hash = $3, expires_at = $4, sends = $5
    WHERE id = $1 RETURNING id, account_id, to_number)
INSERT INTO verification_sends (verification_id, attempt, account_id, to_number, message_id,
                                sent_at)
SELECT id, $5, account_id, to_number, $6, $7 FROM v"""


def check_storable(field: str, value: str) -> None:
    """Raise :class:`InvalidRecord` naming ``field`` if ``value`` holds U+0000:
    PostgreSQL text cannot (SQLite's can), and the driver's error names no field."""
    if "\x00" in value:
        raise InvalidRecord(field, "contains U+0000, which PostgreSQL text cannot hold")


def _verification(r: Record) -> Verification:
    return Verification(
        r["id"], r["account_id"], r["to_number"], r["use_case"], r["app"], r["locale"],
        r["code_length"], VerificationStatus(r["status"]), r["created_at"], r["expires_at"],
        bytes(r["salt"]), bytes(r["code_hash"]), r["sends"], r["checks"],
        json.loads(r["client"]),
    )  # fmt: skip


async def _read(conn: Any, verification_id: str, account_id: int, *,
                lock: bool = False) -> Verification:  # fmt: skip
    """The account's verification (``lock``: ``FOR UPDATE``, for the rest of the
    transaction); :class:`NotFound`."""
    r = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM verifications WHERE id = $1 AND account_id = $2"
        + (" FOR UPDATE" if lock else ""), verification_id, account_id)  # fmt: skip
    if r is None:
        raise NotFound(f"no verification {verification_id}")
    return _verification(r)


async def _take_send(conn: Any, account_id: int, to: str, now: float, window: float,
                     limit: int) -> None:  # fmt: skip
    """Take the number's lock (held until the transaction ends: its send is
    written before another send to the number is counted), then raise
    :class:`SendLimitExceeded` if ``to`` had ``limit`` sends in ``window``."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                       f"verification-sends {account_id} {to}")  # fmt: skip
    rows = await conn.fetch(  # a statement after the lock: it sees what the last holder wrote
        "SELECT sent_at FROM verification_sends WHERE account_id = $1 AND to_number = $2"
        " AND sent_at > $3 ORDER BY sent_at LIMIT $4", account_id, to, now - window, limit)
    if len(rows) >= limit:
        raise SendLimitExceeded(limit, rows[0]["sent_at"] + window)


class PostgresVerify(StorePart):
    """The verification methods of :class:`~herald.store.postgres.PostgresStore` (a mixin)."""

    async def start_verification(
        self, verification: Verification, message_id: str, *, window: float, limit: int
    ) -> None:
        v = verification
        for field in ("to", "use_case", "app", "locale"):
            check_storable(field, getattr(v, field))

        async def start(conn: Any) -> None:
            await _take_send(conn, v.account_id, v.to, v.created_at, window, limit)
            try:
                await conn.execute(
                    _START, v.id, v.account_id, v.to, v.use_case, v.app, v.locale,
                    v.code_length, int(v.status), v.created_at, v.expires_at, v.salt,
                    v.code_hash, v.sends, v.checks, json.dumps(dict(v.client), sort_keys=True),
                    message_id,
                )  # fmt: skip
            except self._asyncpg.UniqueViolationError as exc:
                raise Conflict(f"verification {v.id} exists") from exc

        await self._run(start)

    async def resend_verification(
        self, verification_id: str, account_id: int, *, salt: bytes, code_hash: bytes,
        expires_at: float, message_id: str, now: float, window: float, limit: int,
    ) -> Verification:  # fmt: skip
        async def resend(conn: Any) -> Verification:
            v = await _read(conn, verification_id, account_id, lock=True)
            require_pending(v, now)
            await _take_send(conn, account_id, v.to, now, window, limit)
            new = resent(v, salt=salt, code_hash=code_hash, expires_at=expires_at)
            await conn.execute(_RESEND, v.id, salt, code_hash, expires_at, new.sends,
                               message_id, now)  # fmt: skip
            return new

        return await self._run(resend)

    async def undo_verification_send(
        self, verification_id: str, attempt: int, restore: Verification | None
    ) -> None:
        async def undo(conn: Any) -> None:
            await conn.execute("DELETE FROM verification_sends WHERE verification_id = $1"
                               " AND attempt = $2", verification_id, attempt)  # fmt: skip
            if restore is None:
                await conn.execute("DELETE FROM verifications WHERE id = $1", verification_id)
            else:
                r = restore
                await conn.execute(
                    "UPDATE verifications SET salt = $2, code_hash = $3, expires_at = $4,"
                    " sends = $5 WHERE id = $1",
                    verification_id, r.salt, r.code_hash, r.expires_at, r.sends)  # fmt: skip

        await self._run(undo)

    async def cancel_verification(self, verification_id: str, account_id: int,
                                  now: float) -> Verification:  # fmt: skip
        async def cancel(conn: Any) -> Verification:
            require_pending(await _read(conn, verification_id, account_id, lock=True), now)
            r = await conn.fetchrow(
                f"UPDATE verifications SET status = $2 WHERE id = $1 RETURNING {_COLUMNS}",
                verification_id, int(VerificationStatus.CANCELED))  # fmt: skip
            return _verification(r)

        return await self._run(cancel)

    async def get_verification(self, verification_id: str, account_id: int) -> Verification:
        return await self._one(lambda c: _read(c, verification_id, account_id))

    async def verification_sends(
        self, verification_id: str, account_id: int
    ) -> tuple[VerificationSend, ...]:
        rows = await self._one(lambda c: c.fetch(
            "SELECT verification_id, attempt, message_id, sent_at FROM verification_sends"
            " WHERE verification_id = $1 AND account_id = $2 ORDER BY attempt",
            verification_id, account_id))  # fmt: skip
        return tuple(VerificationSend(r["verification_id"], r["attempt"], r["message_id"],
                                      r["sent_at"]) for r in rows)  # fmt: skip

    async def record_check(
        self, verification_id: str, account_id: int, *, sends: int, matched: bool,
        now: float, max_checks: int,
    ) -> Verification:  # fmt: skip
        async def check(conn: Any) -> Verification:
            # FOR UPDATE: a concurrent check of this verification waits for this one
            # and decides on its result (the count and status written here).
            v = await _read(conn, verification_id, account_id, lock=True)
            after = checked(v, sends=sends, matched=matched, now=now, max_checks=max_checks)
            if after is not v:
                await conn.execute("UPDATE verifications SET checks = $2, status = $3"
                                   " WHERE id = $1", v.id, after.checks,
                                   int(after.status))  # fmt: skip
            return after

        return await self._run(check)

    async def record_conversion(self, message_id: str, account_id: int, at: float) -> float:
        async def record(conn: Any) -> float:
            if await conn.fetchval("SELECT 1 FROM messages WHERE id = $1 AND account_id = $2",
                                   message_id, account_id) is None:  # fmt: skip
                raise MessageNotFound(f"no message {message_id}")
            kept = await conn.fetchval(
                "INSERT INTO conversions (message_id, account_id, converted_at)"
                " VALUES ($1, $2, $3) ON CONFLICT (message_id) DO NOTHING RETURNING converted_at",
                message_id, account_id, at)  # fmt: skip
            if kept is None:  # recorded before (a concurrent insert waited for its commit)
                kept = await conn.fetchval(
                    "SELECT converted_at FROM conversions WHERE message_id = $1", message_id)
            return float(kept)

        return await self._run(record)

    async def get_conversion(self, message_id: str, account_id: int) -> float | None:
        at = await self._one(lambda c: c.fetchval(
            "SELECT converted_at FROM conversions WHERE message_id = $1 AND account_id = $2",
            message_id, account_id))  # fmt: skip
        return None if at is None else float(at)
