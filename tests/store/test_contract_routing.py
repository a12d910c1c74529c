"""Store contract: routes and connector states with their generation, delivery
counts per connector, and the rule that routed a message."""

from __future__ import annotations

import pytest

from herald.store import (
    Channel,
    ConnectorState,
    DeliveryCounts,
    FinalPart,
    InvalidRecord,
    MessageRoute,
    ReceiptUpdate,
    RouteRecord,
    SegmentRecord,
    Status,
    Store,
    StoredRoutes,
)

from .conftest import T0, MessageFactory


async def test_routes_and_connector_states_share_one_generation(store: Store) -> None:
    assert await store.routing_generation() == 0
    assert await store.get_routes() is None and await store.connector_states() == ()
    first = await store.put_routes(StoredRoutes("[[rule]]", "a.toml", T0))
    assert first == await store.routing_generation() > 0
    assert await store.get_routes() == StoredRoutes("[[rule]]", "a.toml", T0, first)
    disabled = await store.set_connector_state(ConnectorState("up1", True, "maintenance", T0 + 1))
    replaced = await store.put_routes(StoredRoutes("# none", "b.toml", T0 + 2))
    assert first < disabled < replaced == await store.routing_generation()
    stored = await store.get_routes()
    assert stored is not None and (stored.rules, stored.source) == ("# none", "b.toml")
    enabled = await store.set_connector_state(ConnectorState("up1", False, None, T0 + 3))
    await store.set_connector_state(ConnectorState("up0", True, None, T0 + 4))
    assert await store.connector_states() == (
        ConnectorState("up0", True, None, T0 + 4), ConnectorState("up1", False, None, T0 + 3))
    removed = await store.remove_routes()
    assert removed > enabled and await store.get_routes() is None
    assert await store.remove_routes() == removed  # nothing left to remove


async def _sent(store: Store, make_message: MessageFactory, connector: str, n: int,
                status: Status, at: float) -> None:
    messages = [make_message() for _ in range(n)]
    await store.accept(messages)
    for k, m in enumerate(messages):
        key = f"{connector}-{status.label}-{at}-{k}"
        await store.record_segments([SegmentRecord(m.id, 0, connector, key, key, at - 1)])
        await store.apply_receipts([ReceiptUpdate(connector, key, status, at)])


async def test_delivery_counts_are_the_newest_final_segments_of_each_connector(
    store: Store, make_message: MessageFactory
) -> None:
    await _sent(store, make_message, "up1", 3, Status.DELIVERED, T0 + 10)
    await _sent(store, make_message, "up1", 2, Status.UNDELIVERED, T0 + 20)
    await _sent(store, make_message, "up1", 4, Status.DELIVERED, T0 - 1000)  # before the window
    await _sent(store, make_message, "up2", 1, Status.REJECTED, T0 + 30)
    messages = [make_message()]
    await store.accept(messages)
    await store.record_segments([  # no receipt
        SegmentRecord(messages[0].id, 0, "up2", "waiting", "waiting", T0 + 5)])
    counts = await store.delivery_counts(["up1", "up2", "up3"], T0, 100)
    assert counts == {"up1": DeliveryCounts("up1", 3, 5), "up2": DeliveryCounts("up2", 0, 1),
                      "up3": DeliveryCounts("up3", 0, 0)}
    newest = await store.delivery_counts(["up1"], T0, 2)  # the two newest: undelivered
    assert newest == {"up1": DeliveryCounts("up1", 0, 2)}


async def test_recent_finals_carry_the_number_and_the_times(
    store: Store, make_message: MessageFactory
) -> None:
    german = make_message(to="+4915112345678")
    british = make_message(to="+447700900123")
    waiting = make_message()
    await store.accept([german, british, waiting])
    for m, status, at in ((german, Status.DELIVERED, T0 + 10), (british, Status.UNDELIVERED,
                                                                 T0 + 20)):  # fmt: skip
        await store.record_segments([SegmentRecord(m.id, 0, "up1", m.id, m.id, at - 4)])
        await store.apply_receipts([ReceiptUpdate("up1", m.id, status, at)])
    await store.record_segments([  # no receipt: not final
        SegmentRecord(waiting.id, 0, "up1", "w", "w", T0)])
    found = await store.recent_finals(["up1", "up2"], T0, 10)
    sent = [(await store.get_message(m.id)).sent_at for m in (german, british)]
    assert None not in sent
    assert sorted(found, key=lambda f: f.final_at) == [
        FinalPart("up1", "+4915112345678", True, sent[0], T0 + 10),
        FinalPart("up1", "+447700900123", False, sent[1], T0 + 20)]
    assert [f.to for f in await store.recent_finals(["up1"], T0, 1)] == ["+447700900123"]
    assert await store.recent_finals(["up1"], T0 + 30, 10) == []


async def test_the_rule_and_connector_of_a_message(
    store: Store, make_message: MessageFactory
) -> None:
    routed, waiting, bare = make_message(), make_message(), make_message()
    await store.accept([routed, waiting, bare])
    await store.record_routes([RouteRecord(routed.id, "first", T0),
                               RouteRecord(waiting.id, "otp-de", T0)])
    await store.record_routes([RouteRecord(routed.id, "de-least-cost", T0 + 1)])  # re-routed
    await store.record_segments([SegmentRecord(routed.id, 0, "up2", "x", "x", T0 + 2)])
    await store.record_segments([SegmentRecord(bare.id, 0, "up1", "y", "y", T0 + 2)])
    routes = await store.get_message_routes([routed.id, waiting.id, bare.id, "nope"])
    assert routes == {routed.id: MessageRoute("up2", "de-least-cost"),
                      waiting.id: MessageRoute(None, "otp-de"), bare.id: MessageRoute("up1", None)}
    assert await store.get_message_routes([]) == {}


async def test_the_last_record_of_a_message_in_one_batch_wins(
    store: Store, make_message: MessageFactory
) -> None:
    m = make_message()
    await store.accept([m])
    await store.record_routes([RouteRecord(m.id, "first", T0), RouteRecord(m.id, "second", T0),
                               RouteRecord(m.id, "third", T0 + 1)])
    assert await store.get_message_routes([m.id, m.id]) == {m.id: MessageRoute(None, "third")}
    assert await store.delivery_counts([], T0, 10) == {}
    assert await store.recent_finals([], T0, 10) == []


async def test_a_claimed_status_event_carries_its_messages_route(
    store: Store, make_message: MessageFactory
) -> None:
    # The webhook sender builds each body from the claim alone (issue 7): the
    # route it reports is the one get_message_routes reads.
    routed, bare = (make_message(callback_url="https://hooks.example/h") for _ in range(2))
    await store.accept([routed, bare])
    await store.record_routes([RouteRecord(routed.id, "de-least-cost", T0)])
    for m, connector in ((routed, "up2"), (bare, "up1")):
        await store.record_segments([SegmentRecord(m.id, 0, connector, m.id, m.id, T0 + 1)])
        await store.apply_receipts([ReceiptUpdate(connector, m.id, Status.DELIVERED, T0 + 2)])
    events = await store.claim_outbox(Channel.WEBHOOK, T0 + 3, lease=30, limit=10)
    finals = {e.subject_id: e.route for e in events if e.status is Status.DELIVERED}
    assert finals == {routed.id: MessageRoute("up2", "de-least-cost"),
                      bare.id: MessageRoute("up1", None)}
    assert finals == await store.get_message_routes([routed.id, bare.id])


def test_route_records_check_their_fields() -> None:
    with pytest.raises(InvalidRecord):
        RouteRecord("m", "", T0)
    with pytest.raises(InvalidRecord):
        RouteRecord("m", "r" * 65, T0)
    with pytest.raises(InvalidRecord):
        ConnectorState("", True, None, T0)
    with pytest.raises(InvalidRecord):
        StoredRoutes("x" * (64 * 1024 * 1024 + 1), "big.toml", T0)
