"""The pumping defence's records and Verify texts on PostgreSQL (the port's
FraudStore; private).

A mixin of :class:`~herald.store.postgres.PostgresStore`, as SQLite's
``_sqlite_fraud``: reasons, requests and ceilings are stored as the same JSON
text (:mod:`herald.store._model_fraud`), allow and deny lists as arrays. A
block and its webhook event (``verification.blocked``, outbox kind
:attr:`EventKind.FRAUD`) are one statement: the event exists exactly when the
decision does.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from decimal import Decimal
from typing import Any

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
from herald.store.postgres._accounts import check_account
from herald.store.postgres._part import StorePart
from herald.store.postgres._queue import Record
from herald.store.postgres._verify import check_storable

__all__ = ["PostgresFraud"]

_COLUMNS = (
    "id, account_id, created_at, to_number, action, reasons, engine, country, price_micros,"
    " currency, verification_id, message_id, request"
)
_BLOCK = FraudAction.BLOCK.value

# One statement: the decision, and for a block its webhook event to the
# account's callback URL (none without one), as SQLite writes them.
_RECORD = f"""
WITH d AS (
    INSERT INTO fraud_decisions ({_COLUMNS})
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    RETURNING id, account_id, created_at, action)
INSERT INTO outbox (channel, kind, account_id, subject_id, status, url, created_at,
                    next_attempt_at)
SELECT {int(Channel.WEBHOOK)}, {int(EventKind.FRAUD)}, a.id, d.id, NULL, a.callback_url,
       d.created_at, d.created_at
FROM d JOIN accounts a ON a.id = d.account_id
WHERE d.action = '{_BLOCK}' AND a.callback_url IS NOT NULL"""

_SPEND = ("SELECT coalesce(sum(price_micros), 0) FROM fraud_decisions WHERE account_id = $1"
          " AND country = $2 AND created_at >= $3 AND action <> $4")

# The oldest transaction still running: every one below it has ended.
_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"

# Ties in time are broken by id as SQLite does: byte order, whatever the
# database's collation.
_NEWEST_FIRST = 'ORDER BY created_at DESC, id COLLATE "C" DESC'


def _decision(r: Record) -> FraudDecision:
    return FraudDecision(
        r["id"], r["account_id"], r["created_at"], r["to_number"], FraudAction(r["action"]),
        reasons_from_json(r["reasons"]), r["engine"], r["country"], r["price_micros"],
        r["currency"], r["verification_id"], r["message_id"], json.loads(r["request"]),
    )  # fmt: skip


class PostgresFraud(StorePart):
    """The fraud and Verify-text methods of :class:`~herald.store.postgres.PostgresStore`."""

    # -- settings ---------------------------------------------------------------------

    async def get_fraud_settings(self, account_id: int) -> FraudSettings:
        r = await self._one(lambda c: c.fetchrow(
            "SELECT s.mode, s.otp_messages, s.allow, s.deny, s.country_caps FROM accounts a"
            " LEFT JOIN fraud_settings s ON s.account_id = a.id WHERE a.id = $1", account_id))
        if r is None:
            raise UnknownAccount(f"no account {account_id}")
        if r["mode"] is None:
            return NO_FRAUD_SETTINGS
        return FraudSettings(FraudMode(r["mode"]), r["otp_messages"], tuple(r["allow"]),
                             tuple(r["deny"]), caps_from_json(r["country_caps"]))  # fmt: skip

    async def set_fraud_settings(self, account_id: int, settings: FraudSettings) -> None:
        s = settings
        try:
            await self._one(lambda c: c.execute(
                "INSERT INTO fraud_settings AS f (account_id, mode, otp_messages, allow, deny,"
                " country_caps) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id)"
                " DO UPDATE SET mode = excluded.mode, otp_messages = excluded.otp_messages,"
                " allow = excluded.allow, deny = excluded.deny,"
                " country_caps = excluded.country_caps",
                account_id, s.mode.value, s.otp_messages, list(s.allow), list(s.deny),
                caps_json(s.country_caps)))  # fmt: skip
        except self._asyncpg.ForeignKeyViolationError as exc:
            raise UnknownAccount(f"no account {account_id}") from exc

    # -- decisions --------------------------------------------------------------------

    async def record_fraud_decision(self, decision: FraudDecision) -> None:
        d = decision
        try:
            await self._one(lambda c: c.execute(
                _RECORD, d.id, d.account_id, d.created_at, d.to, d.action.value,
                reasons_json(d.reasons), d.engine, d.country, d.price_micros, d.currency,
                d.verification_id, d.message_id, request_json(d.request)))  # fmt: skip
        except self._asyncpg.UniqueViolationError as exc:
            raise Conflict(f"decision {d.id} exists") from exc

    async def record_within_ceiling(self, decision: FraudDecision, ceiling_micros: Decimal,
                                    since: float) -> int | None:  # fmt: skip
        d = decision

        async def write(c: Any) -> int | None:
            # The (account, country) lock is held until the commit, so the sum, a
            # statement after it, sees what the last holder wrote (READ COMMITTED).
            await c.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                            f"fraud-ceiling {d.account_id} {d.country}")  # fmt: skip
            spent = int(await c.fetchval(_SPEND, d.account_id, d.country, since, _BLOCK))
            if spent + (d.price_micros or 0) > ceiling_micros:
                return spent
            await c.execute(
                _RECORD, d.id, d.account_id, d.created_at, d.to, d.action.value,
                reasons_json(d.reasons), d.engine, d.country, d.price_micros, d.currency,
                d.verification_id, d.message_id, request_json(d.request))  # fmt: skip
            return None

        try:
            return await self._run(write)
        except self._asyncpg.UniqueViolationError as exc:
            raise Conflict(f"decision {d.id} exists") from exc

    async def get_fraud_decision(self, decision_id: str, account_id: int) -> FraudDecision:
        r = await self._one(lambda c: c.fetchrow(
            f"SELECT {_COLUMNS} FROM fraud_decisions WHERE id = $1 AND account_id = $2",
            decision_id, account_id))
        if r is None:
            raise NotFound(f"no decision {decision_id}")
        return _decision(r)

    async def get_fraud_decisions(self, ids: Collection[str]) -> dict[str, FraudDecision]:
        if not ids:
            return {}
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {_COLUMNS} FROM fraud_decisions WHERE id = ANY ($1::text[])", list(ids)))
        return {r["id"]: _decision(r) for r in rows}

    async def list_fraud_decisions(
        self, account_id: int, *, since: float | None = None, until: float | None = None,
        action: FraudAction | None = None, verification_id: str | None = None,
        limit: int = 100,
    ) -> tuple[FraudDecision, ...]:  # fmt: skip
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {_COLUMNS} FROM fraud_decisions WHERE account_id = $1"
            " AND ($2::float8 IS NULL OR created_at >= $2)"
            " AND ($3::float8 IS NULL OR created_at < $3)"
            " AND ($4::text IS NULL OR action = $4)"
            " AND ($5::text IS NULL OR verification_id = $5)"
            f" {_NEWEST_FIRST} LIMIT $6",
            account_id, since, until, None if action is None else action.value,
            verification_id, None if limit < 0 else limit))  # SQLite: LIMIT -1 is no limit
        return tuple(_decision(r) for r in rows)

    async def fraud_spend(self, account_id: int, country: str, since: float) -> int:
        spent = await self._one(lambda c: c.fetchval(_SPEND, account_id, country, since,
                                                     _BLOCK))  # fmt: skip
        return int(spent)

    async def fraud_history(self, since: float) -> tuple[FraudDecision, ...]:
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {_COLUMNS} FROM fraud_decisions WHERE created_at >= $1 AND engine"
            ' ORDER BY created_at, id COLLATE "C"', since))
        return tuple(_decision(r) for r in rows)

    async def fraud_tail(self, cursor: tuple[int, int] | None) -> FraudTail:
        """Rows whose transaction id is in [cursor, horizon): every transaction
        below the horizon (the oldest one running) has ended, so none of them can
        still commit into the range read (the migration _V20_FRAUD_TAIL)."""

        async def read(c: Any) -> FraudTail:
            horizon = int(await c.fetchval(_HORIZON))
            if cursor is None:
                return FraudTail((), (), (horizon, horizon))
            # Conversions first: a decision commits before its code is sent, so
            # the decision of every conversion read here is in the read after it.
            conversions = await c.fetch(
                "SELECT message_id, converted_at FROM conversions WHERE tx >= $1::text::xid8"
                " AND tx < $2::text::xid8 ORDER BY converted_at", str(cursor[1]),
                str(horizon))  # fmt: skip
            decisions = await c.fetch(
                f"SELECT {_COLUMNS} FROM fraud_decisions WHERE engine AND tx >= $1::text::xid8"
                f" AND tx < $2::text::xid8 ORDER BY created_at, id COLLATE \"C\"",
                str(cursor[0]), str(horizon))  # fmt: skip
            return FraudTail(tuple(_decision(r) for r in decisions),
                             tuple((r["message_id"], r["converted_at"]) for r in conversions),
                             (horizon, horizon))  # fmt: skip

        return await self._one(read)

    async def fraud_outcomes(self, message_ids: Collection[str]) -> tuple[FraudOutcome, ...]:
        """A final status is the ``messages`` row's own (a claim writes only the queue)."""
        if not message_ids:
            return ()
        rows = await self._one(lambda c: c.fetch(
            "SELECT m.id, m.status, m.done_at, c.converted_at FROM messages m"
            " LEFT JOIN conversions c ON c.message_id = m.id WHERE m.id = ANY ($1::text[])",
            list(message_ids)))
        found = []
        for r in rows:
            status = Status(r["status"])
            final = status.final
            found.append(FraudOutcome(r["id"], status if final else None,
                                      r["done_at"] if final else None, r["converted_at"]))
        return tuple(found)

    # -- Verify texts -----------------------------------------------------------------

    async def verify_templates(self, account_id: int) -> dict[str, str]:
        rows = await self._one(lambda c: c.fetch(
            'SELECT locale, text FROM verify_templates WHERE account_id = $1'
            ' ORDER BY locale COLLATE "C"', account_id))
        return {r["locale"]: r["text"] for r in rows}

    async def set_verify_template(self, account_id: int, locale: str, text: str | None) -> None:
        check_storable("locale", locale)
        if text is not None:
            check_storable("text", text)

        async def write(conn: Any) -> None:
            await check_account(conn, account_id)
            if text is None:
                await conn.execute("DELETE FROM verify_templates WHERE account_id = $1"
                                   " AND locale = $2", account_id, locale)  # fmt: skip
            else:
                await conn.execute(
                    "INSERT INTO verify_templates (account_id, locale, text) VALUES ($1, $2, $3)"
                    " ON CONFLICT (account_id, locale) DO UPDATE SET text = excluded.text",
                    account_id, locale, text)  # fmt: skip

        await self._run(write)
