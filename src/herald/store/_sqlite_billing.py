"""The SQLite store's billing: price lists, balances, charges at acceptance, CDRs.

The rules that must hold under concurrency live in SQL (``_schema``'s _V15_BILLING
triggers): a charge is checked against the balance and taken in the
statement that records it, inside the transaction that stores the message;
a refund is given by the final status's own update. This module writes
and reads the rows.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from herald.store._billing import (
    MAX_AMOUNT,
    MAX_PRICE_LIST_ENTRIES,
    Balance,
    Cdr,
    Charge,
    MarginRow,
    PriceEntry,
    PriceKind,
    PriceSide,
    RefundPolicy,
    StoredPriceList,
)
from herald.store._errors import (
    InsufficientFunds,
    InvalidRecord,
    StoreError,
    UnknownAccount,
)
from herald.store._margins import MARGIN_KEYS, grouped
from herald.store._model import STATUS_OF_CODE, NewMessage
from herald.store._sqlite_conn import Readers
from herald.store._sqlite_margins import apply_margin_update, read_margins
from herald.store._sqlite_sql import INSERT_MESSAGE, duplicate_id, row_from_message
from herald.store._writer import Group

__all__ = [
    "G_ACCEPT_BILLED",
    "INSERT_CDR",
    "MARGIN_KEYS",
    "SQLiteBilling",
    "accept_error",
    "billed_rows",
]

T = TypeVar("T")
log = logging.getLogger("herald.store")

INSERT_CDR: Final = (
    "INSERT INTO cdrs (message_id, account_id, accepted_at, country, network, segments,"
    " price_key, sell) VALUES (?,?,?,?,?,?,?,?)"
)
_MESSAGE_WIDTH: Final = INSERT_MESSAGE.count("?")
_INSUFFICIENT: Final = "herald: insufficient funds"  # the RAISE of trigger cdrs_charge


def accept_error(exc: sqlite3.IntegrityError) -> StoreError:
    """The error of an accept whose rows broke a constraint: the charge
    trigger's refusal, or a repeated message id."""
    if _INSUFFICIENT in str(exc):
        err: StoreError = InsufficientFunds("the balance and credit limit do not cover the price")
        err.__cause__ = exc
        return err
    return duplicate_id(exc)


#: Accepting charged messages: each row is the message's then its CDR's.
G_ACCEPT_BILLED: Final = Group(
    "accept-billed", 0, (INSERT_MESSAGE, INSERT_CDR), accept_error,
    (slice(0, _MESSAGE_WIDTH), slice(_MESSAGE_WIDTH, None)), steps=False,
)  # fmt: skip


def billed_rows(
    messages: Sequence[NewMessage], charges: Sequence[Charge]
) -> list[tuple[object, ...]]:
    """The rows of :data:`G_ACCEPT_BILLED` (and of an idempotent accept's)."""
    if len(charges) != len(messages):
        raise InvalidRecord("charges", "one per message")
    return [
        (*row_from_message(m), m.id, m.account_id, m.accepted_at, c.country, c.network,
         m.segments, c.price_key, c.amount)
        for m, c in zip(messages, charges, strict=True)
    ]  # fmt: skip



_CDR_COLUMNS: Final = (
    "c.message_id, c.account_id, c.accepted_at, c.country, c.network, c.segments,"
    " c.price_key, c.sell, c.refunded, c.connector, c.buy, COALESCE(c.status, m.status)"
)


def _check_amount(name: str, value: int) -> None:
    if not -MAX_AMOUNT <= value <= MAX_AMOUNT:
        raise InvalidRecord(name, f"must be within ±{MAX_AMOUNT} micro-units")


def _balance(row: Sequence[Any]) -> Balance:
    return Balance(row[0], row[1], row[2], RefundPolicy(row[3]))


class SQLiteBilling:
    """The billing methods of :class:`~herald.store.SQLiteStore` (a mixin)."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    # -- price lists ---------------------------------------------------------------

    @staticmethod
    def _next_price_generation(conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE price_lists_generation SET generation = generation + 1")
        return int(conn.execute("SELECT generation FROM price_lists_generation").fetchone()[0])

    @staticmethod
    def _check_owner(conn: sqlite3.Connection, side: PriceSide, owner: str) -> None:
        if side is PriceSide.SELL:
            if not owner.isdigit() or conn.execute(
                "SELECT 1 FROM accounts WHERE id = ?", (int(owner),)
            ).fetchone() is None:
                raise UnknownAccount(f"no account {owner}")
        elif not 0 < len(owner) <= 64:
            raise InvalidRecord("owner", "a connector's name: 1..64 characters")

    async def put_price_list(self, prices: StoredPriceList) -> int:
        if len(prices.entries) > MAX_PRICE_LIST_ENTRIES:
            raise InvalidRecord("entries", f"at most {MAX_PRICE_LIST_ENTRIES}")
        side, owner = int(prices.side), prices.owner
        rows = [(side, owner, int(e.kind), e.key, e.price) for e in prices.entries]

        def put(conn: sqlite3.Connection) -> int:
            self._check_owner(conn, prices.side, owner)
            conn.execute("DELETE FROM prices WHERE side = ? AND owner = ?", (side, owner))
            try:
                conn.executemany(
                    "INSERT INTO prices (side, owner, kind, key, price) VALUES (?,?,?,?,?)", rows
                )
            except sqlite3.IntegrityError as exc:
                raise InvalidRecord("entries", "an entry is given twice") from exc
            conn.execute(
                "INSERT OR REPLACE INTO price_lists (side, owner, imported_at, entries)"
                " VALUES (?,?,?,?)", (side, owner, prices.imported_at, len(rows)),
            )  # fmt: skip
            if prices.side is PriceSide.SELL:  # a billed account has a balance, from 0
                conn.execute("INSERT OR IGNORE INTO balances (account_id) VALUES (?)",
                             (int(owner),))  # fmt: skip
            return self._next_price_generation(conn)

        return await self._write(put)

    async def remove_price_list(self, side: PriceSide, owner: str) -> int:
        def remove(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM prices WHERE side = ? AND owner = ?", (int(side), owner))
            if conn.execute("DELETE FROM price_lists WHERE side = ? AND owner = ?",
                            (int(side), owner)).rowcount:  # fmt: skip
                return self._next_price_generation(conn)
            return int(conn.execute("SELECT generation FROM price_lists_generation")
                       .fetchone()[0])  # fmt: skip

        return await self._write(remove)

    async def price_lists(self, side: PriceSide) -> tuple[StoredPriceList, ...]:
        def read(conn: sqlite3.Connection) -> tuple[StoredPriceList, ...]:
            lists = conn.execute(
                "SELECT owner, imported_at FROM price_lists WHERE side = ? ORDER BY owner",
                (int(side),),
            ).fetchall()
            entries: dict[str, list[PriceEntry]] = {owner: [] for owner, _ in lists}
            for owner, kind, key, price in conn.execute(
                "SELECT owner, kind, key, price FROM prices WHERE side = ?"
                " ORDER BY owner, kind, key", (int(side),),
            ):  # fmt: skip
                if owner in entries:
                    entries[owner].append(PriceEntry(PriceKind(kind), key, price))
            return tuple(StoredPriceList(side, owner, tuple(entries[owner]), at)
                         for owner, at in lists)  # fmt: skip

        return await self._readers.run(read)

    async def price_lists_generation(self) -> int:
        row = await self._readers.run(
            lambda c: c.execute("SELECT generation FROM price_lists_generation").fetchone()
        )
        return int(row[0])

    # -- balances ------------------------------------------------------------------

    async def get_balance(self, account_id: int) -> Balance | None:
        row = await self._readers.run(lambda c: c.execute(
            "SELECT account_id, balance, credit_limit, refund_policy FROM balances"
            " WHERE account_id = ?", (account_id,),
        ).fetchone())  # fmt: skip
        return None if row is None else _balance(row)

    async def adjust_balance(
        self,
        account_id: int,
        *,
        add: int = 0,
        credit_limit: int | None = None,
        refund_policy: RefundPolicy | None = None,
    ) -> Balance:
        _check_amount("add", add)
        if credit_limit is not None and not 0 <= credit_limit <= MAX_AMOUNT:
            raise InvalidRecord("credit_limit", f"must be 0..{MAX_AMOUNT} micro-units")

        def adjust(conn: sqlite3.Connection) -> Balance:
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?",
                            (account_id,)).fetchone() is None:  # fmt: skip
                raise UnknownAccount(f"no account {account_id}")
            conn.execute("INSERT OR IGNORE INTO balances (account_id) VALUES (?)", (account_id,))
            row = conn.execute(
                "UPDATE balances SET balance = balance + ?1,"
                " credit_limit = COALESCE(?2, credit_limit),"
                " refund_policy = COALESCE(?3, refund_policy) WHERE account_id = ?4"
                " RETURNING account_id, balance, credit_limit, refund_policy",
                (add, credit_limit, None if refund_policy is None else int(refund_policy),
                 account_id),
            ).fetchone()  # fmt: skip
            if abs(row[1]) > MAX_AMOUNT:
                raise InvalidRecord("add", f"the balance would pass ±{MAX_AMOUNT} micro-units")
            return _balance(row)

        return await self._write(adjust)

    # -- CDRs ----------------------------------------------------------------------

    async def list_cdrs(
        self,
        since: float,
        until: float,
        *,
        account_id: int | None = None,
        after: tuple[float, str] | None = None,
        limit: int = 1000,
    ) -> tuple[Cdr, ...]:
        if not 1 <= limit <= 10_000:
            raise InvalidRecord("limit", "must be 1..10000")
        # A purged message's CDR holds its final status (herald.store._retention).
        sql = (f"SELECT {_CDR_COLUMNS} FROM cdrs c LEFT JOIN messages m ON m.id = c.message_id"
               " WHERE c.accepted_at >= ? AND c.accepted_at < ?")  # fmt: skip
        params: list[object] = [since, until]
        if account_id is not None:
            sql += " AND c.account_id = ?"
            params.append(account_id)
        if after is not None:
            sql += " AND (c.accepted_at, c.message_id) > (?, ?)"
            params += after
        sql += " ORDER BY c.accepted_at, c.message_id LIMIT ?"
        params.append(limit)

        def read(conn: sqlite3.Connection) -> tuple[Cdr, ...]:
            return tuple(
                Cdr(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                    STATUS_OF_CODE[r[11]])
                for r in conn.execute(sql, params)
            )  # fmt: skip

        return await self._readers.run(read)

    async def margin(
        self, since: float, until: float, by: str, *, account_id: int | None = None
    ) -> tuple[MarginRow, ...]:
        # From the hourly rollups, brought up to date by this read (_sqlite_margins).
        if by not in MARGIN_KEYS:
            raise InvalidRecord("by", f"one of {', '.join(MARGIN_KEYS)}")
        sums, update = await self._readers.run(
            lambda c: read_margins(c, since, until, account_id))
        if update is not None:
            try:
                await self._write(lambda c: apply_margin_update(c, update))
            except StoreError as exc:  # the sums are right; the next read does it again
                log.warning("storing the margin sums failed: %s", exc)
        return tuple(MarginRow(*r) for r in grouped(sums, by))
