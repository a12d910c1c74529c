"""The guard proxy's ``/metrics``: its counters in the Prometheus text format.

:class:`ProxyCollector` reads a :class:`~herald.guard.proxy.GuardProxy`'s
counters when scraped, so judging a message costs no more than the plain
integer increments the proxy makes anyway. Labels are the verdict's action,
rule and the operation's category: never an IMSI, a number, a global title or
a node address (the red line: ``docs/guard.md``).

:class:`MetricsServer` answers ``GET /metrics`` over HTTP/1.1 on the proxy's
own event loop: one request per connection, then close. It reads at most
:data:`MAX_REQUEST_HEAD` octets for at most :data:`REQUEST_TIMEOUT` seconds
and answers anything else with 404 or 405, so a stray client costs little.
It listens on loopback unless told otherwise (``--metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from herald.guard.proxy import GuardProxy

__all__ = [
    "DEFAULT_HOST",
    "MAX_REQUEST_HEAD",
    "REQUEST_TIMEOUT",
    "MetricsServer",
    "ProxyCollector",
    "proxy_registry",
]

log = logging.getLogger("herald.guard.metrics")

#: Where ``--metrics PORT`` listens: this host only, like herald's own API.
DEFAULT_HOST: Final = "127.0.0.1"
#: The request line and headers of a scrape fit in far less.
MAX_REQUEST_HEAD: Final = 8192
#: Seconds a client has to send its request head.
REQUEST_TIMEOUT: Final = 5.0


class ProxyCollector(Collector):
    """A proxy's counters and latency histogram, read at each scrape."""

    def __init__(self, proxy: GuardProxy) -> None:
        self.proxy = proxy

    def collect(self) -> Iterator[Metric]:
        stats, latency = self.proxy.stats, self.proxy.latency
        verdicts = CounterMetricFamily(
            "herald_guard_verdicts",
            "M3UA DATA messages judged, by action, rule and operation category.",
            labels=["action", "rule", "category"],
        )
        for (action, rule, category), count in sorted(
            stats.verdicts.items(), key=lambda item: str(item[0])
        ):
            rule_name = rule.value if rule is not None else "none"
            verdicts.add_metric([action.value, rule_name, category.value], count)
        yield verdicts
        late = CounterMetricFamily(
            "herald_guard_late_alerts",
            "Alerts raised by the timer (lookups not followed by a delivery), by rule.",
            labels=["rule"],
        )
        for rule_name, count in sorted(stats.late_by_rule.items()):
            late.add_metric([rule_name], count)
        yield late
        for name, help_text, value in (
            ("herald_guard_udts_sent", "Blocked messages answered with a UDTS/XUDTS.",
             stats.udts_sent),
            ("herald_guard_passed_through",
             "M3UA messages without SCCP user data (ASP management, SSNM), passed unjudged.",
             stats.passed_through),
            ("herald_guard_framing_errors",
             "Streams closed because their M3UA framing was broken.", stats.framing_errors),
            ("herald_guard_connections", "Connections accepted.", stats.connections),
            ("herald_guard_home_routed",
             "Messages rewritten by SMS home routing (answers, restored deliveries).",
             stats.home_routed),
        ):  # fmt: skip
            yield CounterMetricFamily(name, help_text, value=value)
        yield GaugeMetricFamily(
            "herald_guard_connections_open", "Connections open through the proxy.",
            value=stats.open_connections,
        )  # fmt: skip
        router = self.proxy.home_router
        if router is not None:
            entries = GaugeMetricFamily(
                "herald_guard_home_routing_entries",
                "SMS home routing state, by table (bounded by home_routing.max_entries).",
                labels=["table"],
            )
            for table, size in sorted(router.sizes.items()):
                entries.add_metric([table], size)
            yield entries
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for bound, count in zip(latency.bounds, latency.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        if not buckets or buckets[-1][0] != "+Inf":
            buckets.append(("+Inf", latency.total))
        yield HistogramMetricFamily(
            "herald_guard_latency_seconds",
            "Time the proxy adds to a judged message: its last octet in to its forwarding.",
            buckets=buckets, sum_value=latency.sum,
        )  # fmt: skip


def proxy_registry(proxy: GuardProxy) -> CollectorRegistry:
    """A registry with ``proxy``'s metrics and the process's (CPU, memory, descriptors)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ProxyCollector(proxy))
    ProcessCollector(registry=registry)
    return registry


class MetricsServer:
    """``GET /metrics`` on ``registry``. ``await start(host, port)``, ``await close()``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free one)."""
        self._server = await asyncio.start_server(
            self._handle, host, port, limit=MAX_REQUEST_HEAD
        )
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                    ConnectionError):  # fmt: skip
                return  # not HTTP, too long or too slow: close
            method, path = _request_line(head)
            if path.split("?", 1)[0] != "/metrics":
                writer.write(_answer(404, b"not found\n", "text/plain"))
            elif method not in ("GET", "HEAD"):
                writer.write(_answer(405, b"method not allowed\n", "text/plain", "Allow: GET"))
            else:
                body = generate_latest(self.registry)
                writer.write(_answer(200, body, CONTENT_TYPE_LATEST, head_only=method == "HEAD"))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        except Exception:
            log.exception("metrics: answering a request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _request_line(head: bytes) -> tuple[str, str]:
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    return (parts[0], parts[1]) if len(parts) == 3 else ("", "")


_REASONS: Final = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}


def _answer(code: int, body: bytes, media_type: str, *extra: str,
            head_only: bool = False) -> bytes:  # fmt: skip
    lines = [f"HTTP/1.1 {code} {_REASONS[code]}", f"Content-Type: {media_type}",
             f"Content-Length: {len(body)}", "Connection: close", *extra]  # fmt: skip
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (b"" if head_only else body)
