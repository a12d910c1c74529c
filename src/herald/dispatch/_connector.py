"""One upstream connector: its binds, its token bucket, its queue and its pump (private).

Theory of operation
-------------------
A connector owns ``binds`` :class:`~herald.net.SmppClient` sessions (each
reconnects on its own, with backoff) and **one pump task**. The dispatcher
puts parts in its queue (``enqueue``); the pump sends them, in order, as
fast as three limits allow, the most urgent priority class first
(:class:`~herald.store.Priority`: one queue per class; within a class in the
order the dispatcher gave them, which the store's claim made fair between
accounts):

1. the connector's **token bucket** (``tps``, shared by every bind: one pump,
   one bucket, so the rate holds however many binds there are);
2. a bound session with **window room** (the least loaded one is picked);
3. a **pause** after ESME_RTHROTTLED / ESME_RMSGQFUL (short, doubling while the
   upstream keeps throttling, reset by the next accepted submit);
4. a **hold** while the store is out of reach (:meth:`hold`, from the
   dispatcher): what is sent then could not be recorded.

Sending is ``conn.send_then(pdu, callback)``: no task and no future per
message; the connection calls back with each answer after the read that
brought it. The callback classifies the answer
(:func:`herald.dispatch._errors.classify`); a throttled part waits its own
backoff in the connector's ``delayed`` heap (the rest of the queue keeps
flowing after the brief pause); everything else goes to the dispatcher's
``part_done``, which owns what a job does next.

When the connector has no bound session for ``down_grace`` seconds while it
holds work, it hands every queued job back to the dispatcher
(``connector_down``), which tries the route's next connector or returns the
message to the store. Entries of jobs that moved on are recognised by their
generation (``Job.gen``) and dropped when they reach the front.

**Slots** (several nodes on one PostgreSQL, ``docs/leases.md``): given a
:class:`SlotGate`, the connector binds only on the slots this node holds.
Bind ``n`` is slot ``n`` of the connector's ``binds``: it is started when the
node gains the slot (:meth:`gain`) and stopped when it loses it
(:meth:`lose`); the pump sends on it only while the gate says it may (asked
before each submit: the keeper's timer may be late, the check is not), and
the token bucket runs at the node's share of ``tps`` (the slots it holds
times ``tps / binds``), so neither the binds nor the rate of the cluster
exceed the configuration. Without a gate every bind runs, as on one node.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from math import ceil
from typing import Final, Protocol

from herald.config import ConnectorConfig
from herald.dispatch._errors import Outcome, classify, status_name
from herald.dispatch._job import Failing, Job
from herald.dispatch._pace import Backoff, TokenBucket
from herald.dispatch._plan import Upstream
from herald.dispatch._settings import DispatchSettings
from herald.metrics import Metrics
from herald.net import (
    ClientHandler,
    ClientSettings,
    ConnectionClosed,
    ResponseTimeout,
    SmppClient,
    SmppConnection,
    SmppNetError,
)
from herald.smpp.errors import SmppError
from herald.smpp.message_id import IdPolicy
from herald.smpp.pdus import (
    BindReceiver,
    BindRequest,
    BindTransceiver,
    BindTransmitter,
    QuerySm,
    Request,
    Response,
)
from herald.smpp.session import SessionConfig
from herald.smpp.states import Role
from herald.store import Priority
from herald.text import SmscDefault

__all__ = ["Connector", "ConnectorOwner", "SlotGate"]

log = logging.getLogger("herald.dispatch")

#: Sends in one pump pass before it yields to the event loop, so a connector
#: with a deep queue and a generous TPS cannot starve receipts and other pumps.
SENDS_PER_PASS: Final = 64
#: Queue of a connector without a TPS limit, in windows of all its binds: the
#: windows set its pace, and a few of them keep every bind busy between claims.
UNLIMITED_QUEUE_WINDOWS: Final = 8
#: A queue entry: the job, its generation when queued, the part index.
Item = tuple[Job, int, int]


class SlotGate(Protocol):
    """What a connector asks of the cluster's lease keeper
    (:class:`herald.cluster.LeaseKeeper` is one)."""

    def may_send(self, connector: str, slot: int) -> bool: ...

    def rate(self, connector: str, tps: float) -> float: ...

    def unbind_within(self, connector: str, slot: int) -> float:
        """Seconds the bind of ``slot``, lost just now, may take to close (the
        slot may be another node's soon after)."""
        ...


class ConnectorOwner(Protocol):
    """What a connector reports to the dispatcher (all called on the event loop)."""

    def part_done(self, connector: Connector, job: Job, gen: int, index: int,
                  outcome: Outcome, status: int | None, message_id: str) -> None: ...

    def part_expired(self, connector: Connector, job: Job, gen: int) -> None: ...

    def submit_failed(self, connector: Connector, job: Job, index: int, answer: str) -> None:
        """A submit_sm of part ``index`` was not accepted (``answer``: a command_status
        name, ``timeout``, ``connection lost``), whatever happens to the part next."""
        ...

    def lease_lapsed(self, connector: Connector, job: Job, gen: int) -> None: ...

    def connector_down(self, connector: Connector, jobs: list[Job]) -> None: ...

    def room(self) -> None: ...

    def on_upstream_request(
        self, connector: Connector, conn: SmppConnection, request: Request
    ) -> None: ...


def _bind_pdu(config: ConnectorConfig, kind: str) -> BindRequest:
    classes: dict[str, type[BindRequest]] = {
        "transmitter": BindTransmitter, "receiver": BindReceiver, "transceiver": BindTransceiver,
    }
    return classes[kind](system_id=config.system_id, password=config.password,
                         system_type=config.system_type)


def _ssl_context(config: ConnectorConfig) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    context = ssl.create_default_context()
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Connector(ClientHandler):
    """See the module docstring. Built by the dispatcher; ``start`` / ``stop``."""

    def __init__(
        self,
        config: ConnectorConfig,
        owner: ConnectorOwner,
        metrics: Metrics,
        settings: DispatchSettings,
        clock: Callable[[], float],
        *,
        slots: SlotGate | None = None,
    ) -> None:
        if slots is not None and config.bind_type != "transceiver":
            raise ValueError(
                f"connector {config.name!r}: binds shared between nodes must be transceivers"
                f" (bind_type = {config.bind_type!r})")
        self.name = config.name
        self._slots = slots
        self._held: set[int] = set()  # with slots: the binds this node may run
        self._binding: dict[int, asyncio.Task[None]] = {}  # a slot's latest start or stop
        self.config = config
        self.upstream = Upstream(config.smsc_default, config.concatenation,
                                 config.source_ton, config.source_npi)
        self._owner = owner
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._outcomes = {o: metrics.submitted.labels(config.name, o.value) for o in Outcome}
        self._timeouts = metrics.submitted.labels(config.name, "no_response")
        self._bind_gauge = metrics.binds.labels("upstream", config.name)
        # Queue bound: about queue_seconds of TPS, never less than two windows a bind;
        # without a TPS limit the windows set the pace: UNLIMITED_QUEUE_WINDOWS of them.
        tps_queue = (UNLIMITED_QUEUE_WINDOWS * config.binds * config.window
                     if math.isinf(config.tps) else ceil(config.tps * settings.queue_seconds))
        self.capacity = max(tps_queue, 2 * config.binds * config.window)
        self.clients: list[SmppClient] = []
        self.senders: list[SmppClient] = []  # the binds that may submit
        kinds = [config.bind_type] * config.binds
        if config.bind_type == "transmitter":
            kinds.append("receiver")  # receipts and MO need a receiving bind
        context = _ssl_context(config)
        session = SessionConfig(
            role=Role.ESME, window=config.window, response_timeout=config.response_timeout,
            enquire_link_interval=config.enquire_link_interval,
            inactivity_timeout=4 * config.enquire_link_interval,
        )
        for n, kind in enumerate(kinds):
            client = SmppClient(
                ClientSettings(
                    config.host, config.port, _bind_pdu(config, kind), ssl=context,
                    server_hostname=config.host if context else None, session=session,
                    reconnect_min=config.reconnect_min, reconnect_max=config.reconnect_max,
                    name=f"{config.name}-{n}",
                ),
                self,
            )
            self.clients.append(client)
            if kind != "receiver":
                self.senders.append(client)
        # One queue per priority class (index: Priority value), and the number of
        # delayed retries of each, so a class's wait counts only what goes before it.
        self._ready: list[deque[Item]] = [deque() for _ in Priority]
        self._head: deque[Item] = self._ready[0]  # the queue _front found its item in
        self._delayed: list[tuple[float, int, Item]] = []
        self._delayed_of = [0] * len(Priority)
        self._delay_seq = 0
        self.inflight = 0
        # Parts sent whose outcome is not yet durable: in flight, or accepted
        # upstream with the segment record not yet committed. A SIGKILL resends
        # exactly these, so keeping them under binds x window bounds the
        # duplicates a crash can cause (the promise), whatever the rate.
        self.uncommitted = 0
        self.uncommitted_limit = (0 if slots is not None else len(self.senders)) * config.window
        self.held_back = False  # the store is out of reach: submit nothing (hold)
        self._bound = 0
        self._bucket: TokenBucket | None = None
        self._pause = Backoff(settings.throttle_pause_initial, settings.throttle_pause_max)
        self._paused_until = 0.0
        self.down_since = 0.0
        self._reference = random.randrange(0x10000)
        self._waiter: asyncio.Future[None] | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._closing = False
        self._drained: asyncio.Event | None = None

    # ------------------------------------------------------------------ control

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._bucket = TokenBucket(self._rate(), loop.time())
        self.down_since = loop.time()
        for n, client in enumerate(self.clients):
            if self._slots is None or n in self._held:
                await client.start()
        self._pump_task = asyncio.create_task(self._pump(), name=f"dispatch-{self.name}")

    async def stop_sending(self, timeout: float) -> None:
        """Stop the pump; wait (bounded) for the answers to parts in flight."""
        self._closing = True
        self._poke()
        if self._pump_task is not None:
            await self._pump_task
            self._pump_task = None
        if self.inflight:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except TimeoutError:
                log.warning("%s: %d submits unanswered at stop", self.name, self.inflight)

    async def close(self, timeout: float) -> None:
        """Unbind every session (bounded) and stop reconnecting."""
        await asyncio.gather(*self._binding.values(), return_exceptions=True)
        await asyncio.gather(*(c.stop(timeout) for c in self.clients), return_exceptions=True)
        self._bind_gauge.set(0)

    # -------------------------------------------------------------------- slots

    def _rate(self) -> float:
        """The token bucket's rate: ``tps``, or this node's share of it (slots)."""
        if self._slots is None:
            return self.config.tps
        # No slot: no bind may send, and the bucket still needs a positive rate.
        return self._slots.rate(self.name, self.config.tps) or self.config.tps / self.config.binds

    def _slots_changed(self) -> None:
        self.uncommitted_limit = len(self._held) * self.config.window
        if self._bucket is not None:
            self._bucket.set_rate(self._rate(), asyncio.get_running_loop().time())
        self._poke()

    def gain(self, slot: int) -> None:
        """This node now holds ``slot``: bind on it (call from the loop)."""
        if self._slots is None or not 0 <= slot < len(self.senders) or slot in self._held:
            return
        self._held.add(slot)
        if self._pump_task is not None and not self._closing:  # started: bind now
            self._then(slot, self.senders[slot].start)
        self._slots_changed()

    def lose(self, slot: int) -> asyncio.Task[None] | None:
        """This node no longer holds ``slot``: stop sending on it at once, unbind;
        the unbind's task (the keeper hands the slot back once it is done).

        The unbind waits for the upstream's answer ``unbind_within`` seconds at
        most (the gate's), not ``stop_timeout``: an upstream answers an unbind
        after the submits it still owes, and the slot may be another node's
        soon (docs/leases.md). Then the connection is cut; parts whose answer
        had not come back end as transient failures (their outcome unknown),
        retried like those of any lost session."""
        if slot not in self._held or self._slots is None:
            return None
        self._held.discard(slot)
        unbinding = self._then(slot, partial(self.senders[slot].stop,
                                             self._slots.unbind_within(self.name, slot)))
        self._slots_changed()
        return unbinding

    def _then(self, slot: int, step: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Run ``step`` on slot's bind after its previous start or stop (an unbind
        still under way when the slot comes back must end before it binds again)."""
        before = self._binding.get(slot)

        async def run() -> None:
            if before is not None:
                with contextlib.suppress(Exception):
                    await before
            await step()

        task = asyncio.create_task(run(), name=f"{self.name}-slot-{slot}")
        self._binding[slot] = task
        task.add_done_callback(
            lambda t: self._binding.pop(slot) if self._binding.get(slot) is t else None)
        return task

    # ------------------------------------------------------------------- state

    @property
    def policy(self) -> IdPolicy:
        """How this upstream's receipt ids relate to its submit_sm_resp ids."""
        return self.config.receipt_id_policy

    @property
    def smsc_default(self) -> SmscDefault:
        """What data_coding 0 means on this upstream."""
        return self.config.smsc_default

    @property
    def bound(self) -> int:
        """Bound sessions that may submit."""
        return self._bound

    def accepting(self, now: float) -> bool:
        """Whether to give this connector work: bound, or down for less than the grace."""
        return self._bound > 0 or now - self.down_since < self._settings.down_grace

    @property
    def load(self) -> int:
        return sum(map(len, self._ready)) + len(self._delayed) + self.inflight

    @property
    def oldest_queued(self) -> float | None:
        """When the oldest message with a part waiting here (queued or awaiting a
        retry, not in flight) was accepted; ``None`` when none waits. Read by
        the queue gauges when collected (the console's overview), never by the
        pump: a pass over the queue, bounded by its capacity."""
        waiting = [item for ready in self._ready for item in ready]
        waiting += [item for _, _, item in self._delayed]
        return min((job.message.accepted_at for job, gen, _ in waiting
                    if job.gen == gen and job.failing is None), default=None)  # fmt: skip

    def load_upto(self, priority: int) -> int:
        """What a new message of class ``priority`` would wait behind: the parts
        queued (or waiting a retry) of its class and the more urgent ones, and
        those in flight."""
        return (sum(len(self._ready[c]) + self._delayed_of[c] for c in range(priority + 1))
                + self.inflight)

    def room_for(self, priority: int) -> int:
        return self.capacity - self.load_upto(priority)

    def room(self) -> int:
        return self.capacity - self.load

    def next_reference(self) -> int:
        """A concatenation reference (16 bits; UDH8 uses its low octet)."""
        self._reference = (self._reference + 1) & 0xFFFF
        return self._reference

    def enqueue(self, job: Job) -> None:
        gen = job.gen
        self._ready[job.message.priority].extend((job, gen, i) for i in range(len(job.pdus)))
        self._poke()

    def retry_later(self, job: Job, gen: int, index: int, delay: float) -> None:
        loop_now = asyncio.get_running_loop().time()
        self._delay_seq += 1
        self._delayed_of[job.message.priority] += 1
        heapq.heappush(self._delayed, (loop_now + delay, self._delay_seq, (job, gen, index)))
        self._poke()

    # ------------------------------------------------------------- ClientHandler

    def on_bound(self, client: SmppClient, conn: SmppConnection) -> None:
        if client in self.senders:
            self._bound += 1
            self._bind_gauge.set(self._bound)
            log.info("%s: bound (%d of %d)", client.settings.name, self._bound, len(self.senders))
        self._poke()

    def on_unbound(self, client: SmppClient, conn: SmppConnection) -> None:
        if client in self.senders and self._bound > 0:
            self._bound -= 1
            self._bind_gauge.set(self._bound)
            if self._bound == 0:
                self.down_since = asyncio.get_running_loop().time()
            log.info("%s: unbound (%d of %d left)", client.settings.name, self._bound,
                     len(self.senders))
        self._poke()

    def on_request(self, client: SmppClient, conn: SmppConnection, request: Request) -> None:
        self._owner.on_upstream_request(self, conn, request)

    # -------------------------------------------------------------------- pump

    def _poke(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _sleep(self, until: float | None) -> None:
        """Wait until ``until`` (loop time) or a poke, whichever comes first."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        handle = None if until is None else loop.call_at(until, self._poke)
        try:
            await waiter
        finally:
            self._waiter = None
            if handle is not None:
                handle.cancel()

    def _front(self, now: float) -> Item | None:
        """The next live entry of the most urgent class that has one, with due
        retries moved to the front of their class; stale ones dropped. Its
        queue is left in ``_head`` (the pump pops from it)."""
        delayed = self._delayed
        if delayed and delayed[0][0] <= now:
            due: list[Item] = []
            while delayed and delayed[0][0] <= now:  # bounded by the heap's size
                due.append(heapq.heappop(delayed)[2])
            for item in reversed(due):  # retries first, in their own order
                cls = item[0].message.priority
                self._delayed_of[cls] -= 1
                self._ready[cls].appendleft(item)
        for ready in self._ready:
            while ready:  # bounded by the queue's size
                item = ready[0]
                job = item[0]
                if job.gen == item[1] and job.failing is None:
                    self._head = ready
                    return item
                ready.popleft()
        return None

    def _pick(self) -> SmppClient | None:
        best, room = None, 0
        slots = self._slots
        for n, client in enumerate(self.senders):
            if slots is not None and (n not in self._held or not slots.may_send(self.name, n)):
                continue
            r = client.window_room
            if r > room:
                best, room = client, r
        return best

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        bucket = self._bucket
        assert bucket is not None
        sent = 0
        while not self._closing:
            now = loop.time()
            item = self._front(now)
            if item is None:
                self._maybe_room()
                await self._sleep(self._delayed[0][0] if self._delayed else None)
                continue
            if now < self._paused_until:
                await self._sleep(self._paused_until)
                continue
            if self.uncommitted >= self.uncommitted_limit or self.held_back:
                await self._sleep(None)  # a commit (or a failed answer, or the store back)
                continue
            client = self._pick()
            if client is None:
                if self._bound == 0:
                    give_up = self.down_since + self._settings.down_grace
                    if now >= give_up:
                        self._hand_on()
                        continue
                    await self._sleep(give_up)
                else:
                    await self._sleep(None)  # a response frees window room
                continue
            wait = bucket.take(now)
            if wait > 0:
                await self._sleep(now + wait)
                continue
            self._head.popleft()
            self._send(client, item)
            sent += 1
            if sent >= SENDS_PER_PASS:
                sent = 0
                await asyncio.sleep(0)

    def _send(self, client: SmppClient, item: Item) -> None:
        job, gen, index = item
        now = self._clock()
        if job.lease_until <= now:  # not ours any more: another node may send it
            self._owner.lease_lapsed(self, job, gen)
            return
        if index == 0 and job.message.expires_at <= now:
            self._owner.part_expired(self, job, gen)
            return
        conn = client.conn
        try:
            assert conn is not None
            conn.send_then(job.pdus[index], partial(self._answered, job, gen, index))
        except (SmppNetError, SmppError, AssertionError) as exc:
            # The session closed or its window filled between _pick and now:
            # nothing was sent; the entry goes back to the front.
            log.debug("%s: send refused (%s)", self.name, exc)
            self._ready[job.message.priority].appendleft(item)
            return
        job.inflight += 1
        self.inflight += 1
        self.uncommitted += 1
        if not job.sent:
            job.sent = True
            self._metrics.latency.observe(max(0.0, self._clock() - job.message.accepted_at))

    def _answered(self, job: Job, gen: int, index: int,
                  answer: Response | SmppNetError) -> None:  # fmt: skip
        self.inflight -= 1
        job.inflight -= 1
        status: int | None = None
        message_id = ""
        if isinstance(answer, SmppNetError):
            outcome = Outcome.TRANSIENT  # timeout or lost session: the outcome is unknown
            self._timeouts.inc()
        else:
            status = answer.command_status
            outcome = classify(status)
            message_id = getattr(answer, "message_id", "")
        self._outcomes[outcome].inc()
        if outcome is not Outcome.OK:
            self.uncommitted -= 1  # nothing will be recorded for this part
            self._owner.submit_failed(self, job, index, _answer(status, answer))
        if outcome is Outcome.THROTTLED:
            now = asyncio.get_running_loop().time()
            self._paused_until = max(self._paused_until, now + self._pause.next())
            if job.gen == gen and job.failing is None:
                job.throttles += 1
                s = self._settings
                delay = Backoff.delay(job.throttles, s.throttle_retry_initial,
                                      s.throttle_retry_max)
                self.retry_later(job, gen, index, delay)
            else:
                self._owner.part_done(self, job, gen, index, outcome, status, message_id)
        else:
            if outcome is Outcome.OK:
                self._pause.reset()
            self._owner.part_done(self, job, gen, index, outcome, status, message_id)
        if self._drained is not None and self.inflight == 0:
            self._drained.set()
        if self.load < self.capacity // 2:
            self._owner.room()  # ask for more before the queue runs dry
        self._poke()

    async def query(self, pdu: QuerySm) -> Response | None:
        """Ask the upstream ``pdu`` on a bound session once the shared bucket has a
        token (queries count against ``tps`` like submits; the caller keeps them
        to a share of it). Returns the answer, or None when there was none: no
        bound session, no answer within ``response_timeout``, the session lost."""
        loop = asyncio.get_running_loop()
        bucket = self._bucket
        assert bucket is not None
        while not self._closing:  # each pass waits for the next token: bounded by the rate
            wait = bucket.take(loop.time())
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        client = self._pick() or next((c for c in self.senders if c.bound), None)
        if self._closing or client is None or client.conn is None:
            return None
        try:
            # The window may be full of submits: waiting for room counts as well.
            async with asyncio.timeout(2 * self.config.response_timeout):
                return await client.conn.request(pdu)
        except (SmppNetError, SmppError, TimeoutError) as exc:
            log.debug("%s: query_sm unanswered (%s)", self.name, exc)
            return None

    def hold(self, hold: bool) -> None:
        """Stop submitting (``hold``: the store is out of reach, so nothing sent
        now could be recorded) or resume. Parts in flight are answered as usual."""
        self.held_back = hold
        self._poke()

    def committed(self, count: int) -> None:
        """``count`` accepted parts are recorded (or given up): room to send again."""
        self.uncommitted -= count
        self._poke()

    def _maybe_room(self) -> None:
        if self.load < self.capacity // 2:
            self._owner.room()

    def _hand_on(self) -> None:
        """No bind for down_grace: give every queued job back to the dispatcher."""
        jobs: dict[int, Job] = {}
        for ready in self._ready:
            for job, gen, _ in ready:
                if job.gen == gen and job.failing is None:
                    jobs[id(job)] = job
            ready.clear()
        for _, _, (job, gen, _) in self._delayed:
            if job.gen == gen and job.failing is None:
                jobs[id(job)] = job
        self._delayed.clear()
        self._delayed_of = [0] * len(Priority)
        if jobs:
            log.warning("%s: no bound session for %.1f s; %d messages handed on", self.name,
                        self._settings.down_grace, len(jobs))
            for job in jobs.values():
                job.failing = Failing.DOWN
            self._owner.connector_down(self, list(jobs.values()))


def _answer(status: int | None, answer: Response | SmppNetError) -> str:
    """What a failed submit got, for its message's timeline."""
    if status is not None:
        return status_name(status)
    if isinstance(answer, ResponseTimeout):
        return "timeout"
    if isinstance(answer, ConnectionClosed):
        return "connection lost"
    return type(answer).__name__
