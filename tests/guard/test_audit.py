"""The audit log's chain: every kind of tampering is found and named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herald.guard.audit import GENESIS, AuditError, AuditLog, record_hash, verify
from herald.guard.policyfile import diff_policies
from herald.signaling.policy import Engine

from .builders import FOREIGN, HOME_IMSI, POLICY_TOML, invoke, policy

KEY = b"audit-key-kept-elsewhere"


def _write(path: Path, n: int = 6, key: bytes | None = None) -> list[dict[str, object]]:
    ticks = iter(range(1_000, 2_000))
    engine = Engine(policy())
    out = []
    with AuditLog(path, key=key, clock=lambda: float(next(ticks))) as log:
        for i in range(n):
            v = engine.inspect(invoke(i, 71, (29, 3), FOREIGN, imsi=HOME_IMSI))
            out.append(log.verdict(v, capture="test.pcap", index=i))
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _put(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def _kinds(path: Path, key: bytes | None = None) -> list[tuple[str, int | None]]:
    return [(f.kind, f.seq) for f in verify(path, key).findings]


@pytest.mark.parametrize("key", [None, KEY], ids=["sha256", "hmac"])
def test_an_untouched_log_verifies(tmp_path: Path, key: bytes | None) -> None:
    log = tmp_path / "audit.jsonl"
    written = _write(log, key=key)
    report = verify(log, key)
    assert report.ok, report.findings
    assert (report.records, report.last_seq, report.head) == (6, 6, written[-1]["hash"])
    first = json.loads(_lines(log)[0])
    assert first["prev"] == GENESIS and first["kind"] == "verdict"
    assert first["content"]["rule"] == "cat1" and first["content"]["index"] == 0
    assert HOME_IMSI not in log.read_text()


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, n=2)
    with AuditLog(log) as again:
        assert again.seq == 2
        again.append("note", {"text": "restart"})
    assert verify(log).ok
    assert [json.loads(x)["seq"] for x in _lines(log)] == [1, 2, 3]


def test_an_edited_record_is_found(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    lines[2] = lines[2].replace('"block"', '"allow"')
    _put(log, lines)
    assert _kinds(log) == [("edited", 3)]


def test_an_edit_with_a_recomputed_hash_breaks_the_chain(tmp_path: Path) -> None:
    """Without a key the forger can recompute the record's own hash, but the
    next record still points at the original."""
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    r = json.loads(lines[2])
    r["content"]["action"] = "allow"
    r["hash"] = record_hash(r["seq"], r["time"], r["kind"], r["content"], r["prev"])
    lines[2] = json.dumps(r)
    _put(log, lines)
    assert ("chain", 4) in _kinds(log)
    # with a key, the same forgery is an edit outright
    keyed = tmp_path / "keyed.jsonl"
    _write(keyed, key=KEY)
    lines = _lines(keyed)
    r = json.loads(lines[2])
    r["content"]["action"] = "allow"
    r["hash"] = record_hash(r["seq"], r["time"], r["kind"], r["content"], r["prev"])
    lines[2] = json.dumps(r)
    _put(keyed, lines)
    assert ("edited", 3) in _kinds(keyed, KEY)


def test_a_deleted_record_is_found(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    del lines[3]
    _put(log, lines)
    assert _kinds(log) == [("deleted", 4)]
    assert "record seq 4 deleted" in verify(log).findings[0].message


def test_records_deleted_from_the_end_are_found_by_the_head(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log)
    _put(log, _lines(log)[:4])
    findings = verify(log).findings
    assert [(f.kind, f.seq) for f in findings] == [("truncated", 5)]
    assert "5-6" in findings[0].message


def test_a_forged_head_is_caught_with_a_key(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, key=KEY)
    lines = _lines(log)[:4]
    _put(log, lines)
    last = json.loads(lines[-1])
    (tmp_path / "audit.jsonl.head").write_text(
        json.dumps({"seq": last["seq"], "hash": last["hash"], "mac": "0" * 64})
    )
    assert [f.kind for f in verify(log, KEY).findings] == ["edited"]


def test_an_inserted_copy_is_found(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    lines.insert(4, lines[1])  # replay record 2 after record 4
    _put(log, lines)
    findings = verify(log).findings
    assert [(f.kind, f.seq, f.line) for f in findings] == [("inserted", 2, 5)]


def test_an_inserted_forgery_is_found(tmp_path: Path) -> None:
    """A forged record that chains onto record 3 with seq 4, before the real 4."""
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    three = json.loads(lines[2])
    content = {"action": "allow", "note": "forged"}
    forged = {
        "seq": 4,
        "time": three["time"] + 0.5,
        "kind": "verdict",
        "content": content,
        "prev": three["hash"],
        "hash": record_hash(4, three["time"] + 0.5, "verdict", content, three["hash"]),
    }
    lines.insert(3, json.dumps(forged))
    _put(log, lines)
    assert [(f.kind, f.seq, f.line) for f in verify(log).findings] == [("inserted", 4, 4)]


def test_reordered_records_are_found(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    lines[2], lines[3] = lines[3], lines[2]
    _put(log, lines)
    assert _kinds(log) == [("reordered", 3)]


def test_garbage_lines_are_malformed(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    lines.insert(2, '{"seq": "two"}')
    _put(log, lines)
    assert _kinds(log) == [("malformed", None)]


def test_the_wrong_key_fails_every_record(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, n=3, key=KEY)
    # three records and the head file's MAC
    assert _kinds(log, b"another-key") == [
        ("edited", None),
        ("edited", 1),
        ("edited", 2),
        ("edited", 3),
    ]


def test_opening_something_that_is_not_a_log_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\n")
    with pytest.raises(AuditError, match="does not end with an audit record"):
        AuditLog(junk)


def test_a_policy_change_records_who_and_a_redacted_diff(tmp_path: Path) -> None:
    new = POLICY_TOML.replace("test-salt-0123456789abcdef", "another-salt-0123456789").replace(
        'gt_prefixes = ["2888"]', 'gt_prefixes = ["2888", "2889"]'
    )
    change = diff_policies(POLICY_TOML, new, "a.toml", "b.toml")
    assert change.changed and change.secret_changed
    assert '+gt_prefixes = ["2888", "2889"]' in change.diff
    assert "salt" not in change.diff and "another-salt" not in change.diff
    log = tmp_path / "audit.jsonl"
    with AuditLog(log, key=KEY) as audit:
        audit.policy_change("alice", change.diff, change.old_sha256, change.new_sha256, "test")
    record = json.loads(log.read_text())
    assert record["kind"] == "policy-change" and record["content"]["who"] == "alice"
    assert verify(log, KEY).ok
