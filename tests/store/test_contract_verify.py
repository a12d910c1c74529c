"""Store contract: verifications (their sends, the per-number limit, checks) and conversions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from herald.store import (
    Account,
    Conflict,
    MessageNotFound,
    NotFound,
    SendLimitExceeded,
    Store,
    Verification,
    VerificationStatus,
)

from .conftest import T0, MessageFactory

HOUR = 3600.0
SALT = b"s" * 16


def _verification(account: Account, n: int = 0, *, at: float = T0,
                  to: str = "+14155552671") -> Verification:  # fmt: skip
    return Verification(
        f"ver{n:04d}", account.id, to, "login", "Acme", "en", 6, VerificationStatus.PENDING,
        at, at + 600, SALT, bytes([n % 256]) * 32, client={"ip": "192.0.2.1"},
    )  # fmt: skip


async def test_start_and_read_back(store: Store, account: Account) -> None:
    v = _verification(account)
    await store.start_verification(v, "msg-1", window=HOUR, limit=5)
    assert await store.get_verification(v.id, account.id) == v
    sends = await store.verification_sends(v.id, account.id)
    assert [(s.attempt, s.message_id, s.sent_at) for s in sends] == [(1, "msg-1", T0)]
    with pytest.raises(NotFound):
        await store.get_verification(v.id, account.id + 1)
    assert await store.verification_sends(v.id, account.id + 1) == ()
    with pytest.raises(Conflict):
        await store.start_verification(v, "msg-2", window=HOUR, limit=5)


@pytest.mark.parametrize(
    ("earlier", "spacing", "limit", "refused"),
    [
        (4, 60.0, 5, False),  # the fifth in the hour is allowed
        (5, 60.0, 5, True),  # the sixth is not
        (5, 900.0, 5, False),  # the first of five left the window (sent 75 min ago)
        (1, 10.0, 1, True),
    ],
)
async def test_sends_per_number_per_window(
    store: Store, account: Account, earlier: int, spacing: float, limit: int, refused: bool
) -> None:
    start = T0 - earlier * spacing
    for n in range(earlier):
        await store.start_verification(_verification(account, n, at=start + n * spacing),
                                       f"m{n}", window=HOUR, limit=limit)  # fmt: skip
    other = _verification(account, 99, at=T0, to="+14155550000")  # another number counts apart
    await store.start_verification(other, "other", window=HOUR, limit=limit)
    new = _verification(account, 50, at=T0)
    if not refused:
        await store.start_verification(new, "new", window=HOUR, limit=limit)
        return
    with pytest.raises(SendLimitExceeded) as info:
        await store.start_verification(new, "new", window=HOUR, limit=limit)
    assert info.value.limit == limit
    assert info.value.retry_at == start + HOUR  # when the oldest leaves the window
    with pytest.raises(NotFound):  # nothing written
        await store.get_verification(new.id, account.id)


async def test_resend_replaces_the_code_and_undo_restores_it(
    store: Store, account: Account
) -> None:
    v = _verification(account)
    await store.start_verification(v, "m1", window=HOUR, limit=5)
    new = await store.resend_verification(
        v.id, account.id, salt=b"t" * 16, code_hash=b"h" * 32, expires_at=T0 + 700,
        message_id="m2", now=T0 + 100, window=HOUR, limit=5)  # fmt: skip
    assert (new.sends, new.code_hash, new.expires_at) == (2, b"h" * 32, T0 + 700)
    assert await store.get_verification(v.id, account.id) == new
    assert [s.message_id for s in await store.verification_sends(v.id, account.id)] == [
        "m1", "m2"]
    await store.undo_verification_send(v.id, 2, v)
    assert await store.get_verification(v.id, account.id) == v
    assert len(await store.verification_sends(v.id, account.id)) == 1
    await store.undo_verification_send(v.id, 1, None)
    with pytest.raises(NotFound):
        await store.get_verification(v.id, account.id)


async def test_a_resend_counts_toward_the_number_limit(store: Store, account: Account) -> None:
    v = _verification(account)
    await store.start_verification(v, "m1", window=HOUR, limit=2)
    await store.resend_verification(
        v.id, account.id, salt=SALT, code_hash=b"h" * 32, expires_at=T0 + 700,
        message_id="m2", now=T0 + 60, window=HOUR, limit=2)  # fmt: skip
    before = await store.get_verification(v.id, account.id)
    with pytest.raises(SendLimitExceeded) as info:
        await store.resend_verification(
            v.id, account.id, salt=SALT, code_hash=b"i" * 32, expires_at=T0 + 800,
            message_id="m3", now=T0 + 120, window=HOUR, limit=2)  # fmt: skip
    assert info.value.retry_at == T0 + HOUR
    assert await store.get_verification(v.id, account.id) == before  # nothing written
    assert len(await store.verification_sends(v.id, account.id)) == 2


@pytest.mark.parametrize("status", ["approved", "expired"])
async def test_resend_needs_a_pending_verification(
    store: Store, account: Account, status: str
) -> None:
    v = _verification(account)
    await store.start_verification(v, "m1", window=HOUR, limit=5)
    now = T0 + 10
    if status == "approved":
        await store.record_check(v.id, account.id, sends=1, matched=True, now=now,
                                 max_checks=5)  # fmt: skip
    else:
        now = v.expires_at
    with pytest.raises(Conflict):
        await store.resend_verification(
            v.id, account.id, salt=SALT, code_hash=b"h" * 32, expires_at=now + 600,
            message_id="m2", now=now, window=HOUR, limit=5)  # fmt: skip


@pytest.mark.parametrize(
    ("checks", "sends", "matched", "dt", "status", "checks_after"),
    [
        (0, 1, True, 10, VerificationStatus.APPROVED, 1),
        (0, 1, False, 10, VerificationStatus.PENDING, 1),
        (4, 1, True, 10, VerificationStatus.APPROVED, 5),  # the last allowed check
        (5, 1, True, 10, VerificationStatus.PENDING, 5),  # too many: not counted
        (0, 1, True, 600, VerificationStatus.EXPIRED, 0),  # at expires_at
        (0, 2, True, 10, VerificationStatus.PENDING, 0),  # stale: a resend since
    ],
)
async def test_record_check(
    store: Store, account: Account, checks: int, sends: int, matched: bool, dt: float,
    status: VerificationStatus, checks_after: int,
) -> None:  # fmt: skip
    v = replace(_verification(account), checks=checks)
    await store.start_verification(v, "m1", window=HOUR, limit=5)
    after = await store.record_check(v.id, account.id, sends=sends, matched=matched,
                                     now=T0 + dt, max_checks=5)  # fmt: skip
    assert after.status is status
    assert after.checks == checks_after
    assert await store.get_verification(v.id, account.id) == after
    with pytest.raises(NotFound):
        await store.record_check(v.id, account.id + 1, sends=1, matched=True, now=T0,
                                 max_checks=5)  # fmt: skip


async def test_an_approved_verification_stays_approved(store: Store, account: Account) -> None:
    v = _verification(account)
    await store.start_verification(v, "m1", window=HOUR, limit=5)
    await store.record_check(v.id, account.id, sends=1, matched=True, now=T0, max_checks=5)
    after = await store.record_check(v.id, account.id, sends=1, matched=False, now=T0 + 1,
                                     max_checks=5)  # fmt: skip
    assert (after.status, after.checks) == (VerificationStatus.APPROVED, 1)


async def test_conversions(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    m = make_message()
    await store.accept([m])
    assert await store.get_conversion(m.id, account.id) is None
    assert await store.record_conversion(m.id, account.id, T0 + 5) == T0 + 5
    assert await store.record_conversion(m.id, account.id, T0 + 9) == T0 + 5  # the first kept
    assert await store.get_conversion(m.id, account.id) == T0 + 5
    assert await store.get_conversion(m.id, account.id + 1) is None
    with pytest.raises(MessageNotFound):
        await store.record_conversion(m.id, account.id + 1, T0)
    with pytest.raises(MessageNotFound):
        await store.record_conversion("nope", account.id, T0)
