"""Store contract: admin keys and the audit log."""

from __future__ import annotations

import pytest

from herald.store import (
    AdminKeyRecord,
    AdminScope,
    AuditEntry,
    AuditFilter,
    CredentialExists,
    InvalidRecord,
    OverviewMinute,
    Store,
)

from .conftest import T0


def _key(key_id: str, name: str, scope: AdminScope = AdminScope.WRITE) -> AdminKeyRecord:
    return AdminKeyRecord(key_id, name, scope, f"$argon2id$hash-of-{key_id}", T0)


async def test_admin_keys_are_stored_listed_and_revoked(store: Store) -> None:
    assert await store.list_admin_keys() == ()
    assert await store.get_admin_key("k1") is None
    await store.add_admin_key(_key("k1", "ops"))
    await store.add_admin_key(_key("k2", "monitor", AdminScope.READ))
    assert await store.get_admin_key("k2") == _key("k2", "monitor", AdminScope.READ)
    assert [k.name for k in await store.list_admin_keys()] == ["ops", "monitor"]
    assert await store.revoke_admin_key("k1", T0 + 5)
    assert not await store.revoke_admin_key("k1", T0 + 6)  # revoked already
    assert not await store.revoke_admin_key("nope", T0 + 6)
    revoked = await store.get_admin_key("k1")
    assert revoked is not None and revoked.revoked and revoked.revoked_at == T0 + 5


async def test_an_active_name_is_unique_and_free_again_once_revoked(store: Store) -> None:
    await store.add_admin_key(_key("k1", "ops"))
    with pytest.raises(CredentialExists):
        await store.add_admin_key(_key("k2", "ops"))
    with pytest.raises(CredentialExists):
        await store.add_admin_key(_key("k1", "other"))  # the id is taken
    await store.revoke_admin_key("k1", T0)
    await store.add_admin_key(_key("k2", "ops"))
    assert [(k.key_id, k.revoked) for k in await store.list_admin_keys()] == [
        ("k1", True), ("k2", False)]


async def test_audit_entries_come_back_newest_first_with_their_changes(store: Store) -> None:
    assert await store.last_audit_seq() == 0
    first = await store.record_audit(AuditEntry(T0, "cli:root", "account.create",
                                                "account:acme", {"rate_limit": 100.0}))
    second = await store.record_audit(AuditEntry(
        T0 + 1, "key:ops", "account.update", "account:acme",
        {"rate_limit": float("inf"), "callback_url": None, "events": ["delivered"]}))
    third = await store.record_audit(AuditEntry(T0 + 2, "key:ops", "api_key.issue",
                                                "account:beta", {"key_id": "abc", "key": "issued"}))
    assert first < second < third == await store.last_audit_seq()
    entries = await store.list_audit(AuditFilter())
    assert [e.seq for e in entries] == [third, second, first]
    assert entries[1] == AuditEntry(
        T0 + 1, "key:ops", "account.update", "account:acme",
        {"rate_limit": "unlimited", "callback_url": None, "events": ["delivered"]}, second)


async def test_audit_filters_by_time_target_and_pages_by_cursor(store: Store) -> None:
    seqs = [await store.record_audit(AuditEntry(T0 + i, "cli:root", "account.update",
                                                target, {"n": i}))
            for i, target in enumerate(["account:a", "account:b", "account:a", "numbers:plan",
                                        "account:a_b"])]
    since = await store.list_audit(AuditFilter(since=T0 + 2))
    assert [e.seq for e in since] == seqs[:1:-1]
    by_target = await store.list_audit(AuditFilter(target="account:a"))
    assert [e.changes["n"] for e in by_target] == [2, 0]
    prefixed = await store.list_audit(AuditFilter(target="account:*"))
    assert [e.changes["n"] for e in prefixed] == [4, 2, 1, 0]
    # '_' in a prefix is a character, not SQL's wildcard
    underscore = await store.list_audit(AuditFilter(target="account:a_*"))
    assert [e.changes["n"] for e in underscore] == [4]
    page1 = await store.list_audit(AuditFilter(limit=2))
    page2 = await store.list_audit(AuditFilter(limit=2, before=page1[-1].seq))
    page3 = await store.list_audit(AuditFilter(limit=2, before=page2[-1].seq))
    assert [e.seq for e in page1 + page2 + page3] == seqs[::-1]


def test_an_audit_entry_never_holds_a_secret() -> None:
    with pytest.raises(InvalidRecord) as exc:
        AuditEntry(T0, "cli:root", "smpp.reset", "account:acme", {"password": "s3cret"})
    assert exc.value.field == "changes.password" and "s3cret" not in str(exc.value)
    with pytest.raises(InvalidRecord):
        AuditEntry(T0, "cli:root", "api_key.issue", "account:acme", {"key": "hk_x_y"})
    AuditEntry(T0, "cli:root", "smpp.reset", "account:acme", {"password": "reset"})
    with pytest.raises(InvalidRecord):
        AuditEntry(T0, "", "account.update", "account:acme")
    with pytest.raises(InvalidRecord):
        AuditFilter(limit=0)


async def test_the_overviews_day_points_are_kept_for_a_day(store: Store) -> None:
    day = 86400.0
    for k in range(4):  # a point an hour, the last one 25 hours after the first
        at = T0 + (0, 3600, 7200, 25 * 3600)[k]
        await store.record_overview_minute(OverviewMinute(at, 60.0, 10.0 * k, 5.0, 4.0, 1.0), day)
    kept = await store.overview_minutes(T0)
    assert [(m.at - T0, m.accepted) for m in kept] == [(3600, 10.0), (7200, 20.0),
                                                       (25 * 3600, 30.0)]  # the first: gone
    await store.record_overview_minute(OverviewMinute(T0 + 7200, 30.0, 99.0, 0, 0, 0), day)
    (replaced, _) = await store.overview_minutes(T0 + 7200)  # one point per time
    assert (replaced.seconds, replaced.accepted) == (30.0, 99.0)
    assert await store.overview_minutes(T0 + 26 * 3600) == ()
