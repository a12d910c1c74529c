"""WhatsApp message templates: what herald asks Meta to review, and what it reads back (pure).

Facts this follows (Meta's public Cloud API reference, "Message templates"):

- Create: ``POST /{version}/{whatsapp-business-account-id}/message_templates``
  with ``{name, language, category, components}``; the answer carries the
  template's ``id``, its ``status`` (``PENDING`` while Meta reviews it,
  ``APPROVED``, ``REJECTED``) and ``category``.
- List: ``GET`` on the same path, ``{"data": [{id, name, language, status,
  category, rejected_reason?}], "paging": {"cursors": {"after"}, "next"?}}``.
- Edit: ``POST /{version}/{template-id}`` with new ``components`` (and
  ``category``); answered ``{"success": true}``; the template is reviewed again.
- Delete: ``DELETE`` on the create path with ``?name=`` (every language of
  the name) and ``&hsm_id=`` (the one template of that id); ``{"success": true}``.
- Review outcomes also come as webhooks: ``changes[].field ==
  "message_template_status_update"``, ``value = {event, message_template_id,
  message_template_name, message_template_language, reason}``.
- Names are lower case letters, digits and ``_`` (at most 512); an
  authentication template has no free body: Meta writes it ("<code> is your
  verification code") with a copy-code button.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

from herald.channels._codes import ErrorClass, whatsapp_error
from herald.channels._port import MalformedWebhook, Rejected

__all__ = [
    "TEMPLATE_CATEGORIES",
    "TemplateSpec",
    "TemplateState",
    "parse_done_answer",
    "parse_template_answer",
    "parse_template_list",
    "parse_template_updates",
    "template_body",
    "template_edit_body",
    "template_path",
    "templates_path",
]

TEMPLATE_CATEGORIES: Final = ("marketing", "utility", "authentication")
#: Characters of a template body (Meta: 1,024).
MAX_TEMPLATE_BODY: Final = 1024
_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A template to submit for review. ``examples``: one sample value per
    ``{{n}}`` of ``body`` (Meta asks for them)."""

    name: str
    language: str
    category: str
    body: str = ""
    examples: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError("name: lower-case letters, digits and _ (at most 512)")
        if not _LANGUAGE.fullmatch(self.language):
            raise ValueError("language: a code such as en or en_US")
        if self.category not in TEMPLATE_CATEGORIES:
            raise ValueError(f"category: one of {', '.join(TEMPLATE_CATEGORIES)}")
        if self.category == "authentication":
            if self.body or self.examples:
                raise ValueError("body: an authentication template's text is Meta's own")
            return
        if not 1 <= len(self.body) <= MAX_TEMPLATE_BODY:
            raise ValueError(f"body: 1..{MAX_TEMPLATE_BODY} characters")
        wanted = sorted({int(n) for n in _PLACEHOLDER.findall(self.body)})
        if wanted != list(range(1, len(wanted) + 1)):
            raise ValueError("body: placeholders are {{1}}, {{2}}, ... in order")
        if len(self.examples) != len(wanted):
            raise ValueError(f"examples: one per placeholder ({len(wanted)})")


@dataclass(frozen=True, slots=True)
class TemplateState:
    """A template as the provider reports it; ``status`` in lower case."""

    provider_id: str
    name: str
    language: str
    status: str
    category: str | None = None
    reason: str | None = None


def templates_path(version: str, business_account_id: str) -> str:
    if not business_account_id.isascii() or not business_account_id.isdigit():
        raise ValueError("a WhatsApp business account id is decimal digits")
    return f"/{version}/{business_account_id}/message_templates"


def template_path(version: str, provider_id: str) -> str:
    """The path of one template (its edit): ``/{version}/{template-id}``."""
    if not provider_id.isascii() or not provider_id.isdigit():
        raise ValueError("a WhatsApp template id is decimal digits")
    return f"/{version}/{provider_id}"


def _components(spec: TemplateSpec) -> list[dict[str, Any]]:
    components: list[dict[str, Any]]
    if spec.category == "authentication":
        components = [{"type": "BODY", "add_security_recommendation": True},
                      {"type": "BUTTONS", "buttons": [{"type": "OTP",
                                                       "otp_type": "COPY_CODE"}]}]
    else:
        body: dict[str, Any] = {"type": "BODY", "text": spec.body}
        if spec.examples:
            body["example"] = {"body_text": [list(spec.examples)]}
        components = [body]
    return components


def template_body(spec: TemplateSpec) -> bytes:
    """The create request: a template for Meta to review."""
    return orjson.dumps({"name": spec.name, "language": spec.language,
                         "category": spec.category.upper(), "components": _components(spec)})


def template_edit_body(spec: TemplateSpec) -> bytes:
    """The edit request (``POST /{version}/{template-id}``): new content, reviewed
    again. Name and language are the template's own and are not sent."""
    return orjson.dumps({"category": spec.category.upper(), "components": _components(spec)})


def _state(item: object, name: str | None = None,
           language: str | None = None) -> TemplateState | None:
    if not isinstance(item, dict):
        return None
    provider_id, status = item.get("id"), item.get("status")
    name = item.get("name", name)
    language = item.get("language", language)
    if not all(isinstance(v, str) and v for v in (provider_id, status, name, language)):
        return None
    category, reason = item.get("category"), item.get("rejected_reason")
    return TemplateState(str(provider_id), str(name), str(language), str(status).lower(),
                         category.lower() if isinstance(category, str) else None,
                         reason if isinstance(reason, str) and reason != "NONE" else None)


def _document(body: bytes) -> object:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _refusal(status: int, document: object) -> Rejected:
    """A Graph API error answer as a refusal (permanent: Meta refused the
    request; else try again later)."""
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("error_user_msg") or error.get("message") if isinstance(error, dict) \
        else None
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    meaning = whatsapp_error(code if code is not None else -1)
    if 400 <= status < 500 and meaning.klass is ErrorClass.TRANSIENT:
        meaning = whatsapp_error(100)  # a 4xx the table does not know: the request's fault
    detail = str(message)[:300] if message else f"HTTP {status}"
    return Rejected.of(meaning, code, detail)


def parse_template_answer(spec: TemplateSpec, status: int, body: bytes) -> TemplateState | Rejected:
    """The answer to a create: the template under review (or approved at once),
    or the refusal (permanent: Meta refused this template; else retry later)."""
    document = _document(body)
    if 200 <= status < 300:
        found = _state(document, spec.name, spec.language)
        if found is not None:
            return found
    return _refusal(status, document)


def parse_done_answer(status: int, body: bytes) -> Rejected | None:
    """The answer to an edit or a delete: None when done (``{"success": true}``),
    else the refusal (as :func:`parse_template_answer`'s)."""
    document = _document(body)
    if 200 <= status < 300 and isinstance(document, dict) and document.get("success") is True:
        return None
    return _refusal(status, document)


def parse_template_list(body: bytes) -> tuple[list[TemplateState], str | None]:
    """One page of a list: its templates and the cursor of the next page (None: last)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("the template list is not JSON") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise ValueError("the template list has no data list")
    found = [s for s in (_state(item) for item in data) if s is not None]
    paging = document.get("paging")
    after = None
    if isinstance(paging, dict) and paging.get("next"):
        cursors = paging.get("cursors")
        after = cursors.get("after") if isinstance(cursors, dict) else None
    return found, after if isinstance(after, str) and after else None


def parse_template_updates(document: dict[str, Any]) -> list[TemplateState]:
    """The review outcomes in a (verified, parsed) webhook document."""
    found: list[TemplateState] = []
    entries = document.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict) or change.get("field") != \
                    "message_template_status_update":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                raise MalformedWebhook("a template update without a value object")
            state = _state({"id": str(value.get("message_template_id", "")),
                            "status": value.get("event"),
                            "name": value.get("message_template_name"),
                            "language": value.get("message_template_language"),
                            "rejected_reason": value.get("reason")})
            if state is None:
                raise MalformedWebhook("a template update without id, event, name or language")
            found.append(state)
    return found
