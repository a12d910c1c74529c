"""The priority class of an SMPP submit: service_type, priority_flag, the account's."""

from __future__ import annotations

import dataclasses

import pytest

from herald.smpp.pdus import DataSm, SubmitSm
from herald.smpp.tlv import MESSAGE_PAYLOAD
from herald.store import Priority

from .test_front import DEST, Front, bound, front

__all__ = ["front"]  # the fixture


@pytest.mark.parametrize(("service_type", "flag", "account", "priority", "tag"), [
    ("", 0, None, Priority.TRANSACTIONAL, None),  # nothing said: transactional
    ("", 0, Priority.BULK, Priority.BULK, None),  # the account's default
    ("", 1, Priority.BULK, Priority.BULK, None),  # flag 1: no class of its own
    ("", 2, Priority.BULK, Priority.TRANSACTIONAL, None),
    ("", 3, Priority.BULK, Priority.OTP, None),
    ("OTP", 0, Priority.MARKETING, Priority.OTP, "otp"),  # case-insensitive
    ("bulk", 3, None, Priority.BULK, "bulk"),  # service_type beats the flag
    ("mkt", 0, None, Priority.MARKETING, "marketing"),
    ("txn", 0, Priority.BULK, Priority.TRANSACTIONAL, "transactional"),
    ("CMT", 3, Priority.BULK, Priority.OTP, None),  # another service_type: the flag decides
])  # fmt: skip
async def test_the_class_of_a_submit(front: Front, service_type: str, flag: int,
                                     account: Priority | None, priority: Priority,
                                     tag: str | None) -> None:
    stored = await front.store.get_account(front.account_id)
    await front.store.update_account(dataclasses.replace(stored, priority=account))
    client = await bound(front.client())  # the bind reads the account's default
    resp = await client.submit(SubmitSm(service_type=service_type, priority_flag=flag,
                                        source_addr="ACME", destination_addr=DEST,
                                        short_message=b"Your code is 1234"))
    assert resp.command_status == 0
    message = await front.store.get_message(resp.message_id)  # type: ignore[attr-defined]
    assert (message.priority, message.tag) == (priority, tag)
    await client.stop()


async def test_data_sm_has_no_flag_but_a_service_type(front: Front) -> None:
    client = await bound(front.client())
    body = (MESSAGE_PAYLOAD(b"Your code is 1234"),)
    plain = await client.submit(DataSm(source_addr="ACME", destination_addr=DEST, tlvs=body))
    named = await client.submit(DataSm(service_type="otp", source_addr="ACME",
                                       destination_addr=DEST, tlvs=body))
    assert [r.command_status for r in (plain, named)] == [0, 0]
    got = [await front.store.get_message(r.message_id)  # type: ignore[attr-defined]
           for r in (plain, named)]
    assert [m.priority for m in got] == [Priority.TRANSACTIONAL, Priority.OTP]
    await client.stop()


async def test_a_new_default_reaches_bound_customers_at_the_recheck(front: Front) -> None:
    client = await bound(front.client())
    stored = await front.store.get_account(front.account_id)
    await front.store.update_account(dataclasses.replace(stored, priority=Priority.MARKETING))
    assert await front.handler.close_revoked() == 0  # the recheck the service runs
    resp = await client.submit(SubmitSm(source_addr="ACME", destination_addr=DEST,
                                        short_message=b"sale"))
    message = await front.store.get_message(resp.message_id)  # type: ignore[attr-defined]
    assert message.priority is Priority.MARKETING
    await client.stop()
