"""bench/pumping/run.py end to end on a small corpus: a table per seed with a
column per engine, herald's (``herald fraud replay``) included by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from pumping.run import DEFAULT_ENGINES, ENGINES, main


def test_a_table_per_seed_and_a_column_per_engine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "1", "2", "--days", "3", "--scale", "0.02",
                 "--keep", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("attack styles detected") == 2
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert [cell.strip() for cell in header.split("|")] == ["metric", *DEFAULT_ENGINES, "goal"]
    assert (tmp_path / "seed2" / "decisions-budget.jsonl").stat().st_size > 0
    assert (tmp_path / "seed2" / "decisions-herald.jsonl").stat().st_size > 0


def test_the_defence_runs_by_default() -> None:
    assert set(DEFAULT_ENGINES) == set(ENGINES)
