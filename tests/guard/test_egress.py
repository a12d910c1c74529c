"""The platform's library call on its own outbound signaling (encoded bytes in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herald.guard.audit import AuditLog
from herald.guard.egress import PlatformEgress
from herald.signaling import decode
from herald.signaling.policy import Action, InMemoryPendingMessages, Rule

from . import m3ua_fixtures as fx
from .builders import HOME_IMSI, HOME_MSISDN, NEAR_SMSC, PLATFORM, policy


def test_a_queued_message_may_be_looked_up_and_delivered() -> None:
    egress = PlatformEgress(policy(), InMemoryPendingMessages([HOME_MSISDN]))
    sri, otid = fx.sri_sm(PLATFORM)
    assert egress.check(sri, 0.0).action is Action.ALLOW
    assert egress.observe(fx.sri_sm_result(otid, PLATFORM), 0.1).action is Action.ALLOW
    assert egress.check(decode(fx.mt_fsm(PLATFORM)), 0.2).action is Action.ALLOW  # decoded too
    assert egress.expire(1e6) == []


def test_a_lookup_with_no_queued_message_is_blocked_and_audited(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with AuditLog(log) as audit:
        egress = PlatformEgress(policy(), InMemoryPendingMessages(), audit)
        sri, _ = fx.sri_sm(PLATFORM)
        v = egress.check(sri, 0.0)
    assert (v.action, v.rule) == (Action.BLOCK, Rule.PLATFORM_EGRESS)
    record = json.loads(log.read_text())
    assert record["content"]["rule"] == "platform-egress"
    assert record["content"]["mode"] == "egress"
    assert HOME_MSISDN not in log.read_text() and HOME_IMSI not in log.read_text()


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (fx.ati(PLATFORM), "a location query"),
        (fx.mt_fsm(PLATFORM), "a delivery with no lookup before it"),
        (fx.sri_sm(NEAR_SMSC)[0], "not sent from a platform GT"),
        (b"\x01\x00\x01\x01\x00\x00\x00\x0c\x00\x00\x00\x00", "undecodable"),
    ],
    ids=["ati", "mt-fsm", "foreign-gt", "malformed"],
)
def test_anything_else_is_blocked(message: bytes, why: str) -> None:
    egress = PlatformEgress(policy(), InMemoryPendingMessages([HOME_MSISDN]))
    v = egress.check(message, 0.0)
    assert v.action is Action.BLOCK, why


def test_a_lookup_not_followed_by_its_delivery_alerts_late() -> None:
    egress = PlatformEgress(policy(), InMemoryPendingMessages([HOME_MSISDN]))
    sri, otid = fx.sri_sm(PLATFORM)
    egress.check(sri, 0.0)
    egress.observe(fx.sri_sm_result(otid, PLATFORM), 0.1)
    assert egress.expire(1.0) == []
    late = egress.expire(1e6)
    assert [(v.action, v.rule, v.late) for v in late] == [
        (Action.ALERT, Rule.PLATFORM_EGRESS, True)
    ]


def test_a_policy_without_platform_gts_is_refused() -> None:
    p = policy()
    from dataclasses import replace

    with pytest.raises(ValueError, match="platform GTs"):
        PlatformEgress(replace(p, platform_gts=()), InMemoryPendingMessages())
