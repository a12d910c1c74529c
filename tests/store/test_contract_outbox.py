"""Store contract: the outbox of webhook and SMPP events, and housekeeping."""

from __future__ import annotations

import dataclasses

import pytest

from herald.store import (
    VERIFY_TAG,
    Account,
    Channel,
    EventKind,
    IdempotencyRecord,
    InboundMessage,
    ReceiptUpdate,
    SegmentRecord,
    Source,
    Status,
    StatusEvents,
    StatusUpdate,
    Store,
)

from .conftest import T0, MessageFactory

HOOK = "https://example.test/hook"


async def _events(store: Store, channel: Channel) -> list[tuple[object, ...]]:
    events = await store.claim_outbox(channel, T0 + 1000, lease=60, limit=100)
    return [(e.kind, e.subject_id, e.status, e.url) for e in events]


async def test_webhook_events_for_sent_and_final_statuses(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message(callback_url=HOOK, callback_events=StatusEvents.ALL)
    await store.accept([new])
    await store.update_statuses([StatusUpdate(new.id, Status.QUEUED, T0 + 1)])
    await store.update_statuses([StatusUpdate(new.id, Status.SENT, T0 + 2)])
    await store.update_statuses([StatusUpdate(new.id, Status.DELIVERED, T0 + 3)])
    await store.update_statuses([  # ignored: already final
        StatusUpdate(new.id, Status.FAILED, T0 + 4)])
    events = await store.claim_outbox(Channel.WEBHOOK, T0 + 10, lease=60, limit=100)
    assert [(e.kind, e.subject_id, e.status, e.url, e.created_at) for e in events] == [
        (EventKind.STATUS, new.id, Status.SENT, HOOK, T0 + 2),
        (EventKind.STATUS, new.id, Status.DELIVERED, HOOK, T0 + 3),
    ]


async def test_a_new_account_hears_of_final_statuses_only(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    assert account.webhook_events == StatusEvents.FINAL
    new = make_message(callback_url=HOOK)
    await store.accept([new])
    await store.update_statuses([StatusUpdate(new.id, Status.SENT, T0 + 1)])
    await store.update_statuses([StatusUpdate(new.id, Status.UNDELIVERED, T0 + 2)])
    assert await _events(store, Channel.WEBHOOK) == [
        (EventKind.STATUS, new.id, Status.UNDELIVERED, HOOK)
    ]


async def test_a_message_overrides_its_accounts_subscription(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await store.update_account(dataclasses.replace(
        account, callback_url=HOOK, webhook_events=StatusEvents.of([Status.SENT, Status.FAILED])
    ))  # fmt: skip
    default = make_message()
    everything = make_message(callback_events=StatusEvents.ALL)
    nothing = make_message(callback_events=StatusEvents.NONE)
    await store.accept([default, everything, nothing])
    for m in (default, everything, nothing):
        await store.update_statuses([StatusUpdate(m.id, Status.SENT, T0 + 1)])
        await store.update_statuses([StatusUpdate(m.id, Status.DELIVERED, T0 + 2)])
    assert await _events(store, Channel.WEBHOOK) == [
        (EventKind.STATUS, default.id, Status.SENT, HOOK),
        (EventKind.STATUS, everything.id, Status.SENT, HOOK),
        (EventKind.STATUS, everything.id, Status.DELIVERED, HOOK),
    ]
    read = await store.get_message(everything.id)
    assert read.callback_events == StatusEvents.ALL
    assert (await store.get_message(default.id)).callback_events is None


async def test_account_subscription_settings_round_trip(store: Store, account: Account) -> None:
    changed = dataclasses.replace(
        account, webhook_events=StatusEvents.of([Status.DELIVERED]), inbound_webhooks=False,
        inbound_url=HOOK + "/mo", webhook_batch_max=100, webhook_batch_wait=0.02,
    )  # fmt: skip
    await store.update_account(changed)
    assert await store.get_account(account.id) == changed


async def test_webhooks_fall_back_to_the_accounts_url(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    silent = make_message()
    await store.accept([silent])
    await store.update_statuses([StatusUpdate(silent.id, Status.SENT, T0 + 1)])
    assert await _events(store, Channel.WEBHOOK) == []  # nowhere to send it

    await store.update_account(dataclasses.replace(account, callback_url=HOOK + "/acct"))
    own = make_message(callback_url=HOOK)
    default = make_message()
    await store.accept([own, default])
    await store.update_statuses([StatusUpdate(own.id, Status.REJECTED, T0 + 2, error_code=0x45)])
    await store.update_statuses([StatusUpdate(default.id, Status.REJECTED, T0 + 3)])
    assert await _events(store, Channel.WEBHOOK) == [
        (EventKind.STATUS, own.id, Status.REJECTED, HOOK),
        (EventKind.STATUS, default.id, Status.REJECTED, HOOK + "/acct"),
    ]


async def test_segment_receipts_raise_the_events_of_their_message(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message(callback_url=HOOK, segments=2, callback_events=StatusEvents.ALL)
    await store.accept([new])
    await store.apply_receipts([ReceiptUpdate("up1", "b", Status.DELIVERED, T0 + 1)])  # parked
    await store.record_segments([SegmentRecord(new.id, 0, "up1", "a", "a", T0 + 2)])
    await store.record_segments([SegmentRecord(new.id, 1, "up1", "b", "b", T0 + 3)])
    await store.apply_receipts([ReceiptUpdate("up1", "a", Status.DELIVERED, T0 + 4)])
    assert await _events(store, Channel.WEBHOOK) == [
        (EventKind.STATUS, new.id, Status.SENT, HOOK),
        (EventKind.STATUS, new.id, Status.DELIVERED, HOOK),
    ]


@pytest.mark.parametrize(
    ("registered_delivery", "receipted"),
    [
        (0x00, set()),
        (0x01, {Status.DELIVERED, Status.UNDELIVERED}),  # SMPP 3.4 §5.2.17: success or failure
        (0x02, {Status.UNDELIVERED}),  # failure only
        (0x11, {Status.DELIVERED, Status.UNDELIVERED}),  # intermediate bit: finals as for 01
    ],
)
async def test_smpp_receipts_follow_registered_delivery(
    store: Store, make_message: MessageFactory, registered_delivery: int, receipted: set[Status]
) -> None:
    ok = make_message(source=Source.SMPP, registered_delivery=registered_delivery)
    bad = make_message(source=Source.SMPP, registered_delivery=registered_delivery)
    http = make_message(registered_delivery=registered_delivery)
    await store.accept([ok, bad, http])
    await store.update_statuses([StatusUpdate(ok.id, Status.SENT, T0 + 1)])
    await store.update_statuses([StatusUpdate(ok.id, Status.DELIVERED, T0 + 2)])
    await store.update_statuses([StatusUpdate(bad.id, Status.UNDELIVERED, T0 + 2)])
    await store.update_statuses([StatusUpdate(http.id, Status.DELIVERED, T0 + 2)])
    events = await store.claim_outbox(Channel.SMPP, T0 + 10, lease=60, limit=100)
    expected = {ok.id: Status.DELIVERED, bad.id: Status.UNDELIVERED}
    assert {(e.subject_id, e.status) for e in events} == {
        (mid, status) for mid, status in expected.items() if status in receipted
    }
    assert await _events(store, Channel.WEBHOOK) == []  # no URL anywhere


async def test_inbound_messages_raise_webhook_and_smpp_events(
    store: Store, account: Account
) -> None:
    def mo(n: int) -> InboundMessage:
        return InboundMessage(
            id=f"in-{n}", account_id=account.id, to="+447000", sender="+447999",
            body=b"hi", encoding="gsm7", data_coding=0, connector="up1", received_at=T0 + n,
        )  # fmt: skip

    await store.add_inbound(mo(1))
    assert await _events(store, Channel.WEBHOOK) == []
    assert await _events(store, Channel.SMPP) == []
    await store.update_account(dataclasses.replace(account, callback_url=HOOK))
    await store.add_smpp_credential(account.id, "acme", "$argon2id$...", T0)
    await store.add_inbound(mo(2))
    assert await _events(store, Channel.WEBHOOK) == [(EventKind.INBOUND, "in-2", None, HOOK)]
    assert await _events(store, Channel.SMPP) == [(EventKind.INBOUND, "in-2", None, None)]

    # Inbound messages are subscribed apart from statuses: their own URL, or none.
    await store.update_account(dataclasses.replace(
        account, callback_url=HOOK, inbound_url=HOOK + "/mo", webhook_events=StatusEvents.NONE
    ))  # fmt: skip
    await store.add_inbound(mo(3))
    assert await _events(store, Channel.WEBHOOK) == [
        (EventKind.INBOUND, "in-3", None, HOOK + "/mo")
    ]
    await store.update_account(dataclasses.replace(account, callback_url=HOOK,
                                                   inbound_webhooks=False))  # fmt: skip
    await store.add_inbound(mo(4))
    assert await _events(store, Channel.WEBHOOK) == []
    assert [e[1] for e in await _events(store, Channel.SMPP)] == ["in-3", "in-4"]


async def test_outbox_claims_lease_retry_and_complete(
    store: Store, make_message: MessageFactory
) -> None:
    messages = [make_message(callback_url=HOOK) for _ in range(3)]
    await store.accept(messages)
    for n, m in enumerate(messages):
        await store.update_statuses([StatusUpdate(m.id, Status.FAILED, T0 + n)])
    first = await store.claim_outbox(Channel.WEBHOOK, T0 + 10, lease=30, limit=2)
    assert [(e.subject_id, e.attempts, e.next_attempt_at) for e in first] == [
        (messages[0].id, 1, T0 + 40),
        (messages[1].id, 1, T0 + 40),
    ]
    [third] = await store.claim_outbox(Channel.WEBHOOK, T0 + 11, lease=30, limit=10)
    assert third.subject_id == messages[2].id

    await store.complete_outbox([first[0].id])
    await store.retry_outbox(first[1].id, T0 + 100, "HTTP 503")
    await store.retry_outbox(third.id, None, "HTTP 410: gone")  # give up
    assert await store.claim_outbox(Channel.WEBHOOK, T0 + 99, lease=30, limit=10) == ()
    [retried] = await store.claim_outbox(Channel.WEBHOOK, T0 + 100, lease=30, limit=10)
    assert (retried.id, retried.attempts, retried.last_error) == (first[1].id, 2, "HTTP 503")
    # A claimer that dies leaves the event to be claimed again after the lease.
    [reclaimed] = await store.claim_outbox(Channel.WEBHOOK, T0 + 130, lease=30, limit=10)
    assert (reclaimed.id, reclaimed.attempts) == (retried.id, 3)


async def test_outbox_claims_can_be_limited_to_one_account(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    other = await store.create_account("other", T0, rate_limit=1.0, bind_limit=1)
    mine = make_message(source=Source.SMPP, registered_delivery=1)
    theirs = make_message(source=Source.SMPP, registered_delivery=1, account_id=other.id)
    await store.accept([mine, theirs])
    await store.update_statuses([StatusUpdate(mine.id, Status.DELIVERED, T0 + 1)])
    await store.update_statuses([StatusUpdate(theirs.id, Status.DELIVERED, T0 + 1)])
    events = await store.claim_outbox(
        Channel.SMPP, T0 + 2, lease=30, limit=10, account_id=other.id
    )
    assert [(e.account_id, e.subject_id) for e in events] == [(other.id, theirs.id)]


async def test_purge_forgets_what_is_no_longer_needed(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    record = IdempotencyRecord(
        account_id=account.id, key="k", request_hash=b"h", status_code=202, response=b"{}",
        created_at=T0, expires_at=T0 + 100,
    )  # fmt: skip
    dead = make_message(callback_url=HOOK)
    await store.accept([dead], idempotency=record)
    await store.update_statuses([StatusUpdate(dead.id, Status.FAILED, T0 + 1)])
    [event] = await store.claim_outbox(Channel.WEBHOOK, T0 + 2, lease=30, limit=10)
    await store.retry_outbox(event.id, None, "gave up")
    await store.apply_receipts([ReceiptUpdate("up1", "orphan", Status.DELIVERED, T0 + 3)])

    assert await store.purge(T0 + 50, parked_before=T0, dead_before=T0) == 0
    assert await store.purge(T0 + 100, parked_before=T0 + 4, dead_before=T0 + 4) == 3
    assert await store.get_idempotency(account.id, "k", T0 + 50) is None
    # The parked receipt is gone: a late segment with that id stays "sent".
    late = make_message()
    await store.accept([late])
    await store.record_segments([SegmentRecord(late.id, 0, "up1", "orphan", "orphan", T0 + 200)])
    assert (await store.get_message(late.id)).status is Status.SENT


async def test_purge_erases_the_text_of_final_verify_messages(
    store: Store, make_message: MessageFactory
) -> None:
    """A Verify SMS's text holds its code: once the message is final nothing
    needs it, and the purge empties it (nothing else of the message changes)."""
    done = make_message(tag=VERIFY_TAG, body=b"Your Acme code is 123456")
    waiting = make_message(tag=VERIFY_TAG, body=b"Your Acme code is 654321")
    plain = make_message(tag="otp", body=b"Your code is 111111")
    await store.accept([done, waiting, plain])
    await store.update_statuses([StatusUpdate(m.id, Status.DELIVERED, T0 + 1)
                                 for m in (done, plain)])  # fmt: skip
    before = await store.get_message(done.id)
    assert await store.purge(T0 + 2, parked_before=T0, dead_before=T0) == 1
    after = await store.get_message(done.id)
    assert after.body == b""
    assert dataclasses.replace(after, body=before.body) == before
    assert (await store.get_message(waiting.id)).body == waiting.body  # still to send
    assert (await store.get_message(plain.id)).body == plain.body
    assert await store.purge(T0 + 3, parked_before=T0, dead_before=T0) == 0  # once


async def test_a_claimed_event_carries_its_subject(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    await store.update_account(dataclasses.replace(account, callback_url=HOOK))
    new = make_message(reference="order-1")
    await store.accept([new])
    await store.update_statuses([StatusUpdate(new.id, Status.DELIVERED, T0 + 2)])
    mo = InboundMessage(
        id="in-1", account_id=account.id, to="447000", sender="447999", body=b"hi",
        encoding="gsm7", data_coding=0, connector="up1", received_at=T0 + 3,
    )  # fmt: skip
    await store.add_inbound(mo)
    status, inbound = await store.claim_outbox(Channel.WEBHOOK, T0 + 10, lease=60, limit=10)
    assert status.subject == await store.get_message(new.id)
    assert inbound.subject == mo


async def test_commits_that_write_events_wake_their_watchers(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    seen: list[frozenset[Channel]] = []
    store.watch_outbox(seen.append)
    await store.update_account(dataclasses.replace(account, callback_url=HOOK))
    quiet = make_message()
    await store.accept([quiet])
    await store.update_statuses([  # final events only: none
        StatusUpdate(quiet.id, Status.SENT, T0 + 1)])
    assert seen == []
    await store.update_statuses([StatusUpdate(quiet.id, Status.DELIVERED, T0 + 2)])
    assert seen == [frozenset({Channel.WEBHOOK})]  # told before the writer's caller resumes
    smpp = make_message(source=Source.SMPP, registered_delivery=1, callback_url=HOOK)
    await store.accept([smpp])
    await store.update_statuses([StatusUpdate(smpp.id, Status.UNDELIVERED, T0 + 3)])
    assert seen[1:] == [frozenset({Channel.WEBHOOK, Channel.SMPP})]


async def test_commits_that_end_messages_count_them_by_status(
    store: Store, make_message: MessageFactory
) -> None:
    counted: list[dict[Status, int]] = []
    store.watch_finals(lambda counts: counted.append(dict(counts)))
    a, b, c = make_message(), make_message(), make_message()
    test = make_message(test=True)
    await store.accept([a, b, c, test])
    await store.update_statuses([
        StatusUpdate(a.id, Status.DELIVERED, T0 + 1), StatusUpdate(b.id, Status.DELIVERED, T0 + 1),
        StatusUpdate(c.id, Status.REJECTED, T0 + 1), StatusUpdate(test.id, Status.FAILED, T0 + 1),
    ])  # fmt: skip
    await store.update_statuses([  # already final: not counted again
        StatusUpdate(a.id, Status.FAILED, T0 + 2)])
    assert counted == [{Status.DELIVERED: 2, Status.REJECTED: 1}]
    # Ended by a receipt, through the segment triggers, counts the same.
    d = make_message()
    await store.accept([d])
    await store.record_segments([SegmentRecord(d.id, 0, "up1", "X1", "x1", T0 + 3)])
    await store.apply_receipts([ReceiptUpdate("up1", "x1", Status.UNDELIVERED, T0 + 4)])
    assert counted[1:] == [{Status.UNDELIVERED: 1}]


async def test_failed_deliveries_are_the_events_with_an_error_still_kept(
    store: Store, account: Account, make_message: MessageFactory
) -> None:
    """What a customer reads of their message's failed webhooks (issue 8 item 3)."""
    new = make_message(callback_url=HOOK, callback_events=StatusEvents.ALL)
    other = make_message(callback_url=HOOK, callback_events=StatusEvents.ALL)
    await store.accept([new, other])
    await store.update_statuses([StatusUpdate(new.id, Status.SENT, T0 + 1)])
    await store.update_statuses([StatusUpdate(new.id, Status.DELIVERED, T0 + 2)])
    await store.update_statuses([StatusUpdate(other.id, Status.SENT, T0 + 1)])
    assert await store.failed_deliveries(new.id, account.id) == ()  # none failed yet
    claimed = {(e.subject_id, e.status): e
               for e in await store.claim_outbox(Channel.WEBHOOK, T0 + 10, 60, 100)}
    sent, delivered = claimed[new.id, Status.SENT], claimed[new.id, Status.DELIVERED]
    elsewhere = claimed[other.id, Status.SENT]
    await store.retry_outbox(sent.id, None, "blocked: not allowed")  # given up
    await store.retry_outbox(delivered.id, T0 + 99, "http_error: HTTP 500")  # retried later
    await store.retry_outbox(elsewhere.id, None, "timeout")
    got = await store.failed_deliveries(new.id, account.id)
    assert [(e.status, e.next_attempt_at, e.last_error, e.attempts) for e in got] == [
        (Status.SENT, None, "blocked: not allowed", 1),
        (Status.DELIVERED, T0 + 99, "http_error: HTTP 500", 1),
    ]
    assert await store.failed_deliveries(new.id, account.id + 1) == ()  # not another's
    assert await store.failed_deliveries(new.id, account.id, Channel.SMPP) == ()
    await store.complete_outbox([delivered.id])  # delivered at last: forgotten
    assert [e.status for e in await store.failed_deliveries(new.id, account.id)] == [
        Status.SENT]
