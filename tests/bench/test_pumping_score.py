"""bench/pumping/score.py on a hand-made corpus: each figure of the goal table,
one table row per set of decisions."""

from __future__ import annotations

from typing import Any

import pytest

from pumping.score import Score, format_table, score

PRICES = {"currency": "USD", "country": {"ZZ": 0.5, "GB": 0.04}, "mcc_mnc": {"99901": 1.0}}
DAY1 = "2026-01-06T00:"


def _row(rid: str, ts: str, label: str, **more: str) -> tuple[dict[str, Any], dict[str, Any]]:
    request = {"id": rid, "ts": ts, "account": "a", "use_case": "signup", "to": "+4477009000"}
    return request, {"id": rid, "label": label, **more}


ROWS = [
    _row("w1", "2026-01-05T10:00:00.000Z", "legit", country="GB", mcc_mnc="23430"),  # warm-up
    _row("a1", DAY1 + "00:00.000Z", "attack", style="burst", country="YY", mcc_mnc="99901"),
    _row("a2", DAY1 + "00:30.000Z", "attack", style="burst", country="YY", mcc_mnc="99901"),
    _row("a3", DAY1 + "01:00.000Z", "attack", style="burst", country="YY", mcc_mnc="99901"),
    _row("b1", DAY1 + "02:00.000Z", "attack", style="slow_low", country="ZZ", mcc_mnc="00000"),
    _row("b2", DAY1 + "03:00.000Z", "attack", style="slow_low", country="ZZ", mcc_mnc="00000"),
    _row("l1", DAY1 + "04:00.000Z", "legit", country="GB", mcc_mnc="23430"),
    _row("l2", DAY1 + "05:00.000Z", "legit", trap="tv_campaign", country="GB", mcc_mnc="23430"),
]
REQUESTS = [request for request, _ in ROWS]
LABELS = [label for _, label in ROWS]
# b2 was not delivered: it costs nothing, blocked or not.
RECEIPTS = [{"ts": DAY1 + "09:00.000Z", "request_id": r["id"],
             "status": "UNDELIV" if r["id"] == "b2" else "DELIVRD"} for r in REQUESTS]


def _decide(blocked: set[str], undecided: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    return [{"id": r["id"], "action": "block" if r["id"] in blocked else "allow", "ts": r["ts"]}
            for r in REQUESTS if r["id"] not in undecided]


CASES = [
    # blocked, detected, saved, worst before first block, worst stop (ms), legit refused, trap
    pytest.param(set(), [], 0.0, None, None, 0, 0, id="all allowed"),
    pytest.param({"a2", "a3", "b1"}, ["burst", "slow_low"], 2.5 / 3.5, 1.0, 30_000, 0, 0,
                 id="both caught, the burst after one"),
    pytest.param({"a1"}, [], 1.0 / 3.5, None, None, 0, 0,
                 id="first burst request only: not stopped, slow_low never caught"),
    pytest.param({"a1", "a2", "a3", "b2"}, ["burst"], 3.0 / 3.5, 0.5, 0, 0, 0,
                 id="blocking an undelivered request saves nothing"),
    pytest.param({"a1", "a2", "a3", "b1", "w1", "l2"}, ["burst", "slow_low"], 1.0, 0.0, 0, 1, 1,
                 id="warm-up refusals do not count, trap refusals do"),
]


@pytest.mark.parametrize(
    ("blocked", "detected", "saved", "before", "stop", "refused", "trap"), CASES)
def test_goal_figures(blocked: set[str], detected: list[str], saved: float,
                      before: float | None, stop: int | None, refused: int, trap: int) -> None:
    result = score(REQUESTS, LABELS, RECEIPTS, PRICES, _decide(blocked))
    assert sorted(result.detected) == detected
    assert result.saved == pytest.approx(saved)
    assert result.worst_before_block == (None if before is None else pytest.approx(before))
    assert result.worst_stop_ms == stop
    assert result.legit == 2
    assert result.legit_refused == refused
    assert sum(result.trap_refused.values()) == trap
    assert result.undecided == 0


def test_money_is_the_network_price_else_the_country_price() -> None:
    result = score(REQUESTS, LABELS, RECEIPTS, PRICES, _decide(set()))
    assert result.styles == {"burst": (3.0, 0.0), "slow_low": (0.5, 0.0)}


def test_a_request_without_a_decision_is_allowed_and_counted() -> None:
    result = score(REQUESTS, LABELS, RECEIPTS, PRICES,
                   _decide({"a1", "a2", "a3"}, frozenset({"a3", "l1"})))
    assert result.undecided == 2
    assert result.styles["burst"] == (3.0, 2.0)


def test_labels_out_of_step_are_refused() -> None:
    with pytest.raises(ValueError, match="out of step"):
        score(REQUESTS, LABELS[::-1], RECEIPTS, PRICES, _decide(set()))


def test_the_table_names_every_goal_row_and_column() -> None:
    caught = score(REQUESTS, LABELS, RECEIPTS, PRICES, _decide({"a2", "a3", "b1"}))
    table = format_table([("rule", caught), ("none", Score())])
    lines = table.splitlines()
    assert lines[0].split(" | ")[0].strip() == "metric"
    assert "rule" in lines[0] and "none" in lines[0] and "goal" in lines[0]
    assert "| 2/2 " in table
    assert "71.4 %" in table
    assert "1.00 USD" in table
    assert "30 s" in table
    assert "never caught" in table  # the empty score's column
