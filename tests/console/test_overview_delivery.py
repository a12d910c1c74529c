"""The overview's delivery rate and receipt latency per connector and per country,
from the newest final parts of the last hour, in the admin API and on the page."""

from __future__ import annotations

import time

from herald.ids import SortableIdGenerator
from herald.store import NewMessage, ReceiptUpdate, SegmentRecord, Source, Status

from .conftest import Console


async def _finished(console: Console, connector: str, to: str, status: Status,
                    after: float) -> None:
    """A message to ``to`` sent through ``connector``; its receipt ``after`` seconds later."""
    acme = await console.store.get_account_by_name("acme")
    assert acme is not None
    now = time.time() - 600
    message = NewMessage(id=SortableIdGenerator().new_id(now), account_id=acme.id,
                         source=Source.HTTP, to=to, sender="ACME", body=b"hi", encoding="gsm7",
                         data_coding=0, segments=1, accepted_at=now, expires_at=now + 3600)
    await console.store.accept([message])
    key = message.id
    await console.store.record_segments([
        SegmentRecord(message.id, 0, connector, key, key, now + 1)])
    await console.store.apply_receipts([ReceiptUpdate(connector, key, status, now + 1 + after)])


async def test_delivery_and_receipt_latency_by_connector_and_by_country(
    console: Console,
) -> None:
    for to, after in (("4915112345678", 2.0), ("4915112345679", 4.0), ("4915112345670", 30.0)):
        await _finished(console, "eu-1", to, Status.DELIVERED, after)
    await _finished(console, "eu-1", "447700900123", Status.UNDELIVERED, 5.0)
    await _finished(console, "eu-2", "447700900124", Status.DELIVERED, 0.5)
    api = console.client(Authorization=f"Bearer {console.read_key}")
    o = (await api.get("/v1/admin/overview")).json()
    eu1, eu2 = o["connectors"]
    assert (eu1["finals"], eu1["delivery_rate"], eu1["latency_p50"], eu1["latency_p90"]) == (
        4, 0.75, 4.0, 30.0)
    assert (eu2["finals"], eu2["delivery_rate"], eu2["latency_p50"]) == (1, 1.0, 0.5)
    assert o["countries"] == [
        {"country": "DE", "finals": 3, "delivery_rate": 1.0, "latency_p50": 4.0,
         "latency_p90": 30.0},
        {"country": "GB", "finals": 2, "delivery_rate": 0.5, "latency_p50": 0.5,
         "latency_p90": 0.5}]
    assert isinstance(o["history_day"], list)
    client, _ = await console.signed_in(console.read_key)
    live = (await client.get("/console/overview/live", headers={"HX-Request": "true"})).text
    assert ('<tr><td>DE</td><td class="num">3</td><td class="num delivery">100.0 %</td>\n'
            '<td class="latency">4.0 s, 30.0 s</td></tr>') in live
    assert '<td class="latency">500 ms, 500 ms</td>' in live
    assert 'id="chart-hour"' in live and 'id="chart-day"' in live


async def test_the_oldest_queued_message_per_connector(console: Console) -> None:
    # what dispatch's gauges say (tests/workers/test_upstream_health.py reads them
    # from a real queue): eu-1 has 3 parts waiting, the oldest for 95 s; eu-2 none
    console.metrics.connector_queue.labels("eu-1").set(3)
    console.metrics.connector_oldest.labels("eu-1").set(95.04)
    console.metrics.connector_queue.labels("eu-2").set(0)
    console.metrics.connector_oldest.labels("eu-2").set(0)
    api = console.client(Authorization=f"Bearer {console.read_key}")
    eu1, eu2 = (await api.get("/v1/admin/overview")).json()["connectors"]
    assert (eu1["queue"], eu1["oldest_queued_seconds"]) == (3, 95.0)
    assert (eu2["queue"], eu2["oldest_queued_seconds"]) == (0, None)
    client, _ = await console.signed_in(console.read_key)
    live = (await client.get("/console/overview/live", headers={"HX-Request": "true"})).text
    assert '<td class="queue">3</td><td class="oldest">95.0 s</td>' in live
    assert '<td class="queue">0</td><td class="oldest">\u2013</td>' in live
