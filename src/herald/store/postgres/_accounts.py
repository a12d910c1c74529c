"""Accounts and their credential records on PostgreSQL (the port's AccountStore; private).

Credentials are hashes only (see :mod:`herald.accounts`); each method is one
transaction of :class:`~herald.store.postgres.PostgresStore` (a mixin).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from herald.store._errors import AccountExists, CredentialExists, UnknownAccount
from herald.store._model import (
    Account,
    ApiKeyRecord,
    Priority,
    SmppCredentialRecord,
    StatusEvents,
)
from herald.store.postgres._part import StorePart
from herald.store.postgres._queue import Record

__all__ = ["ACCOUNT_COLUMNS", "PostgresAccounts", "check_account"]

ACCOUNT_COLUMNS = (
    "id, name, created_at, rate_limit, bind_limit, callback_url, webhook_secret_version,"
    " webhook_events, inbound_webhooks, inbound_url, webhook_batch_max, webhook_batch_wait,"
    " disabled, priority"
)
_API_KEY = "key_id, account_id, key_hash, created_at, revoked_at"
_CREDENTIAL = "system_id, account_id, password_hash, created_at"


def _account(r: Record) -> Account:
    priority = r["priority"]
    return Account(
        id=r["id"], name=r["name"], created_at=r["created_at"], rate_limit=r["rate_limit"],
        bind_limit=r["bind_limit"], callback_url=r["callback_url"],
        webhook_secret_version=r["webhook_secret_version"],
        webhook_events=StatusEvents(r["webhook_events"]),
        inbound_webhooks=r["inbound_webhooks"], inbound_url=r["inbound_url"],
        webhook_batch_max=r["webhook_batch_max"], webhook_batch_wait=r["webhook_batch_wait"],
        disabled=r["disabled"], priority=None if priority is None else Priority(priority),
    )  # fmt: skip


def _api_key(r: Record) -> ApiKeyRecord:
    return ApiKeyRecord(r["key_id"], r["account_id"], r["key_hash"], r["created_at"],
                        r["revoked_at"])  # fmt: skip


def _credential(r: Record) -> SmppCredentialRecord:
    return SmppCredentialRecord(r["system_id"], r["account_id"], r["password_hash"],
                                r["created_at"])  # fmt: skip


async def check_account(conn: Any, account_id: int) -> None:
    """Raises :class:`UnknownAccount` unless the account exists."""
    if await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account_id) is None:
        raise UnknownAccount(f"no account {account_id}")


class PostgresAccounts(StorePart):
    """The account methods of :class:`~herald.store.postgres.PostgresStore` (a mixin)."""

    async def create_account(
        self,
        name: str,
        now: float,
        *,
        rate_limit: float,
        bind_limit: int,
        callback_url: str | None = None,
    ) -> Account:
        a = Account(0, name, now, rate_limit, bind_limit, callback_url, 1)

        async def create(conn: Any) -> Account:
            try:
                account_id = await conn.fetchval(
                    "INSERT INTO accounts (name, created_at, rate_limit, bind_limit,"
                    " callback_url, webhook_events, inbound_webhooks, inbound_url,"
                    " webhook_batch_max, webhook_batch_wait, disabled)"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING id",
                    a.name, a.created_at, a.rate_limit, a.bind_limit, a.callback_url,
                    int(a.webhook_events), a.inbound_webhooks, a.inbound_url,
                    a.webhook_batch_max, a.webhook_batch_wait, a.disabled,
                )  # fmt: skip
            except self._asyncpg.UniqueViolationError as exc:
                raise AccountExists(f"an account named {name!r} exists") from exc
            return dataclasses.replace(a, id=account_id)

        return await self._one(create)

    async def update_account(self, account: Account) -> None:
        a = account
        done = await self._one(lambda c: c.fetchval(
            "UPDATE accounts SET rate_limit = $1, bind_limit = $2, callback_url = $3,"
            " webhook_secret_version = $4, webhook_events = $5, inbound_webhooks = $6,"
            " inbound_url = $7, webhook_batch_max = $8, webhook_batch_wait = $9, disabled = $10,"
            " priority = $11 WHERE id = $12 RETURNING id",
            a.rate_limit, a.bind_limit, a.callback_url, a.webhook_secret_version,
            int(a.webhook_events), a.inbound_webhooks, a.inbound_url, a.webhook_batch_max,
            a.webhook_batch_wait, a.disabled, None if a.priority is None else int(a.priority),
            a.id))  # fmt: skip
        if done is None:
            raise UnknownAccount(f"no account {account.id}")

    async def get_account(self, account_id: int) -> Account:
        row = await self._one(lambda c: c.fetchrow(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1", account_id))
        if row is None:
            raise UnknownAccount(f"no account {account_id}")
        return _account(row)

    async def get_account_by_name(self, name: str) -> Account:
        row = await self._one(lambda c: c.fetchrow(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1", name))
        if row is None:
            raise UnknownAccount(f"no account named {name!r}")
        return _account(row)

    async def list_accounts(self) -> tuple[Account, ...]:
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"))
        return tuple(_account(r) for r in rows)

    async def _insert_credential(self, sql: str, account_id: int, what: str,
                                 *params: object) -> None:
        async def insert(conn: Any) -> None:
            await check_account(conn, account_id)
            try:
                await conn.execute(sql, *params)
            except self._asyncpg.UniqueViolationError as exc:
                raise CredentialExists(f"{what} is taken") from exc

        await self._run(insert)

    async def add_api_key(self, account_id: int, key_id: str, key_hash: str, now: float) -> None:
        await self._insert_credential(
            "INSERT INTO api_keys (key_id, account_id, key_hash, created_at)"
            " VALUES ($1,$2,$3,$4)", account_id, "this API key id",
            key_id, account_id, key_hash, now)  # fmt: skip

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._one(lambda c: c.fetchrow(
            f"SELECT {_API_KEY} FROM api_keys WHERE key_id = $1", key_id))
        return None if row is None else _api_key(row)

    async def list_api_keys(self, account_id: int) -> tuple[ApiKeyRecord, ...]:
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {_API_KEY} FROM api_keys WHERE account_id = $1"
            " ORDER BY created_at, key_id", account_id))
        return tuple(_api_key(r) for r in rows)

    async def revoke_api_key(self, key_id: str, now: float) -> bool:
        revoked = await self._one(lambda c: c.fetchval(
            "UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL"
            " RETURNING key_id", key_id, now))
        return revoked is not None

    async def add_smpp_credential(
        self, account_id: int, system_id: str, password_hash: str, now: float
    ) -> None:
        await self._insert_credential(
            "INSERT INTO smpp_credentials (system_id, account_id, password_hash, created_at)"
            " VALUES ($1,$2,$3,$4)", account_id, f"system_id {system_id!r}",
            system_id, account_id, password_hash, now)  # fmt: skip

    async def get_smpp_credential(self, system_id: str) -> SmppCredentialRecord | None:
        row = await self._one(lambda c: c.fetchrow(
            f"SELECT {_CREDENTIAL} FROM smpp_credentials WHERE system_id = $1", system_id))
        return None if row is None else _credential(row)

    async def list_smpp_credentials(self, account_id: int) -> tuple[SmppCredentialRecord, ...]:
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {_CREDENTIAL} FROM smpp_credentials WHERE account_id = $1"
            " ORDER BY system_id", account_id))
        return tuple(_credential(r) for r in rows)

    async def remove_smpp_credential(self, system_id: str) -> bool:
        removed = await self._one(lambda c: c.fetchval(
            "DELETE FROM smpp_credentials WHERE system_id = $1 RETURNING system_id", system_id))
        return removed is not None
