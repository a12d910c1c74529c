"""The send request of the WhatsApp Cloud API as a JSON Schema, and a strict checker (pure).

The schema is herald's own, written from the facts of Meta's OpenAPI
description of the Cloud API (``facebook/openapi``,
``business-messaging-api_v23.0.yaml``, MIT licence, (c) Meta Platforms, Inc.):
``#/components/schemas/BaseMessageProperties``, ``TextMessage``,
``TemplateMessage``, ``TemplateObject``, ``LanguageObject`` and
``TemplateComponent``, for the message types herald sends (text, template,
authentication template). Where the description contradicts itself, this
follows the API and the description's own examples, and says so:

- ``TextMessage`` puts ``additionalProperties: false`` in the second member of
  an ``allOf``; read literally (JSON Schema 2020-12 §10.3.2.3) that refuses
  ``messaging_product`` and every base field, so no text message could pass.
  Here the two members are merged, as the description means.
- ``LanguageObject`` requires ``policy``, but the description's template
  examples send ``{"code": "en_US"}`` alone (as do clients such as pywa):
  ``policy`` is optional, and when given must be ``deterministic``.
- ``TemplateComponent.index`` has the pattern ``^[2-6, 11-14]$`` (a character
  class), which refuses the ``"0"`` of its own example: here ``^[0-9]$``
  (the description's prose: "position index of the button (0-9)").

The checker implements exactly the keywords used below and refuses a schema
with any other, so nothing is silently left unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["SEND_SCHEMAS", "SchemaViolation", "check_send_request", "validate"]

_KEYWORDS: Final = frozenset({"type", "properties", "required", "additionalProperties", "enum",
                              "items", "minLength", "maxLength", "pattern", "minItems",
                              "maxItems", "description"})


class SchemaViolation(ValueError):
    """The request does not fit the schema; ``path`` names where (``$.text.body``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


_STRING: Final = {"type": "string"}
_PARAMETER: Final = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["text", "currency", "date_time", "image", "document",
                                            "video", "payload", "action", "coupon_code"]},
        "text": {"type": "string", "maxLength": 32768},
        "payload": _STRING,
        "coupon_code": _STRING,
        "parameter_name": _STRING,
        "currency": {"type": "object"},
        "date_time": {"type": "object"},
        "image": {"type": "object"},
        "document": {"type": "object"},
        "video": {"type": "object"},
        "action": {"type": "object"},
    },
    "additionalProperties": False,
}
_BASE: Final[dict[str, Any]] = {
    "messaging_product": {"type": "string", "enum": ["whatsapp"]},
    "recipient_type": {"type": "string", "enum": ["individual", "group"]},
    "to": {"type": "string", "minLength": 1, "maxLength": 64},
    "context": {"type": "object", "properties": {"message_id": _STRING},
                "additionalProperties": False},
    "biz_opaque_callback_data": {"type": "string", "maxLength": 512},
}
_BASE_REQUIRED: Final = ["messaging_product", "recipient_type", "to", "type"]

#: ``type`` -> the schema of the whole request of that type.
SEND_SCHEMAS: Final[Mapping[str, Mapping[str, Any]]] = {
    "text": {
        "type": "object",
        "required": [*_BASE_REQUIRED, "text"],
        "properties": {
            **_BASE,
            "type": {"type": "string", "enum": ["text"]},
            "text": {
                "type": "object",
                "required": ["body"],
                "properties": {"body": {"type": "string", "minLength": 1, "maxLength": 4096},
                               "preview_url": {"type": "boolean"}},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    "template": {
        "type": "object",
        "required": [*_BASE_REQUIRED, "template"],
        "properties": {
            **_BASE,
            "type": {"type": "string", "enum": ["template"]},
            "template": {
                "type": "object",
                "required": ["name", "language"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 512},
                    "namespace": _STRING,
                    "language": {
                        "type": "object",
                        "required": ["code"],
                        "properties": {"policy": {"type": "string", "enum": ["deterministic"]},
                                       "code": {"type": "string", "minLength": 2}},
                        "additionalProperties": False,
                    },
                    "components": {
                        "type": "array",
                        "maxItems": 20,
                        "items": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {
                                "type": {"type": "string", "enum": ["header", "body", "button"]},
                                "sub_type": {"type": "string",
                                             "enum": ["quick_reply", "url", "catalog",
                                                      "copy_code", "flow"]},
                                "index": {"type": ["string", "integer"], "pattern": "^[0-9]$"},
                                "parameters": {"type": "array", "maxItems": 100,
                                               "items": _PARAMETER},
                            },
                            "additionalProperties": False,
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
}

_TYPES: Final[Mapping[str, Any]] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "integer": int,
}


def _is(value: object, name: str) -> bool:
    if name in ("integer",) and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def validate(value: object, schema: Mapping[str, Any], path: str = "$") -> None:
    """Raise :class:`SchemaViolation` at the first place ``value`` breaks ``schema``."""
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ValueError(f"schema at {path} uses keywords this checker lacks: {sorted(unknown)}")
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is(value, n) for n in names):
            raise SchemaViolation(path, f"must be {' or '.join(names)}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaViolation(path, f"must be one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise SchemaViolation(path, f"shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaViolation(path, f"longer than {schema['maxLength']}")
    if "pattern" in schema and isinstance(value, (str, int)) and not isinstance(value, bool) \
            and not re.search(schema["pattern"], str(value)):
        raise SchemaViolation(path, f"does not match {schema['pattern']}")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                raise SchemaViolation(f"{path}.{name}", "is required")
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                validate(item, properties[name], f"{path}.{name}")
            elif schema.get("additionalProperties", True) is False:
                raise SchemaViolation(f"{path}.{name}", "is not a field of this object")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise SchemaViolation(path, f"fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaViolation(path, f"more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                validate(item, schema["items"], f"{path}[{i}]")


def check_send_request(document: object) -> str:
    """The message type of a valid send request; raises :class:`SchemaViolation`."""
    if not isinstance(document, dict):
        raise SchemaViolation("$", "must be object")
    kind = document.get("type")
    schema = SEND_SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise SchemaViolation("$.type", f"must be one of {sorted(SEND_SCHEMAS)}")
    validate(document, schema)
    return str(kind)
