"""Who is calling, and may they: API keys, failed-login throttling, rate limits.

Theory of operation
-------------------
A request's ``Authorization: Bearer <key>`` is checked by
:meth:`Accounts.authenticate_api_key`, which answers from its cache for a key
that verified recently and otherwise spends an argon2 verification (about
100 ms of a core, on a pool of two threads). Two things protect that pool:

- **Failed logins are throttled per client address** (a token bucket of
  ``auth_failure_burst`` tokens refilled at ``auth_failure_rate`` per
  second). A verification *holds* a token while it runs and gives it back if
  the key was right, so one address can have at most ``burst`` unverified
  keys in flight and, after that, one wrong key per ``1/rate`` seconds; its
  further requests get 429 with Retry-After at no cost. An honest client
  elsewhere finds the pool free for its first login. A cached key takes and
  returns its token in the same step, so it never waits.
- **Clients that failed lately wait behind the others**: a key from an
  address whose last failure is recent is verified only when no other
  verification waits (``herald.accounts.HashLanes``); too many of those
  waiting get 429 at once. Failed logins and lockouts are logged at warning
  (the key id and the address; never the secret).
- **Across nodes** (PostgreSQL): a key that is not in the cache also holds a
  token of the address's bucket in the store while it is verified, and a
  failure is noted there (``FailedLogins.shared_take``): a wrong key at one
  node counts at every node, and makes the address suspect there too. The
  check at the top of every request stays in memory.
- **Concurrent requests with the same key share one verification**
  (single flight), so a client opening 64 connections at once costs one
  argon2, not 64, and does not exhaust its own failure budget.

The in-flight table is keyed by HMAC-SHA256 of the key under a random
per-process key, as the accounts cache is: no secret is held longer than the
request. Behind a reverse proxy every client has the proxy's address; put
the throttling in the proxy then.

Accounts, and their controls (``herald.accounts.ControlBook``), are re-read
from the store at most every ``account_cache_ttl`` seconds (their rate limit
may change); a key used from an address outside the account's API networks
is refused with 403 after its verification. Rate limits are token buckets:
``config.default_account_rate`` requests per second per account on every
endpoint, and ``Account.rate_limit`` messages per second on the sending
endpoints (a batch counts its messages; see ``herald.ratelimit``). On SQLite
they are in this process's memory; on PostgreSQL every node draws slices of
one bucket per account in the store (``herald.cluster.budgets``), so the
limits hold across nodes with a round trip per slice, not per message.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os

from starlette.requests import Request

from herald.accounts import ControlBook, FailedLogins, InvalidCredentials, LoginsBusy, Principal
from herald.cluster.budgets import budgets_for
from herald.intake import AccountRules
from herald.ratelimit import TokenBucket
from herald.store import Account, StoreError, TokenLedger, UnknownAccount

from ._context import ApiContext
from ._problems import ApiProblem, rate_limited, store_problem

__all__ = ["Gate"]

log = logging.getLogger("herald.api")

_CHALLENGE = 'Bearer realm="herald"'


def _unauthorized(detail: str, *, presented: bool) -> ApiProblem:
    # RFC 6750 §3: a request with a bad token gets error="invalid_token".
    challenge = _CHALLENGE + (', error="invalid_token"' if presented else "")
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def _logins_busy() -> ApiProblem:
    return rate_limited("too-many-failed-logins",
                        "too many logins from failing clients wait; retry later", 1.0)


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive,
    RFC 9110 §11.1), or ``None``."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class Gate:
    """Authenticates requests and applies the rate limits (one per app)."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        limits = ctx.limits
        self._failures = FailedLogins(
            limits.auth_failure_rate, limits.auth_failure_burst, max_keys=limits.max_tracked_keys,
            ledger=ctx.store if isinstance(ctx.store, TokenLedger) else None, scope="api-logins")
        # On PostgreSQL the rates are the cluster's (herald.cluster.budgets).
        self._requests = budgets_for(ctx.store, "api-requests", limits.max_tracked_keys)
        self._messages = budgets_for(ctx.store, "api-messages", limits.max_tracked_keys)
        self._accounts: dict[int, tuple[Account, float]] = {}
        self.controls = ControlBook(ctx.store, ttl=limits.account_cache_ttl)
        self._inflight: dict[bytes, asyncio.Future[Principal]] = {}
        self._key = os.urandom(32)

    # -- authentication ----------------------------------------------------------------

    async def authenticate(self, request: Request, now: float) -> Account:
        """The calling account, charged one request; raises :class:`ApiProblem`
        (401, 429 for failed logins or the request rate, 503 if the store fails)."""
        client = request.client.host if request.client else ""
        return await self.admit(client, request.headers.get("authorization"), now)

    async def admit(self, client: str, authorization: str | None, now: float) -> Account:
        """:meth:`authenticate` from the client's address and its Authorization header."""
        limits = self._ctx.limits
        failures = self._failures.bucket(client, now)
        wait = failures.wait(1, now)
        if wait:
            if self._failures.first_refusal(client, wait, now):
                log.warning("API logins from %s locked out for %.0f s: too many failures",
                            client or "-", wait)
            raise rate_limited(
                "too-many-failed-logins",
                "too many failed authentications from this address; retry later",
                wait,
            )
        presented = bearer_token(authorization)
        if presented is None:
            failures.take(1, now)
            self._failures.failed(client, now)
            raise _unauthorized("send 'Authorization: Bearer <api key>'", presented=False)
        principal = await self._verify(presented, failures, client, now)
        account = await self._account(principal.account_id, now)
        if account.disabled:
            log.warning("refused API key of disabled account %s from %s", account.name, client)
            raise _unauthorized("the API key's account is disabled", presented=True)
        rules = self.controls.current(account.id, now) or await self._rules(account.id, now)
        if not rules.allows_api_client(client):
            log.warning("refused API key of account %s from %s: not in its API networks",
                        account.name, client or "-")
            raise ApiProblem(403, "address-not-allowed",
                             f"the account's API keys may not be used from {client or 'here'}")
        rate = self._ctx.config.default_account_rate
        capacity = rate * limits.burst_seconds
        over = self._requests.take_now(account.id, rate, capacity, 1, now)
        if over is None:
            over = await self._requests.take(account.id, rate, capacity, 1, now)
        if over:
            raise rate_limited(
                "rate-limited", f"more than {rate:g} API requests per second", over
            )
        return account

    async def _verify(
        self, presented: str, failures: TokenBucket, client: str, now: float
    ) -> Principal:
        digest = hmac.new(
            self._key, presented.encode("utf-8", "surrogateescape"), hashlib.sha256
        ).digest()
        pending = self._inflight.get(digest)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except InvalidCredentials:
                failures.take(1, now)
                self._failures.failed(client, now)
                raise _unauthorized("the API key is not valid", presented=True) from None
            except LoginsBusy:
                raise _logins_busy() from None
        if failures.take(1, now):  # held while the key is verified
            raise rate_limited(
                "too-many-failed-logins",
                "too many failed authentications from this address; retry later",
                failures.wait(1, now),
            )
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        # On PostgreSQL a key to verify (not cached) holds a token of the address's
        # bucket in the store too: its failures count on every node.
        shared = (self._failures.shared
                  and self._ctx.accounts.cached_api_key(presented, now) is None)  # fmt: skip
        try:
            if shared and (wait := await self._failures.shared_take(client, now, now)):
                shared = False  # nothing held there
                raise rate_limited(
                    "too-many-failed-logins",
                    "too many failed authentications from this address; retry later", wait)
            principal = await self._ctx.accounts.authenticate_api_key(
                presented, now, suspect=self._failures.suspect(client, now))
        except InvalidCredentials as exc:
            self._failures.failed(client, now)
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" report if nobody waited
            log.warning("authentication failed from %s: %s", client or "-", exc.reason)
            if shared:
                await self._failures.shared_settle(client, now, failed=True)
            raise _unauthorized("the API key is not valid", presented=True) from None
        except (LoginsBusy, StoreError, ApiProblem) as exc:
            failures.give(1)
            future.set_exception(exc)  # (those waiting for it answer the same)
            future.exception()
            if shared:
                await self._failures.shared_settle(client, now, failed=False)
            if isinstance(exc, LoginsBusy):
                raise _logins_busy() from None
            if isinstance(exc, StoreError):
                raise store_problem(exc) from None
            raise
        except BaseException:
            failures.give(1)
            future.cancel()
            raise
        finally:
            del self._inflight[digest]
        failures.give(1)
        future.set_result(principal)
        if shared:
            await self._failures.shared_settle(client, now, failed=False)
        return principal

    async def _account(self, account_id: int, now: float) -> Account:
        cached = self._accounts.get(account_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            account = await self._ctx.store.get_account(account_id)
        except UnknownAccount:
            raise _unauthorized("the API key's account no longer exists", presented=True) from None
        except StoreError as exc:
            raise store_problem(exc) from None
        if len(self._accounts) >= self._ctx.limits.max_tracked_keys:
            self._accounts.clear()  # rare: more accounts than that, all active at once
        self._accounts[account_id] = (account, now + self._ctx.limits.account_cache_ttl)
        return account

    def forget_account(self, name: str) -> None:
        """Drop the cached settings of the account ``name`` (it changed): the next
        request reads them again, and the opt-out lists' changes."""
        for account_id, (account, _) in list(self._accounts.items()):
            if account.name == name:
                del self._accounts[account_id]
                self.controls.forget(account_id)  # and its controls (docs/accounts.md)
        self.controls.opt_outs_changed()  # one indexed read, only after an admin change

    async def _rules(self, account_id: int, now: float) -> AccountRules:
        try:
            return await self.controls.refresh(account_id, now)
        except StoreError as exc:
            raise store_problem(exc) from None

    # -- message rate ----------------------------------------------------------------

    async def charge_messages(self, account: Account, count: int, now: float) -> None:
        """Take ``count`` messages from the account's budget, or raise 429."""
        if count <= 0 or account.rate_limit == math.inf:
            return
        rate = account.rate_limit
        capacity = max(1.0, rate * self._ctx.limits.burst_seconds)
        wait = self._messages.take_now(account.id, rate, capacity, count, now)
        if wait is None:  # shared: the node's slice does not cover it (one round trip)
            wait = await self._messages.take(account.id, rate, capacity, count, now)
        if wait:
            raise rate_limited(
                "rate-limited", f"the account may send {rate:g} messages per second", wait
            )

    def refund_messages(self, account: Account, count: int, now: float) -> None:
        """Give back the budget of messages that were refused or not stored."""
        if count > 0 and account.rate_limit != math.inf:
            rate = account.rate_limit
            capacity = max(1.0, rate * self._ctx.limits.burst_seconds)
            self._messages.give(account.id, rate, capacity, count, now)
