"""``Simulator``: an SMSC for tests, demos and benchmarks, on ``herald.net.SmppServer``.

Theory of operation
===================

Binds: any system_id and password, or exactly the configured pair (checked in
constant time). Transmitter, receiver and transceiver binds are all accepted.

Submits (submit_sm, data_sm, submit_multi), in order:

1. the TPS limit: one token bucket per system_id (``bucket.py``); an empty
   bucket answers ESME_RTHROTTLED;
2. the destination's behaviour (``scheme.py``): refuse with a status, swallow,
   or accept;
3. an accepted message gets an id (``ids.py``), its final outcome (the
   behaviour's, or a seeded draw from the outcome mix) and its receipt time
   (the behaviour's delay, or a seeded draw from the configured range);
4. one record line (``record.py``), whatever the answer.

Answers are not written from inside ``on_request``: they are collected and
written together once per loop turn (``_flush_answers``). That keeps the work
per PDU small and lets a receipt be written *before* its submit_sm_resp
(the RECEIPT_FIRST behaviour) simply by sending it at once.

Receipts: one heap (``schedule.py``) holds every pending receipt, and one loop
timer is armed at its earliest due time (within ``TICK``), never one timer per
message. When due, the receipt deliver_sm (``outcomes.py``) joins its
system_id's outbox; the outbox is pumped into the receiver and transceiver
binds of that system_id, round-robin, as far as each bind's window allows
(``SimConfig.window``). Without such a bind the receipts wait in the outbox
(at most ``max_held_receipts`` for all system_ids together; beyond that new
ones are dropped and counted) and go out when one binds. A deliver_sm that is
not acknowledged (the connection closed, no answer in time) goes back to the
front of the outbox; one refused with ESME_RTHROTTLED / ESME_RMSGQFUL /
ESME_RX_T_APPN is retried ``RETRY_DELAY`` later; any other refusal drops it.
Each gives up after ``MAX_DELIVERY_ATTEMPTS``.

query_sm answers from the state of the last ``max_tracked_messages`` accepted
messages (ENROUTE until the receipt time, then the outcome). With
``drop_receipts`` that share of receipts is lost (a separate seeded stream
decides which): the outcome still happens and query_sm reports it, but no
deliver_sm is ever sent, as when an SMSC or a link loses receipts.

Reproducibility: with the same seed, the k-th accepted message gets the same
id, outcome and delay in every run. With several binds submitting at once,
which message is k-th depends on arrival order.

Nothing here survives a stop: pending receipts are lost, as with a real SMSC
restarting without its store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import math
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Final, NamedTuple

from herald.net import (
    ServerConnection,
    ServerHandler,
    ServerSettings,
    SmppNetError,
    SmppServer,
)
from herald.sim.bucket import TokenBucket
from herald.sim.config import SimConfig
from herald.sim.ids import IdGenerator
from herald.sim.outcomes import Accepted, Outcome, mo_pdu, receipt_pdu, snippet
from herald.sim.record import FLUSH_INTERVAL as RECORD_FLUSH_INTERVAL
from herald.sim.record import RecordWriter, SubmitRecord, content_of
from herald.sim.schedule import Schedule
from herald.sim.scheme import Behaviour, Plan, plan_for
from herald.smpp.constants import (
    RECEIPT_REQUEST_MASK,
    CommandStatus,
    MessageState,
    ReceiptRequest,
)
from herald.smpp.errors import InvalidTlvValue, SmppError
from herald.smpp.events import CloseReason
from herald.smpp.pdus import (
    BindRequest,
    BindResponse,
    CancelSm,
    DataSm,
    DeliverSm,
    DistributionList,
    QuerySm,
    ReplaceSm,
    Request,
    Response,
    SmeAddress,
    SubmitMulti,
    SubmitSm,
    UnsuccessSme,
)
from herald.smpp.session import SessionConfig
from herald.smpp.states import Role, State
from herald.smpp.tlv import MESSAGE_PAYLOAD

__all__ = ["MAX_DELIVERY_ATTEMPTS", "RETRY_DELAY", "TICK", "SimCounters", "Simulator"]

log = logging.getLogger("herald.sim")

S = CommandStatus
B = Behaviour

#: Receipt timers fire up to this late, so that receipts due close together
#: share one wake-up (seconds).
TICK: Final = 0.005
#: Receipts handed to the outboxes per timer wake-up; the rest follow on the
#: next turn, so a burst of due receipts cannot hold up submits.
MAX_FIRE_PER_TURN: Final = 5000
#: A deliver_sm refused with a transient status is retried after this (seconds).
RETRY_DELAY: Final = 1.0
#: Sends of one deliver_sm before it is dropped (and counted).
MAX_DELIVERY_ATTEMPTS: Final = 10
#: Destinations of ACCEPT_ONCE remembered; the oldest is forgotten first.
MAX_ONCE_DESTINATIONS: Final = 100_000
#: In-memory records kept with ``keep_records`` (a test's volume, not a soak's);
#: later submits still go to the record file.
MAX_KEPT_RECORDS: Final = 1_000_000
#: Log a dropped deliver_sm once, then every this many, not per message.
DROP_LOG_EVERY: Final = 1000

# The behaviours that refuse a submit, and the status each answers.
_REFUSALS: Final = {
    B.SUBMIT_FAIL: S.ESME_RSUBMITFAIL,
    B.THROTTLED: S.ESME_RTHROTTLED,
    B.QUEUE_FULL: S.ESME_RMSGQFUL,
    B.INVALID_DESTINATION: S.ESME_RINVDSTADR,
}
# Behaviours whose outcome is fixed (the others draw from the mix).
_FIXED: Final = {
    B.DELAY: Outcome.DELIVERED,
    B.UNDELIVERED: Outcome.UNDELIVERED,
    B.EXPIRED: Outcome.EXPIRED,
    B.MO_ECHO: Outcome.DELIVERED,
    B.RECEIPT_FIRST: Outcome.DELIVERED,
    B.OUT_OF_ORDER: Outcome.DELIVERED,
    B.ACCEPT_ONCE: Outcome.DELIVERED,
}
# SMPP 3.4 §5.1.3: statuses an ESME answers a deliver_sm with to mean "later".
_RETRY_LATER: Final = frozenset({S.ESME_RTHROTTLED, S.ESME_RMSGQFUL, S.ESME_RX_T_APPN})
_RECEIVING: Final = frozenset({State.BOUND_RX, State.BOUND_TRX})
_ENROUTE: Final = int(MessageState.ENROUTE)

Submission = SubmitSm | DataSm | SubmitMulti


@dataclass(slots=True)
class SimCounters:
    """What the simulator did since it started (monotonic counts)."""

    binds: int = 0
    binds_refused: int = 0
    #: submit_sm + data_sm + submit_multi PDUs received from bound ESMEs
    submits: int = 0
    #: messages accepted (one per submit_multi destination)
    accepted: int = 0
    #: answered ESME_RTHROTTLED by the TPS limit (not by the 99904 behaviour)
    throttled: int = 0
    #: answered with any error status (throttled ones included)
    refused: int = 0
    #: NO_RESPONSE submits, never answered
    swallowed: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    #: receipts lost on purpose (``drop_receipts``): never sent
    receipts_lost: int = 0
    mo_sent: int = 0
    mo_acked: int = 0
    #: deliver_sm sent again (no answer, connection lost, or "try later")
    redeliveries: int = 0
    #: deliver_sm given up: outbox full, refused for good, or out of attempts
    dropped: int = 0
    queries: int = 0
    #: command_status -> how many submits were answered with it
    statuses: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class _Fire(NamedTuple):
    """A scheduled receipt time: what to send then."""

    message: Accepted
    outcome: Outcome | None  # the final state; None leaves it ENROUTE
    receipt: bool
    enroute_after: bool = False
    mo_echo: bool = False


class _Delivery(NamedTuple):
    """A deliver_sm on its way to a receiver bind."""

    system_id: str
    pdu: DeliverSm
    is_receipt: bool
    attempts: int = 0


def _final_date(wall: float) -> str:
    return _final_second(int(wall))


@functools.lru_cache(maxsize=64)
def _final_second(second: int) -> str:
    # SMPP 3.4 §7.1.1 absolute time YYMMDDhhmmsstnnp, in UTC (nn = 00, p = +)
    return datetime.fromtimestamp(second, UTC).strftime("%y%m%d%H%M%S") + "000+"


class Simulator(ServerHandler):
    """An SMSC simulator; see the module docstring. ``await start()``, read
    ``port``, ``await stop()`` (or ``async with``)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config = config or SimConfig()
        self.seed = (config.seed if config.seed is not None
                     else random.SystemRandom().randrange(1 << 62))
        # separate streams, so the id form chosen never shifts outcomes/delays
        self._rng = random.Random(f"herald-sim:{self.seed}:outcomes")
        self._ids = IdGenerator(config.id_style, config.receipt_id,
                                random.Random(f"herald-sim:{self.seed}:ids"))
        self._drops = random.Random(f"herald-sim:{self.seed}:drops")
        self.counters = SimCounters()
        #: every record, when ``config.keep_records`` (else stays empty; at
        #: most MAX_KEPT_RECORDS)
        self.records: list[SubmitRecord] = []
        self.server = SmppServer(self, ServerSettings(
            host=config.host, port=config.port,
            session=SessionConfig(role=Role.SMSC, window=config.window),
            # A stand-in operator: its clients all come from one address, and
            # its only connection limit is the one configured.
            max_connections=config.max_connections, max_per_address=config.max_connections,
            max_unbound=config.max_connections,
            max_unbound_per_address=config.max_connections,
        ))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._receivers: dict[str, list[ServerConnection]] = {}
        self._next_receiver: dict[str, int] = {}
        self._outbox: dict[str, deque[_Delivery]] = {}
        self._held = 0
        self._schedule: Schedule[_Fire | _Delivery] = Schedule()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._answers: list[tuple[ServerConnection, Response]] = []
        self._answering = False
        self._buckets: dict[str, TokenBucket] = {}
        self._states: dict[str, tuple[int, str, int]] = {}
        self._state_order: deque[str] = deque()
        self._once: dict[str, None] = {}
        self._writer: RecordWriter | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        low, high = config.receipt_delay
        self._delay_low, self._delay_span = low, high - low
        self._mix = config.outcomes
        self._recording = config.record is not None or config.keep_records

    # ---------------------------------------------------------------- control

    @property
    def port(self) -> int:
        """The port listened on (the one chosen when configured with 0)."""
        return self.server.port

    async def start(self) -> None:
        """Listen. Raises OSError when the address is taken, and OSError from
        opening the record file."""
        self._loop = asyncio.get_running_loop()
        if self.config.record is not None:
            self._writer = RecordWriter(self.config.record, self.config.record_content)
            self._flush_timer = self._loop.call_later(RECORD_FLUSH_INTERVAL, self._flush_record)
        try:
            await self.server.start()
        except BaseException:
            self._close_record()
            raise
        log.info("herald sim listening on %s:%d (seed %d)", self.config.host, self.port,
                 self.seed)

    async def stop(self, timeout: float = 5.0) -> None:
        """Answer what is owed, unbind every session (bounded by ``timeout``),
        stop listening, flush and close the record. Pending receipts are lost."""
        if self._answers:
            self._flush_answers()
        self._stopped = True  # no more receipt timers (retries scheduled while closing)
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        await self.server.stop(timeout)
        self._close_record()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------- introspection

    @property
    def scheduled(self) -> int:
        """Receipt times (and retries) waiting in the schedule."""
        return len(self._schedule)

    def held(self, system_id: str | None = None) -> int:
        """deliver_sm waiting for a receiver bind (of ``system_id``, or all)."""
        if system_id is None:
            return self._held
        queue = self._outbox.get(system_id)
        return len(queue) if queue else 0

    def receivers(self, system_id: str) -> int:
        """Receiver and transceiver binds of ``system_id`` open now."""
        return len(self._receivers.get(system_id, ()))

    def message_state(self, message_id: str) -> MessageState | None:
        """What query_sm would answer for ``message_id`` (None: unknown)."""
        entry = self._states.get(message_id)
        return None if entry is None else MessageState(entry[0])

    # ------------------------------------------------------ ServerHandler API

    async def authenticate(self, conn: ServerConnection, bind: BindRequest) -> BindResponse:
        config = self.config
        if config.system_id is not None and config.password is not None:
            if bind.system_id != config.system_id:
                self.counters.binds_refused += 1
                return bind.response(S.ESME_RINVSYSID)
            if not hmac.compare_digest(bind.password.encode("latin-1"),
                                       config.password.encode("latin-1")):
                self.counters.binds_refused += 1
                return bind.response(S.ESME_RINVPASWD)
        return bind.response(system_id=config.server_system_id)

    def on_bound(self, conn: ServerConnection) -> None:
        self.counters.binds += 1
        system_id = conn.system_id or ""
        log.info("%s: bound %s as %s", conn.name, system_id, conn.state.name)
        if conn.state in _RECEIVING:
            self._receivers.setdefault(system_id, []).append(conn)
            self._pump(system_id)

    def on_closed(self, conn: ServerConnection, reason: CloseReason) -> None:
        receivers = self._receivers.get(conn.system_id or "")
        if receivers is not None and conn in receivers:
            receivers.remove(conn)

    def on_request(self, conn: ServerConnection, request: Request) -> None:
        match request:
            case SubmitSm() | DataSm():
                self._on_submit(conn, request)
            case SubmitMulti():
                self._on_multi(conn, request)
            case QuerySm():
                self._answer(conn, self._query(request))
            case CancelSm():
                self._answer(conn, request.response(S.ESME_RCANCELFAIL))
            case ReplaceSm():
                self._answer(conn, request.response(S.ESME_RREPLACEFAIL))
            case _:
                self._answer(conn, request.response(S.ESME_RINVCMDID))

    # ----------------------------------------------------------------- submits

    def _on_submit(self, conn: ServerConnection, request: SubmitSm | DataSm) -> None:
        counters = self.counters
        counters.submits += 1
        loop = self._loop
        assert loop is not None
        now = loop.time()
        wall = time.time()
        system_id = conn.system_id or ""
        destination = request.destination_addr
        body = request.short_message if isinstance(request, SubmitSm) else b""
        if not body and request.tlvs:
            body = self._payload(request)
        status: int | None = self._throttle(system_id, now)
        plan = plan_for(destination)
        behaviour = plan.behaviour
        if status is None:
            # SMPP 3.4 §5.2.9: a destination address is required
            status = (self._refusal(behaviour, destination) if destination
                      else S.ESME_RINVDSTADR)
        if status is not None:
            self._refuse(conn, request, status, wall, system_id, destination, body)
            return
        if behaviour is B.NO_RESPONSE:
            counters.swallowed += 1
            if self._recording:
                self._record(wall, system_id, request, destination, body, "", None)
            return
        message_id, receipt_id = self._ids.next()
        counters.accepted += 1
        response = request.response(message_id=message_id)
        if self._recording:
            self._record(wall, system_id, request, destination, body, message_id, 0)
        self._accept(system_id, request, request.dest_addr_ton, request.dest_addr_npi,
                     destination, body, plan, message_id, receipt_id, now, wall)
        self._count_status(S.ESME_ROK)
        self._answer(conn, response)

    def _on_multi(self, conn: ServerConnection, request: SubmitMulti) -> None:
        counters = self.counters
        counters.submits += 1
        loop = self._loop
        assert loop is not None
        now = loop.time()
        wall = time.time()
        system_id = conn.system_id or ""
        body = request.short_message or self._payload(request)
        status = self._throttle(system_id, now)
        if status is None and any(isinstance(d, DistributionList)
                                  for d in request.dest_addresses):
            status = S.ESME_RCNTSUBDL  # the simulator keeps no distribution lists
        if status is None and not request.dest_addresses:
            status = S.ESME_RINVNUMDESTS  # SMPP 3.4 §4.5.1: at least one destination
        if status is not None:
            self._answer(conn, request.response(status))
            self._count_status(status)
            for dest in request.dest_addresses:
                name = dest.address if isinstance(dest, SmeAddress) else dest.name
                if self._recording:
                    self._record(wall, system_id, request, name, body, "", status)
            return
        message_id, receipt_id = self._ids.next()
        failed: list[UnsuccessSme] = []
        for dest in request.dest_addresses:
            assert isinstance(dest, SmeAddress)
            plan = plan_for(dest.address)
            refusal = (S.ESME_RINVDSTADR if not dest.address
                       else self._refusal(plan.behaviour, dest.address))
            if refusal is not None:
                failed.append(UnsuccessSme(dest.ton, dest.npi, dest.address, refusal))
                if self._recording:
                    self._record(wall, system_id, request, dest.address, body, "", refusal)
                continue
            if plan.behaviour in (B.NO_RESPONSE, B.RECEIPT_FIRST):
                plan = Plan(B.NORMAL)  # per-PDU behaviours: not per destination
            counters.accepted += 1
            if self._recording:
                self._record(wall, system_id, request, dest.address, body, message_id, 0)
            self._accept(system_id, request, dest.ton, dest.npi, dest.address, body, plan,
                         message_id, receipt_id, now, wall)
        self._count_status(S.ESME_ROK)
        self._answer(conn, request.response(message_id=message_id,
                                            unsuccess_smes=tuple(failed)))

    def _accept(self, system_id: str, request: Submission, dest_ton: int, dest_npi: int,
                destination: str, body: bytes, plan: Plan, message_id: str,
                receipt_id: str, now: float, wall: float) -> None:
        """Track an accepted message and schedule its receipt / MO echo."""
        behaviour = plan.behaviour
        u = self._rng.random()  # drawn for every message: the stream stays aligned
        outcome: Outcome | None = _FIXED.get(behaviour)
        if outcome is None and behaviour is not B.NO_RECEIPT:
            outcome = self._mix.pick(u)
        # SMPP 3.4 §5.2.17: registered_delivery bits 1-0 ask for a receipt always
        # (01) or on failure only (10)
        asked = request.registered_delivery & RECEIPT_REQUEST_MASK
        receipt = outcome is not None and (
            asked == ReceiptRequest.ALWAYS
            or (asked == ReceiptRequest.ON_FAILURE and outcome is not Outcome.DELIVERED))
        if receipt and self.config.drop_receipts and (
                self._drops.random() < self.config.drop_receipts):
            receipt = False  # lost on the way: the outcome still happens (query_sm sees it)
            self.counters.receipts_lost += 1
        mo_echo = behaviour is B.MO_ECHO
        message = Accepted(
            system_id, message_id, receipt_id,
            request.source_addr_ton, request.source_addr_npi, request.source_addr,
            dest_ton, dest_npi, destination, wall,
            snippet(body, request.data_coding, request.esm_class) if receipt else "",
            request.data_coding, bool(request.esm_class & 0x40), body if mo_echo else b"",
        )
        self._track(message_id, _ENROUTE, "", 0)
        if behaviour is B.RECEIPT_FIRST:
            assert outcome is not None
            self._finish(message, outcome, wall)
            if receipt:
                self._enqueue(_Delivery(system_id, receipt_pdu(message, outcome, wall), True),
                              front=True)
                self._pump(system_id)
            return
        if plan.delay is not None:
            delay = plan.delay
        elif self._delay_span:
            delay = self._delay_low + self._delay_span * self._rng.random()
        else:
            delay = self._delay_low
        if outcome is not None or mo_echo:
            self._at(now + delay, _Fire(message, outcome, receipt,
                                        behaviour is B.OUT_OF_ORDER and receipt, mo_echo))

    def _refusal(self, behaviour: Behaviour, destination: str) -> int | None:
        status = _REFUSALS.get(behaviour)
        if status is None and behaviour is B.ACCEPT_ONCE:
            if destination in self._once:
                return S.ESME_RSUBMITFAIL
            if len(self._once) >= MAX_ONCE_DESTINATIONS:
                del self._once[next(iter(self._once))]
            self._once[destination] = None
        return status

    def _throttle(self, system_id: str, now: float) -> int | None:
        config = self.config
        if config.tps is None:
            return None
        bucket = self._buckets.get(system_id)
        if bucket is None:
            burst = config.burst
            assert burst is not None
            bucket = self._buckets[system_id] = TokenBucket(config.tps, burst, now)
        if bucket.take(now):
            return None
        self.counters.throttled += 1
        return S.ESME_RTHROTTLED

    def _refuse(self, conn: ServerConnection, request: SubmitSm | DataSm, status: int,
                wall: float, system_id: str, destination: str, body: bytes) -> None:
        self._count_status(status)
        if self._recording:
            self._record(wall, system_id, request, destination, body, "", status)
        self._answer(conn, request.response(status))

    def _count_status(self, status: int) -> None:
        statuses = self.counters.statuses
        statuses[status] = statuses.get(status, 0) + 1
        if status:
            self.counters.refused += 1

    @staticmethod
    def _payload(request: Submission) -> bytes:
        try:
            return MESSAGE_PAYLOAD.get(request.tlvs) or b""
        except InvalidTlvValue:
            return b""

    def _record(self, wall: float, system_id: str, request: Submission, destination: str,
                body: bytes, message_id: str, status: int | None) -> None:
        writer = self._writer
        content = content_of(body, writer.content if writer is not None
                             else self.config.record_content)
        record = SubmitRecord(round(wall, 6), system_id, _COMMAND_NAMES[type(request)], destination,
                              request.data_coding, request.esm_class, content, message_id,
                              status)
        if self.config.keep_records and len(self.records) < MAX_KEPT_RECORDS:
            self.records.append(record)
        if writer is not None:
            try:
                writer.write(record)
            except OSError:
                log.exception("record file %s: write failed; recording stops",
                              writer.path)
                self._close_record()

    # ----------------------------------------------------------------- answers

    def _answer(self, conn: ServerConnection, response: Response) -> None:
        self._answers.append((conn, response))
        if not self._answering:
            self._answering = True
            assert self._loop is not None
            self._loop.call_soon(self._flush_answers)

    def _flush_answers(self) -> None:
        self._answering = False
        answers, self._answers = self._answers, []
        for conn, response in answers:
            try:
                conn.respond(response)
            except SmppError as exc:  # e.g. the session ended and began anew
                log.warning("%s: answer not sent: %s", conn.name, exc)

    # ---------------------------------------------------------------- queries

    def _track(self, message_id: str, state: int, final_date: str, error: int) -> None:
        states = self._states
        if message_id not in states:
            order = self._state_order
            order.append(message_id)
            if len(order) > self.config.max_tracked_messages:
                states.pop(order.popleft(), None)
        states[message_id] = (state, final_date, error)

    def _finish(self, message: Accepted, outcome: Outcome, wall: float) -> None:
        if message.message_id in self._states:
            self._states[message.message_id] = (int(outcome.state), _final_date(wall),
                                                outcome.error & 0xFF)

    def _query(self, request: QuerySm) -> Response:
        self.counters.queries += 1
        entry = self._states.get(request.message_id)
        if entry is None:
            return request.response(S.ESME_RINVMSGID)
        state, final_date, error = entry
        return request.response(final_date=final_date, message_state=state, error_code=error)

    # ------------------------------------------------------- receipt schedule

    def _at(self, due: float, item: _Fire | _Delivery) -> None:
        self._schedule.push(due, item)
        if due < self._timer_at - TICK and not self._stopped:
            self._arm(due)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        loop = self._loop
        assert loop is not None
        now = loop.time()
        wall = time.time()
        touched: set[str] = set()
        for item in self._schedule.pop_due(now, slack=TICK, limit=MAX_FIRE_PER_TURN):
            if isinstance(item, _Delivery):
                self._enqueue(item)
                touched.add(item.system_id)
                continue
            message, outcome = item.message, item.outcome
            if outcome is not None:
                self._finish(message, outcome, wall)
                if item.receipt:
                    self._enqueue(_Delivery(message.system_id,
                                            receipt_pdu(message, outcome, wall), True))
                if item.enroute_after:
                    self._enqueue(_Delivery(
                        message.system_id,
                        receipt_pdu(message, outcome, wall, state=MessageState.ENROUTE), True))
            if item.mo_echo:
                self._enqueue(_Delivery(message.system_id, mo_pdu(message), False))
            touched.add(message.system_id)
        for system_id in touched:
            self._pump(system_id)
        nxt = self._schedule.next_due()
        if nxt is not None and not self._stopped:
            self._arm(max(nxt, now))

    # --------------------------------------------------------------- delivery

    def _enqueue(self, delivery: _Delivery, *, front: bool = False) -> None:
        if self._held >= self.config.max_held_receipts:
            self.counters.dropped += 1
            if self.counters.dropped % DROP_LOG_EVERY == 1:
                log.warning("outbox full (%d held): deliver_sm for %s dropped (%d so far)",
                            self._held, delivery.system_id, self.counters.dropped)
            return
        queue = self._outbox.get(delivery.system_id)
        if queue is None:
            queue = self._outbox[delivery.system_id] = deque()
        if front:
            queue.appendleft(delivery)
        else:
            queue.append(delivery)
        self._held += 1

    def _pump(self, system_id: str) -> None:
        """Send what the outbox holds, as far as the receivers' windows allow."""
        queue = self._outbox.get(system_id)
        receivers = self._receivers.get(system_id)
        if not queue or not receivers:
            return
        count = len(receivers)
        start = self._next_receiver.get(system_id, 0) % count
        counters = self.counters
        for i in range(count):  # bounded: each receiver once, each send pops the queue
            conn = receivers[(start + i) % count]
            room = conn.session.window_room
            while room > 0 and queue:
                delivery = queue.popleft()
                try:
                    future = conn.send(delivery.pdu)
                except (SmppError, SmppNetError) as exc:  # unbinding, closing
                    queue.appendleft(delivery)
                    log.debug("%s: deliver_sm not sent now: %s", conn.name, exc)
                    break
                self._held -= 1
                if delivery.is_receipt:
                    counters.receipts_sent += 1
                else:
                    counters.mo_sent += 1
                future.add_done_callback(functools.partial(self._delivered, delivery))
                room -= 1
            if not queue:
                self._next_receiver[system_id] = start + i + 1
                return

    def _delivered(self, delivery: _Delivery, future: asyncio.Future[Response]) -> None:
        counters = self.counters
        status: int | None = None
        if not future.cancelled() and future.exception() is None:
            status = future.result().command_status
        if status == S.ESME_ROK:
            if delivery.is_receipt:
                counters.receipts_acked += 1
            else:
                counters.mo_acked += 1
        elif delivery.attempts + 1 >= MAX_DELIVERY_ATTEMPTS or (
                status is not None and status not in _RETRY_LATER):
            counters.dropped += 1
            log.info("deliver_sm for %s dropped after %d attempt(s), last status %s",
                     delivery.system_id, delivery.attempts + 1, status)
        else:
            counters.redeliveries += 1
            again = delivery._replace(attempts=delivery.attempts + 1)
            if status is None:  # no answer: the connection went, or it timed out
                self._enqueue(again, front=True)
            else:
                assert self._loop is not None
                self._at(self._loop.time() + RETRY_DELAY, again)
        self._pump(delivery.system_id)

    # ----------------------------------------------------------------- record

    def _flush_record(self) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            writer.flush()
        except OSError:
            log.exception("record file %s: flush failed; recording stops", writer.path)
            self._close_record()
            return
        assert self._loop is not None
        self._flush_timer = self._loop.call_later(RECORD_FLUSH_INTERVAL, self._flush_record)

    def _close_record(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()


_COMMAND_NAMES: Final[dict[type[Request], str]] = {
    SubmitSm: "submit_sm", DataSm: "data_sm", SubmitMulti: "submit_multi",
}
