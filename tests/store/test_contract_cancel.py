"""Store contract: a customer cancels or replaces a message that has not gone out.

The rule under test: a change applies while the message is ``accepted`` or
``queued``, has no part upstream and no claim holds it; a claim and a change
are ordered by the store, so a message is never both handed to dispatch and
reported cancelled.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable

import pytest

from herald.store import (
    Account,
    ChangeOutcome,
    ChangeResult,
    Channel,
    InvalidRecord,
    MessageNotFound,
    Replacement,
    Reschedule,
    SegmentRecord,
    Source,
    Status,
    StatusEvents,
    StatusUpdate,
    Store,
)

from .conftest import T0, MessageFactory

HOOK = "https://example.test/hook"
APPLIED, IN_PROGRESS, TOO_LATE = (ChangeOutcome.APPLIED, ChangeOutcome.IN_PROGRESS,
                                  ChangeOutcome.TOO_LATE)


async def test_a_scheduled_message_is_cancelled_and_never_claimed(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    new = make_message(send_at=T0 + 600)
    await store.accept([new])
    result = await store.cancel(new.id, T0 + 5, account_id=account.id)
    assert result.outcome is APPLIED
    assert (result.message.status, result.message.done_at) == (Status.CANCELLED, T0 + 5)
    assert (await store.get_message(new.id)).status is Status.CANCELLED
    assert await store.claim(10, T0 + 700, lease=30) == ()
    again = await store.cancel(new.id, T0 + 6, account_id=account.id)
    assert (again.outcome, again.message.done_at) == (TOO_LATE, T0 + 5)


async def test_only_the_accounts_own_messages_can_be_cancelled(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    other = await store.create_account("other", T0, rate_limit=1.0, bind_limit=1)
    new = make_message()
    await store.accept([new])
    with pytest.raises(MessageNotFound):
        await store.cancel(new.id, T0 + 1, account_id=other.id)
    with pytest.raises(MessageNotFound):
        await store.cancel("nosuchid", T0 + 1, account_id=account.id)
    with pytest.raises(MessageNotFound):
        await store.replace(new.id, Replacement(registered_delivery=1), T0 + 1,
                            account_id=other.id)
    assert (await store.get_message(new.id)).status is Status.ACCEPTED


async def test_a_claimed_message_is_in_progress_until_its_claim_ends(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    a, b, c = make_message(), make_message(), make_message()
    await store.accept([a, b, c])
    claimed = {m.id: m for m in await store.claim(10, T0 + 10, lease=30)}
    for m in (a, b, c):
        result = await store.cancel(m.id, T0 + 11, account_id=account.id)
        assert (result.outcome, result.message.status) == (IN_PROGRESS, Status.QUEUED)
    await store.reschedule_many([
        Reschedule(a.id, claimed[a.id].attempt, T0 + 100, release=True),  # handed back
        Reschedule(b.id, claimed[b.id].attempt, T0 + 100),  # lease extended
    ])
    assert (await store.cancel(a.id, T0 + 12, account_id=account.id)).outcome is APPLIED
    assert (await store.cancel(b.id, T0 + 99, account_id=account.id)).outcome is IN_PROGRESS
    assert (await store.cancel(b.id, T0 + 100, account_id=account.id)).outcome is APPLIED
    # c's lease lapsed (a crashed holder): the store no longer counts it held
    assert (await store.cancel(c.id, T0 + 40, account_id=account.id)).outcome is APPLIED
    assert await store.claim(10, T0 + 1000, lease=30) == ()


async def test_a_single_reschedule_releases_the_claim(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    (m,) = await store.claim(1, T0 + 10, lease=30)
    await store.reschedule_many([Reschedule(m.id, m.attempt, T0 + 20, release=True)])
    assert (await store.cancel(m.id, T0 + 11, account_id=account.id)).outcome is APPLIED


async def test_a_message_sent_final_or_partly_upstream_is_too_late(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    sent, final, partly = make_message(), make_message(), make_message(segments=2)
    await store.accept([sent, final, partly])
    await store.update_statuses([StatusUpdate(sent.id, Status.SENT, T0 + 1)])
    await store.update_statuses([StatusUpdate(final.id, Status.REJECTED, T0 + 1, error_code=0x0B)])
    (m,) = [m for m in await store.claim(10, T0 + 2, lease=30) if m.id == partly.id]
    await store.record_segments([SegmentRecord(partly.id, 0, "up1", "U1", "u1", T0 + 3)])
    await store.reschedule_many([  # its other part: handed back
        Reschedule(partly.id, m.attempt, T0 + 4, release=True)])
    for new, status in ((sent, Status.SENT), (final, Status.REJECTED),
                        (partly, Status.QUEUED)):
        result = await store.cancel(new.id, T0 + 5, account_id=account.id)
        assert (result.outcome, result.message.status) == (TOO_LATE, status)
        change = Replacement(registered_delivery=1)
        replaced = await store.replace(new.id, change, T0 + 5, account_id=account.id)
        assert replaced.outcome is TOO_LATE


async def test_a_claim_and_a_cancel_never_both_win(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    """Claims and cancels of the same messages at once: every message is either
    handed to the claimer (and its cancel says in progress) or cancelled (and
    handed to nobody), never both, never neither."""
    messages = [make_message() for _ in range(60)]
    await store.accept(messages)
    now = T0 + 10
    order = list(messages)
    random.Random(9).shuffle(order)  # cancels in no particular order, claims oldest first
    calls: list[Awaitable[object]] = []
    for n, m in enumerate(order):
        if n % 6 == 0:
            calls.append(store.claim(3, now, lease=30))
        calls.append(store.cancel(m.id, now, account_id=account.id))
    done = await asyncio.gather(*calls)
    claimed = {m.id for r in done if isinstance(r, tuple) for m in r}
    outcomes = {r.message.id: r.outcome for r in done if isinstance(r, ChangeResult)}
    cancelled = {i for i, o in outcomes.items() if o is APPLIED}
    assert claimed and cancelled
    assert claimed.isdisjoint(cancelled)
    assert claimed | cancelled == {m.id for m in messages}
    assert all(outcomes[i] is IN_PROGRESS for i in claimed)
    stored = await store.get_messages([m.id for m in messages])
    assert {i for i, m in stored.items() if m.status is Status.CANCELLED} == cancelled


async def test_a_cancel_is_reported_by_webhook_and_smpp_receipt(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    asked = make_message(source=Source.SMPP, registered_delivery=1, callback_url=HOOK)
    failures_only = make_message(source=Source.SMPP, registered_delivery=2)
    silent = make_message(source=Source.SMPP, callback_url=HOOK,
                          callback_events=StatusEvents.SENT | StatusEvents.DELIVERED)
    test = make_message(callback_url=HOOK, registered_delivery=1, test=True)
    await store.accept([asked, failures_only, silent, test])
    for m in (asked, failures_only, silent, test):
        assert (await store.cancel(m.id, T0 + 5, account_id=account.id)).outcome is APPLIED
    hooks = await store.claim_outbox(Channel.WEBHOOK, T0 + 10, lease=60, limit=100)
    receipts = await store.claim_outbox(Channel.SMPP, T0 + 10, lease=60, limit=100)
    assert [(e.subject_id, e.status, e.url) for e in hooks] == [
        (asked.id, Status.CANCELLED, HOOK)]
    assert sorted((e.subject_id, e.status) for e in receipts) == sorted([
        (asked.id, Status.CANCELLED), (failures_only.id, Status.CANCELLED)])
    assert StatusEvents.parse("final") & StatusEvents.CANCELLED
    assert StatusEvents.parse("cancelled") == StatusEvents.CANCELLED


async def test_cancel_matching_takes_the_waiting_messages_from_a_sender_to_a_number(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    other = await store.create_account("other", T0, rate_limit=1.0, bind_limit=1)
    to, sender = "+447700900123", "ACME"
    waiting = [make_message(to=to, sender=sender, send_at=T0 + 600) for _ in range(3)]
    held = make_message(to=to, sender=sender)
    sent = make_message(to=to, sender=sender)
    elsewhere = [make_message(to="+447700900124", sender=sender),
                 make_message(to=to, sender="OTHER"), make_message(to=to, account_id=other.id)]
    await store.accept([*waiting, held, sent, *elsewhere])
    await store.update_statuses([StatusUpdate(sent.id, Status.SENT, T0 + 1)])
    claimed = await store.claim(10, T0 + 2, lease=30)
    assert held.id in {m.id for m in claimed}
    def match(limit: int) -> Awaitable[tuple[str, ...]]:
        return store.cancel_matching(account.id, T0 + 3, limit=limit, to=to, sender=sender)

    assert await match(2) == (waiting[0].id, waiting[1].id)  # oldest first
    assert await match(100) == (waiting[2].id,)
    assert await match(100) == ()
    stored = await store.get_messages([m.id for m in [*waiting, held, sent, *elsewhere]])
    assert [stored[m.id].status for m in waiting] == [Status.CANCELLED] * 3
    assert stored[held.id].status is Status.QUEUED
    assert stored[sent.id].status is Status.SENT
    assert all(stored[m.id].status < Status.SENT for m in elsewhere)
    with pytest.raises(InvalidRecord):
        await store.cancel_matching(account.id, T0 + 3, limit=0, to=to)
    with pytest.raises(InvalidRecord):  # every waiting message of the account: never
        await store.cancel_matching(account.id, T0 + 3, limit=10, sender=sender)


async def test_cancel_matching_by_reference(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    campaign = [make_message(reference="promo-may", send_at=T0 + 600) for _ in range(3)]
    other = make_message(reference="promo-june", send_at=T0 + 600)
    await store.accept([*campaign, other])
    await store.update_statuses([StatusUpdate(campaign[2].id, Status.SENT, T0 + 1)])
    cancelled = await store.cancel_matching(account.id, T0 + 3, limit=100,
                                            reference="promo-may")
    assert cancelled == (campaign[0].id, campaign[1].id)
    stored = await store.get_messages([m.id for m in [*campaign, other]])
    assert [stored[m.id].status for m in [*campaign, other]] == [
        Status.CANCELLED, Status.CANCELLED, Status.SENT, Status.ACCEPTED]


async def test_replace_changes_a_waiting_message(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    new = make_message(send_at=T0 + 600, expires_at=T0 + 3600)
    await store.accept([new])
    change = Replacement(body=b"new text", segments=2, send_at=T0 + 900,
                         expires_at=T0 + 7200, registered_delivery=1)
    result = await store.replace(new.id, change, T0 + 5, account_id=account.id)
    assert result.outcome is APPLIED
    m = result.message
    assert (m.body, m.segments, m.send_at, m.expires_at, m.registered_delivery, m.status) == (
        b"new text", 2, T0 + 900, T0 + 7200, 1, Status.ACCEPTED)
    assert m == await store.get_message(new.id)
    assert await store.claim(10, T0 + 899, lease=30) == ()  # the new schedule holds
    # a schedule in the past: as soon as possible
    result = await store.replace(new.id, Replacement(send_at=T0 + 1), T0 + 10,
                                 account_id=account.id)
    assert result.message.send_at is None
    (claimed,) = await store.claim(10, T0 + 10, lease=30)
    assert (claimed.id, claimed.body) == (new.id, b"new text")
    again = await store.replace(new.id, Replacement(body=b"late", segments=1), T0 + 11,
                                account_id=account.id)
    assert (again.outcome, again.message.body) == (IN_PROGRESS, b"new text")


async def test_replace_keeps_what_it_does_not_name_and_refuses_an_empty_validity(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    new = make_message(send_at=T0 + 600, expires_at=T0 + 3600, registered_delivery=1)
    await store.accept([new])
    result = await store.replace(new.id, Replacement(body=b"x", segments=1), T0 + 5,
                                 account_id=account.id)
    assert (result.message.send_at, result.message.expires_at,
            result.message.registered_delivery) == (T0 + 600, T0 + 3600, 1)
    with pytest.raises(InvalidRecord) as caught:
        await store.replace(new.id, Replacement(send_at=T0 + 4000), T0 + 5,
                            account_id=account.id)
    assert caught.value.field == "expires_at"
    assert (await store.get_message(new.id)).send_at == T0 + 600
    with pytest.raises(InvalidRecord):
        Replacement(body=b"x")  # a body without its segment count


async def test_cancel_matching_narrows_by_tag(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    to = "+447700900125"
    otp, plain = make_message(to=to, tag="otp"), make_message(to=to)
    await store.accept([otp, plain])
    assert await store.cancel_matching(account.id, T0 + 3, limit=10, to=to, tag="otp") == (
        otp.id,)
    assert (await store.get_message(plain.id)).status is Status.ACCEPTED
