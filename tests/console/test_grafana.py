"""docs/grafana/herald.json: a Grafana dashboard whose every query names a metric
herald exports (a renamed metric would leave a panel silently empty)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from herald.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "herald.json"


def _exported() -> set[str]:
    metrics = Metrics(CollectorRegistry())
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        kind = family.type
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names.update(family.name + s for s in suffixes.get(kind, ()))
    return names


def test_every_panel_queries_metrics_herald_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported()
    queried = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        for target in panel["targets"]:
            queried.update(re.findall(r"\bherald_[a-z_]+", target["expr"]))
    assert queried, "no query?"
    assert queried <= exported, queried - exported
    assert {"herald_messages_accepted_total", "herald_connector_queue"} <= queried
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
