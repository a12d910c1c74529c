"""Issuing and verifying credentials.

Theory of operation
-------------------
Secrets are stored only as argon2id hashes (``argon2-cffi``'s RFC 9106
low-memory profile by default: 3 passes over 64 MiB). Verification is
constant-time in the secret (argon2 recomputes the whole hash and compares
digests in constant time) and costs, on purpose, 64 MiB of memory and tens
of milliseconds of CPU (about 100 ms on the 2-CPU development VM). It runs on
a small dedicated thread pool (:data:`HASH_THREADS`), which also bounds the
memory a flood of bad logins can take and keeps the event loop serving; it
also caps failed verifications at about 20/s here, so the layers above
rate-limit failed logins per client and mark the logins of clients that
failed lately *suspect*: those wait behind every other verification
(``_throttle.HashLanes``), so a flood of wrong secrets cannot delay honest
first logins by more than the verifications already running.

An unknown system_id costs no hashing, but its answer waits about as long as
a verification takes, so that timing does not tell which system_ids exist.

The HTTP API must check a key on every request, thousands per second; argon2
at that rate is impossible. So a key that verified is remembered for
``cache_ttl`` seconds in a process-local cache:

- The cache is keyed by HMAC-SHA256 of the presented credential under a
  random key made at start-up and never stored: the cache holds no secret
  and no unsalted hash of one (a memory dump does not give a cheap
  offline-guessing target), and lookup time does not depend on how close a
  guess is to a valid key.
- Only successes are cached. A wrong secret always costs a verification.
- Revoking a key (or removing an SMPP login) through this object drops it from
  the cache at once, and a verification that raced with a revocation is not
  cached. Another process (another herald node, or the ``herald accounts``
  CLI) revoking a key is told to :meth:`Accounts.forget` by ``herald serve``'s
  poll of the audit log (:class:`herald.admin.ChangeFeed`, about a second).
  **The trade-off** that remains: should that poll fail, a revoked key may keep
  working for up to ``cache_ttl`` seconds (60 by default) on nodes that
  verified it recently. Lower ``cache_ttl`` to shrink that window at the price
  of more argon2 work.
- The cache is bounded (:data:`MAX_CACHE_ENTRIES`, oldest evicted first).

Every method that verifies takes ``now`` (seconds, any monotonic origin the
caller keeps to) for the cache's expiry; the store's timestamps take the
epoch time the caller passes to the issuing methods.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from herald.accounts._credentials import (
    DEFAULT_SMPP_PASSWORD_LENGTH,
    MAX_SMPP_PASSWORD_LENGTH,
    MAX_SYSTEM_ID_LENGTH,
    InvalidCredentials,
    IssuedApiKey,
    IssuedSmppPassword,
    Principal,
    check_account_name,
    check_system_id,
    new_api_key,
    new_smpp_password,
    parse_api_key,
)
from herald.accounts._throttle import HashLanes
from herald.store import Account, AccountStore

__all__ = ["DEFAULT_CACHE_TTL", "HASH_THREADS", "MAX_CACHE_ENTRIES", "Accounts", "VerifiedCache"]

#: Seconds a verified credential is trusted without argon2 (see the trade-off above).
DEFAULT_CACHE_TTL = 60.0
#: Verified credentials remembered at most (a few hundred bytes each).
MAX_CACHE_ENTRIES = 10_000
#: argon2 computations at once: each takes 64 MiB and a core for tens of ms.
HASH_THREADS = 2
#: Defaults for new accounts: messages per second, simultaneous SMPP binds.
DEFAULT_RATE_LIMIT = 100.0
DEFAULT_BIND_LIMIT = 4


class VerifiedCache:
    """Credentials that verified recently, keyed by a keyed hash of the credential."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        if ttl < 0 or max_entries < 0:
            raise ValueError("ttl and max_entries must not be negative")
        self._key = os.urandom(32)
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        self.epoch = 0  # bumped by every invalidation

    def digest(self, kind: bytes, *parts: str) -> bytes:
        mac = hmac.new(self._key, kind, hashlib.sha256)
        for part in parts:  # length-prefixed: ("a\0b", "c") and ("a", "b\0c") differ
            raw = part.encode("utf-8", "surrogateescape")
            mac.update(len(raw).to_bytes(4, "big"))
            mac.update(raw)
        return mac.digest()

    def get(self, digest: bytes, now: float) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._entries[digest]
            return None
        return entry[0]

    def put(self, digest: bytes, principal: Principal, now: float, epoch: int) -> None:
        """Remember a verification begun at ``epoch``, unless a revocation came since."""
        if epoch != self.epoch or self._max == 0 or self._ttl == 0:
            return
        while len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]  # oldest first
        self._entries[digest] = (principal, now + self._ttl)

    def invalidate(self, credential: str) -> None:
        self.epoch += 1
        for digest in [d for d, (p, _) in self._entries.items() if p.credential == credential]:
            del self._entries[digest]

    def __len__(self) -> int:
        return len(self._entries)


class Accounts:
    """Creates accounts, issues credentials (shown once) and verifies them.

    ``hasher`` defaults to ``argon2.PasswordHasher()`` (argon2id). Close with
    :meth:`close` to stop the hashing threads.
    """

    def __init__(
        self,
        store: AccountStore,
        *,
        hasher: PasswordHasher | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        cache_size: int = MAX_CACHE_ENTRIES,
    ) -> None:
        self._store = store
        self._hasher = hasher or PasswordHasher()
        self._cache = VerifiedCache(cache_ttl, cache_size)
        self._pool = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="herald-argon2")
        self._lanes = HashLanes(HASH_THREADS)
        self._verify_seconds = 0.05  # a running average of one verification's time

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- hashing off the event loop ----------------------------------------------------

    async def _hash(self, secret: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, secret)

    def _verify_blocking(self, encoded: str, secret: str) -> bool:
        try:
            return self._hasher.verify(encoded, secret)
        except (VerificationError, InvalidHashError):
            return False

    async def _verify(self, encoded: str, secret: str, suspect: bool = False) -> bool:
        """Verify on the pool, behind the other logins if ``suspect``; raises
        :class:`LoginsBusy` when too many suspect ones wait."""
        loop = asyncio.get_running_loop()
        await self._lanes.acquire(suspect=suspect)
        try:
            start = loop.time()
            ok = await loop.run_in_executor(self._pool, self._verify_blocking, encoded, secret)
            self._verify_seconds += 0.2 * (loop.time() - start - self._verify_seconds)
            return ok
        finally:
            self._lanes.release(suspect=suspect)

    # -- issuing -------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        now: float,
        *,
        rate_limit: float = DEFAULT_RATE_LIMIT,
        bind_limit: int = DEFAULT_BIND_LIMIT,
        callback_url: str | None = None,
    ) -> tuple[Account, IssuedApiKey]:
        """Create an account with its first API key.

        Raises :class:`InvalidName`, :class:`~herald.store.AccountExists`.
        """
        check_account_name(name)
        if rate_limit <= 0 or bind_limit < 0:
            raise ValueError("rate_limit must be positive and bind_limit not negative")
        account = await self._store.create_account(
            name, now, rate_limit=rate_limit, bind_limit=bind_limit, callback_url=callback_url
        )
        return account, await self.issue_api_key(account.id, now)

    async def issue_api_key(self, account_id: int, now: float) -> IssuedApiKey:
        """A new API key for the account. Raises :class:`~herald.store.UnknownAccount`."""
        issued, secret = new_api_key()
        await self._store.add_api_key(account_id, issued.key_id, await self._hash(secret), now)
        return issued

    async def revoke_api_key(self, key_id: str, now: float) -> bool:
        """Revoke a key; it stops working here at once (elsewhere within ``cache_ttl``)."""
        self._cache.invalidate(key_id)
        revoked = await self._store.revoke_api_key(key_id, now)
        self._cache.invalidate(key_id)  # and drop anything verified meanwhile
        return revoked

    async def add_smpp(
        self,
        account_id: int,
        system_id: str,
        now: float,
        *,
        password_length: int = DEFAULT_SMPP_PASSWORD_LENGTH,
    ) -> IssuedSmppPassword:
        """A new SMPP login. Raises :class:`InvalidName`,
        :class:`~herald.store.CredentialExists`, :class:`~herald.store.UnknownAccount`."""
        check_system_id(system_id)
        password = new_smpp_password(password_length)
        await self._store.add_smpp_credential(
            account_id, system_id, await self._hash(password), now
        )
        return IssuedSmppPassword(system_id, password)

    async def remove_smpp(self, system_id: str) -> bool:
        self._cache.invalidate(system_id)
        removed = await self._store.remove_smpp_credential(system_id)
        self._cache.invalidate(system_id)
        return removed

    def forget(self, credential: str) -> None:
        """Drop a credential (API key id, system_id) from the cache: another process
        revoked or reset it (see :class:`herald.admin.ChangeFeed`)."""
        self._cache.invalidate(credential)

    # -- verifying -----------------------------------------------------------------------

    def cached_api_key(self, presented: str, now: float) -> Principal | None:
        """The account of a key that verified within ``cache_ttl``, or ``None``
        (:meth:`authenticate_api_key` would verify it)."""
        return self._cache.get(self._cache.digest(b"api", presented), now)

    async def authenticate_api_key(
        self, presented: str, now: float, *, suspect: bool = False
    ) -> Principal:
        """The account an ``Authorization: Bearer`` key opens.

        Raises :class:`InvalidCredentials` (answer 401; log its ``reason``), and
        :class:`LoginsBusy` for a ``suspect`` login (its client failed lately)
        when too many of those wait for verification.
        """
        key_id, secret = parse_api_key(presented)
        digest = self._cache.digest(b"api", presented)
        cached = self._cache.get(digest, now)
        if cached is not None:
            return cached
        epoch = self._cache.epoch
        record = await self._store.get_api_key(key_id)
        if record is None:
            raise InvalidCredentials(f"unknown API key {key_id}")
        if record.revoked:
            raise InvalidCredentials(f"API key {key_id} is revoked")
        if not await self._verify(record.key_hash, secret, suspect):
            raise InvalidCredentials(f"wrong secret for API key {key_id}")
        principal = Principal(record.account_id, key_id)
        self._cache.put(digest, principal, now, epoch)
        return principal

    async def authenticate_smpp(
        self, system_id: str, password: str, now: float, *, suspect: bool = False
    ) -> Principal:
        """The account an SMPP bind opens.

        Raises :class:`InvalidCredentials`; answer the bind with its
        ``smpp_status`` and close. That status is ESME_RINVPASWD whatever was
        wrong, and an unknown system_id is answered after about the time a
        verification takes: answering it differently (ESME_RINVSYSID) or
        faster would let anyone list the system_ids by trying them. Raises
        :class:`LoginsBusy` as :meth:`authenticate_api_key` does.
        """
        if not 0 < len(system_id) <= MAX_SYSTEM_ID_LENGTH:
            raise InvalidCredentials("system_id of bad length")
        if len(password) > MAX_SMPP_PASSWORD_LENGTH:
            raise InvalidCredentials(f"password too long for {system_id}")
        digest = self._cache.digest(b"smpp", system_id, password)
        cached = self._cache.get(digest, now)
        epoch = self._cache.epoch
        # One indexed read a bind (binds are rare) even when the password is cached:
        # a login removed or reset by another process (herald accounts) stops
        # working at once, not when this process's cache forgets it.
        record = await self._store.get_smpp_credential(system_id)
        if cached is not None and record is not None and record.created_at == cached.issued_at:
            return cached
        if record is None:
            await asyncio.sleep(self._verify_seconds)
            raise InvalidCredentials(f"unknown system_id {system_id}")
        if not await self._verify(record.password_hash, password, suspect):
            raise InvalidCredentials(f"wrong password for system_id {system_id}")
        principal = Principal(record.account_id, system_id, record.created_at)
        self._cache.put(digest, principal, now, epoch)
        return principal
