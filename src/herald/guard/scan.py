"""Scan mode: a capture in, a verdict per message and a summary out.

:func:`scan` judges a sequence of ``(timestamp, m3ua_bytes)`` records in order,
with the capture's timestamps as the engine's clock: before each message the
lookup-only timer is run up to that message's time, and at the end it is run
past the last lookup window, so late alerts appear where they fall due.
Records are decoded :data:`SCAN_BATCH` at a time ahead of being judged (the
same verdicts, faster: see :mod:`herald.guard.inspector`).
:class:`Summary` counts verdicts per action, rule and (when the caller knows
the records' labels) scenario.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from herald.guard.inspector import Inspector, PausedGC, prepare
from herald.signaling.policy import Action, Direction, Verdict

__all__ = ["SCAN_BATCH", "ScanItem", "Summary", "scan"]

#: Records decoded ahead of judging: enough for the batch effect, small
#: enough that a capture streamed from disk is not held in memory, and that
#: the batch's decoded messages stay in the CPU's data caches until judged
#: (compiled, by the wall clock on bench/guard.py's 2,000-message subset:
#: 147,000 verdicts/s in batches of 256, 171,000 in batches of 64, 159,000 one
#: at a time).
SCAN_BATCH = 64


@dataclass(frozen=True, slots=True)
class ScanItem:
    """One verdict: ``index`` is the record's position in the capture (None for
    a late alert, which ``late`` and ``verdict.late`` also say)."""

    index: int | None
    verdict: Verdict

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, **self.verdict.as_dict()}


@dataclass(slots=True)
class Summary:
    records: int = 0
    judged: int = 0
    skipped: int = 0  # not SCCP user data (ASP management etc.)
    actions: Counter[str] = field(default_factory=Counter)
    rules: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, action)
    # scenario -> action -> count, when labels are known
    scenarios: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, item: ScanItem, scenario: str | None = None) -> None:
        v = item.verdict
        self.actions[v.action.value] += 1
        if v.rule is not None and v.action is not Action.ALLOW:
            self.rules[(v.rule.value, v.action.value)] += 1
        if scenario is not None:
            self.scenarios.setdefault(scenario, Counter())[v.action.value] += 1

    @property
    def findings(self) -> int:
        return self.actions[Action.BLOCK.value] + self.actions[Action.ALERT.value]


def scan(
    records: Iterable[tuple[float, bytes]],
    inspector: Inspector,
    *,
    direction: Direction = Direction.UNKNOWN,
    source: str = "",
    summary: Summary | None = None,
) -> Iterator[ScanItem]:
    """Judge ``records`` in order; yields every verdict (late alerts included).

    ``summary``, when given, is updated as the scan proceeds (without labels).
    """
    last = None
    index = -1
    source_records = iter(records)
    context = {"mode": "scan", "capture": source}
    # Batches are prepared (decoded) first, then judged in order: the same
    # verdicts, faster (see herald.guard.inspector).
    while batch := list(itertools.islice(source_records, SCAN_BATCH)):
        with PausedGC():  # see herald.guard.inspector
            prepared = [prepare(data, ts, direction) for ts, data in batch]
            for (ts, _), ready in zip(batch, prepared, strict=True):
                index += 1
                if summary is not None:
                    summary.records += 1
                for late in inspector.expire(ts, mode="scan", capture=source):
                    item = ScanItem(None, late)
                    if summary is not None:
                        summary.add(item)
                    yield item
                result = inspector.judge(ready, ts, {**context, "index": index})
                last = ts
                if result.verdict is None:
                    if summary is not None:
                        summary.skipped += 1
                    continue
                item = ScanItem(index, result.verdict)
                if summary is not None:
                    summary.judged += 1
                    summary.add(item)
                yield item
            del prepared, ready, result  # freed before the collector resumes
    if last is not None:
        deadline = inspector.engine.next_deadline()
        while deadline is not None:
            for late in inspector.expire(deadline, mode="scan", capture=source):
                item = ScanItem(None, late)
                if summary is not None:
                    summary.add(item)
                yield item
            deadline = inspector.engine.next_deadline()
