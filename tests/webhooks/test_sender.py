"""WebhookSender against a real SQLite store and a real HTTP receiver on loopback.

Time: the store and the sender read the injected ``FakeClock``; only the
sender's short polling waits are real. A retry becomes due when a test moves
the clock, never by waiting, and no assertion is about how long anything took.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
from collections.abc import Sequence
from typing import cast

import pytest
from prometheus_client import CollectorRegistry

from herald.config import WebhookConfig
from herald.metrics import Metrics
from herald.store import (
    AttemptKind,
    Channel,
    FraudAction,
    FraudDecision,
    FraudReason,
    InboundMessage,
    RouteRecord,
    SegmentRecord,
    Status,
    StatusUpdate,
    StoreClosed,
)
from herald.webhooks import (
    MAX_ERROR_BODY,
    DeliveryResult,
    IPAddress,
    Outcome,
    SenderOptions,
    SignatureMismatch,
    verify_signature,
)

from .conftest import T0, World, eventually, pending_events, running
from .receiver import Receiver, Reply

FAST = WebhookConfig(timeout=2.0, max_attempts=12, backoff_min=10.0, backoff_max=80.0)


def outcomes(results: Sequence[DeliveryResult]) -> list[Outcome]:
    return [r.outcome for r in results]


async def test_a_status_event_is_posted_signed_with_its_event_id_and_completed(
    world: World, receiver: Receiver
) -> None:
    message = await world.sent(receiver.url(), reference="order-7", metadata='{"cart": [1, 2]}')
    results: list[DeliveryResult] = []
    async with running(world.sender(results=results)):
        (request,) = await receiver.wait_for(1)
        await eventually(lambda: len(results) == 1, "the outcome is recorded")

    assert outcomes(results) == [Outcome.DELIVERED]
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.header("Content-Type") == "application/json"
    assert request.header("Accept-Encoding") == "identity"  # nothing to decompress
    assert (request.header("User-Agent") or "").startswith("herald-webhooks/")
    signed_at = verify_signature(
        world.secret, request.header("Herald-Signature"), request.body, now=world.clock.now
    )
    assert request.header("Herald-Timestamp") == str(signed_at) == str(int(T0))
    body = json.loads(request.body)
    assert request.header("Herald-Event-Id") == body["event_id"] == f"evt_{message.id}_sent"
    assert body["type"] == "message.status"
    assert body["message"]["id"] == message.id
    assert body["message"]["status"] == "sent"
    assert body["message"]["reference"] == "order-7"
    assert body["message"]["metadata"] == {"cart": [1, 2]}
    assert await pending_events(world) == 0  # completed: nothing left to send


async def test_a_status_event_names_the_connector_and_the_rule_that_routed_it(
    world: World, receiver: Receiver
) -> None:
    message = world.new_message(callback_url=receiver.url())
    await world.store.accept([message])
    await world.store.record_routes([RouteRecord(message.id, "de-least-cost", T0)])
    await world.store.record_segments([  # sent
        SegmentRecord(message.id, 0, "operator-a", "UP-1", "up-1", T0)])
    async with running(world.sender()):
        (request,) = await receiver.wait_for(1)
    body = json.loads(request.body)
    assert body["message"]["status"] == "sent"
    assert body["message"]["route"] == {"connector": "operator-a", "rule": "de-least-cost"}
    assert b"UP-1" not in request.body and b"up-1" not in request.body  # upstream ids never


async def test_a_500_is_retried_and_the_event_delivered_once(
    world: World, receiver: Receiver
) -> None:
    receiver.script = [Reply(500, b"down for maintenance")]
    await world.sent(receiver.url())
    results: list[DeliveryResult] = []
    async with running(world.sender(results=results)):
        await eventually(lambda: len(results) == 1, "the first attempt fails")
        (failed,) = results
        assert failed.outcome is Outcome.RETRY
        assert failed.error is not None and failed.error.startswith("http_error: HTTP 500")
        assert "down for maintenance" in failed.error
        assert failed.next_attempt_at is not None
        world.clock.now = failed.next_attempt_at  # the retry comes due
        await eventually(lambda: len(results) == 2, "the retry is made")

    assert outcomes(results) == [Outcome.RETRY, Outcome.DELIVERED]
    first, second = receiver.requests
    assert [r.reply.status for r in receiver.requests] == [500, 200]
    assert first.header("Herald-Event-Id") == second.header("Herald-Event-Id")
    assert first.body == second.body  # the same bytes on every attempt
    for request in (first, second):  # each attempt signed afresh, at its own time
        verify_signature(world.secret, request.header("Herald-Signature"), request.body,
                         now=world.clock.now, tolerance=60)  # fmt: skip
    assert first.header("Herald-Timestamp") != second.header("Herald-Timestamp")
    assert await pending_events(world) == 0


async def test_each_failed_post_and_the_success_after_it_are_the_messages_webhook_attempts(
    world: World, receiver: Receiver
) -> None:
    """A 500 then a 200: two attempts in the message's timeline, named by the
    endpoint's host and port only (a URL's path and query may hold secrets). A
    webhook delivered at its first attempt records nothing (the hot path)."""
    receiver.script = [Reply(500, b"down")]
    retried = await world.sent(receiver.url("/hook?token=s3cret"))
    at_once = await world.sent(receiver.url())
    sender = world.sender()
    try:
        results = {r.event_id: r for r in await sender.run_once()}
        failed = next(r for r in results.values() if r.outcome is Outcome.RETRY)
        assert failed.event_id == f"evt_{retried.id}_sent" and failed.next_attempt_at
        world.clock.now = failed.next_attempt_at
        (delivered,) = await sender.run_once()
    finally:
        await sender.aclose()
    assert delivered.outcome is Outcome.DELIVERED
    host = f"127.0.0.1:{receiver.port}"
    attempts = await world.store.message_attempts(retried.id)
    assert [(a.kind, a.at, a.number, a.target, a.answer, a.ok, a.reported)
            for a in attempts] == [
        (AttemptKind.WEBHOOK, T0, 1, host, "HTTP 500", False, Status.SENT),
        (AttemptKind.WEBHOOK, failed.next_attempt_at, 2, host, "HTTP 200", True, Status.SENT),
    ]  # fmt: skip
    assert await world.store.message_attempts(at_once.id) == ()


async def test_a_receiver_that_is_down_loses_nothing(world: World, receiver: Receiver) -> None:
    await receiver.close()  # the port is closed: connections are refused
    messages = [await world.sent(receiver.url(f"/m{i}")) for i in range(3)]
    results: list[DeliveryResult] = []
    async with running(world.sender(results=results)):
        await eventually(lambda: len(results) == 3, "three failed attempts")
        assert outcomes(results) == [Outcome.RETRY] * 3
        assert all(r.error and r.error.startswith("unreachable:") for r in results)
        await receiver.start()  # back, on the same port
        world.clock.advance(FAST.backoff_min)  # the first retry waits exactly backoff_min
        await eventually(lambda: len(results) == 6, "three retries")

    assert outcomes(results)[3:] == [Outcome.DELIVERED] * 3
    assert sorted(r.header("Herald-Event-Id") or "" for r in receiver.requests) == sorted(
        f"evt_{m.id}_sent" for m in messages
    )
    assert await pending_events(world) == 0


async def test_a_restarted_sender_resumes_pending_events(world: World, receiver: Receiver) -> None:
    receiver.default = Reply(503)
    message = world.new_message(callback_url=receiver.url())
    await world.store.accept([message])
    await world.store.update_statuses([StatusUpdate(message.id, Status.SENT, world.clock.now)])
    world.clock.advance(1)
    await world.store.update_statuses([StatusUpdate(message.id, Status.DELIVERED, world.clock.now)])
    before: list[DeliveryResult] = []
    async with running(world.sender(results=before)):
        await eventually(lambda: len(before) == 2, "both events tried once")
    assert outcomes(before) == [Outcome.RETRY] * 2

    await world.reopen()  # herald restarts: a new store object on the same files
    receiver.default = Reply(200)
    world.clock.advance(FAST.backoff_max)
    after: list[DeliveryResult] = []
    async with running(world.sender(results=after)):
        await eventually(lambda: len(after) == 2, "both events delivered")

    assert outcomes(after) == [Outcome.DELIVERED] * 2
    assert [r.attempt for r in after] == [2, 2]
    ids = [r.header("Herald-Event-Id") for r in receiver.requests]
    assert sorted(ids) == sorted(2 * [f"evt_{message.id}_sent", f"evt_{message.id}_delivered"])
    assert await pending_events(world) == 0


async def test_an_expired_lease_makes_a_dead_senders_event_due_again(
    world: World, receiver: Receiver
) -> None:
    from herald.store import Channel

    await world.sent(receiver.url())
    # A sender claims the event and dies before doing anything with it.
    lease = 60.0
    claimed = await world.store.claim_outbox(Channel.WEBHOOK, world.clock.now, lease, 10)
    assert len(claimed) == 1
    await world.reopen()

    sender = world.sender()
    try:
        assert await sender.run_once() == ()  # still leased to the dead sender
        assert receiver.requests == []
        world.clock.advance(lease)
        (result,) = await sender.run_once()
    finally:
        await sender.aclose()
    assert (result.outcome, result.attempt) == (Outcome.DELIVERED, 2)
    assert len(receiver.requests) == 1


async def test_an_event_is_given_up_after_max_attempts_and_kept_with_its_error(
    world: World, receiver: Receiver
) -> None:
    config = dataclasses.replace(FAST, max_attempts=3)
    receiver.default = Reply(500, b"nope")
    message = await world.sent(receiver.url())
    sender = world.sender(config)
    seen: list[DeliveryResult] = []
    try:
        for _ in range(config.max_attempts):
            (result,) = await sender.run_once()
            seen.append(result)
            if result.next_attempt_at is not None:
                world.clock.now = result.next_attempt_at
        world.clock.advance(10**6)
        assert await sender.run_once() == ()  # never tried again
    finally:
        await sender.aclose()

    assert outcomes(seen) == [Outcome.RETRY, Outcome.RETRY, Outcome.GAVE_UP]
    assert [r.attempt for r in seen] == [1, 2, 3]
    assert seen[-1].next_attempt_at is None
    assert seen[-1].error == "http_error: HTTP 500 Internal Server Error: nope"
    assert len(receiver.requests) == 3
    # Kept (with its error) until purge removes given-up events: exactly this one,
    # with the three attempts its message's timeline kept.
    assert [a.answer for a in await world.store.message_attempts(message.id)] == ["HTTP 500"] * 3
    assert await world.store.purge(world.clock.now, parked_before=0.0,
                                   dead_before=world.clock.now + 1) == 1 + 3  # fmt: skip


async def test_retries_follow_the_jittered_capped_exponential_schedule(
    world: World, receiver: Receiver
) -> None:
    config = dataclasses.replace(FAST, max_attempts=9, backoff_min=10.0, backoff_max=80.0)
    receiver.default = Reply(500)
    await world.sent(receiver.url())
    sender = world.sender(config)
    delays: list[float] = []
    try:
        for failures in range(1, config.max_attempts):
            (result,) = await sender.run_once()
            assert (result.outcome, result.attempt) == (Outcome.RETRY, failures)
            assert result.next_attempt_at is not None
            delay = result.next_attempt_at - result.at
            step = min(config.backoff_max, config.backoff_min * 2 ** (failures - 1))
            assert max(config.backoff_min, step / 2) <= delay <= step, (failures, delay)
            delays.append(delay)
            # The store holds the event back until exactly then.
            world.clock.now = result.next_attempt_at - 0.001
            assert await sender.run_once() == ()
            world.clock.now = result.next_attempt_at
        (last,) = await sender.run_once()
    finally:
        await sender.aclose()
    assert last.outcome is Outcome.GAVE_UP
    assert delays[0] == config.backoff_min  # jitter never goes below backoff_min
    capped = delays[3:]  # steps 80, 80, ...: jitter spreads them below the cap
    assert max(capped) <= config.backoff_max and len(set(capped)) == len(capped)
    assert len(receiver.requests) == config.max_attempts


async def test_a_receiver_that_never_answers_times_out_and_is_retried(
    world: World, receiver: Receiver
) -> None:
    config = dataclasses.replace(FAST, timeout=0.3)
    receiver.script = [Reply(mode="hang")]
    await world.sent(receiver.url())
    sender = world.sender(config)
    try:
        (first,) = await sender.run_once()
        receiver.release.set()
        assert first.outcome is Outcome.RETRY
        assert first.error is not None and first.error.startswith("timeout:")
        assert first.next_attempt_at is not None
        world.clock.now = first.next_attempt_at
        (second,) = await sender.run_once()
    finally:
        await sender.aclose()
    assert second.outcome is Outcome.DELIVERED


async def test_posts_that_hang_together_time_out_each_under_one_timer(
    world: World, receiver: Receiver
) -> None:
    """Every POST has the sender's time limit, kept by one timer for them all
    (not a ``call_later`` each: a timer per POST cost 2 µs a POST); each POST
    still ends at its own deadline, as a timeout, and is retried."""
    config = dataclasses.replace(FAST, timeout=0.5)
    receiver.script = [Reply(mode="hang")] * 6
    for _ in range(6):
        await world.sent(receiver.url())
    sender = world.sender(config)
    loop = asyncio.get_running_loop()

    def deadline_timers() -> int:
        scheduled = cast(list[asyncio.TimerHandle], loop._scheduled)  # type: ignore[attr-defined]
        return sum(1 for h in scheduled if not h.cancelled()
                   and getattr(h._callback, "__name__", "") in ("_expire", "_fire"))

    try:
        started = loop.time()
        running_once = asyncio.ensure_future(sender.run_once())
        await receiver.wait_for(6)
        assert deadline_timers() == 1  # six POSTs in flight, one timer
        results = await running_once
        took = loop.time() - started
        receiver.release.set()
    finally:
        await sender.aclose()
    assert outcomes(results) == [Outcome.RETRY] * 6
    assert all(r.error is not None and r.error.startswith("timeout:") for r in results)
    assert 0.5 <= took < 2.0
    assert deadline_timers() == 0


async def test_redirects_are_not_followed(world: World, receiver: Receiver) -> None:
    elsewhere = Receiver()
    async with elsewhere:
        location = (("Location", elsewhere.url("/elsewhere")),)
        receiver.script = [Reply(302, b"", headers=location)]
        await world.sent(receiver.url())
        sender = world.sender()
        try:
            (result,) = await sender.run_once()
        finally:
            await sender.aclose()
        assert elsewhere.requests == []
    assert result.outcome is Outcome.RETRY
    assert result.error == "http_error: HTTP 302 Found (redirects are not followed)"


async def test_an_endless_answer_is_not_read(world: World, receiver: Receiver) -> None:
    # Reading either body to its end would take the receiver's 20 s, far past the
    # 1 s timeout: the outcomes below are only reached by reading a bounded amount.
    config = dataclasses.replace(FAST, timeout=1.0)
    receiver.script = [Reply(500, mode="endless"), Reply(200, mode="endless")]
    await world.sent(receiver.url())
    sender = world.sender(config)
    try:
        (failed,) = await sender.run_once()
        assert failed.next_attempt_at is not None
        world.clock.now = failed.next_attempt_at
        (delivered,) = await sender.run_once()
    finally:
        await sender.aclose()
    assert failed.outcome is Outcome.RETRY
    prefix = "http_error: HTTP 500 Internal Server Error: "
    assert failed.error is not None and failed.error.startswith(prefix + "xxxx")
    assert len(failed.error) == len(prefix) + MAX_ERROR_BODY
    assert delivered.outcome is Outcome.DELIVERED


async def test_blocking_private_addresses_refuses_loopback_without_connecting(
    world: World, receiver: Receiver
) -> None:
    options = SenderOptions(poll_interval=0.02, block_private_addresses=True)
    await world.sent(receiver.url())
    await world.sent(f"http://localhost:{receiver.port}/hook")  # a name for loopback
    sender = world.sender(options=options)
    try:
        results = await sender.run_once()
    finally:
        await sender.aclose()
    assert outcomes(results) == [Outcome.GAVE_UP] * 2  # retrying cannot help
    assert all(r.error and r.error.startswith("blocked:") for r in results)
    assert receiver.requests == []


async def test_a_checked_name_is_connected_to_at_the_checked_address(
    world: World, receiver: Receiver
) -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    answers: dict[str, list[IPAddress]] = {
        "hooks.example.test": [loopback],
        "mixed.example.test": [loopback, ipaddress.ip_address("10.0.0.1")],
    }

    async def resolver(host: str, port: int) -> list[IPAddress]:
        return answers[host]

    options = SenderOptions(  # an operator's filter: this loopback address only
        poll_interval=0.02, block_private_addresses=True,
        address_filter=lambda address: address == loopback,
    )  # fmt: skip
    good = await world.sent(f"http://hooks.example.test:{receiver.port}/hook")
    mixed = await world.sent(f"http://mixed.example.test:{receiver.port}/hook")
    sender = world.sender(options=options, resolver=resolver)
    try:
        results = await sender.run_once()
    finally:
        await sender.aclose()
    by_id = {r.event_id: r for r in results}
    assert by_id[f"evt_{good.id}_sent"].outcome is Outcome.DELIVERED
    (refused,) = [r for r in results if r.event_id != f"evt_{good.id}_sent"]
    assert refused.outcome is Outcome.GAVE_UP
    # The error reaches the customer (GET /v1/messages/{id}): it names their host,
    # never what it resolves to (an internal name's address is not theirs to learn).
    assert refused.error == ("blocked: mixed.example.test resolves to a private, loopback or"
                             " reserved address, which herald does not post to")
    (kept,) = await world.store.failed_deliveries(mixed.id, world.account.id)
    assert (kept.next_attempt_at, kept.last_error) == (None, refused.error)
    (request,) = receiver.requests
    assert request.header("Host") == f"hooks.example.test:{receiver.port}"


async def test_a_url_herald_does_not_post_to_is_given_up_at_once(
    world: World, receiver: Receiver
) -> None:
    await world.sent("ftp://files.example.test/hook")
    sender = world.sender()
    try:
        (result,) = await sender.run_once()
    finally:
        await sender.aclose()
    assert result.outcome is Outcome.GAVE_UP
    assert result.error == "invalid_url: the callback URL's scheme must be http or https, not 'ftp'"


async def test_a_cancelled_wait_for_a_completion_write_leaves_the_write_and_the_others(
    world: World, receiver: Receiver
) -> None:
    # Deliveries within COMPLETE_DELAY share one completion write; a delivery task
    # cancelled while it waits (stop) must neither cancel that write nor fail the others.
    for _ in range(2):
        await world.sent(receiver.url())
    first, second = await world.store.claim_outbox(Channel.WEBHOOK, T0, lease=60, limit=10)
    sender = world.sender()
    try:
        cancelled = sender._complete([first.id], {})
        waiting = sender._complete([second.id], {})
        cancelled.cancel()
        await asyncio.wait_for(waiting, 5.0)
    finally:
        await sender.aclose()
    assert await pending_events(world) == 0  # both completed by the one write


async def test_stop_returns_in_flight_events_for_the_next_sender(
    world: World, receiver: Receiver
) -> None:
    receiver.default = Reply(mode="hang")
    await world.sent(receiver.url())
    results: list[DeliveryResult] = []
    options = SenderOptions(poll_interval=0.02, stop_grace=0.05)
    async with running(world.sender(options=options, results=results)):
        await receiver.wait_for(1)
    assert outcomes(results) == [Outcome.RETURNED]
    assert results[0].next_attempt_at == world.clock.now  # due again at once

    receiver.release.set()
    receiver.default = Reply(200)
    sender = world.sender()
    try:
        (result,) = await sender.run_once()  # no clock change needed
    finally:
        await sender.aclose()
    assert (result.outcome, result.attempt) == (Outcome.DELIVERED, 2)


async def test_wake_sends_new_events_without_waiting_for_the_poll(
    world: World, receiver: Receiver
) -> None:
    # Polling every 60 s: only wake() can get the event out within the 5 s wait below.
    options = SenderOptions(poll_interval=60.0)
    sender = world.sender(options=options)
    async with running(sender):
        await asyncio.sleep(0.05)  # let it find nothing and go to sleep
        assert receiver.requests == []
        await world.sent(receiver.url())
        sender.wake()
        await receiver.wait_for(1, timeout=5.0)


async def test_no_more_posts_in_flight_than_the_concurrency(
    world: World, receiver: Receiver
) -> None:
    config = dataclasses.replace(FAST, concurrency=2)
    receiver.default = Reply(mode="hang")
    for _ in range(5):
        await world.sent(receiver.url())
    results: list[DeliveryResult] = []
    async with running(world.sender(config, results=results)):
        await receiver.wait_for(2)
        await asyncio.sleep(0.2)  # room for a third request, were the bound broken
        receiver.release.set()  # from now on every request is answered at once
        await eventually(lambda: len(results) == 5, "all five delivered")
    assert outcomes(results) == [Outcome.DELIVERED] * 5
    assert receiver.max_active == 2


async def test_a_full_endpoint_holds_its_own_deliveries_back_not_the_others(
    world: World, receiver: Receiver
) -> None:
    """With ``concurrency`` above ``per_endpoint``, a busy endpoint gets no more
    deliveries started than it has connections (more would only wait in the
    HTTP client's queue, a task and a wake-up each); a second endpoint claimed
    behind them is posted to meanwhile; when the first is answered, its
    waiting deliveries go, in order."""
    config = dataclasses.replace(FAST, concurrency=8, per_endpoint=2)
    receiver.default = Reply(mode="hang")
    first = [await world.sent(receiver.url()) for _ in range(6)]
    other = Receiver()
    async with other:
        second = [await world.sent(other.url()) for _ in range(2)]
        results: list[DeliveryResult] = []
        sender = world.sender(config, results=results)
        async with running(sender):
            await receiver.wait_for(2)
            await other.wait_for(2)  # not held up behind the first endpoint's queue
            await asyncio.sleep(0.1)
            assert len(receiver.requests) == 2 and receiver.max_active == 2
            pools = sender._client._pools  # the client queues nothing
            assert all(not pool.waiters for pool in pools.values())
            assert sender.in_flight == 6  # 2 posting, 4 waiting in the sender
            receiver.release.set()
            await eventually(lambda: len(results) == 8, "all eight delivered")
        assert [json.loads(r.body)["message"]["id"] for r in receiver.requests] == [
            m.id for m in first]  # in the order they were claimed
        assert {r.outcome for r in results} == {Outcome.DELIVERED}
        assert len(other.requests) == len(second)


async def test_inbound_messages_are_posted_as_text_or_binary(
    world: World, receiver: Receiver
) -> None:
    await world.store.update_account(
        dataclasses.replace(world.account, callback_url=receiver.url("/mo"))
    )
    common = {"account_id": world.account.id, "to": "4470000", "sender": "447700900123",
              "connector": "operator-a", "received_at": T0}  # fmt: skip
    text = InboundMessage(id="in-text", body="Да, STOP".encode("utf-16-be"), encoding="ucs2",
                          data_coding=8, **common)  # fmt: skip
    binary = InboundMessage(id="in-bin", body=b"\x00\xff\x10", encoding="binary",
                            data_coding=4, **common)  # fmt: skip
    await world.store.add_inbound(text)
    await world.store.add_inbound(binary)
    sender = world.sender()
    try:
        results = await sender.run_once()
    finally:
        await sender.aclose()
    assert outcomes(results) == [Outcome.DELIVERED] * 2
    bodies = {json.loads(r.body)["inbound"]["id"]: json.loads(r.body) for r in receiver.requests}
    assert bodies["in-text"]["type"] == "message.inbound"
    assert bodies["in-text"]["event_id"] == "evt_in-text_inbound"
    assert bodies["in-text"]["inbound"]["text"] == "Да, STOP"
    assert bodies["in-bin"]["inbound"]["binary"] == "AP8Q"
    for request in receiver.requests:
        verify_signature(world.secret, request.header("Herald-Signature"), request.body,
                         now=world.clock.now)  # fmt: skip


async def test_rotating_the_secret_signs_the_next_delivery_with_the_new_one(
    world: World, receiver: Receiver
) -> None:
    old_secret = world.secret
    world.account = dataclasses.replace(world.account, webhook_secret_version=2)
    await world.store.update_account(world.account)
    await world.sent(receiver.url())
    sender = world.sender()
    try:
        (result,) = await sender.run_once()
    finally:
        await sender.aclose()
    assert result.outcome is Outcome.DELIVERED
    (request,) = receiver.requests
    header = request.header("Herald-Signature")
    verify_signature(world.secret, header, request.body, now=world.clock.now)
    with pytest.raises(SignatureMismatch):
        verify_signature(old_secret, header, request.body, now=world.clock.now)


async def test_attempts_are_counted_by_outcome(world: World, receiver: Receiver) -> None:
    metrics = Metrics(CollectorRegistry())
    receiver.script = [Reply(500)]
    await world.sent(receiver.url())
    sender = world.sender(metrics=metrics)
    try:
        (first,) = await sender.run_once()
        assert first.next_attempt_at is not None
        world.clock.now = first.next_attempt_at
        await sender.run_once()
    finally:
        await sender.aclose()

    def count(outcome: str) -> float | None:
        return metrics.registry.get_sample_value(
            "herald_webhook_deliveries_total", {"outcome": outcome}
        )

    assert (count("http_error"), count("delivered")) == (1.0, 1.0)


async def test_run_ends_with_store_closed_when_the_store_closes_under_it(
    world: World, receiver: Receiver
) -> None:
    sender = world.sender()
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.05)
    await world.store.aclose()
    with pytest.raises(StoreClosed):
        async with asyncio.timeout(5):
            await task
    await world.reopen()  # the fixture closes a live store


async def test_a_sender_stopped_before_it_ran_does_nothing_and_runs_once(
    world: World, receiver: Receiver
) -> None:
    await world.sent(receiver.url())
    sender = world.sender()
    await sender.stop()
    async with asyncio.timeout(5):
        await sender.run()  # returns at once
    assert receiver.requests == []
    with pytest.raises(RuntimeError):
        await sender.run_once()

    again = world.sender()
    task = asyncio.create_task(again.run())
    await receiver.wait_for(1)
    with pytest.raises(RuntimeError):
        await again.run()  # already running
    await again.stop()
    await task


async def test_a_fraud_block_is_posted_as_verification_blocked(
    world: World, receiver: Receiver
) -> None:
    """The pumping defence's block (docs/fraud.md, "Live") goes out through the
    same outbox, signing and retries as a status event."""
    account = dataclasses.replace(world.account, callback_url=receiver.url())
    await world.store.update_account(account)
    decision = FraudDecision(
        "dec-1", account.id, T0, "+447700900123", FraudAction.BLOCK,
        (FraudReason("loss_budget", "range1k:+44770090", {"excess": 1.8, "budget": 1.8}),),
        True, "GB", 1_000_000, None, "ver-1", None, {"use_case": "login", "ip": "192.0.2.1"},
    )  # fmt: skip
    await world.store.record_fraud_decision(decision)
    async with running(world.sender()):
        (request,) = await receiver.wait_for(1)
    verify_signature(world.secret, request.header("Herald-Signature"), request.body,
                     now=world.clock.now)  # fmt: skip
    body = json.loads(request.body)
    assert request.header("Herald-Event-Id") == body["event_id"] == "evt_dec-1_blocked"
    assert body["type"] == "verification.blocked"
    assert body["decision"] == {
        "id": "dec-1", "action": "block", "created_at": "2027-01-15T08:00:00.000Z",
        "to": "+447700900123", "country": "GB", "verification_id": "ver-1",
        "message_id": None, "price": "1.000000", "by": "engine",
        "reasons": [{"code": "loss_budget", "cell": "range1k:+44770090",
                     "figures": {"excess": 1.8, "budget": 1.8}}],
    }  # fmt: skip
    assert b"192.0.2.1" not in request.body  # the client hints stay in herald
    assert await pending_events(world) == 0
