"""The SQLite store's pumping-defence records and Verify texts
(:class:`~herald.store.FraudStore`).

A mixin of :class:`~herald.store.SQLiteStore`. A block and its webhook event
(``verification.blocked``, outbox kind :attr:`EventKind.FRAUD`) are written in
one transaction, like a status change and its event: the event exists exactly
when the decision does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from herald.store._errors import Conflict, NotFound, UnknownAccount
from herald.store._model import Channel, EventKind, Status
from herald.store._model_fraud import (
    NO_FRAUD_SETTINGS,
    FraudAction,
    FraudDecision,
    FraudMode,
    FraudOutcome,
    FraudSettings,
    FraudTail,
    caps_from_json,
    caps_json,
    reasons_from_json,
    reasons_json,
    request_json,
)
from herald.store._sqlite_conn import Readers

__all__ = ["SQLiteFraud"]

T = TypeVar("T")

_COLUMNS = (
    "id, account_id, created_at, to_number, action, reasons, engine, country, price_micros,"
    " currency, verification_id, message_id, request"
)
#: Ids per statement (SQLite allows 32,766 parameters; this keeps statements small).
_CHUNK = 500


def _decision(r: Sequence[Any]) -> FraudDecision:
    return FraudDecision(r[0], r[1], r[2], r[3], FraudAction(r[4]), reasons_from_json(r[5]),
                         bool(r[6]), r[7], r[8], r[9], r[10], r[11],
                         json.loads(r[12]))  # fmt: skip


def _require_account(conn: sqlite3.Connection, account_id: int) -> None:
    if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
        raise UnknownAccount(f"no account {account_id}")


def _chunks(ids: Collection[str]) -> list[list[str]]:
    items = list(ids)
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SQLiteFraud:
    """Defence settings, decisions, outcomes and Verify texts on SQLite."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    # -- settings ---------------------------------------------------------------------

    async def get_fraud_settings(self, account_id: int) -> FraudSettings:
        def read(conn: sqlite3.Connection) -> FraudSettings:
            r = conn.execute("SELECT mode, otp_messages, allow, deny, country_caps FROM"
                             " fraud_settings WHERE account_id = ?", (account_id,)).fetchone()
            if r is None:
                _require_account(conn, account_id)
                return NO_FRAUD_SETTINGS
            return FraudSettings(FraudMode(r[0]), bool(r[1]), tuple(json.loads(r[2])),
                                 tuple(json.loads(r[3])), caps_from_json(r[4]))  # fmt: skip

        return await self._readers.run(read)

    async def set_fraud_settings(self, account_id: int, settings: FraudSettings) -> None:
        s = settings
        row = (account_id, s.mode.value, int(s.otp_messages), json.dumps(list(s.allow)),
               json.dumps(list(s.deny)), caps_json(s.country_caps))

        def write(conn: sqlite3.Connection) -> None:
            _require_account(conn, account_id)
            conn.execute("INSERT OR REPLACE INTO fraud_settings (account_id, mode, otp_messages,"
                         " allow, deny, country_caps) VALUES (?,?,?,?,?,?)", row)

        await self._write(write)

    # -- decisions --------------------------------------------------------------------

    async def record_fraud_decision(self, decision: FraudDecision) -> None:
        await self._write(lambda conn: _insert(conn, decision))

    async def record_within_ceiling(self, decision: FraudDecision, ceiling_micros: Decimal,
                                    since: float) -> int | None:  # fmt: skip
        # One write transaction at a time: the sum and the insert cannot interleave.
        def write(conn: sqlite3.Connection) -> int | None:
            spent = _spend(conn, decision.account_id, decision.country or "", since)
            if spent + (decision.price_micros or 0) > ceiling_micros:
                return spent
            _insert(conn, decision)
            return None

        return await self._write(write)

    async def get_fraud_decision(self, decision_id: str, account_id: int) -> FraudDecision:
        def read(conn: sqlite3.Connection) -> FraudDecision:
            r = conn.execute(f"SELECT {_COLUMNS} FROM fraud_decisions WHERE id = ?"
                             " AND account_id = ?", (decision_id, account_id)).fetchone()
            if r is None:
                raise NotFound(f"no decision {decision_id}")
            return _decision(r)

        return await self._readers.run(read)

    async def get_fraud_decisions(self, ids: Collection[str]) -> dict[str, FraudDecision]:
        def read(conn: sqlite3.Connection) -> dict[str, FraudDecision]:
            found: dict[str, FraudDecision] = {}
            for chunk in _chunks(ids):
                for r in conn.execute(f"SELECT {_COLUMNS} FROM fraud_decisions WHERE id IN"
                                      f" ({_marks(len(chunk))})", chunk):  # fmt: skip
                    found[r[0]] = _decision(r)
            return found

        return await self._readers.run(read)

    async def list_fraud_decisions(
        self, account_id: int, *, since: float | None = None, until: float | None = None,
        action: FraudAction | None = None, verification_id: str | None = None,
        limit: int = 100,
    ) -> tuple[FraudDecision, ...]:  # fmt: skip
        where = ["account_id = ?"]
        args: list[Any] = [account_id]
        for clause, value in (("created_at >= ?", since), ("created_at < ?", until),
                              ("action = ?", None if action is None else action.value),
                              ("verification_id = ?", verification_id)):  # fmt: skip
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = (f"SELECT {_COLUMNS} FROM fraud_decisions WHERE {' AND '.join(where)}"
               " ORDER BY created_at DESC, id DESC LIMIT ?")  # fmt: skip

        def read(conn: sqlite3.Connection) -> tuple[FraudDecision, ...]:
            return tuple(_decision(r) for r in conn.execute(sql, (*args, limit)))

        return await self._readers.run(read)

    async def fraud_spend(self, account_id: int, country: str, since: float) -> int:
        return await self._readers.run(lambda conn: _spend(conn, account_id, country, since))

    async def fraud_history(self, since: float) -> tuple[FraudDecision, ...]:
        def read(conn: sqlite3.Connection) -> tuple[FraudDecision, ...]:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM fraud_decisions WHERE created_at >= ?"
                                " AND engine = 1 ORDER BY created_at, id", (since,))
            return tuple(_decision(r) for r in rows)

        return await self._readers.run(read)

    async def fraud_tail(self, cursor: tuple[int, int] | None) -> FraudTail:
        def read(conn: sqlite3.Connection) -> FraudTail:
            if cursor is None:
                r = conn.execute("SELECT (SELECT coalesce(max(seq), 0) FROM fraud_decisions),"
                                 " (SELECT coalesce(max(seq), 0) FROM conversions)").fetchone()
                return FraudTail((), (), (int(r[0]), int(r[1])))
            # Conversions first: a decision commits before its code is sent, so
            # the decision of every conversion read here is in the read after it.
            conversions = conn.execute(
                "SELECT seq, message_id, converted_at FROM conversions WHERE seq > ?"
                " ORDER BY seq", (cursor[1],)).fetchall()  # fmt: skip
            decisions = conn.execute(
                f"SELECT seq, {_COLUMNS} FROM fraud_decisions WHERE seq > ? ORDER BY seq",
                (cursor[0],)).fetchall()  # fmt: skip
            return FraudTail(
                tuple(_decision(r[1:]) for r in decisions),
                tuple((r[1], float(r[2])) for r in conversions),
                (decisions[-1][0] if decisions else cursor[0],
                 conversions[-1][0] if conversions else cursor[1]))  # fmt: skip

        return await self._readers.run(read)

    async def fraud_outcomes(self, message_ids: Collection[str]) -> tuple[FraudOutcome, ...]:
        def read(conn: sqlite3.Connection) -> tuple[FraudOutcome, ...]:
            found: list[FraudOutcome] = []
            for chunk in _chunks(message_ids):
                rows = conn.execute(
                    "SELECT m.id, m.status, m.done_at, c.converted_at FROM messages m"
                    " LEFT JOIN conversions c ON c.message_id = m.id"
                    f" WHERE m.id IN ({_marks(len(chunk))})", chunk)  # fmt: skip
                for r in rows:
                    status = Status(r[1])
                    found.append(FraudOutcome(r[0], status if status.final else None,
                                              r[2] if status.final else None, r[3]))
            return tuple(found)

        return await self._readers.run(read)

    # -- Verify texts -----------------------------------------------------------------

    async def verify_templates(self, account_id: int) -> dict[str, str]:
        def read(conn: sqlite3.Connection) -> dict[str, str]:
            rows = conn.execute("SELECT locale, text FROM verify_templates WHERE account_id = ?"
                                " ORDER BY locale", (account_id,))  # fmt: skip
            return {r[0]: r[1] for r in rows}

        return await self._readers.run(read)

    async def set_verify_template(self, account_id: int, locale: str, text: str | None) -> None:
        def write(conn: sqlite3.Connection) -> None:
            _require_account(conn, account_id)
            if text is None:
                conn.execute("DELETE FROM verify_templates WHERE account_id = ? AND locale = ?",
                             (account_id, locale))  # fmt: skip
            else:
                conn.execute("INSERT OR REPLACE INTO verify_templates (account_id, locale, text)"
                             " VALUES (?,?,?)", (account_id, locale, text))  # fmt: skip

        await self._write(write)


def _insert(conn: sqlite3.Connection, d: FraudDecision) -> None:
    """The decision and, for a block, its webhook event (docs/webhooks.md:
    verification.blocked), in the caller's transaction."""
    row = (d.id, d.account_id, d.created_at, d.to, d.action.value,
           reasons_json(d.reasons), int(d.engine), d.country, d.price_micros, d.currency,
           d.verification_id, d.message_id, request_json(d.request), int(d.engine))  # fmt: skip
    try:
        # An engine decision takes the next seq (fraud_tail), under the write lock.
        conn.execute(f"INSERT INTO fraud_decisions ({_COLUMNS}, seq)"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?, CASE WHEN ? THEN"
                     " (SELECT coalesce(max(seq), 0) + 1 FROM fraud_decisions) END)", row)
    except sqlite3.IntegrityError:
        raise Conflict(f"a decision {d.id} exists") from None
    if d.action is FraudAction.BLOCK:
        conn.execute(
            "INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,"
            " created_at, next_attempt_at) SELECT ?, ?, id, ?, NULL, callback_url, ?, ?"
            " FROM accounts WHERE id = ? AND callback_url IS NOT NULL",
            (int(Channel.WEBHOOK), int(EventKind.FRAUD), d.id, d.created_at,
             d.created_at, d.account_id),
        )  # fmt: skip


def _spend(conn: sqlite3.Connection, account_id: int, country: str, since: float) -> int:
    row = conn.execute(
        "SELECT COALESCE(SUM(price_micros), 0) FROM fraud_decisions WHERE account_id = ?"
        " AND country = ? AND created_at >= ? AND action <> ?",
        (account_id, country, since, FraudAction.BLOCK.value),
    ).fetchone()  # fmt: skip
    return int(row[0])
