"""Shared pieces of the simulator tests: a receiving client and bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from herald.net import ClientHandler, ClientSettings, SmppClient, SmppConnection
from herald.sim import SimConfig, Simulator
from herald.smpp.constants import ESM_TYPE_MASK, EsmType
from herald.smpp.pdus import BindRequest, BindTransceiver, DeliverSm, Request, Response, SubmitSm

SYSTEM_ID = "acme"
PASSWORD = "secret-pw"


async def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll ``check`` every 10 ms until true; AssertionError after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        await asyncio.sleep(0.01)


@dataclass
class Inbox(ClientHandler):
    """Keeps every deliver_sm; answers with ``status`` (ESME_ROK by default), or
    not at all with ``answer=False``. ``pending`` maps a message id to its
    submit's response future, so a test can tell whether the response had
    already arrived when the receipt did."""

    status: int = 0
    answer: bool = True
    delivered: list[DeliverSm] = field(default_factory=list)
    response_seen_first: dict[str, bool] = field(default_factory=dict)
    watch: dict[str, asyncio.Future[Response]] = field(default_factory=dict)

    def on_request(self, client: SmppClient, conn: SmppConnection, request: Request) -> None:
        assert isinstance(request, DeliverSm)
        self.delivered.append(request)
        for key, future in self.watch.items():
            if key in request.short_message.decode("latin-1"):
                self.response_seen_first.setdefault(key, future.done())
        if self.answer:
            conn.respond(request.response(self.status))

    @property
    def receipts(self) -> list[DeliverSm]:
        return [d for d in self.delivered
                if d.esm_class & ESM_TYPE_MASK == EsmType.DELIVERY_RECEIPT]

    @property
    def mo(self) -> list[DeliverSm]:
        return [d for d in self.delivered if d.esm_class & ESM_TYPE_MASK == 0]

    async def wait(self, count: int, timeout: float = 5.0) -> list[DeliverSm]:
        await eventually(lambda: len(self.delivered) >= count,
                         f"{count} deliver_sm (got {len(self.delivered)})", timeout)
        return self.delivered


def client_settings(port: int, bind: BindRequest | None = None) -> ClientSettings:
    return ClientSettings(
        "127.0.0.1", port, bind or BindTransceiver(system_id=SYSTEM_ID, password=PASSWORD),
        reconnect_min=0.05, reconnect_max=0.2,
    )


@contextlib.asynccontextmanager
async def bound_client(port: int, bind: BindRequest | None = None,
                       inbox: Inbox | None = None) -> AsyncIterator[tuple[SmppClient, Inbox]]:
    inbox = inbox or Inbox()
    client = SmppClient(client_settings(port, bind), inbox)
    await client.start()
    try:
        await client.wait_bound(5)
        yield client, inbox
    finally:
        await client.stop(timeout=0.5)


@contextlib.asynccontextmanager
async def running(**settings: object) -> AsyncIterator[Simulator]:
    """A simulator on a free loopback port; ``settings`` are SimConfig fields."""
    settings.setdefault("port", 0)
    settings.setdefault("receipt_delay", (0.0, 0.0))
    settings.setdefault("keep_records", True)
    sim = Simulator(SimConfig(**settings))  # type: ignore[arg-type]
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop(timeout=0.5)


def submit(destination: str, text: bytes = b"hello", *, registered_delivery: int = 1,
           source: str = "HERALD", **fields: object) -> SubmitSm:
    return SubmitSm(source_addr=source, destination_addr=destination,
                    registered_delivery=registered_delivery, short_message=text,
                    **fields)  # type: ignore[arg-type]
