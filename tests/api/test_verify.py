"""The Verify API over the app: a code sent through the normal acceptance (priority
otp, tag verify, charged), kept only as a keyed hash, checked in constant time,
expiring, with limits on checks and sends; resend; conversion feedback
(docs/verify.md)."""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

import httpx
import pytest

from herald.intake import DestinationRules, Network, NumberIndex, NumberingPlan
from herald.rating import PriceList, parse_price_list
from herald.store import AccountControls, OptOutChange, PriceSide, Priority
from herald.text import Encoding, decode
from herald.verify import Autofill, VerifySettings

from .conftest import VALID_TO, Api, ApiFactory

PLAN = NumberingPlan.build([("4917", Network("262", "01", "Telekom"))])
RULES = DestinationRules(NumberIndex(PLAN), None)
SELL = parse_price_list(["destination,price\n", "+49,0.05\n"])
TELEKOM = "+491701234567"


async def _create(api: Api, **fields: Any) -> httpx.Response:
    body = {"to": VALID_TO, "app": "Acme", **fields}
    return await api.client.post("/v1/verifications", json=body, headers=api.auth)


async def _check(api: Api, vid: str, code: Any) -> httpx.Response:
    return await api.client.post(f"/v1/verifications/{vid}/check", json={"code": code},
                                 headers=api.auth)  # fmt: skip


def _code(api: Api, index: int = -1) -> str:
    """The code of an SMS herald accepted (what the phone would show)."""
    found = re.match(r"(\d+) ", _text(api, index))
    assert found is not None
    return found.group(1)


def _text(api: Api, index: int = -1) -> str:
    sms = api.accepted[index]
    return decode(sms.body, Encoding(sms.encoding))


def _wrong(code: str) -> str:
    return "".join(str((int(c) + 1) % 10) for c in code)


async def test_a_verification_sends_an_otp_sms_and_approves_its_code(api: Api) -> None:
    created = await _create(api, code_length=8, locale="de", use_case="login", ip="192.0.2.7")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "pending" and body["to"] == VALID_TO and body["channel"] == "sms"
    assert body["expires_at"] == "2027-01-15T08:10:00.000Z"  # T0 + the default 600 s
    assert created.headers["location"] == f"/v1/verifications/{body['id']}"
    (sms,) = api.accepted
    code = _code(api)
    assert len(code) == 8 and code not in created.text
    assert _text(api) == f"{code} ist Ihr Acme Bestätigungscode."
    assert (sms.priority, sms.tag, "+" + sms.to) == (Priority.OTP, "verify", VALID_TO)
    checked = await _check(api, body["id"], code)
    assert checked.json() == {"id": body["id"], "status": "approved", "remaining_checks": 4}
    got = await api.client.get(f"/v1/verifications/{body['id']}", headers=api.auth)
    assert got.json()["status"] == "approved" and code not in got.text


async def test_the_store_holds_no_code(api: Api, tmp_path: Any) -> None:
    created = await _create(api, code_length=10)
    code = _code(api)
    vid = created.json()["id"]
    v = await api.store.get_verification(vid, api.account.id)
    assert code.encode() not in v.code_hash + v.salt and code not in repr(v)
    db = sqlite3.connect(tmp_path / "data" / "herald.db")
    try:
        rows = db.execute("SELECT * FROM verifications").fetchall()
    finally:
        db.close()
    assert rows and code not in repr(rows) and code.encode() not in b"".join(
        c for r in rows for c in r if isinstance(c, bytes))


async def test_the_code_is_never_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = await _create(api)
    vid = created.json()["id"]
    code = _code(api)
    await _check(api, vid, _wrong(code))
    await api.client.post(f"/v1/verifications/{vid}/resend", headers=api.auth)
    await _check(api, vid, _code(api))
    assert caplog.records  # the flow logs something at all
    for c in (code, _code(api)):
        assert c not in caplog.text


@pytest.mark.parametrize(
    ("wrong", "then_right", "statuses", "remaining"),
    [
        (1, True, ["pending", "approved"], [4, 3]),
        (4, True, ["pending"] * 4 + ["approved"], [4, 3, 2, 1, 0]),
        # the fifth wrong code uses the last check: even the right one is refused then
        (5, True, ["pending"] * 4 + ["too_many_attempts"] * 2, [4, 3, 2, 1, 0, 0]),
        (6, False, ["pending"] * 4 + ["too_many_attempts"] * 2, [4, 3, 2, 1, 0, 0]),
    ],
)
async def test_checks_are_limited(
    api: Api, wrong: int, then_right: bool, statuses: list[str], remaining: list[int]
) -> None:
    vid = (await _create(api)).json()["id"]
    code = _code(api)
    seen = [(await _check(api, vid, _wrong(code))).json() for _ in range(wrong)]
    if then_right:
        seen.append((await _check(api, vid, code)).json())
    assert [s["status"] for s in seen] == statuses
    assert [s["remaining_checks"] for s in seen] == remaining


@pytest.mark.parametrize(
    ("ttl", "wait", "status"),
    [(600.0, 599.0, "approved"), (600.0, 600.0, "expired"), (60.0, 61.0, "expired")],
)
async def test_codes_expire(
    make_api: ApiFactory, ttl: float, wait: float, status: str
) -> None:
    api: Api = await make_api(verify=VerifySettings(ttl=ttl))
    vid = (await _create(api)).json()["id"]
    api.clock.advance(wait)
    assert (await _check(api, vid, _code(api))).json()["status"] == status
    got = await api.client.get(f"/v1/verifications/{vid}", headers=api.auth)
    assert got.json()["status"] == status
    if status == "expired":
        resent = await api.client.post(f"/v1/verifications/{vid}/resend", headers=api.auth)
        assert resent.status_code == 409 and resent.json()["verification_status"] == "expired"


async def test_a_resend_sends_a_new_code_and_the_old_one_stops_working(api: Api) -> None:
    vid = (await _create(api)).json()["id"]
    first = _code(api)
    api.clock.advance(300)
    resent = await api.client.post(f"/v1/verifications/{vid}/resend", headers=api.auth)
    assert resent.status_code == 200, resent.text
    assert resent.json()["sends"] == 2
    assert resent.json()["expires_at"] == "2027-01-15T08:15:00.000Z"  # a new 600 s
    assert len(api.accepted) == 2 and api.accepted[1].priority is Priority.OTP
    second = _code(api)
    if first != second:  # one time in a million they are equal
        assert (await _check(api, vid, first)).json()["status"] == "pending"
    assert (await _check(api, vid, second)).json()["status"] == "approved"
    sends = await api.store.verification_sends(vid, api.account.id)
    assert [s.message_id for s in sends] == [m.id for m in api.accepted]
    got = await api.client.get(f"/v1/verifications/{vid}", headers=api.auth)
    assert got.json()["messages"] == [m.id for m in api.accepted]


async def test_an_idempotent_retry_sends_no_second_code(api: Api) -> None:
    headers = {**api.auth, "Idempotency-Key": "signup-42"}
    body = {"to": VALID_TO, "app": "Acme"}
    first = await api.client.post("/v1/verifications", json=body, headers=headers)
    again = await api.client.post("/v1/verifications", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and len(api.accepted) == 1


async def test_sends_per_number_per_hour(make_api: ApiFactory) -> None:
    api: Api = await make_api(verify=VerifySettings(sends_per_hour=3))
    vid = (await _create(api)).json()["id"]
    assert (await api.client.post(f"/v1/verifications/{vid}/resend",
                                  headers=api.auth)).status_code == 200  # fmt: skip
    assert (await _create(api)).status_code == 201
    refused = await _create(api)
    assert refused.status_code == 429, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["to"]
    assert refused.headers["retry-after"] == "3600"
    resend = await api.client.post(f"/v1/verifications/{vid}/resend", headers=api.auth)
    assert resend.status_code == 429
    assert len(api.accepted) == 3  # the refused ones sent nothing
    assert (await _create(api, to="+14155550100")).status_code == 201  # another number
    api.clock.advance(3601)
    assert (await _create(api)).status_code == 201


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["to"]),
        ({"to": "12"}, ["to"]),
        ({"to": VALID_TO, "channel": "voice"}, ["channel"]),
        ({"to": VALID_TO, "code_length": 3}, ["code_length"]),
        ({"to": VALID_TO, "code_length": 11}, ["code_length"]),
        ({"to": VALID_TO, "code_length": "6"}, ["code_length"]),
        ({"to": VALID_TO, "locale": "xx"}, ["locale"]),
        ({"to": VALID_TO, "use_case": "spam"}, ["use_case"]),
        ({"to": VALID_TO, "app": ""}, ["app"]),
        ({"to": VALID_TO, "app": "x" * 33}, ["app"]),
        ({"to": VALID_TO, "app": "Acme\x00"}, ["app"]),  # no store keeps U+0000 alike
        ({"to": VALID_TO, "app": "Acme\nPay"}, ["app"]),
        ({"to": VALID_TO, "ip": "300.1.1.1"}, ["ip"]),
        ({"to": VALID_TO, "ip_type": "cloud"}, ["ip_type"]),
        ({"to": VALID_TO, "asn": "AS-1"}, ["asn"]),
        ({"to": VALID_TO, "asn": 64500}, ["asn"]),
        ({"to": VALID_TO, "device_id": 5}, ["device_id"]),
        ({"to": VALID_TO, "user_id": "u" * 129}, ["user_id"]),
        ({"to": VALID_TO, "code": "123456"}, ["code"]),
        ({"to": 5, "channel": "fax", "locale": 1}, ["to", "channel", "locale"]),
    ],
)
async def test_bad_input_names_each_field(
    api: Api, body: dict[str, Any], fields: list[str]
) -> None:
    answer = await api.client.post("/v1/verifications", json=body, headers=api.auth)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert sorted(e["field"] for e in answer.json()["errors"]) == sorted(fields)
    assert api.accepted == []


@pytest.mark.parametrize(
    "code", [None, 123456, "12a456", "123", "12345678901", "\uff11\uff12\uff13\uff14"])
async def test_bad_codes_name_the_field(api: Api, code: Any) -> None:
    vid = (await _create(api)).json()["id"]
    answer = await _check(api, vid, code)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["code"]
    v = await api.store.get_verification(vid, api.account.id)
    assert v.checks == 0  # not counted


async def test_another_accounts_verification_is_not_found(
    api: Api, make_api: ApiFactory
) -> None:
    vid = (await _create(api)).json()["id"]
    other: Api = await make_api(name="other")
    for answer in (
        await other.client.get(f"/v1/verifications/{vid}", headers=other.auth),
        await _check(other, vid, _code(api)),
        await other.client.post(f"/v1/verifications/{vid}/resend", headers=other.auth),
        await other.client.get("/v1/verifications/nope", headers=other.auth),
    ):
        assert answer.status_code == 404
    assert (await api.store.get_verification(vid, api.account.id)).checks == 0


async def test_an_opted_out_number_is_refused_like_a_message(api: Api) -> None:
    digits = VALID_TO.removeprefix("+")
    await api.store.change_opt_outs(api.account.id, [OptOutChange(digits, True, 0.0, "cli")])
    answer = await _create(api)
    assert answer.status_code == 422, answer.text
    assert [(e["field"], e["code"]) for e in answer.json()["errors"]] == [("to", "opted_out")]
    assert api.accepted == []
    assert (await _create(api, to="+14155550100")).status_code == 201  # only that number


@pytest.fixture
async def billed(make_api: ApiFactory) -> Api:
    lists: dict[int, PriceList] = {}
    made: Api = await make_api(destinations=lambda: RULES, prices=lists.get)
    lists[made.account.id] = SELL
    await made.store.put_price_list(SELL.stored(PriceSide.SELL, str(made.account.id), 0.0))
    return made


async def _balance(api: Api) -> int:
    found = await api.store.get_balance(api.account.id)
    assert found is not None
    return found.balance


async def test_each_send_is_charged_and_a_broke_account_gets_402(billed: Api) -> None:
    api = billed
    await api.store.adjust_balance(api.account.id, add=100_000)  # 0.10: two sends
    created = await _create(api, to=TELEKOM)
    assert created.status_code == 201, created.text
    assert created.json()["price"]["amount"] == "0.050000"
    assert await _balance(api) == 50_000
    vid = created.json()["id"]
    resent = await api.client.post(f"/v1/verifications/{vid}/resend", headers=api.auth)
    assert resent.status_code == 200 and resent.json()["price"]["amount"] == "0.050000"
    assert await _balance(api) == 0
    code = _code(api)
    broke = await api.client.post(f"/v1/verifications/{vid}/resend", headers=api.auth)
    assert broke.status_code == 402, broke.text
    refused = await _create(api, to=TELEKOM)
    assert refused.status_code == 402
    assert await _balance(api) == 0 and len(api.accepted) == 2
    # the refused resend was taken back: the code of the last SMS still works
    v = await api.store.get_verification(vid, api.account.id)
    assert v.sends == 2
    assert len(await api.store.verification_sends(vid, api.account.id)) == 2
    assert (await _check(api, vid, code)).json()["status"] == "approved"


async def test_conversions(api: Api, make_api: ApiFactory) -> None:
    sent = await api.send({"to": VALID_TO, "from": "ACME", "text": "Your code is 4711"})
    mid = sent.json()["id"]
    answer = await api.client.post(f"/v1/messages/{mid}/converted", headers=api.auth)
    assert answer.status_code == 204 and answer.content == b""
    assert await api.store.get_conversion(mid, api.account.id) == api.clock.now
    other: Api = await make_api(name="other")
    assert (await other.client.post(f"/v1/messages/{mid}/converted",
                                    headers=other.auth)).status_code == 404  # fmt: skip
    assert (await api.client.post("/v1/messages/nope/converted",
                                  headers=api.auth)).status_code == 404  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        (VerifySettings(), 422),  # "Verify" is not among the account's senders
        (VerifySettings(accounts={"acme": Autofill(sender="ACME")}), 201),
    ],
)
async def test_the_accounts_sender_controls_apply(
    make_api: ApiFactory, settings: VerifySettings, status: int
) -> None:
    api: Api = await make_api(verify=settings)
    await api.store.set_controls(api.account.id, AccountControls(senders=("ACME",)))
    answer = await _create(api)
    assert answer.status_code == status, answer.text
    if status == 422:
        (error,) = answer.json()["errors"]
        assert (error["field"], error["code"]) == ("from", "sender_not_allowed")
        assert "[verify.accounts.acme] sender" in error["detail"]
    else:
        assert api.accepted[0].sender == "ACME"
