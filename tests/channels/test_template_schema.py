"""The Cloud API fake checks template management (create, list, edit, delete)
against the OpenAPI description, as it checks sends: herald's own requests
pass, a malformed one is answered as Meta does (400, a Graph API error object)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from herald.channels import TemplateSpec, TemplateState
from herald.channels.clients import WhatsAppClient, WhatsAppSettings
from herald.sim.chat import FakeWhatsApp, FakeWhatsAppConfig, SchemaViolation, serve_app
from herald.sim.chat._schema import validate
from herald.sim.chat._template_schema import EDIT_SCHEMA, TEMPLATE_SCHEMA

TOKEN, SECRET, WABA = "EAAtpl-token", "tpl-secret", "102290129340398"
PATH = f"/v23.0/{WABA}/message_templates"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Two request examples of the description (createAuthenticationTemplateWOtpCopyCodeButton).
META_AUTH = {"category": "AUTHENTICATION", "language": "en_US",
             "name": "authentication_code_copy_code_button", "components": [
                 {"add_security_recommendation": True, "type": "BODY"},
                 {"code_expiration_minutes": 10, "type": "FOOTER"},
                 {"buttons": [{"otp_type": "COPY_CODE", "text": "Copy Code", "type": "OTP"}],
                  "type": "BUTTONS"}]}
META_OFFER = {"category": "MARKETING", "language": "en_US",
              "name": "limited_time_offer_tuscan_getaway_2023", "components": [
                  {"example": {"header_handle": ["4::aW1hZ2UvanBn:ARYy"]}, "format": "IMAGE",
                   "type": "HEADER"},
                  {"example": {"body_text": [["Mark", "Tuscan Getaway package", "800"]]},
                   "text": "Hi {{1}}! For a limited time only you can get our {{2}} for as low"
                           " as {{3}}.", "type": "BODY"},
                  {"text": "Offer valid until May 31, 2023", "type": "FOOTER"},
                  {"buttons": [{"phone_number": "16467043595", "text": "Call",
                                "type": "PHONE_NUMBER"},
                               {"example": ["summer2023"], "text": "Shop Now", "type": "URL",
                                "url": "https://example.com/shop?promo={{1}}"}],
                   "type": "BUTTONS"}]}
ORDER = TemplateSpec("order_update", "en_US", "utility", "Your order {{1}} has shipped",
                     ("A-1042",))


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeWhatsApp, str]]:
    fake = FakeWhatsApp(FakeWhatsAppConfig(token=TOKEN, app_secret=SECRET))
    async with serve_app(fake.app) as port:
        yield fake, f"http://127.0.0.1:{port}"


def test_the_descriptions_own_examples_pass() -> None:
    for example in (META_AUTH, META_OFFER):
        validate(example, TEMPLATE_SCHEMA)
    validate({k: META_OFFER[k] for k in ("category", "components")}, EDIT_SCHEMA)


async def test_heralds_template_requests_pass_the_check(served: tuple[FakeWhatsApp, str]
                                                        ) -> None:  # fmt: skip
    fake, base = served
    client = WhatsAppClient(WhatsAppSettings(base, TOKEN, SECRET, business_account_id=WABA))
    try:
        order = await client.create_template(ORDER)
        login = await client.create_template(TemplateSpec("login_code", "en", "authentication"))
        assert isinstance(order, TemplateState) and isinstance(login, TemplateState)
        listed, complete = await client.list_templates()
        assert {t.name for t in listed} == {"order_update", "login_code"} and complete
        fake.review("order_update", "en_US", "APPROVED")
        edited = TemplateSpec("order_update", "en_US", "utility",
                              "Order {{1}} is on its way", ("A-1042",))
        assert await client.edit_template(order.provider_id, edited) is None
        assert fake.templates[("order_update", "en_US")]["status"] == "PENDING"  # reviewed again
        assert fake.templates[("order_update", "en_US")]["components"][0]["text"] == \
            "Order {{1}} is on its way"
        assert await client.delete_template("login_code", login.provider_id) is None
        assert await client.delete_template("order_update") is None
        assert fake.templates == {}
    finally:
        await client.aclose()
    assert fake.schema_failures == []


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({k: v for k, v in META_AUTH.items() if k != "category"}, "$.category"),
    ({**META_AUTH, "category": "PROMOTION"}, "$.category"),
    ({**META_AUTH, "colour": "red"}, "$.colour"),
    ({**META_AUTH, "components": []}, "$.components"),
    ({**META_AUTH, "components": [{"type": "BODY", "text": 42}]}, "$.components[0].text"),
    ({**META_AUTH, "components": [{"type": "CAROUSEL"}]}, "$.components[0].type"),
    ({**META_AUTH, "components": [{"type": "BUTTONS", "buttons": [
        {"type": "OTP", "otp_type": "TWO_TAP"}]}]}, "$.components[0].buttons[0].otp_type"),
]


@pytest.mark.parametrize(("body", "where"), BAD_CREATES)
async def test_a_malformed_create_is_refused_as_meta_does(served: tuple[FakeWhatsApp, str],
                                                          body: dict[str, Any],
                                                          where: str) -> None:
    fake, base = served
    async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
        answer = await http.post(PATH, json=body, headers=AUTH)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == 100 and error["type"] == "OAuthException" and error["message"]
    assert error["error_data"]["details"].startswith(f"{where}:")
    assert fake.schema_failures and fake.schema_failures[-1].startswith(f"{where}:")
    assert fake.templates == {}


@pytest.mark.parametrize(("method", "path", "query", "body", "where"), [
    ("GET", PATH, {"limit": "500"}, None, "?limit"),
    ("GET", PATH, {"colour": "red"}, None, "?colour"),
    ("DELETE", PATH, {}, None, "?name"),
    ("DELETE", PATH, {"name": "order_update", "hsm_id": "abc"}, None, "?hsm_id"),
    ("POST", "/v23.0/100000000000001", {}, {"components": "BODY"}, "$.components"),
    ("POST", "/v23.0/100000000000001", {}, {}, "$"),
    ("POST", "/v23.0/100000000000001", {}, {"components": [{"type": "BODY", "text": "x"}],
                                            "allow_category_change": True},
     "$.allow_category_change"),
])
async def test_malformed_list_edit_and_delete_are_refused(
        served: tuple[FakeWhatsApp, str], method: str, path: str, query: dict[str, str],
        body: dict[str, Any] | None, where: str) -> None:
    fake, base = served
    async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
        answer = await http.request(method, path, params=query, json=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == 100
    assert fake.schema_failures[-1].startswith(f"{where}:"), fake.schema_failures


def test_a_name_given_twice_in_a_query_is_refused() -> None:
    from herald.sim.chat._template_schema import DELETE_QUERY, check_query

    with pytest.raises(SchemaViolation, match=r"\?name"):
        check_query([("name", "a"), ("name", "b")], DELETE_QUERY)
