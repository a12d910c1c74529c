"""``herald accounts set`` control options and ``herald optouts``, on a real data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from herald.cli import main
from herald.store import AccountControls, AuditFilter, OptOutEntry, SQLiteConfig, SQLiteStore


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "data"
    assert _run(capsys, "accounts", "create", "acme", "--data-dir", str(path))[0] == 0
    assert _run(capsys, "accounts", "create", "beta", "--data-dir", str(path))[0] == 0
    return path


def _read(data: Path) -> tuple[AccountControls, tuple[OptOutEntry, ...]]:
    async def read() -> tuple[AccountControls, tuple[OptOutEntry, ...]]:
        store = SQLiteStore.open(SQLiteConfig(data_dir=data, create=False))
        try:
            account = await store.get_account_by_name("acme")
            return await store.get_controls(account.id), await store.list_opt_outs(account.id)
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_set_stores_the_controls_and_shows_them(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(
        capsys, "accounts", "set", "acme", "--data-dir", str(data), "--daily-quota", "500",
        "--quota-unit", "segments", "--senders", "ACME, +49151*", "--sender-rules",
        "US:numeric,IN:registered", "--countries", "de,fr", "--api-allow", "10.0.0.0/8",
        "--smpp-allow", "192.0.2.0/24,2001:db8::/32",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert "500 segments per UTC day" in out and "DE, FR" in out
    assert _read(data)[0] == AccountControls(
        500, True, ("ACME", "+49151*"), ("US:numeric", "IN:registered"), ("DE", "FR"),
        ("10.0.0.0/8",), ("192.0.2.0/24", "2001:db8::/32"))
    # a list given replaces the list; the others stay; 'all'/'any'/'none' clear
    assert _run(capsys, "accounts", "set", "acme", "--data-dir", str(data), "--countries",
                "all", "--daily-quota", "none")[0] == 0
    controls = _read(data)[0]
    assert (controls.countries, controls.daily_quota, controls.senders) == (
        (), None, ("ACME", "+49151*"))


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--countries", "DE,XX", "'XX' is not a country code"),
        ("--api-allow", "10.0.0.0/33", "'10.0.0.0/33' is not an IP network"),
        ("--smpp-allow", "somewhere", "'somewhere' is not an IP network"),
        ("--senders", "A*B", "'A*B' is not a sender"),
        ("--sender-rules", "DE:fancy", "'DE:fancy' is not a sender rule"),
    ],
)
def test_set_refuses_bad_entries_and_changes_nothing(
    data: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, said: str
) -> None:
    status, _, err = _run(capsys, "accounts", "set", "acme", "--data-dir", str(data),
                          "--rate-limit", "5", option, value)
    assert status == 1 and said in err
    assert _read(data)[0] == AccountControls()


@pytest.mark.parametrize(
    ("argv", "said"),
    [(("--daily-quota", "-1"), "whole number"), (("--daily-quota", "lots"), "whole number"),
     (("--quota-unit", "bytes"), "messages or segments"), (("--countries", "DE,,FR"), "empty")],
)
def test_set_refuses_bad_option_values(
    data: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, str], said: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["accounts", "set", "acme", "--data-dir", str(data), *argv])
    assert info.value.code == 2 and said in capsys.readouterr().err


def test_optouts_import_export_add_remove(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("number,note\n+49 151 12345678,x\n\n33612345678\n+14155552671\n")
    common = ("--account", "acme", "--data-dir", str(data))
    status, out, err = _run(capsys, "optouts", "import", *common, str(csv_in))
    assert (status, err) == (0, "") and "3 newly opted out" in out
    assert _run(capsys, "optouts", "remove", *common, "+33 6 12 34 56 78")[0] == 0
    assert _run(capsys, "optouts", "add", *common, "447400123456")[0] == 0
    assert [e.number for e in _read(data)[1]] == ["14155552671", "447400123456",
                                                  "4915112345678"]
    status, out, _ = _run(capsys, "optouts", "export", *common)
    lines = out.splitlines()
    assert lines[0] == "number,opted_out_at,source"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "+14155552671", "+447400123456", "+4915112345678"]
    assert [line.split(",")[2] for line in lines[1:]] == ["import", "cli", "import"]
    # the export imports back, into another account, as it is
    exported = tmp_path / "out.csv"
    assert _run(capsys, "optouts", "export", *common, "-o", str(exported))[0] == 0
    status, out, _ = _run(capsys, "optouts", "import", "--account", "beta", "--data-dir",
                          str(data), str(exported))
    assert status == 0 and "3 newly opted out" in out
    status, out, _ = _run(capsys, "optouts", "list", "--account", "beta", "--data-dir", str(data))
    assert [line.split()[0] for line in out.splitlines()] == [
        "+14155552671", "+447400123456", "+4915112345678"]


def test_a_bad_import_names_its_lines_and_imports_nothing(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("number\n4915112345678\nnot a number\n+1 415 555 2671\nACME\n")
    status, _, err = _run(capsys, "optouts", "import", "--account", "acme", "--data-dir",
                          str(data), str(csv_in))
    assert status == 1
    assert "line 3: 'not a number'" in err and "line 5: 'ACME'" in err
    assert _read(data)[1] == ()
    status, _, err = _run(capsys, "optouts", "add", "--account", "nobody", "--data-dir",
                          str(data), "4915112345678")
    assert status == 1 and "nobody" in err


def test_control_and_opt_out_changes_are_audited(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("--data-dir", str(data))
    assert _run(capsys, "accounts", "set", "acme", *common, "--countries", "DE")[0] == 0
    assert _run(capsys, "accounts", "set", "acme", *common, "--countries", "DE")[0] == 0  # same
    assert _run(capsys, "optouts", "add", "--account", "acme", *common, "4915112345678")[0] == 0

    async def read() -> list[tuple[str, dict[str, object]]]:
        store = SQLiteStore.open(SQLiteConfig(data_dir=data, create=False))
        try:
            entries = await store.list_audit(AuditFilter(target="account:acme"))
            return [(e.action, dict(e.changes)) for e in entries]
        finally:
            await store.aclose()

    newest = asyncio.run(read())
    assert newest[:2] == [
        ("account.opt_outs", {"opted_out": 1, "changed": 1, "source": "cli"}),
        ("account.controls", {"countries": ["DE"]}),
    ]
    assert [a for a, _ in newest].count("account.controls") == 1  # no change, no record
