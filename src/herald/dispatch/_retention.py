"""Message retention: the housekeeping's purge of old messages, texts and CDRs (private).

Theory of operation
-------------------
``[store] message_days``, ``text_days`` and ``cdr_days`` (docs/retention.md).
At each purge turn of the dispatcher's housekeeping (every ``purge_interval``,
on the node that leads: on SQLite the only one), :meth:`Retention.kick` starts
a pass in a task of its own unless one still runs, so expiry and receipt
checks go on while a large backlog of old rows is deleted. A pass first reads
the margin sums (bringing them up to date: a message they have not counted is
kept), then calls ``purge_messages``, ``purge_records`` (inbound messages,
chains, verifications, the pumping defence's decisions: ``Retained``),
``erase_texts`` and ``purge_cdrs`` step by step (each one transaction of at
most ``batch`` rows), pausing after each as long as it took (``pause`` seconds
at least): a write on the hot path waits behind one step at most, and a pass
takes at most about half of the store's time, however busy. A failed step ends
the pass; the next turn starts again (every step is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from herald.config import StoreConfig
from herald.store import PURGE_BATCH, Retained, Store, StoreError

__all__ = ["DAY", "MAX_STEPS", "PURGE_PAUSE", "Retention", "RetentionPass"]

log = logging.getLogger("herald.dispatch")

#: Seconds in a day (``[store] message_days``, ``cdr_days``).
DAY: Final = 86_400.0
#: Seconds between two steps of a pass at least (else as long as the step
#: took): the store's other writers go between.
PURGE_PAUSE: Final = 0.01
#: Steps of a pass at most, per kind (500 rows each: 50 million rows); the
#: next turn goes on where the rows left off.
MAX_STEPS: Final = 100_000


@dataclass(frozen=True, slots=True)
class RetentionPass:
    """What one pass deleted."""

    messages: int = 0
    texts: int = 0
    cdrs: int = 0
    records: int = 0  # inbound messages, chains, verifications, decisions


class Retention:
    """Purges ``store`` by ``config``'s ``message_days``, ``text_days`` and
    ``cdr_days``; does nothing when none is set. :meth:`kick` at each purge turn,
    ``await stop()`` when done."""

    def __init__(self, store: Store, config: StoreConfig, clock: Callable[[], float], *,
                 batch: int = PURGE_BATCH, pause: float = PURGE_PAUSE) -> None:  # fmt: skip
        self._store = store
        self._messages = None if config.message_days is None else config.message_days * DAY
        self._texts = None if config.text_days is None else config.text_days * DAY
        self._cdrs = None if config.cdr_days is None else config.cdr_days * DAY
        self._clock = clock
        self._batch = batch
        self._pause = pause
        self._task: asyncio.Task[None] | None = None

    @property
    def configured(self) -> bool:
        return any(d is not None for d in (self._messages, self._texts, self._cdrs))

    def kick(self) -> None:
        """Start a pass in the background, unless none is configured or one runs."""
        if self.configured and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._logged(), name="dispatch-retention")

    async def _logged(self) -> None:
        try:
            done = await self.run(self._clock())
        except StoreError as exc:  # the next turn starts again
            log.warning("retention: %s", exc)
            return
        if done.messages or done.texts or done.cdrs or done.records:
            log.info("retention: purged %d messages, %d CDRs and %d other records"
                     " (inbound, chains, verifications, decisions), erased %d texts",
                     done.messages, done.cdrs, done.records, done.texts)  # fmt: skip

    async def run(self, now: float) -> RetentionPass:
        """One pass at ``now``. Raises :class:`StoreError` (what it deleted stays deleted)."""
        if not self.configured:
            return RetentionPass()
        # Count what came since the last margin read: a message the sums have
        # not counted is kept (herald.store._retention).
        await self._store.margin(now, now, "account")
        loop = asyncio.get_running_loop()
        messages = cdrs = records = 0
        if self._messages is not None:
            after: int | None = 0
            for _ in range(MAX_STEPS):
                began = loop.time()
                step = await self._store.purge_messages(
                    now - self._messages, after=after or 0, limit=self._batch)
                messages += step.deleted
                after = step.after
                if after is None:
                    break
                await asyncio.sleep(max(self._pause, loop.time() - began))
            for kind in Retained:
                at: tuple[float, str] | None = None
                for _ in range(MAX_STEPS):
                    began = loop.time()
                    got = await self._store.purge_records(kind, now - self._messages,
                                                          after=at, limit=self._batch)  # fmt: skip
                    records += got.deleted
                    at = got.after
                    if at is None:
                        break
                    await asyncio.sleep(max(self._pause, loop.time() - began))
        texts = 0
        if self._texts is not None:
            for _ in range(MAX_STEPS):
                began = loop.time()
                erased = await self._store.erase_texts(now - self._texts, limit=self._batch)
                texts += erased.erased
                if not erased.more:
                    break
                await asyncio.sleep(max(self._pause, loop.time() - began))
        if self._cdrs is not None:
            at = None
            for _ in range(MAX_STEPS):
                began = loop.time()
                cdr_step = await self._store.purge_cdrs(now - self._cdrs, after=at,
                                                        limit=self._batch)  # fmt: skip
                cdrs += cdr_step.deleted
                at = cdr_step.after
                if at is None:
                    break
                await asyncio.sleep(max(self._pause, loop.time() - began))
        return RetentionPass(messages, texts, cdrs, records)

    async def stop(self) -> None:
        """Cancel a pass that runs (the step under way commits or not, whole)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
