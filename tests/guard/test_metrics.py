"""The guard proxy's ``/metrics``: verdict counters and latency, scraped over real HTTP.

The proxy runs between two M3UA endpoints on loopback TCP (as in
test_proxy.py); its metrics server listens on loopback too. The CLI test runs
``herald guard proxy --metrics`` as a subprocess.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from herald.guard.metrics import MAX_REQUEST_HEAD, MetricsServer, proxy_registry
from herald.guard.proxy import LATENCY_BUCKETS

from . import m3ua_fixtures as fx
from .builders import (
    FOREIGN,
    HLR,
    HOME_IMSI,
    HOME_MSISDN,
    MSC_HOME,
    NEAR_SMSC,
    POLICY_TOML,
)
from .test_proxy import WAIT, Rig, _rig

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Rig, str]]:
    rig, peer = await _rig("udts", extra_policy=getattr(request, "param", ""))
    server = MetricsServer(proxy_registry(rig.proxy))
    host, port = await server.start("127.0.0.1", 0)
    try:
        yield rig, f"http://{host}:{port}"
    finally:
        await server.close()
        await rig.a.close()
        await rig.b.close()
        await rig.proxy.close()
        peer.close()


async def test_verdicts_and_latency_are_counted_without_subscriber_data(
    served: tuple[Rig, str],
) -> None:
    rig, url = served
    sri, otid = fx.sri_sm()
    await rig.a.send(sri, fx.ati(), fx.aspup())  # allowed, blocked (answered), passed
    assert await rig.b.next() == sri
    assert await rig.b.next() == fx.aspup()
    await rig.a.next()  # the UDTS for the ATI
    await rig.b.send(fx.sri_sm_result(otid))
    await rig.a.next()
    async with httpx.AsyncClient(timeout=WAIT) as client:
        answer = await client.get(f"{url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    got = _samples(answer.text)

    def verdicts(action: str, rule: str, category: str) -> float:
        key = (("action", action), ("category", category), ("rule", rule))
        return got.get(("herald_guard_verdicts_total", key), 0.0)

    assert verdicts("block", "cat1", "cat1") == 1  # the AnyTimeInterrogation
    assert verdicts("allow", "none", "sms") == 1  # the SRI-SM
    assert verdicts("allow", "none", "none") == 1  # its answer: a result, no operation
    assert sum(v for (name, _), v in got.items() if name == "herald_guard_verdicts_total") == 3
    assert got[("herald_guard_udts_sent_total", ())] == 1
    assert got[("herald_guard_passed_through_total", ())] == 1
    assert got[("herald_guard_connections_total", ())] == 1
    assert got[("herald_guard_home_routed_total", ())] == 0  # no [home_routing] here
    assert got[("herald_guard_connections_open", ())] == 1
    assert got[("herald_guard_latency_seconds_count", ())] == 3
    assert got[("herald_guard_latency_seconds_bucket", (("le", "+Inf"),))] == 3
    assert 0 < got[("herald_guard_latency_seconds_sum", ())] < 3 * WAIT
    buckets = [k for k in got if k[0] == "herald_guard_latency_seconds_bucket"]
    assert len(buckets) == len(LATENCY_BUCKETS)
    assert ("process_cpu_seconds_total", ()) in got
    # the red line: no IMSI, number or global title in any name, label or value
    for secret in (HOME_IMSI, HOME_MSISDN, FOREIGN, HLR, MSC_HOME, NEAR_SMSC):
        assert secret not in answer.text


@pytest.mark.parametrize("served", ["[sms]\nlookup_only_window_s = 1\n"], indirect=True,
                         ids=["1-s-window"])
async def test_late_alerts_are_counted_by_rule(served: tuple[Rig, str]) -> None:
    rig, url = served
    sri, otid = fx.sri_sm()
    await rig.a.send(sri)
    await rig.b.next()
    await rig.b.send(fx.sri_sm_result(otid))  # an IMSI handed out, and no delivery follows
    await rig.a.next()
    deadline = time.monotonic() + WAIT
    key = ("herald_guard_late_alerts_total", (("rule", "lookup-only"),))
    async with httpx.AsyncClient(timeout=WAIT) as client:
        while (got := _samples((await client.get(f"{url}/metrics")).text)).get(key) != 1:
            assert time.monotonic() < deadline, got  # the timer runs every second
            await asyncio.sleep(0.1)


async def test_only_get_metrics_is_served(served: tuple[Rig, str]) -> None:
    _, url = served
    async with httpx.AsyncClient(timeout=WAIT) as client:
        assert (await client.get(f"{url}/")).status_code == 404
        assert (await client.post(f"{url}/metrics")).status_code == 405
        head = await client.head(f"{url}/metrics")
        assert head.status_code == 200 and head.content == b""
        assert (await client.get(f"{url}/metrics?name[]=x")).status_code == 200
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_HEAD)  # never ends
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # closed, unanswered
    writer.close()


def test_the_cli_serves_metrics_where_asked(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_TOML)
    proc = subprocess.Popen(
        [sys.executable, "-m", "herald", "guard", "proxy", "--listen", "127.0.0.1:0",
         "--peer", "127.0.0.1:9", "--policy", str(policy), "--metrics", "0",
         "--duration", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[0].startswith("herald guard proxy: listening on 127.0.0.1:"), lines
        prefix = "herald guard proxy: metrics on http://127.0.0.1:"  # loopback by default
        assert lines[1].startswith(prefix), lines
        url = lines[1].split(" on ", 1)[1].strip()
        text = httpx.get(url, timeout=WAIT).text
        assert "herald_guard_verdicts_total" in text and "herald_guard_latency_seconds" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert "connections 0" in out


def test_the_cli_refuses_a_bad_metrics_address(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_TOML)
    result = subprocess.run(
        [sys.executable, "-m", "herald", "guard", "proxy", "--listen", "127.0.0.1:0",
         "--peer", "127.0.0.1:9", "--policy", str(policy), "--metrics", "localhost"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--metrics: 'localhost' is not PORT or HOST:PORT" in result.stderr
