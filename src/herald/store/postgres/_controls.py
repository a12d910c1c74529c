"""Account controls, daily quota counts and opt-out lists on PostgreSQL (the
port's ControlStore; private).

:class:`PostgresControls` gives :class:`~herald.store.postgres.PostgresStore`
the :class:`~herald.store.ControlStore` methods; :func:`count_quota` and
:func:`apply_opt_outs` are for the transactions of ``accept`` and
``add_inbound`` (as the SQLite store's ``_sqlite_controls`` are).

Across nodes: the quota is counted by one conditional upsert, which takes the
day's row lock, so concurrent accepts on any node never pass it. Opt-out seqs
come from the ``opt_outs_seq`` row, locked until the writer commits: writers
take turns, and a seq is never visible before a smaller one, so a process
that has read every change up to ``seq`` misses none that commit later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from herald.store._errors import QuotaExceeded, UnknownAccount
from herald.store._model import CONTROL_LISTS as _LISTS
from herald.store._model import (
    NO_CONTROLS,
    AccountControls,
    DailyQuota,
    OptOutChange,
    OptOutEntry,
)
from herald.store.postgres._part import StorePart
from herald.store.postgres._queue import Record

__all__ = ["PostgresControls", "apply_opt_outs", "count_quota"]

_OPT_OUT_COLUMNS = "account_id, number, opted_out, seq, updated_at, source"

# Adds $3 to the day's count unless that would pass the limit $4; no row back:
# refused (the conflicting row is locked all the same, so the count read
# after it is the one that refused).
_COUNT_QUOTA = """
INSERT INTO daily_usage AS d (account_id, day, used)
SELECT $1, $2, $3::bigint WHERE $3::bigint <= $4::bigint
ON CONFLICT (account_id, day) DO UPDATE SET used = d.used + excluded.used
    WHERE d.used + excluded.used <= $4::bigint
RETURNING used
"""
_WRITE_OPT_OUTS = """
INSERT INTO opt_outs (account_id, number, opted_out, seq, updated_at, source)
SELECT $1, * FROM unnest($2::text[], $3::boolean[], $4::bigint[], $5::float8[], $6::text[])
ON CONFLICT (account_id, number) DO UPDATE SET opted_out = excluded.opted_out,
    seq = excluded.seq, updated_at = excluded.updated_at, source = excluded.source
"""


async def count_quota(conn: Any, quota: DailyQuota, weight: int) -> None:
    """Add ``weight`` to the account's count for the day, or raise
    :class:`QuotaExceeded` (the caller's transaction then stores nothing)."""
    if await conn.fetchval(_COUNT_QUOTA, quota.account_id, quota.day, weight,
                           quota.limit) is not None:  # fmt: skip
        return
    used = await conn.fetchval("SELECT used FROM daily_usage WHERE account_id = $1 AND day = $2",
                               quota.account_id, quota.day)  # fmt: skip
    raise QuotaExceeded(quota.limit, used or 0, weight)


async def apply_opt_outs(conn: Any, account_id: int, changes: Sequence[OptOutChange]) -> int:
    """Write each change that changes a number's state as its entry with a new
    seq (the last of a number wins); how many did. In ``conn``'s transaction:
    holds the seq row until it ends."""
    if not changes:
        return 0
    seq: int = await conn.fetchval("SELECT seq FROM opt_outs_seq FOR UPDATE")
    numbers = list({c.number: None for c in changes})
    state: dict[str, bool] = {r["number"]: r["opted_out"] for r in await conn.fetch(
        "SELECT number, opted_out FROM opt_outs WHERE account_id = $1 AND number = ANY ($2)",
        account_id, numbers)}  # fmt: skip
    entries: dict[str, tuple[OptOutChange, int]] = {}
    changed = 0
    for change in changes:
        if state.get(change.number) == change.opted_out:
            continue  # no news: keep the entry (and its seq) as it is
        changed += 1
        state[change.number] = change.opted_out
        entries[change.number] = (change, seq + changed)
    if entries:
        written = list(entries.values())
        await conn.execute(
            _WRITE_OPT_OUTS, account_id, [c.number for c, _ in written],
            [c.opted_out for c, _ in written], [s for _, s in written],
            [c.at for c, _ in written], [c.source for c, _ in written],
        )  # fmt: skip
        await conn.execute("UPDATE opt_outs_seq SET seq = $1", seq + changed)
    return changed


def _entry(r: Record) -> OptOutEntry:
    return OptOutEntry(r["account_id"], r["number"], r["opted_out"], r["seq"], r["updated_at"],
                       r["source"])  # fmt: skip


class PostgresControls(StorePart):
    """The control methods of :class:`~herald.store.postgres.PostgresStore` (a mixin)."""

    async def get_controls(self, account_id: int) -> AccountControls:
        row = await self._one(lambda c: c.fetchrow(
            "SELECT c.account_id, c.daily_quota, c.quota_segments, "
            + ", ".join(f"c.{name}" for name in _LISTS)
            + " FROM accounts a LEFT JOIN account_controls c ON c.account_id = a.id"
            " WHERE a.id = $1", account_id))  # fmt: skip
        if row is None:
            raise UnknownAccount(f"no account {account_id}")
        if row["account_id"] is None:
            return NO_CONTROLS
        return AccountControls(row["daily_quota"], row["quota_segments"],
                               **{name: tuple(row[name]) for name in _LISTS})  # fmt: skip

    async def set_controls(self, account_id: int, controls: AccountControls) -> None:
        c = controls

        async def write(conn: Any) -> None:
            try:
                await conn.execute(
                    "INSERT INTO account_controls (account_id, daily_quota, quota_segments, "
                    + ", ".join(_LISTS) + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    " ON CONFLICT (account_id) DO UPDATE SET daily_quota = excluded.daily_quota,"
                    " quota_segments = excluded.quota_segments, "
                    + ", ".join(f"{name} = excluded.{name}" for name in _LISTS),
                    account_id, c.daily_quota, c.quota_segments,
                    *(list(getattr(c, name)) for name in _LISTS),
                )  # fmt: skip
            except self._asyncpg.ForeignKeyViolationError as exc:
                raise UnknownAccount(f"no account {account_id}") from exc

        await self._one(write)

    async def daily_usage(self, account_id: int, day: int) -> int:
        used = await self._one(lambda c: c.fetchval(
            "SELECT used FROM daily_usage WHERE account_id = $1 AND day = $2", account_id, day))
        return 0 if used is None else int(used)

    async def change_opt_outs(self, account_id: int, changes: Sequence[OptOutChange]) -> int:
        items = tuple(changes)

        async def write(conn: Any) -> int:
            if await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account_id) is None:
                raise UnknownAccount(f"no account {account_id}")
            return await apply_opt_outs(conn, account_id, items)

        return await self._run(write)

    async def list_opt_outs(
        self, account_id: int, *, after: str | None = None, limit: int | None = None
    ) -> tuple[OptOutEntry, ...]:
        # The primary key (account_id, number) serves each page from its place.
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {_OPT_OUT_COLUMNS} FROM opt_outs WHERE account_id = $1 AND number > $2"
            " AND opted_out ORDER BY number LIMIT $3",
            account_id, after or "", _limit(limit)))  # fmt: skip
        return tuple(_entry(r) for r in rows)

    async def opt_out_changes(self, after: int, limit: int) -> tuple[OptOutEntry, ...]:
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {_OPT_OUT_COLUMNS} FROM opt_outs WHERE seq > $1 ORDER BY seq LIMIT $2",
            after, _limit(limit)))  # fmt: skip
        return tuple(_entry(r) for r in rows)


def _limit(limit: int | None) -> int | None:
    """``LIMIT``'s value: none, or a negative one, means every row (as SQLite's ``LIMIT -1``)."""
    return None if limit is None or limit < 0 else limit
