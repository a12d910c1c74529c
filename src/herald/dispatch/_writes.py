"""Segment records and receipts: one ordered stream of store writes (private).

A submit_sm_resp (its segment must be recorded) and the receipt for the same
part arrive in that order on the wire, milliseconds apart. Written through
separate batchers, the receipt could commit first and be *parked* (correct,
but an extra insert and delete, and the message would skip ``sent`` in
between). Written through this one batcher, both go into the store's writer
queue in arrival order: in one transaction the store runs segment inserts
before receipt updates, and across transactions the earlier one commits
first. So a receipt is parked only when the upstream really sent it before
the submit_sm_resp.

Receipts are answered (deliver_sm_resp / data_sm_resp) only after their
commit, ESME_ROK; if the store refused them, ESME_RX_T_APPN, and the SMSC
sends them again later. Segment records are retried (bounded): without them
the message's receipts cannot be matched.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final

from herald.dispatch._tasks import Batcher, retry_store
from herald.net import SmppConnection
from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import DataSm, DeliverSm
from herald.store import ReceiptUpdate, SegmentRecord, Store, StoreError

__all__ = ["Pending", "UpstreamWrites", "respond_all"]

log = logging.getLogger("herald.dispatch")

#: A PDU from an upstream waiting for its answer (None: answered already).
Pending = tuple[SmppConnection, DeliverSm | DataSm] | None
#: Writes in flight at once (see ``Batcher``).
CONCURRENCY: Final = 4

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
    """See the module docstring. ``start()``, ``segment()`` / ``receipts()``, ``close()``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._batcher: Batcher[_Segment | _Receipts] = Batcher(
            "upstream-writes", self._write, concurrency=CONCURRENCY)
        self.receipts_applied = 0

    def start(self) -> None:
        self._batcher.start()

    async def close(self) -> None:
        await self._batcher.close()

    def segment(self, record: SegmentRecord, committed: Committed | None = None) -> None:
        """Queue a segment record; ``committed(n)`` runs once it is written (the
        connector keeps the part counted against its window until then)."""
        self._batcher.add((record, committed))

    def receipts(self, updates: tuple[ReceiptUpdate, ...], pending: Pending) -> None:
        self._batcher.add((updates, pending))

    async def _write(self, batch: list[_Segment | _Receipts]) -> None:
        segments: list[SegmentRecord] = []
        done: Counter[Committed] = Counter()
        updates: list[ReceiptUpdate] = []
        pending: list[Pending] = []
        for item in batch:
            if isinstance(item[0], SegmentRecord):
                segments.append(item[0])
                if item[1] is not None:
                    done[item[1]] += 1
            else:
                updates.extend(item[0])
                pending.append(item[1])
        # gather starts its tasks in order, so the segment write is queued first.
        try:
            await asyncio.gather(self._record(segments), self._apply(updates, pending))
        finally:
            for committed, count in done.items():
                committed(count)

    async def _apply(self, updates: list[ReceiptUpdate], pending: list[Pending]) -> None:
        if not pending:
            return
        try:
            if updates:
                await self._store.apply_receipts(updates)
            self.receipts_applied += len(pending)
            respond_all(pending, CommandStatus.ESME_ROK)
        except StoreError as exc:
            log.warning("%d receipts not stored (%s); upstreams will resend them",
                        len(pending), exc)
            respond_all(pending, CommandStatus.ESME_RX_T_APPN)

    async def _record(self, segments: list[SegmentRecord]) -> None:
        if not segments:
            return
        try:
            await retry_store("record segments", partial(self._store.record_segments, segments))
        except StoreError as exc:
            # The upstream has these parts; without the record their receipts
            # park and the messages end "expired". Nothing better is possible.
            log.error("%d segment records lost: %s", len(segments), exc)
