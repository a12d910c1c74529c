"""``herald guard ...`` end to end: real pcap files, real audit files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from herald.cli import main
from herald.guard.pcap import write_pcap

from . import m3ua_fixtures as fx
from .builders import HOME_IMSI, HOME_MSISDN, NEAR_SMSC, PLATFORM, POLICY_TOML


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML)
    return path


def _capture(tmp_path: Path, *messages: bytes, name: str = "c.pcap") -> Path:
    path = tmp_path / name
    write_pcap(path, [(1_000.0 + i, m) for i, m in enumerate(messages)])
    return path


def _benign() -> list[bytes]:
    sri, otid = fx.sri_sm()
    return [fx.aspup(), sri, fx.sri_sm_result(otid), fx.mt_fsm()]


def test_scan_json_clean_capture_exits_0(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = _capture(tmp_path, *_benign())
    code = main(["guard", "scan", str(capture), "--policy", str(policy_file), "--format", "json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [(r["index"], r["action"], r["operation"]) for r in rows] == [
        (1, "allow", "sendRoutingInfoForSM"),
        (2, "allow", "sendRoutingInfoForSM"),
        (3, "allow", "mt-ForwardSM"),
    ]


def test_scan_findings_exit_1_and_are_audited(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = _capture(tmp_path, *_benign(), fx.ati(), fx.mt_fsm(pid=0x40))
    audit = tmp_path / "audit.jsonl"
    code = main(
        ["guard", "scan", str(capture), "--policy", str(policy_file), "--format", "json",
         "--audit", str(audit)]
    )  # fmt: skip
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [(r["action"], r["rule"]) for r in rows if r["action"] != "allow"] == [
        ("block", "cat1"),
        ("block", "silent-sms"),
    ]
    # the red line: no identifier in clear anywhere in the output or the audit log
    for text in (out, audit.read_text()):
        assert HOME_IMSI not in text and HOME_MSISDN not in text and NEAR_SMSC not in text
    assert main(["guard", "audit", "verify", str(audit)]) == 0
    assert capsys.readouterr().out.startswith("OK: 2 records")


def test_scan_table_counts_rules_and_scenarios(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = _capture(tmp_path, *_benign(), fx.ati())
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"index": i, "scenario": s}) + "\n"
            for i, s in enumerate(["asp", "sms", "sms", "sms", "ati"])
        )
    )
    code = main(
        ["guard", "scan", str(capture), "--policy", str(policy_file), "--labels", str(labels)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "findings by rule" in out and "cat1" in out
    assert "by scenario" in out
    ati_row = next(line for line in out.splitlines() if " ati " in line)
    assert [cell.strip() for cell in ati_row.split("│")[1:-1]] == ["ati", "0", "0", "1"]


def test_platform_lookup_needs_a_pending_message(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sri, otid = fx.sri_sm(PLATFORM)
    capture = _capture(tmp_path, sri, fx.sri_sm_result(otid, PLATFORM), fx.mt_fsm(PLATFORM))
    args = ["guard", "scan", str(capture), "--policy", str(policy_file), "--format", "json"]
    assert main(args) == 1
    assert "platform-egress" in capsys.readouterr().out
    pending = tmp_path / "pending.txt"
    pending.write_text(HOME_MSISDN + "\n")
    assert main([*args, "--pending", str(pending)]) == 0


def test_scan_errors_exit_2(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_policy = tmp_path / "bad.toml"
    bad_policy.write_text(POLICY_TOML + "[velocity]\nmax_speed_kmh = 'fast'\n")
    capture = _capture(tmp_path, *_benign())
    assert main(["guard", "scan", str(capture), "--policy", str(bad_policy)]) == 2
    assert "velocity.max_speed_kmh: must be a number" in capsys.readouterr().err
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00" * 40)
    assert main(["guard", "scan", str(junk), "--policy", str(policy_file)]) == 2


def test_audit_verify_reports_tampering(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = _capture(tmp_path, fx.ati(), fx.ati(), fx.ati())
    audit = tmp_path / "audit.jsonl"
    main(["guard", "scan", str(capture), "--policy", str(policy_file), "--audit", str(audit)])
    lines = audit.read_text().splitlines()
    audit.write_text(lines[0] + "\n" + lines[2] + "\n")
    capsys.readouterr()
    assert main(["guard", "audit", "verify", str(audit)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("TAMPERED") and "deleted: record seq 2 deleted" in out


def test_audit_key_comes_from_a_file(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "key"
    key.write_text("a-secret-audit-key\n")
    capture = _capture(tmp_path, fx.ati())
    audit = tmp_path / "audit.jsonl"
    main(["guard", "scan", str(capture), "--policy", str(policy_file), "--audit", str(audit),
          "--audit-key-file", str(key)])  # fmt: skip
    assert main(["guard", "audit", "verify", str(audit), "--audit-key-file", str(key)]) == 0
    assert main(["guard", "audit", "verify", str(audit)]) == 1  # without the key: not ours


def test_policy_check_and_diff_recorded(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["guard", "policy", "check", str(policy_file)]) == 0
    assert "home 001-01, 2 partners" in capsys.readouterr().out
    new = tmp_path / "new.toml"
    new.write_text(POLICY_TOML + '\n[actions]\nrange-sweep = "alert"\n')
    audit = tmp_path / "audit.jsonl"
    assert main(["guard", "policy", "diff", str(policy_file), str(new), "--audit", str(audit),
                 "--who", "alice"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert '+range-sweep = "alert"' in out and "recorded as audit seq 1" in out
    record = json.loads(audit.read_text())
    assert record["content"]["who"] == "alice" and "salt" not in record["content"]["diff"]
    assert main(["guard", "policy", "diff", str(policy_file), str(new), "--audit",
                 str(audit)]) == 2  # fmt: skip
    broken = tmp_path / "broken.toml"
    broken.write_text("[home\n")
    assert main(["guard", "policy", "check", str(broken)]) == 1


def test_the_herald_command_has_the_guard(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "herald", "guard", "--help"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    for command in ("scan", "proxy", "audit", "policy"):
        assert command in out.stdout


def _damage(path: Path, how: str) -> Path:
    """The issue 8 captures: a record whose length is 0x7FFFFFFF, or a file cut in half."""
    data = bytearray(path.read_bytes())
    if how == "length":
        second = 24 + 16 + int.from_bytes(data[24 + 8 : 24 + 12], "little")  # record 1's header
        data[second + 8 : second + 12] = (0x7FFFFFFF).to_bytes(4, "little")
    else:
        del data[len(data) // 2 :]
    damaged = path.with_name(f"{how}-{path.name}")
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.mark.parametrize("how", ["length", "truncated"])
@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_damaged_capture_is_reported_and_not_passed(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str], how: str, fmt: str
) -> None:
    # A pipeline gate must not pass traffic the scan did not read (issue 8 item 9).
    capture = _capture(tmp_path, *(_benign() * 25))
    assert main(["guard", "scan", str(capture), "--policy", str(policy_file),
                 "--format", fmt]) in (0, 1)  # whole: judged (repeats raise findings)  # fmt: skip
    capsys.readouterr()
    code = main(["guard", "scan", str(_damage(capture, how)), "--policy", str(policy_file),
                 "--format", fmt])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3, err
    assert "was not fully judged" in err
    assert ("claims 2147483647 octets" in err) if how == "length" else ("not read" in err
                                                                        or "not a whole" in err)


def test_a_capture_of_one_direction_says_so_instead_of_blocking_deliveries(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only what the SMSC sent: the lookups and the deliveries, no HLR answer.
    inbound = [fx.sri_sm()[0], fx.mt_fsm(), fx.sri_sm()[0], fx.mt_fsm()]
    code = main(["guard", "scan", str(_capture(tmp_path, *inbound)), "--policy",
                 str(policy_file), "--format", "json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    assert {json.loads(line)["action"] for line in out.splitlines()} == {"allow"}
    assert "2 MT-ForwardSM not judged for SMS consistency" in err
    assert "no SRI-SM answer" in err
    # Both directions: a delivery nobody asked for is blocked as before.
    sri, otid = fx.sri_sm()
    both = [sri, fx.sri_sm_result(otid), fx.mt_fsm(), fx.mt_fsm(imsi="001010000000009")]
    code = main(["guard", "scan", str(_capture(tmp_path, *both, name="both.pcap")),
                 "--policy", str(policy_file), "--format", "json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1
    assert [json.loads(line)["rule"] for line in out.splitlines()][-1] == "sms-consistency"
    assert "not judged" not in err
