"""Receipts that never come: overdue parts asked about with query_sm, or ended (private).

Theory of operation
-------------------
Every part accepted upstream is recorded with the time its receipt is
overdue (``check_at``: the record time plus its connector's
``receipt_timeout``). A final receipt takes the part out of the store's index
of waiting parts, so what is left there past ``check_at`` is overdue, and the
store, not a timer, remembers it: a restart (or the other process of
``herald serve``) carries on where the last one stopped.

Every ``housekeeping_interval`` the dispatcher calls :meth:`ReceiptChecker.check`,
which reads the overdue parts (``Store.due_receipt_checks``, ``CHECK_BATCH`` at
a time) and decides each:

- Its connector does not allow query_sm (``query_sm = false``, the default,
  or the connector is no longer configured), its message is final already
  (another part or its validity ended it), or it was asked about
  ``query_attempts`` times: the part ends ``expired`` with
  :attr:`~herald.dispatch.ErrorCode.NO_RECEIPT`, and its message with it
  (the store applies the usual part rules and writes the usual events).
- Otherwise it joins its connector's query lane (once the connector has a
  bound session: until then the part waits, and no attempt is spent). A lane
  asks query_sm at most ``QUERY_SHARE`` of the connector's ``tps`` (the
  queries also take tokens from the connector's own bucket, so the upstream's
  limit holds for both and submits keep the rest) with at most
  ``window // 4`` queries in flight. A final ``message_state`` ends the part
  as a receipt with that state would (:data:`QUERY_STATUS`). Anything else is
  no information: ENROUTE, ACCEPTED, UNKNOWN, an error status
  (ESME_RQUERYFAIL, ESME_RINVMSGID, generic_nack), no answer (a session lost
  meanwhile included). The part is then checked again one ``receipt_timeout``
  later, or ends as above after the last attempt.

Results are written in batches (``Store.settle_receipt_checks``). A receipt
that arrives while a part is being checked wins (the store leaves parts with a
final status alone); one that arrives after the ending changes nothing (a
final status never moves). A part is in at most one lane at a time: the
checker remembers what it queued until the result is written.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Final

from herald.dispatch._connector import Connector
from herald.dispatch._errors import ErrorCode
from herald.dispatch._inbox import RECEIPT_STATUS
from herald.dispatch._pace import TokenBucket
from herald.dispatch._plan import query_pdu
from herald.dispatch._settings import DispatchSettings
from herald.dispatch._tasks import Batcher, retry_store
from herald.smpp.constants import CommandStatus, MessageState
from herald.smpp.pdus import QuerySmResp, Response
from herald.store import CheckResult, ReceiptCheck, Status, Store, StoreError

__all__ = [
    "CHECK_BATCH",
    "QUERY_SHARE",
    "QUERY_STATUS",
    "ReceiptChecker",
    "after_query",
    "no_receipt",
    "query_answer",
]

log = logging.getLogger("herald.dispatch")

#: Overdue parts read per scan. A scan that ends some of a full batch is
#: followed by another at once, up to ``MAX_SCANS`` per round.
CHECK_BATCH: Final = 1000
MAX_SCANS: Final = 10
#: Share of a connector's ``tps`` that query_sm may use: the rest is the submits'.
QUERY_SHARE: Final = 0.1
#: query_sm per second at least (a connector with a very low ``tps``), and for
#: a connector without a TPS limit (its windows set the pace of its submits).
MIN_QUERY_RATE: Final = 1.0
UNLIMITED_QUERY_RATE: Final = 100.0
#: A lane takes at most this many seconds of its rate at once (at least
#: ``MIN_LANE``): the rest waits in the store, where other connectors' overdue
#: parts are not stuck behind it.
LANE_SECONDS: Final = 10.0
MIN_LANE: Final = 10

M = MessageState
#: SMPP 3.4 §5.2.28 message_state in a query_sm_resp -> the status it ends a part
#: with: as for receipts, except UNKNOWN, which a query answers for a message
#: whose state the SMSC cannot tell (no information, ask again later).
QUERY_STATUS: Final[dict[MessageState, Status]] = {
    state: status for state, status in RECEIPT_STATUS.items() if state is not M.UNKNOWN
}


def query_answer(response: Response | None) -> tuple[Status, int | None] | None:
    """The final status (and network error) a query_sm answer reports; None when it
    says nothing final (see the module docstring)."""
    if not isinstance(response, QuerySmResp) or response.command_status != CommandStatus.ESME_ROK:
        return None
    try:
        status = QUERY_STATUS.get(MessageState(response.message_state))
    except ValueError:  # a state SMPP 3.4 does not define
        return None
    if status is None:
        return None
    error = None if status is Status.DELIVERED else (response.error_code or None)
    return status, error


def no_receipt(check: ReceiptCheck, now: float) -> CheckResult:
    """End the part: no receipt came and no answer said how it ended."""
    return CheckResult(check.message_id, check.index, now, Status.EXPIRED, ErrorCode.NO_RECEIPT)


def after_query(check: ReceiptCheck, response: Response | None, now: float, *,
                timeout: float, attempts: int) -> CheckResult:
    """What a query_sm answer (None: none) means for the part asked about."""
    found = query_answer(response)
    if found is not None:
        return CheckResult(check.message_id, check.index, now, found[0], found[1])
    if check.checks + 1 >= attempts:
        return no_receipt(check, now)
    return CheckResult(check.message_id, check.index, now, check_at=now + timeout)


def _query_rate(connector: Connector) -> float:
    tps = connector.config.tps
    return UNLIMITED_QUERY_RATE if math.isinf(tps) else max(MIN_QUERY_RATE, tps * QUERY_SHARE)


class _Lane:
    """One query_sm connector's overdue parts and the workers that ask about them."""

    def __init__(self, connector: Connector, checker: ReceiptChecker) -> None:
        self.connector = connector
        self._checker = checker
        rate = _query_rate(connector)
        self._rate = rate
        self.capacity = max(MIN_LANE, math.ceil(rate * LANE_SECONDS))
        self._workers = max(1, connector.config.window // 4)
        self._queue: deque[ReceiptCheck] = deque()
        self._wakeup = asyncio.Event()
        self._bucket: TokenBucket | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def busy(self) -> bool:
        """Parts wait in the queue: the lane takes no more until it is empty."""
        return bool(self._queue)

    @property
    def full(self) -> bool:
        return len(self._queue) >= self.capacity

    def start(self) -> None:
        self._bucket = TokenBucket(self._rate, asyncio.get_running_loop().time())
        name = f"dispatch-query-{self.connector.name}"
        self._tasks = [asyncio.create_task(self._work(), name=name) for _ in range(self._workers)]

    async def close(self) -> list[ReceiptCheck]:
        """Stop asking; return the parts that were not asked about."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        left = list(self._queue)
        self._queue.clear()
        return left

    def put(self, check: ReceiptCheck) -> None:
        self._queue.append(check)
        self._wakeup.set()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        bucket = self._bucket
        assert bucket is not None
        connector = self.connector
        while True:  # cancelled by close(); each pass waits for work or a token
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            wait = bucket.take(loop.time())
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            check = self._queue.popleft()
            response: Response | None = None
            try:
                pdu = query_pdu(check.upstream_id, check.sender, connector.upstream)
                response = await connector.query(pdu)
            except Exception:  # a bug: this part counts as unanswered, the lane goes on
                log.exception("%s: query_sm for %s failed", connector.name, check.message_id)
            self._checker.answered(connector, check, response)


class ReceiptChecker:
    """See the module docstring. ``start()``, ``await check(now)`` …, ``await close()``."""

    def __init__(self, store: Store, connectors: Mapping[str, Connector],
                 settings: DispatchSettings, clock: Callable[[], float]) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._lanes = {name: _Lane(c, self) for name, c in connectors.items() if c.config.query_sm}
        # Parts in a lane, being asked about, or answered and not yet written:
        # a scan meanwhile sees them still overdue and must not queue them twice.
        self._held: set[tuple[str, int]] = set()
        self._results: Batcher[CheckResult] = Batcher("receipt-checks", self._write)
        self.queried = 0  # query_sm answered or not (for tests and logs)
        self.ended = 0  # parts ended without a receipt
        # Answers written since the last round's log line: [all, final states, given up].
        self._unlogged = [0, 0, 0]

    def start(self) -> None:
        self._results.start()
        for lane in self._lanes.values():
            lane.start()

    async def close(self) -> None:
        """Stop asking; write the answers already in (the rest stay overdue in the store)."""
        for lane in self._lanes.values():
            for check in await lane.close():
                self._held.discard((check.message_id, check.index))
        await self._results.close()

    async def check(self, now: float) -> None:
        """One round: end or queue the parts overdue at ``now`` (see the module docstring)."""
        attempts = self._settings.query_attempts
        if self._unlogged[0]:  # one line a round, however many answers came
            answers, finals, gave_up = self._unlogged
            self._unlogged = [0, 0, 0]
            log.info("query_sm: %d answers written: %d final states, %d parts given up (0x%x)",
                     answers, finals, gave_up, ErrorCode.NO_RECEIPT)
        for _ in range(MAX_SCANS):
            # A lane with work queued takes no more; one whose connector has no
            # bound session cannot ask now: their parts wait in the store.
            skip = [name for name, lane in self._lanes.items()
                    if lane.busy or not lane.connector.bound]  # fmt: skip
            due = await self._store.due_receipt_checks(now, CHECK_BATCH, exclude=skip)
            ends: list[CheckResult] = []
            for check in due:
                key = (check.message_id, check.index)
                if key in self._held:
                    continue
                lane = self._lanes.get(check.connector)
                if lane is None or check.message_status.final or check.checks >= attempts:
                    ends.append(no_receipt(check, now))
                elif not lane.full:
                    self._held.add(key)
                    lane.put(check)
            if ends:
                await retry_store("receipt checks", partial(self._store.settle_receipt_checks,
                                                            ends))
                self.ended += len(ends)
                log.info("%d parts without a receipt ended (0x%x)", len(ends),
                         ErrorCode.NO_RECEIPT)
            if len(due) < CHECK_BATCH or not ends:
                break

    def answered(self, connector: Connector, check: ReceiptCheck,
                 response: Response | None) -> None:
        """A lane's query_sm came back (``None``: no answer)."""
        self.queried += 1
        self._results.add(after_query(check, response, self._clock(),
                                      timeout=connector.config.receipt_timeout,
                                      attempts=self._settings.query_attempts))

    async def _write(self, batch: list[CheckResult]) -> None:
        try:
            await retry_store("receipt checks", partial(self._store.settle_receipt_checks, batch))
        except StoreError as exc:
            log.warning("%d receipt checks not written (they are checked again): %s",
                        len(batch), exc)
        else:
            gave_up = sum(1 for r in batch if r.error_code == ErrorCode.NO_RECEIPT)
            finals = sum(1 for r in batch if r.status is not None) - gave_up
            self.ended += gave_up
            counts = self._unlogged
            counts[0] += len(batch)
            counts[1] += finals
            counts[2] += gave_up
        finally:
            for result in batch:
                self._held.discard((result.message_id, result.index))
