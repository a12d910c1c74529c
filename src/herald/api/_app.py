"""The FastAPI application: routes, error translation, health, metrics, OpenAPI."""

from __future__ import annotations

import json
import logging
from enum import Enum
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client import Counter as PromCounter
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herald import __version__
from herald.store import StoreError, StoreUnavailable

from ._admin import install_admin
from ._auth import Gate
from ._chains import ChainRoutes
from ._context import ApiContext, Upstreams
from ._fast import SEND_PATH, FastSend
from ._fraud import FraudRoutes, install_fraud
from ._messages import MessageRoutes
from ._models import (
    BatchRequest,
    BatchResponse,
    CancelledList,
    Health,
    MessageList,
    MessageRequest,
    MessageView,
)
from ._models import Problem as ProblemModel
from ._problems import (
    PROBLEM_MEDIA_TYPE,
    ApiProblem,
    internal_error,
    problem_response,
    pydantic_field_errors,
    shutting_down,
    store_problem,
)
from ._templates import TemplateRoutes
from ._verify import VerifyRoutes, install_verify

__all__ = ["create_app"]

log = logging.getLogger("herald.api")

_DESCRIPTION = """\
Send SMS through herald and follow their status.

Authenticate with `Authorization: Bearer <api key>` (`herald accounts create`).
Errors are RFC 9457 problem details (`application/problem+json`) whose `errors`
list names each refused field. See docs/api.md in the repository.
"""

_PROBLEM_DESCRIPTIONS = {
    400: "Malformed JSON, header or cursor",
    401: "Missing or invalid API key",
    402: "The account's balance and credit limit do not cover the price; nothing stored"
         " (docs/billing.md)",
    403: "`fraud-blocked`: the pumping defence or the account's own controls refused the"
         " SMS; nothing sent or charged; `reason` and `decision` say why (docs/fraud.md)",
    404: "No such message (or verification)",
    409: "Too late to cancel (`cancel-too-late`: submitted upstream, or final), or being"
    " submitted now (`cancel-in-progress`); `message_status` says where the message is;"
    " a resend of a verification that is not pending (`verification-not-pending`)",
    413: "Body too large",
    415: "Body is not application/json",
    422: "Invalid fields (each named in `errors`), or Idempotency-Key reused for another body",
    429: "Rate limit or failed-login throttle; see Retry-After",
    503: "Store busy or unavailable; see Retry-After",
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        code: {
            "description": _PROBLEM_DESCRIPTIONS[code],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": ref}},
        }
        for code in codes
    }


def _body(model: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        },
        "security": [{"bearer": []}],
        "parameters": [{
            "name": "Idempotency-Key", "in": "header", "required": False,
            "description": "Same key and body within 24 h: the first answer is replayed;"
            " same key, other body: 422.",
            "schema": {"type": "string", "maxLength": 255},
        }],
    }  # fmt: skip


def _ok(model: str, description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


_SENDING: dict[str, dict[str, Any]] = {
    "/v1/messages": {
        "tags": ["messages"],
        "summary": "Send one message",
        "description": "202 with the message once it is durably stored. With `test: true`:"
        " validated only, 200 with the same shape, no id, nothing stored or sent.",
        "operationId": "send_message",
        "responses": {"202": _ok("MessageView", "Accepted"),
                      "200": _ok("MessageView", "Validated (test: true)"),
                      **{str(k): v for k, v in _problems(400, 401, 402, 413, 415, 422, 429,
                                                         503).items()}},
        **_body("MessageRequest"),
    },
    "/v1/messages/batch": {
        "tags": ["messages"],
        "summary": "Send up to 10,000 messages",
        "description": "Each message is validated on its own and the valid ones are stored in"
        " one commit. 202 when at least one was accepted (200 if all valid ones were tests);"
        " 422 when none was. `results` gives, per index, the id or the field errors.",
        "operationId": "send_batch",
        "responses": {"202": _ok("BatchResponse", "Some or all accepted"),
                      "200": _ok("BatchResponse", "Only test messages"),
                      **{str(k): v for k, v in _problems(400, 401, 402, 413, 415, 422, 429,
                                                         503).items()}},
        **_body("BatchRequest"),
    },
}  # fmt: skip


class _Boundary:
    """Outermost: counts requests by route and code, and turns a bug into a bare 500.

    A pure ASGI middleware (no per-request task), so it costs microseconds.
    """

    def __init__(self, app: ASGIApp, counter: PromCounter, paths: dict[object, str]) -> None:
        self.app = app
        self.counter = counter
        self.paths = paths  # endpoint -> template, for routes FastAPI does not record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), self._route(scope))
            if status:
                raise  # the answer has begun: let the server close the connection
            status = 500
            await problem_response(internal_error())(scope, receive, send)
        finally:
            self.counter.labels(route=self._route(scope), code=str(status)).inc()

    def _route(self, scope: Scope) -> str:
        # The route's template, never the raw path (ids must not become label values).
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", "unmatched"))
        return self.paths.get(scope.get("endpoint"), "unmatched")


class _Api(FastAPI):
    """The FastAPI app with :class:`FastSend` in front of ``POST /v1/messages``."""

    fast_send: FastSend | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_send
        if (
            fast is not None
            and scope["type"] == "http"
            and scope["path"] == SEND_PATH
            and scope["method"] == "POST"
        ):
            route_receive = await fast.serve(scope, receive, send)
            if route_receive is None:
                return
            receive = route_receive
        await super().__call__(scope, receive, send)


def create_app(context: ApiContext, *, fast_send: bool = True) -> FastAPI:
    """The HTTP API on ``context``. Serve it with any ASGI server (uvicorn).

    No global state: every call builds an independent app (rate limits,
    caches), so tests build one per test. ``fast_send=False`` serves every
    ``POST /v1/messages`` through the FastAPI route (answers are the same;
    for comparisons: ``bench/api.py``, the tests).
    """
    app = _Api(
        title="herald",
        version=__version__,
        description=_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served below from the package's own Swagger UI files
        redoc_url=None,
        # herald exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks
        # stay off so installing opentelemetry does not add work to every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.context = context
    gate = Gate(context)
    routes = MessageRoutes(context, gate)
    tags: list[str | Enum] = ["messages"]
    if context.chat is not None:  # channel chains (docs/channels.md)
        chains = ChainRoutes(context, gate, routes)
        routes.chains = chains
        app.router.add_route("/v1/channels/whatsapp/webhook", chains.whatsapp_webhook,
                             methods=["POST"], name="whatsapp_webhook")
        app.router.add_route("/v1/channels/whatsapp/webhook", chains.whatsapp_subscribe,
                             methods=["GET"], name="whatsapp_subscribe")
        app.router.add_route("/v1/channels/viber/webhook", chains.viber_webhook,
                             methods=["POST"], name="viber_webhook")
        templates = TemplateRoutes(context, gate)
        app.router.add_route("/v1/templates", templates.create, methods=["POST"],
                             name="create_template")
        app.router.add_route("/v1/templates", templates.list, methods=["GET"],
                             name="list_templates")
        app.router.add_route("/v1/templates/{name}", templates.edit, methods=["PUT"],
                             name="edit_template")
        app.router.add_route("/v1/templates/{name}", templates.delete, methods=["DELETE"],
                             name="delete_template")

    # The two sending endpoints read and check their bodies themselves, so they
    # are plain Starlette routes: FastAPI's per-route machinery (dependency
    # solving, its exit stack) cost about a fifth of a single send's CPU in
    # bench/api.py. They are documented by _openapi like the others.
    app.router.add_route("/v1/messages", routes.send, methods=["POST"], name="send")
    app.router.add_route(
        "/v1/messages/batch", routes.send_batch, methods=["POST"], name="send_batch"
    )
    app.add_api_route(
        "/v1/messages/{message_id}", routes.get, methods=["GET"], tags=tags,
        summary="A message and its status history",
        responses={200: {"model": MessageView}, **_problems(401, 404, 429, 503)},
        openapi_extra={"security": [{"bearer": []}]},
    )  # fmt: skip
    app.add_api_route(
        "/v1/messages/{message_id}", routes.cancel, methods=["DELETE"], tags=tags,
        summary="Cancel a message that has not gone out",
        description="While the message waits (accepted, or queued and not being submitted"
        " upstream this moment; a scheduled message until its time): it becomes `cancelled`"
        " (final; the webhook and SMPP receipt follow as for any final status) and the"
        " answer is 200 with the message. A message cancelled already: 200 again.",
        responses={200: {"model": MessageView}, **_problems(401, 404, 409, 429, 503)},
        openapi_extra={"security": [{"bearer": []}]},
    )  # fmt: skip
    app.add_api_route(
        "/v1/messages", routes.cancel_by_reference, methods=["DELETE"], tags=tags,
        summary="Cancel the waiting messages sent with a reference",
        description="Every message of the account with this `reference` that "
        "`DELETE /v1/messages/{message_id}` would cancel, oldest first, up to 10,000 a"
        " request (as many cancelled: send it again). Messages being submitted or gone out"
        " are left as they are. 200 with the ids cancelled (none: an empty list).",
        responses={200: {"model": CancelledList}, **_problems(401, 422, 429, 503)},
        openapi_extra={"security": [{"bearer": []}]},
    )  # fmt: skip
    app.add_api_route(
        "/v1/messages", routes.list_messages, methods=["GET"], tags=tags,
        summary="The account's messages, newest first",
        responses={200: {"model": MessageList}, **_problems(400, 401, 422, 429, 503)},
        openapi_extra={"security": [{"bearer": []}]},
    )  # fmt: skip

    install_verify(app, VerifyRoutes(context, gate, routes), _problems)
    install_fraud(app, FraudRoutes(context, gate, routes.defence), _problems)

    ops: list[str | Enum] = ["operations"]

    async def health(require: Literal["upstream"] | None = None) -> Response:
        if context.stopping():  # a load balancer takes this instance out first
            return problem_response(shutting_down())
        try:
            await context.store.get_api_key("-")  # a read through the store's pool
        except StoreError as exc:
            return problem_response(store_problem(exc))
        except Exception:  # a probe answers "unhealthy" whatever the failure
            log.exception("health check: the store did not answer")
            return problem_response(store_problem(StoreUnavailable("no answer")))
        body, degraded = _health(context.upstreams)
        # Degraded is 200: intake still stores what it accepts and sends it once a
        # bind is up, so a load balancer must keep sending here. A monitor that
        # wants a failing probe asks for it (?require=upstream).
        code = 503 if degraded and require == "upstream" else 200
        return Response(body, status_code=code, media_type="application/json")

    async def metrics() -> Response:
        await context.metrics.refresh()  # the store's backlog, read again when it is old
        return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(
        "/healthz", health, methods=["GET"], tags=ops,
        summary="200 when the store answers; says whether an upstream bind is up",
        description="`status` is `ok`, or `degraded` when no upstream bind is up (messages"
        " are still accepted and stored, and sent once a bind is up): 200 either way, so a"
        " load balancer keeps sending. With `require=upstream` a degraded answer is 503"
        " (for monitors). 503 problem: the store does not answer, or herald is stopping.",
        responses={200: {"model": Health}, 422: _problems(422)[422],
                   503: {"description": "The store does not answer (a problem), or"
                         " require=upstream and no upstream bind is up (the Health body)",
                         "content": {PROBLEM_MEDIA_TYPE: {
                             "schema": {"$ref": "#/components/schemas/Problem"}},
                             "application/json": {
                             "schema": {"$ref": "#/components/schemas/Health"}}}}},
    )  # fmt: skip
    app.add_api_route(
        "/metrics", metrics, methods=["GET"], tags=ops,
        summary="Prometheus metrics",
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                         "description": "Prometheus text format"}},
    )  # fmt: skip
    _install_docs(app)
    if context.admin is not None:
        from herald.console import install_console  # the console builds on the admin API

        admin = install_admin(app, context, context.admin, gate.forget_account,
                              defence=routes.defence)
        install_console(app, admin.gate, admin.views, context.admin.console_key, context.clock)
    _install_handlers(app)
    app.add_middleware(
        _Boundary,
        counter=context.metrics.http_requests,
        paths={routes.send: "/v1/messages", routes.send_batch: "/v1/messages/batch"},
    )
    if fast_send:
        app.fast_send = FastSend(context, gate, routes, context.metrics.http_requests)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _install_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the files shipped in the package (no CDN: it works
    on a network without internet). ``scripts/vendor-assets`` pins their version."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.staticfiles import StaticFiles

    from herald.console import STATIC_DIR, STATIC_PREFIX

    vendor = f"{STATIC_PREFIX}/vendor/swagger-ui"

    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="herald API",
            swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
            swagger_css_url=f"{vendor}/swagger-ui.css",
            swagger_favicon_url=f"{vendor}/favicon-32x32.png")  # fmt: skip

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")


def _health(upstreams: Upstreams | None) -> tuple[bytes, bool]:
    """``/healthz``'s body once the store answered, and whether it is degraded."""
    if upstreams is None:  # an API without dispatch: its health is its store's
        return b'{"status":"ok"}', False
    state = upstreams()
    body: dict[str, Any] = {"status": "ok"}
    if state is None:
        body["reason"] = "dispatch is not running or not reporting"
    else:
        body["upstreams"] = {name: {"bound": s.bound, "binds": s.binds}
                             for name, s in state.items()}  # fmt: skip
        if not state:
            body["reason"] = "no upstream connector is configured"
        elif not any(s.bound for s in state.values()):
            body["reason"] = "no upstream bind is up"
    degraded = "reason" in body
    if degraded:
        body["status"] = "degraded"
    return json.dumps(body, separators=(",", ":")).encode(), degraded


def _install_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return problem_response(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = pydantic_field_errors(exc.errors(), location_from_loc=True)
        return problem_response(
            ApiProblem(422, "invalid-request", "the request has invalid parameters", errors)
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "bad-request")
        detail = "no such resource" if exc.status_code == 404 else str(exc.detail)
        problem = ApiProblem(exc.status_code, slug, detail, headers=dict(exc.headers or {}))
        return problem_response(problem)

    async def on_store(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StoreError)
        log.error("store error in %s: %r", request.url.path, exc)
        return problem_response(store_problem(exc))

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(StoreError, on_store)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    documented: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
        (MessageRequest, "validation"), (BatchRequest, "validation"),
        (ProblemModel, "serialization"), (MessageView, "serialization"),
        (BatchResponse, "serialization"),
    )  # fmt: skip
    for model, mode in documented:
        js = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        schemas.update(js.pop("$defs", {}))
        schemas[model.__name__] = js
    paths = schema.setdefault("paths", {})
    for path, operation in _SENDING.items():
        paths.setdefault(path, {})["post"] = operation
    # FastAPI documents its own validation errors with its schema; herald answers
    # them as problem details (see _install_handlers).
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            answer = operation.get("responses", {}).get("422")
            if answer and "HTTPValidationError" in str(answer):
                operation["responses"]["422"] = _problems(422)[422]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An herald API key"},
        "admin": {"type": "http", "scheme": "bearer",
                  "description": "An herald admin key (herald admin keys create); /v1/admin only"},
    }
    app.openapi_schema = schema
    return schema
