"""The dispatcher: claims messages from the store and drives them to a final upstream answer.

Theory of operation
-------------------
The store is the queue. One **claim loop** asks it for as many ready messages
as the connectors that can take work have room for (about a second of each
one's TPS, see ``DispatchSettings.queue_seconds``), routes each (the routing
rules, else the ``[[routes]]`` prefixes: :class:`~herald.routes.LiveRouting`,
which keeps itself current with the store) and gives it, as a :class:`Job`, to
the first connector of its route that is up and can carry the body. It
sleeps ``poll_interval`` when there is nothing to do, unless :meth:`wake` is
called (intake calls it after each commit) or a connector drains.

A job's parts go through its connector's pump (``_connector``). Answers come
back through :meth:`part_done`:

- ESME_ROK: the segment is recorded (batched ``Store.record_segments``); the
  store marks the message ``sent`` when all its segments are. While the store
  is out of reach (a write or a claim failed with ``StoreUnavailable``) no
  connector submits, until a write goes through again (``_writes``).
- transient (timeout, lost session, ESME_RSYSERR, unknown codes): the part is
  retried on the same connector after a backoff, ``retries_per_connector``
  times, then the job moves to the route's next connector.
- permanent (ESME_RINVDSTADR, …): the job moves to the next connector; with
  none left it ends ``rejected`` with the code. If some of its parts were
  already accepted it ends there (a message cannot be half-recalled).
- throttling never reaches the dispatcher: the connector pauses and resends.

Every submit that is not accepted (an error status, throttling, a timeout, a
lost session) is noted for the message's timeline (``submit_failed``: batched
``Store.record_failed_submits``, which SQLite's group commit folds into the
transaction of the moment); a success writes nothing more than its segment.

A job that leaves a connector does so once its parts in flight are answered
(``Job.failing`` marks the decision, ``_resolve`` takes it). When no
connector of the route can take a job now (all down, or all failed it
transiently), the message goes back to the store (``reschedule``) with a
backoff that grows with its claim count; connectors being down never fail a
message: its validity ends it (``expired``).

Leases: a claim leases the message for ``lease`` seconds; the **lease keeper**
extends the leases of every job still held, so a message is never claimed
twice by a live herald, and a crashed herald's messages come back within one
lease. All store writes from callbacks are batched (``_tasks.Batcher``); the
only per-message awaits are in those batchers' single tasks.

**Housekeeping** (every ``housekeeping_interval``): ``expire_unsent`` (validity
ended while nothing could claim them), ``expire_sent`` (``sent`` and no receipt
``receipt_grace`` after the validity ended), parts whose receipt is overdue
(their connector's ``receipt_timeout``: asked about with query_sm, or ended;
``_checks``), MO reassembly timeouts, and ``purge`` every ``purge_interval``,
with a retention pass (``[store] message_days``, ``cdr_days``: ``_retention``).
Given ``leader`` (several nodes on one PostgreSQL), the cluster-wide part
(expiry, purge, retention) runs only while ``leader()`` says this node leads; the parts
bound to this node's binds and memory (receipt checks, MO) run everywhere.

``stop()``: stop claiming, stop the pumps and wait (bounded) for answers in
flight, hand every message still held back to the store (claimable at
once), write what is batched, unbind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Final

from herald.config import HeraldConfig
from herald.dispatch._checks import ReceiptChecker
from herald.dispatch._connector import Connector, SlotGate
from herald.dispatch._errors import ErrorCode, Outcome
from herald.dispatch._inbox import Inbox
from herald.dispatch._job import Failing, Job
from herald.dispatch._pace import Backoff
from herald.dispatch._plan import Unsendable, build_submits
from herald.dispatch._retention import Retention
from herald.dispatch._settings import DispatchSettings
from herald.dispatch._tasks import Batcher, Signal, retry_store
from herald.dispatch._writes import UpstreamWrites
from herald.ids import IdGenerator, SortableIdGenerator
from herald.metrics import Metrics
from herald.net import SmppConnection
from herald.routes import LiveRouting
from herald.routing import FALLBACK, InboundTable, InvalidNumber, NoRoute, RouteTable
from herald.smpp.message_id import submit_id_keys
from herald.smpp.pdus import Request
from herald.store import (
    MAX_ATTEMPTS_KEPT,
    Message,
    Priority,
    Reschedule,
    RouteRecord,
    SegmentRecord,
    Status,
    StatusUpdate,
    Store,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    SubmitFailure,
)

__all__ = ["Dispatcher"]

log = logging.getLogger("herald.dispatch")

#: ``expire_unsent`` / ``expire_sent`` rows per call, and calls per housekeeping
#: round: a backlog larger than this expires over several rounds.
EXPIRE_BATCH: Final = 5000
EXPIRE_ROUNDS: Final = 10
#: A connector's queue may overshoot its capacity by this factor (a claim is
#: sized on the sum of the connectors' room, not on each one's) before new
#: jobs for it go back to the store.
QUEUE_OVERSHOOT: Final = 2
#: Seconds between claims while some class has no room (connectors full of bulk):
#: an OTP waits at most this long for its claim, and a commit-per-millisecond
#: intake causes at most 1 / this empty claims a second.
URGENT_CLAIM_GAP: Final = 0.02


class Dispatcher:
    """Dispatch for one herald process. ``await start()``; ``wake()``; ``await stop()``.

    ``clock`` returns epoch seconds (store timestamps, validity); pacing and
    timers use the event loop's monotonic clock. Raises ``ValueError`` at
    construction for a route or inbound rule the tables refuse.
    """

    def __init__(
        self,
        store: Store,
        config: HeraldConfig,
        metrics: Metrics,
        clock: Callable[[], float],
        *,
        settings: DispatchSettings | None = None,
        ids: IdGenerator | None = None,
        slots: SlotGate | None = None,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        self._store = store
        self._leader = leader
        self._clock = clock
        self._metrics = metrics
        # [cluster] claim_lease: how soon a dead node's claimed messages go out again
        self.settings = s = settings or DispatchSettings(lease=config.cluster.claim_lease)
        self._routes = RouteTable(config.routes)
        self.connectors: dict[str, Connector] = {
            c.name: Connector(c, self, metrics, s, clock, slots=slots) for c in config.connectors
        }
        missing = self._routes.connectors - set(self.connectors)
        if missing:
            raise ValueError(f"routes name unknown connectors: {sorted(missing)}")
        self.routing = LiveRouting(store, self._routes, self.connectors, clock)
        self._writes = UpstreamWrites(store, on_failing=self._hold_submits)
        self.receipts = ReceiptChecker(store, self.connectors, s, clock)
        self.inbox = Inbox(store, InboundTable(config.inbound), metrics, clock,
                           ids or SortableIdGenerator(), self._writes)
        self.retention = Retention(store, config.store, clock)
        self._jobs: dict[str, Job] = {}
        self._finals: Batcher[StatusUpdate] = Batcher("finals", self._write_finals)
        self._handbacks: Batcher[Reschedule] = Batcher("handbacks", self._write_handbacks)
        self._resizes: Batcher[tuple[Job, int, Connector]] = Batcher(
            "resizes", self._write_resizes)
        self._route_records: Batcher[RouteRecord] = Batcher("routes", self._write_routes)
        self._failed_submits: Batcher[SubmitFailure] = Batcher(
            "failed-submits", self._write_failed_submits)
        self._batchers = (self._resizes, self._finals, self._handbacks, self._route_records,
                          self._failed_submits)
        self._claim_signal = Signal()
        self._more_waiting = True  # the last claim may have left ready messages behind
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._loop_time: Callable[[], float] = lambda: asyncio.get_running_loop().time()
        self.claimed = 0  # messages claimed since start (for tests and benchmarks)
        #: Whether this node's claims are its own (several nodes: its lease
        #: keeper's registration holds; ``herald.workers._leases`` sets it):
        #: while not, it claims nothing and extends no claim (the leader may
        #: requeue them).
        self.node_alive: Callable[[], bool] = lambda: True

    # ------------------------------------------------------------------ control

    async def start(self) -> None:
        """Bind every connector (in the background) and start claiming."""
        # The loop's clock, read once a message in _assign: asyncio.get_running_loop()
        # costs a getpid() system call a call on CPython 3.11.
        self._loop_time = asyncio.get_running_loop().time
        await self.inbox.start()
        self._writes.start()
        for batcher in self._batchers:
            batcher.start()
        for connector in self.connectors.values():
            await connector.start()
        self.receipts.start()
        try:
            await self.routing.refresh()
        except Exception as exc:  # route by the [[routes]] until the rules can be read
            log.error("routing rules not loaded (%s); routing by [[routes]] until they are", exc)
        self._tasks = [
            asyncio.create_task(self.routing.run(), name="dispatch-routing"),
            asyncio.create_task(self._claim_loop(), name="dispatch-claim"),
            asyncio.create_task(self._keep_leases(), name="dispatch-leases"),
            asyncio.create_task(self._housekeeping(), name="dispatch-housekeeping"),
        ]

    def wake(self) -> None:
        """New messages were committed: claim now rather than at the next poll."""
        self._claim_signal.set()

    def slot_gained(self, connector: str, slot: int) -> None:
        """The lease keeper's ``on_gained``: bind on ``slot`` of ``connector``."""
        found = self.connectors.get(connector)
        if found is not None:
            found.gain(slot)

    def slot_lost(self, connector: str, slot: int) -> asyncio.Task[None] | None:
        """The lease keeper's ``on_lost``: stop sending on ``slot`` and unbind;
        the unbind's task, which the keeper awaits before handing the slot back."""
        found = self.connectors.get(connector)
        return None if found is None else found.lose(slot)

    def node_lapsed(self) -> None:
        """This node's registration lapsed (its lease keeper could not renew it):
        the leader may requeue every message it holds, so none is sent any more
        (each is handed back under its attempt when its turn comes)."""
        now = self._clock()
        for job in self._jobs.values():
            job.lease_until = min(job.lease_until, now)

    async def _probe_store(self) -> None:
        """While the store is out of reach and the connectors, held full, ask
        for no claim: a cheap read, so that submits resume as soon as it
        answers (rather than at a record's next retry, seconds later)."""
        try:
            await self._store.routing_generation()
        except StoreError:
            return
        self._writes.reached()

    def _hold_submits(self, hold: bool) -> None:
        """The store is out of reach (``hold``) or back: stop or resume every
        connector's submits (``UpstreamWrites``: parts sent meanwhile could not
        be recorded, and each would go out twice)."""
        for connector in self.connectors.values():
            connector.hold(hold)

    def room(self) -> None:
        """A connector drained (ConnectorOwner): claim, if the store may hold more.

        Only when the last claim was cut short by the connectors' room (it took
        all it asked for, or could ask for nothing): otherwise everything ready
        was claimed then, and new messages come with their own :meth:`wake`.
        Connectors drain after every send at low rates, and an empty claim is
        a write transaction for nothing.
        """
        if self._more_waiting:
            self._claim_signal.set()

    async def stop(self) -> None:
        """Graceful stop; see the module docstring. Bounded by ``stop_timeout`` per stage."""
        if self._stopping:
            return
        self._stopping = True
        self._claim_signal.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.retention.stop()
        await self.receipts.close()
        timeout = self.settings.stop_timeout
        await asyncio.gather(*(c.stop_sending(timeout) for c in self.connectors.values()))
        await self._resizes.close()
        now = self._clock()
        for job in list(self._jobs.values()):
            self._handback(job, now)
        for batcher in self._batchers[1:]:
            await batcher.close()
        await asyncio.gather(*(c.close(timeout) for c in self.connectors.values()))
        await self._writes.close()  # after the unbinds: receipts may arrive until then
        await self.inbox.close()

    @property
    def held(self) -> int:
        """Messages held in memory now (claimed, not yet finished or handed back)."""
        return len(self._jobs)

    # ------------------------------------------------------------- claim loop

    async def _claim_loop(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        classes = range(len(Priority))
        while not self._stopping:
            now = loop.time()
            # Room per class: a message waits behind its own class and the more
            # urgent ones only, so a connector full of bulk still has room for OTPs.
            accepting = [c for c in self.connectors.values() if c.accepting(now)]
            rooms = [min(s.max_claim, sum(max(0, c.room_for(p)) for c in accepting))
                     for p in classes]
            limit = max(rooms) if self.node_alive() else 0  # lapsed: node_lapsed
            if limit <= 0:
                self._more_waiting = True  # unknown: look again when room opens up
                if self._writes.failing:  # submits wait for the store: ask it
                    await self._probe_store()
                await self._claim_signal.wait(s.poll_interval)
                continue
            claimed_at = self._clock()  # the store's lease ends at claimed_at + lease
            try:
                claimed = await self._store.claim(limit, claimed_at, s.lease,
                                                  class_limits=rooms)
            except StoreError as exc:
                log.warning("claim failed (%s); retrying", exc)
                if isinstance(exc, StoreUnavailable) and not isinstance(exc, StoreClosed):
                    self._writes.reached(False)
                await self._claim_signal.wait(s.poll_interval)
                continue
            if self._writes.failing:
                self._writes.reached()
            self.claimed += len(claimed)
            # Cut short by room: it took all it could ask for, or a class had none.
            self._more_waiting = len(claimed) >= limit or min(rooms) <= 0
            lease_until = claimed_at + s.lease
            for message in claimed:
                self._admit(message, lease_until)
            if len(claimed) < limit:
                if min(rooms) <= 0:
                    # Full of less urgent work: every commit would wake a claim
                    # for the urgent classes, mostly for nothing; space them out.
                    await asyncio.sleep(URGENT_CLAIM_GAP)
                await self._claim_signal.wait(s.poll_interval)

    def _admit(self, message: Message, lease_until: float) -> None:
        try:
            decision = self.routing.decide(message)
        except NoRoute:
            self._end(message, Status.FAILED, ErrorCode.NO_ROUTE, permanent=True)
            return
        except InvalidNumber:
            self._end(message, Status.FAILED, ErrorCode.INVALID_DESTINATION, permanent=True)
            return
        route = decision.connectors
        if decision.rule != FALLBACK:
            self._route_records.add(RouteRecord(message.id, decision.rule, self._clock()))
        held = self._jobs.get(message.id)
        if held is not None:
            # Our own lease lapsed (a store outage kept the keeper from extending
            # it) and the claim came back to us: carry on under the new claim.
            held.message = message
            held.lease_until = lease_until
            return
        job = Job(message, route, lease_until)
        self._jobs[message.id] = job
        self._assign(job, 0)

    def _assign(self, job: Job, start: int) -> None:
        """Give ``job`` to the first usable connector of its route from ``start``."""
        now = self._loop_time()
        for pos in range(start, len(job.route)):
            connector = self.connectors[job.route[pos]]
            if not connector.accepting(now):
                job.down_seen = True
                continue
            try:
                pdus = build_submits(job.message, connector.upstream,
                                     reference=connector.next_reference())
            except Unsendable as exc:
                job.unsendable = True
                log.info("message %s cannot go via %s: %s", job.id, connector.name, exc)
                continue
            if connector.load_upto(job.message.priority) >= QUEUE_OVERSHOOT * connector.capacity:
                self._handback(job, self._clock() + self.settings.handback_initial)
                return
            job.pos = pos
            job.connector = connector.name
            gen = job.reset_parts(pdus)
            if len(pdus) != job.segments:
                self._resizes.add((job, gen, connector))
            else:
                connector.enqueue(job)
            return
        self._exhausted(job)

    def _exhausted(self, job: Job) -> None:
        """No connector of the route (from where the job was) can take it now."""
        s = self.settings
        now = self._clock()
        if job.down_seen:
            # Not a failure: back off by claims, never give up (validity ends it).
            delay = Backoff.delay(job.message.attempt, s.handback_initial, s.handback_max)
            self._handback(job, now + delay)
        elif job.permanent_status is not None:
            self._finish(job, Status.REJECTED, job.permanent_status, permanent=True)
        elif job.unsendable:
            self._finish(job, Status.FAILED, ErrorCode.UNSENDABLE, permanent=True)
        elif job.message.tries + 1 >= s.max_transient_claims:
            self._finish(job, Status.FAILED, job.last_status or ErrorCode.NO_RESPONSE,
                         permanent=False)
        else:
            # A failed try: only these count towards max_transient_claims.
            delay = Backoff.delay(job.message.tries + 1, s.handback_initial, s.handback_max)
            self._handback(job, now + delay, failed=True)

    # ------------------------------------------------------- ConnectorOwner

    def part_done(self, connector: Connector, job: Job, gen: int, index: int,
                  outcome: Outcome, status: int | None, message_id: str) -> None:
        if job.gen != gen:
            if outcome is Outcome.OK:
                connector.committed(1)  # nothing to record for an old assignment
            return  # the job moved on (or left); this answer is about an old assignment
        if status:
            job.last_status = status
        s = self.settings
        if outcome is Outcome.OK:
            self._record(connector, job, index, message_id)
            job.accepted += 1
            if job.failing is None:
                if job.accepted == len(job.pdus):
                    self._done(job)
                return
        elif outcome is Outcome.PERMANENT:
            job.permanent_status = status
            job.failing = Failing.PERMANENT
        elif job.failing is None:  # transient (or throttled after the job started failing)
            job.retries += 1
            if job.retries <= s.retries_per_connector:
                delay = Backoff.delay(job.retries, s.retry_initial, s.retry_max)
                connector.retry_later(job, gen, index, delay)
                return
            job.failing = Failing.TRANSIENT
        if job.inflight == 0:
            self._resolve(job)

    def submit_failed(self, connector: Connector, job: Job, index: int, answer: str) -> None:
        # For the message's timeline: only failures are written (a success is
        # its segment record), the first MAX_ATTEMPTS_KEPT of a claim at most.
        if job.failures < MAX_ATTEMPTS_KEPT:
            job.failures += 1
            self._failed_submits.add(
                SubmitFailure(job.id, index, self._clock(), connector.name, answer))

    def part_expired(self, connector: Connector, job: Job, gen: int) -> None:
        if job.gen == gen:
            job.failing = Failing.EXPIRED
            if job.inflight == 0:
                self._resolve(job)

    def lease_lapsed(self, connector: Connector, job: Job, gen: int) -> None:
        """Its claim ended before this part went out (the lease could not be
        extended: a store outage, a stalled loop): send nothing more of it."""
        if job.gen == gen and job.failing is None:
            job.failing = Failing.LAPSED
            if job.inflight == 0:
                self._resolve(job)

    def connector_down(self, connector: Connector, jobs: list[Job]) -> None:
        for job in jobs:
            if job.inflight == 0:
                self._resolve(job)

    def on_upstream_request(
        self, connector: Connector, conn: SmppConnection, request: Request
    ) -> None:
        self.inbox.handle(connector, conn, request)

    # ------------------------------------------------------------ decisions

    def _resolve(self, job: Job) -> None:
        """The job's parts in flight are all answered: act on ``job.failing``."""
        failing = job.failing
        if failing is Failing.EXPIRED:
            self._finish(job, Status.EXPIRED, None, permanent=False)
        elif failing is Failing.LAPSED:
            # Handed back under its attempt: a no-op if another node claimed it
            # meanwhile, else it is ready again (for any node) at once.
            self._handback(job, self._clock())
        elif failing is Failing.PERMANENT and job.accepted > 0:
            self._finish(job, Status.REJECTED, job.permanent_status, permanent=True)
        else:
            if failing is Failing.DOWN:
                job.down_seen = True
            self._assign(job, job.pos + 1)

    def _record(self, connector: Connector, job: Job, index: int, message_id: str) -> None:
        if not message_id:
            # ESME_ROK without an id: nothing a receipt could name. Record a key
            # no receipt can match, so the message is still "sent" (and expires).
            log.warning("%s: submit_sm_resp without message_id for %s", connector.name, job.id)
            message_id = f"-{job.id}.{index}"
        key = submit_id_keys(message_id, connector.policy)[0]
        now = self._clock()
        self._writes.segment(SegmentRecord(job.id, index, connector.name, message_id, key, now,
                                           now + connector.config.receipt_timeout),
                             connector.committed)

    def _done(self, job: Job) -> None:
        """Every part accepted: the store marks it sent; dispatch lets go."""
        self._jobs.pop(job.id, None)
        job.retire()

    def _finish(self, job: Job, status: Status, code: int | None, *, permanent: bool) -> None:
        self._jobs.pop(job.id, None)
        job.retire()
        self._end(job.message, status, code, permanent=permanent)

    def _end(self, message: Message, status: Status, code: int | None, *,
             permanent: bool) -> None:
        error = None if code is None else int(code)
        self._finals.add(StatusUpdate(message.id, status, self._clock(), error, permanent))

    def _handback(self, job: Job, ready_at: float, *, failed: bool = False) -> None:
        """Give ``job`` back to the store until ``ready_at``; ``failed`` counts
        a failed try (throttling, a full queue, a stop or a down connector do not)."""
        self._jobs.pop(job.id, None)
        job.retire()
        # release: the claim ends, so its customer may cancel it while it waits
        self._handbacks.add(Reschedule(job.id, job.message.attempt, ready_at, failed,
                                       release=True))

    # --------------------------------------------------------- batched writes

    async def _write_finals(self, batch: list[StatusUpdate]) -> None:
        try:
            await retry_store("final statuses", partial(self._store.update_statuses, batch))
        except StoreError as exc:
            log.error("%d final statuses not written (they will be retried by claim): %s",
                      len(batch), exc)

    async def _write_handbacks(self, batch: list[Reschedule]) -> None:
        try:
            await retry_store("hand back", partial(self._store.reschedule_many, batch))
        except StoreError as exc:
            log.error("%d hand-backs not written (their leases will lapse): %s",
                      len(batch), exc)

    async def _write_routes(self, batch: list[RouteRecord]) -> None:
        try:
            await retry_store("route records", partial(self._store.record_routes, batch))
        except StoreError as exc:  # the message goes on; only its record lacks the rule
            log.warning("the rules of %d routed messages not recorded: %s", len(batch), exc)

    async def _write_failed_submits(self, batch: list[SubmitFailure]) -> None:
        try:
            await retry_store("failed submits",
                              partial(self._store.record_failed_submits, batch))
        except StoreError as exc:  # the messages go on; only their timelines lack these
            log.warning("%d failed submits not recorded: %s", len(batch), exc)

    async def _write_resizes(self, batch: list[tuple[Job, int, Connector]]) -> None:
        results = await asyncio.gather(
            *(self._store.set_segments(job.id, job.message.attempt, len(job.pdus))
              for job, _, _ in batch),
            return_exceptions=True,
        )
        for (job, gen, connector), result in zip(batch, results, strict=True):
            if job.gen != gen:
                continue
            if result is True:
                job.segments = len(job.pdus)
                connector.enqueue(job)
            elif result is False:  # the claim is not ours any more
                self._jobs.pop(job.id, None)
                job.retire()
            else:
                log.warning("re-split of %s not written (%s)", job.id, result)
                self._handback(job, self._clock() + self.settings.handback_initial)

    # ------------------------------------------------------ leases, housekeeping

    async def _keep_leases(self) -> None:
        s = self.settings
        while not self._stopping:
            await asyncio.sleep(s.lease / 4)  # stop() cancels this task
            if not self.node_alive():  # the leader's to requeue: node_lapsed
                continue
            now = self._clock()
            horizon = now + s.lease / 2
            due = [job for job in self._jobs.values() if job.lease_until < horizon]
            if due:
                until = now + s.lease
                items = [Reschedule(j.id, j.message.attempt, until) for j in due]
                try:
                    await retry_store("extend leases", partial(self._store.reschedule_many, items))
                except StoreError as exc:
                    log.error("leases of %d messages not extended: %s", len(items), exc)
                    continue
                if self._writes.failing:
                    self._writes.reached()
                # Moved on once written, and only for claims still held when it
                # was: one that lapsed meanwhile may be another node's now.
                written = self._clock()
                for job in due:
                    if job.lease_until > written:
                        job.lease_until = until

    async def _housekeeping(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        next_purge = self._clock() + s.purge_interval
        while not self._stopping:
            await asyncio.sleep(s.housekeeping_interval)  # stop() cancels this task
            now = self._clock()
            leads = self._leader is None or self._leader()
            try:
                if leads:
                    await self._expire(now)
                await self.receipts.check(now)
                if leads and now >= next_purge:
                    next_purge = now + s.purge_interval
                    purged = await self._store.purge(
                        now, parked_before=now - s.parked_ttl, dead_before=now - s.dead_ttl)
                    if purged:
                        log.info("purged %d rows", purged)
                    self.retention.kick()  # in a task of its own: a pass may be long
            except StoreError as exc:
                log.warning("housekeeping: %s", exc)
            self.inbox.housekeeping(loop.time())

    async def _expire(self, now: float) -> None:
        for _ in range(EXPIRE_ROUNDS):
            n = await self._store.expire_unsent(now, EXPIRE_BATCH)
            if n < EXPIRE_BATCH:
                break
        cutoff = now - self.settings.receipt_grace
        for _ in range(EXPIRE_ROUNDS):
            n = await self._store.expire_sent(cutoff, now, EXPIRE_BATCH)
            if n < EXPIRE_BATCH:
                break
