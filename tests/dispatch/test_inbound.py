"""Mobile-originated messages from upstreams: owned by account, stored before the answer."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from herald.config import InboundConfig
from herald.net import ServerConnection
from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import DataSm, DeliverSm
from herald.smpp.tlv import MESSAGE_PAYLOAD
from herald.text import SmscDefault, build_udh, concat_element, gsm_encode

from .conftest import Rig, connector, eventually
from .upstream import Upstream

S = CommandStatus

RULES = (
    InboundConfig(account="acme", number="447700900777"),
    InboundConfig(account="beta", prefix="4477009"),
)


def _inbound_rows(rig: Rig) -> list[tuple[Any, ...]]:
    with sqlite3.connect(rig.store.config.path) as db:
        rows = db.execute(
            "SELECT account_id, to_addr, from_addr, body, encoding, data_coding, connector"
            " FROM inbound ORDER BY rowid").fetchall()
    db.close()
    return rows


async def _bound(up: Upstream) -> ServerConnection:
    async def ready() -> bool:
        return bool(up.server and up.server.connections and up.binds)

    await eventually(ready)
    assert up.server is not None
    return next(iter(up.server.connections))


def _mo(to: str, body: bytes, **fields: Any) -> DeliverSm:
    return DeliverSm(source_addr="447911123456", destination_addr=to, short_message=body,
                     **fields)


@pytest.fixture
async def beta(rig: Rig) -> int:
    return (await rig.store.create_account("beta", time.time(), rate_limit=10,
                                           bind_limit=1)).id


async def test_mo_is_stored_for_the_owning_account_before_it_is_answered(
    rig: Rig, beta: int
) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port)], inbound=RULES)  # type: ignore[union-attr]
    conn = await _bound(up)
    exact = await conn.request(_mo("447700900777", gsm_encode("STOP")))
    by_prefix = await conn.request(_mo("447700900123", gsm_encode("hello")))
    assert (exact.command_status, by_prefix.command_status) == (S.ESME_ROK, S.ESME_ROK)
    # Answered means committed: the rows are there the moment the answers are.
    assert _inbound_rows(rig) == [
        (rig.account.id, "447700900777", "447911123456", b"STOP", "gsm7", 0, "a"),
        (beta, "447700900123", "447911123456", b"hello", "gsm7", 0, "a"),
    ]
    assert rig.counter("herald_messages_accepted_total", source="mo") == 2


async def test_mo_to_a_number_nobody_owns_is_answered_and_dropped(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port)], inbound=RULES)  # type: ignore[union-attr]
    conn = await _bound(up)
    caplog.set_level("INFO", logger="herald.dispatch")
    response = await conn.request(_mo("33612345678", b"hi"))
    assert response.command_status == S.ESME_ROK
    assert _inbound_rows(rig) == []
    assert rig.counter("herald_messages_refused_total", source="mo",
                       reason="unknown_number") == 1
    assert "33612345678" not in caplog.text and "447911123456" not in caplog.text
    assert "no inbound rule" in caplog.text


async def test_mo_for_an_account_that_does_not_exist_yet_is_refused_temporarily(
    rig: Rig,
) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port)], inbound=RULES)  # type: ignore[union-attr]
    conn = await _bound(up)
    response = await conn.request(_mo("447700900123", b"hi"))  # "beta" is not created
    assert response.command_status == S.ESME_RX_T_APPN  # the SMSC will retry
    assert _inbound_rows(rig) == []


async def test_a_concatenated_mo_is_stored_once_whole(rig: Rig) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port)], inbound=RULES)  # type: ignore[union-attr]
    conn = await _bound(up)
    parts = [b"first part, ", b"second part, ", b"third"]
    for seq in (2, 1, 3):  # out of order, as networks deliver them
        udh = build_udh([concat_element(7, 3, seq, wide=False)])
        response = await conn.request(_mo("447700900777", udh + parts[seq - 1], esm_class=0x40))
        assert response.command_status == S.ESME_ROK
    await eventually(_rows_at_least(rig, 1))
    assert [r[3] for r in _inbound_rows(rig)] == [b"".join(parts)]


def _rows_at_least(rig: Rig, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(_inbound_rows(rig)) >= n

    return check


async def test_mo_text_is_read_with_the_connectors_data_coding_0(rig: Rig) -> None:
    """On a Latin-1 upstream, data_coding 0 octet 0xA3 is '£': stored as Latin-1 (3)."""
    up = await rig.upstream()
    await rig.dispatcher(
        [connector("a", up.server.port, smsc_default=SmscDefault.LATIN1)],  # type: ignore[union-attr]
        inbound=RULES,
    )
    conn = await _bound(up)
    await conn.request(_mo("447700900777", b"\xa35"))
    payload = DataSm(source_addr="447911123456", destination_addr="447700900777",
                     data_coding=8, tlvs=(MESSAGE_PAYLOAD("\u20ac".encode("utf-16-be")),))
    assert (await conn.request(payload)).command_status == S.ESME_ROK
    assert [(r[3], r[4], r[5]) for r in _inbound_rows(rig)] == [
        (b"\xa35", "latin1", 3), ("\u20ac".encode("utf-16-be"), "ucs2", 8),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("bodies", "opted_out"),
    [
        ([gsm_encode("STOP")], True),
        ([gsm_encode(" stop ")], True),
        ([gsm_encode("Unsubscribe")], True),
        (["QUIT".encode("utf-16-be")], True),  # UCS-2
        ([gsm_encode("STOP"), gsm_encode("START")], False),
        ([gsm_encode("STOPALL"), gsm_encode("unstop")], False),
        ([gsm_encode("STOP now please")], False),
        ([gsm_encode("hello")], False),
    ],
)
async def test_stop_keywords_opt_the_sender_out_of_the_owning_account(
    rig: Rig, beta: int, bodies: list[bytes], opted_out: bool
) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port)], inbound=RULES)  # type: ignore[union-attr]
    conn = await _bound(up)
    for body in bodies:
        ucs2 = not body.isascii() or body.startswith(b"\x00")
        response = await conn.request(_mo("447700900123", body, data_coding=8 if ucs2 else 0))
        assert response.command_status == S.ESME_ROK
    # the messages still reach the customer, whatever they say
    assert [r[3] for r in _inbound_rows(rig)] == bodies
    listed = [e.number for e in await rig.store.list_opt_outs(beta)]
    assert listed == (["447911123456"] if opted_out else [])
    assert await rig.store.list_opt_outs(rig.account.id) == ()  # another account's number
