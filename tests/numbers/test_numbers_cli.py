"""``herald numbers``: import the shipped examples, look numbers up, export what
import reads back, and refuse a bad file whole, naming its lines.

(This directory has no ``__init__.py``: a package named ``numbers`` would
shadow the standard library's for the whole test session.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLAN = EXAMPLES / "numbering-plan.csv"
PORTED = EXAMPLES / "ported.csv"


def _run(capsys: pytest.CaptureFixture[str], data: Path, *argv: str) -> tuple[int, str, str]:
    status = main(["numbers", *argv, "--data-dir", str(data)])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_examples_import_and_numbers_resolve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    status, out, err = _run(capsys, data, "import-plan", str(PLAN))
    assert (status, err) == (0, "")
    assert "19 prefixes, 6 networks" in out and "generation 1" in out
    status, out, err = _run(capsys, data, "import-ported", str(PORTED))
    assert (status, err) == (0, "")
    assert "4 numbers" in out and "generation 2" in out

    status, out, _ = _run(capsys, data, "lookup", "+49", "170", "1234567")
    assert status == 0
    assert out.splitlines() == [
        "+491701234567",
        "  ported to  262-02 Vodafone Germany",
        "  plan       262-01 Telekom Deutschland (prefix 4917)",
        "  network    262-02 Vodafone Germany",
    ]
    status, out, _ = _run(capsys, data, "lookup", "+4915212345678")
    assert status == 0 and "network    262-02 Vodafone Germany" in out  # 49152 beats 4915
    status, out, _ = _run(capsys, data, "lookup", "+447911123456")
    assert status == 1 and "unassigned" in out
    status, _, err = _run(capsys, data, "lookup", "+12ab")
    assert status == 1 and "not a phone number" in err

    status, out, _ = _run(capsys, data, "status")
    assert status == 0
    assert out.startswith("generation 2\n")
    assert "plan    19 entries" in out and "ported  4 entries" in out


def test_export_writes_what_import_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, again = tmp_path / "data", tmp_path / "again"
    _run(capsys, data, "import-plan", str(PLAN))
    _run(capsys, data, "import-ported", str(PORTED))
    for table in ("plan", "ported"):
        exported = tmp_path / f"{table}.csv"
        assert _run(capsys, data, "export", table, "-o", str(exported))[0] == 0
        assert _run(capsys, again, f"import-{table}", str(exported))[0] == 0
        status, out, _ = _run(capsys, again, "export", table)
        assert status == 0 and out == exported.read_text()
    given = [line for line in PLAN.read_text().splitlines() if not line.startswith("#")]
    assert sorted(given) == sorted((tmp_path / "plan.csv").read_text().splitlines())


def test_a_bad_file_is_refused_whole_naming_its_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    _run(capsys, data, "import-plan", str(PLAN))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"prefix,mcc,mnc,network\n49,262,01,Telekom\n4x,262,01,T\n"
                    b"49,262,02,Vodafone\n491,262,1,O2\n")  # fmt: skip
    status, out, err = _run(capsys, data, "import-plan", str(bad))
    assert (status, out) == (1, "")
    assert f"{bad}: numbering plan refused: 3 problems" in err
    assert "line 3: prefix '4x'" in err
    assert "line 4: prefix 49 is already given on line 2" in err
    assert "line 5: mnc '1' is not 2 or 3 digits" in err
    status, out, _ = _run(capsys, data, "status")  # the plan in use is unchanged
    assert out.startswith("generation 1\n") and "plan    19 entries" in out

    bad.write_bytes(b"number,mcc,mnc\n491701234567,262,02\n4917\xff,262,02\n")
    status, _, err = _run(capsys, data, "import-ported", str(bad))
    assert status == 1 and "line 3: is not UTF-8" in err
    status, _, err = _run(capsys, data, "import-ported", str(tmp_path / "missing.csv"))
    assert status == 1 and "missing.csv" in err


def test_clear_removes_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    _run(capsys, data, "import-plan", str(PLAN))
    status, out, _ = _run(capsys, data, "clear", "plan")
    assert status == 0 and "plan table removed (generation 2)" in out
    status, out, _ = _run(capsys, data, "clear", "plan")
    assert status == 0 and "There was no plan table." in out
    status, out, _ = _run(capsys, data, "lookup", "+447911123456")
    assert status == 1 and "no numbering plan loaded" in out
    status, _, err = _run(capsys, data, "export", "plan")
    assert status == 1 and "no plan table" in err


def test_commands_that_read_need_a_data_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, tmp_path / "nowhere", "status")
    assert status == 1 and "no herald database" in err
    assert not (tmp_path / "nowhere").exists()
