"""The operator's store commands on a PostgreSQL store (``--store URL``), as
``herald accounts`` and ``herald admin`` take it: numbers, routes, prices,
balance, cdr and optouts change and read the database every node shares,
and leave the data directory's SQLite alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.cli import main

pytestmark = pytest.mark.postgres


def test_the_store_commands_work_on_a_postgresql_store(
    pg_store_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"

    def herald(*args: str) -> str:
        code = main([*args, "--store", pg_store_dsn, "--data-dir", str(data)])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out + err

    herald("accounts", "create", "shop")
    prices = tmp_path / "prices.csv"
    prices.write_text("destination,price\n+44,0.035\ndefault,0.05\n")
    herald("prices", "import", "--account", "shop", str(prices))
    assert "+44,0.035" in herald("prices", "show", "--account", "shop")
    herald("balance", "top-up", "shop", "12.50")
    assert "12.5" in herald("balance", "show", "shop")
    herald("optouts", "add", "--account", "shop", "+447955123456")
    assert "+447955123456" in herald("optouts", "list", "--account", "shop")
    assert "generation" in herald("numbers", "status")
    herald("routes", "list")
    herald("cdr", "margin", "--from", "2026-01-01", "--to", "2027-01-01")
    assert not (data / "herald.db").exists()  # nothing of SQLite


def test_a_store_url_the_server_would_refuse_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["numbers", "status", "--store", "mysql://db/herald",
                 "--data-dir", str(tmp_path)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("herald numbers: ") and err.count("\n") == 1
