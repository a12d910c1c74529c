"""Admin keys, the admin audit log and the operator's search of recent messages
on PostgreSQL (the port's AdminStore; private).

The audit log's ``seq`` orders every change: a process that has read up to
one (``ChangeFeed`` polls ``last_audit_seq`` and reads what is newer) must
never find a smaller one later. A sequence would hand out numbers in one
order and let their transactions commit in another (two nodes recording at
once: 6 visible before 5, and a feed that read 6 never reads 5). So
:meth:`record_audit` takes the table's write lock for its transaction and
writes ``max(seq) + 1``: entries commit one at a time, in their order, with
no gaps, as the SQLite store's single writer does. Readers are not blocked.
Each method is one transaction of :class:`~herald.store.postgres.PostgresStore`
(a mixin).
"""

from __future__ import annotations

import json
from typing import Any

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
from herald.store.postgres._listing import newest_first, status_is
from herald.store.postgres._part import StorePart
from herald.store.postgres._queue import Record, message_from_record

__all__ = ["PostgresAdmin"]

_KEY_COLUMNS = "key_id, name, scope, key_hash, created_at, revoked_at"
_AUDIT_COLUMNS = "seq, at, actor, action, target, changes"

# SHARE ROW EXCLUSIVE conflicts with itself (and with every write) but not
# with reads: one record_audit at a time, list_audit and last_audit_seq free.
_LOCK_AUDIT = "LOCK TABLE admin_audit IN SHARE ROW EXCLUSIVE MODE"
_APPEND_AUDIT = """
INSERT INTO admin_audit (seq, at, actor, action, target, changes)
SELECT coalesce(max(seq), 0) + 1, $1, $2, $3, $4, $5 FROM admin_audit
RETURNING seq
"""


def _key(r: Record) -> AdminKeyRecord:
    return AdminKeyRecord(r["key_id"], r["name"], AdminScope(r["scope"]), r["key_hash"],
                          r["created_at"], r["revoked_at"])  # fmt: skip


def _entry(r: Record) -> AuditEntry:
    return AuditEntry(r["at"], r["actor"], r["action"], r["target"], json.loads(r["changes"]),
                      r["seq"])  # fmt: skip


class PostgresAdmin(StorePart):
    """The admin methods of :class:`~herald.store.postgres.PostgresStore` (a mixin)."""

    async def add_admin_key(self, record: AdminKeyRecord) -> None:
        r = record

        async def add(conn: Any) -> None:
            try:
                await conn.execute(
                    f"INSERT INTO admin_keys ({_KEY_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6)",
                    r.key_id, r.name, r.scope.value, r.key_hash, r.created_at, r.revoked_at)
            except self._asyncpg.UniqueViolationError as exc:  # the id, or an active name
                raise CredentialExists(f"an admin key named {r.name!r} is active") from exc

        await self._one(add)

    async def get_admin_key(self, key_id: str) -> AdminKeyRecord | None:
        row = await self._one(lambda c: c.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM admin_keys WHERE key_id = $1", key_id))
        return None if row is None else _key(row)

    async def list_admin_keys(self) -> tuple[AdminKeyRecord, ...]:
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {_KEY_COLUMNS} FROM admin_keys ORDER BY created_at, key_id"))
        return tuple(_key(r) for r in rows)

    async def revoke_admin_key(self, key_id: str, now: float) -> bool:
        revoked = await self._one(lambda c: c.fetchval(
            "UPDATE admin_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL"
            " RETURNING key_id", key_id, now))
        return revoked is not None

    async def record_audit(self, entry: AuditEntry) -> int:
        e = entry
        changes = e.changes_json()

        async def record(conn: Any) -> int:
            await conn.execute(_LOCK_AUDIT)
            seq: int = await conn.fetchval(_APPEND_AUDIT, e.at, e.actor, e.action, e.target,
                                           changes)  # fmt: skip
            return seq

        return await self._run(record)

    async def recent_messages(self, query: RecentFilter) -> tuple[Message, ...]:
        # "The newest window" is a range of seq (of messages_account's with an
        # account), never a scan of the table. A seq an accept that failed had
        # taken is a gap: the window then holds fewer messages, never more.
        where: list[tuple[str, object]] = [
            ("m.seq > (SELECT coalesce(max(seq), 0) FROM messages) - $", query.window)]
        for condition, value in (("m.accepted_at >= $", query.since),
                                 ("m.accepted_at < $", query.until)):  # fmt: skip
            if value is not None:
                where.append((condition, value))
        if query.status is not None:
            where.append(status_is(query.status))
        sql, params = newest_first(where, query.limit, account_id=query.account_id)
        rows = await self._one(lambda c: c.fetch(sql, *params))
        return tuple(message_from_record(r) for r in rows)

    async def list_audit(self, query: AuditFilter) -> tuple[AuditEntry, ...]:
        where: list[str] = []
        params: list[object] = []
        if query.since is not None:
            params.append(query.since)
            where.append(f"at >= ${len(params)}")
        if query.before is not None:
            params.append(query.before)
            where.append(f"seq < ${len(params)}")
        if query.target is not None:
            prefix = query.target.endswith("*")
            params.append(query.target[:-1] if prefix else query.target)
            # a prefix is compared as text: '%' and '_' in it are characters
            where.append(f"starts_with(target, ${len(params)})" if prefix
                         else f"target = ${len(params)}")  # fmt: skip
        params.append(query.limit)
        sql = (f"SELECT {_AUDIT_COLUMNS} FROM admin_audit"
               f"{' WHERE ' + ' AND '.join(where) if where else ''}"
               f" ORDER BY seq DESC LIMIT ${len(params)}")
        rows = await self._one(lambda c: c.fetch(sql, *params))
        return tuple(_entry(r) for r in rows)

    async def record_overview_minute(self, minute: OverviewMinute, keep: float) -> None:
        m = minute

        async def write(conn: Any) -> None:
            await conn.execute(
                "INSERT INTO overview_minutes (at, seconds, accepted, sent, delivered, failed)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (at) DO UPDATE SET"
                " seconds = excluded.seconds, accepted = excluded.accepted,"
                " sent = excluded.sent, delivered = excluded.delivered, failed = excluded.failed",
                m.at, m.seconds, m.accepted, m.sent, m.delivered, m.failed)
            await conn.execute("DELETE FROM overview_minutes WHERE at < $1", m.at - keep)

        await self._run(write)

    async def overview_minutes(self, since: float) -> tuple[OverviewMinute, ...]:
        rows = await self._one(lambda c: c.fetch(
            "SELECT at, seconds, accepted, sent, delivered, failed FROM overview_minutes"
            " WHERE at >= $1 ORDER BY at", since))
        return tuple(OverviewMinute(*r) for r in rows)

    async def last_audit_seq(self) -> int:
        seq: int = await self._one(lambda c: c.fetchval(
            "SELECT coalesce(max(seq), 0) FROM admin_audit"))
        return seq
