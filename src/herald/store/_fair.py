"""Fair claims: accounts take turns within a priority class (sans-I/O; both stores').

``Store.claim`` hands out a class's ready messages by deficit round robin
over their segments: each round an account may take about an equal share of
the room in segments; what it cannot use yet (its next message is longer) is
kept for its next turn, in this claim or the next; what one account leaves
goes to the others; the turn starts after the account served last. This
module decides that order and reads nothing: a store drives a
:class:`ClassClaim` with the rows it reads (SQLite one account at a time,
PostgreSQL from blocks read ahead), so both stores hand out the same order
from the same data.

    claim = fairness.start(cls, waiting_accounts, room)
    while (request := claim.request) is not None:
        account, want = request
        rows = read up to ``want`` of account's next ready rows, in due order
        verdicts = claim.offer([(segments, expired), ...])   # one per row used
        # verdicts[i]: TAKEN or EXPIRED for rows[i]; rows after them are unused
    order = claim.interleave(taken rows per account)
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from enum import Enum
from typing import TypeVar

from herald.store._model import MAX_SEGMENTS, Priority

__all__ = ["ClassClaim", "Fairness", "Verdict"]

R = TypeVar("R")


class Verdict(Enum):
    TAKEN = "taken"  # handed out (counted against the room)
    EXPIRED = "expired"  # past its validity: to be marked expired, not counted


_Steps = Generator[tuple[int, int], Sequence[tuple[int, bool]], None]


class Fairness:
    """A store's round-robin state, carried from claim to claim: per class, the
    account served last and each waiting account's unused credit (segments)."""

    def __init__(self) -> None:
        self._turns: dict[Priority, int] = {}
        self._credits: dict[Priority, dict[int, int]] = {}

    def start(self, cls: Priority, accounts: Sequence[int], room: int) -> ClassClaim:
        """Begin choosing up to ``room`` rows of ``cls`` among ``accounts``
        (ascending: those with messages of the class waiting, ready or not)."""
        return ClassClaim(self, cls, list(accounts), room)


class ClassClaim:
    """One class's choice in one claim: see the module docstring."""

    def __init__(self, fairness: Fairness, cls: Priority, accounts: list[int],
                 room: int) -> None:
        self._fairness, self._cls, self._room = fairness, cls, room
        credits = fairness._credits.setdefault(cls, {})
        waiting = set(accounts)
        for gone in [a for a in credits if a not in waiting]:
            del credits[gone]  # nothing waits: its credit ends (DRR)
        last = fairness._turns.get(cls)
        if last is not None:
            start = next((n for n, a in enumerate(accounts) if a > last), len(accounts))
            accounts = accounts[start:] + accounts[:start]
        #: The accounts in this claim's turn order.
        self.accounts: tuple[int, ...] = tuple(accounts)
        self._verdicts: list[Verdict] = []
        self._steps = self._run(credits)
        self.request: tuple[int, int] | None = next(self._steps, None)

    def offer(self, rows: Sequence[tuple[int, bool]]) -> list[Verdict]:
        """Answer :attr:`request` with the account's next ready rows (at most
        ``want``; fewer: it has no more), each as (segments, expired); the
        verdicts of the rows used, in order (the others are left for later)."""
        if self.request is None:
            raise RuntimeError("no request to answer")
        self._verdicts = []
        try:
            self.request = self._steps.send(rows)
        except StopIteration:
            self.request = None
        return self._verdicts

    def interleave(self, taken: Mapping[int, Sequence[R]]) -> list[R]:
        """The rows taken per account, merged a row of each account in turn."""
        queues = [taken[a] for a in self.accounts if taken.get(a)]
        merged: list[R] = []
        for n in range(max((len(q) for q in queues), default=0)):
            merged += [q[n] for q in queues if n < len(q)]
        return merged

    def _run(self, credits: dict[int, int]) -> _Steps:
        room, turns = self._room, self._fairness._turns
        short: dict[int, int] = {}  # segments an account lacks for its next message
        active, count = list(self.accounts), 0
        # Each round every active account takes a row, is short of credit, or drops
        # out; a round in which all are short skips ahead (below): bounded.
        while active and count < room:
            share = -(-(room - count) // len(active))
            still, took, lacking = [], False, set()
            for account in active:
                want = min(share, room - count)
                if want <= 0:
                    still.append(account)
                    continue
                credit = credits.get(account, 0) + share
                rows = yield account, want
                stopped = False
                for parts, expired in rows:
                    if expired:
                        self._verdicts.append(Verdict.EXPIRED)
                    elif parts > credit:
                        short[account] = parts - credit
                        lacking.add(account)
                        stopped = True
                        break
                    else:
                        credit -= parts
                        self._verdicts.append(Verdict.TAKEN)
                        count += 1
                        took = True
                        turns[self._cls] = account  # the next claim starts after it
                if stopped or len(rows) == want:
                    still.append(account)
                    credits[account] = min(credit, MAX_SEGMENTS)
                else:
                    credits[account] = 0  # nothing more ready: no credit hoarded
            active = still
            if not took and active and lacking.issuperset(active):
                # All short: give the rounds it takes the least short one at once.
                share = -(-(room - count) // len(active))
                skip = -(-min(short[a] for a in active) // share) - 1
                for account in active:
                    credits[account] = min(credits[account] + skip * share, MAX_SEGMENTS)
