"""The admin API's billing endpoints over real HTTP: price lists, balances, CDRs, margins."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import httpx
import pytest

from herald.api._admin_models import (
    AdminBalance,
    AdminMargins,
    AdminPriceImport,
    AdminPriceList,
    AdminPriceLists,
)
from herald.billing import CDR_COLUMNS
from herald.cli import main
from herald.ids import SortableIdGenerator
from herald.rating import parse_price_list
from herald.store import (
    NewMessage,
    PriceSide,
    RefundPolicy,
    SegmentRecord,
    Source,
    Status,
    StatusUpdate,
)

from .conftest import Served
from .test_admin_api import _fields

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
SELL = b"destination,price,comment\n# Germany\n26201,0.040,Telekom\n+49,0.05,\ndefault,0.0900,\n"
CSV = {"Content-Type": "text/csv"}


async def _put(client: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await client.put(f"/v1/admin/prices/{path}", content=body, headers=CSV)


async def _balance(served: Served) -> tuple[int, int, RefundPolicy] | None:
    found = await served.store.get_balance(1)  # acme
    return None if found is None else (found.balance, found.credit_limit, found.refund_policy)


# -- price lists -----------------------------------------------------------------------


async def test_price_lists_are_put_read_listed_and_removed(served: Served) -> None:
    client = served.admin_client
    answer = await _put(client, "account/acme", SELL)
    assert answer.status_code == 200, answer.text
    done = AdminPriceImport.model_validate(answer.json())
    assert (done.side, done.owner, done.entries, done.generation) == ("sell", "acme", 3, 1)
    shown = AdminPriceList.model_validate((await client.get(
        "/v1/admin/prices/account/acme")).json())  # fmt: skip
    assert [(e.destination, e.price) for e in shown.entries] == [
        ("26201", "0.04"), ("+49", "0.05"), ("default", "0.09")]
    as_csv = await client.get("/v1/admin/prices/account/acme", headers={"Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text == "destination,price\n26201,0.04\n+49,0.05\ndefault,0.09\n"
    # What GET writes, PUT reads back: the connector's buy list.
    assert (await _put(client, "connector/eu-1", as_csv.content)).status_code == 200
    listed = AdminPriceLists.model_validate((await served.client(served.read_key).get(
        "/v1/admin/prices")).json())  # fmt: skip
    assert listed.generation == 2
    assert [(i.side, i.owner, i.entries) for i in listed.price_lists] == [
        ("sell", "acme", 3), ("buy", "eu-1", 3)]
    assert (await client.delete("/v1/admin/prices/account/acme")).status_code == 204
    assert [s.owner for s in await served.store.price_lists(PriceSide.SELL)] == []
    assert (await client.delete("/v1/admin/prices/account/acme")).status_code == 404
    assert (await client.get("/v1/admin/prices/account/acme")).status_code == 404
    assert (await client.get("/v1/admin/prices/connector/eu-1")).status_code == 200
    for path in ("account/nobody", "planet/acme"):
        assert (await _put(client, path, SELL)).status_code == 404, path
        assert (await client.get(f"/v1/admin/prices/{path}")).status_code == 404, path


async def test_a_bad_price_file_is_refused_whole_naming_its_lines(served: Served) -> None:
    client = served.admin_client
    assert (await _put(client, "account/acme", SELL)).status_code == 200
    bad = b"destination,price\n+49,0.05\n+49,0.06\n4917,1\n+44,0.1\n"
    answer = await _put(client, "account/acme", bad)
    assert answer.status_code == 422
    assert _fields(answer) == {"line 3": "invalid_line", "line 4": "invalid_line"}
    assert answer.json()["errors"][0]["in"] == "file"
    assert "already given on line 2" in answer.json()["errors"][0]["detail"]
    latin = await _put(client, "account/acme", b"destination,price\n+49,0.05\n+44,\xff\n")
    assert _fields(latin) == {"line 3": "invalid_line"}
    # Nothing stored: the list put first is in force.
    [stored] = await served.store.price_lists(PriceSide.SELL)
    assert len(stored.entries) == 3
    assert (await client.put("/v1/admin/prices/account/acme", json={})).status_code == 415


# -- balances ----------------------------------------------------------------------------


async def test_balances_are_topped_up_and_set(served: Served) -> None:
    client = served.admin_client
    start = AdminBalance.model_validate((await client.get(
        "/v1/admin/accounts/acme/balance")).json())  # fmt: skip
    assert (start.balance, start.credit_limit, start.refund_policy, start.billed) == (
        "0.000000", "0.000000", "none", False)
    topped = await client.post("/v1/admin/accounts/acme/balance/top-up",
                               json={"amount": "12.5"})
    assert topped.status_code == 200, topped.text
    assert topped.json()["balance"] == "12.500000"
    await client.post("/v1/admin/accounts/acme/balance/top-up",
                      json={"amount": "0.000001"})  # exact to the micro-unit
    changed = await client.patch("/v1/admin/accounts/acme/balance",
                                 json={"credit_limit": "2.25", "refund_policy": "rejected"})
    assert changed.status_code == 200, changed.text
    view = AdminBalance.model_validate(changed.json())
    assert (view.balance, view.credit_limit, view.available, view.refund_policy) == (
        "12.500001", "2.250000", "14.750001", "rejected")
    assert await _balance(served) == (12_500_001, 2_250_000, RefundPolicy.REJECTED)
    await _put(client, "account/acme", SELL)
    billed = await served.client(served.read_key).get("/v1/admin/accounts/acme/balance")
    assert billed.json()["billed"] is True
    assert (await client.get("/v1/admin/accounts/nobody/balance")).status_code == 404
    assert (await client.post("/v1/admin/accounts/nobody/balance/top-up",
                              json={"amount": "1"})).status_code == 404  # fmt: skip


async def test_bad_amounts_name_the_field_and_change_nothing(served: Served) -> None:
    client = served.admin_client
    top_up = "/v1/admin/accounts/acme/balance/top-up"
    for body, expected in (
        ({"amount": 12.5}, {"amount": "wrong_type"}),  # a JSON number is not exact
        ({"amount": "-1"}, {"amount": "out_of_range"}),
        ({"amount": "0"}, {"amount": "out_of_range"}),
        ({"amount": "0.0000001"}, {"amount": "not_valid"}),
        ({"amount": "1e3"}, {"amount": "not_valid"}),
        ({"amount": "ten"}, {"amount": "not_valid"}),
        ({"amount": "1000000000000"}, {"amount": "not_valid"}),
        ({}, {"amount": "required"}),
        ({"amount": "1", "currency": "EUR"}, {"currency": "unknown_field"}),
    ):
        answer = await client.post(top_up, json=body)
        assert answer.status_code == 422, body
        assert _fields(answer) == expected, body
    answer = await client.patch("/v1/admin/accounts/acme/balance",
                                json={"credit_limit": "-1", "refund_policy": "sometimes"})
    assert _fields(answer) == {"credit_limit": "out_of_range",
                               "refund_policy": "invalid_choice"}  # fmt: skip
    assert _fields(await client.patch("/v1/admin/accounts/acme/balance", json={
        "credit_limit": 5, "refund_policy": None})) == {
        "credit_limit": "wrong_type", "refund_policy": "wrong_type"}  # fmt: skip
    nothing = await client.patch("/v1/admin/accounts/acme/balance", json={})
    assert nothing.status_code == 200 and nothing.json()["credit_limit"] == "0.000000"
    assert await _balance(served) is None  # no balance was even created


async def test_read_only_and_account_keys_change_nothing(served: Served) -> None:
    for key, code in ((served.read_key, 403), (served.account_key, 403)):
        client = served.client(key)
        for method, path, kwargs in (
            ("PUT", "/v1/admin/prices/account/acme", {"content": SELL, "headers": CSV}),
            ("DELETE", "/v1/admin/prices/account/acme", {}),
            ("POST", "/v1/admin/accounts/acme/balance/top-up", {"json": {"amount": "5"}}),
            ("PATCH", "/v1/admin/accounts/acme/balance", {"json": {"credit_limit": "5"}}),
        ):
            answer = await client.request(method, path, **kwargs)
            assert answer.status_code == code, (key[:3], method, path)
    reader = served.client(served.read_key)
    assert (await reader.get("/v1/admin/accounts/acme/balance")).status_code == 200
    assert (await served.client(served.account_key).get(
        "/v1/admin/accounts/acme/balance")).status_code == 403  # fmt: skip
    assert await served.store.price_lists(PriceSide.SELL) == ()
    assert await _balance(served) is None


async def test_every_billing_change_is_audited_with_its_amounts(served: Served) -> None:
    client = served.admin_client
    await _put(client, "account/acme", SELL)
    await _put(client, "connector/eu-2", b"destination,price\ndefault,0.01\n")
    await client.post("/v1/admin/accounts/acme/balance/top-up", json={"amount": "100.25"})
    await client.patch("/v1/admin/accounts/acme/balance", json={"credit_limit": "10"})
    await client.patch("/v1/admin/accounts/acme/balance", json={"credit_limit": "10.0"})  # same
    await client.delete("/v1/admin/prices/connector/eu-2")
    await client.post("/v1/admin/accounts/acme/balance/top-up", json={"amount": "-5"})  # refused
    page = (await served.client(served.read_key).get("/v1/admin/audit")).json()
    mine = [(e["action"], e["target"], e["changes"]) for e in reversed(page["entries"])
            if e["actor"] == "key:ops"]  # fmt: skip
    assert mine == [
        ("prices.import", "account:acme", {"list": "sell", "entries": 3, "generation": 1}),
        ("prices.import", "connector:eu-2", {"list": "buy", "entries": 1, "generation": 2}),
        ("balance.top_up", "account:acme", {"add": "100.250000", "balance": "100.250000"}),
        ("balance.set", "account:acme", {"credit_limit": "10.000000"}),
        ("prices.remove", "connector:eu-2", {"list": "buy", "generation": 3}),
    ]
    text = json.dumps(page)
    for secret in served.secrets:
        assert secret.rsplit("_", 1)[-1] not in text


# -- CDRs and margins --------------------------------------------------------------------


async def _charged(served: Served) -> None:
    """Three charged messages of acme: two to +49 (one sent by eu-1, one failed),
    one to +44 sent by eu-2; eu-1 has a buy list, eu-2 none."""
    store = served.store
    sell = parse_price_list(["destination,price\n", "+49,0.05\n", "default,0.1\n"])
    await store.put_price_list(sell.stored(PriceSide.SELL, "1", T0))
    buy = parse_price_list(["destination,price\n", "+49,0.02\n"])
    await store.put_price_list(buy.stored(PriceSide.BUY, "eu-1", T0))
    await store.adjust_balance(1, add=10**6)
    ids = SortableIdGenerator()
    made = []
    for n, to in enumerate(("491701234567", "491701234568", "447911123456")):
        m = NewMessage(id=ids.new_id(T0 + n), account_id=1, source=Source.HTTP, to=to,
                       sender="ACME", body=b"hi", encoding="gsm7", data_coding=0, segments=1,
                       accepted_at=T0 + n, expires_at=T0 + 3600)  # fmt: skip
        rating = sell.rate(to, None, 1)
        assert rating is not None
        await store.accept([m], charges=[rating.charge()])
        made.append(m.id)
    await store.claim(10, T0 + 5, 30)
    await store.record_segments([SegmentRecord(made[0], 0, "eu-1", "A", "a", T0 + 6)])
    await store.record_segments([SegmentRecord(made[2], 0, "eu-2", "B", "b", T0 + 6)])
    await store.update_statuses([StatusUpdate(made[1], Status.FAILED, T0 + 6)])


async def test_cdrs_are_exported_as_the_cli_writes_them(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    await _charged(served)
    period = {"from": "2027-01-15", "to": "2027-01-16"}
    answer = await served.client(served.read_key).get("/v1/admin/cdrs", params=period)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == list(CDR_COLUMNS) and len(rows) == 4
    assert [(r[1], r[3], r[9], r[10], r[11]) for r in rows[1:]] == [
        ("acme", "+49", "eu-1", "0.020000", "sent"), ("acme", "+49", "", "", "failed"),
        ("acme", "+44", "eu-2", "", "sent")]
    data = Path(served.store.config.path).parent
    status = await asyncio.to_thread(main, ["cdr", "export", "--from", "2027-01-15", "--to",
                                            "2027-01-16", "--data-dir", str(data)])
    assert status == 0
    assert capsys.readouterr().out == answer.text  # the same CSV, byte for byte
    other = await served.client(served.read_key).get(
        "/v1/admin/cdrs", params={**period, "account": "acme", "from": str(T0 + 1)})
    assert len(other.text.splitlines()) == 3  # header and the two accepted from T0 + 1
    empty = await served.client(served.read_key).get(
        "/v1/admin/cdrs", params={"from": "2027-02-01", "to": "2027-03-01"})
    assert empty.text == ",".join(CDR_COLUMNS) + "\n"


async def test_margins_by_account_connector_and_country(served: Served) -> None:
    await _charged(served)
    client = served.client(served.read_key)
    period = {"from": "2027-01-15T00:00:00Z", "to": "2027-01-16T00:00:00+00:00"}
    by_connector = AdminMargins.model_validate((await client.get(
        "/v1/admin/margins", params={**period, "by": "connector"})).json())  # fmt: skip
    assert [(r.key, r.messages, r.revenue, r.cost, r.unpriced) for r in by_connector.rows] == [
        ("(not sent)", 1, "0.050000", "0.000000", 0),
        ("eu-1", 1, "0.050000", "0.020000", 0),
        ("eu-2", 1, "0.100000", "0.000000", 1)]
    total = by_connector.total
    assert (total.messages, total.revenue, total.cost, total.margin, total.margin_percent) == (
        3, "0.200000", "0.020000", "0.180000", "90.0")
    by_account = (await client.get("/v1/admin/margins", params=period)).json()
    assert by_account["by"] == "account" and [r["key"] for r in by_account["rows"]] == ["acme"]
    by_country = (await client.get("/v1/admin/margins",
                                   params={**period, "by": "country"})).json()  # fmt: skip
    assert [r["key"] for r in by_country["rows"]] == ["+44", "+49"]
    nothing = (await client.get("/v1/admin/margins", params={
        "from": "2027-02-01", "to": "2027-03-01"})).json()  # fmt: skip
    assert nothing["rows"] == [] and nothing["total"]["margin_percent"] is None


async def test_bad_periods_name_the_parameter(served: Served) -> None:
    client = served.client(served.read_key)
    for path in ("/v1/admin/cdrs", "/v1/admin/margins"):
        for params, name, code in (
            ({"to": "2027-01-16"}, "from", "required"),
            ({"from": "2027-01-16"}, "to", "required"),
            ({"from": "yesterday", "to": "2027-01-16"}, "from", "not_valid"),
            ({"from": "2027-01-15T08:00", "to": "2027-01-16"}, "from", "not_valid"),
            ({"from": "2027-01-16", "to": "2027-01-15"}, "to", "out_of_range"),
            ({"from": "2027-01-15", "to": "9" * 101}, "to", "too_long"),
        ):
            answer = await client.get(path, params=params)
            assert answer.status_code == 422, (path, params)
            assert _fields(answer) == {name: code}, (path, params)
            assert answer.json()["errors"][0]["in"] == "query"
        unknown = await client.get(path, params={"from": "2027-01-15", "to": "2027-01-16",
                                                 "account": "nobody"})  # fmt: skip
        assert unknown.status_code == 404
    assert _fields(await client.get("/v1/admin/margins", params={
        "from": "2027-01-15", "to": "2027-01-16", "by": "planet"})) == {
        "by": "invalid_choice"}  # fmt: skip


async def test_amounts_are_documented_as_strings(served: Served) -> None:
    doc = (await served.client().get("/openapi.json")).json()
    top_up = doc["paths"]["/v1/admin/accounts/{name}/balance/top-up"]["post"]
    schema = top_up["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["amount"]["type"] == "string"
    prices = doc["paths"]["/v1/admin/prices/{owner}/{name}"]
    assert "text/csv" in prices["put"]["requestBody"]["content"]
    assert "text/csv" in prices["get"]["responses"]["200"]["content"]
    assert "text/csv" in doc["paths"]["/v1/admin/cdrs"]["get"]["responses"]["200"]["content"]
