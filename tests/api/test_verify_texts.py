"""Verify: an account's own texts by locale (and its default), autofill lines
after them, filled by replacement only; cancel (docs/verify.md)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from herald.verify import Autofill, VerifySettings

from .conftest import Api, ApiFactory
from .test_verify import _check, _code, _create, _text


async def _put(api: Api, locale: str, body: Any) -> httpx.Response:
    return await api.client.put(f"/v1/verify/templates/{locale}", json=body, headers=api.auth)


async def test_an_accounts_texts_by_locale_and_its_default(make_api: ApiFactory) -> None:
    settings = VerifySettings(accounts={"acme": Autofill(android_app_hash="FA+9qCX9VSu",
                                                         ios_domain="acme.example")})
    api: Api = await make_api(verify=settings)
    assert (await _put(api, "pt-BR", {"text": "Seu código {app}: {code}"})).status_code == 200
    created = await _create(api, locale="pt-BR")
    assert created.status_code == 201, created.text
    found = re.search(r"\d{6}", _text(api))
    assert found is not None
    code = found.group()
    assert _text(api) == (f"Seu código Acme: {code}\n\nFA+9qCX9VSu\n@acme.example #{code}")
    # No text of its own for "de": the built-in one; then its default wins.
    await _create(api, locale="de", to="+14155550100")
    assert _text(api).endswith("ist Ihr Acme Bestätigungscode.\n\nFA+9qCX9VSu\n@acme.example #"
                               + _code(api))  # fmt: skip
    assert (await _put(api, "default", {"text": "{code} - {app}"})).status_code == 200
    await _create(api, locale="de", to="+14155550101")
    assert _text(api).startswith(f"{_code(api)} - Acme\n")
    listed = await api.client.get("/v1/verify/templates", headers=api.auth)
    assert listed.json() == {"templates": {"default": "{code} - {app}",
                                           "pt-BR": "Seu código {app}: {code}"}}
    removed = await api.client.delete("/v1/verify/templates/default", headers=api.auth)
    assert removed.status_code == 204
    await _create(api, locale="en", to="+14155550102")
    assert _text(api).startswith(f"{_code(api)} is your Acme verification code.")
    # A locale the account has no text of and herald none either: named as bad input.
    refused = await _create(api, locale="it")
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["locale"]


@pytest.mark.parametrize(("locale", "body", "field"), [
    ("en", {"text": "no code here"}, "text"),
    ("en", {"text": "{code} {code}"}, "text"),
    ("en", {"text": "{code} {code.__class__}"}, "text"),  # never str.format
    ("en", {"text": "{code}\n@evil.example #{code}"}, "text"),
    ("en", {"text": "x" * 321 + "{code}"}, "text"),
    ("en", {"text": 5}, "text"),
    ("en", {"text": "{code}\x00"}, "text"),
    ("en", {"text": "your\tcode {code}"}, "text"),
    ("en", {"text": "{code}", "colour": 1}, "colour"),
    ("EN_us", {"text": "{code}"}, "locale"),
])  # fmt: skip
async def test_bad_texts_name_the_field(api: Api, locale: str, body: Any, field: str) -> None:
    answer = await _put(api, locale, body)
    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert (await api.client.get("/v1/verify/templates", headers=api.auth)).json() == {
        "templates": {}}


async def test_an_app_name_cannot_smuggle_the_code_placeholder(api: Api) -> None:
    await _put(api, "en", {"text": "{app} says {code}"})
    await _create(api, app="{code}")
    assert _text(api) == f"{{code}} says {_text(api).split()[-1]}"


async def test_cancel_stops_the_code(api: Api) -> None:
    created = await _create(api)
    vid = created.json()["id"]
    canceled = await api.client.post(f"/v1/verifications/{vid}/cancel", headers=api.auth)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert (await _check(api, vid, _code(api))).json()["status"] == "canceled"
    again = await api.client.post(f"/v1/verifications/{vid}/cancel", headers=api.auth)
    assert again.status_code == 409
    assert again.json()["verification_status"] == "canceled"
    resent = await api.client.post(f"/v1/verifications/{vid}/resend", headers=api.auth)
    assert resent.status_code == 409
    missing = await api.client.post("/v1/verifications/nope/cancel", headers=api.auth)
    assert missing.status_code == 404
