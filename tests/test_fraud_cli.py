"""``herald accounts fraud`` on a real data directory (docs/fraud.md, "Live")."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from herald.cli import main
from herald.store import FraudMode, FraudSettings, SQLiteConfig, SQLiteStore


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _settings(data: Path) -> FraudSettings:
    async def read() -> FraudSettings:
        store = SQLiteStore.open(SQLiteConfig(data_dir=data, create=False))
        try:
            return await store.get_fraud_settings((await store.get_account_by_name("acme")).id)
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_fraud_sets_what_is_given_and_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    assert _run(capsys, "accounts", "create", "acme", "--data-dir", data)[0] == 0
    status, out, err = _run(capsys, "accounts", "fraud", "acme", "--data-dir", data,
                            "--mode", "monitor", "--otp-messages", "on", "--deny",
                            "+882,+44770090012", "--country-caps", "GB=5.00,NG=0")  # fmt: skip
    assert (status, err) == (0, "")
    assert "monitor" in out and "+882, +44770090012" in out and "GB 5.00" in out
    assert _settings(tmp_path / "data") == FraudSettings(
        FraudMode.MONITOR, True, (), ("+882", "+44770090012"),
        {"GB": Decimal("5.00"), "NG": Decimal("0")})
    status, out, _ = _run(capsys, "accounts", "fraud", "acme", "--data-dir", data, "--deny",
                          "none", "--decisions", "5")  # fmt: skip
    assert status == 0 and "deny:            none" in out and "Last 0 decisions" in out
    assert _settings(tmp_path / "data").mode is FraudMode.MONITOR  # not given: kept
    for bad in (["--deny", "4477"], ["--country-caps", "gb=1"], ["--mode", "loud"],
                ["--country-caps", "GB=0.0000001"]):
        with pytest.raises(SystemExit):
            main(["accounts", "fraud", "acme", "--data-dir", data, *bad])
        assert "--" in capsys.readouterr().err  # argparse names the option
