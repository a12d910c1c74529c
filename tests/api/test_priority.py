"""A message's priority class and tag over HTTP: request, tag, class entry, account default."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from herald.routes import LiveClasses
from herald.store import Priority, SQLiteStore, StoredRoutes

from .conftest import Api, ApiFactory, Clock, message


@pytest.mark.parametrize("fast_send", [True, False])
@pytest.mark.parametrize(("fields", "account", "priority", "tag"), [
    ({}, None, "transactional", None),  # nothing said
    ({}, Priority.BULK, "bulk", None),  # the account's default
    ({"priority": "otp"}, Priority.BULK, "otp", None),
    ({"tag": "otp"}, Priority.MARKETING, "otp", "otp"),  # a tag naming a class implies it
    ({"tag": "promo-may"}, Priority.MARKETING, "marketing", "promo-may"),
    ({"tag": "otp", "priority": "bulk"}, None, "bulk", "otp"),  # priority beats the tag
    ({"priority": "MARKETING"}, None, "marketing", None),
])  # fmt: skip
async def test_the_class_of_a_message(make_api: ApiFactory, fast_send: bool,
                                      fields: dict[str, Any], account: Priority | None,
                                      priority: str, tag: str | None) -> None:
    api: Api = await make_api(fast_send=fast_send)
    await api.store.update_account(dataclasses.replace(api.account, priority=account))
    response = await api.send(message(**fields))
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["priority"], body["tag"]) == (priority, tag)
    stored = await api.store.get_message(body["id"])
    assert (stored.priority.label, stored.tag) == (priority, tag)
    shown = (await api.client.get(f"/v1/messages/{body['id']}", headers=api.auth)).json()
    assert (shown["priority"], shown["tag"]) == (priority, tag)


async def test_a_batch_gives_each_message_its_class(api: Api) -> None:
    response = await api.client.post("/v1/messages/batch", headers=api.auth, json={
        "messages": [message(priority="otp"), message(tag="news")]})
    assert response.status_code in (200, 202), response.text
    ids = [r["id"] for r in response.json()["results"]]
    got = [await api.store.get_message(i) for i in ids]
    assert [(m.priority, m.tag) for m in got] == [(Priority.OTP, None),
                                                  (Priority.TRANSACTIONAL, "news")]


@pytest.mark.parametrize(("fields", "errors"), [
    ({"priority": "urgent"}, {"priority": "invalid_choice"}),
    ({"priority": 1}, {"priority": "wrong_type"}),
    ({"tag": "Promo May"}, {"tag": "invalid_format"}),
    ({"tag": "x" * 33}, {"tag": "invalid_format"}),
    ({"tag": ""}, {"tag": "invalid_format"}),
    ({"tag": 5}, {"tag": "wrong_type"}),
    ({"tag": "bad tag", "priority": "soon"}, {"tag": "invalid_format",
                                              "priority": "invalid_choice"}),
])  # fmt: skip
async def test_bad_classes_and_tags_are_named(api: Api, fields: dict[str, Any],
                                              errors: dict[str, str]) -> None:
    response = await api.send(message(**fields))
    assert response.status_code == 422, response.text
    got = {e["field"]: e["code"] for e in response.json()["errors"]}
    assert got == errors


#: ``[[classes]]`` entries (docs/routing.md): acme's ACME messages are bulk,
#: anyone's tagged news marketing.
CLASSES = """
[[classes]]
name = "acme-bulk"
accounts = ["acme"]
senders = ["ACME"]
priority = "bulk"

[[classes]]
tags = ["news"]
priority = "marketing"
"""


async def _with_classes(store: SQLiteStore, clock: Clock) -> LiveClasses:
    await store.put_routes(StoredRoutes(CLASSES, "routes.toml", clock()))
    classes = LiveClasses(store)
    assert await classes.refresh()
    return classes


@pytest.mark.parametrize("fast_send", [True, False])
@pytest.mark.parametrize(("fields", "account", "priority"), [
    ({}, None, "bulk"),  # the entry
    ({}, Priority.OTP, "bulk"),  # the entry beats the account's default
    ({"priority": "otp"}, Priority.MARKETING, "otp"),  # the request beats the entry
    ({"tag": "otp"}, None, "otp"),  # so does a tag naming a class
    ({"tag": "news"}, None, "bulk"),  # the first entry matching
    ({"from": "Other", "tag": "news"}, Priority.OTP, "marketing"),
    ({"from": "Other"}, Priority.OTP, "otp"),  # no entry matching: the account's default
    ({"from": "Other"}, None, "transactional"),  # nor a default
])  # fmt: skip
async def test_a_class_entry_gives_the_class_when_the_request_names_none(
    make_api: ApiFactory, store: SQLiteStore, clock: Clock, fast_send: bool,
    fields: dict[str, Any], account: Priority | None, priority: str,
) -> None:
    api: Api = await make_api(fast_send=fast_send, classes=await _with_classes(store, clock))
    await api.store.update_account(dataclasses.replace(api.account, priority=account))
    response = await api.send(message(**fields))
    assert response.status_code == 202, response.text
    assert response.json()["priority"] == priority
    stored = await api.store.get_message(response.json()["id"])
    assert stored.priority.label == priority


async def test_class_entries_apply_to_a_batch_and_a_test_request(
    make_api: ApiFactory, store: SQLiteStore, clock: Clock
) -> None:
    api = await make_api(classes=await _with_classes(store, clock))
    response = await api.client.post("/v1/messages/batch", headers=api.auth, json={
        "messages": [message(), message(**{"from": "Other"}), message(priority="otp")]})
    assert response.status_code in (200, 202), response.text
    got = [await api.store.get_message(r["id"]) for r in response.json()["results"]]
    assert [m.priority for m in got] == [Priority.BULK, Priority.TRANSACTIONAL, Priority.OTP]
    tried = await api.send(message(test=True))
    assert tried.status_code == 200 and tried.json()["priority"] == "bulk", tried.text
