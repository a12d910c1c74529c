"""bench/retention.py end to end with tiny counts: every clone erased and purged, on both
stores."""

from __future__ import annotations

import pytest

from retention import main


def test_sqlite_erases_and_purges_every_clone_and_its_cdr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--store", "sqlite", "--messages", "1200", "--batch", "500", "--idle", "0.1",
            "--cdrs", "--texts"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "purge of 1,200 messages" in out and "purge of 1,200 CDRs" in out
    assert "erasure of 1,200 texts" in out


def test_postgresql_erases_and_purges_every_clone_and_its_cdr(
    pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--store", "postgresql", "--dsn", pg_dsn, "--messages", "1200", "--batch", "500",
            "--idle", "0.1", "--cdrs", "--texts"]
    assert main(argv) == 0
    assert "purge of 1,200 messages" in capsys.readouterr().out
