"""Margin sums in hourly rollups: what the SQLite and PostgreSQL stores share.

Both stores keep ``cdr_sums`` (messages, revenue = sell less refunds, cost =
buy, unpriced) by hour of acceptance, account, connector and country, brought
up to date by each margin read (``_sqlite_margins``, ``postgres/_margins``).
This module holds their arithmetic, with no I/O: a CDR's contribution, how a
period splits into whole hours (read from the sums) and the hours it cuts
(read from the CDRs), and the grouping of the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from herald.store._model import Status

__all__ = [
    "FINAL",
    "HOUR",
    "MARGIN_KEYS",
    "Cut",
    "HourSums",
    "Hours",
    "Sums",
    "add_cdr",
    "add_hours",
    "grouped",
    "merge",
    "period_parts",
]

#: The rollup's grain: a period's cut hours are summed from the CDRs.
HOUR: Final = 3600
#: Final statuses are >= this: a CDR whose message is final never changes again.
FINAL: Final = int(Status.DELIVERED)
#: How a margin report may group CDRs, and the column each means.
MARGIN_KEYS: Final = {"account": "account_id", "connector": "connector", "country": "country"}

#: (account_id, connector or '', country) -> [messages, revenue, cost, unpriced]
Sums = dict[tuple[int, str, str], list[int]]
#: (hour, account_id, connector or '', country) -> the same four
HourSums = dict[tuple[int, int, str, str], list[int]]


def add_cdr(sums: HourSums, key: tuple[int, int, str, str], sign: int, sell: int,
            connector: str, buy: int | None, refunded: int) -> None:  # fmt: skip
    """Add (``sign`` -1: take out) one CDR with these values to its hour's sums."""
    row = sums.setdefault(key, [0, 0, 0, 0])
    row[0] += sign
    row[1] += sign * (sell - refunded)
    row[2] += sign * (buy or 0)
    row[3] += sign * (connector != "" and buy is None)


def merge(into: Sums, rows: Iterable[Sequence[Any]], sign: int = 1) -> None:
    """Add rows of (account, connector, country, messages, revenue, cost, unpriced)."""
    for account, connector, country, *values in rows:
        row = into.setdefault((account, connector, country), [0, 0, 0, 0])
        for i, v in enumerate(values):
            row[i] += sign * int(v or 0)


def add_hours(into: Sums, deltas: HourSums, first: int, last: int,
              account_id: int | None) -> None:  # fmt: skip
    """Add what changed in the hours ``[first, last)`` (of ``account_id``, or all)."""
    for (hour, account, connector, country), values in deltas.items():
        if first <= hour < last and account_id in (None, account):
            row = into.setdefault((account, connector, country), [0, 0, 0, 0])
            for i, v in enumerate(values):
                row[i] += v


def _first_hour_from(t: float) -> int:
    """The smallest ``h`` with ``h * HOUR >= t`` (integer bounds: exact comparisons)."""
    h = int(t // HOUR)
    while h * HOUR < t:
        h += 1
    while (h - 1) * HOUR >= t:
        h -= 1
    return h


def _last_hour_to(t: float) -> int:
    """The greatest ``h`` with ``h * HOUR <= t``."""
    h = int(t // HOUR)
    while h * HOUR > t:
        h -= 1
    while (h + 1) * HOUR <= t:
        h += 1
    return h


class Hours(NamedTuple):
    """The whole hours ``[first, last)`` of a period: from the sums."""

    first: int
    last: int


class Cut(NamedTuple):
    """The part ``[lo, hi)`` of ``hour`` that a period covers: from the CDRs."""

    hour: int
    lo: float
    hi: float


def period_parts(since: float, until: float) -> list[Hours | Cut]:
    """``[since, until)`` as whole hours and the at most two hours it cuts.

    A CDR belongs to hour ``int(accepted_at) // HOUR``; the bounds compare as
    integers, so each CDR of the period is in exactly one part."""
    if since >= until:
        return []
    first, last = _first_hour_from(since), _last_hour_to(until)
    if first > last:  # within one hour
        return [Cut(last, since, until)]
    parts: list[Hours | Cut] = []
    if since < first * HOUR:
        parts.append(Cut(first - 1, since, first * HOUR))
    parts.append(Hours(first, last))
    if last * HOUR < until:
        parts.append(Cut(last, last * HOUR, until))
    return parts


def grouped(sums: Mapping[tuple[int, str, str], list[int]], by: str
            ) -> list[tuple[str, int, int, int, int]]:  # fmt: skip
    """``sums`` by ``account`` (its id), ``connector`` ('' for none) or ``country``,
    ordered as ``ORDER BY`` that column orders them; groups without messages left out."""
    index = {"account": 0, "connector": 1, "country": 2}[by]
    out: dict[int | str, list[int]] = {}
    for key, values in sums.items():
        row = out.setdefault(key[index], [0, 0, 0, 0])
        for i, v in enumerate(values):
            row[i] += v
    return [(str(k), v[0], v[1], v[2], v[3]) for k, v in sorted(out.items()) if v[0] > 0]
