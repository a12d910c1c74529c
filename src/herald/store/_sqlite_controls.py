"""Account controls, daily quota counts and opt-out lists on SQLite (private).

:class:`ControlsMixin` gives :class:`~herald.store.SQLiteStore` the
:class:`~herald.store.ControlStore` methods; :func:`count_quota` and
:func:`apply_opt_outs` run inside the transactions of ``accept`` and
``add_inbound``.

The quota is counted in the accept's own transaction, not in memory: the
writer runs one transaction at a time (across processes too, under its
``flock``), so the read-check-add of ``daily_usage`` cannot interleave with
another accept's, whichever herald process or node makes it, and a refused
accept leaves both the messages and the count untouched (its savepoint is
rolled back). The price: an accept with a quota is an individual write (a
function of the connection) rather than rows of the batched ``executemany``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from herald.store._errors import QuotaExceeded, UnknownAccount
from herald.store._model import CONTROL_LISTS as _LISTS
from herald.store._model import (
    NO_CONTROLS,
    AccountControls,
    DailyQuota,
    OptOutChange,
    OptOutEntry,
)
from herald.store._sqlite_conn import Readers

__all__ = ["ControlsMixin", "apply_opt_outs", "count_quota"]

T = TypeVar("T")

_OPT_OUT_COLUMNS = "account_id, number, opted_out, seq, updated_at, source"


def count_quota(conn: sqlite3.Connection, quota: DailyQuota, weight: int) -> None:
    """Add ``weight`` to the account's count for the day, or raise
    :class:`QuotaExceeded` (the caller's savepoint is then rolled back)."""
    row = conn.execute(
        "SELECT used FROM daily_usage WHERE account_id = ? AND day = ?",
        (quota.account_id, quota.day),
    ).fetchone()
    used = int(row[0]) if row is not None else 0
    if used + weight > quota.limit:
        raise QuotaExceeded(quota.limit, used, weight)
    conn.execute(
        "INSERT INTO daily_usage (account_id, day, used) VALUES (?, ?, ?)"
        " ON CONFLICT (account_id, day) DO UPDATE SET used = used + excluded.used",
        (quota.account_id, quota.day, weight),
    )


def apply_opt_outs(
    conn: sqlite3.Connection, account_id: int, changes: Sequence[OptOutChange]
) -> int:
    """Write each change as the number's entry with a new seq; how many changed state."""
    changed = 0
    seq = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM opt_outs").fetchone()[0])
    for change in changes:
        row = conn.execute(
            "SELECT opted_out FROM opt_outs WHERE account_id = ? AND number = ?",
            (account_id, change.number),
        ).fetchone()
        if row is not None and bool(row[0]) == change.opted_out:
            continue  # no news: keep the entry (and its seq) as it is
        seq += 1
        conn.execute(
            "INSERT OR REPLACE INTO opt_outs (account_id, number, opted_out, seq, updated_at,"
            " source) VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, change.number, int(change.opted_out), seq, change.at, change.source),
        )
        changed += 1
    return changed


def _entry(row: Sequence[Any]) -> OptOutEntry:
    return OptOutEntry(row[0], row[1], bool(row[2]), row[3], row[4], row[5])


def _require_account(conn: sqlite3.Connection, account_id: int) -> None:
    if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
        raise UnknownAccount(f"no account {account_id}")


class ControlsMixin:
    """The :class:`~herald.store.ControlStore` half of ``SQLiteStore``."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def get_controls(self, account_id: int) -> AccountControls:
        def read(conn: sqlite3.Connection) -> AccountControls:
            row = conn.execute(
                "SELECT daily_quota, quota_segments, " + ", ".join(_LISTS)
                + " FROM account_controls WHERE account_id = ?", (account_id,),
            ).fetchone()  # fmt: skip
            if row is None:
                _require_account(conn, account_id)
                return NO_CONTROLS
            lists = {name: tuple(json.loads(text)) for name, text in zip(_LISTS, row[2:],
                                                                          strict=True)}
            return AccountControls(row[0], bool(row[1]), **lists)

        return await self._readers.run(read)

    async def set_controls(self, account_id: int, controls: AccountControls) -> None:
        c = controls

        def write(conn: sqlite3.Connection) -> None:
            _require_account(conn, account_id)
            conn.execute(
                "INSERT OR REPLACE INTO account_controls (account_id, daily_quota,"
                " quota_segments, " + ", ".join(_LISTS) + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (account_id, c.daily_quota, int(c.quota_segments),
                 *(json.dumps(list(getattr(c, name))) for name in _LISTS)),
            )  # fmt: skip

        await self._write(write)

    async def daily_usage(self, account_id: int, day: int) -> int:
        row = await self._readers.run(lambda c: c.execute(
            "SELECT used FROM daily_usage WHERE account_id = ? AND day = ?", (account_id, day),
        ).fetchone())  # fmt: skip
        return 0 if row is None else int(row[0])

    async def change_opt_outs(self, account_id: int, changes: Sequence[OptOutChange]) -> int:
        items = tuple(changes)

        def write(conn: sqlite3.Connection) -> int:
            _require_account(conn, account_id)
            return apply_opt_outs(conn, account_id, items)

        return await self._write(write)

    async def list_opt_outs(
        self, account_id: int, *, after: str | None = None, limit: int | None = None
    ) -> tuple[OptOutEntry, ...]:
        # The primary key (account_id, number) serves each page from its place.
        rows = await self._readers.run(lambda c: c.execute(
            f"SELECT {_OPT_OUT_COLUMNS} FROM opt_outs WHERE account_id = ? AND number > ?"
            " AND opted_out = 1 ORDER BY number LIMIT ?",
            (account_id, after or "", -1 if limit is None else limit),
        ).fetchall())  # fmt: skip
        return tuple(_entry(r) for r in rows)

    async def opt_out_changes(self, after: int, limit: int) -> tuple[OptOutEntry, ...]:
        rows = await self._readers.run(lambda c: c.execute(
            f"SELECT {_OPT_OUT_COLUMNS} FROM opt_outs WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall())  # fmt: skip
        return tuple(_entry(r) for r in rows)
