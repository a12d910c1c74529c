"""Store contract: a message's failed submit and webhook attempts, for its timeline."""

from __future__ import annotations

import pytest

from herald.store import (
    MAX_ATTEMPTS_KEPT,
    Attempt,
    AttemptKind,
    Channel,
    InvalidRecord,
    OutboxEvent,
    Status,
    StatusEvents,
    StatusUpdate,
    Store,
    SubmitFailure,
    WebhookAnswer,
)

from .conftest import T0, MessageFactory

HOOK = "https://hooks.example.test:8443/hook?token=secret"
SUBMIT, WEBHOOK = AttemptKind.SUBMIT, AttemptKind.WEBHOOK


def _row(a: Attempt) -> tuple[object, ...]:
    return (a.kind, a.at, a.number, a.target, a.answer, a.ok, a.part, a.reported)


async def _claimed(store: Store, now: float) -> list[OutboxEvent]:
    return list(await store.claim_outbox(Channel.WEBHOOK, now, lease=30, limit=10))


async def test_failed_submits_are_kept_in_order_and_numbered_per_part(
    store: Store, make_message: MessageFactory
) -> None:
    new, other = make_message(segments=2), make_message()
    await store.accept([new, other])
    await store.record_failed_submits([
        SubmitFailure(new.id, 0, T0 + 1, "eu-1", "ESME_RSYSERR"),
        SubmitFailure(new.id, 1, T0 + 1.5, "eu-1", "timeout"),
    ])  # fmt: skip
    await store.record_failed_submits([SubmitFailure(new.id, 0, T0 + 2, "eu-2", "ESME_RTHROTTLED")])
    assert [_row(a) for a in await store.message_attempts(new.id)] == [
        (SUBMIT, T0 + 1, 1, "eu-1", "ESME_RSYSERR", False, 0, None),
        (SUBMIT, T0 + 1.5, 1, "eu-1", "timeout", False, 1, None),
        (SUBMIT, T0 + 2, 2, "eu-2", "ESME_RTHROTTLED", False, 0, None),
    ]
    assert await store.message_attempts(other.id) == ()
    assert await store.message_attempts("no-such-message") == ()
    await store.record_failed_submits([])  # nothing to write: a no-op


async def test_failed_attempts_are_bounded_per_message_keeping_the_first(
    store: Store, make_message: MessageFactory
) -> None:
    new = make_message()
    await store.accept([new])
    await store.record_failed_submits([SubmitFailure(new.id, 0, T0 + n, "eu-1", f"0x{n:08X}")
                                       for n in range(MAX_ATTEMPTS_KEPT + 5)])  # fmt: skip
    kept = await store.message_attempts(new.id)
    assert [a.number for a in kept] == list(range(1, MAX_ATTEMPTS_KEPT + 1))
    assert kept[-1].answer == f"0x{MAX_ATTEMPTS_KEPT - 1:08X}"


async def test_bad_attempts_are_refused(store: Store, make_message: MessageFactory) -> None:
    new = make_message(callback_url=HOOK)
    await store.accept([new])
    for bad in (SubmitFailure(new.id, 0, T0, "", "timeout"),
                SubmitFailure(new.id, 0, T0, "eu-1", ""),
                SubmitFailure(new.id, -1, T0, "eu-1", "timeout")):  # fmt: skip
        with pytest.raises(InvalidRecord):
            await store.record_failed_submits([bad])
    await store.update_statuses([StatusUpdate(new.id, Status.FAILED, T0 + 1)])
    [event] = await _claimed(store, T0 + 2)
    with pytest.raises(InvalidRecord):
        await store.retry_outbox(event.id, T0 + 10, "x", answer=WebhookAnswer(T0 + 2, "", "x"))
    assert await store.message_attempts(new.id) == ()


async def test_a_webhook_that_failed_then_succeeded_keeps_both_answers(
    store: Store, make_message: MessageFactory
) -> None:
    """The failure rides in retry_outbox, the success in complete_outbox; the
    attempt numbers are the event's claims; the event is forgotten as before."""
    new = make_message(callback_url=HOOK, callback_events=StatusEvents.ALL)
    await store.accept([new])
    await store.update_statuses([StatusUpdate(new.id, Status.SENT, T0 + 1)])
    [event] = await _claimed(store, T0 + 2)
    await store.retry_outbox(event.id, T0 + 10, "http_error: HTTP 500 Internal Server Error",
                             answer=WebhookAnswer(T0 + 2, "hooks.example.test:8443", "HTTP 500"))
    [again] = await _claimed(store, T0 + 10)
    assert again.attempts == 2
    await store.complete_outbox([again.id], answers={
        again.id: WebhookAnswer(T0 + 10, "hooks.example.test:8443", "HTTP 200")})
    assert [_row(a) for a in await store.message_attempts(new.id)] == [
        (WEBHOOK, T0 + 2, 1, "hooks.example.test:8443", "HTTP 500", False, None, Status.SENT),
        (WEBHOOK, T0 + 10, 2, "hooks.example.test:8443", "HTTP 200", True, None, Status.SENT),
    ]
    assert await _claimed(store, T0 + 100) == []  # delivered: forgotten
    assert await store.failed_deliveries(new.id, new.account_id) == ()


async def test_the_success_path_records_nothing(
    store: Store, make_message: MessageFactory
) -> None:
    """Without answers, retry_outbox and complete_outbox write what they always
    did; with answers for some events only, the others are completed all the same."""
    first, second = make_message(callback_url=HOOK), make_message(callback_url=HOOK)
    await store.accept([first, second])
    await store.update_statuses([StatusUpdate(m.id, Status.DELIVERED, T0 + 1)
                                 for m in (first, second)])  # fmt: skip
    events = await _claimed(store, T0 + 2)
    assert len(events) == 2
    await store.retry_outbox(events[0].id, T0 + 5, "timeout: no answer within 5 s")
    assert await store.message_attempts(first.id) == ()
    [retried] = await _claimed(store, T0 + 5)
    await store.complete_outbox([retried.id, events[1].id], answers={
        retried.id: WebhookAnswer(T0 + 5, "hooks.example.test:8443", "HTTP 204")})
    assert [(a.number, a.answer, a.ok) for a in await store.message_attempts(first.id)] == [
        (2, "HTTP 204", True)]
    assert await store.message_attempts(second.id) == ()
    assert await _claimed(store, T0 + 100) == []


async def test_a_given_up_webhook_keeps_its_last_answer_and_purge_forgets_old_attempts(
    store: Store, make_message: MessageFactory
) -> None:
    old, recent = make_message(callback_url=HOOK), make_message()
    await store.accept([old, recent])
    await store.update_statuses([StatusUpdate(old.id, Status.FAILED, T0 + 1)])
    [event] = await _claimed(store, T0 + 2)
    await store.retry_outbox(event.id, None, "blocked: a private address",
                             answer=WebhookAnswer(T0 + 2, "hooks.example.test:8443", "blocked"))
    await store.record_failed_submits([SubmitFailure(recent.id, 0, T0 + 50, "eu-1", "timeout")])
    [gave_up] = await store.message_attempts(old.id)
    assert (gave_up.answer, gave_up.ok, gave_up.reported) == ("blocked", False, Status.FAILED)
    # The given-up event and the old attempt go; the recent attempt stays.
    assert await store.purge(T0 + 100, parked_before=T0, dead_before=T0 + 10) == 2
    assert await store.message_attempts(old.id) == ()
    assert [a.answer for a in await store.message_attempts(recent.id)] == ["timeout"]
