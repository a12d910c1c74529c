"""The fake's send-schema checker: strict, and it checks every keyword it is given."""

from __future__ import annotations

import pytest

from herald.sim.chat import SEND_SCHEMAS, SchemaViolation, check_send_request
from herald.sim.chat._schema import validate

TEXT = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "447700900123",
        "type": "text", "text": {"body": "hi"}}


def test_a_valid_text_request_passes_and_names_its_type() -> None:
    assert check_send_request(TEXT) == "text"


@pytest.mark.parametrize(("change", "where"), [
    ({"messaging_product": "sms"}, "$.messaging_product"),
    ({"recipient_type": "broadcast"}, "$.recipient_type"),
    ({"text": {"body": ""}}, "$.text.body"),
    ({"text": {"body": "x" * 4097}}, "$.text.body"),
    ({"text": {"body": "hi", "preview_url": "yes"}}, "$.text.preview_url"),
    ({"to": 447700900123}, "$.to"),
])
def test_each_broken_field_is_named(change: dict[str, object], where: str) -> None:
    with pytest.raises(SchemaViolation) as caught:
        check_send_request({**TEXT, **change})
    assert caught.value.path == where


def test_a_button_index_takes_the_0_of_metas_own_example_but_not_10() -> None:
    template = {**{k: v for k, v in TEXT.items() if k != "text"}, "type": "template",
                "template": {"name": "otp", "language": {"code": "en_US"}, "components": [
                    {"type": "button", "sub_type": "url", "index": "0", "parameters": []}]}}
    assert check_send_request(template) == "template"
    template["template"]["components"][0]["index"] = "10"  # type: ignore[index]
    with pytest.raises(SchemaViolation, match="index"):
        check_send_request(template)


def test_a_schema_keyword_the_checker_lacks_is_refused_not_ignored() -> None:
    with pytest.raises(ValueError, match="oneOf"):
        validate("x", {"oneOf": [{"type": "string"}]})
    for schema in SEND_SCHEMAS.values():  # the shipped schemas use only known keywords
        validate({}, {"type": "object"})
        assert schema["type"] == "object"
