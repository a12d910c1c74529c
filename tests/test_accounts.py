"""Accounts: credentials are issued once, stored hashed, verified, cached, revoked."""

from __future__ import annotations

import asyncio
import stat
import string
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest
from argon2 import PasswordHasher

from herald.accounts import (
    DEFAULT_SMPP_PASSWORD_LENGTH,
    MAX_SMPP_PASSWORD_LENGTH,
    Accounts,
    InvalidCredentials,
    InvalidName,
    Principal,
    SmppBindStatus,
    load_master_key,
    parse_api_key,
    webhook_secret,
)
from herald.accounts._service import VerifiedCache
from herald.store import Account, SQLiteConfig, SQLiteStore

T0 = 1_800_000_000.0


class CountingHasher(PasswordHasher):
    """Real argon2id with cheap parameters, counting verifications (and able to pause one)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0
        self.hold: threading.Event | None = None
        self.entered = threading.Event()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(10)
        return super().verify(hash, password)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    yield opened
    await opened.aclose()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
async def accounts(store: SQLiteStore, hasher: CountingHasher) -> AsyncIterator[Accounts]:
    service = Accounts(store, hasher=hasher, cache_ttl=60.0)
    yield service
    service.close()


async def _stored_bytes(store: SQLiteStore) -> bytes:
    await store.aclose()  # everything on disk (WAL included)
    return b"".join(p.read_bytes() for p in store.config.data_dir.iterdir() if p.is_file())


# -- API keys ------------------------------------------------------------------------


async def test_an_api_key_is_stored_only_as_an_argon2id_hash(
    store: SQLiteStore, accounts: Accounts
) -> None:
    account, issued = await accounts.create("acme", T0)
    key_id, secret = parse_api_key(issued.key)
    assert issued.key.startswith("hk_") and key_id == issued.key_id and len(secret) == 40
    record = await store.get_api_key(key_id)
    assert record is not None and record.account_id == account.id
    assert record.key_hash.startswith("$argon2id$")
    assert secret not in record.key_hash and record.key_hash != secret
    stored = await _stored_bytes(store)
    assert key_id.encode() in stored  # the id is stored in clear, to find the hash ...
    assert secret.encode() not in stored  # ... the secret nowhere


async def test_a_valid_key_opens_its_account_and_nothing_else_does(
    accounts: Accounts,
) -> None:
    account, issued = await accounts.create("acme", T0)
    other, other_key = await accounts.create("other", T0)
    expected = Principal(account.id, issued.key_id)
    assert await accounts.authenticate_api_key(issued.key, 0) == expected
    assert (await accounts.authenticate_api_key(other_key.key, 0)).account_id == other.id
    flipped = issued.key[:-1] + ("a" if issued.key[-1] != "a" else "b")
    _, other_secret = parse_api_key(other_key.key)
    forged = f"hk_{issued.key_id}_{other_secret}"  # a real secret, but not this key's
    for bad in (flipped, forged, "hk_" + "0" * 12 + "_" + "A" * 40, "Bearer x", "", "hk_" * 500):
        with pytest.raises(InvalidCredentials) as caught:
            await accounts.authenticate_api_key(bad, 0)
        assert caught.value.http_status == 401
        assert issued.key not in str(caught.value)


async def test_a_verified_key_is_served_from_the_cache_until_it_expires(
    accounts: Accounts, hasher: CountingHasher
) -> None:
    _, issued = await accounts.create("acme", T0)
    for now in (0.0, 1.0, 59.9):
        await accounts.authenticate_api_key(issued.key, now)
    assert hasher.verifications == 1
    await accounts.authenticate_api_key(issued.key, 60.0)
    assert hasher.verifications == 2


async def test_a_wrong_secret_is_never_cached(accounts: Accounts, hasher: CountingHasher) -> None:
    _, issued = await accounts.create("acme", T0)
    wrong = issued.key[:-1] + ("a" if issued.key[-1] != "a" else "b")
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate_api_key(wrong, 0)
    assert hasher.verifications == 3


async def test_a_revoked_key_is_refused_even_when_cached(accounts: Accounts) -> None:
    _, issued = await accounts.create("acme", T0)
    _, kept = await accounts.create("kept", T0)
    await accounts.authenticate_api_key(issued.key, 0)
    await accounts.authenticate_api_key(kept.key, 0)
    assert await accounts.revoke_api_key(issued.key_id, T0 + 1)
    with pytest.raises(InvalidCredentials, match="revoked"):
        await accounts.authenticate_api_key(issued.key, 1)
    assert (await accounts.authenticate_api_key(kept.key, 1)).credential == kept.key_id


async def test_a_verification_racing_a_revocation_is_not_cached(
    accounts: Accounts, hasher: CountingHasher
) -> None:
    _, issued = await accounts.create("acme", T0)
    hasher.hold = threading.Event()
    racing = asyncio.create_task(accounts.authenticate_api_key(issued.key, 0))
    assert await asyncio.to_thread(hasher.entered.wait, 10)  # it read the key: not revoked yet
    await accounts.revoke_api_key(issued.key_id, T0 + 1)
    hasher.hold.set()
    await racing  # it began before the revocation; what matters is what comes after
    with pytest.raises(InvalidCredentials):
        await accounts.authenticate_api_key(issued.key, 1)


async def test_a_revocation_by_another_process_shows_when_the_cache_entry_expires(
    store: SQLiteStore, accounts: Accounts
) -> None:
    """The documented trade-off: another process's revocation waits for ``cache_ttl``."""
    _, issued = await accounts.create("acme", T0)
    await accounts.authenticate_api_key(issued.key, 0)
    await store.revoke_api_key(issued.key_id, T0 + 1)  # e.g. the CLI, elsewhere
    assert (await accounts.authenticate_api_key(issued.key, 59)).credential == issued.key_id
    with pytest.raises(InvalidCredentials, match="revoked"):
        await accounts.authenticate_api_key(issued.key, 60)


async def test_the_cache_is_bounded(store: SQLiteStore, hasher: CountingHasher) -> None:
    service = Accounts(store, hasher=hasher, cache_size=2)
    try:
        keys = [(await service.create(f"a{n}", T0))[1] for n in range(3)]
        for key in keys:
            await service.authenticate_api_key(key.key, 0)
        assert hasher.verifications == 3
        await service.authenticate_api_key(keys[2].key, 0)
        assert hasher.verifications == 3
        await service.authenticate_api_key(keys[0].key, 0)  # evicted: verified again
        assert hasher.verifications == 4
    finally:
        service.close()


def test_cache_keys_cannot_be_confused_by_separators() -> None:
    cache = VerifiedCache(60, 10)
    assert cache.digest(b"smpp", "a\0b", "c") != cache.digest(b"smpp", "a", "b\0c")
    assert cache.digest(b"smpp", "ab", "c") != cache.digest(b"api", "ab", "c")
    assert VerifiedCache(60, 10).digest(b"api", "k") != cache.digest(b"api", "k")  # per process


# -- SMPP logins ---------------------------------------------------------------------


async def test_smpp_passwords_are_eight_characters_and_stored_hashed(
    store: SQLiteStore, accounts: Accounts
) -> None:
    account, _ = await accounts.create("acme", T0)
    issued = await accounts.add_smpp(account.id, "acme_trx", T0)
    assert len(issued.password) == DEFAULT_SMPP_PASSWORD_LENGTH == 8
    assert set(issued.password) <= set(string.ascii_letters + string.digits)
    principal = await accounts.authenticate_smpp("acme_trx", issued.password, 0)
    assert principal == Principal(account.id, "acme_trx", T0)  # issued at T0
    record = await store.get_smpp_credential("acme_trx")
    assert record is not None and record.password_hash.startswith("$argon2id$")
    assert issued.password not in record.password_hash
    assert issued.password.encode() not in await _stored_bytes(store)


async def test_longer_smpp_passwords_can_be_issued_and_verified(accounts: Accounts) -> None:
    account, _ = await accounts.create("acme", T0)
    issued = await accounts.add_smpp(account.id, "long", T0, password_length=24)
    assert len(issued.password) == 24
    assert (await accounts.authenticate_smpp("long", issued.password, 0)).account_id == account.id
    with pytest.raises(InvalidCredentials):  # what a truncating client (smpplib) would send
        await accounts.authenticate_smpp("long", issued.password[:8], 0)


async def test_failed_binds_carry_the_smpp_status_to_answer(accounts: Accounts) -> None:
    account, _ = await accounts.create("acme", T0)
    issued = await accounts.add_smpp(account.id, "acme", T0)
    wrong = "x" + issued.password[1:] if issued.password[0] != "x" else "y" + issued.password[1:]
    # One answer whatever was wrong: an unknown system_id must not be told apart
    # from a wrong password, or anyone could list the system_ids (issue 8).
    cases = [
        ("acme", wrong, SmppBindStatus.ESME_RINVPASWD),
        ("nobody", issued.password, SmppBindStatus.ESME_RINVPASWD),
        ("acme", "p" * (MAX_SMPP_PASSWORD_LENGTH + 1), SmppBindStatus.ESME_RINVPASWD),
        ("", issued.password, SmppBindStatus.ESME_RINVPASWD),
        ("s" * 16, issued.password, SmppBindStatus.ESME_RINVPASWD),
    ]
    for system_id, password, status in cases:
        with pytest.raises(InvalidCredentials) as caught:
            await accounts.authenticate_smpp(system_id, password, 0)
        assert caught.value.smpp_status is status, system_id
        assert issued.password not in str(caught.value)


async def test_removing_an_smpp_login_ends_it_even_when_cached(accounts: Accounts) -> None:
    account, _ = await accounts.create("acme", T0)
    issued = await accounts.add_smpp(account.id, "acme", T0)
    await accounts.authenticate_smpp("acme", issued.password, 0)
    assert await accounts.remove_smpp("acme")
    with pytest.raises(InvalidCredentials):
        await accounts.authenticate_smpp("acme", issued.password, 1)


async def test_bad_names_are_refused_before_anything_is_stored(
    store: SQLiteStore, accounts: Accounts
) -> None:
    for name in ("", "-lead", "has space", "x" * 65, "naïve"):
        with pytest.raises(InvalidName):
            await accounts.create(name, T0)
    assert await store.list_accounts() == ()
    account, _ = await accounts.create("acme", T0)
    for system_id in ("", "s" * 16, "has space", "tab\t"):
        with pytest.raises(InvalidName):
            await accounts.add_smpp(account.id, system_id, T0)
    for length in (DEFAULT_SMPP_PASSWORD_LENGTH - 1, MAX_SMPP_PASSWORD_LENGTH + 1):
        with pytest.raises(InvalidName):
            await accounts.add_smpp(account.id, "acme", T0, password_length=length)
    assert await store.list_smpp_credentials(account.id) == ()


async def test_issued_credentials_never_show_their_secret_in_repr(accounts: Accounts) -> None:
    account, issued = await accounts.create("acme", T0)
    login = await accounts.add_smpp(account.id, "acme", T0)
    assert issued.key not in repr(issued) and issued.key_id in repr(issued)
    assert login.password not in repr(login) and "acme" in repr(login)
    assert "hash" not in repr(account).lower()


# -- webhook secrets -----------------------------------------------------------------


def test_webhook_secrets_are_derived_from_a_private_master_key(tmp_path: Path) -> None:
    key = load_master_key(tmp_path / "data")
    assert stat.S_IMODE((tmp_path / "data" / "master.key").stat().st_mode) == 0o600
    assert load_master_key(tmp_path / "data", create=False) == key  # made once, then reused
    account = Account(7, "acme", T0, 1.0, 1, None, 1)
    secret = webhook_secret(key, account.id, account.webhook_secret_version)
    assert secret.startswith("whsec_") and len(secret) == 6 + 43
    assert secret == webhook_secret(key, 7, 1)
    assert len({secret, webhook_secret(key, 7, 2), webhook_secret(key, 8, 1),
                webhook_secret(bytes(32), 7, 1)}) == 4  # fmt: skip
    with pytest.raises(FileNotFoundError):
        load_master_key(tmp_path / "elsewhere", create=False)
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "master.key").write_bytes(b"too short")
    with pytest.raises(ValueError, match="not a herald master key"):
        load_master_key(tmp_path / "short")


async def test_a_login_removed_or_reset_elsewhere_stops_working_at_once(
    store: SQLiteStore, accounts: Accounts
) -> None:
    # Another process (herald accounts) removes or resets the login: this one's
    # cache of verified passwords must not keep it alive (issue 8 item 4).
    other = Accounts(store, hasher=CountingHasher())
    try:
        account, _ = await accounts.create("acme", T0)
        issued = await accounts.add_smpp(account.id, "acme", T0)
        assert (await accounts.authenticate_smpp("acme", issued.password, 0)).account_id
        await other.remove_smpp("acme")
        renewed = await other.add_smpp(account.id, "acme", T0 + 5)  # a reset
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate_smpp("acme", issued.password, 1)  # the old one
        principal = await accounts.authenticate_smpp("acme", renewed.password, 2)
        assert principal.issued_at == T0 + 5
        await other.remove_smpp("acme")
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate_smpp("acme", renewed.password, 3)
    finally:
        other.close()
