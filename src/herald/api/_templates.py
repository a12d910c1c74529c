"""``/v1/templates``: WhatsApp message templates (docs/channels.md, "Templates").

- ``POST /v1/templates``: submit a template for Meta's review on the account's
  behalf (``{"name", "language", "category", "body", "examples"}``; an
  authentication template has no body: Meta writes it). ``201`` with the
  template and the status the provider gave it (``pending``, or ``approved``);
  ``409`` when the name and language are taken; ``422`` naming the field, or
  ``provider-refused`` with the provider's reason; nothing is kept then.
- ``GET /v1/templates``: the account's templates with their review status, kept
  current from the provider's webhooks and a periodic read of its list.
- ``PUT /v1/templates/{name}``: new content for the account's template of that
  name in ``language`` (the create's fields; ``name`` may be left out): the
  provider reviews it again, so it is ``pending`` (not sendable) until
  approved. ``200`` with the template; ``404`` not the account's; ``409``
  while its submission is under way; ``422`` as for a create.
- ``DELETE /v1/templates/{name}`` (``?language=``: that one only): deleted at
  the provider, then here; ``204``. ``404`` when the account has none of the
  name; ``422 provider-refused`` names the languages deleted before the refusal.

A chain's WhatsApp leg naming a template herald knows is refused at intake
unless the template is the account's and ``approved`` (one herald does not
know, made in Meta's tools, is sent as asked).
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

from herald.channels import ErrorClass, Rejected, TemplateSpec
from herald.channels._view import rfc3339
from herald.store import ChatTemplate, Conflict, NotFound, StoreError

from ._auth import Gate
from ._context import ApiContext
from ._messages import JSON_MEDIA_TYPE, read_json
from ._problems import ApiProblem, FieldError, store_problem

__all__ = ["MAX_TEMPLATE_REQUEST_OCTETS", "TemplateRoutes", "template_view"]

#: A template request: a 1,024-character body and its examples.
MAX_TEMPLATE_REQUEST_OCTETS: Final = 64 * 1024
_FIELDS: Final = ("name", "language", "category", "body", "examples")


def template_view(t: ChatTemplate) -> dict[str, Any]:
    return {"name": t.name, "language": t.language, "category": t.category,
            "body": t.body or None, "status": t.status, "reason": t.reason,
            "provider_id": t.provider_id, "created_at": rfc3339(t.created_at),
            "updated_at": rfc3339(t.updated_at)}


def _spec(payload: object) -> TemplateSpec:
    if not isinstance(payload, dict):
        raise ApiProblem(422, "invalid-request", "the template was refused; see errors",
                         [FieldError((), "wrong_type", "must be a JSON object")])
    unknown = sorted(set(payload) - set(_FIELDS))
    if unknown:
        raise ApiProblem(422, "invalid-request", "the template was refused; see errors",
                         [FieldError((unknown[0],), "unknown_field", f"one of {_FIELDS}")])
    errors = [FieldError((k,), "wrong_type", "must be a string") for k in _FIELDS[:4]
              if k in payload and not isinstance(payload[k], str)]
    examples = payload.get("examples", [])
    if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
        errors.append(FieldError(("examples",), "wrong_type", "must be a list of strings"))
    if errors:
        raise ApiProblem(422, "invalid-request", "the template was refused; see errors", errors)
    try:
        return TemplateSpec(payload.get("name", ""), payload.get("language", ""),
                            payload.get("category", ""), payload.get("body", ""),
                            tuple(examples))
    except ValueError as exc:
        field, _, detail = str(exc).partition(": ")
        raise ApiProblem(422, "invalid-request", "the template was refused; see errors",
                         [FieldError((field,), "invalid", detail)]) from None


def _refused(result: Rejected, what: str, **extra: object) -> ApiProblem:
    """The provider's refusal: permanent is ``422 provider-refused``, else ``503``."""
    if result.klass is ErrorClass.PERMANENT:
        return ApiProblem(422, "provider-refused", f"WhatsApp refused {what}: {result.detail}",
                          extra={"provider_code": result.provider_code, **extra})
    return ApiProblem(503, "provider-unavailable", f"WhatsApp did not take {what}"
                      f" ({result.detail}); try again", headers={"Retry-After": "30"},
                      extra=extra)


class TemplateRoutes:
    def __init__(self, ctx: ApiContext, gate: Gate) -> None:
        self._ctx = ctx
        self._gate = gate

    def _chat(self) -> Any:
        chat = self._ctx.chat
        if chat is None or not chat.manages_templates():
            raise ApiProblem(404, "not-found", "this herald does not manage WhatsApp templates"
                             " ([channels.whatsapp] business_account_id in herald.toml)")
        return chat

    async def create(self, request: Request) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        chat = self._chat()
        _, payload = await read_json(request, MAX_TEMPLATE_REQUEST_OCTETS)
        spec = _spec(payload)
        try:
            result = await chat.submit_template(account.id, spec)
        except Conflict:
            raise ApiProblem(409, "conflict", f"a template {spec.name} ({spec.language}) exists"
                             " (templates share the business account: choose another name)"
                             ) from None
        except StoreError as exc:
            raise store_problem(exc) from None
        if isinstance(result, Rejected):
            raise _refused(result, "the template")
        return Response(orjson.dumps(template_view(result)), 201,
                        {"Location": f"/v1/templates/{spec.name}"}, media_type=JSON_MEDIA_TYPE)

    async def edit(self, request: Request) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        chat = self._chat()
        name = request.path_params["name"]
        _, payload = await read_json(request, MAX_TEMPLATE_REQUEST_OCTETS)
        if isinstance(payload, dict) and payload.setdefault("name", name) != name:
            raise ApiProblem(422, "invalid-request", "the template was refused; see errors",
                             [FieldError(("name",), "invalid", "a template's name cannot"
                                         " change: it is the one in the path")])
        spec = _spec(payload)
        try:
            result = await chat.edit_template(account.id, spec)
        except NotFound:
            raise ApiProblem(404, "not-found", f"no template {spec.name} ({spec.language}) of"
                             " this account (GET /v1/templates)") from None
        except Conflict:
            raise ApiProblem(409, "conflict", f"template {spec.name} ({spec.language}) is still"
                             " being submitted; try again") from None
        except StoreError as exc:
            raise store_problem(exc) from None
        if isinstance(result, Rejected):
            raise _refused(result, "the edit")
        return Response(orjson.dumps(template_view(result)), 200, media_type=JSON_MEDIA_TYPE)

    async def delete(self, request: Request) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        chat = self._chat()
        name = request.path_params["name"]
        unknown = sorted(set(request.query_params) - {"language"})
        if unknown:
            raise ApiProblem(422, "invalid-request", "the delete was refused; see errors",
                             [FieldError((unknown[0],), "unknown_field", "only language")])
        try:
            deleted, refused = await chat.delete_templates(
                account.id, name, request.query_params.get("language"))
        except NotFound:
            raise ApiProblem(404, "not-found", f"no template {name} of this account"
                             " (GET /v1/templates)") from None
        except Conflict:
            raise ApiProblem(409, "conflict", f"template {name} is still being submitted;"
                             " try again") from None
        except StoreError as exc:
            raise store_problem(exc) from None
        if refused is not None:
            raise _refused(refused, "the delete",
                           deleted=[t.language for t in deleted])
        return Response(status_code=204)

    async def list(self, request: Request) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        self._chat()
        try:
            found = await self._ctx.store.list_chat_templates(account.id)
        except StoreError as exc:
            raise store_problem(exc) from None
        return Response(orjson.dumps({"templates": [template_view(t) for t in found]}), 200,
                        media_type=JSON_MEDIA_TYPE)
