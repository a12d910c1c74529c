"""Prometheus metrics: one registry for the process, served at ``/metrics``.

Each component declares its own metrics here, so names stay consistent and
nothing is registered twice. Labels never carry a phone number, an id, an
IMSI or any subscriber data: only bounded sets (source, status, connector,
account name chosen by the operator, rule names).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["REGISTRY", "Metrics"]

REGISTRY = CollectorRegistry(auto_describe=True)


class Metrics:
    """The platform's metrics, bound to one registry (tests make their own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
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
