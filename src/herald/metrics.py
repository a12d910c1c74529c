"""Prometheus metrics: one registry for the process, served at ``/metrics``.

Each component declares its own metrics here, so names stay consistent and
nothing is registered twice. Labels never carry a phone number, an id, an
IMSI or any subscriber data: only bounded sets (source, status, connector,
account name chosen by the operator, rule names).

Most metrics are counted where things happen. Two kinds are read when
``/metrics`` is scraped instead: the connectors' queues (:meth:`Metrics.watch_connectors`:
a gauge function reads each queue's length) and what waits in the store
(:meth:`Metrics.watch_backlog`: counts that cost a read, so :meth:`Metrics.refresh`
repeats them at most every :data:`BACKLOG_MAX_AGE` seconds).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from herald.store import Backlog, Status

__all__ = ["BACKLOG_MAX_AGE", "REGISTRY", "BacklogSource", "Metrics", "QueueView", "Snapshot"]

log = logging.getLogger("herald.metrics")

#: Another process's metrics in the Prometheus text format (empty: none yet).
Snapshot = Callable[[], bytes]
#: Seconds the store's backlog counts are reused between scrapes. Counting costs
#: about 25 ms per million rows waiting (``Store.backlog``), so scrapes every few
#: seconds of a large backlog cost a reader a few per cent at most.
BACKLOG_MAX_AGE: Final = 5.0


class QueueView(Protocol):
    """What the queue gauges read of a dispatch connector."""

    @property
    def name(self) -> str: ...

    @property
    def load(self) -> int:
        """Parts queued (retries included) plus parts in flight."""
        ...

    @property
    def inflight(self) -> int:
        """Parts submitted and not yet answered."""
        ...

    @property
    def oldest_queued(self) -> float | None:
        """When the oldest message with a part waiting in the queue was accepted."""
        ...


class BacklogSource(Protocol):
    """The store, as the backlog gauges read it."""

    async def backlog(self, now: float) -> Backlog: ...

REGISTRY = CollectorRegistry(auto_describe=True)


class Metrics:
    """The platform's metrics, bound to one registry (tests make their own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry: CollectorRegistry | Combined = registry
        self.local = registry
        self.accepted = Counter(
            "herald_messages_accepted", "Messages accepted (durably stored).",
            ["source"], registry=registry,
        )
        self.rejected_at_intake = Counter(
            "herald_messages_refused", "Submissions refused at intake, by reason.",
            ["source", "reason"], registry=registry,
        )
        self.final = Counter(
            "herald_messages_final", "Messages that reached a final status.",
            ["status"], registry=registry,
        )
        self.submitted = Counter(
            "herald_upstream_submits", "submit_sm sent upstream, by connector and outcome.",
            ["connector", "outcome"], registry=registry,
        )
        self.binds = Gauge(
            "herald_smpp_binds", "Bound SMPP sessions.", ["side", "name"], registry=registry,
        )
        self.webhooks = Counter(
            "herald_webhook_deliveries", "Webhook POST attempts, by outcome.",
            ["outcome"], registry=registry,
        )
        self.http_requests = Counter(
            "herald_http_requests", "HTTP API requests, by route and status code.",
            ["route", "code"], registry=registry,
        )
        self.latency = Histogram(
            "herald_accept_to_submit_seconds", "Time from acceptance to submit_sm upstream.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.connector_queue = Gauge(
            "herald_connector_queue",
            "Message parts in a connector's queue, waiting to be submitted (retries included).",
            ["connector"], registry=registry,
        )
        self.connector_inflight = Gauge(
            "herald_connector_inflight", "submit_sm sent upstream and not yet answered.",
            ["connector"], registry=registry,
        )
        self.connector_oldest = Gauge(
            "herald_connector_oldest_queued_seconds",
            "Age of the oldest message with a part in a connector's queue (0: none waits).",
            ["connector"], registry=registry,
        )
        self.unsent = Gauge(
            "herald_messages_unsent", "Messages stored and not yet sent (read from the store).",
            registry=registry,
        )
        self.due = Gauge(
            "herald_messages_due",
            "Unsent messages claimable now, waiting for dispatch (read from the store).",
            registry=registry,
        )
        self.outbox = Gauge(
            "herald_outbox_backlog",
            "Events waiting to be delivered (due or retrying), by channel: webhook, smpp.",
            ["channel"], registry=registry,
        )
        self._refreshers: list[Callable[[], Awaitable[None]]] = []

    def watch_connectors(self, connectors: Iterable[QueueView]) -> None:
        """``herald_connector_queue`` and ``herald_connector_inflight`` read these
        connectors when collected (in the process that runs dispatch)."""
        for connector in connectors:
            self.connector_queue.labels(connector.name).set_function(partial(_queued, connector))
            self.connector_inflight.labels(connector.name).set_function(
                partial(_inflight, connector)
            )
            self.connector_oldest.labels(connector.name).set_function(
                partial(_oldest, connector)
            )

    def watch_backlog(
        self,
        store: BacklogSource,
        clock: Callable[[], float],
        max_age: float = BACKLOG_MAX_AGE,
    ) -> None:
        """Show what waits in ``store`` (``herald_messages_unsent``, ``_due``,
        ``herald_outbox_backlog``), read by :meth:`refresh` at most every
        ``max_age`` seconds. One process per store should (the front)."""
        self._refreshers.append(_BacklogGauges(self, store, clock, max_age).refresh)

    async def refresh(self) -> None:
        """Bring the gauges read from elsewhere up to date; call before rendering."""
        for refresh in self._refreshers:
            await refresh()

    def count_finals(self, counts: Mapping[Status, int]) -> None:
        """``herald_messages_final_total``: how many messages reached each final
        status in a commit (a store's ``watch_finals`` calls this): every way a
        message ends is counted, receipts included, and each once."""
        for status, n in counts.items():
            self.final.labels(status.label).inc(n)

    def include(self, snapshot: Snapshot) -> None:
        """Show another process's metrics with this one's (``herald serve``'s
        delivery process): :attr:`registry`, which ``/metrics`` renders, sums
        the samples both have and adds the others."""
        if not isinstance(self.registry, Combined):
            self.registry = Combined(self.local)
        self.registry.sources.append(snapshot)


def _oldest(connector: QueueView) -> float:
    accepted_at = connector.oldest_queued
    return 0.0 if accepted_at is None else max(0.0, time.time() - accepted_at)


def _queued(connector: QueueView) -> float:
    return connector.load - connector.inflight


def _inflight(connector: QueueView) -> float:
    return connector.inflight


class _BacklogGauges:
    """The store's backlog counts, read again once they are ``max_age`` seconds old.

    Concurrent scrapes share one read. A failed read keeps the last values
    (``/healthz`` reports a store that does not answer) and is retried only
    after ``max_age``, so a broken store is not asked at every scrape.
    """

    def __init__(
        self, metrics: Metrics, store: BacklogSource, clock: Callable[[], float], max_age: float
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._clock = clock
        self._max_age = max_age
        self._read_at = -max_age
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at < self._max_age:
                return
            try:
                backlog = await self._store.backlog(self._clock())
            except Exception as exc:  # a scrape answers whatever the store does
                log.warning("metrics: the store's backlog could not be read: %r", exc)
                return
            finally:
                self._read_at = time.monotonic()
            m = self._metrics
            m.unsent.set(backlog.unsent)
            m.due.set(backlog.due)
            m.outbox.labels("webhook").set(backlog.webhooks)
            m.outbox.labels("smpp").set(backlog.smpp_events)


class Combined:
    """A registry's families plus other processes' snapshots, summed sample by sample.

    Every process declares the same families (:class:`Metrics`), each counts
    what it does, so the sum is the platform's figure: counters and histogram
    buckets add up, and gauges (binds, labelled by side and name) are held by
    one process each. ``_created`` series stay the local process's.
    """

    def __init__(self, local: CollectorRegistry) -> None:
        self.local = local
        self.sources: list[Snapshot] = []

    def collect(self) -> Iterator[Metric]:
        families = {family.name: family for family in self.local.collect()}
        for source in self.sources:
            text = source()
            if not text:
                continue
            for family in text_string_to_metric_families(text.decode("utf-8", "replace")):
                mine = families.get(family.name)
                if family.name.endswith("_created") or mine is None:
                    continue  # the start times of another process's series; or unknown here
                index = {(s.name, tuple(sorted(s.labels.items()))): n
                         for n, s in enumerate(mine.samples)}  # fmt: skip
                for sample in family.samples:
                    if sample.name.endswith("_created"):
                        continue
                    n = index.get((sample.name, tuple(sorted(sample.labels.items()))))
                    if n is None:
                        mine.samples.append(sample)
                    else:
                        mine.samples[n] = mine.samples[n]._replace(
                            value=mine.samples[n].value + sample.value
                        )
        yield from families.values()
