"""The template-management requests of the WhatsApp Cloud API as JSON Schemas (pure).

Written, like the send schema (``_schema``), from Meta's OpenAPI description
of the Cloud API (``facebook/openapi``, ``business-messaging-api_v23.0.yaml``,
MIT licence, (c) Meta Platforms, Inc.), for the template calls herald makes:

- create: ``POST /{Version}/{WABA-ID}/message_templates`` (its request body);
- list: ``GET`` on the same path (its query parameters);
- edit: ``POST /{Version}/{TEMPLATE_ID}`` (its request body);
- delete: ``DELETE /{Version}/{WABA-ID}/message_templates?name=&hsm_id=``.

The description's template schemas are generated from its examples: they name
fields and their types, and require none and refuse none. Read literally they
would pass any object, so here:

- the fields of a body are those the schema names plus those its examples
  carry (``add_security_recommendation``, ``code_expiration_minutes``, the OTP
  and URL buttons' fields, ``header_text``, ``header_handle``); any other
  field is refused, as the send schema refuses one;
- what every example of the create request carries is required (``name``,
  ``language``, ``category``, ``components``); an edit names what it
  changes (an empty one is refused);
- the words the examples use are the enums: categories ``MARKETING``,
  ``UTILITY``, ``AUTHENTICATION``; component types ``HEADER``, ``BODY``,
  ``FOOTER``, ``BUTTONS`` (the Flow examples write ``body`` in lower case:
  both cases pass); button types and ``otp_type`` (``COPY_CODE``, ``ONE_TAP``);
- the list's query takes ``name`` (its own parameter) and the cursor paging
  the description gives its other list edges (``fields``, ``limit`` 1..100,
  ``after``, ``before``); the delete's takes ``name`` (required: herald
  deletes by name) and ``hsm_id``. Query values are strings.

Real clients send a few fields of the Graph API reference that the
description leaves out; refusing them would refuse what Meta takes. Those
``pywa`` (an independent client, PyPI) sends are taken too, and only those
(``tests/channels/test_whatsapp_pywa.py``): ``parameter_format``
(``POSITIONAL``, ``NAMED``) and ``message_send_ttl_seconds`` on a create, and
the list's filters (``status``, ``category``, ``language``, ``content``,
``name_or_content``, ``quality_score``) and ``summary``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from herald.sim.chat._schema import SchemaViolation, validate

__all__ = ["DELETE_QUERY", "EDIT_SCHEMA", "LIST_QUERY", "TEMPLATE_SCHEMA", "check_query"]

_STRING: Final = {"type": "string"}
_STRINGS: Final = {"type": "array", "items": _STRING}


def _either_case(*words: str) -> list[str]:
    return [*words, *(w.lower() for w in words)]


_BUTTON: Final = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["QUICK_REPLY", "URL", "PHONE_NUMBER", "OTP", "MPM",
                                            "FLOW"]},
        "text": _STRING,
        "url": _STRING,
        "phone_number": _STRING,
        "example": _STRINGS,
        "otp_type": {"type": "string", "enum": ["COPY_CODE", "ONE_TAP"]},
        "autofill_text": _STRING,
        "package_name": _STRING,
        "signature_hash": _STRING,
        "flow_id": _STRING,
        "flow_name": _STRING,
        "flow_json": _STRING,
        "flow_action": _STRING,
        "navigate_screen": _STRING,
    },
    "additionalProperties": False,
}
_COMPONENT: Final = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": _either_case("HEADER", "BODY", "FOOTER", "BUTTONS")},
        "format": {"type": "string", "enum": ["TEXT", "IMAGE", "VIDEO", "DOCUMENT",
                                              "LOCATION"]},
        "text": _STRING,
        "add_security_recommendation": {"type": "boolean"},
        "code_expiration_minutes": {"type": "integer"},
        "buttons": {"type": "array", "minItems": 1, "items": _BUTTON},
        "example": {
            "type": "object",
            "properties": {"body_text": {"type": "array", "items": _STRINGS},
                           "header_text": _STRINGS,
                           "header_handle": _STRINGS},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
_FIELDS: Final[dict[str, Any]] = {
    "name": {"type": "string", "minLength": 1},
    "language": {"type": "string", "minLength": 2},
    "category": {"type": "string", "enum": ["MARKETING", "UTILITY", "AUTHENTICATION"]},
    "components": {"type": "array", "minItems": 1, "items": _COMPONENT},
    # Not in the description; sent by pywa (module docstring).
    "parameter_format": {"type": "string", "enum": ["POSITIONAL", "NAMED"]},
    "message_send_ttl_seconds": {"type": "integer"},
}

#: ``POST /{Version}/{WABA-ID}/message_templates``: a template to review.
TEMPLATE_SCHEMA: Final[Mapping[str, Any]] = {
    "type": "object",
    "required": ["name", "language", "category", "components"],
    "properties": _FIELDS,
    "additionalProperties": False,
}
#: ``POST /{Version}/{TEMPLATE_ID}``: new content for a template (reviewed again).
EDIT_SCHEMA: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": _FIELDS,
    "additionalProperties": False,
}
#: The query of ``GET /{Version}/{WABA-ID}/message_templates``.
LIST_QUERY: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {"name": _STRING, "fields": _STRING,
                   "limit": {"type": "string", "pattern": "^(100|[1-9][0-9]?)$"},
                   "after": _STRING, "before": _STRING,
                   # Not in the description; sent by pywa (module docstring).
                   **{k: _STRING for k in ("summary", "status", "category", "language",
                                           "content", "name_or_content", "quality_score")}},
    "additionalProperties": False,
}
#: The query of ``DELETE /{Version}/{WABA-ID}/message_templates``.
DELETE_QUERY: Final[Mapping[str, Any]] = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1},
                   "hsm_id": {"type": "string", "pattern": "^[0-9]+$"}},
    "additionalProperties": False,
}


def check_query(pairs: list[tuple[str, str]], schema: Mapping[str, Any]) -> dict[str, str]:
    """A query string's parameters against ``schema``; a name given twice is refused.
    Raises :class:`SchemaViolation` (paths ``?name``)."""
    query: dict[str, str] = {}
    for name, value in pairs:
        if name in query:
            raise SchemaViolation(f"?{name}", "given more than once")
        query[name] = value
    try:
        validate(query, schema, "?")
    except SchemaViolation as exc:
        raise SchemaViolation(exc.path.replace("?.", "?"), str(exc).partition(": ")[2]) from None
    return query
