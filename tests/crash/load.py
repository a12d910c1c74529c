"""Customers under load: HTTP and SMPP senders, and a webhook receiver, with a ledger.

Every message carries a unique text (``<tag> <channel> <serial>``: letters,
digits and spaces, which GSM 03.38 and ASCII encode alike), so the sim's
record (a sha256 of the body) tells which message reached the upstream and
how many times. The ledger records each attempt's outcome as the customer
saw it:

- ``acked``: herald answered with an id (HTTP 202, submit_sm_resp ESME_ROK):
  herald promised to deliver it;
- ``refused``: herald answered with an error (nothing promised);
- ``unknown``: the connection died before an answer (herald may or may not
  have stored it: either is correct);
- ``unsent``: it never left the client (no bound session).

Load is paced (a target rate per channel, split over the workers) and every
loop ends when ``stop`` is set. Nothing is ever resent: a new attempt is a
new message with a new text, so a duplicate in the record is herald's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import httpx

from herald.net import (
    ClientHandler,
    ClientSettings,
    NotBound,
    SmppClient,
    SmppConnection,
    SmppNetError,
)
from herald.smpp.errors import SmppError
from herald.smpp.pdus import BindTransceiver, DeliverSm, Request, SubmitSm
from herald.smpp.receipts import receipt_of
from herald.smpp.session import SessionConfig
from herald.smpp.states import Role

__all__ = [
    "Attempt",
    "HttpLoad",
    "Ledger",
    "SmppLoad",
    "WebhookReceiver",
    "content_hash",
]

SENDER: Final = "SHOP"
#: UK mobile numbers (valid per the numbering plan herald checks): a prefix
#: and a serial, so destinations vary too.
NUMBER_PREFIX: Final = "4479111"
NUMBER_SPACE: Final = 100_000
#: Seconds an HTTP request may take before the attempt counts as unknown.
HTTP_TIMEOUT: Final = 30.0
#: Seconds to wait after a failed attempt (herald down) before the next one.
RETRY_PAUSE: Final = 0.1
#: A paced worker that falls behind catches up at most this many seconds' worth.
MAX_LAG: Final = 1.0
#: The receipt stat a final status shows as (SMPP 3.4 Appendix B).
STAT_OF_STATUS: Final = {
    "delivered": "DELIVRD", "undelivered": "UNDELIV", "expired": "EXPIRED",
    "rejected": "REJECTD", "failed": "UNDELIV",
}


def content_hash(text: str) -> str:
    """The sim record's ``content`` of a message with this text (GSM 7-bit, unpacked)."""
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


@dataclass(slots=True)
class Attempt:
    text: str
    channel: str  # "http" | "smpp"
    sent_at: float  # time.time() when sent
    outcome: str = "pending"  # acked | refused | unknown | unsent
    id: str | None = None
    acked_at: float | None = None
    detail: str = ""


@dataclass
class Ledger:
    """Every attempt, by text."""

    tag: str
    attempts: dict[str, Attempt] = field(default_factory=dict)
    by_id: dict[str, Attempt] = field(default_factory=dict)
    _serial: int = 0

    def new(self, channel: str) -> Attempt:
        self._serial += 1
        text = f"{self.tag} {channel} {self._serial:09d}"
        attempt = Attempt(text, channel, time.time())
        self.attempts[text] = attempt
        return attempt

    def number(self) -> str:
        return f"{NUMBER_PREFIX}{self._serial % NUMBER_SPACE:05d}"

    def ack(self, attempt: Attempt, message_id: str) -> None:
        attempt.outcome = "acked"
        attempt.id = message_id
        attempt.acked_at = time.time()
        self.by_id[message_id] = attempt

    def acked(self) -> Iterator[Attempt]:
        return (a for a in self.attempts.values() if a.outcome == "acked")

    def outcomes(self) -> Counter[tuple[str, str]]:
        return Counter((a.channel, a.outcome) for a in self.attempts.values())

    def first_ack_after(self, moment: float) -> float | None:
        times = [a.acked_at for a in self.attempts.values()
                 if a.acked_at is not None and a.acked_at >= moment]
        return min(times) if times else None


class _Pacer:
    """``rate`` events per second for one worker, catching up at most MAX_LAG."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        self.next = max(self.next + self.interval, now - MAX_LAG)
        if self.next > now:
            await asyncio.sleep(self.next - now)


# -- HTTP ------------------------------------------------------------------------------


class HttpLoad:
    """``workers`` concurrent clients POSTing single messages (and every
    ``batch_every``-th request a batch of ``batch_size``), ``rate`` messages
    per second in all."""

    def __init__(self, base_url: str, api_key: str, ledger: Ledger, *, workers: int,
                 rate: float, batch_every: int = 0, batch_size: int = 10,
                 callback_url: str | None = None) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.ledger = ledger
        self.workers = workers
        self.rate = rate
        self.batch_every = batch_every
        self.batch_size = batch_size
        self.callback_url = callback_url
        self.requests = 0
        self.errors: Counter[str] = Counter()

    def _item(self, attempt: Attempt) -> dict[str, object]:
        item: dict[str, object] = {"to": "+" + self.ledger.number(), "from": SENDER,
                                   "text": attempt.text}
        if self.callback_url is not None:
            item["callback_url"] = self.callback_url
        return item

    async def run(self, stop: asyncio.Event) -> None:
        limits = httpx.Limits(max_connections=self.workers,
                              max_keepalive_connections=self.workers)
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers,
                                     timeout=HTTP_TIMEOUT, limits=limits) as client:
            await asyncio.gather(*(self._worker(client, n, stop) for n in range(self.workers)))

    async def _worker(self, client: httpx.AsyncClient, n: int, stop: asyncio.Event) -> None:
        batch = self.batch_every > 0
        # messages per request, averaged, decides the request pace
        per_request = 1 + (self.batch_size - 1) / self.batch_every if batch else 1
        pacer = _Pacer(self.rate / self.workers / per_request)
        count = n
        while not stop.is_set():
            await pacer.wait()
            count += 1
            if batch and count % self.batch_every == 0:
                ok = await self._batch(client)
            else:
                ok = await self._single(client)
            if not ok:
                await asyncio.sleep(RETRY_PAUSE)

    async def _single(self, client: httpx.AsyncClient) -> bool:
        attempt = self.ledger.new("http")
        self.requests += 1
        try:
            answer = await client.post("/v1/messages", json=self._item(attempt))
        except httpx.HTTPError as exc:
            _failed([attempt], exc)
            self.errors[type(exc).__name__] += 1
            return False
        if answer.status_code == 202:
            self.ledger.ack(attempt, answer.json()["id"])
            return True
        attempt.outcome, attempt.detail = "refused", str(answer.status_code)
        self.errors[str(answer.status_code)] += 1
        return False

    async def _batch(self, client: httpx.AsyncClient) -> bool:
        attempts = [self.ledger.new("http") for _ in range(self.batch_size)]
        self.requests += 1
        try:
            answer = await client.post("/v1/messages/batch",
                                       json={"messages": [self._item(a) for a in attempts]})
        except httpx.HTTPError as exc:
            _failed(attempts, exc)
            self.errors[type(exc).__name__] += 1
            return False
        if answer.status_code != 202:
            for a in attempts:
                a.outcome, a.detail = "refused", str(answer.status_code)
            self.errors[str(answer.status_code)] += 1
            return False
        for result in answer.json()["results"]:
            a = attempts[result["index"]]
            if result["status"] == "accepted":
                self.ledger.ack(a, result["id"])
            else:
                a.outcome, a.detail = "refused", "batch item"
        return True


def _failed(attempts: list[Attempt], exc: httpx.HTTPError) -> None:
    # Refused connection: the request never reached herald. Anything later
    # (reset, timeout): herald may have stored the message.
    outcome = "unsent" if isinstance(exc, httpx.ConnectError) else "unknown"
    for a in attempts:
        a.outcome, a.detail = outcome, type(exc).__name__


# -- SMPP ------------------------------------------------------------------------------


class SmppLoad(ClientHandler):
    """``binds`` transceiver binds, ``window`` submits in flight on each,
    ``rate`` submits per second in all; receipts collected by herald id."""

    def __init__(self, port: int, system_id: str, password: str, ledger: Ledger, *,
                 binds: int, window: int, rate: float) -> None:
        self.ledger = ledger
        self.rate = rate
        self.window = window
        self.receipts: dict[str, list[str]] = {}
        self.receipt_times: dict[str, float] = {}
        self.deliver_sm = 0
        self.errors: Counter[str] = Counter()
        session = SessionConfig(role=Role.ESME, window=window, response_timeout=30.0,
                                enquire_link_interval=30.0)
        self.clients = [
            SmppClient(ClientSettings("127.0.0.1", port,
                                      BindTransceiver(system_id=system_id, password=password),
                                      session=session, reconnect_min=0.1, reconnect_max=0.5,
                                      name=f"customer-{n}"), self)
            for n in range(binds)
        ]

    async def start(self) -> None:
        for client in self.clients:
            await client.start()

    async def close(self) -> None:
        await asyncio.gather(*(c.stop(5) for c in self.clients), return_exceptions=True)

    # ClientHandler: receipts (and anything else) answered at once
    def on_request(self, client: SmppClient, conn: SmppConnection, request: Request) -> None:
        if isinstance(request, DeliverSm) and request.esm_class & 0x04:
            self.deliver_sm += 1
            try:
                receipt = receipt_of(request)
            except SmppError:
                self.errors["bad receipt"] += 1
            else:
                self.receipts.setdefault(receipt.message_id, []).append(receipt.stat)
                self.receipt_times.setdefault(receipt.message_id, time.time())
        conn.respond(request.response())

    async def run(self, stop: asyncio.Event) -> None:
        workers = [self._worker(client, stop) for client in self.clients
                   for _ in range(self.window)]
        await asyncio.gather(*workers)

    async def _worker(self, client: SmppClient, stop: asyncio.Event) -> None:
        pacer = _Pacer(self.rate / (len(self.clients) * self.window))
        while not stop.is_set():
            await pacer.wait()
            if not client.bound:
                with contextlib.suppress(TimeoutError):
                    await client.wait_bound(0.2)
                continue
            attempt = self.ledger.new("smpp")
            pdu = SubmitSm(source_addr=SENDER, source_addr_ton=5,
                           destination_addr=self.ledger.number(), dest_addr_ton=1,
                           registered_delivery=1, short_message=attempt.text.encode("ascii"))
            try:
                resp = await client.submit(pdu)
            except NotBound:
                attempt.outcome = "unsent"
                continue
            except (SmppNetError, SmppError) as exc:
                attempt.outcome, attempt.detail = "unknown", type(exc).__name__
                self.errors[type(exc).__name__] += 1
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if resp.command_status == 0:
                self.ledger.ack(attempt, resp.message_id)  # type: ignore[attr-defined]
            else:
                attempt.outcome, attempt.detail = "refused", f"0x{resp.command_status:08X}"
                self.errors[attempt.detail] += 1


# -- webhooks --------------------------------------------------------------------------


class WebhookReceiver:
    """An HTTP/1.1 endpoint on loopback (keep-alive) recording each status
    event's message id and status; answers 200 to everything it can read."""

    MAX_HEAD: Final = 16 * 1024
    MAX_BODY: Final = 1 << 20

    def __init__(self) -> None:
        self.statuses: dict[str, list[str]] = {}
        self.final_times: dict[str, float] = {}
        self.posts = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > self.MAX_HEAD:
                    break
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length > self.MAX_BODY:
                    break
                body = await reader.readexactly(length)
                self._record(body)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ValueError):
            pass
        finally:
            writer.close()

    def _record(self, body: bytes) -> None:
        self.posts += 1
        try:
            message = json.loads(body)["message"]
            message_id, status = message["id"], message["status"]
        except (ValueError, KeyError, TypeError):
            return
        self.statuses.setdefault(message_id, []).append(status)
        if status in STAT_OF_STATUS:
            self.final_times.setdefault(message_id, time.time())
