"""Prometheus metrics: one registry for the process, served at ``/metrics``.

Each component declares its own metrics here, so names stay consistent and
nothing is registered twice. Labels never carry a phone number, an id, an
IMSI or any subscriber data: only bounded sets (source, status, connector,
account name chosen by the operator, rule names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from herald.store import Status

__all__ = ["REGISTRY", "Metrics", "Snapshot"]

#: Another process's metrics in the Prometheus text format (empty: none yet).
Snapshot = Callable[[], bytes]

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
