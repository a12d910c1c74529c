"""A message's priority class and tag over HTTP: request, tag, account default."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from herald.store import Priority

from .conftest import Api, ApiFactory, message


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
