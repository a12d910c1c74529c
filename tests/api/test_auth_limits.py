"""API keys, the failed-login throttle, rate limits and Idempotency-Key."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Literal

import httpx
import pytest
from argon2 import PasswordHasher

from herald.accounts import Accounts
from herald.api import ApiLimits
from herald.config import HttpConfig
from herald.store import MessageFilter

from .conftest import Api, ApiFactory, message


class CountingHasher(PasswordHasher):
    """Real argon2id with cheap parameters, counting verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.verifications += 1
        return super().verify(hash, password)


def _client(api: Api, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app, client=(address, 50000)),
        base_url="http://herald.test",
    )


def _wrong(key: str, n: int = 0) -> str:
    """The same key id with another secret (a real verification, and a failure)."""
    return key[:-4] + f"{n:04d}"


async def _count(api: Api) -> int:
    return len((await api.store.list_messages(MessageFilter(api.account.id))).messages)


# -- authentication ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "presented"),
    [
        (None, False),
        ("Basic dXNlcjpwdw==", False),
        ("Bearer", False),
        ("Bearer hk_not_a_key", True),
        ("Bearer hk_aaaaaaaaaaaa_" + "A" * 40, True),  # well-formed, no such key
    ],
)
async def test_missing_or_invalid_key_is_401(
    api: Api, header: str | None, presented: bool
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await api.client.post("/v1/messages", json=message(), headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:herald:problem:unauthorized"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="herald"')
    assert ('error="invalid_token"' in challenge) is presented
    assert (await api.send(message())).status_code == 202  # the right key still works


async def test_wrong_secret_and_revoked_key(api: Api) -> None:
    wrong = {"Authorization": f"Bearer {_wrong(api.key)}"}
    response = await api.client.get("/v1/messages", headers=wrong)
    assert response.status_code == 401
    key_id = api.key.split("_")[1]
    await api.accounts.revoke_api_key(key_id, api.clock())
    assert (await api.send(message())).status_code == 401
    assert await _count(api) == 0


async def test_scheme_is_case_insensitive(api: Api) -> None:
    response = await api.client.post(
        "/v1/messages", json=message(), headers={"Authorization": f"bearer  {api.key} "}
    )
    assert response.status_code == 202


async def test_failed_logins_are_throttled_per_address(make_api: ApiFactory, store: Any) -> None:
    hasher = CountingHasher()
    verifier = Accounts(store, hasher=hasher)
    try:
        api: Api = await make_api(accounts=verifier)
        attacker, honest = _client(api, "10.0.0.66"), _client(api, "10.0.0.7")
        good = {"Authorization": f"Bearer {api.key}"}
        async with attacker, honest:
            answers = await asyncio.gather(*(
                attacker.post("/v1/messages", json=message(),
                              headers={"Authorization": f"Bearer {_wrong(api.key, n)}"})
                for n in range(50)
            ))  # fmt: skip
            codes = [r.status_code for r in answers]
            assert (codes.count(401), codes.count(429)) == (10, 40)  # the burst is 10
            assert hasher.verifications == 10  # the flood cost ten argon2 runs, not fifty
            refused = answers[codes.index(429)]
            assert refused.json()["type"] == "urn:herald:problem:too-many-failed-logins"
            assert int(refused.headers["retry-after"]) >= 1
            # Even the right key is refused from that address for now, at no cost...
            again = await attacker.post("/v1/messages", json=message(), headers=good)
            assert again.status_code == 429 and hasher.verifications == 10
            # ...while an honest client elsewhere logs in at once.
            first = await honest.post("/v1/messages", json=message(), headers=good)
            assert first.status_code == 202
            api.clock.advance(1.0)  # one failure's worth of tokens comes back per second
            later = await attacker.post("/v1/messages", json=message(), headers=good)
            assert later.status_code == 202
    finally:
        verifier.close()


async def test_concurrent_requests_with_one_key_share_one_verification(
    make_api: ApiFactory, store: Any
) -> None:
    hasher = CountingHasher()
    verifier = Accounts(store, hasher=hasher)
    try:
        api: Api = await make_api(accounts=verifier)
        answers = await asyncio.gather(*(api.send(message()) for _ in range(30)))
        assert [r.status_code for r in answers] == [202] * 30
        assert hasher.verifications == 1
        other = _client(api, "10.0.0.9")
        wrong = {"Authorization": f"Bearer {_wrong(api.key)}"}
        async with other:
            answers = await asyncio.gather(
                *(other.get("/v1/messages", headers=wrong) for _ in range(30))
            )
        assert {r.status_code for r in answers} == {401}
        assert hasher.verifications == 2  # one more for thirty copies of a wrong key
    finally:
        verifier.close()


# -- rate limits ---------------------------------------------------------------------


async def test_message_rate_limit_with_retry_after(make_api: ApiFactory) -> None:
    api: Api = await make_api(rate_limit=2.0)  # burst: 2 s of traffic = 4 messages
    for _ in range(4):
        assert (await api.send(message())).status_code == 202
    refused = await api.send(message())
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:herald:problem:rate-limited"
    assert refused.headers["retry-after"] == "1"
    # Test messages and refused messages do not count.
    assert (await api.send(message(test=True))).status_code == 200
    api.clock.advance(0.5)
    assert (await api.send(message())).status_code == 202
    assert (await api.send(message())).status_code == 429
    api.clock.advance(0.5)
    assert (await api.send(message(to="bad"))).status_code == 422
    assert (await api.send(message())).status_code == 202  # the refused one was refunded
    assert await _count(api) == 6


async def test_a_batch_counts_its_messages(make_api: ApiFactory) -> None:
    api: Api = await make_api(rate_limit=2.0)
    batch = {"messages": [message() for _ in range(10)]}
    response = await api.client.post("/v1/messages/batch", json=batch, headers=api.auth)
    assert response.status_code == 202  # a full bucket admits a batch larger than the burst
    refused = await api.send(message())
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "4"  # 6 messages of debt, then one: (6+1)/2 s
    api.clock.advance(3.5)
    assert (await api.send(message())).status_code == 202


async def test_request_rate_limit_applies_to_reads(make_api: ApiFactory) -> None:
    api: Api = await make_api(config=HttpConfig(default_account_rate=1.0))  # burst 2
    assert (await api.client.get("/v1/messages", headers=api.auth)).status_code == 200
    assert (await api.client.get("/v1/messages", headers=api.auth)).status_code == 200
    refused = await api.client.get("/v1/messages", headers=api.auth)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    api.clock.advance(1.0)
    assert (await api.client.get("/v1/messages", headers=api.auth)).status_code == 200


# -- idempotency ------------------------------------------------------------------


async def test_idempotent_replay_and_mismatch(api: Api) -> None:
    first = await api.send(message(), **{"Idempotency-Key": "order-1"})
    assert first.status_code == 202
    api.clock.advance(3600)
    again = await api.send(message(), **{"Idempotency-Key": "order-1"})
    assert (again.status_code, again.content) == (202, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert await _count(api) == 1 and len(api.accepted) == 1

    other = await api.send(message(text="another"), **{"Idempotency-Key": "order-1"})
    assert other.status_code == 422
    body = other.json()
    assert body["type"] == "urn:herald:problem:idempotency-mismatch"
    assert body["errors"] == [{"field": "Idempotency-Key", "in": "header", "code": "mismatch",
                               "detail": "was used with another body"}]  # fmt: skip
    assert await _count(api) == 1

    api.clock.advance(24 * 3600)  # the record has expired: the key is free again
    later = await api.send(message(), **{"Idempotency-Key": "order-1"})
    assert later.status_code == 202 and later.json()["id"] != first.json()["id"]
    assert await _count(api) == 2


async def test_concurrent_requests_with_one_key_store_one_message(api: Api) -> None:
    answers = await asyncio.gather(
        *(api.send(message(), **{"Idempotency-Key": "k"}) for _ in range(8))
    )
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["id"] for r in answers}) == 1
    assert await _count(api) == 1


async def test_idempotent_batch_replay(api: Api) -> None:
    batch = {"messages": [message(), message(to="nope")]}
    headers = {**api.auth, "Idempotency-Key": "batch-1"}
    first = await api.client.post("/v1/messages/batch", json=batch, headers=headers)
    again = await api.client.post("/v1/messages/batch", json=batch, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.content == again.content
    assert await _count(api) == 1


@pytest.mark.parametrize("key", ["k" * 256, "tab\there"])
async def test_malformed_idempotency_key(api: Api, key: str) -> None:
    response = await api.send(message(), **{"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await _count(api) == 0


async def test_answer_too_large_to_keep_for_replay_stores_nothing(make_api: ApiFactory) -> None:
    api: Api = await make_api(limits=ApiLimits(max_idempotent_response_octets=64))
    response = await api.send(message(), **{"Idempotency-Key": "big"})
    assert response.status_code == 413
    assert response.json()["type"] == "urn:herald:problem:payload-too-large"
    assert await _count(api) == 0
    assert (await api.send(message())).status_code == 202  # without the key it is fine


async def test_failed_logins_and_the_lockout_are_logged_at_warning_without_secrets(
    make_api: ApiFactory, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "herald.api")
    verifier = Accounts(store, hasher=CountingHasher())
    try:
        api: Api = await make_api(accounts=verifier)
        attacker = _client(api, "10.0.0.66")
        async with attacker:
            for n in range(14):
                await attacker.get("/v1/messages",
                                   headers={"Authorization": f"Bearer {_wrong(api.key, n)}"})
    finally:
        verifier.close()
    failed = [r for r in caplog.records if "authentication failed from 10.0.0.66" in r.message]
    assert len(failed) == 10 and all(r.levelno == logging.WARNING for r in failed)
    locked = [r for r in caplog.records if "from 10.0.0.66 locked out" in r.message]
    assert len(locked) == 1 and locked[0].levelno == logging.WARNING  # once, not per request
    secret = api.key.split("_")[2]
    assert not any(secret[:-4] in r.message for r in caplog.records)
