"""The admin API's routing endpoints over real HTTP: rules replaced whole (every
problem named; buy prices are the connectors' buy lists, refused here), connectors
disabled and enabled, each change in the audit log."""

from __future__ import annotations

from pathlib import Path

import httpx

from herald.api._admin_models import (
    AdminAudit,
    AdminConnectorState,
    AdminRoutesImported,
    AdminRouting,
)
from herald.api._models import Problem

from .conftest import Served

EXAMPLES = Path(__file__).parents[2] / "examples"
ROUTES = '[[rule]]\nname = "de"\ncountries = ["DE"]\nleast_cost = ["eu-1", "eu-2"]\n'


def _fields(answer: httpx.Response) -> dict[str, str]:
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
    body = answer.json()
    Problem.model_validate(body)
    return {e["field"]: e["detail"] for e in body.get("errors", [])}


async def test_routes_are_replaced_listed_and_removed(served: Served) -> None:
    client, reader = served.admin_client, served.client(served.read_key)
    empty = AdminRouting.model_validate((await reader.get("/v1/admin/routes")).json())
    assert (empty.source, empty.rules, empty.generation) == (None, [], 0)
    answer = await client.put("/v1/admin/routes", json={"routes": ROUTES, "source": "ticket-42"})
    assert answer.status_code == 200, answer.text
    done = AdminRoutesImported.model_validate(answer.json())
    assert (done.rules, done.generation) == (1, 1)
    shown = AdminRouting.model_validate((await reader.get("/v1/admin/routes")).json())
    assert (shown.source, shown.rules) == ("ticket-42", ["de"])
    stored = await served.store.get_routes()
    assert stored is not None and (stored.rules, stored.source) == (ROUTES, "ticket-42")
    assert (await reader.put("/v1/admin/routes", json={"routes": ROUTES})).status_code == 403
    assert (await client.delete("/v1/admin/routes")).status_code == 204
    assert (await client.delete("/v1/admin/routes")).status_code == 404
    assert await served.store.get_routes() is None


async def test_bad_routes_or_a_price_list_are_refused_whole_naming_each_problem(
    served: Served,
) -> None:
    client = served.admin_client
    await client.put("/v1/admin/routes", json={"routes": ROUTES})
    bad = '[[rule]]\nname = "r"\nsplit = {a = 0}\n[[rule]]\nfailover = ["a"]\n'
    answer = await client.put("/v1/admin/routes", json={"routes": bad})
    assert answer.status_code == 422
    assert _fields(answer) == {
        "routes.rule[0].split.a": "must be a whole weight of 1..10000",
        "routes.rule[1].name": "is required (it names the rule in every decision)"}
    unknown = '[[rule]]\nname = "r"\nfailover = ["eu-1", "nosuch"]\n'
    answer = await client.put("/v1/admin/routes", json={"routes": unknown})
    assert answer.status_code == 422  # dispatch would refuse it and keep the rules in force
    assert _fields(answer) == {
        "routes.rule[0]": "names connectors herald.toml does not have: nosuch"}
    answer = await client.put("/v1/admin/routes", json={"routes": "[[rule"})
    assert answer.status_code == 422 and list(_fields(answer)) == ["routes"]
    answer = await client.put("/v1/admin/routes", json={
        "routes": ROUTES, "prices": "connector,mcc,mnc,country,price\neu-1,,,DE,0.0110\n"})
    assert answer.status_code == 422
    fields = _fields(answer)
    assert list(fields) == ["prices"]
    assert "herald prices import --connector" in fields["prices"]
    assert [e["code"] for e in answer.json()["errors"]] == ["unknown_field"]
    answer = await client.put("/v1/admin/routes", json={"prices": "x"})
    assert answer.status_code == 422 and _fields(answer) == {"routes": "is required"}
    assert (await client.put("/v1/admin/routes", content=b"x")).status_code == 415
    stored = await served.store.get_routes()
    assert stored is not None and stored.rules == ROUTES  # the rules in force stay


async def test_connectors_are_disabled_and_enabled(served: Served) -> None:
    client = served.admin_client
    answer = await client.post("/v1/admin/connectors/eu-1/disable",
                               json={"reason": "receipts stopped"})
    assert answer.status_code == 200, answer.text
    state = AdminConnectorState.model_validate(answer.json())
    assert (state.connector, state.disabled, state.reason) == ("eu-1", True, "receipts stopped")
    assert state.generation == await served.store.routing_generation()
    shown = AdminRouting.model_validate(
        (await client.get("/v1/admin/routes")).json())
    assert [(c.connector, c.disabled) for c in shown.connectors] == [("eu-1", True)]
    enabled = await client.post("/v1/admin/connectors/eu-1/enable")
    assert AdminConnectorState.model_validate(enabled.json()).disabled is False
    assert (await client.post("/v1/admin/connectors/nowhere/disable")).status_code == 404
    bad = await client.post("/v1/admin/connectors/eu-2/disable", json={"reason": 7})
    assert bad.status_code == 422 and list(_fields(bad)) == ["reason"]
    refused = await served.client(served.read_key).post("/v1/admin/connectors/eu-1/disable")
    assert refused.status_code == 403
    audit = AdminAudit.model_validate((await client.get("/v1/admin/audit")).json())
    assert [(e.action, e.target) for e in reversed(audit.entries) if e.actor == "key:ops"] == [
        ("connector.disable", "connector:eu-1"), ("connector.enable", "connector:eu-1")]
