"""How events travel: kept-alive connections, batched POSTs, and wake-up by commit.

The same real SQLite store, sender and loopback receiver as ``test_sender.py``;
here the subject is the path an event takes rather than its retry schedule.
"""

from __future__ import annotations

import dataclasses
import json

from herald.config import WebhookConfig
from herald.store import Status, StatusUpdate
from herald.webhooks import (
    BATCH_COUNT_HEADER,
    EVENT_ID_HEADER,
    DeliveryResult,
    Outcome,
    SenderOptions,
    verify_signature,
)

from .conftest import World, eventually, pending_events, running
from .receiver import Receiver, Reply

FAST = WebhookConfig(timeout=2.0, max_attempts=12, backoff_min=10.0, backoff_max=80.0)


async def _batching(world: World, size: int, wait: float = 0.0) -> None:
    world.account = dataclasses.replace(
        world.account, webhook_batch_max=size, webhook_batch_wait=wait
    )
    await world.store.update_account(world.account)


async def test_posts_reuse_a_few_kept_alive_connections(world: World, receiver: Receiver) -> None:
    for _ in range(60):
        await world.sent(receiver.url())
    config = dataclasses.replace(FAST, concurrency=32, per_endpoint=4)
    results: list[DeliveryResult] = []
    async with running(world.sender(config, results=results)) as sender:
        await eventually(lambda: len(results) == 60, "all sixty delivered")
        for _ in range(20):  # and more, one at a time, after the first burst
            await world.sent(receiver.url())
            sender.wake()
            await receiver.wait_for(len(receiver.requests) + 1)
    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    assert len(receiver.requests) == 80
    assert receiver.max_active <= 4  # the bound per endpoint
    assert 1 <= receiver.connections <= 4  # 80 POSTs, at most 4 connections ever opened
    assert sender.connections_opened == receiver.connections


async def test_a_batch_is_one_signed_post_of_events_each_with_its_own_id(
    world: World, receiver: Receiver
) -> None:
    await _batching(world, size=10)
    sent = [await world.sent(receiver.url()) for _ in range(25)]
    sender = world.sender(FAST)
    try:
        results = await sender.run_once(limit=100)
    finally:
        await sender.aclose()
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 25
    assert sorted(len(json.loads(r.body)["events"]) for r in receiver.requests) == [5, 10, 10]
    ids = []
    for request in receiver.requests:
        verify_signature(world.secret, request.header("Herald-Signature"), request.body,
                         world.clock.now)  # over the whole body  # fmt: skip
        events = json.loads(request.body)["events"]
        assert request.header(BATCH_COUNT_HEADER) == str(len(events))
        assert request.header(EVENT_ID_HEADER) is None  # an id per event, in the body
        for event in events:
            assert event["type"] == "message.status" and event["message"]["status"] == "sent"
            ids.append(event["event_id"])
    assert sorted(ids) == sorted(f"evt_{m.id}_sent" for m in sent)
    assert await pending_events(world) == 0


async def test_a_failed_batch_is_retried_and_keeps_every_event_id(
    world: World, receiver: Receiver
) -> None:
    await _batching(world, size=50)
    sent = [await world.sent(receiver.url()) for _ in range(6)]
    receiver.script = [Reply(503, b"maintenance")]
    sender = world.sender(FAST)
    try:
        first = await sender.run_once(limit=100)
        assert [r.outcome for r in first] == [Outcome.RETRY] * 6
        assert {r.error for r in first} == {"http_error: HTTP 503 Service Unavailable: maintenance"}
        world.clock.advance(FAST.backoff_min)  # each event's own backoff is over
        second = await sender.run_once(limit=100)
    finally:
        await sender.aclose()
    assert [(r.outcome, r.attempt) for r in second] == [(Outcome.DELIVERED, 2)] * 6
    failed, delivered = receiver.requests
    assert json.loads(failed.body) == json.loads(delivered.body)  # the same events, same ids
    assert [e["event_id"] for e in json.loads(delivered.body)["events"]] == [
        f"evt_{m.id}_sent" for m in sent
    ]
    assert await pending_events(world) == 0


async def test_a_batch_waits_for_more_events_within_its_window(
    world: World, receiver: Receiver
) -> None:
    await _batching(world, size=100, wait=0.3)
    results: list[DeliveryResult] = []
    async with running(world.sender(FAST, results=results)) as sender:
        for _ in range(5):  # five events, each woken on its own, inside one window
            await world.sent(receiver.url())
            sender.wake()
        await eventually(lambda: len(results) == 5, "five delivered")
    (request,) = receiver.requests
    assert len(json.loads(request.body)["events"]) == 5


async def test_the_commit_that_writes_an_event_wakes_the_sender(
    world: World, receiver: Receiver
) -> None:
    # Polling every 60 s and nobody calling wake(): only the store's commit can.
    sender = world.sender(FAST, SenderOptions(poll_interval=60.0))
    world.store.watch_outbox(sender.wake)
    async with running(sender):
        await eventually(lambda: sender.in_flight == 0, "the first (empty) claim")
        message = world.new_message(callback_url=receiver.url())
        await world.store.accept([message])
        await world.store.update_statuses([
            StatusUpdate(message.id, Status.DELIVERED, world.clock.now)])
        (request,) = await receiver.wait_for(1, timeout=5.0)
    assert json.loads(request.body)["event_id"] == f"evt_{message.id}_delivered"
