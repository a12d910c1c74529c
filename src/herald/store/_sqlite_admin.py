"""The SQLite store's admin keys and audit log (see :class:`~herald.store.AdminStore`).

A mixin of :class:`~herald.store.SQLiteStore`: it writes through the store's
group-commit writer and reads on its reader pool, like every other method.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from herald.store._errors import CredentialExists
from herald.store._model import Message
from herald.store._model_admin import (
    AdminKeyRecord,
    AdminScope,
    AuditEntry,
    AuditFilter,
    OverviewMinute,
    RecentFilter,
)
from herald.store._sqlite_conn import Readers
from herald.store._sqlite_sql import MESSAGE_COLUMNS, message_from_row

__all__ = ["SQLiteAdmin"]

T = TypeVar("T")

_KEY_COLUMNS = "key_id, name, scope, key_hash, created_at, revoked_at"
_AUDIT_COLUMNS = "seq, at, actor, action, target, changes"


def _key(row: Any) -> AdminKeyRecord:
    return AdminKeyRecord(row[0], row[1], AdminScope(row[2]), row[3], row[4], row[5])


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(row[1], row[2], row[3], row[4], json.loads(row[5]), row[0])


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SQLiteAdmin:
    """Admin keys and the audit log on SQLite."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def add_admin_key(self, record: AdminKeyRecord) -> None:
        r = record

        def add(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO admin_keys ({_KEY_COLUMNS}) VALUES (?,?,?,?,?,?)",
                    (r.key_id, r.name, r.scope.value, r.key_hash, r.created_at, r.revoked_at),
                )
            except sqlite3.IntegrityError as exc:
                raise CredentialExists(f"an admin key named {r.name!r} is active") from exc

        await self._write(add)

    async def get_admin_key(self, key_id: str) -> AdminKeyRecord | None:
        row = await self._readers.run(lambda c: c.execute(
            f"SELECT {_KEY_COLUMNS} FROM admin_keys WHERE key_id = ?", (key_id,)).fetchone())
        return None if row is None else _key(row)

    async def list_admin_keys(self) -> tuple[AdminKeyRecord, ...]:
        rows = await self._readers.run(lambda c: c.execute(
            f"SELECT {_KEY_COLUMNS} FROM admin_keys ORDER BY created_at, key_id").fetchall())
        return tuple(_key(r) for r in rows)

    async def revoke_admin_key(self, key_id: str, now: float) -> bool:
        def revoke(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE admin_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (now, key_id),
            ).rowcount == 1

        return await self._write(revoke)

    async def record_audit(self, entry: AuditEntry) -> int:
        e = entry
        changes = e.changes_json()

        def record(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO admin_audit (at, actor, action, target, changes) VALUES (?,?,?,?,?)",
                (e.at, e.actor, e.action, e.target, changes),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return await self._write(record)

    async def recent_messages(self, query: RecentFilter) -> tuple[Message, ...]:
        # seq is the rowid: "the newest window" is a range of it (of the
        # messages_account index with an account), never a scan of the table.
        where = ["seq > (SELECT COALESCE(MAX(seq), 0) FROM messages) - ?"]
        params: list[object] = [query.window]
        for clause, value in (("account_id = ?", query.account_id), ("status = ?", query.status),
                              ("accepted_at >= ?", query.since),
                              ("accepted_at < ?", query.until)):  # fmt: skip
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = (f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(where)}"
               " ORDER BY seq DESC LIMIT ?")
        params.append(query.limit)
        rows = await self._readers.run(lambda c: c.execute(sql, params).fetchall())
        return tuple(message_from_row(r) for r in rows)

    async def list_audit(self, query: AuditFilter) -> tuple[AuditEntry, ...]:
        where: list[str] = []
        params: list[object] = []
        if query.since is not None:
            where.append("at >= ?")
            params.append(query.since)
        if query.before is not None:
            where.append("seq < ?")
            params.append(query.before)
        if query.target is not None:
            if query.target.endswith("*"):
                where.append("target LIKE ? ESCAPE '\\'")
                params.append(_like_prefix(query.target[:-1]))
            else:
                where.append("target = ?")
                params.append(query.target)
        sql = (f"SELECT {_AUDIT_COLUMNS} FROM admin_audit"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY seq DESC LIMIT ?")
        rows = await self._readers.run(lambda c: c.execute(sql, (*params, query.limit)).fetchall())
        return tuple(_entry(r) for r in rows)

    async def last_audit_seq(self) -> int:
        row = await self._readers.run(
            lambda c: c.execute("SELECT COALESCE(MAX(seq), 0) FROM admin_audit").fetchone())
        return int(row[0])

    async def record_overview_minute(self, minute: OverviewMinute, keep: float) -> None:
        m = minute

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO overview_minutes (at, seconds, accepted, sent,"
                         " delivered, failed) VALUES (?,?,?,?,?,?)",
                         (m.at, m.seconds, m.accepted, m.sent, m.delivered, m.failed))
            conn.execute("DELETE FROM overview_minutes WHERE at < ?", (m.at - keep,))

        await self._write(write)

    async def overview_minutes(self, since: float) -> tuple[OverviewMinute, ...]:
        rows = await self._readers.run(lambda c: c.execute(
            "SELECT at, seconds, accepted, sent, delivered, failed FROM overview_minutes"
            " WHERE at >= ? ORDER BY at", (since,)).fetchall())
        return tuple(OverviewMinute(*r) for r in rows)
