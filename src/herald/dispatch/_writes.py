"""Segment records and receipts: one ordered stream of store writes (private).

A submit_sm_resp (its segment must be recorded) and the receipt for the same
part arrive in that order on the wire, milliseconds apart. Written through
separate batchers, the receipt could commit first and be *parked* (correct,
but an extra insert and delete, and the message would skip ``sent`` in
between). Queued here, both go into the store's writer queue in arrival
order: in one transaction the store runs segment inserts before receipt
updates, and across transactions the earlier one commits first. So a
receipt is parked only when the upstream really sent it before the
submit_sm_resp.

Receipts are answered (deliver_sm_resp / data_sm_resp) only after their
commit, ESME_ROK; if the store refused them, ESME_RX_T_APPN, and the SMSC
sends them again later. Segment records are retried (bounded): without them
the message's receipts cannot be matched.

A write the store cannot take because it is out of reach
(``StoreUnavailable``: a database restart, a lost network) makes the writes
**failing** until one of them, or another call of the dispatcher's, goes
through again; ``on_failing(True/False)`` tells the dispatcher, which stops
every connector's submits meanwhile. A part sent while its record cannot be
written is sent again once its claim lapses (a duplicate upstream): stopping
at the first failure keeps those to the parts already in flight, at most a
window per bind (docs/scale-out.md, "Cluster tests").
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from herald.dispatch._tasks import retry_store
from herald.net import SmppConnection
from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import DataSm, DeliverSm
from herald.store import (
    ReceiptUpdate,
    SegmentRecord,
    Store,
    StoreBusy,
    StoreClosed,
    StoreError,
    StoreUnavailable,
)

__all__ = ["Pending", "UpstreamWrites", "respond_all"]

log = logging.getLogger("herald.dispatch")

#: A PDU from an upstream waiting for its answer (None: answered already).
Pending = tuple[SmppConnection, DeliverSm | DataSm] | None
_Receipts = tuple[tuple[ReceiptUpdate, ...], Pending]
#: Called with a count once that many segment writes are done (committed or given up).
Committed = Callable[[int], None]
_Segment = tuple[SegmentRecord, Committed | None]


def respond_all(pending: Sequence[Pending], status: int) -> None:
    """Answer each PDU with ``status`` (skipping those answered already)."""
    for item in pending:
        if item is not None:
            item[0].respond(item[1].response(status))


class UpstreamWrites:
    """See the module docstring. ``start()``, ``segment()`` / ``receipts()``, ``close()``.

    What one loop turn adds is queued for the store's writer at the end of that
    turn (segment records first) and answered from the writes' completions:
    no task per write, so a part's window slot and a receipt's answer wait for
    the commit and one more turn, not for a chain of task wake-ups (each turn
    of a busy loop is milliseconds, and the window of a bind is held until its
    parts are recorded).
    """

    def __init__(self, store: Store, on_failing: Callable[[bool], None] | None = None) -> None:
        self._store = store
        self._on_failing = on_failing
        self.failing = False  # the last write the store could not be reached for
        self._segments: list[_Segment] = []
        self._receipts: list[_Receipts] = []
        self._scheduled = False
        self._flying: set[asyncio.Future[Any]] = set()  # writes not yet settled
        self.receipts_applied = 0

    def start(self) -> None:
        """Nothing to start: writes are queued as they come."""

    def reached(self, ok: bool = True) -> None:
        """The store took a write (``ok``) or could not be reached: the writes are
        failing from the first such failure until the next success."""
        if ok is self.failing:
            self.failing = not ok
            if ok:
                log.warning("store reachable again: submits resume")
            else:
                log.warning("store out of reach: submits stop until it takes a write")
            if self._on_failing is not None:
                self._on_failing(not ok)

    async def close(self) -> None:
        """Write what is queued and wait for every write (retries included)."""
        if self._segments or self._receipts:
            self._submit()
        while self._flying:
            await asyncio.wait(set(self._flying))

    def segment(self, record: SegmentRecord, committed: Committed | None = None) -> None:
        """Queue a segment record; ``committed(n)`` runs once it is written (the
        connector keeps the part counted against its window until then)."""
        self._segments.append((record, committed))
        self._schedule()

    def receipts(self, updates: tuple[ReceiptUpdate, ...], pending: Pending) -> None:
        self._receipts.append((updates, pending))
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._submit)

    def _submit(self) -> None:
        self._scheduled = False
        segments, self._segments = self._segments, []
        receipts, self._receipts = self._receipts, []
        if segments:  # first: a receipt for a part recorded here finds it
            self._record(segments)
        if receipts:
            self._apply(receipts)

    def _track(self, write: Awaitable[None], done: Callable[[BaseException | None], None]) -> None:
        future = asyncio.ensure_future(write)
        self._flying.add(future)

        def settled(f: asyncio.Future[Any]) -> None:
            self._flying.discard(f)
            done(None if f.cancelled() else f.exception())

        future.add_done_callback(settled)

    def _record(self, items: list[_Segment]) -> None:
        records = [record for record, _ in items]
        done: Counter[Committed] = Counter(c for _, c in items if c is not None)

        def release() -> None:
            for committed, count in done.items():
                committed(count)

        def settled(exc: BaseException | None) -> None:
            if isinstance(exc, (StoreBusy, StoreUnavailable)) and not isinstance(exc, StoreClosed):
                if isinstance(exc, StoreUnavailable):
                    self.reached(False)
                # Refused for now: retry (bounded) in a task of its own.
                self._track(self._retry(records), lambda _: release())
                return
            if exc is not None:
                self._lost(len(records), exc)
            elif self.failing:
                self.reached()
            release()

        try:
            self._track(self._store.record_segments(records), settled)
        except StoreError as exc:  # refused at once (busy, closed, a bad record)
            settled(exc)

    async def _retry(self, records: list[SegmentRecord]) -> None:
        try:
            await retry_store("record segments", partial(self._store.record_segments, records))
        except StoreError as exc:
            self._lost(len(records), exc)  # still failing: submits stay stopped
        else:
            self.reached()

    @staticmethod
    def _lost(count: int, exc: BaseException) -> None:
        # The upstream has these parts; without the record their receipts park
        # and the messages end "expired". Nothing better is possible.
        log.error("%d segment records lost: %s", count, exc)

    def _apply(self, items: list[_Receipts]) -> None:
        updates = [u for batch, _ in items for u in batch]
        pending = [p for _, p in items]

        def settled(exc: BaseException | None) -> None:
            if exc is None:
                if self.failing:
                    self.reached()
                self.receipts_applied += len(pending)
                respond_all(pending, CommandStatus.ESME_ROK)
            else:
                if isinstance(exc, StoreUnavailable) and not isinstance(exc, StoreClosed):
                    self.reached(False)
                log.warning("%d receipts not stored (%s); upstreams will resend them",
                            len(pending), exc)
                respond_all(pending, CommandStatus.ESME_RX_T_APPN)

        if not updates:  # nothing final among them: nothing to keep
            self.receipts_applied += len(pending)
            respond_all(pending, CommandStatus.ESME_ROK)
            return
        try:
            self._track(self._store.apply_receipts(updates), settled)
        except StoreError as exc:
            settled(exc)
