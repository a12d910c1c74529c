"""Account controls over SMPP: bind networks (real sockets from two loopback
addresses), sender and country controls, opt-outs, the daily quota."""

from __future__ import annotations

import asyncio
import time

import pytest

from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import SmeAddress, SubmitMulti, SubmitSm
from herald.store import AccountControls, OptOutChange

from .test_front import DEST, Front, bound, eventually, front, raw_bind  # noqa: F401

S = CommandStatus
DE = "4915112345678"


async def _controls(front: Front, **fields: object) -> None:  # noqa: F811
    await front.store.set_controls(front.account_id,
                                   AccountControls(**fields))  # type: ignore[arg-type]
    front.handler.controls.forget(front.account_id)  # as if CONTROLS_TTL had passed


@pytest.mark.parametrize(
    ("networks", "from_address", "status"),
    [
        ((), "127.0.0.2", S.ESME_ROK),
        (("127.0.0.1/32",), "127.0.0.1", S.ESME_ROK),
        (("127.0.0.1/32",), "127.0.0.2", S.ESME_RBINDFAIL),
        (("10.0.0.0/8", "127.0.0.0/30"), "127.0.0.2", S.ESME_ROK),
        (("10.0.0.0/8",), "127.0.0.1", S.ESME_RBINDFAIL),
    ],
)
async def test_binds_only_from_the_account_networks(
    front: Front, networks: tuple[str, ...], from_address: str, status: int,  # noqa: F811
) -> None:
    await _controls(front, smpp_networks=networks)
    assert await raw_bind(front, from_address, front.password) == status


async def test_a_bind_outside_new_networks_is_closed_at_the_recheck(front: Front) -> None:  # noqa: F811
    client = await bound(front.client())
    await front.store.set_controls(front.account_id,
                                   AccountControls(smpp_networks=("10.0.0.0/8",)))
    assert await front.handler.close_revoked() == 1  # (it re-reads the controls)
    await eventually(lambda: not front.handler.binds.get(front.account_id))
    await client.stop()


@pytest.mark.parametrize(
    ("controls", "pdu", "status"),
    [
        ({"countries": ("DE",)}, SubmitSm(source_addr="ACME", destination_addr=DEST,
                                          short_message=b"x"), S.ESME_RINVDSTADR),
        ({"countries": ("DE",)}, SubmitSm(source_addr="ACME", destination_addr=DE,
                                          short_message=b"x"), S.ESME_ROK),
        ({"senders": ("ACME",)}, SubmitSm(source_addr="OTHER", source_addr_ton=5,
                                          destination_addr=DEST, short_message=b"x"),
         S.ESME_RINVSRCADR),
        ({"sender_rules": ("DE:numeric",)}, SubmitSm(source_addr="ACME", source_addr_ton=5,
                                                     destination_addr=DE, short_message=b"x"),
         S.ESME_RINVSRCADR),
        ({"countries": ("DE",)}, SubmitMulti(source_addr="ACME", short_message=b"x",
                                             dest_addresses=(SmeAddress(1, 1, DE),
                                                             SmeAddress(1, 1, DEST))),
         S.ESME_RINVDSTADR),  # one destination of a submit_multi refuses it whole
    ],
)
async def test_sender_and_country_controls(
    front: Front, controls: dict[str, tuple[str, ...]],  # noqa: F811
    pdu: SubmitSm | SubmitMulti, status: int,
) -> None:
    await _controls(front, **controls)
    client = await bound(front.client())
    assert (await client.submit(pdu)).command_status == status
    assert len(front.accepted) == (1 if status == S.ESME_ROK else 0)
    await client.stop()


async def test_an_opted_out_number_is_refused(front: Front) -> None:  # noqa: F811
    await front.store.change_opt_outs(front.account_id,
                                      [OptOutChange(DEST, True, time.time(), "cli")])
    client = await bound(front.client())  # the bind reads the lists
    refused = await client.submit(SubmitSm(source_addr="ACME", destination_addr=DEST,
                                           short_message=b"x"))
    assert refused.command_status == S.ESME_RINVDSTADR
    other = await client.submit(SubmitSm(source_addr="ACME", destination_addr=DE,
                                         short_message=b"x"))
    assert other.command_status == S.ESME_ROK
    await client.stop()


async def test_the_daily_quota_refuses_with_submitfail(front: Front) -> None:  # noqa: F811
    await _controls(front, daily_quota=4)
    client = await bound(front.client())

    def submit() -> SubmitSm:
        return SubmitSm(source_addr="ACME", destination_addr=DEST, short_message=b"x")

    first = await client.submit(submit())
    answers = await asyncio.gather(*(client.submit(submit()) for _ in range(9)))
    statuses = sorted(a.command_status for a in (first, *answers))
    assert statuses == [S.ESME_ROK] * 4 + [S.ESME_RSUBMITFAIL] * 6
    assert len(front.accepted) == 4
    day = int(time.time() // 86400)
    assert await front.store.daily_usage(front.account_id, day) == 4
    await client.stop()
