"""The SQLite store's chat channels (:class:`~herald.store.ChatStore`): windows and chains.

Mixins of :class:`~herald.store.SQLiteStore`. Recording a window keeps the
latest time, so webhooks that arrive out of order never shorten a window.

Chains (:mod:`herald.store._model_chat`): a :class:`ChainChange` applies only
at the version it was decided on, so two inputs racing for one chain (a status
webhook, a timer, an SMS receipt) cannot both win; the loser reads again. A
timer row is deleted by the change that consumes it, so a timer claimed before
a crash is claimed again after its lease and fires once. An SMS leg's message
is stored, and charged, in the transaction that starts the leg.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final, TypeVar

from herald.store._chat_rows import (
    MAX_CHAT_ADDRESS_LENGTH,
    charge_json,
    charge_of,
    check_addresses,
    message_json,
    message_of,
)
from herald.store._errors import (
    Conflict,
    IdempotencyMismatch,
    InvalidRecord,
    MessageNotFound,
    UnknownAccount,
)
from herald.store._model import (
    STATUS_OF_CODE,
    Channel,
    DailyQuota,
    EventKind,
    IdempotencyRecord,
    MessageFilter,
    NewMessage,
    Status,
)
from herald.store._model_chat import (
    SMS,
    ChainChange,
    ChatChain,
    ChatLeg,
    ChatTemplate,
    DueChainTimer,
    LegSubmission,
    LegUpdate,
    NewChain,
    ParkedChatEvent,
    SmsLegStatus,
)
from herald.store._sqlite_billing import G_ACCEPT_BILLED, accept_error, billed_rows
from herald.store._sqlite_conn import Readers
from herald.store._sqlite_controls import count_quota
from herald.store._sqlite_sql import (
    G_ACCEPT,
    MAX_CLAIM,
    check_count,
    duplicate_id,
    read_idempotency,
    row_from_message,
)

__all__ = ["MAX_CHAT_ADDRESS_LENGTH", "SQLiteChains", "SQLiteChat", "SQLiteChatTemplates"]

T = TypeVar("T")


class SQLiteChat:
    """Chat windows on SQLite."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def record_chat_inbound(self, account_id: int, channel: str, sender: str, user: str,
                                  at: float) -> None:
        check_addresses(channel=channel, sender=sender, user=user)

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


# -- chains (docs/channels.md, "Chains") --------------------------------------------

_CHAIN_COLUMNS: Final = ("seq, id, account_id, to_addr, status, delivered_by, version, created_at,"
                         " done_at, reference, callback_url, metadata, cancelled_at")
_LEG_COLUMNS: Final = ("leg, channel, sender, success, within, state, provider_id, message_id,"
                       " error_code, provider_code, price_micros, price_category, started_at,"
                       " updated_at")
#: Statuses of an SMS leg's message from which nothing moves any more.
_SMS_DONE: Final = int(Status.DELIVERED)


def _leg(r: Sequence[Any]) -> ChatLeg:
    """A leg from ``_LEG_COLUMNS`` and its template's name and language."""
    leg = ChatLeg(*r[:-2])
    return leg if r[-2] is None else replace(leg, template=(r[-2], r[-1]))


def _chain(conn: sqlite3.Connection, row: Sequence[Any]) -> ChatChain:
    legs = tuple(_leg(r) for r in conn.execute(
                     f"SELECT {_LEG_COLUMNS}, json_extract(content, '$.template'),"
                     " json_extract(content, '$.language') FROM chat_legs WHERE chain_seq = ?"
                     " ORDER BY leg", (row[0],)))
    timers = {leg: due for leg, due in conn.execute(
        "SELECT leg, due_at FROM chat_timers WHERE chain_seq = ?", (row[0],))}
    return ChatChain(row[1], row[2], row[3], STATUS_OF_CODE[row[4]], row[5], row[6], row[7],
                     row[8], row[9], row[10], row[11], legs, timers, row[12])


def _release_sms(conn: sqlite3.Connection, chain_seq: int, leg: int) -> str:
    """Store (and charge) an SMS leg's message: from now on dispatch may claim it.
    Raises :class:`InsufficientFunds` (the caller's transaction keeps nothing)."""
    sms, charge_text = conn.execute(
        "SELECT sms, charge FROM chat_legs WHERE chain_seq = ? AND leg = ?",
        (chain_seq, leg)).fetchone()
    message, charge = message_of(sms), charge_of(charge_text)
    try:
        if charge is None:
            G_ACCEPT.run(conn, [row_from_message(message)])
        else:
            G_ACCEPT_BILLED.run(conn, billed_rows([message], [charge]))
    except sqlite3.IntegrityError as exc:
        raise accept_error(exc) from exc
    price = None if charge is None else charge.amount
    conn.execute("UPDATE chat_legs SET message_id = ?, price_micros = ?,"
                 " price_category = CASE WHEN ? IS NULL THEN NULL ELSE 'sms' END"
                 " WHERE chain_seq = ? AND leg = ?", (message.id, price, price, chain_seq, leg))
    return message.id


class SQLiteChains:
    """Chains, legs and fallback timers on SQLite (see :mod:`herald.store._model_chat`)."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def accept_chain(self, chain: NewChain, *,
                           idempotency: IdempotencyRecord | None = None,
                           quota: DailyQuota | None = None) -> IdempotencyRecord | None:
        c = chain
        for leg in c.legs:
            check_addresses(channel=leg.channel, sender=leg.sender)
        record = idempotency
        # A chain counts as one message (its SMS's parts when the quota counts parts).
        sms = [leg.sms for leg in c.legs if leg.sms is not None][:1]
        weight = 0 if quota is None else (quota.weight(sms) if sms else 1)

        def write(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            if record is not None:
                earlier = read_idempotency(conn, record.account_id, record.key, record.created_at)
                if earlier is not None:
                    if earlier.request_hash != record.request_hash:
                        raise IdempotencyMismatch(
                            "the Idempotency-Key was used for another request")
                    return earlier
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency (account_id, key, request_hash,"
                    " status_code, response, created_at, expires_at) VALUES (?,?,?,?,?,?,?)",
                    (record.account_id, record.key, record.request_hash, record.status_code,
                     record.response, record.created_at, record.expires_at))  # fmt: skip
            if quota is not None:
                count_quota(conn, quota, weight)
            try:
                seq = conn.execute(
                    "INSERT INTO chat_chains (id, account_id, to_addr, status, created_at,"
                    " reference, callback_url, metadata) VALUES (?,?,?,?,?,?,?,?)",
                    (c.id, c.account_id, c.to, int(Status.QUEUED), c.created_at, c.reference,
                     c.callback_url, c.metadata)).lastrowid
                assert seq is not None
            except sqlite3.IntegrityError as exc:
                raise duplicate_id(exc) from exc
            for n, leg in enumerate(c.legs):
                started = n == 0
                conn.execute(
                    "INSERT INTO chat_legs (chain_seq, leg, channel, sender, content, success,"
                    " within, ttl, sms, charge, state, started_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (seq, n, leg.channel, leg.sender, leg.content, leg.success, leg.within,
                     leg.ttl, None if leg.sms is None else message_json(leg.sms),
                     charge_json(leg.charge), "pending" if started else None,
                     c.created_at if started else None, c.created_at if started else None))
            if c.legs[0].channel == SMS:
                _release_sms(conn, seq, 0)
            return None

        result: IdempotencyRecord | None = await self._write(write)
        return result

    async def get_chain(self, chain_id: str, *, account_id: int | None = None) -> ChatChain:
        def read(conn: sqlite3.Connection) -> ChatChain:
            row = conn.execute(f"SELECT {_CHAIN_COLUMNS} FROM chat_chains WHERE id = ?",
                               (chain_id,)).fetchone()
            if row is None or (account_id is not None and row[2] != account_id):
                raise MessageNotFound("no such message")
            return _chain(conn, row)

        return await self._readers.run(read)

    async def list_chains(self, query: MessageFilter,
                          cursor: str | None = None) -> tuple[tuple[ChatChain, ...], str | None]:
        # A table of its own: the SMS listing's query is not touched. The cursor
        # is the id of the page's last chain (the account's own), as for messages.
        where: list[str] = ["account_id = ?"]
        params: list[object] = [query.account_id]
        for column, value in (("status", None if query.status is None else int(query.status)),
                              ("to_addr", query.to), ("reference", query.reference)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            where.append("created_at >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("created_at < ?")
            params.append(query.until)
        if cursor is not None:
            where.append("seq < (SELECT seq FROM chat_chains WHERE id = ? AND account_id = ?)")
            params += [cursor, query.account_id]
        sql = (f"SELECT {_CHAIN_COLUMNS} FROM chat_chains WHERE {' AND '.join(where)}"
               " ORDER BY seq DESC LIMIT ?")

        def read(conn: sqlite3.Connection) -> tuple[tuple[ChatChain, ...], str | None]:
            if cursor is not None and conn.execute(
                    "SELECT 1 FROM chat_chains WHERE id = ? AND account_id = ?",
                    (cursor, query.account_id)).fetchone() is None:
                raise InvalidRecord("cursor", "not a cursor this store returned")
            rows = conn.execute(sql, [*params, query.limit + 1]).fetchall()
            chains = tuple(_chain(conn, r) for r in rows[:query.limit])
            return chains, chains[-1].id if len(rows) > query.limit else None

        result: tuple[tuple[ChatChain, ...], str | None] = await self._readers.run(read)
        return result

    async def get_chains(self, chain_ids: Sequence[str]) -> dict[str, ChatChain]:
        wanted = list(dict.fromkeys(chain_ids))[:MAX_CLAIM]

        def read(conn: sqlite3.Connection) -> dict[str, ChatChain]:
            marks = ",".join("?" * len(wanted))
            rows = conn.execute(f"SELECT {_CHAIN_COLUMNS} FROM chat_chains WHERE id IN ({marks})",
                                wanted).fetchall()
            return {r[1]: _chain(conn, r) for r in rows}

        return await self._readers.run(read) if wanted else {}

    async def chains_to_cancel(self, account_id: int, reference: str, *,
                               limit: int) -> tuple[str, ...]:
        check_count("limit", limit)

        def read(conn: sqlite3.Connection) -> tuple[str, ...]:
            return tuple(r[0] for r in conn.execute(
                "SELECT id FROM chat_chains WHERE account_id = ? AND reference = ?"
                " AND done_at IS NULL AND cancelled_at IS NULL ORDER BY seq LIMIT ?",
                (account_id, reference, limit)))

        return await self._readers.run(read)

    async def chain_leg_sms(self, chain_id: str, leg: int) -> NewMessage | None:
        def read(conn: sqlite3.Connection) -> NewMessage | None:
            r = conn.execute("SELECT l.sms FROM chat_legs l JOIN chat_chains c"
                             " ON c.seq = l.chain_seq WHERE c.id = ? AND l.leg = ?",
                             (chain_id, leg)).fetchone()
            return None if r is None or r[0] is None else message_of(r[0])

        return await self._readers.run(read)

    async def chain_leg_content(self, chain_id: str, leg: int) -> str | None:
        def read(conn: sqlite3.Connection) -> str | None:
            r = conn.execute("SELECT l.content FROM chat_legs l JOIN chat_chains c"
                             " ON c.seq = l.chain_seq WHERE c.id = ? AND l.leg = ?",
                             (chain_id, leg)).fetchone()
            return None if r is None else r[0]

        return await self._readers.run(read)

    async def chain_of_provider_id(self, channel: str,
                                   provider_id: str) -> tuple[str, int] | None:
        def read(conn: sqlite3.Connection) -> tuple[str, int] | None:
            r = conn.execute("SELECT c.id, l.leg FROM chat_legs l JOIN chat_chains c"
                             " ON c.seq = l.chain_seq WHERE l.channel = ? AND l.provider_id = ?",
                             (channel, provider_id)).fetchone()
            return None if r is None else (r[0], r[1])

        return await self._readers.run(read)

    async def change_chain(self, change: ChainChange) -> bool:
        ch = change

        def write(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT seq, account_id, callback_url FROM chat_chains"
                               " WHERE id = ? AND version = ?",
                               (ch.chain_id, ch.version)).fetchone()
            if row is None:
                return False
            seq, account_id, callback_url = row
            done = ch.at if ch.status.final else None
            conn.execute("UPDATE chat_chains SET version = version + 1, status = max(status, ?),"
                         " delivered_by = coalesce(delivered_by, ?),"
                         " done_at = coalesce(done_at, ?),"
                         " cancelled_at = coalesce(cancelled_at, ?) WHERE seq = ?",
                         (int(ch.status), ch.delivered_by, done,
                          ch.at if ch.cancel_chain else None, seq))
            for leg, u in ch.legs.items():
                self._update_leg(conn, seq, account_id, leg, u, ch.at)
            for leg in ch.start:
                started = conn.execute(
                    "UPDATE chat_legs SET state = 'pending', started_at = ?, updated_at = ?"
                    " WHERE chain_seq = ? AND leg = ? AND state IS NULL RETURNING channel",
                    (ch.at, ch.at, seq, leg)).fetchone()
                if started is not None and started[0] == SMS:
                    _release_sms(conn, seq, leg)
            for leg, due in ch.arm.items():
                conn.execute("INSERT OR REPLACE INTO chat_timers (chain_seq, leg, due_at)"
                             " VALUES (?,?,?)", (seq, leg, due))
            for leg in (*ch.cancel, *(() if ch.timer is None else (ch.timer,))):
                conn.execute("DELETE FROM chat_timers WHERE chain_seq = ? AND leg = ?",
                             (seq, leg))
            if ch.notify:  # once: a chain's final status is written once (the pure rules)
                conn.execute(
                    "INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,"
                    " created_at, next_attempt_at) SELECT ?, ?, id, ?, ?,"
                    " coalesce(?, callback_url), ?, ? FROM accounts"
                    " WHERE id = ? AND coalesce(?, callback_url) IS NOT NULL",
                    (int(Channel.WEBHOOK), int(EventKind.CHAIN), ch.chain_id, int(ch.status),
                     callback_url, ch.at, ch.at, account_id, callback_url))  # fmt: skip
            return True

        result: bool = await self._write(write)
        return result

    @staticmethod
    def _update_leg(conn: sqlite3.Connection, seq: int, account_id: int, leg: int, u: LegUpdate,
                    at: float) -> None:
        r = conn.execute("SELECT price_micros FROM chat_legs WHERE chain_seq = ? AND leg = ?",
                         (seq, leg)).fetchone()
        if r is None:
            raise InvalidRecord("leg", f"no leg {leg}")
        price, category = u.price_micros, u.price_category
        if r[0] is not None:  # priced once: a duplicate priced status charges nothing more
            price = category = None
        conn.execute(
            "UPDATE chat_legs SET state = ?, provider_id = coalesce(?, provider_id),"
            " error_code = coalesce(?, error_code), provider_code = coalesce(?, provider_code),"
            " price_micros = coalesce(?, price_micros),"
            " price_category = coalesce(?, price_category),"
            " sms_status = max(sms_status, coalesce(?, 0)), lease_until = NULL, updated_at = ?"
            " WHERE chain_seq = ? AND leg = ?",
            (u.state, u.provider_id, u.error_code, u.provider_code, price, category,
             u.sms_status, at, seq, leg))  # fmt: skip
        if price:  # the priced event bills the leg: owed, so no credit limit refuses it
            conn.execute("UPDATE balances SET balance = balance - ? WHERE account_id = ?",
                         (price, account_id))

    async def claim_chat_legs(self, now: float, lease: float,
                              limit: int) -> tuple[LegSubmission, ...]:
        check_count("limit", limit)

        def claim(conn: sqlite3.Connection) -> tuple[LegSubmission, ...]:
            rows = conn.execute(
                "SELECT l.chain_seq, c.id, l.leg, l.channel, l.sender, c.to_addr, l.content,"
                " l.ttl, c.account_id, l.state FROM chat_legs l JOIN chat_chains c"
                " ON c.seq = l.chain_seq WHERE l.state IN ('pending', 'submitted')"
                " AND l.channel <> 'sms' AND (l.lease_until IS NULL OR l.lease_until <= ?)"
                " ORDER BY l.lease_until LIMIT ?", (now, limit)).fetchall()
            for r in rows:
                conn.execute("UPDATE chat_legs SET state = 'submitted', lease_until = ?,"
                             " updated_at = ? WHERE chain_seq = ? AND leg = ?",
                             (now + lease, now, r[0], r[2]))
                conn.execute("UPDATE chat_chains SET version = version + 1 WHERE seq = ?",
                             (r[0],))
            return tuple(LegSubmission(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                                       r[9] == "submitted") for r in rows)

        result: tuple[LegSubmission, ...] = await self._write(claim)
        return result

    async def claim_chain_timers(self, now: float, lease: float,
                                 limit: int) -> tuple[DueChainTimer, ...]:
        check_count("limit", limit)

        def claim(conn: sqlite3.Connection) -> tuple[DueChainTimer, ...]:
            rows = conn.execute(
                "SELECT t.chain_seq, c.id, t.leg, t.due_at FROM chat_timers t JOIN chat_chains c"
                " ON c.seq = t.chain_seq WHERE t.due_at <= ?"
                " AND (t.lease_until IS NULL OR t.lease_until <= ?) ORDER BY t.due_at LIMIT ?",
                (now, now, limit)).fetchall()
            conn.executemany("UPDATE chat_timers SET lease_until = ? WHERE chain_seq = ?"
                             " AND leg = ?", [(now + lease, r[0], r[2]) for r in rows])
            return tuple(DueChainTimer(r[1], r[2], r[3]) for r in rows)

        result: tuple[DueChainTimer, ...] = await self._write(claim)
        return result

    async def next_chain_timer(self) -> float | None:
        def read(conn: sqlite3.Connection) -> float | None:
            r = conn.execute("SELECT min(due_at) FROM chat_timers").fetchone()
            return None if r[0] is None else float(r[0])

        return await self._readers.run(read)

    async def sms_leg_changes(self, limit: int) -> tuple[SmsLegStatus, ...]:
        check_count("limit", limit)

        def read(conn: sqlite3.Connection) -> tuple[SmsLegStatus, ...]:
            rows = conn.execute(
                "SELECT c.id, l.leg, m.status, m.error_code FROM chat_legs l"
                " JOIN messages m ON m.id = l.message_id JOIN chat_chains c ON c.seq = l.chain_seq"
                " WHERE l.channel = 'sms' AND l.message_id IS NOT NULL"
                f" AND l.sms_status < {_SMS_DONE}"
                " AND m.status > l.sms_status LIMIT ?", (limit,)).fetchall()
            return tuple(SmsLegStatus(r[0], r[1], STATUS_OF_CODE[r[2]], r[3]) for r in rows)

        return await self._readers.run(read)

    async def park_chat_events(self, events: Sequence[ParkedChatEvent], now: float) -> None:
        rows = [(e.channel, e.provider_id, e.event, e.at, e.error_code, e.provider_code,
                 e.category, int(e.billable), now) for e in events]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO chat_parked (channel, provider_id, event, at, error_code,"
                " provider_code, category, billable, received_at) VALUES (?,?,?,?,?,?,?,?,?)",
                rows)

        if rows:
            await self._write(write)

    async def parked_chat_events(self, limit: int) -> tuple[ParkedChatEvent, ...]:
        check_count("limit", limit)

        def read(conn: sqlite3.Connection) -> tuple[ParkedChatEvent, ...]:
            rows = conn.execute(
                "SELECT p.id, p.channel, p.provider_id, p.event, p.at, p.error_code,"
                " p.provider_code, p.category, p.billable FROM chat_parked p"
                " WHERE EXISTS (SELECT 1 FROM chat_legs l WHERE l.channel = p.channel"
                " AND l.provider_id = p.provider_id) ORDER BY p.id LIMIT ?", (limit,)).fetchall()
            return tuple(ParkedChatEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]))
                         for r in rows)

        return await self._readers.run(read)

    async def drop_parked_chat_events(self, ids: Sequence[int], *,
                                      received_before: float | None = None) -> int:
        def write(conn: sqlite3.Connection) -> int:
            n = 0
            if ids:
                marks = ",".join("?" * len(ids))
                n += conn.execute(f"DELETE FROM chat_parked WHERE id IN ({marks})",
                                  list(ids)).rowcount
            if received_before is not None:
                n += conn.execute("DELETE FROM chat_parked WHERE received_at < ?",
                                  (received_before,)).rowcount
            return n

        result: int = await self._write(write)
        return result


# -- templates (docs/channels.md, "Templates") ----------------------------------------

_TEMPLATE_COLUMNS: Final = ("account_id, name, language, category, body, status, provider_id,"
                            " reason, created_at, updated_at")


class SQLiteChatTemplates:
    """WhatsApp templates on SQLite."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def add_chat_template(self, template: ChatTemplate) -> None:
        t = template

        def write(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (t.account_id,)).fetchone() \
                    is None:
                raise UnknownAccount(f"no account {t.account_id}")
            try:
                conn.execute(f"INSERT INTO chat_templates ({_TEMPLATE_COLUMNS})"
                             " VALUES (?,?,?,?,?,?,?,?,?,?)",
                             (t.account_id, t.name, t.language, t.category, t.body, t.status,
                              t.provider_id, t.reason, t.created_at, t.updated_at))
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"template {t.name} ({t.language}) exists") from exc

        await self._write(write)

    async def get_chat_template(self, name: str, language: str) -> ChatTemplate | None:
        def read(conn: sqlite3.Connection) -> ChatTemplate | None:
            r = conn.execute(f"SELECT {_TEMPLATE_COLUMNS} FROM chat_templates WHERE name = ?"
                             " AND language = ?", (name, language)).fetchone()
            return None if r is None else ChatTemplate(*r)

        return await self._readers.run(read)

    async def list_chat_templates(self, account_id: int | None = None
                                  ) -> tuple[ChatTemplate, ...]:  # fmt: skip
        def read(conn: sqlite3.Connection) -> tuple[ChatTemplate, ...]:
            if account_id is None:
                rows = conn.execute(f"SELECT {_TEMPLATE_COLUMNS} FROM chat_templates"
                                    " ORDER BY name, language").fetchall()
            else:
                rows = conn.execute(f"SELECT {_TEMPLATE_COLUMNS} FROM chat_templates"
                                    " WHERE account_id = ? ORDER BY name, language",
                                    (account_id,)).fetchall()
            return tuple(ChatTemplate(*r) for r in rows)

        return await self._readers.run(read)

    async def set_chat_template_status(self, name: str, language: str, status: str,
                                       at: float, *, provider_id: str | None = None,
                                       reason: str | None = None) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE chat_templates SET status = ?, reason = ?,"
                " provider_id = coalesce(?, provider_id), updated_at = ?"
                " WHERE name = ? AND language = ? AND updated_at <= ?"
                " AND (status <> ? OR reason IS NOT ?"
                " OR provider_id IS NOT coalesce(?, provider_id))",
                (status, reason, provider_id, at, name, language, at, status, reason,
                 provider_id)).rowcount > 0

        result: bool = await self._write(write)
        return result

    async def remove_chat_template(self, name: str, language: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM chat_templates WHERE name = ? AND language = ?",
                                (name, language)).rowcount > 0

        result: bool = await self._write(write)
        return result

    async def revise_chat_template(self, name: str, language: str, category: str, body: str,
                                   status: str, at: float) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE chat_templates SET category = ?, body = ?, status = ?, reason = NULL,"
                " updated_at = ? WHERE name = ? AND language = ? AND updated_at <= ?",
                (category, body, status, at, name, language, at)).rowcount > 0

        result: bool = await self._write(write)
        return result
