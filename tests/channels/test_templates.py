"""/v1/templates: WhatsApp templates submitted for review, their status kept
from the provider's webhooks and list, and chains refused a template that is
not approved (docs/channels.md, "Templates"); against the Cloud API fake."""

from __future__ import annotations

from typing import Any

import pytest
from tests.channels.conftest import SMS, Rig, sms_chain

from herald.channels import TemplateSpec

ORDER = {"name": "order_update", "language": "en_US", "category": "utility",
         "body": "Your order {{1}} has shipped", "examples": ["A-1042"]}


async def _create(rig: Rig, body: dict[str, Any]) -> Any:
    return await rig.http.post("/v1/templates", json=body)


async def test_a_template_is_submitted_reviewed_and_then_sent(rig: Rig) -> None:
    answer = await _create(rig, ORDER)
    assert answer.status_code == 201, answer.text
    assert (answer.json()["status"], answer.json()["category"]) == ("pending", "utility")
    sent = rig.fake.templates[("order_update", "en_US")]
    assert sent["category"] == "UTILITY"
    assert sent["components"] == [{"type": "BODY", "text": "Your order {{1}} has shipped",
                                   "example": {"body_text": [["A-1042"]]}}]
    leg = {"channel": "whatsapp", "template": {"name": "order_update", "language": "en_US",
                                               "parameters": ["A-1042"]}}
    pending = await rig.send(sms_chain(leg, SMS))
    assert pending.status_code == 422, pending.text
    assert [(e["field"], e["code"]) for e in pending.json()["errors"]] == [
        ("channels[0].template", "template_not_approved")]
    rig.fake.review("order_update", "en_US", "APPROVED")
    assert await rig.fake.template_update("order_update", "en_US") == 200
    listed = (await rig.http.get("/v1/templates")).json()["templates"]
    assert [(t["name"], t["status"]) for t in listed] == [("order_update", "approved")]
    approved = await rig.send(sms_chain(leg, SMS))
    assert approved.status_code == 202, approved.text


async def test_a_rejection_is_read_from_the_providers_list(rig: Rig) -> None:
    assert (await _create(rig, ORDER)).status_code == 201
    rig.fake.review("order_update", "en_US", "REJECTED", "INVALID_FORMAT")
    rig.clock.advance(61)  # the service reads the list every 60 s
    await rig.steps(1)
    (listed,) = (await rig.http.get("/v1/templates")).json()["templates"]
    assert (listed["status"], listed["reason"]) == ("rejected", "INVALID_FORMAT")


async def test_a_name_is_taken_once_and_an_auth_template_has_metas_body(rig: Rig) -> None:
    assert (await _create(rig, ORDER)).status_code == 201
    again = await _create(rig, ORDER)
    assert again.status_code == 409
    auth = await _create(rig, {"name": "login_code", "language": "en", "category":
                               "authentication"})
    assert auth.status_code == 201, auth.text
    assert rig.fake.templates[("login_code", "en")]["components"][1] == {
        "type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]}


@pytest.mark.parametrize(("body", "field"), [
    ({**ORDER, "name": "Order Update"}, "name"),
    ({**ORDER, "category": "promo"}, "category"),
    ({**ORDER, "examples": []}, "examples"),
    ({**ORDER, "body": "Order {{2}}"}, "body"),
    ({**ORDER, "colour": "red"}, "colour"),
    ({**ORDER, "examples": "A-1042"}, "examples"),
])
async def test_a_bad_template_is_refused_naming_its_field(rig: Rig, body: dict[str, Any],
                                                          field: str) -> None:
    answer = await _create(rig, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field
    assert rig.fake.templates == {}  # nothing reached the provider


async def test_a_template_the_provider_refuses_is_not_kept(rig: Rig) -> None:
    rig.fake.templates[("order_update", "en_US")] = {"id": "1", "status": "APPROVED"}
    answer = await _create(rig, ORDER)  # the provider has one of this name already
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"].endswith("provider-refused")
    assert (await rig.http.get("/v1/templates")).json()["templates"] == []


def test_a_spec_checks_its_placeholders() -> None:
    with pytest.raises(ValueError, match="examples"):
        TemplateSpec("t", "en", "utility", "Hi {{1}} and {{2}}", ("a",))


async def _approved(rig: Rig, body: dict[str, Any]) -> None:
    assert (await _create(rig, body)).status_code == 201
    rig.fake.review(body["name"], body["language"], "APPROVED")
    assert await rig.fake.template_update(body["name"], body["language"]) == 200


async def test_an_edit_is_reviewed_again_before_it_is_sent(rig: Rig) -> None:
    await _approved(rig, ORDER)
    edit = {"language": "en_US", "category": "utility", "body": "Order {{1}} is on its way",
            "examples": ["A-1042"]}
    answer = await rig.http.put("/v1/templates/order_update", json=edit)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["body"]) == ("pending",
                                                               "Order {{1}} is on its way")
    at_meta = rig.fake.templates[("order_update", "en_US")]
    assert at_meta["status"] == "PENDING"
    assert at_meta["components"][0]["text"] == "Order {{1}} is on its way"
    leg = {"channel": "whatsapp", "template": {"name": "order_update", "language": "en_US",
                                               "parameters": ["A-1042"]}}
    assert (await rig.send(sms_chain(leg, SMS))).status_code == 422  # not approved again yet
    rig.fake.review("order_update", "en_US", "APPROVED")
    assert await rig.fake.template_update("order_update", "en_US") == 200
    assert (await rig.send(sms_chain(leg, SMS))).status_code == 202
    assert rig.fake.schema_failures == []  # herald's requests fit the description


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/v1/templates/no_such", {"language": "en_US", "category": "utility", "body": "x"}, 404),
    ("/v1/templates/order_update", {"language": "de", "category": "utility", "body": "x"}, 404),
    ("/v1/templates/order_update", {"name": "order_news", "language": "en_US",
                                    "category": "utility", "body": "x"}, 422),
])
async def test_an_edit_of_what_the_account_does_not_have_is_refused(
        rig: Rig, path: str, body: dict[str, Any], status: int) -> None:
    await _approved(rig, ORDER)
    answer = await rig.http.put(path, json=body)
    assert answer.status_code == status, answer.text
    assert rig.fake.edits == 0


async def test_an_edit_the_provider_refuses_changes_nothing(rig: Rig) -> None:
    await _approved(rig, ORDER)
    del rig.fake.templates[("order_update", "en_US")]  # deleted in Meta's tools
    answer = await rig.http.put("/v1/templates/order_update", json={
        "language": "en_US", "category": "utility", "body": "Order {{1}} is on its way",
        "examples": ["A-1042"]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"].endswith("provider-refused")
    (kept,) = (await rig.http.get("/v1/templates")).json()["templates"]
    assert (kept["status"], kept["body"]) == ("approved", "Your order {{1}} has shipped")


async def test_a_delete_by_name_goes_at_the_provider_and_here(rig: Rig) -> None:
    await _approved(rig, ORDER)
    await _approved(rig, {**ORDER, "language": "de"})
    assert (await rig.http.delete("/v1/templates/order_update",
                                  params={"language": "de"})).status_code == 204
    assert set(rig.fake.templates) == {("order_update", "en_US")}
    assert (await rig.http.delete("/v1/templates/order_update")).status_code == 204
    assert rig.fake.templates == {}
    assert (await rig.http.get("/v1/templates")).json()["templates"] == []
    again = await rig.http.delete("/v1/templates/order_update")
    assert again.status_code == 404, again.text
    assert (await rig.http.delete("/v1/templates/order_update",
                                  params={"lang": "de"})).status_code == 422
    assert rig.fake.schema_failures == []


async def test_a_template_deleted_in_metas_tools_is_marked_deleted_and_frees_its_name(
        rig: Rig) -> None:
    await _approved(rig, ORDER)
    await _approved(rig, {**ORDER, "language": "de"})
    del rig.fake.templates[("order_update", "en_US")]  # deleted in Meta's own tools
    rig.clock.advance(61)  # the service reads the list every 60 s
    await rig.steps(1)
    listed = {t["language"]: t for t in (await rig.http.get("/v1/templates")).json()["templates"]}
    assert (listed["en_US"]["status"], listed["en_US"]["reason"]) == (
        "deleted", "not at the provider")
    assert listed["de"]["status"] == "approved"  # still there
    leg = {"channel": "whatsapp", "template": {"name": "order_update", "language": "en_US",
                                               "parameters": ["A-1042"]}}
    refused = await rig.send(sms_chain(leg, SMS))
    assert refused.status_code == 422, refused.text  # at intake: no provider call
    assert refused.json()["errors"][0]["code"] == "template_not_approved"
    assert rig.fake.answers == []
    again = await _create(rig, ORDER)  # its name is free again
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "pending"
    # The webhook's DELETED says the same; a delete here then asks the provider nothing.
    rig.fake.review("order_update", "de", "DELETED")
    assert await rig.fake.template_update("order_update", "de") == 200
    del rig.fake.templates[("order_update", "de")]
    gone = await rig.http.delete("/v1/templates/order_update", params={"language": "de"})
    assert gone.status_code == 204, gone.text
    assert [t["language"] for t in (await rig.http.get("/v1/templates")).json()["templates"]] \
        == ["en_US"]
