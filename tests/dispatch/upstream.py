"""A scriptable upstream SMSC for dispatch tests, on herald's own SmppServer.

Each submit_sm is recorded with the server's loop time and answered as the
test's ``decide(submit, n)`` says (an :class:`Answer`); accepted submits get a
delivery receipt on the same connection unless the answer says otherwise.
Everything runs on real loopback sockets (port 0).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from herald.net import ServerConnection, ServerHandler, ServerSettings, SmppServer
from herald.smpp.constants import CommandStatus, MessageState
from herald.smpp.pdus import (
    BindRequest,
    BindResponse,
    DeliverSm,
    QuerySm,
    Request,
    Response,
    SubmitSm,
)
from herald.smpp.receipts import Receipt, format_receipt, stat_from_state
from herald.smpp.tlv import MESSAGE_STATE, RECEIPTED_MESSAGE_ID

S = CommandStatus


@dataclass(frozen=True)
class Answer:
    """How the upstream treats one submit_sm.

    ``status`` is its command_status (``None``: never answer). ``receipts`` are
    the message states sent back, in order, for an accepted submit;
    ``receipt_first`` sends them before the submit_sm_resp (and answers only
    once the receipts are acknowledged); ``hold`` keeps the receipts until the
    test releases them (``Upstream.release``).
    """

    status: int | None = S.ESME_ROK
    receipts: tuple[MessageState, ...] = (MessageState.DELIVERED,)
    receipt_first: bool = False
    hold: bool = False


OK = Answer()

#: Message ids are unique across upstream instances (a restarted upstream does
#: not reuse the ids it gave before, as real SMSCs avoid doing).
_NUMBERS = itertools.count(1000)


def decimal_ids(n: int) -> tuple[str, str]:
    return str(n), str(n)


def hex_then_decimal(n: int) -> tuple[str, str]:
    """submit_sm_resp id in hex (zero-padded), receipt id in decimal: a real-world mismatch."""
    return f"{n:08x}", str(n)


@dataclass
class Submit:
    at: float  # server loop time when the submit_sm was read
    pdu: SubmitSm
    upstream_id: str
    conn_id: int  # which of herald's binds carried it


@dataclass
class Upstream(ServerHandler):
    decide: Callable[[SubmitSm, int], Answer] = lambda pdu, n: OK
    ids: Callable[[int], tuple[str, str]] = decimal_ids  # n -> (resp id, receipt id)
    submits: list[Submit] = field(default_factory=list)
    receipts_acked: int = 0
    held: list[tuple[ServerConnection, DeliverSm]] = field(default_factory=list)
    silent: list[tuple[ServerConnection, SubmitSm]] = field(default_factory=list)
    binds: int = 0
    server: SmppServer | None = None
    #: Receipts owed for accepted submits, until acknowledged; a restarted
    #: upstream built with ``owed=old.owed`` sends them when herald binds again
    #: (a real SMSC keeps them across its restarts).
    owed: list[DeliverSm] = field(default_factory=list)
    #: query_sm received, and how they are answered (by default as an SMSC
    #: without query_sm answers: ESME_RINVCMDID)
    queries: list[QuerySm] = field(default_factory=list)
    query: Callable[[QuerySm], Response] = lambda pdu: pdu.response(S.ESME_RINVCMDID)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, port: int = 0) -> int:
        self.server = SmppServer(self, ServerSettings(port=port))
        await self.server.start()
        return self.server.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(timeout=1)
        for task in list(self._tasks):
            task.cancel()

    async def authenticate(self, conn: ServerConnection, bind: BindRequest) -> BindResponse:
        self.binds += 1
        return bind.response(system_id="upstream")

    def on_bound(self, conn: ServerConnection) -> None:
        owed, self.owed = self.owed, []
        if owed:
            self._spawn(self._send(conn, owed))

    def on_request(self, conn: ServerConnection, request: Request) -> None:
        if isinstance(request, QuerySm):
            self.queries.append(request)
            conn.respond(self.query(request))
            return
        if not isinstance(request, SubmitSm):
            conn.respond(request.response(S.ESME_RINVCMDID))
            return
        n = next(_NUMBERS)
        resp_id, receipt_id = self.ids(n)
        self.submits.append(Submit(conn.loop.time(), request, resp_id, conn.conn_id))
        answer = self.decide(request, len(self.submits))
        if answer.status is None:
            self.silent.append((conn, request))
            return
        if answer.status != S.ESME_ROK:
            conn.respond(request.response(answer.status))
            return
        receipts = [self.receipt(request, receipt_id, state) for state in answer.receipts]
        self.owed.extend(receipts)
        if answer.receipt_first:
            self._spawn(self._receipts_then_response(conn, request, resp_id, receipts))
            return
        conn.respond(request.response(message_id=resp_id))
        if answer.hold:
            self.held.extend((conn, r) for r in receipts)
        elif receipts:
            self._spawn(self._send(conn, receipts))

    def release(self, count: int | None = None) -> None:
        """Send ``count`` held receipts (all by default), oldest first."""
        count = len(self.held) if count is None else count
        batch, self.held = self.held[:count], self.held[count:]
        for conn, receipt in batch:
            self._spawn(self._send(conn, [receipt]))

    @staticmethod
    def receipt(submit: SubmitSm, receipt_id: str, state: MessageState) -> DeliverSm:
        now = datetime(2026, 1, 2, 3, 4)
        text = format_receipt(Receipt(receipt_id, stat_from_state(state), state, sub=1,
                                      dlvrd=int(state is MessageState.DELIVERED),
                                      submit_date=now, done_date=now, err="000", text=""))
        return DeliverSm(
            source_addr=submit.destination_addr, destination_addr=submit.source_addr,
            esm_class=0x04, short_message=text.encode(),
            tlvs=(RECEIPTED_MESSAGE_ID(receipt_id), MESSAGE_STATE(int(state))),
        )

    async def _send(self, conn: ServerConnection, receipts: list[DeliverSm]) -> None:
        for receipt in receipts:  # in order: the next waits for the previous answer
            if not any(r is receipt for r in self.owed):
                self.owed.append(receipt)
            response = await conn.request(receipt)
            if response.command_status == S.ESME_ROK:
                self.receipts_acked += 1
                self.owed = [r for r in self.owed if r is not receipt]

    async def _receipts_then_response(
        self, conn: ServerConnection, submit: SubmitSm, resp_id: str, receipts: list[DeliverSm]
    ) -> None:
        await self._send(conn, receipts)  # acknowledged: herald has committed them
        conn.respond(submit.response(message_id=resp_id))

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
