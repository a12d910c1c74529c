"""What a crash run proves, computed from the store, the sim's record and the ledger.

Inputs, all read after herald was stopped gracefully:

- the store's ``messages`` table (read-only SQLite): every message herald
  stored, acknowledged or not, with its status;
- the sim's record: one line per submit_sm received upstream, with the
  sha256 of the body (each message's text is unique, so a hash seen twice is
  a message sent twice);
- the ledger: what each customer attempt was told;
- the kill times, the receipts the SMPP customer got, the webhooks received.

The verdicts (``Report.problems``):

1. every acknowledged id is stored and final (nothing acknowledged is lost);
2. every stored message is final (an unacknowledged one that was stored too);
3. a message was never reported with two different final statuses (receipts
   at the SMPP customer, webhooks), and what was reported matches the store;
4. duplicates upstream: each extra submit of a text is attributed to the
   first kill between it and the copy before it (that copy was in flight, or
   answered but not yet recorded, when herald died); every kill's share is at
   most ``bound`` (binds x window), and no duplicate happens without a kill.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from herald.sim import SubmitRecord
from herald.store import Status

from .load import STAT_OF_STATUS, Ledger, content_hash

__all__ = ["Duplicates", "Report", "duplicates", "final_count", "verify"]

#: Seconds a submit herald wrote before a kill may reach the sim's record after
#: it (socket buffers); kills are seconds apart, so this cannot pick the wrong one.
KILL_SLACK: float = 0.5
#: Lists of ids in a report show at most this many (the counts are exact).
SHOWN: int = 10


@dataclass
class Report:
    kills: int
    outcomes: Counter[tuple[str, str]]
    acked: int
    stored: int
    stored_unacked: int
    finals: Counter[str]
    lost: list[str]  # acknowledged, not in the store
    not_final: list[str]  # stored (acknowledged or not), no final status
    conflicts: list[str]  # two final statuses reported, or one the store does not hold
    submits_upstream: int
    duplicates: int  # extra submits of a text already submitted
    duplicates_per_kill: list[int]
    duplicates_without_kill: int
    bound: int
    receipts: int  # SMPP-acknowledged messages with a receipt at the customer
    smpp_acked: int
    webhooks: int  # HTTP-acknowledged messages with a final webhook
    http_acked: int
    duplicate_reach: list[float] = field(default_factory=list)  # see Duplicates.oldest
    kill_times: list[float] = field(default_factory=list)
    restart_seconds: list[float] = field(default_factory=list)
    recovery_seconds: list[float] = field(default_factory=list)

    @property
    def max_duplicates_per_kill(self) -> int:
        return max(self.duplicates_per_kill, default=0)

    def problems(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} acknowledged messages lost: {self.lost[:SHOWN]}")
        if self.not_final:
            found.append(f"{len(self.not_final)} stored messages without a final status: "
                         f"{self.not_final[:SHOWN]}")
        if self.conflicts:
            found.append(f"{len(self.conflicts)} conflicting final statuses: "
                         f"{self.conflicts[:SHOWN]}")
        if self.duplicates_without_kill:
            found.append(f"{self.duplicates_without_kill} duplicates upstream with no kill "
                         "between the copies")
        over = [n for n in self.duplicates_per_kill if n > self.bound]
        if over:
            found.append(f"duplicates per kill {self.duplicates_per_kill} exceed "
                         f"binds x window = {self.bound}")
        return found


def read_statuses(db: Path) -> dict[str, Status]:
    """id -> status of every stored message (read-only; herald may be running)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0]: Status(row[1])
                for row in conn.execute("SELECT id, status FROM messages")}
    finally:
        conn.close()


def final_count(db: Path, ids: Sequence[str]) -> int:
    """How many of ``ids`` are final now."""
    statuses = read_statuses(db)
    return sum(1 for i in ids if i in statuses and statuses[i].final)


@dataclass
class Duplicates:
    total: int
    per_kill: list[int]
    without_kill: int
    #: per kill: how long before the kill the earliest duplicated copy was
    #: submitted (seconds), i.e. how far back herald's unrecorded sends reach
    oldest: list[float]


def duplicates(records: Sequence[SubmitRecord], hashes: Mapping[str, str],
               kills: Sequence[float]) -> Duplicates:
    """Extra submits of a text, each put on the first kill between it and the copy before."""
    times: dict[str, list[float]] = {}
    for r in records:
        if r.content in hashes:
            times.setdefault(r.content, []).append(r.time)
    per_kill = [0] * len(kills)
    oldest = [0.0] * len(kills)
    without = total = 0
    for seen in times.values():
        seen.sort()
        for before, after in itertools.pairwise(seen):
            total += 1
            # the first copy was in flight (or answered, unrecorded) when herald
            # died: the first kill after it. The sim may read a submit herald
            # wrote just before its death a moment after the kill, hence the slack.
            index = next((k for k, t in enumerate(kills)
                          if before - KILL_SLACK <= t <= after), None)
            if index is None:
                without += 1
            else:
                per_kill[index] += 1
                oldest[index] = max(oldest[index], kills[index] - before, 0.0)
    return Duplicates(total, per_kill, without, oldest)


def _check(conflicts: list[str], message_id: str, reported: set[str], status: Status | None,
           *, receipt: bool) -> None:
    """One final status reported, and the one the store holds."""
    expected = None
    if status is not None and status.final:
        expected = STAT_OF_STATUS[status.label] if receipt else status.label
    if len(reported) > 1 or expected not in reported:
        what = "receipts" if receipt else "webhooks"
        conflicts.append(f"{message_id}: {what} {sorted(reported)}, stored {status}")


def verify(*, db: Path, records: Sequence[SubmitRecord], ledger: Ledger,
           kills: Sequence[float], bound: int, receipts: Mapping[str, list[str]],
           webhooks: Mapping[str, list[str]]) -> Report:
    statuses = read_statuses(db)
    acked = list(ledger.acked())
    acked_ids = {a.id for a in acked}
    lost = [a.id for a in acked if a.id not in statuses]
    not_final = [i for i, st in statuses.items() if not st.final]
    conflicts: list[str] = []
    for message_id, stats in receipts.items():  # every receipt reports a final status
        _check(conflicts, message_id, set(stats), statuses.get(message_id), receipt=True)
    for message_id, labels in webhooks.items():  # "sent" events too; keep the finals
        finals = {s for s in labels if s in STAT_OF_STATUS}
        if finals:
            _check(conflicts, message_id, finals, statuses.get(message_id), receipt=False)
    hashes = {content_hash(a.text): a.text for a in ledger.attempts.values()}
    dups = duplicates(records, hashes, kills)
    smpp = [a for a in acked if a.channel == "smpp"]
    http = [a for a in acked if a.channel == "http"]
    return Report(
        kills=len(kills),
        outcomes=ledger.outcomes(),
        acked=len(acked),
        stored=len(statuses),
        stored_unacked=sum(1 for i in statuses if i not in acked_ids),
        finals=Counter(st.label for st in statuses.values() if st.final),
        lost=[i for i in lost if i is not None],
        not_final=not_final,
        conflicts=conflicts,
        submits_upstream=sum(1 for r in records if r.content in hashes),
        duplicates=dups.total,
        duplicates_per_kill=dups.per_kill,
        duplicates_without_kill=dups.without_kill,
        duplicate_reach=dups.oldest,
        kill_times=list(kills),
        bound=bound,
        receipts=sum(1 for a in smpp if a.id in receipts),
        smpp_acked=len(smpp),
        webhooks=sum(1 for a in http if any(s in STAT_OF_STATUS for s in
                                            webhooks.get(a.id or "", ()))),
        http_acked=len(http),
    )
