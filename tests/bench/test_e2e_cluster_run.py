"""bench/e2e_cluster.py end to end with tiny counts: two ``herald serve`` nodes
on one PostgreSQL database, every message back (SMPP with its receipt, HTTP
final in the store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e_cluster import main
from peers.postgres import PgCluster


def test_two_postgresql_nodes_bring_every_message_back(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    out = tmp_path / "parts.json"
    # one process per node, few messages: each herald start is what takes the time
    argv = ["--setups", "pg2", "--processes", "1", "--count", "40", "--http-count", "20",
            "--warmup", "10", "--binds", "2", "--window", "4", "--http-workers", "2",
            "--upstream-binds", "2", "--json", str(out)]
    assert main(argv, pg_cluster) == 0
    parts = json.loads(out.read_text())
    assert [(p["setup"], p["part"], p["count"]) for p in parts] == [
        ("pg2", "smpp", 40), ("pg2", "http", 20)]
    assert all(p["rate"] > 0 and p["notes"] == [] for p in parts)
    for p in parts:  # CPU read for both nodes' processes and the server
        assert set(p["cpu"]) == {"front", "delivery", "postgres", "sim", "load generator"}


def test_more_nodes_than_upstream_binds_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--setups", "pg3", "--upstream-binds", "2"])
    assert "setup pg3: more nodes than --upstream-binds (2)" in capsys.readouterr().err
