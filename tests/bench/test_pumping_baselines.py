"""bench/pumping/replay.py and baselines.py: the replay is causal (what happens
later never changes an earlier decision, a blocked request's events are never
shown), and each rule does what its docstring says."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pumping.baselines import RULES, ConversionRule, CountryBudget, country_of
from pumping.corpus import generate, iso_ms, write
from pumping.replay import Corpus, Decision, load, parse_ts, replay

T0 = parse_ts("2026-01-05T00:00:00.000Z")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    directory: Path = tmp_path_factory.mktemp("corpus")
    write(generate(4, 7, 0.05), directory, 4)
    return load(directory)


def _future_rewritten(corpus: Corpus, cut: int, seed: int) -> Corpus:
    """The same past; after ``cut`` (ms), lines shuffled, numbers changed, no codes typed,
    every receipt a failure."""
    rng = random.Random(seed)

    def split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return ([r for r in rows if parse_ts(r["ts"]) <= cut],
                [dict(r) for r in rows if parse_ts(r["ts"]) > cut])

    past, future = split(corpus.requests)
    for req in future:
        req["to"] = f"+44770090{rng.randrange(10_000):04d}"
    rng.shuffle(future)
    receipts_past, receipts_future = split(corpus.receipts)
    for row in receipts_future:
        row["status"] = "UNDELIV"
    rng.shuffle(receipts_future)
    verifications_past, _ = split(corpus.verifications)
    return Corpus(past + future, verifications_past, receipts_past + receipts_future)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_later_events_never_change_earlier_decisions(corpus: Corpus, rule: str) -> None:
    original = replay(corpus, RULES[rule]())
    blocks = [d for d in original if d.action == "block"]
    assert blocks, "the rule blocks nothing: the test would prove nothing"
    cut = parse_ts(blocks[len(blocks) // 2].ts)  # some blocks before, some after
    for seed in (1, 2):
        altered = replay(_future_rewritten(corpus, cut, seed), RULES[rule]())

        def past(decisions: list[Decision]) -> list[Decision]:
            return [d for d in decisions if parse_ts(d.ts) <= cut]

        assert past(altered) == past(original)
        assert any(d.action == "block" for d in past(original))


class Spy:
    """Blocks every other request; remembers what it was shown, in order."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str]] = []
        self.blocked: set[str] = set()
        self._n = 0

    def request(self, req: Mapping[str, Any], now: int) -> bool:
        self._n += 1
        self.shown.append(("request", req["id"]))
        if self._n % 2:
            return True
        self.blocked.add(req["id"])
        return False

    def receipt(self, request_id: str, status: str, now: int) -> None:
        self.shown.append(("receipt", request_id))

    def verification(self, request_id: str, now: int) -> None:
        self.shown.append(("verification", request_id))


def test_a_blocked_requests_receipt_and_verification_are_never_shown(corpus: Corpus) -> None:
    spy = Spy()
    decisions = replay(corpus, spy)
    assert len(decisions) == len(corpus.requests)
    assert {d.id for d in decisions if d.action == "block"} == spy.blocked
    later = [rid for kind, rid in spy.shown if kind != "request"]
    assert later and not set(later) & spy.blocked
    allowed = {d.id for d in decisions if d.action == "allow"}
    assert len(later) == sum(r["request_id"] in allowed
                             for r in (*corpus.receipts, *corpus.verifications))


def test_at_equal_times_receipts_and_verifications_come_before_requests() -> None:
    at = iso_ms(T0 + 5_000)
    corpus = Corpus(
        requests=[{"id": "r0", "ts": iso_ms(T0), "to": "+447700900000"},
                  {"id": "r1", "ts": at, "to": "+447700900001"}],
        verifications=[{"ts": at, "request_id": "r0"}],
        receipts=[{"ts": at, "request_id": "r0", "status": "DELIVRD"}],
    )
    spy = Spy()
    replay(corpus, spy)
    assert spy.shown == [("request", "r0"), ("receipt", "r0"), ("verification", "r0"),
                         ("request", "r1")]


def _send(rule: ConversionRule | CountryBudget, n: int, to: str, at: int,
          country: str | None = None) -> bool:
    req = {"id": f"q{n}", "to": to, **({"country": country} if country else {})}
    return rule.request(req, at)


@pytest.mark.parametrize(("typed", "blocked"), [(0, True), (1, True), (2, False), (10, False)])
def test_conversion_rule_blocks_a_range_under_20_percent(typed: int, blocked: bool) -> None:
    rule = ConversionRule()
    for n in range(10):
        assert _send(rule, n, f"+44770090{n:04d}", T0 + n * 1000)
    for n in range(typed):
        rule.verification(f"q{n}", T0 + 20_000)
    later = T0 + 120_000
    assert _send(rule, 10, "+447700900999", later) is not blocked
    # Another 10k range is judged on its own; a block lasts an hour.
    assert _send(rule, 11, "+447700910000", later)
    assert _send(rule, 12, "+447700900998", later + 59 * 60_000) is not blocked
    assert _send(rule, 13, "+447700900997", later + 61 * 60_000)


def test_conversion_rule_waits_for_codes_that_may_still_be_typed() -> None:
    rule = ConversionRule()
    for n in range(10):
        assert _send(rule, n, f"+44770090{n:04d}", T0 + n * 1000)
    assert _send(rule, 10, "+447700900999", T0 + 30_000)  # all of them younger than a minute


def test_country_budget_learns_on_the_first_day_then_caps_at_1_5_median() -> None:
    rule = CountryBudget()
    day = 86_400_000
    for n in range(40):  # day 0: no budget
        assert _send(rule, n, "+447700900000", T0 + n, "GB")
    allowed = sum(_send(rule, 100 + n, "+447700900000", T0 + day + n, "GB") for n in range(100))
    assert allowed == 60  # 1.5 x 40
    # A country never seen gets the floor; a missing country comes from the number.
    assert sum(_send(rule, 300 + n, "+25471000000", T0 + day + n) for n in range(30)) == 10
    # Day 2: the median of 40 and 100 requests.
    allowed = sum(_send(rule, 400 + n, "+447700900000", T0 + 2 * day + n, "GB")
                  for n in range(200))
    assert allowed == 105


@pytest.mark.parametrize(("req", "country"), [
    ({"to": "+447700900000", "country": "GB"}, "GB"),
    ({"to": "+447700900000"}, "GB"),
    ({"to": "+12025550100"}, "US"),
    ({"to": "+99612345678"}, "KG"),
    ({"to": "+9991234567"}, "?"),
])
def test_country_of(req: dict[str, str], country: str) -> None:
    assert country_of(req) == country
