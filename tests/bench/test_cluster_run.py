"""bench/cluster.py end to end with tiny counts: two node processes on one
PostgreSQL database, and every accepted message completed exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster import ACCEPT_BATCH, exactly_once, main
from herald.store import Status


def test_two_nodes_complete_every_accepted_message_exactly_once(
    pg_dsn: str, tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    argv = ["--dsn", pg_dsn, "--nodes", "2", "--workers", "2", "--cycles", "3", "--batch-ms", "2",
            "--waits", "--json", str(out)]
    assert main(argv) == 0
    (scenario,) = json.loads(out.read_text())
    accepted = 2 * 2 * 3 * ACCEPT_BATCH
    assert scenario["accepted"] == scenario["stored"] == accepted
    assert scenario["completed"] + scenario["drained"] == accepted
    assert scenario["completed"] > 0  # the nodes did the work, not only the drainer
    assert scenario["problems"] == []
    # --waits: the nodes' backends were sampled (busy or waiting) while they ran
    assert sum(scenario["waits"].values()) > 0


def test_two_nodes_on_the_ports_claim_complete_every_message_exactly_once(
    pg_dsn: str, tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    argv = ["--dsn", pg_dsn, "--port-claim", "--nodes", "2", "--workers", "2", "--cycles", "2",
            "--json", str(out)]
    assert main(argv) == 0
    (scenario,) = json.loads(out.read_text())
    accepted = 2 * 2 * 2 * ACCEPT_BATCH
    assert scenario["accepted"] == scenario["stored"] == accepted
    assert scenario["completed"] + scenario["drained"] == accepted
    assert scenario["completed"] > 0
    assert scenario["problems"] == []


def test_the_check_names_duplicates_losses_and_leftovers() -> None:
    sent = {int(Status.SENT): 3}
    assert exactly_once(3, [[1, 2], [3]], 3, sent, 0) == []
    assert exactly_once(3, [[1, 2], [2, 3]], 3, sent, 0) == [
        "1 completions of a message already completed"]
    assert exactly_once(3, [[1, 2]], 3, sent, 0) == ["3 accepted but 2 completed"]
    assert exactly_once(3, [[1, 2, 3]], 2, {int(Status.SENT): 2}, 1) == [
        "3 accepted but 2 stored", "1 left in the queue"]
    assert exactly_once(1, [[1]], 1, {int(Status.ACCEPTED): 1}, 0) == [
        "messages not sent: {'accepted': 1}"]


def test_server_settings_are_name_value_and_for_the_private_cluster_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--server-set", "commit_delay", "--quick"])
    assert exc.value.code == 2
    assert "--server-set takes NAME=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--server-set", "commit_delay=1000", "--dsn", "postgresql://127.0.0.1:1/x"])
    assert "not with --dsn" in capsys.readouterr().err


def test_intervals_report_the_servers_wal_checkpoints_and_sizes(
    pg_dsn: str, tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    argv = ["--dsn", pg_dsn, "--nodes", "1", "--workers", "1", "--seconds", "2",
            "--interval", "1", "--json", str(out)]
    assert main(argv) == 0
    (scenario,) = json.loads(out.read_text())
    server = scenario["server"]
    assert len(server) == 2  # read at the start, after 1 s and after the nodes ended
    assert sum(interval["messages"] for interval in server) == scenario["completed"] > 0
    # every message writes WAL (its insert, claim, completion and commits); a
    # backend reports its counters about once a second, and at its exit, so the
    # run's whole is checked (the last reading is taken after the nodes ended)
    wal = sum(interval["wal_bytes_per_msg"] * interval["messages"] for interval in server)
    assert wal / scenario["completed"] > 100
    for interval in server:
        assert 0 <= interval["fpi_share"] <= 1
        assert interval["checkpoints_timed"] >= 0 and interval["checkpoints_req"] >= 0
    # the table holds what the loop accepted: it does not shrink
    assert server[0]["heap"] <= server[1]["heap"] and server[1]["heap"] > 0
    assert server[1]["indexes"] > 0


@pytest.mark.parametrize(("flags", "expected"), [
    ([], {"max_wal_size": "8GB", "wal_compression": "lz4", "shared_buffers": "1GB"}),
    (["--stock"], {"max_wal_size": "1GB", "wal_compression": "off", "shared_buffers": "128MB"}),
])
def test_the_private_cluster_runs_the_recommended_settings_unless_stock(
    tmp_path: Path, flags: list[str], expected: dict[str, str]
) -> None:
    out = tmp_path / "results.json"
    argv = ["--nodes", "1", "--workers", "1", "--cycles", "1", "--json", str(out), *flags]
    assert main(argv) == 0
    (scenario,) = json.loads(out.read_text())
    assert {k: scenario["settings"][k] for k in expected} == expected
