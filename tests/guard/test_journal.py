"""The guard's audit log as herald serve reads it: followed as it grows, counted
by hour and rule, checked, and published without a subscriber's identity."""

from __future__ import annotations

import json
import os
from pathlib import Path

from herald.guard.audit import AuditLog
from herald.guard.journal import FULL_CHECK_INTERVAL, WITHHELD, GuardJournal, hourly, published
from herald.signaling.policy import Category
from herald.signaling.policy.verdict import Action, Origin, Rule, Verdict

HOUR = 3600.0
T0 = 1_764_000_000.0 - 1_764_000_000.0 % HOUR  # the start of an hour
HASH = "3f9a0c1be2d4f5a6b7c8"


def verdict(rule: Rule, action: Action = Action.BLOCK, subscriber: str = HASH) -> Verdict:
    return Verdict(action, rule, Category.CAT1, f"{rule.value} said so", T0,
                   "anyTimeInterrogation", Origin.FOREIGN, subscriber, "", False)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_by_hour_and_rule_and_the_latest_blocks(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    clock = Clock(T0 + 10)
    journal = GuardJournal(path, clock=clock)
    assert journal.read() is False and journal.verification() is None  # no guard yet
    with AuditLog(path, clock=clock) as log:
        log.verdict(verdict(Rule.CAT1))
        log.verdict(verdict(Rule.CAT1))
        clock.now = T0 + HOUR + 5
        log.verdict(verdict(Rule.RANGE_SWEEP, Action.ALERT))
        log.policy_change("alice", "-a\n+b\n", "a" * 64, "b" * 64, "policy.toml")
        assert journal.read() is True
        hour = int(T0 // HOUR)
        assert dict(journal.counts) == {(hour, "cat1", "block"): 2,
                                        (hour + 1, "range-sweep", "alert"): 1}
        assert [r["rule"] for r in journal.recent] == ["cat1", "cat1", "range-sweep"]
        assert journal.recent[0]["subscriber"] == HASH
        assert [c["who"] for c in journal.changes] == ["alice"]
        assert hourly(journal.counts, hour, hour + 1) == [(hour, {"cat1": 2}),
                                                          (hour + 1, {"range-sweep": 1})]
        # only what was appended since is read: the next read adds one record
        log.verdict(verdict(Rule.SILENT_SMS))
        journal.read()
        assert journal.records == 5 and journal.recent[-1]["rule"] == "silent-sms"


def test_a_log_replaced_or_cut_is_read_again_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    journal = GuardJournal(path)
    with AuditLog(path) as log:
        for _ in range(3):
            log.verdict(verdict(Rule.CAT2))
    journal.read()
    assert journal.records == 3
    os.replace(path, tmp_path / "old.jsonl")
    with AuditLog(path) as log:
        log.verdict(verdict(Rule.CAT1))
    journal.read()
    assert journal.records == 1 and [r["rule"] for r in journal.recent] == ["cat1"]


def test_a_line_being_written_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.verdict(verdict(Rule.CAT1))
    whole = path.read_bytes()
    journal = GuardJournal(path)
    path.write_bytes(whole[:-20])  # the guard has written part of the line
    journal.read()
    assert journal.records == 0
    path.write_bytes(whole)
    journal.read()
    assert journal.records == 1 and journal.malformed == 0


def test_the_chain_check_is_kept_until_the_log_changes(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    key = b"kept-elsewhere"
    with AuditLog(path, key=key) as log:
        for _ in range(3):
            log.verdict(verdict(Rule.CAT1))
    journal = GuardJournal(path, key=key)
    first = journal.verification()
    assert first is not None and first.ok and first.records == 3 and first.keyed
    assert journal.verification() is first  # not checked again: nothing changed
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[2] + "\n")  # record 2 deleted
    second = journal.verification()
    assert second is not None and not second.ok
    assert ("deleted", "record seq 2 deleted") in second.findings
    wrong = GuardJournal(path, key=b"another key").verification()
    assert wrong is not None and not wrong.ok and wrong.findings[0][0] == "edited"


def test_published_keeps_only_checked_fields() -> None:
    """The red line: whatever a record carries, only what the guard may publish shows."""
    record = {"seq": 9, "time": T0, "kind": "verdict", "content": {
        "action": "block", "rule": "cat1", "category": "cat1",
        "operation": "anyTimeInterrogation 234150999999999", "origin": "foreign",
        "reason": "ATI for IMSI 234150999999999 at cell 23415-1234-56789 near 51.5072,-0.1276",
        "subscriber": "234150999999999", "sender": "447700900123", "late": False,
        "imsi": "234150999999999", "msc": "447700900999", "cell_id": "56789",
        "location": {"lat": 51.5072, "lon": -0.1276}, "mode": "proxy", "capture": "x.pcap"}}
    shown = published(record)
    assert shown is not None
    text = repr(shown)
    for secret in ("234150999999999", "447700900123", "447700900999", "56789", "1234",
                   "51.5072", "0.1276", "cell_id", "imsi", "msc", "location", "x.pcap"):
        assert secret not in text, secret
    assert shown["subscriber"] == WITHHELD and shown["sender"] == WITHHELD
    assert shown["operation"] == "" and shown["rule"] == "cat1" and shown["mode"] == "proxy"
    assert shown["reason"].startswith("ATI for IMSI [cut] at cell [cut] near [cut]")
    # a value that is not one the guard writes is not repeated either
    odd = published({"seq": 1, "time": T0, "kind": "verdict", "content": {
        "action": "drop", "rule": "LAC 4711", "category": "x", "origin": "Leeds",
        "subscriber": "00000000000000000001"}})
    assert odd is not None
    assert (odd["action"], odd["rule"], odd["category"], odd["origin"], odd["subscriber"]) \
        == ("unknown", "unknown", "unknown", "unknown", WITHHELD)
    assert published({"kind": "note", "content": {"event": "x"}}) is None


def test_a_growing_log_has_its_new_records_checked_and_the_whole_log_now_and_then(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    clock = Clock(T0)
    with AuditLog(path) as log:
        for _ in range(3):
            log.verdict(verdict(Rule.CAT1))
        journal = GuardJournal(path, clock=clock)
        first = journal.verification()
        assert first is not None and first.ok and first.records == 3
        log.verdict(verdict(Rule.CAT2))  # the guard appends: only that record is read
        grown = journal.verification()
        assert grown is not None and grown.ok and (grown.records, grown.last_seq) == (4, 4)
        # an edit to a record checked before, with an append: the appended part is
        # intact, so an edit that keeps the length shows at the next check of the whole log
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0].replace("cat1 said so", "cat1 said no"), *lines[1:]])
                        + "\n")
        log.verdict(verdict(Rule.CAT2))
        assert journal.verification().ok  # type: ignore[union-attr]
        log.verdict(verdict(Rule.CAT2))
        clock.now += FULL_CHECK_INTERVAL
        late = journal.verification()
        assert late is not None and not late.ok and late.findings[0][0] == "edited"
    # a record appended by someone else (not linked to the chain) is found at once
    fresh = tmp_path / "fresh.jsonl"
    with AuditLog(fresh) as log:
        log.verdict(verdict(Rule.CAT1))
    journal = GuardJournal(fresh, clock=clock)
    assert journal.verification().ok  # type: ignore[union-attr]
    forged = json.loads(fresh.read_text())
    forged["seq"] = 2
    with fresh.open("a") as f:
        f.write(json.dumps(forged) + "\n")
    broken = journal.verification()
    assert broken is not None and not broken.ok
