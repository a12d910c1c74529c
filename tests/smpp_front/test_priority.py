"""The priority class of an SMPP submit: service_type, priority_flag, a class entry,
the account's."""

from __future__ import annotations

import dataclasses
import time

import pytest

from herald.routes import LiveClasses
from herald.smpp.pdus import DataSm, SmeAddress, SubmitMulti, SubmitSm
from herald.smpp.tlv import MESSAGE_PAYLOAD
from herald.store import MessageFilter, Priority, StoredRoutes

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


#: ``[[classes]]`` entries (docs/routing.md): acme's ACME messages to the UK are
#: bulk; anything to Germany marketing.
CLASSES = """
[[classes]]
accounts = ["acme"]
senders = ["ACME"]
prefixes = ["44"]
priority = "bulk"

[[classes]]
prefixes = ["49"]
priority = "marketing"
"""


async def _with_classes(front: Front) -> None:
    await front.store.put_routes(StoredRoutes(CLASSES, "routes.toml", time.time()))
    classes = LiveClasses(front.store)
    assert await classes.refresh()
    front.handler.limits = dataclasses.replace(front.handler.limits, classes=classes)


@pytest.mark.parametrize(("service_type", "flag", "sender", "account", "priority"), [
    ("", 0, "ACME", None, Priority.BULK),  # the entry
    ("", 1, "ACME", Priority.OTP, Priority.BULK),  # flag 1 names no class: the entry
    ("", 3, "ACME", None, Priority.OTP),  # the flag beats the entry
    ("", 2, "ACME", Priority.BULK, Priority.TRANSACTIONAL),
    ("otp", 0, "ACME", None, Priority.OTP),  # so does a service_type naming a class
    ("CMT", 0, "ACME", None, Priority.BULK),  # another service_type: the entry
    ("", 0, "Other", Priority.OTP, Priority.OTP),  # no entry matching: the account's default
    ("", 0, "Other", None, Priority.TRANSACTIONAL),  # nor a default
])  # fmt: skip
async def test_a_class_entry_gives_the_class_when_the_submit_names_none(
    front: Front, service_type: str, flag: int, sender: str, account: Priority | None,
    priority: Priority,
) -> None:
    await _with_classes(front)
    stored = await front.store.get_account(front.account_id)
    await front.store.update_account(dataclasses.replace(stored, priority=account))
    client = await bound(front.client())
    resp = await client.submit(SubmitSm(service_type=service_type, priority_flag=flag,
                                        source_addr=sender, destination_addr=DEST,
                                        short_message=b"Your code is 1234"))
    assert resp.command_status == 0
    message = await front.store.get_message(resp.message_id)  # type: ignore[attr-defined]
    assert message.priority is priority
    await client.stop()


async def test_class_entries_apply_to_data_sm_and_each_destination_of_submit_multi(
    front: Front
) -> None:
    await _with_classes(front)
    client = await bound(front.client())
    data = await client.submit(DataSm(source_addr="ACME", destination_addr=DEST,
                                      tlvs=(MESSAGE_PAYLOAD(b"Your code is 1234"),)))
    assert data.command_status == 0
    got = await front.store.get_message(data.message_id)  # type: ignore[attr-defined]
    assert got.priority is Priority.BULK
    multi = await client.submit(SubmitMulti(
        source_addr="ACME", short_message=b"hi",
        dest_addresses=(SmeAddress(1, 1, DEST), SmeAddress(1, 1, "4917012345678"),
                        SmeAddress(1, 1, "33612345678"))))  # fmt: skip
    assert multi.command_status == 0
    await client.stop()
    page = await front.store.list_messages(MessageFilter(front.account_id))
    stored = [m for m in page.messages if m.id != data.message_id]  # type: ignore[attr-defined]
    assert sorted((m.to, m.priority) for m in stored) == [
        ("33612345678", Priority.TRANSACTIONAL), ("447911123456", Priority.BULK),
        ("4917012345678", Priority.MARKETING)]
