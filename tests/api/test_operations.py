"""``/healthz`` with upstream state and the backlog gauges of ``/metrics``, on a real store.

The upstream state comes from the function ``herald serve`` passes in (its
dispatch's binds; tests/service and tests/workers drive it with real binds);
here a test sets what that function answers.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

from herald.api import UpstreamState
from herald.api._models import Health
from herald.store import Status, StatusUpdate

from .conftest import Api, ApiFactory, message


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


class Binds:
    """What dispatch says, set by the test (``None``: dispatch is not reporting)."""

    def __init__(self) -> None:
        self.state: Mapping[str, UpstreamState] | None = None

    def __call__(self) -> Mapping[str, UpstreamState] | None:
        return self.state


async def test_health_reports_the_binds_of_each_upstream(make_api: ApiFactory) -> None:
    binds = Binds()
    api: Api = await make_api(upstreams=binds)
    binds.state = {"a": UpstreamState(bound=2, binds=2), "b": UpstreamState(bound=0, binds=1)}
    answer = await api.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "upstreams": {"a": {"bound": 2, "binds": 2}, "b": {"bound": 0, "binds": 1}},
    }
    Health.model_validate(answer.json())
    # one bind is enough for "ok", even where monitors ask for an upstream
    assert (await api.client.get("/healthz", params={"require": "upstream"})).status_code == 200


async def test_no_upstream_bind_is_degraded_but_still_200(make_api: ApiFactory) -> None:
    # Intake still stores what it accepts (sent once a bind is up), so a load
    # balancer must keep sending: 200. A monitor asks for 503 with require=upstream.
    binds = Binds()
    api: Api = await make_api(upstreams=binds)
    binds.state = {"a": UpstreamState(bound=0, binds=2)}
    answer = await api.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "degraded", "reason": "no upstream bind is up",
                             "upstreams": {"a": {"bound": 0, "binds": 2}}}  # fmt: skip
    Health.model_validate(answer.json())
    strict = await api.client.get("/healthz", params={"require": "upstream"})
    assert strict.status_code == 503
    assert strict.json() == answer.json()
    assert (await api.send(message())).status_code == 202  # intake goes on

    binds.state = None  # herald serve's delivery process is not running
    answer = await api.client.get("/healthz", params={"require": "upstream"})
    assert answer.status_code == 503
    assert answer.json() == {"status": "degraded",
                             "reason": "dispatch is not running or not reporting"}  # fmt: skip

    binds.state = {}
    answer = await api.client.get("/healthz")
    assert answer.json()["reason"] == "no upstream connector is configured"


async def test_health_refuses_an_unknown_requirement(make_api: ApiFactory) -> None:
    api: Api = await make_api(upstreams=Binds())
    answer = await api.client.get("/healthz", params={"require": "everything"})
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert (error["field"], error["in"]) == ("require", "query")


async def test_metrics_show_the_store_backlog_read_at_most_every_max_age(
    make_api: ApiFactory,
) -> None:
    api: Api = await make_api()
    api.context.metrics.watch_backlog(api.store, api.clock, max_age=3600)
    api_fresh: Api = await make_api(name="fresh")  # same store, read at every scrape
    api_fresh.context.metrics.watch_backlog(api.store, api.clock, max_age=0)
    first = (await api.send(message(callback_url="https://example.test/hook"))).json()["id"]
    await api.send(message(send_at="2027-01-15T09:00:00Z"))  # scheduled: unsent, not due

    text = (await api.client.get("/metrics")).text
    assert _sample(text, "herald_messages_unsent") == 2
    assert _sample(text, "herald_messages_due") == 1
    assert _sample(text, "herald_outbox_backlog", channel="webhook") == 0
    assert _sample(text, "herald_outbox_backlog", channel="smpp") == 0

    await api.store.update_statuses([  # a webhook event
        StatusUpdate(first, Status.DELIVERED, api.clock())])
    await api.send(message())
    cached = (await api.client.get("/metrics")).text  # within max_age: the same counts
    assert _sample(cached, "herald_messages_unsent") == 2
    assert _sample(cached, "herald_outbox_backlog", channel="webhook") == 0
    fresh = (await api_fresh.client.get("/metrics")).text
    assert _sample(fresh, "herald_messages_unsent") == 2  # one sent, one more accepted
    assert _sample(fresh, "herald_messages_due") == 1
    assert _sample(fresh, "herald_outbox_backlog", channel="webhook") == 1


async def test_metrics_answer_when_the_store_cannot_count(make_api: ApiFactory) -> None:
    api: Api = await make_api()
    api.context.metrics.watch_backlog(api.store, api.clock, max_age=0)
    await api.store.aclose()
    answer = await api.client.get("/metrics")
    assert answer.status_code == 200
    assert "herald_messages_accepted_total" in answer.text
