"""bench/pumping/run.py end to end on a small corpus: a table per seed with a
column per baseline; the herald column is a hook, not run by default."""

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


def test_the_herald_engine_is_a_hook_run_only_on_request() -> None:
    assert "herald" in ENGINES
    assert "herald" not in DEFAULT_ENGINES
