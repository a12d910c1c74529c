"""The webhook sender: POSTs the store's outbox events to customers' URLs.

Theory of operation
-------------------
All state that matters is in the store's outbox; the sender keeps none.

1. **Woken by the commit.** The store calls :meth:`WebhookSender.wake` after
   every commit that wrote webhook events (``Store.watch_outbox``), so an
   event is claimed as soon as it exists; a poll every ``poll_interval``
   seconds only picks up retries as they come due.
2. **Claim.** While a delivery slot is free (``concurrency`` of them), the
   sender claims due ``Channel.WEBHOOK`` events: at most ``free slots x the
   widest batch`` at once, under a lease long enough for every one of them
   to get a slot and its POST (``(timeout + LEASE_MARGIN) x the widest
   batch + the longest batch wait``), so an event is never handed to a second
   sender while this one still holds it. Each claim counts as an attempt. The
   claim reads each event's message (or inbound message) with it; accounts
   are cached for :data:`ACCOUNT_TTL` seconds.
3. **Group.** An event of an account that does not batch is one delivery. An
   account that batches (``webhook_batch_max`` > 1) has its events gathered
   per endpoint (account, URL) until ``webhook_batch_max`` of them are there
   or ``webhook_batch_wait`` seconds passed since the first: then they are one
   delivery, one POST of ``{"events": [...]}``.
4. **Deliver.** Each delivery takes a slot and a task: build the body
   (:mod:`herald.webhooks._payload`), sign it with the account's current
   secret, POST it through :class:`~herald.webhooks._http.HttpClient`, whose
   connections are kept alive and bounded per endpoint (``per_endpoint``).
   2xx completes every event of the delivery (the store forgets them).
5. **Retry.** Anything else (another status, a redirect, never followed, a
   timeout, a refused connection) schedules each event's next attempt by
   :class:`RetryPolicy` (exponential, jittered, capped), or gives it up with
   its error after ``max_attempts`` attempts or when retrying cannot help (a
   bad URL, a blocked address, a deleted message). A batch that fails is
   retried event by event: the next attempts may batch them differently, and
   every event keeps its ``event_id``.

Durability follows: a sender that dies leaves its claimed events leased, and
they become claimable again when the lease runs out; a restarted sender on the
same store picks up every pending event. Delivery is *at least once*: a POST
that reached the receiver just before a crash is sent again, with the same
event ids (receivers de-duplicate on them).

:meth:`stop` lets in-flight POSTs finish for ``grace`` seconds, then cancels
the rest and *returns* their events, and those still waiting for a slot or a
batch, to the store (due again at once).

Server-side request forgery hygiene
-----------------------------------
Only ``http``/``https`` URLs; no redirects followed; no proxy or ``.netrc``
from the environment (a customer URL must never receive the host's proxy
credentials); a total time limit per POST, waiting for a connection included
(one timer that cancels the POST, so a receiver trickling bytes cannot hold a slot); at
most :data:`MAX_ERROR_BODY` octets of a failed answer kept. With
``block_private_addresses`` the host name is resolved by the sender, every
address checked by ``address_filter``, and the connection made to the
checked address (the URL's host stays in ``Host`` and in TLS SNI and
certificate checks), so DNS cannot answer differently between the check and
the connection. Connections are pooled per (scheme, host name, port, checked
address): a connection opened for one host name is never reused for another,
even one that resolves to the same address. A checked resolution is reused
for :data:`PIN_TTL` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import math
import random
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Final, Protocol, cast
from urllib.parse import unquote, urlsplit

from herald.accounts import load_master_key, webhook_secret
from herald.channels import chain_payload
from herald.config import WebhookConfig
from herald.metrics import Metrics
from herald.store import (
    MAX_WEBHOOK_BATCH_WAIT,
    Account,
    Channel,
    ChatChain,
    EventKind,
    FraudDecision,
    InboundMessage,
    Message,
    NotFound,
    OutboxEvent,
    StoreClosed,
    StoreError,
    WebhookAnswer,
)
from herald.webhooks._errors import (
    BlockedAddress,
    DeliveryError,
    DeliveryTimeout,
    InvalidWebhookUrl,
    NonSuccessStatus,
    SubjectGone,
    Unreachable,
)
from herald.webhooks._http import (
    ClientError,
    ConnectFailed,
    HttpClient,
    InvalidRequest,
    Origin,
    ProtocolViolation,
    Response,
)
from herald.webhooks._payload import (
    batch_body,
    fraud_payload,
    inbound_payload,
    status_payload,
    webhook_event_id,
)
from herald.webhooks._policy import (
    IPAddress,
    RetryPolicy,
    WebhookTarget,
    address_allowed,
    check_url,
    endpoint,
    redact_url,
)
from herald.webhooks._signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_header,
)

__all__ = [
    "ACCOUNT_TTL",
    "BATCH_COUNT_HEADER",
    "CLAIM_AHEAD",
    "COMPLETE_DELAY",
    "LEASE_MARGIN",
    "MAX_CLAIM_BATCH",
    "MAX_ERROR_BODY",
    "PIN_TTL",
    "DeliveryResult",
    "Outcome",
    "Resolver",
    "SenderOptions",
    "WebhookSender",
    "WebhookStore",
    "sender_for",
]

log = logging.getLogger("herald.webhooks")

#: Seconds a claim's lease lasts beyond the POST timeout: signing, and writing
#: the outcome through a busy group-commit writer.
LEASE_MARGIN: Final = 30.0
#: Octets of a non-2xx answer kept in the error (the rest is not read): enough
#: to say "maintenance" or show a framework's error page title, no more.
MAX_ERROR_BODY: Final = 256
#: Events claimed in one store transaction, whatever the free slots.
MAX_CLAIM_BATCH: Final = 500
#: Seconds delivered events wait for others to be forgotten with them in one
#: store write (see ``WebhookSender._complete``).
COMPLETE_DELAY: Final = 0.02
#: Deliveries kept posting or ready to post, in ``concurrency``s: the sender
#: claims ahead so that a free slot starts its next POST without a store round trip.
CLAIM_AHEAD: Final = 2
#: Seconds an account's settings (secret version, batching) are reused before
#: they are read again: how long ``herald accounts set`` takes to apply here.
ACCOUNT_TTL: Final = 5.0
#: Accounts cached at most (least recently used forgotten first).
MAX_CACHED_ACCOUNTS: Final = 10_000
#: Seconds a resolved-and-checked host name is reused (``block_private_addresses``):
#: a resolver call per POST would cost more than the POST.
PIN_TTL: Final = 10.0
#: Parsed callback URLs and checked host names kept (least recently used first out).
MAX_CACHED_URLS: Final = 4096
#: Fraud decisions read for claimed events whose bodies were never built (left
#: leased) are dropped beyond this many.
MAX_HELD_DECISIONS: Final = 10_000
#: A batched POST says how many events it carries (the body's ``events`` list).
BATCH_COUNT_HEADER: Final = "Herald-Event-Count"
#: Seconds a returned event (at stop) waits before it is due again: none.
_RETURN_DELAY: Final = 0.0

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
#: Delivered events waiting to be forgotten: their ids, the answers of those that
#: failed before (for their messages' timelines), and a future per caller of the write.
_Completing = tuple[list[int], dict[int, WebhookAnswer], list[asyncio.Future[None]]]


class WebhookStore(Protocol):
    """What the sender needs from a :class:`~herald.store.Store`."""

    async def claim_outbox(
        self, channel: Channel, now: float, lease: float, limit: int, *,
        account_id: int | None = None,
    ) -> tuple[OutboxEvent, ...]: ...  # fmt: skip

    async def complete_outbox(
        self, event_ids: Sequence[int], *, answers: Mapping[int, WebhookAnswer] | None = None
    ) -> None: ...

    async def retry_outbox(
        self, event_id: int, next_attempt_at: float | None, error: str, *,
        answer: WebhookAnswer | None = None,
    ) -> None: ...  # fmt: skip

    async def get_account(self, account_id: int) -> Account: ...

    async def get_fraud_decisions(self, ids: Collection[str]) -> dict[str, FraudDecision]: ...

    async def get_chains(self, chain_ids: Sequence[str]) -> dict[str, ChatChain]: ...


@dataclass(frozen=True, slots=True)
class SenderOptions:
    """Sender settings that are not in ``[webhooks]`` of ``herald.toml`` (yet).

    ``poll_interval``: seconds the sender waits for work before it claims
    again un-woken (the latency of a retry coming due). ``block_private_addresses``:
    refuse destinations that ``address_filter`` rejects (by default, every
    address that is not globally routable). **Off by default**, so that a
    receiver on 127.0.0.1 works in development and tests; turn it on in any
    deployment where customers choose callback URLs. ``stop_grace``: seconds
    :meth:`WebhookSender.stop` lets in-flight POSTs finish (``None``: the POST
    timeout).
    """

    poll_interval: float = 1.0
    block_private_addresses: bool = False
    address_filter: Callable[[IPAddress], bool] = field(default=address_allowed)
    stop_grace: float | None = None

    def __post_init__(self) -> None:
        if not self.poll_interval > 0:
            raise ValueError("poll_interval must be a positive number of seconds")
        if self.stop_grace is not None and not self.stop_grace >= 0:
            raise ValueError("stop_grace must be a non-negative number of seconds")


class Outcome(Enum):
    """What became of one claimed event."""

    DELIVERED = "delivered"  # 2xx: the event is complete
    RETRY = "retry"  # failed; due again at ``next_attempt_at``
    GAVE_UP = "gave_up"  # failed for the last time; kept with its error
    RETURNED = "returned"  # the sender stopped mid-attempt; due again at once
    LEFT_LEASED = "left_leased"  # the store failed; the lease's end makes it due again


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """One event's outcome, handed to ``on_result`` and returned by ``run_once``."""

    outbox_id: int
    event_id: str
    outcome: Outcome
    attempt: int
    at: float
    next_attempt_at: float | None = None
    error: str | None = None


async def _system_resolver(host: str, port: int) -> Sequence[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # sockaddr[0] may carry an IPv6 zone ("fe80::1%eth0"); the zone is no part of the address.
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]


#: Deadlines this close (seconds) count as come when the timer fires (uvloop's
#: clock has millisecond steps).
_DEADLINE_SLACK: Final = 0.001


class _Deadlines:
    """The POSTs' deadlines, under one timer (:meth:`WebhookSender._post`).

    Every POST has the same time limit, so deadlines come due in the order the
    POSTs started: a queue, and one timer armed at its head. A POST that ends
    clears its entry (entries whose POST ended leave from the head, when a
    POST starts or the timer fires), so the queue holds about the POSTs in
    flight. A timer per POST (``call_later`` and ``cancel``) cost 2 µs a POST
    on uvloop (this machine, 2026-12-07); an entry costs a list.

    An entry is ``[deadline, task, expired]``: at the deadline, ``expired``
    is set and the task cancelled, the rule ``asyncio.timeout`` follows.
    """

    __slots__ = ("_loop", "_queue", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: deque[list[Any]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def start(self, timeout: float, task: asyncio.Task[Any]) -> list[Any]:
        """An entry for ``task``, due in ``timeout`` seconds; :meth:`clear` it when
        the POST ends. ``entry[2]`` is true once the deadline cancelled the task."""
        queue = self._queue
        while queue and queue[0][1] is None:
            queue.popleft()
        entry: list[Any] = [self._loop.time() + timeout, task, False]
        if queue and entry[0] < queue[-1][0]:
            # a shorter time limit than the POSTs before (the config changed):
            # keep the queue in deadline order
            self._insert(entry)
        else:
            queue.append(entry)
        if self._timer is None or entry[0] < self._timer_at:
            self._arm(queue[0][0])
        return entry

    @staticmethod
    def clear(entry: list[Any]) -> None:
        entry[1] = None

    def _insert(self, entry: list[Any]) -> None:
        items = sorted([*self._queue, entry], key=lambda e: e[0])
        self._queue.clear()
        self._queue.extend(items)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        queue = self._queue
        # uvloop keeps time in milliseconds: a timer may fire a fraction of one
        # before its deadline, which must not re-arm it for the same instant.
        now = self._loop.time() + _DEADLINE_SLACK
        while queue and (queue[0][1] is None or queue[0][0] <= now):
            entry = queue.popleft()
            task = entry[1]
            if task is not None:
                entry[1] = None
                entry[2] = True
                task.cancel()
        if queue:
            self._arm(queue[0][0])


#: Header names and fields every POST sends, encoded once.
_CONTENT_TYPE: Final = (b"Content-Type", b"application/json")
_IDENTITY: Final = (b"Accept-Encoding", b"identity")  # no decompression of what a receiver sends
_TIMESTAMP_NAME: Final = TIMESTAMP_HEADER.encode()
_SIGNATURE_NAME: Final = SIGNATURE_HEADER.encode()
_EVENT_ID_NAME: Final = EVENT_ID_HEADER.encode()
_BATCH_COUNT_NAME: Final = BATCH_COUNT_HEADER.encode()


def _public_id(event: OutboxEvent) -> str:
    """The event's ``Herald-Event-Id``, or a stand-in for logs if the row is malformed."""
    try:
        return webhook_event_id(event)
    except ValueError:
        return f"outbox-{event.id}"  # status_payload refuses it too: given up as SubjectGone


@dataclass(frozen=True, slots=True)
class _Url:
    """A checked callback URL, parsed once: the pool key without a pinned address,
    the request target, and the ``Authorization`` its user info asks for."""

    target: WebhookTarget
    origin: Origin
    path: bytes
    authorization: bytes | None


def _parse_url(url: str) -> _Url:
    target = check_url(url)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        raw_path = path.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidWebhookUrl("the callback URL's path is not ASCII: percent-encode it") from None
    authorization = None
    if parts.username is not None:  # a common way to protect a receiver: HTTP Basic
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = b"Basic " + base64.b64encode(pair)
    host = target.host
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise InvalidWebhookUrl("the callback URL's host is not a valid name") from None
    return _Url(target, Origin(target.scheme, host, target.port), raw_path, authorization)


@dataclass(slots=True, eq=False)
class _Delivery:
    """Events for one endpoint, to go in one POST (one event unless the account batches)."""

    account: Account
    url: str
    events: list[OutboxEvent]
    endpoint: Origin | None = None  # while it holds a slot: the endpoint's, see _start_ready


@dataclass(slots=True, eq=False)
class _Batch:
    """Events gathered for one batching endpoint, until full or its wait is over."""

    delivery: _Delivery
    timer: asyncio.TimerHandle | None = None


class WebhookSender:
    """Delivers webhook events from a store until stopped. See the module docstring.

    ``clock`` gives epoch seconds (the store's time scale); ``rng`` draws the
    jitter; ``client`` replaces the HTTP client (tests); ``resolver``
    replaces the system resolver when addresses are checked; ``on_result``
    is called with every :class:`DeliveryResult`. Errors never escape
    :meth:`run` except :class:`~herald.store.StoreClosed` (the store was
    closed under it: the service is shutting down or broken).
    """

    def __init__(
        self,
        store: WebhookStore,
        master_key: bytes,
        config: WebhookConfig | None = None,
        *,
        options: SenderOptions | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        client: HttpClient | None = None,
        resolver: Resolver | None = None,
        on_result: Callable[[DeliveryResult], None] | None = None,
    ) -> None:
        self.config = config or WebhookConfig()
        self.options = options or SenderOptions()
        self.policy = RetryPolicy.from_config(self.config)
        self._store = store
        self._master_key = master_key
        self._clock = clock
        self._rng = rng or random.Random()
        self._counters = (
            {} if metrics is None else
            {o: metrics.webhooks.labels(outcome=o) for o in _OUTCOME_LABELS}
        )  # fmt: skip
        self._resolver = resolver or _system_resolver
        self._on_result = on_result
        self._client = client or HttpClient(
            max_per_origin=self.config.per_endpoint, max_error_body=MAX_ERROR_BODY
        )
        self._accounts: OrderedDict[int, tuple[Account, str, float]] = OrderedDict()
        self._decisions: dict[int, FraudDecision] = {}  # by event id, until its body is built
        self._chains: dict[int, ChatChain] = {}  # the same for chain events (docs/channels.md)
        self._urls: OrderedDict[str, _Url | InvalidWebhookUrl] = OrderedDict()
        self._pins: OrderedDict[tuple[str, int], tuple[str | DeliveryError, float]] = (
            OrderedDict()
        )
        self._widest = 1  # the largest webhook_batch_max among cached accounts
        self._active: dict[asyncio.Task[None], _Delivery] = {}  # deliveries posting
        self._finishing: dict[asyncio.Task[None], _Delivery] = {}  # writing their outcomes
        self._ready: deque[_Delivery] = deque()  # deliveries waiting for a slot
        # Deliveries holding a slot, per endpoint, and those waiting because their
        # endpoint had per_endpoint of them (see _start_ready).
        self._busy: dict[Origin, int] = {}
        self._blocked: dict[Origin, deque[_Delivery]] = {}
        self._blocked_count = 0
        self._batches: dict[tuple[int, str], _Batch] = {}  # endpoints gathering a batch
        self._settled: set[int] = set()  # outbox ids whose outcome write has been made
        # delivered events waiting for their completion write, and its outcome
        self._completing: _Completing | None = None
        self._results: list[DeliveryResult] | None = None  # run_once collects here
        self._nudge = asyncio.Event()
        self._starved = False  # the last claim took as many events as it asked for
        self._stopping = False
        self._running = False
        self._finished = asyncio.Event()
        self._closed = False
        # The loop it runs on (like its HTTP client's, the first it is used on):
        # asyncio.get_running_loop() costs a getpid() system call a call on
        # CPython 3.11, and the hot path asked for it four times a POST.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadlines: _Deadlines | None = None

    # -- control ---------------------------------------------------------------------

    def wake(self, channels: object = None) -> None:
        """Claim now: new events were committed. Safe to call often, from the loop's
        thread; ``channels`` (as ``Store.watch_outbox`` passes them) is ignored
        unless it lacks :attr:`Channel.WEBHOOK`."""
        if isinstance(channels, frozenset) and Channel.WEBHOOK not in channels:
            return
        self._nudge.set()

    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called."""
        return self._stopping

    @property
    def in_flight(self) -> int:
        """Events being delivered, waiting for a slot, or gathered into a batch."""
        held = (self._active.values(), self._finishing.values(), self._ready,
                (d for q in self._blocked.values() for d in q),
                (b.delivery for b in self._batches.values()))  # fmt: skip
        return sum(len(d.events) for group in held for d in group)

    @property
    def connections_opened(self) -> int:
        """TCP connections the HTTP client opened so far."""
        return self._client.connections_opened

    async def run(self) -> None:
        """Deliver events until :meth:`stop` (or cancellation); then drain and close.

        Returns at once if :meth:`stop` came first; raises :class:`RuntimeError`
        if called twice. Raises :class:`~herald.store.StoreClosed` if the store is closed first.
        Transient store errors are logged and retried after ``poll_interval``.
        """
        if self._stopping and not self._running:
            return  # stopped before it started: nothing to do
        if self._running or self._closed:
            raise RuntimeError("a WebhookSender runs once")
        self._running = True
        try:
            while not self._stopping:
                self._nudge.clear()
                free = self._room()
                asked = min(free * self._widest, MAX_CLAIM_BATCH)
                claimed = await self._claim_and_route(asked) if asked > 0 else 0
                self._starved = asked <= 0 or claimed == asked
                if self.stopping:  # stop() was called while we were claiming
                    break
                if asked > 0 and claimed == asked and len(self._active) < self.config.concurrency:
                    continue  # the batch bound, not the slots, stopped us: more may be due
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.options.poll_interval):
                        await self._nudge.wait()
        finally:
            await self._drain()
            await self._close()
            self._finished.set()

    async def stop(self) -> None:
        """Stop claiming; let in-flight POSTs finish for ``stop_grace``; return the rest.

        Returns when :meth:`run` has ended (at once if it never ran). The
        sender cannot be restarted: make a new one.
        """
        self._stopping = True
        self._nudge.set()
        if self._running:
            await self._finished.wait()
        else:
            await self._close()

    async def run_once(self, limit: int | None = None) -> tuple[DeliveryResult, ...]:
        """Claim the events due now (up to ``limit``, default ``concurrency``), deliver
        them (batches go out at once, without waiting), and return every outcome.

        For tests, tools and one-shot runs; do not call it while :meth:`run` is running.
        """
        if self._running or self._closed:
            raise RuntimeError("run_once is for a sender that is not running")
        results: list[DeliveryResult] = []
        self._results = results
        try:
            asked = min(limit or self.config.concurrency, MAX_CLAIM_BATCH)
            await self._claim_and_route(asked, wait=False)
            while self._active or self._finishing or self._ready:
                self._start_ready()
                await asyncio.gather(*self._active, *self._finishing, return_exceptions=True)
            return tuple(results)
        finally:
            self._results = None
            self._settled.clear()

    async def aclose(self) -> None:
        """Release the HTTP client of a sender used only through :meth:`run_once`."""
        await self.stop()

    # -- claiming and grouping ---------------------------------------------------------

    def _room(self) -> int:
        """Deliveries the sender may claim now: it keeps up to :data:`CLAIM_AHEAD` x
        ``concurrency`` of them posting or ready, so that a slot that frees up
        never waits for a claim's round trip through the store."""
        return (CLAIM_AHEAD * self.config.concurrency - len(self._active) - len(self._ready)
                - self._blocked_count)

    def _lease(self) -> float:
        """Long enough for every event of a full claim to get a slot and its POST."""
        return (self.config.timeout + LEASE_MARGIN) * self._widest * CLAIM_AHEAD + (
            MAX_WEBHOOK_BATCH_WAIT if self._widest > 1 else 0.0
        )

    async def _claim_and_route(self, limit: int, *, wait: bool = True) -> int:
        try:
            events = await self._store.claim_outbox(
                Channel.WEBHOOK, self._clock(), self._lease(), limit
            )
        except StoreClosed:
            raise
        except StoreError as exc:
            log.warning("webhooks: claiming events failed (%s); retrying", exc)
            return 0
        await self._read_subjects(events, EventKind.FRAUD, self._store.get_fraud_decisions,
                                  self._decisions, "fraud decisions")
        await self._read_subjects(events, EventKind.CHAIN, self._store.get_chains,
                                  self._chains, "chains")
        for event in events:
            account = await self._account(event)
            if account is None:
                continue  # given up on: the account is gone (or unreadable: left leased)
            if account.webhook_batch_max <= 1:
                self._ready.append(_Delivery(account, event.url or "", [event]))
            else:
                self._gather(account, event, wait)
        if not wait:
            for key in list(self._batches):
                self._flush(key)
        self._start_ready()
        return len(events)

    async def _read_subjects(self, events: Sequence[OutboxEvent], kind: EventKind,
                             read: Callable[[list[str]], Awaitable[Mapping[str, Any]]],
                             held: dict[int, Any], what: str) -> None:
        """The subjects the claimed events of ``kind`` report (fraud decisions,
        docs/fraud.md "Live"; chains, docs/channels.md), into ``held`` by event id:
        one read, only when the claim holds such events (a status claim reads its
        message and route itself)."""
        wanted = {e.id: e.subject_id for e in events if e.kind is kind}
        if not wanted:
            return
        try:
            found = await read(list(wanted.values()))
        except StoreClosed:
            raise
        except StoreError as exc:  # no body: the events are left leased, tried again
            log.warning("webhooks: reading %s failed (%s)", what, exc)
            return
        if len(held) > MAX_HELD_DECISIONS:  # events never built: forget
            held.clear()
        for event_id, subject_id in wanted.items():
            if subject_id in found:
                held[event_id] = found[subject_id]

    async def _account(self, event: OutboxEvent) -> Account | None:
        cached = self._accounts.get(event.account_id)
        now = self._clock()
        if cached is not None and cached[2] > now:
            return cached[0]
        try:
            account = await self._store.get_account(event.account_id)
        except NotFound:
            self._ready.append(_Delivery(_NO_ACCOUNT, event.url or "", [event]))
            return None
        except StoreError as exc:
            self._report(self._left_leased(event, _public_id(event), exc))
            return None
        secret = webhook_secret(self._master_key, account.id, account.webhook_secret_version)
        self._accounts[account.id] = (account, secret, now + ACCOUNT_TTL)
        self._accounts.move_to_end(account.id)
        if len(self._accounts) > MAX_CACHED_ACCOUNTS:
            self._accounts.popitem(last=False)
        self._widest = max(1, *(a.webhook_batch_max for a, _, _ in self._accounts.values()))
        return account

    def _gather(self, account: Account, event: OutboxEvent, wait: bool) -> None:
        key = (account.id, event.url or "")
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(_Delivery(account, key[1], []))
            if wait and account.webhook_batch_wait > 0:
                loop = asyncio.get_running_loop()
                batch.timer = loop.call_later(account.webhook_batch_wait, self._flush, key)
        batch.delivery.events.append(event)
        if len(batch.delivery.events) >= account.webhook_batch_max or (
            wait and account.webhook_batch_wait <= 0
        ):
            self._flush(key)

    def _flush(self, key: tuple[int, str]) -> None:
        batch = self._batches.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        self._ready.append(batch.delivery)
        self._start_ready()

    def _loop_now(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _start_ready(self) -> None:
        """Start ready deliveries while slots are free, at most ``per_endpoint`` of
        them per endpoint: one more would only wait in the HTTP client's queue
        for a connection (a task, a future and a wake-up more a POST, which with
        one busy endpoint was every POST beyond the 16th: 0.96 a message at 32
        in flight). A delivery whose endpoint is full waits in ``_blocked``, in
        its order, and goes first when a slot of that endpoint frees up."""
        ready = self._ready
        busy = self._busy
        limit = self.config.per_endpoint
        while ready and len(self._active) < self.config.concurrency:
            delivery = ready.popleft()
            endpoint = self._endpoint(delivery)
            if endpoint is not None:
                held = busy.get(endpoint, 0)
                if held >= limit:
                    blocked = self._blocked.get(endpoint)
                    if blocked is None:
                        blocked = self._blocked[endpoint] = deque()
                    blocked.append(delivery)
                    self._blocked_count += 1
                    continue
                busy[endpoint] = held + 1
                delivery.endpoint = endpoint
            task = self._loop_now().create_task(self._deliver(delivery), name="webhook")
            self._active[task] = delivery
            task.add_done_callback(self._task_done)

    def _endpoint(self, delivery: _Delivery) -> Origin | None:
        """The endpoint a delivery posts to (the HTTP client's pool, but for a
        pinned address); None for a URL that fails (_deliver says why)."""
        try:
            return self._url(delivery.url).origin
        except InvalidWebhookUrl:
            return None

    def _left_slot(self, delivery: _Delivery) -> None:
        """``delivery`` no longer holds a slot: its endpoint's next one goes first."""
        endpoint = delivery.endpoint
        if endpoint is None:
            return
        delivery.endpoint = None
        held = self._busy[endpoint] - 1
        if held:
            self._busy[endpoint] = held
        else:
            del self._busy[endpoint]
        blocked = self._blocked.get(endpoint)
        if blocked:
            self._ready.appendleft(blocked.popleft())
            self._blocked_count -= 1
            if not blocked:
                del self._blocked[endpoint]

    def _task_done(self, task: asyncio.Task[None]) -> None:
        delivery = self._active.pop(task, None)
        if delivery is not None:
            self._left_slot(delivery)
        else:
            delivery = self._finishing.pop(task, None)
        if delivery is not None:
            for event in delivery.events:
                self._settled.discard(event.id)
        self._slot_freed()

    def _release_slot(self) -> None:
        """The POST is over: its slot goes to the next delivery while this one's
        outcome is written (a store round trip the next POST need not wait for)."""
        task = asyncio.current_task(self._loop_now())
        delivery = None if task is None else self._active.pop(task, None)
        if delivery is not None and task is not None:
            self._finishing[task] = delivery
            self._left_slot(delivery)
            self._slot_freed()

    def _slot_freed(self) -> None:
        if self._stopping:
            return
        self._start_ready()
        if self._starved and self._running:
            self._nudge.set()  # a slot was what we lacked: claim again

    async def _drain(self) -> None:
        """Wait for in-flight work up to the grace period; return what is left."""
        for key in list(self._batches):  # gathered, not sent: back to the store
            batch = self._batches.pop(key)
            if batch.timer is not None:
                batch.timer.cancel()
            self._ready.append(batch.delivery)
        for blocked in self._blocked.values():
            self._ready.extend(blocked)
        self._blocked.clear()
        self._blocked_count = 0
        waiting = [event for delivery in self._ready for event in delivery.events]
        self._ready.clear()
        unsettled: list[OutboxEvent] = []
        if self._active or self._finishing:
            grace = self.options.stop_grace
            held = {**self._active, **self._finishing}
            _, pending = await asyncio.wait(
                held, timeout=self.config.timeout if grace is None else grace
            )
            # Cancelled before its outcome was written: hand the event back. (One whose
            # outcome write was under way keeps it: cancelling its task leaves that
            # write alone, see _complete.)
            unsettled = [
                event for task in pending for event in held[task].events
                if event.id not in self._settled
            ]  # fmt: skip
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        now = self._clock()
        error = "returned: the sender stopped mid-attempt"
        for event in waiting + unsettled:
            try:
                await self._store.retry_outbox(event.id, now + _RETURN_DELAY, error)
            except StoreError as exc:  # its lease will run out instead
                log.warning("webhooks: could not return event %d (%s)", event.id, exc)
                continue
            returned = now + _RETURN_DELAY
            self._report(DeliveryResult(event.id, _public_id(event), Outcome.RETURNED,
                                        event.attempts, now, returned, error))  # fmt: skip

    async def _close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.aclose()

    # -- one delivery ------------------------------------------------------------------

    async def _deliver(self, delivery: _Delivery) -> None:
        """POST one delivery and record each event's outcome. Never raises but to cancel."""
        bodies: list[bytes] = []
        sending: list[OutboxEvent] = []
        for event in delivery.events:
            try:
                bodies.append(self._body(event, delivery.account))
                sending.append(event)
            except DeliveryError as err:
                await self._failed([event], err)
        if not sending:
            return
        try:
            url = self._url(delivery.url)
            secret = self._secret(delivery.account)
            if len(sending) == 1 and delivery.account.webhook_batch_max <= 1:
                status = await self._post(url, bodies[0], secret,
                                          event_id=_public_id(sending[0]))
            else:
                status = await self._post(url, batch_body(bodies), secret, count=len(sending))
        except DeliveryError as err:
            self._release_slot()
            await self._failed(sending, err)
            return
        except Exception:
            # A bug: say so loudly, keep the loop alive; the lease makes the events due again.
            log.exception("webhooks: unexpected error delivering %d events", len(sending))
            for event in sending:
                self._report(self._left_leased(event, _public_id(event), None))
            return
        self._release_slot()
        await self._delivered(sending, delivery.url, status)

    def _body(self, event: OutboxEvent, account: Account) -> bytes:
        """The event's body; :class:`SubjectGone` if its record (or account) vanished."""
        route = event.route
        decision = self._decisions.pop(event.id, None)
        chain = self._chains.pop(event.id, None)
        if account is _NO_ACCOUNT:
            raise SubjectGone(f"no account {event.account_id} (event {event.id})")
        subject = event.subject
        try:
            if event.kind is EventKind.INBOUND and isinstance(subject, InboundMessage):
                return inbound_payload(event, subject)
            if event.kind is EventKind.STATUS and isinstance(subject, Message):
                return status_payload(event, subject, route)
            if event.kind is EventKind.FRAUD and decision is not None:
                return fraud_payload(event, decision)
            if event.kind is EventKind.CHAIN and chain is not None:
                return chain_payload(event, chain)
        except ValueError as exc:  # an event the payload builders refuse: nothing to send
            raise SubjectGone(str(exc)) from None
        raise SubjectGone(f"the {event.kind.name.lower()} record {event.subject_id} is gone"
                          f" (event {event.id})")  # fmt: skip

    def _secret(self, account: Account) -> str:
        cached = self._accounts.get(account.id)
        if cached is not None and cached[0] is account:
            return cached[1]
        return webhook_secret(self._master_key, account.id, account.webhook_secret_version)

    def _url(self, url: str) -> _Url:
        parsed = self._urls.get(url)
        if parsed is None:
            try:
                parsed = _parse_url(url)
            except InvalidWebhookUrl as err:
                parsed = err
            self._urls[url] = parsed
            if len(self._urls) > MAX_CACHED_URLS:
                self._urls.popitem(last=False)
        if isinstance(parsed, InvalidWebhookUrl):
            raise parsed
        return parsed

    async def _post(
        self, url: _Url, body: bytes, secret: str, *, event_id: str | None = None,
        count: int | None = None,
    ) -> int:  # fmt: skip
        """POST once; return the status of a 2xx, else raise the :class:`DeliveryError`
        that says why."""
        timestamp = int(self._clock())
        headers = [
            _CONTENT_TYPE,
            _IDENTITY,
            (_TIMESTAMP_NAME, str(timestamp).encode()),
            (_SIGNATURE_NAME, signature_header(secret, timestamp, body).encode()),
        ]
        if event_id is not None:
            headers.append((_EVENT_ID_NAME, event_id.encode()))
        if count is not None:
            headers.append((_BATCH_COUNT_NAME, str(count).encode()))
        if url.authorization is not None:
            headers.append((b"Authorization", url.authorization))
        # asyncio.timeout's rule (cancel the task at the deadline; a cancellation
        # that was the deadline's becomes the timeout) without its objects: one
        # timer a POST, and a POST is most of what the sender does per event.
        loop = self._loop_now()
        task = cast(asyncio.Task[Any], asyncio.current_task(loop))
        cancelling = task.cancelling()
        deadlines = self._deadlines
        if deadlines is None:
            deadlines = self._deadlines = _Deadlines(loop)
        deadline = deadlines.start(self.config.timeout, task)
        try:
            origin = url.origin
            if self.options.block_private_addresses:
                origin = await self._pin(url)
            response = await self._client.post(origin, url.path, headers, body)
        except asyncio.CancelledError:
            if deadline[2] and task.uncancel() <= cancelling:
                raise DeliveryTimeout(
                    f"no answer within {self.config.timeout:g} s") from None
            raise
        except InvalidRequest as exc:
            raise InvalidWebhookUrl(f"not a request herald sends: {exc}") from None
        except ConnectFailed as exc:
            raise Unreachable(f"cannot connect: {exc}") from None
        except ProtocolViolation as exc:
            raise Unreachable(f"not an HTTP/1.1 answer: {exc}") from None
        except ClientError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc or 'connection failed'}") from None
        finally:
            _Deadlines.clear(deadline)
        if not 200 <= response.status < 300:
            raise NonSuccessStatus(_describe(response), response.status)
        return response.status

    async def _pin(self, url: _Url) -> Origin:
        """The URL's origin with the address to connect to: resolved, every address checked."""
        target = url.target
        key = (target.host, target.port)
        now = self._clock()
        cached = self._pins.get(key)
        if cached is None or cached[1] <= now:
            cached = (await self._check(target), now + PIN_TTL)
            self._pins[key] = cached
            if len(self._pins) > MAX_CACHED_URLS:
                self._pins.popitem(last=False)
        checked = cached[0]
        if isinstance(checked, DeliveryError):
            raise checked
        o = url.origin
        return Origin(o.scheme, o.host, o.port, checked)

    async def _check(self, target: WebhookTarget) -> str | DeliveryError:
        host = target.host
        literal = target.ip
        try:
            addresses = (
                [literal] if literal is not None else list(await self._resolver(host, target.port))
            )
        except OSError as exc:
            return Unreachable(f"cannot resolve {host}: {exc}")
        if not addresses:
            return Unreachable(f"{host} resolves to no address")
        refused = [a for a in addresses if not self.options.address_filter(a)]
        if refused:
            # The customer reads this error (GET /v1/messages/{id}): it must not
            # tell them what an internal name resolves to. The operator's log does.
            log.warning("webhook host %s resolves to %s, a blocked address", host, refused[0])
            return BlockedAddress(f"{host} resolves to a private, loopback or reserved"
                                  " address, which herald does not post to")
        return str(addresses[0])

    # -- outcomes ----------------------------------------------------------------------

    async def _delivered(self, events: list[OutboxEvent], url: str, status: int) -> None:
        now = self._clock()
        self._count("delivered", len(events))
        self._settled.update(e.id for e in events)
        # An event that failed before ends its message's record of attempts with
        # this answer; one delivered at its first attempt writes nothing more.
        retried = {e.id: _answer(now, url, f"HTTP {status}") for e in events if e.attempts > 1}
        try:
            await self._complete([e.id for e in events], retried)
        except StoreError as exc:
            log.warning("webhooks: delivered %d events, could not record it (%s)",
                        len(events), exc)  # fmt: skip
            for event in events:
                self._report(self._left_leased(event, _public_id(event), exc))
            return
        if self._results is None and self._on_result is None:
            return  # nobody reads the results (herald serve): none built, one per event
        for event in events:
            self._report(DeliveryResult(event.id, _public_id(event), Outcome.DELIVERED,
                                        event.attempts, now))  # fmt: skip

    def _complete(self, ids: list[int],
                  answers: dict[int, WebhookAnswer | None]) -> asyncio.Future[None]:
        """Forget delivered events in the store, with the others delivered within
        :data:`COMPLETE_DELAY` seconds: one write for them all (at a few hundred
        events a second, one per event would be most of the sender's store work).
        A crash before that write makes them due again: sent twice, which at-least-once
        delivery allows and their event ids make harmless.

        Each caller gets a future of its own: cancelling it (the caller's task
        stopped) leaves the write and the other callers alone, as ``asyncio.shield``
        of one shared future would, at a third of the cost (a future, no wrapper
        and callbacks, per delivered POST)."""
        loop = self._loop_now()
        pending = self._completing
        if pending is None:
            pending = self._completing = ([], {}, [])
            loop.call_later(COMPLETE_DELAY, self._flush_completions)
        pending[0].extend(ids)
        if answers:
            pending[1].update((i, a) for i, a in answers.items() if a is not None)
        waiter: asyncio.Future[None] = loop.create_future()
        pending[2].append(waiter)
        if len(pending[0]) >= MAX_CLAIM_BATCH:
            self._flush_completions()
        return waiter

    def _flush_completions(self) -> None:
        pending, self._completing = self._completing, None
        if pending is None:
            return
        ids, answers, waiters = pending
        task = asyncio.ensure_future(self._store.complete_outbox(ids, answers=answers)
                                     if answers else self._store.complete_outbox(ids))

        def written(task: asyncio.Future[None]) -> None:
            exc = None if task.cancelled() else task.exception()
            for done in waiters:
                if done.done():  # its caller was cancelled
                    continue
                if task.cancelled():
                    done.cancel()
                elif exc is not None:
                    done.set_exception(exc)
                else:
                    done.set_result(None)

        task.add_done_callback(written)

    async def _failed(self, events: list[OutboxEvent], err: DeliveryError) -> None:
        now = self._clock()
        self._count(err.outcome, len(events))
        error = f"{err.outcome}: {err}"
        plans = [
            (event, self.policy.next_attempt_at(
                now, event.attempts, retryable=err.retryable, draw=self._rng.random()))
            for event in events
        ]  # fmt: skip
        self._settled.update(e.id for e in events)
        # How each was answered, for its message's timeline, in the same write.
        answer = f"HTTP {err.status_code}" if isinstance(err, NonSuccessStatus) else err.outcome
        writes = asyncio.gather(
            *(self._store.retry_outbox(e.id, next_at, error,
                                       answer=_answer(now, e.url or "", answer))
              for e, next_at in plans),
            return_exceptions=True,
        )  # one commit for them all: the writer batches what is queued together
        written = await asyncio.shield(writes)
        for (event, next_at), outcome in zip(plans, written, strict=True):
            event_id = _public_id(event)
            if isinstance(outcome, StoreError):
                self._report(self._left_leased(event, event_id, outcome))
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            where = redact_url(event.url or "")
            if next_at is None:
                log.warning("webhooks: gave up on %s to %s after %d attempts: %s",
                            event_id, where, event.attempts, error)  # fmt: skip
                result = Outcome.GAVE_UP
            else:
                log.info("webhooks: %s to %s failed (attempt %d): %s; next in %.1f s",
                         event_id, where, event.attempts, error, next_at - now)  # fmt: skip
                result = Outcome.RETRY
            self._report(
                DeliveryResult(event.id, event_id, result, event.attempts, now, next_at, error)
            )

    def _left_leased(
        self, event: OutboxEvent, event_id: str, exc: StoreError | None
    ) -> DeliveryResult:
        error = f"store: {exc}" if exc is not None else "internal error"
        return DeliveryResult(event.id, event_id, Outcome.LEFT_LEASED, event.attempts,
                              self._clock(), None, error)  # fmt: skip

    def _report(self, result: DeliveryResult) -> None:
        if self._results is not None:
            self._results.append(result)
        if self._on_result is not None:
            self._on_result(result)

    def _count(self, outcome: str, n: int = 1) -> None:
        counter = self._counters.get(outcome)
        if counter is not None:
            counter.inc(n)


def sender_for(
    store: WebhookStore, data_dir: Path, config: WebhookConfig, metrics: Metrics | None = None
) -> WebhookSender:
    """The sender ``herald serve`` runs: signing with ``data_dir``'s master key, the
    address policy from ``config`` (in whichever of its processes runs it)."""
    options = SenderOptions(block_private_addresses=config.block_private_addresses)
    return WebhookSender(store, load_master_key(data_dir), config, metrics=metrics,
                         options=options)  # fmt: skip


#: Metric labels of ``herald_webhook_deliveries_total{outcome}``.
_OUTCOME_LABELS: Final = ("delivered", "http_error", "timeout", "unreachable", "invalid_url",
                          "blocked", "gone", "error")  # fmt: skip
#: Stands for an account that no longer exists: its events are given up.
_NO_ACCOUNT: Final = Account(0, "-", 0.0, math.inf, 0, None, 0)


def _answer(at: float, url: str, answer: str) -> WebhookAnswer | None:
    """An attempt's answer as a message's timeline keeps it: at the URL's host,
    never its path or query (``None`` for a URL without a host: nothing to name)."""
    target = endpoint(url)
    return WebhookAnswer(at, target, answer) if target else None


def _describe(response: Response) -> str:
    """``HTTP 503 Service Unavailable: <first octets of the body>``."""
    text = response.head.decode("utf-8", "replace")
    text = " ".join(text.split())  # one line, whatever the receiver sent
    status = f"HTTP {response.status} {response.reason}".rstrip()
    if 300 <= response.status < 400:
        status += " (redirects are not followed)"
    return f"{status}: {text}" if text else status
