"""Store contract: accounts and the credential records (hashes) they own."""

from __future__ import annotations

import dataclasses

import pytest

from herald.store import AccountExists, CredentialExists, Store, UnknownAccount

from .conftest import T0


async def test_accounts_are_created_found_and_listed(store: Store) -> None:
    acme = await store.create_account(
        "acme", T0, rate_limit=50.0, bind_limit=4, callback_url="https://acme.test/h"
    )
    beta = await store.create_account("beta", T0 + 1, rate_limit=5.0, bind_limit=1)
    assert acme.id != beta.id
    assert await store.get_account(acme.id) == acme
    assert await store.get_account_by_name("beta") == beta
    assert await store.list_accounts() == (acme, beta)
    assert (acme.rate_limit, acme.bind_limit, acme.callback_url) == (50.0, 4, "https://acme.test/h")
    assert acme.webhook_secret_version == 1
    with pytest.raises(AccountExists):
        await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    with pytest.raises(UnknownAccount):
        await store.get_account(acme.id + beta.id)
    with pytest.raises(UnknownAccount):
        await store.get_account_by_name("gamma")


async def test_account_settings_can_change(store: Store) -> None:
    acme = await store.create_account("acme", T0, rate_limit=50.0, bind_limit=4)
    changed = dataclasses.replace(
        acme, rate_limit=7.5, bind_limit=2, callback_url="https://x.test", webhook_secret_version=2
    )
    await store.update_account(changed)
    assert await store.get_account(acme.id) == changed
    with pytest.raises(UnknownAccount):
        await store.update_account(dataclasses.replace(acme, id=acme.id + 100))


async def test_api_key_records_can_be_revoked_once(store: Store) -> None:
    acme = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    await store.add_api_key(acme.id, "k1", "$argon2id$hash-1", T0)
    await store.add_api_key(acme.id, "k2", "$argon2id$hash-2", T0 + 1)
    key = await store.get_api_key("k1")
    assert key is not None and (key.account_id, key.key_hash, key.revoked) == (
        acme.id, "$argon2id$hash-1", False,
    )  # fmt: skip
    assert await store.revoke_api_key("k1", T0 + 5)
    assert not await store.revoke_api_key("k1", T0 + 6)
    assert not await store.revoke_api_key("nope", T0 + 6)
    revoked = await store.get_api_key("k1")
    assert revoked is not None and revoked.revoked_at == T0 + 5
    assert [k.key_id for k in await store.list_api_keys(acme.id)] == ["k1", "k2"]
    assert await store.get_api_key("k3") is None
    with pytest.raises(CredentialExists):
        await store.add_api_key(acme.id, "k2", "$argon2id$other", T0)
    with pytest.raises(UnknownAccount):
        await store.add_api_key(acme.id + 1, "k9", "$argon2id$other", T0)


async def test_a_system_id_belongs_to_one_account(store: Store) -> None:
    acme = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    beta = await store.create_account("beta", T0, rate_limit=1.0, bind_limit=1)
    await store.add_smpp_credential(acme.id, "acme_tx", "$argon2id$p", T0)
    with pytest.raises(CredentialExists):
        await store.add_smpp_credential(beta.id, "acme_tx", "$argon2id$q", T0)
    with pytest.raises(UnknownAccount):
        await store.add_smpp_credential(beta.id + 1, "x", "$argon2id$q", T0)
    cred = await store.get_smpp_credential("acme_tx")
    assert cred is not None and (cred.account_id, cred.password_hash) == (acme.id, "$argon2id$p")
    assert [c.system_id for c in await store.list_smpp_credentials(acme.id)] == ["acme_tx"]
    assert await store.list_smpp_credentials(beta.id) == ()
    assert await store.remove_smpp_credential("acme_tx")
    assert not await store.remove_smpp_credential("acme_tx")
    assert await store.get_smpp_credential("acme_tx") is None


async def test_records_never_show_their_hash_in_repr(store: Store) -> None:
    acme = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    await store.add_api_key(acme.id, "k1", "$argon2id$v=19$SECRETHASH", T0)
    await store.add_smpp_credential(acme.id, "sys", "$argon2id$v=19$SECRETHASH", T0)
    key = await store.get_api_key("k1")
    cred = await store.get_smpp_credential("sys")
    assert "SECRETHASH" not in repr(key) and "k1" in repr(key)
    assert "SECRETHASH" not in repr(cred) and "sys" in repr(cred)
