"""The webhook sender: POSTs the store's outbox events to customers' URLs.

Theory of operation
-------------------
All state is in the store's outbox; the sender keeps none that matters.

1. **Claim.** Whenever a delivery slot is free (``concurrency`` of them), the
   sender claims due ``Channel.WEBHOOK`` events, at most as many as it has
   free slots, under a lease of ``timeout`` + :data:`LEASE_MARGIN` seconds:
   long enough for one POST and its bookkeeping, so an event is never handed
   to a second sender while the first is still trying. Each claim counts as
   an attempt (the store increments ``attempts``).
2. **Deliver.** Each claimed event gets its own task: read the message (or
   inbound message) and the account, build the body
   (:mod:`herald.webhooks._payload`), sign it with the account's current
   secret, POST it. 2xx completes the event (the store forgets it).
3. **Retry.** Anything else — another status, a redirect (never followed), a
   timeout, a refused connection — schedules the next attempt by
   :class:`RetryPolicy` (exponential, jittered, capped), or gives the event
   up with its error once ``max_attempts`` attempts were made or when
   retrying cannot help (a bad URL, a blocked address, a deleted message).
4. **Wait.** With nothing due, the sender sleeps until :meth:`wake` (the
   service calls it after committing new events), until a slot frees up when
   it was the limit, or for ``poll_interval`` seconds at most (retries become
   due without anyone waking it).

Durability follows: a sender that dies leaves its claimed events leased, and
they become claimable again when the lease runs out; a restarted sender on
the same store picks up every pending event. Delivery is *at least once*: a
POST that reached the receiver just before a crash is sent again, with the
same ``Herald-Event-Id`` (receivers de-duplicate on it).

:meth:`stop` lets in-flight POSTs finish for ``grace`` seconds, then cancels
the rest and *returns* their events (due again at once).

Server-side request forgery hygiene
-----------------------------------
Only ``http``/``https`` URLs; no redirects followed; no proxy or ``.netrc``
from the environment (``trust_env=False``: a customer URL must never receive
the host's proxy credentials); a total time limit per POST (``asyncio.timeout``
around httpx's per-phase timeouts, so a receiver trickling bytes cannot hold a
slot); at most :data:`MAX_ERROR_BODY` octets of a failed answer read, none of
a successful one. With ``block_private_addresses`` the host name is resolved
by the sender, every address checked by ``address_filter``, and the connection
made to the checked address (the URL's host stays in ``Host`` and in TLS SNI
and certificate checks), so DNS cannot answer differently between the check
and the connection; keep-alive is then off, so that no connection opened for
one host name is reused for another that resolves to the same address.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Protocol

import httpx

from herald import __version__
from herald.accounts import webhook_secret
from herald.config import WebhookConfig
from herald.metrics import Metrics
from herald.store import (
    Account,
    Channel,
    EventKind,
    InboundMessage,
    Message,
    NotFound,
    OutboxEvent,
    StoreClosed,
    StoreError,
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
from herald.webhooks._payload import inbound_payload, status_payload, webhook_event_id
from herald.webhooks._policy import (
    IPAddress,
    RetryPolicy,
    WebhookTarget,
    address_allowed,
    check_url,
    redact_url,
)
from herald.webhooks._signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_header,
)

__all__ = [
    "LEASE_MARGIN",
    "MAX_CLAIM_BATCH",
    "MAX_ERROR_BODY",
    "DeliveryResult",
    "Outcome",
    "Resolver",
    "SenderOptions",
    "WebhookSender",
    "WebhookStore",
]

log = logging.getLogger("herald.webhooks")

#: Seconds a claim's lease lasts beyond the POST timeout: reading the message,
#: signing, and writing the outcome through a busy group-commit writer.
LEASE_MARGIN: Final = 30.0
#: Octets of a non-2xx answer kept in the error (the rest is not read): enough
#: to say "maintenance" or show a framework's error page title, no more.
MAX_ERROR_BODY: Final = 256
#: Events claimed in one store transaction, whatever the free slots.
MAX_CLAIM_BATCH: Final = 500
#: Seconds a returned event (at stop) waits before it is due again: none.
_RETURN_DELAY: Final = 0.0
_USER_AGENT: Final = f"herald-webhooks/{__version__}"

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


class WebhookStore(Protocol):
    """What the sender needs from a :class:`~herald.store.Store`."""

    async def claim_outbox(
        self, channel: Channel, now: float, lease: float, limit: int, *,
        account_id: int | None = None,
    ) -> tuple[OutboxEvent, ...]: ...  # fmt: skip

    async def complete_outbox(self, event_ids: Sequence[int]) -> None: ...

    async def retry_outbox(
        self, event_id: int, next_attempt_at: float | None, error: str
    ) -> None: ...

    async def get_message(self, message_id: str, *, account_id: int | None = None) -> Message: ...

    async def get_inbound(self, inbound_id: str) -> InboundMessage: ...

    async def get_account(self, account_id: int) -> Account: ...


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
    """One attempt's outcome, handed to ``on_result`` and returned by ``run_once``."""

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


def _public_id(event: OutboxEvent) -> str:
    """The event's ``Herald-Event-Id``, or a stand-in for logs if the row is malformed."""
    try:
        return webhook_event_id(event)
    except ValueError:
        return f"outbox-{event.id}"  # status_payload refuses it too: given up as SubjectGone


class WebhookSender:
    """Delivers webhook events from a store until stopped. See the module docstring.

    ``clock`` gives epoch seconds (the store's time scale); ``rng`` draws the
    jitter; ``transport`` replaces httpx's network transport (tests);
    ``resolver`` replaces the system resolver when addresses are checked;
    ``on_result`` is called with every :class:`DeliveryResult`. Errors never
    escape :meth:`run` except :class:`~herald.store.StoreClosed` (the store
    was closed under it: the service is shutting down or broken).
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
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._metrics = metrics
        self._resolver = resolver or _system_resolver
        self._on_result = on_result
        self._lease = self.config.timeout + LEASE_MARGIN
        pooled = 0 if self.options.block_private_addresses else self.config.concurrency
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self.config.timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(
                max_connections=self.config.concurrency, max_keepalive_connections=pooled
            ),
            headers={"User-Agent": _USER_AGENT},
        )
        self._inflight: dict[int, tuple[OutboxEvent, asyncio.Task[DeliveryResult]]] = {}
        self._settled: set[int] = set()  # outbox ids whose outcome write has been made
        self._nudge = asyncio.Event()
        self._starved = False  # the last claim filled every free slot
        self._stopping = False
        self._running = False
        self._finished = asyncio.Event()
        self._closed = False

    # -- control ---------------------------------------------------------------------

    def wake(self) -> None:
        """Claim now: new events were committed. Safe to call often, from the loop's thread."""
        self._nudge.set()

    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called."""
        return self._stopping

    @property
    def in_flight(self) -> int:
        """Events being delivered right now."""
        return len(self._inflight)

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
                free = self.config.concurrency - len(self._inflight)
                asked = min(free, MAX_CLAIM_BATCH)
                claimed = await self._claim_and_start(asked) if asked > 0 else 0
                self._starved = asked == 0 or claimed == asked
                if self.stopping:  # stop() was called while we were claiming
                    break
                if asked > 0 and claimed == asked and len(self._inflight) < self.config.concurrency:
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
        """Claim the events due now (up to ``limit``, default ``concurrency``), deliver them.

        Returns when every claimed event has an outcome. For tests, tools and
        one-shot runs; do not call it while :meth:`run` is running.
        """
        if self._running or self._closed:
            raise RuntimeError("run_once is for a sender that is not running")
        asked = min(limit or self.config.concurrency, MAX_CLAIM_BATCH)
        events = await self._store.claim_outbox(Channel.WEBHOOK, self._clock(), self._lease, asked)
        try:
            return tuple(await asyncio.gather(*(self._attempt(e) for e in events)))
        finally:
            self._settled.clear()

    async def aclose(self) -> None:
        """Release the HTTP client of a sender used only through :meth:`run_once`."""
        await self.stop()

    # -- the loop's parts --------------------------------------------------------------

    async def _claim_and_start(self, limit: int) -> int:
        try:
            events = await self._store.claim_outbox(
                Channel.WEBHOOK, self._clock(), self._lease, limit
            )
        except StoreClosed:
            raise
        except StoreError as exc:
            log.warning("webhooks: claiming events failed (%s); retrying", exc)
            return 0
        for event in events:
            task = asyncio.create_task(self._attempt(event), name=f"webhook-{event.id}")
            self._inflight[event.id] = (event, task)
            task.add_done_callback(functools.partial(self._task_done, event.id))
        return len(events)

    def _task_done(self, event_id: int, _task: object) -> None:
        self._inflight.pop(event_id, None)
        self._settled.discard(event_id)
        if self._starved:
            self._nudge.set()  # a slot was what we lacked: claim again

    async def _drain(self) -> None:
        """Wait for in-flight work up to the grace period; return what is left."""
        if not self._inflight:
            return
        grace = self.options.stop_grace
        tasks = [task for _, task in self._inflight.values()]
        _, pending = await asyncio.wait(
            tasks, timeout=self.config.timeout if grace is None else grace
        )
        # Cancelled before its outcome was written: hand the event back. (One whose
        # outcome write was under way keeps it: that write is shielded.)
        unsettled = [
            event for event, task in self._inflight.values()
            if task in pending and event.id not in self._settled
        ]  # fmt: skip
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        now = self._clock()
        error = "returned: the sender stopped mid-attempt"
        for event in unsettled:
            try:
                await self._store.retry_outbox(event.id, now + _RETURN_DELAY, error)
            except StoreError as exc:  # its lease will run out instead
                log.warning("webhooks: could not return event %d (%s)", event.id, exc)
                continue
            result = DeliveryResult(event.id, _public_id(event), Outcome.RETURNED,
                                    event.attempts, now, now + _RETURN_DELAY, error)  # fmt: skip
            self._report(result)

    async def _close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.aclose()

    # -- one attempt ---------------------------------------------------------------------

    async def _attempt(self, event: OutboxEvent) -> DeliveryResult:
        """Deliver one claimed event and record the outcome. Never raises but to cancel."""
        event_id = _public_id(event)
        try:
            target = check_url(event.url or "")
            body, secret = await self._prepare(event)
            await self._post(target, event_id, body, secret)
        except DeliveryError as err:
            return await self._failed(event, event_id, err)
        except StoreError as exc:
            return self._left_leased(event, event_id, exc)
        except Exception:
            # A bug: say so loudly, keep the loop alive; the lease makes the event due again.
            log.exception("webhooks: unexpected error delivering event %d", event.id)
            return self._left_leased(event, event_id, None)
        now = self._clock()
        self._count("delivered")
        self._settled.add(event.id)
        try:
            await asyncio.shield(self._store.complete_outbox([event.id]))
        except StoreError as exc:
            log.warning("webhooks: delivered event %d, could not record it (%s)", event.id, exc)
            return self._left_leased(event, event_id, exc)
        return self._report(DeliveryResult(event.id, event_id, Outcome.DELIVERED,
                                           event.attempts, now))  # fmt: skip

    async def _prepare(self, event: OutboxEvent) -> tuple[bytes, str]:
        """The body and the signing secret; :class:`SubjectGone` if a record vanished."""
        try:
            account = await self._store.get_account(event.account_id)
            if event.kind is EventKind.INBOUND:
                inbound = await self._store.get_inbound(event.subject_id)
                body = inbound_payload(event, inbound)
            else:
                message = await self._store.get_message(
                    event.subject_id, account_id=event.account_id
                )
                body = status_payload(event, message)
        except NotFound as exc:
            raise SubjectGone(f"{exc} (event {event.id})") from None
        except ValueError as exc:  # an event the payload builders refuse: nothing to send
            raise SubjectGone(str(exc)) from None
        secret = webhook_secret(self._master_key, account.id, account.webhook_secret_version)
        return body, secret

    async def _post(self, target: WebhookTarget, event_id: str, body: bytes, secret: str) -> None:
        """POST once; return on 2xx, else raise the :class:`DeliveryError` that says why."""
        url = httpx.URL(target.url)
        headers = {
            "Content-Type": "application/json",
            # Read raw and bounded (MAX_ERROR_BODY): no decompression of what a receiver sends.
            "Accept-Encoding": "identity",
            EVENT_ID_HEADER: event_id,
        }
        extensions: dict[str, str] = {}
        try:
            async with asyncio.timeout(self.config.timeout):
                if self.options.block_private_addresses:
                    url, host = await self._pin(url, target)
                    headers["Host"] = host
                    if target.scheme == "https":
                        extensions["sni_hostname"] = target.host  # TLS checks the name
                timestamp = int(self._clock())
                headers[TIMESTAMP_HEADER] = str(timestamp)
                headers[SIGNATURE_HEADER] = signature_header(secret, timestamp, body)
                request = self._client.build_request(
                    "POST", url, content=body, headers=headers, extensions=extensions
                )
                response = await self._client.send(request, stream=True)
                try:
                    if 200 <= response.status_code < 300:
                        return  # the body is not read: nothing in it matters
                    raise NonSuccessStatus(await self._describe(response), response.status_code)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise DeliveryTimeout(f"no answer within {self.config.timeout:g} s") from None
        except httpx.TimeoutException as exc:
            raise DeliveryTimeout(f"{type(exc).__name__} after {self.config.timeout:g} s") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise InvalidWebhookUrl(f"httpx refused the URL: {exc}") from None
        except httpx.TransportError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc or 'connection failed'}") from None

    async def _pin(self, url: httpx.URL, target: WebhookTarget) -> tuple[httpx.URL, str]:
        """Resolve the host, check every address, return the URL on the first and ``Host``."""
        host = url.raw_host.decode("ascii")  # IDNA-encoded, no brackets
        literal = target.ip
        try:
            addresses = (
                [literal] if literal is not None else list(await self._resolver(host, target.port))
            )
        except OSError as exc:
            raise Unreachable(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise Unreachable(f"{host} resolves to no address")
        refused = [a for a in addresses if not self.options.address_filter(a)]
        if refused:
            raise BlockedAddress(f"{host} resolves to {refused[0]}, which is not allowed")
        return url.copy_with(host=str(addresses[0])), url.netloc.decode("ascii")

    @staticmethod
    async def _describe(response: httpx.Response) -> str:
        """``HTTP 503 Service Unavailable: <first octets of the body>``, read bounded."""
        head = bytearray()
        async for chunk in response.aiter_raw():
            head += chunk[: MAX_ERROR_BODY - len(head)]
            if len(head) >= MAX_ERROR_BODY:
                break
        text = bytes(head).decode("utf-8", "replace")
        text = " ".join(text.split())  # one line, whatever the receiver sent
        status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        if 300 <= response.status_code < 400:
            status += " (redirects are not followed)"
        return f"{status}: {text}" if text else status

    async def _failed(
        self, event: OutboxEvent, event_id: str, err: DeliveryError
    ) -> DeliveryResult:
        now = self._clock()
        self._count(err.outcome)
        next_at = self.policy.next_attempt_at(
            now, event.attempts, retryable=err.retryable, draw=self._rng.random()
        )
        error = f"{err.outcome}: {err}"
        self._settled.add(event.id)
        try:
            await asyncio.shield(self._store.retry_outbox(event.id, next_at, error))
        except StoreError as exc:
            return self._left_leased(event, event_id, exc)
        where = redact_url(event.url or "")
        if next_at is None:
            log.warning("webhooks: gave up on %s to %s after %d attempts: %s",
                        event_id, where, event.attempts, error)  # fmt: skip
            outcome = Outcome.GAVE_UP
        else:
            log.info("webhooks: %s to %s failed (attempt %d): %s; next in %.1f s",
                     event_id, where, event.attempts, error, next_at - now)  # fmt: skip
            outcome = Outcome.RETRY
        return self._report(
            DeliveryResult(event.id, event_id, outcome, event.attempts, now, next_at, error)
        )

    def _left_leased(
        self, event: OutboxEvent, event_id: str, exc: StoreError | None
    ) -> DeliveryResult:
        error = f"store: {exc}" if exc is not None else "internal error"
        return self._report(DeliveryResult(event.id, event_id, Outcome.LEFT_LEASED,
                                           event.attempts, self._clock(), None, error))  # fmt: skip

    def _report(self, result: DeliveryResult) -> DeliveryResult:
        if self._on_result is not None:
            self._on_result(result)
        return result

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.webhooks.labels(outcome=outcome).inc()
