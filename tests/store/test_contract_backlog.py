"""Store contract: what waits (``Store.backlog``), for the backlog metrics."""

from __future__ import annotations

from herald.store import Backlog, Channel, Reschedule, Source, Status, StatusUpdate, Store

from .conftest import T0, MessageFactory

HOOK = "https://example.test/hook"


async def test_an_empty_store_has_no_backlog(store: Store) -> None:
    assert await store.backlog(T0) == Backlog(unsent=0, due=0, webhooks=0, smpp_events=0)


async def test_unsent_messages_and_those_due_for_a_claim(
    store: Store, make_message: MessageFactory
) -> None:
    now = T0 + 10
    ready = [make_message() for _ in range(3)]
    later = make_message(send_at=T0 + 600)  # scheduled: unsent, not due yet
    test = make_message(test=True)  # stored for the record, never sent
    await store.accept([*ready, later, test])
    assert await store.backlog(now) == Backlog(unsent=4, due=3, webhooks=0, smpp_events=0)

    [claimed] = await store.claim(1, now, lease=30)  # dispatch holds it: not due
    assert (await store.backlog(now)).due == 2
    await store.reschedule_many([  # backing off
        Reschedule(claimed.id, claimed.attempt, now + 5, release=True)])
    assert (await store.backlog(now)).due == 2
    assert (await store.backlog(now + 5)).due == 3  # its time came

    await store.update_statuses([StatusUpdate(ready[1].id, Status.SENT, now)])
    await store.update_statuses([StatusUpdate(ready[2].id, Status.FAILED, now)])
    assert await store.backlog(now + 5) == Backlog(unsent=2, due=1, webhooks=0, smpp_events=0)
    assert (await store.backlog(T0 + 600)).due == 2  # the scheduled one is due


async def test_outbox_events_waiting_per_channel(
    store: Store, make_message: MessageFactory
) -> None:
    hooked = [make_message(callback_url=HOOK) for _ in range(3)]
    receipted = make_message(source=Source.SMPP, registered_delivery=1)
    await store.accept([*hooked, receipted])
    for m in (*hooked, receipted):
        await store.update_statuses([StatusUpdate(m.id, Status.DELIVERED, T0 + 1)])
    assert await store.backlog(T0 + 1) == Backlog(unsent=0, due=0, webhooks=3, smpp_events=1)

    events = await store.claim_outbox(Channel.WEBHOOK, T0 + 2, lease=30, limit=10)
    assert (await store.backlog(T0 + 2)).webhooks == 3  # being posted: still waiting
    await store.complete_outbox([events[0].id])
    await store.retry_outbox(events[1].id, T0 + 60, "HTTP 500")  # tried again later
    await store.retry_outbox(events[2].id, None, "HTTP 410")  # given up: not waiting
    assert await store.backlog(T0 + 3) == Backlog(unsent=0, due=0, webhooks=1, smpp_events=1)
