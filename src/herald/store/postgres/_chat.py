"""The chat channels on PostgreSQL (the port's ChatStore; private): windows, chains, templates.

Mixins of :class:`~herald.store.postgres.PostgresStore`, with the SQLite
store's rules (``store/_sqlite_chat.py``; values in ``store/_model_chat.py``):
a window keeps the latest inbound time; a :class:`ChainChange` applies only
at the version it was decided on; a timer row is deleted by the change that
consumes it; an SMS leg's message is stored and charged (the store's own
accept, :meth:`PostgresStore._accept_in`) in the transaction that starts the
leg, and from then on is a message like any other.

Across nodes. Claims of chat legs and of timers pick their rows with ``FOR
UPDATE SKIP LOCKED`` and lease them in the same statement, so two nodes never
hold one leg or timer at once, and neither waits for the other. A leg claim
also locks (skipping, never waiting) its chain's row, whose version it bumps:
a change holds its chain's row before it touches the legs, so a claim and a
change never wait for each other in opposite orders (no deadlock). An SMS
leg's status is read from its message (the live status: a claimed message
reads as ``queued``) and compared with what the leg records, as on SQLite,
so the message lifecycle's triggers need nothing for chains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from herald.store._billing import Charge
from herald.store._chat_rows import (
    charge_json,
    charge_of,
    check_addresses,
    message_json,
    message_of,
)
from herald.store._errors import (
    Conflict,
    DuplicateMessageId,
    InvalidRecord,
    MessageNotFound,
    UnknownAccount,
)
from herald.store._model import (
    MAX_ID_LENGTH,
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
    NewChain,
    ParkedChatEvent,
    SmsLegStatus,
)
from herald.store.postgres._accounts import check_account
from herald.store.postgres._part import StorePart
from herald.store.postgres._queue import Record
from herald.store.postgres._sql_lifecycle import LIVE_STATUS

__all__ = ["PostgresChat"]

#: As the SQLite store's (and the port's) ``get_chains`` and ``limit`` bounds.
MAX_CLAIM: Final = 10_000
#: Statuses of an SMS leg's message from which nothing moves any more.
_SMS_DONE: Final = int(Status.DELIVERED)

_CHAIN_COLUMNS: Final = (
    "seq, id, account_id, to_addr, status, delivered_by, version, created_at, done_at,"
    " reference, callback_url, metadata, cancelled_at"
)
_LEG_COLUMNS: Final = (
    "leg", "channel", "sender", "success", "within", "state", "provider_id", "message_id",
    "error_code", "provider_code", "price_micros", "price_category", "started_at", "updated_at",
)  # fmt: skip
_TEMPLATE_COLUMNS: Final = (
    "account_id, name, language, category, body, status, provider_id, reason, created_at,"
    " updated_at"
)


def _chains_sql(where: str, tail: str = "") -> str:
    """Chains matching ``where`` (then ``tail``: order, limit) with their
    timers, a row per leg, newest chain first: one statement, one snapshot.
    The leg columns' names are not the chain's, so ``c.*`` and ``l.*`` share a row."""
    legs = ", ".join("l." + c for c in _LEG_COLUMNS)
    return f"""
WITH c AS (SELECT {_CHAIN_COLUMNS} FROM chat_chains WHERE {where} {tail})
SELECT c.*, {legs},
    l.content::jsonb ->> 'template' AS leg_template,
    l.content::jsonb ->> 'language' AS leg_language,
    (SELECT array_agg(t.leg ORDER BY t.leg) FROM chat_timers t
     WHERE t.chain_seq = c.seq) AS timer_legs,
    (SELECT array_agg(t.due_at ORDER BY t.leg) FROM chat_timers t
     WHERE t.chain_seq = c.seq) AS timer_dues
FROM c JOIN chat_legs l ON l.chain_seq = c.seq
ORDER BY c.seq DESC, l.leg
"""


def _chain(r: Record, legs: Sequence[ChatLeg]) -> ChatChain:
    timers = dict(zip(r["timer_legs"] or (), r["timer_dues"] or (), strict=True))
    return ChatChain(
        r["id"], r["account_id"], r["to_addr"], STATUS_OF_CODE[r["status"]], r["delivered_by"],
        r["version"], r["created_at"], r["done_at"], r["reference"], r["callback_url"],
        r["metadata"], tuple(legs), timers, r["cancelled_at"],
    )  # fmt: skip


def _chains(rows: Sequence[Record]) -> list[ChatChain]:
    """The chains of :func:`_chains_sql`'s rows, in their order."""
    legs: dict[int, list[ChatLeg]] = {}
    heads: dict[int, Record] = {}
    for r in rows:
        heads.setdefault(r["seq"], r)
        template = None if r["leg_template"] is None else (r["leg_template"], r["leg_language"])
        legs.setdefault(r["seq"], []).append(
            ChatLeg(**{c: r[c] for c in _LEG_COLUMNS}, template=template))
    return [_chain(r, legs[seq]) for seq, r in heads.items()]


#: Store a chain ($1-$7) and its legs (arrays $8-$15), the first one started
#: (``pending`` at the chain's creation, $4); returns the chain's seq.
_INSERT_CHAIN: Final = f"""
WITH chain AS (
    INSERT INTO chat_chains (id, account_id, to_addr, status, created_at, reference,
                             callback_url, metadata)
    VALUES ($1, $2, $3, {int(Status.QUEUED)}, $4, $5, $6, $7)
    RETURNING seq
)
INSERT INTO chat_legs (chain_seq, leg, channel, sender, content, success, within, ttl, sms,
                       charge, state, started_at, updated_at)
SELECT chain.seq, l.ord - 1, l.channel, l.sender, l.content, l.success, l.within, l.ttl,
    l.sms, l.charge, CASE WHEN l.ord = 1 THEN 'pending' END,
    CASE WHEN l.ord = 1 THEN $4 END, CASE WHEN l.ord = 1 THEN $4 END
FROM chain, unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::float8[],
                   $13::integer[], $14::text[], $15::text[])
    WITH ORDINALITY AS l(channel, sender, content, success, within, ttl, sms, charge, ord)
RETURNING chain_seq
"""

#: Chain $1's legs (arrays $3-$10) take their updates at $2; a leg priced for
#: the first time keeps that price and account $11's balance (if it has one)
#: pays it. ``o`` is the leg before this statement: SET reads it too, but
#: RETURNING sees the new row. Returns the legs updated.
_UPDATE_LEGS: Final = """
WITH u AS (
    SELECT * FROM unnest($3::integer[], $4::text[], $5::text[], $6::integer[], $7::text[],
                         $8::bigint[], $9::text[], $10::smallint[])
        AS u(leg, state, provider_id, error_code, provider_code, price_micros,
             price_category, sms_status)
), updated AS (
    UPDATE chat_legs l
    SET state = u.state, provider_id = coalesce(u.provider_id, l.provider_id),
        error_code = coalesce(u.error_code, l.error_code),
        provider_code = coalesce(u.provider_code, l.provider_code),
        price_micros = CASE WHEN l.price_micros IS NULL THEN u.price_micros
                       ELSE l.price_micros END,
        price_category = CASE WHEN l.price_micros IS NULL
                         THEN coalesce(u.price_category, l.price_category)
                         ELSE l.price_category END,
        sms_status = greatest(l.sms_status, coalesce(u.sms_status, 0)),
        lease_until = NULL, updated_at = $2
    FROM u JOIN chat_legs o ON o.chain_seq = $1 AND o.leg = u.leg
    WHERE l.chain_seq = $1 AND l.leg = u.leg
    RETURNING l.leg, CASE WHEN o.price_micros IS NULL THEN u.price_micros END AS charged
), paid AS (
    UPDATE balances b SET balance = b.balance - p.total
    FROM (SELECT sum(charged) AS total FROM updated) p
    WHERE b.account_id = $11 AND p.total <> 0
)
SELECT leg FROM updated
"""

#: Start chain $1's legs $3 at $2 (those not started); returns what an SMS
#: leg's release needs.
_START_LEGS: Final = """
UPDATE chat_legs SET state = 'pending', started_at = $2, updated_at = $2
WHERE chain_seq = $1 AND leg = ANY ($3::integer[]) AND state IS NULL
RETURNING leg, channel, sms, charge
"""
#: Chain $1's SMS legs $2 carry their stored messages $3 and prices $4.
_SMS_RELEASED: Final = """
UPDATE chat_legs l SET message_id = r.message_id, price_micros = r.price,
    price_category = CASE WHEN r.price IS NULL THEN NULL ELSE 'sms' END
FROM unnest($2::integer[], $3::text[], $4::bigint[]) AS r(leg, message_id, price)
WHERE l.chain_seq = $1 AND l.leg = r.leg
"""
#: Arm chain $1's timers (legs $2, due $3): a re-armed one is unleased.
_ARM: Final = """
INSERT INTO chat_timers (chain_seq, leg, due_at)
SELECT $1, * FROM unnest($2::integer[], $3::float8[])
ON CONFLICT (chain_seq, leg) DO UPDATE SET due_at = excluded.due_at, lease_until = NULL
"""
#: The chain's final status ($4) for its callback URL ($5) or its account's ($7).
_NOTIFY: Final = """
INSERT INTO outbox (channel, kind, account_id, subject_id, status, url, created_at,
                    next_attempt_at)
SELECT $1, $2, id, $3, $4, coalesce($5::text, callback_url), $6, $6 FROM accounts
WHERE id = $7 AND coalesce($5::text, callback_url) IS NOT NULL
"""

#: Up to $3 chat legs to send at $1, leased for $2 (see the module's
#: docstring); each one's chain moves to its next version. Oldest lease first
#: (never leased: first), as on SQLite. The picked rows are updated through
#: ``= ANY (ARRAY (...))`` on their keys, not a join alone: a prepared
#: statement's generic plan, which does not know the limit, otherwise
#: hash-joins a sequential scan of every leg ever sent (test_chat_plan.py).
_CLAIM_LEGS: Final = """
WITH picked AS (
    SELECT l.chain_seq, l.leg, l.state, l.lease_until
    FROM chat_legs l JOIN chat_chains c ON c.seq = l.chain_seq
    WHERE l.state IN ('pending', 'submitted') AND l.channel <> 'sms'
      AND (l.lease_until IS NULL OR l.lease_until <= $1)
    ORDER BY l.lease_until NULLS FIRST, l.chain_seq, l.leg
    LIMIT $3
    FOR UPDATE OF l, c SKIP LOCKED
), claimed AS (
    UPDATE chat_legs l SET state = 'submitted', lease_until = $1 + $2, updated_at = $1
    FROM picked p
    WHERE l.chain_seq = ANY (ARRAY (SELECT chain_seq FROM picked))
      AND l.chain_seq = p.chain_seq AND l.leg = p.leg
    RETURNING l.chain_seq, l.leg, l.channel, l.sender, l.content, l.ttl,
        p.state = 'submitted' AS resumed, p.lease_until AS was_leased_until
), bumped AS (
    UPDATE chat_chains c SET version = c.version + n.legs
    FROM (SELECT chain_seq, count(*) AS legs FROM claimed GROUP BY chain_seq) n
    WHERE c.seq = ANY (ARRAY (SELECT chain_seq FROM claimed)) AND c.seq = n.chain_seq
    RETURNING c.seq, c.id, c.to_addr, c.account_id
)
SELECT b.id, k.leg, k.channel, k.sender, b.to_addr, k.content, k.ttl, b.account_id, k.resumed
FROM claimed k JOIN bumped b ON b.seq = k.chain_seq
ORDER BY k.was_leased_until NULLS FIRST, k.chain_seq, k.leg
"""

#: Up to $3 timers due at $1 and not under a live lease, leased for $2, most
#: overdue first; rows another node is claiming are skipped.
_CLAIM_TIMERS: Final = """
WITH picked AS (
    SELECT chain_seq, leg FROM chat_timers
    WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
    ORDER BY due_at, chain_seq, leg
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE chat_timers t SET lease_until = $1 + $2
    FROM picked p
    WHERE t.chain_seq = ANY (ARRAY (SELECT chain_seq FROM picked))
      AND t.chain_seq = p.chain_seq AND t.leg = p.leg
    RETURNING t.chain_seq, t.leg, t.due_at
)
SELECT c.id, k.leg, k.due_at FROM claimed k JOIN chat_chains c ON c.seq = k.chain_seq
ORDER BY k.due_at, k.chain_seq, k.leg
"""

#: Up to $1 started SMS legs whose message's live status is past the leg's.
#: In no order (as on SQLite): an ORDER BY the key lets a generic plan walk
#: the primary key of every leg ever sent instead of the small partial index
#: of the live SMS legs (test_chat_plan.py).
_SMS_LEG_CHANGES: Final = f"""
SELECT c.id, l.leg, {LIVE_STATUS} AS status, m.error_code
FROM chat_legs l
JOIN chat_chains c ON c.seq = l.chain_seq
JOIN messages m ON m.id = l.message_id
LEFT JOIN dispatch_queue q ON q.seq = m.seq
WHERE l.channel = '{SMS}' AND l.message_id IS NOT NULL AND l.sms_status < {_SMS_DONE}
  AND {LIVE_STATUS} > l.sms_status
LIMIT $1
"""


def _check_count(name: str, value: int) -> None:
    if not 1 <= value <= MAX_CLAIM:
        raise InvalidRecord(name, f"must be 1..{MAX_CLAIM}")


def _count(status: str) -> int:
    """The row count of a command's status ("DELETE 3")."""
    return int(status.rpartition(" ")[2])


class PostgresChat(StorePart):
    """The ChatStore methods of :class:`~herald.store.postgres.PostgresStore` (a mixin)."""

    async def _accept_in(self, conn: Any, messages: Sequence[NewMessage],
                         charges: Sequence[Charge] | None) -> None:
        raise NotImplementedError  # PostgresStore's

    async def _accept_controls(self, conn: Any, idempotency: IdempotencyRecord | None,
                               quota: DailyQuota | None, weight: int) -> IdempotencyRecord | None:
        raise NotImplementedError  # PostgresMessages'

    # -- windows -------------------------------------------------------------------------

    async def record_chat_inbound(self, account_id: int, channel: str, sender: str, user: str,
                                  at: float) -> None:
        check_addresses(channel=channel, sender=sender, user=user)
        # The account's row is the insert's source: none, no row, UnknownAccount.
        done = await self._one(lambda c: c.fetchval(
            'INSERT INTO chat_windows (account_id, channel, sender, "user", last_inbound_at)'
            " SELECT id, $2, $3, $4, $5 FROM accounts WHERE id = $1"
            ' ON CONFLICT (account_id, channel, sender, "user") DO UPDATE'
            " SET last_inbound_at = greatest(chat_windows.last_inbound_at,"
            " excluded.last_inbound_at) RETURNING 1", account_id, channel, sender, user, at))
        if done is None:
            raise UnknownAccount(f"no account {account_id}")

    async def chat_window_opened(self, account_id: int, channel: str, sender: str,
                                 user: str) -> float | None:
        opened: float | None = await self._one(lambda c: c.fetchval(
            "SELECT last_inbound_at FROM chat_windows WHERE account_id = $1 AND channel = $2"
            ' AND sender = $3 AND "user" = $4', account_id, channel, sender, user))
        return opened

    # -- chains ----------------------------------------------------------------------------

    async def accept_chain(self, chain: NewChain, *,
                           idempotency: IdempotencyRecord | None = None,
                           quota: DailyQuota | None = None) -> IdempotencyRecord | None:
        c = chain
        for leg in c.legs:
            check_addresses(channel=leg.channel, sender=leg.sender)
        legs = c.legs
        e = self._asyncpg
        # A chain counts as one message (its SMS's parts when the quota counts parts).
        sms = [leg.sms for leg in legs if leg.sms is not None][:1]
        weight = 0 if quota is None else (quota.weight(sms) if sms else 1)

        async def write(conn: Any) -> IdempotencyRecord | None:
            if idempotency is not None or quota is not None:  # as accept's (_messages)
                earlier = await self._accept_controls(conn, idempotency, quota, weight)
                if earlier is not None:
                    return earlier
            try:
                seq = await conn.fetchval(
                    _INSERT_CHAIN, c.id, c.account_id, c.to, c.created_at, c.reference,
                    c.callback_url, c.metadata, [leg.channel for leg in legs],
                    [leg.sender for leg in legs], [leg.content for leg in legs],
                    [leg.success for leg in legs], [leg.within for leg in legs],
                    [leg.ttl for leg in legs],
                    [None if leg.sms is None else message_json(leg.sms) for leg in legs],
                    [charge_json(leg.charge) for leg in legs],
                )  # fmt: skip
            except e.UniqueViolationError as exc:
                raise DuplicateMessageId("a message with this id exists") from exc
            except e.ForeignKeyViolationError as exc:
                raise UnknownAccount(f"no account {c.account_id}") from exc
            first = legs[0]
            if first.sms is not None:  # an SMS first leg starts now: its message is stored
                await self._release_sms(conn, seq, [(0, first.sms, first.charge)])
            return None

        return await self._run(write)

    async def _release_sms(self, conn: Any, seq: int,
                           released: Sequence[tuple[int, NewMessage, Charge | None]]) -> None:
        """Store (and charge) the started SMS legs' messages (leg, message,
        charge): from now on dispatch may claim them. Raises
        :class:`InsufficientFunds` (the caller's transaction keeps nothing)."""
        free = [m for _leg, m, charge in released if charge is None]
        charged = [(m, charge) for _leg, m, charge in released if charge is not None]
        if free:
            await self._accept_in(conn, free, None)
        if charged:
            await self._accept_in(conn, [m for m, _c in charged], [c for _m, c in charged])
        await conn.execute(
            _SMS_RELEASED, seq, [leg for leg, _m, _c in released],
            [m.id for _leg, m, _c in released],
            [None if c is None else c.amount for _leg, _m, c in released],
        )  # fmt: skip

    async def get_chain(self, chain_id: str, *, account_id: int | None = None) -> ChatChain:
        rows = []
        if len(chain_id) <= MAX_ID_LENGTH:
            rows = await self._one(lambda c: c.fetch(_chains_sql("id = $1"), chain_id))
        chains = _chains(rows)
        if not chains or (account_id is not None and chains[0].account_id != account_id):
            raise MessageNotFound("no such message")
        return chains[0]

    async def list_chains(self, query: MessageFilter,
                          cursor: str | None = None) -> tuple[tuple[ChatChain, ...], str | None]:
        # The cursor is the id of the page's last chain (the account's own), as on SQLite.
        where = ["account_id = $1"]
        params: list[object] = [query.account_id]

        def param(value: object) -> str:
            params.append(value)
            return f"${len(params)}"

        for column, value in (("status", None if query.status is None else int(query.status)),
                              ("to_addr", query.to), ("reference", query.reference)):
            if value is not None:
                where.append(f"{column} = {param(value)}")
        if query.since is not None:
            where.append(f"created_at >= {param(query.since)}")
        if query.until is not None:
            where.append(f"created_at < {param(query.until)}")
        after = len(params)  # the cursor's seq, read first, goes here
        if cursor is not None:
            where.append(f"seq < {param(None)}")
        sql = _chains_sql(" AND ".join(where), f"ORDER BY seq DESC LIMIT {param(query.limit + 1)}")

        async def read(conn: Any) -> list[ChatChain]:
            if cursor is not None:
                seq = None
                if len(cursor) <= MAX_ID_LENGTH:
                    seq = await conn.fetchval(
                        "SELECT seq FROM chat_chains WHERE id = $1 AND account_id = $2",
                        cursor, query.account_id)  # fmt: skip
                if seq is None:
                    raise InvalidRecord("cursor", "not a cursor this store returned")
                params[after] = seq
            return _chains(await conn.fetch(sql, *params))

        chains = await self._run(read)
        page = tuple(chains[:query.limit])
        return page, page[-1].id if len(chains) > query.limit else None

    async def get_chains(self, chain_ids: Sequence[str]) -> dict[str, ChatChain]:
        wanted = [i for i in dict.fromkeys(chain_ids) if len(i) <= MAX_ID_LENGTH][:MAX_CLAIM]
        if not wanted:
            return {}
        rows = await self._one(lambda c: c.fetch(_chains_sql("id = ANY ($1::text[])"), wanted))
        return {chain.id: chain for chain in _chains(rows)}

    async def chains_to_cancel(self, account_id: int, reference: str, *,
                               limit: int) -> tuple[str, ...]:
        _check_count("limit", limit)
        rows = await self._one(lambda c: c.fetch(
            "SELECT id FROM chat_chains WHERE account_id = $1 AND reference = $2"
            " AND done_at IS NULL AND cancelled_at IS NULL ORDER BY seq LIMIT $3",
            account_id, reference, limit))
        return tuple(r["id"] for r in rows)

    async def chain_leg_sms(self, chain_id: str, leg: int) -> NewMessage | None:
        r = await self._one(lambda c: c.fetchrow(
            "SELECT l.sms FROM chat_legs l JOIN chat_chains c ON c.seq = l.chain_seq"
            " WHERE c.id = $1 AND l.leg = $2", chain_id, leg))
        return None if r is None or r["sms"] is None else message_of(r["sms"])

    async def chain_leg_content(self, chain_id: str, leg: int) -> str | None:
        r = await self._one(lambda c: c.fetchrow(
            "SELECT l.content FROM chat_legs l JOIN chat_chains c ON c.seq = l.chain_seq"
            " WHERE c.id = $1 AND l.leg = $2", chain_id, leg))
        return None if r is None else r["content"]

    async def chain_of_provider_id(self, channel: str,
                                   provider_id: str) -> tuple[str, int] | None:
        r = await self._one(lambda c: c.fetchrow(
            "SELECT c.id, l.leg FROM chat_legs l JOIN chat_chains c ON c.seq = l.chain_seq"
            " WHERE l.channel = $1 AND l.provider_id = $2", channel, provider_id))
        return None if r is None else (r["id"], r["leg"])

    async def change_chain(self, change: ChainChange) -> bool:
        ch = change
        updates = list(ch.legs.items())
        drop = [*ch.cancel, *(() if ch.timer is None else (ch.timer,))]

        async def write(conn: Any) -> bool:
            # The chain's row first (the version's fence): concurrent changes
            # of one chain take turns here, and the loser finds no row.
            head = await conn.fetchrow(
                "UPDATE chat_chains SET version = version + 1, status = greatest(status, $3),"
                " delivered_by = coalesce(delivered_by, $4), done_at = coalesce(done_at, $5),"
                " cancelled_at = coalesce(cancelled_at, $6) WHERE id = $1 AND version = $2"
                " RETURNING seq, account_id, callback_url",
                ch.chain_id, ch.version, int(ch.status), ch.delivered_by,
                ch.at if ch.status.final else None, ch.at if ch.cancel_chain else None,
            )  # fmt: skip
            if head is None:
                return False
            seq, account_id = head["seq"], head["account_id"]
            if updates:
                rows = await conn.fetch(
                    _UPDATE_LEGS, seq, ch.at, [leg for leg, _u in updates],
                    *([getattr(u, f) for _leg, u in updates] for f in (
                        "state", "provider_id", "error_code", "provider_code", "price_micros",
                        "price_category", "sms_status")),
                    account_id,
                )  # fmt: skip
                found = {r["leg"] for r in rows}
                for leg, _u in updates:
                    if leg not in found:
                        raise InvalidRecord("leg", f"no leg {leg}")
            if ch.start:
                started = await conn.fetch(_START_LEGS, seq, ch.at, list(ch.start))
                sms = [(r["leg"], message_of(r["sms"]), charge_of(r["charge"]))
                       for r in started if r["channel"] == SMS]
                if sms:
                    order = {leg: n for n, leg in enumerate(ch.start)}
                    await self._release_sms(conn, seq, sorted(sms, key=lambda s: order[s[0]]))
            if ch.arm:
                await conn.execute(_ARM, seq, list(ch.arm), list(ch.arm.values()))
            if drop:
                await conn.execute("DELETE FROM chat_timers WHERE chain_seq = $1"
                                   " AND leg = ANY ($2::integer[])", seq, drop)  # fmt: skip
            if ch.notify:  # once: a chain's final status is written once (the pure rules)
                await conn.execute(
                    _NOTIFY, int(Channel.WEBHOOK), int(EventKind.CHAIN), ch.chain_id,
                    int(ch.status), head["callback_url"], ch.at, account_id)  # fmt: skip
            return True

        if len(ch.chain_id) > MAX_ID_LENGTH:
            return False
        return await self._run(write)

    async def claim_chat_legs(self, now: float, lease: float,
                              limit: int) -> tuple[LegSubmission, ...]:
        _check_count("limit", limit)
        rows = await self._one(lambda c: c.fetch(_CLAIM_LEGS, now, lease, limit))
        return tuple(
            LegSubmission(r["id"], r["leg"], r["channel"], r["sender"], r["to_addr"],
                          r["content"], r["ttl"], r["account_id"], r["resumed"])
            for r in rows
        )  # fmt: skip

    async def claim_chain_timers(self, now: float, lease: float,
                                 limit: int) -> tuple[DueChainTimer, ...]:
        _check_count("limit", limit)
        rows = await self._one(lambda c: c.fetch(_CLAIM_TIMERS, now, lease, limit))
        return tuple(DueChainTimer(r["id"], r["leg"], r["due_at"]) for r in rows)

    async def next_chain_timer(self) -> float | None:
        due: float | None = await self._one(
            lambda c: c.fetchval("SELECT min(due_at) FROM chat_timers"))
        return due

    async def sms_leg_changes(self, limit: int) -> tuple[SmsLegStatus, ...]:
        _check_count("limit", limit)
        rows = await self._one(lambda c: c.fetch(_SMS_LEG_CHANGES, limit))
        return tuple(SmsLegStatus(r["id"], r["leg"], STATUS_OF_CODE[r["status"]],
                                  r["error_code"]) for r in rows)  # fmt: skip

    async def park_chat_events(self, events: Sequence[ParkedChatEvent], now: float) -> None:
        if not events:
            return
        await self._one(lambda c: c.execute(
            "INSERT INTO chat_parked (channel, provider_id, event, at, error_code,"
            " provider_code, category, billable, received_at)"
            " SELECT *, $9 FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[],"
            " $5::integer[], $6::text[], $7::text[], $8::boolean[])",
            [e.channel for e in events], [e.provider_id for e in events],
            [e.event for e in events], [e.at for e in events], [e.error_code for e in events],
            [e.provider_code for e in events], [e.category for e in events],
            [e.billable for e in events], now))  # fmt: skip

    async def parked_chat_events(self, limit: int) -> tuple[ParkedChatEvent, ...]:
        _check_count("limit", limit)
        rows = await self._one(lambda c: c.fetch(
            "SELECT p.id, p.channel, p.provider_id, p.event, p.at, p.error_code,"
            " p.provider_code, p.category, p.billable FROM chat_parked p"
            " WHERE EXISTS (SELECT 1 FROM chat_legs l WHERE l.channel = p.channel"
            " AND l.provider_id = p.provider_id) ORDER BY p.id LIMIT $1", limit))
        return tuple(ParkedChatEvent(**dict(r)) for r in rows)

    async def drop_parked_chat_events(self, ids: Sequence[int], *,
                                      received_before: float | None = None) -> int:
        if not ids and received_before is None:
            return 0
        status = await self._one(lambda c: c.execute(
            "DELETE FROM chat_parked WHERE id = ANY ($1::bigint[]) OR received_at < $2",
            list(ids), received_before))
        return _count(status)

    # -- WhatsApp templates ------------------------------------------------------------

    async def add_chat_template(self, template: ChatTemplate) -> None:
        t = template

        async def write(conn: Any) -> None:
            await check_account(conn, t.account_id)  # first, as on SQLite
            try:
                await conn.execute(
                    f"INSERT INTO chat_templates ({_TEMPLATE_COLUMNS})"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                    t.account_id, t.name, t.language, t.category, t.body, t.status,
                    t.provider_id, t.reason, t.created_at, t.updated_at)  # fmt: skip
            except self._asyncpg.UniqueViolationError as exc:
                raise Conflict(f"template {t.name} ({t.language}) exists") from exc

        await self._run(write)

    async def get_chat_template(self, name: str, language: str) -> ChatTemplate | None:
        r = await self._one(lambda c: c.fetchrow(
            f"SELECT {_TEMPLATE_COLUMNS} FROM chat_templates WHERE name = $1 AND language = $2",
            name, language))
        return None if r is None else ChatTemplate(**dict(r))

    async def list_chat_templates(self, account_id: int | None = None
                                  ) -> tuple[ChatTemplate, ...]:  # fmt: skip
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {_TEMPLATE_COLUMNS} FROM chat_templates"
            " WHERE $1::bigint IS NULL OR account_id = $1 ORDER BY name, language", account_id))
        return tuple(ChatTemplate(**dict(r)) for r in rows)

    async def set_chat_template_status(self, name: str, language: str, status: str,
                                       at: float, *, provider_id: str | None = None,
                                       reason: str | None = None) -> bool:
        changed = await self._one(lambda c: c.execute(
            "UPDATE chat_templates SET status = $3, reason = $4,"
            " provider_id = coalesce($5, provider_id), updated_at = $6"
            " WHERE name = $1 AND language = $2 AND updated_at <= $6"
            " AND (status <> $3 OR reason IS DISTINCT FROM $4"
            " OR provider_id IS DISTINCT FROM coalesce($5, provider_id))",
            name, language, status, reason, provider_id, at))
        return _count(changed) > 0

    async def revise_chat_template(self, name: str, language: str, category: str, body: str,
                                   status: str, at: float) -> bool:
        changed = await self._one(lambda c: c.execute(
            "UPDATE chat_templates SET category = $3, body = $4, status = $5, reason = NULL,"
            " updated_at = $6 WHERE name = $1 AND language = $2 AND updated_at <= $6",
            name, language, category, body, status, at))
        return _count(changed) > 0

    async def remove_chat_template(self, name: str, language: str) -> bool:
        removed = await self._one(lambda c: c.execute(
            "DELETE FROM chat_templates WHERE name = $1 AND language = $2", name, language))
        return _count(removed) > 0

