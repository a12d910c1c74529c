"""The OpenAPI document describes every endpoint, and /docs renders it."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import Route

from .conftest import Api


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_every_endpoint_is_documented(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = {  # every route the app serves (FastAPI's and plain Starlette ones)
        (route.path, method)
        for route in api.app.routes
        if isinstance(route, Route | APIRoute) and route.include_in_schema
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert documented == served
    assert served >= {
        ("/v1/messages", "POST"), ("/v1/messages/batch", "POST"), ("/v1/messages", "GET"),
        ("/v1/messages/{message_id}", "GET"), ("/healthz", "GET"), ("/metrics", "GET"),
    }  # fmt: skip
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


async def test_request_bodies_errors_and_security_are_described(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    request = schemas["MessageRequest"]
    assert set(request["required"]) == {"to", "from"}
    assert request["additionalProperties"] is False
    assert request["properties"]["encoding"]["enum"] == ["auto", "gsm7", "ucs2", "binary"]
    assert "in" in schemas["ProblemField"]["properties"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    send = doc["paths"]["/v1/messages"]["post"]
    assert send["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MessageRequest"
    }
    assert send["security"] == [{"bearer": []}]
    assert any(p["name"] == "Idempotency-Key" for p in send["parameters"])
    for code in ("400", "401", "413", "415", "422", "429", "503"):
        assert "application/problem+json" in send["responses"][code]["content"], code
    listing = doc["paths"]["/v1/messages"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "status", "to", "reference", "since", "until", "limit", "cursor", "type",
    }
    assert "HTTPValidationError" not in schemas  # validation errors are problems too
    batch = doc["paths"]["/v1/messages/batch"]["post"]
    assert batch["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchResponse"
    }
    assert {"MessageView", "BatchResponse", "BatchEntry", "Problem"} <= set(schemas)


async def test_docs_page(api: Api) -> None:
    response = await api.client.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text and "swagger" in response.text.lower()
