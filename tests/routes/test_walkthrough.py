"""The newcomer's walk-through of docs/routing.md, run command by command on a fresh
data directory: the cheapest healthy connector, then the fail-over when it is disabled."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from herald.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "routing.md"
AT = "2027-01-13T10:30:00Z"  # the time the page's sample output shows


def _walkthrough() -> list[list[str]]:
    text = DOC.read_text()
    block = re.search(r"<!-- walkthrough.*?```sh\n(.*?)```\n<!-- /walkthrough -->", text, re.S)
    assert block is not None, "docs/routing.md lost its walk-through block"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_the_walkthrough_picks_the_cheapest_healthy_connector_then_fails_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the page's paths are relative to the repository
    data = str(tmp_path / "demo-data")
    explained: list[str] = []
    commands = _walkthrough()
    assert [c[:3] for c in commands] == [
        ["herald", "numbers", "import-plan"], ["herald", "numbers", "import-ported"],
        ["herald", "prices", "import"], ["herald", "prices", "import"],
        ["herald", "routes", "import"], ["herald", "routes", "explain"],
        ["herald", "connectors", "disable"], ["herald", "routes", "explain"],
        ["herald", "connectors", "enable"],
    ]
    for command in commands:
        argv = [data if arg == "demo-data" else arg for arg in command[1:]]
        if argv[:2] == ["routes", "explain"]:
            argv += ["--at", AT]
        status, out, err = _run(capsys, argv)
        assert (status, err) == (0, ""), (command, out, err)
        if argv[:2] == ["routes", "explain"]:
            explained.append(out)
    first, second = explained
    assert "Decision: operator-a > operator-b\n" in first
    assert "  operator-a       0.011      entry 26201\n" \
           "  operator-b       0.0125     entry 26201\n" in first
    assert "Decision: operator-b\n" in second
    assert "  operator-a       disabled by an operator\n" in second
    # Every change is in the audit log, made from the shell.
    status, out, _ = _run(capsys, ["admin", "audit", "--data-dir", data])
    assert status == 0
    assert [line.split()[3] for line in out.splitlines()[-5:]] == [
        "prices.import", "prices.import", "routes.import", "connector.disable",
        "connector.enable"]
    assert "connector:operator-a" in out and '"reason":"receipts stopped"' in out
    # The page shows the first explanation as it is printed.
    sample = DOC.read_text().split("which stays in line as the fail-over:")[1]
    shown = sample.split("```\n")[1]
    assert first == shown


def test_the_example_routes_import_and_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    status, out, _ = _run(capsys, ["routes", "import", str(ROOT / "examples" / "routes.toml"),
                                   "--data-dir", data])
    assert status == 0
    assert "Routes imported: 4 rules, 1 class entry (generation 1)." in out
    status, out, _ = _run(capsys, ["routes", "list", "--data-dir", data])
    assert status == 0
    assert "  3. enterprise-telekom-split: groups enterprise; networks 26201 -> split" \
           " operator-a 70, operator-b 30\n" in out
    assert "    1. enterprise-logins: groups enterprise; tags login -> otp\n" in out
    assert "  then: the [[routes]] of herald.toml\n" in out


BAD = [
    ('[[rule]]\nname = "r"\nsplit = {a = 0}\n[[rule]]\nname = "s"\ncountries = ["de"]\n'
     'failover = ["a"]\n', None,
     "routes refused: 2 problems\n  rule[0].split.a: must be a whole weight of 1..10000\n"
     "  rule[1].countries[0]: 'de' is not an ISO 3166 country code (DE)\n"),
    ('prices = "buy-prices.csv"\n[[rule]]\nname = "r"\nfailover = ["a"]\n', None,
     "routes refused: 1 problem\n  prices: routes files no longer name buy prices; import"
     " each connector's buy list with `herald prices import --connector NAME FILE`"),
]


@pytest.mark.parametrize(("routes", "unused", "error"), BAD)
def test_a_bad_routes_file_is_refused_and_the_rules_in_force_stay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], routes: str, unused: None,
    error: str,
) -> None:
    data = str(tmp_path / "data")
    assert _run(capsys, ["routes", "import", str(ROOT / "examples" / "routes.toml"),
                         "--data-dir", data])[0] == 0
    (tmp_path / "bad.toml").write_text(routes)
    status, out, err = _run(capsys, ["routes", "import", str(tmp_path / "bad.toml"),
                                     "--data-dir", data])
    assert (status, out) == (1, "")
    assert err.startswith("herald routes: ") and error in err
    status, out, _ = _run(capsys, ["routes", "list", "--data-dir", data])
    assert status == 0 and "examples/routes.toml" in out and "4 rules" in out


def test_connector_names_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    assert _run(capsys, ["routes", "list", "--data-dir", data])[0] == 1  # no store here yet
    status, _, err = _run(capsys, ["connectors", "disable", "no good", "--data-dir", data])
    assert (status, err) == (1, "herald connectors: 'no good' is not a connector name\n")


def test_with_herald_toml_the_prefix_routes_decide_when_no_rule_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPERATOR_A_PASSWORD", raising=False)  # not needed to route
    config = str(ROOT / "herald.example.toml")
    data = str(tmp_path / "data")
    assert _run(capsys, ["routes", "import", str(ROOT / "examples" / "routes.toml"),
                         "--config", config, "--data-dir", data])[0] == 0
    assert _run(capsys, ["connectors", "disable", "operator-b", "--config", config,
                         "--data-dir", data])[0] == 0
    status, out, _ = _run(capsys, ["routes", "explain", "--account", "acme", "--to",
                                   "+447700900123", "--config", config, "--data-dir", data])
    assert status == 0
    assert "  4. de-least-cost             no     +447700900123 starts with none of 49\n" in out
    assert "Decision: operator-a\n  chosen by the [[routes]] of herald.toml:" in out
    assert "  operator-b       disabled by an operator\n" in out
    (tmp_path / "other.toml").write_text('[[rule]]\nname = "x"\nfailover = ["operator-z"]\n')
    status, _, err = _run(capsys, ["routes", "import", str(tmp_path / "other.toml"),
                                   "--config", config, "--data-dir", data])
    assert status == 1 and "does not have: operator-z" in err
    status, _, err = _run(capsys, ["connectors", "disable", "operator-z", "--config", config,
                                   "--data-dir", data])
    assert status == 1 and "has no connector 'operator-z'" in err


def test_explain_prices_each_connector_by_its_buy_list_naming_the_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    assert _run(capsys, ["routes", "import", str(ROOT / "examples" / "routes.toml"),
                         "--data-dir", data])[0] == 0
    for name in ("operator-a", "operator-b"):
        buy_list = str(ROOT / "examples" / f"buy-{name}.csv")
        assert _run(capsys, ["prices", "import", "--connector", name, buy_list,
                             "--data-dir", data])[0] == 0
    explain = ["routes", "explain", "--account", "acme", "--to", "+4930123456", "--at", AT,
               "--data-dir", data]
    status, out, _ = _run(capsys, explain)  # no number table: priced by country code
    assert status == 0 and "Decision: operator-a > operator-b\n" in out
    assert "  operator-a       0.015      entry +49\n" \
           "  operator-b       0.016      entry +49\n" in out
    (tmp_path / "b.csv").write_text("destination,price\ndefault,0.001\n")
    assert _run(capsys, ["prices", "import", "--connector", "operator-b",
                         str(tmp_path / "b.csv"), "--data-dir", data])[0] == 0
    assert _run(capsys, ["prices", "remove", "--connector", "operator-a",
                         "--data-dir", data])[0] == 0
    status, out, _ = _run(capsys, explain)
    assert status == 0 and "Decision: operator-b > operator-a\n" in out
    assert "  operator-a       no price (its buy list has no entry for this, or there is none)\n" \
           "  operator-b       0.001      entry default\n" in out
