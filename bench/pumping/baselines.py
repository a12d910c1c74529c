"""Two simple rules the defence must beat (issue 11's "Goals"), replayed causally.

    .venv/bin/python bench/pumping/baselines.py --corpus DIR --rule conversion --out D.jsonl
    .venv/bin/python bench/pumping/baselines.py --corpus DIR --rule budget --out D.jsonl

Both see events in time order through ``replay.py`` (never labels, never the
future, never the receipt or verification of a request they blocked).

``conversion``, the issue's "simple conversion rule": per prefix (the number
without its last four digits: a 10k range), the codes sent in the last hour
that had ``GRACE_MS`` to be typed in; when at least ``MIN_SENDS`` of them
and fewer than 20 % were typed in, the prefix is blocked for an hour. A
request to a blocked prefix is refused and does not count as sent.

``budget``, a per-country daily budget from history: each UTC day a country
may send ``FACTOR`` x the median of its request counts on the previous days
of the replay, at least ``FLOOR``; the first day has no history and no
budget (the warm-up). Requests beyond the budget are refused until midnight.
A request's country is its ``country`` field or, missing, the region of the
number's country code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict, deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import phonenumbers

from pumping.replay import Decision, Policy, load, replay, write_decisions

__all__ = ["RULES", "ConversionRule", "CountryBudget", "country_of", "main"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class ConversionRule:
    """Block a 10k range for an hour when under 20 % of its last hour's codes were typed."""

    THRESHOLD = 0.20
    WINDOW_MS = HOUR_MS
    GRACE_MS = 60_000  # a code younger than this may still be typed in
    MIN_SENDS = 10  # fewer sends say nothing about a range
    BLOCK_MS = HOUR_MS

    def __init__(self) -> None:
        self._sent: dict[str, deque[tuple[int, str]]] = defaultdict(deque)
        self._blocked_until: dict[str, int] = {}
        self._verified: set[str] = set()

    def request(self, req: Mapping[str, Any], now: int) -> bool:
        prefix = req["to"][:-4]
        if self._blocked_until.get(prefix, 0) > now:
            return False
        sent = self._sent[prefix]
        while sent and sent[0][0] < now - self.WINDOW_MS:
            sent.popleft()
        judged = [rid for ts, rid in sent if ts <= now - self.GRACE_MS]
        if len(judged) >= self.MIN_SENDS:
            typed = sum(rid in self._verified for rid in judged)
            if typed < self.THRESHOLD * len(judged):
                self._blocked_until[prefix] = now + self.BLOCK_MS
                return False
        sent.append((now, req["id"]))
        return True

    def receipt(self, request_id: str, status: str, now: int) -> None:
        pass

    def verification(self, request_id: str, now: int) -> None:
        self._verified.add(request_id)


def _regions_by_code() -> dict[str, str]:
    return {str(code): regions[0]
            for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()}


_REGIONS = _regions_by_code()


def country_of(req: Mapping[str, Any]) -> str:
    """The request's country, from its field or its number's country code ("?" unknown)."""
    if country := req.get("country"):
        return str(country)
    digits = req["to"].lstrip("+")
    for length in (1, 2, 3):  # E.164 country codes are prefix-free
        if region := _REGIONS.get(digits[:length]):
            return region
    return "?"


class CountryBudget:
    """A daily request budget per country: FACTOR x the median of the previous days."""

    FACTOR = 1.5
    FLOOR = 10

    def __init__(self) -> None:
        self._day = -1  # the UTC day being counted, -1 before the first request
        self._days_past = 0
        self._history: dict[str, list[int]] = defaultdict(list)  # requests per past day
        self._seen: dict[str, int] = defaultdict(int)  # requests today
        self._sent: dict[str, int] = defaultdict(int)  # allowed today

    def _roll(self, day: int) -> None:
        if self._day < 0:
            self._day = day
        while self._day < day:  # bounded: one step per day of the replay
            for country in set(self._history) | set(self._seen):
                self._history[country].append(self._seen.get(country, 0))
            self._seen.clear()
            self._sent.clear()
            self._day += 1
            self._days_past += 1

    def request(self, req: Mapping[str, Any], now: int) -> bool:
        self._roll(now // DAY_MS)
        country = country_of(req)
        self._seen[country] += 1
        if self._days_past == 0:
            return True  # no history yet
        history = self._history.get(country)
        budget = max(self.FLOOR, self.FACTOR * statistics.median(history)) if history \
            else self.FLOOR
        if self._sent[country] >= budget:
            return False
        self._sent[country] += 1
        return True

    def receipt(self, request_id: str, status: str, now: int) -> None:
        pass

    def verification(self, request_id: str, now: int) -> None:
        pass


RULES: dict[str, type[ConversionRule] | type[CountryBudget]] = {
    "conversion": ConversionRule,
    "budget": CountryBudget,
}


def run(corpus_dir: Path, rule: str) -> list[Decision]:
    policy: Policy = RULES[rule]()
    return replay(load(corpus_dir), policy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--rule", choices=sorted(RULES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_decisions(run(args.corpus, args.rule), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
