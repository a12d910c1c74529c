"""herald's HTTP API (FastAPI): send messages, follow their status.

Build the app with :func:`create_app` from an :class:`ApiContext` (the store,
the accounts service, the id generator, a clock, the metrics, the HTTP
config and an ``on_accepted`` callback) and serve it with any ASGI server.
Endpoints, errors and limits are described in ``docs/api.md``; the OpenAPI
document is served at ``/openapi.json`` and rendered at ``/docs``. A plain
``POST /v1/messages`` is served before the framework, with the same answers
(``_fast``); serve the app with uvicorn's httptools parser (``bench/api.py``
compares the servers).
"""

from herald.api._app import create_app
from herald.api._context import (
    MAX_BATCH_BODY_OCTETS,
    MAX_BATCH_MESSAGES,
    MAX_BODY_OCTETS,
    AdminContext,
    ApiContext,
    ApiKeyVerifier,
    ApiLimits,
    ConnectorState,
    Upstreams,
    UpstreamState,
)
from herald.api._problems import PROBLEM_TYPES, ApiProblem, FieldError

__all__ = [
    "MAX_BATCH_BODY_OCTETS",
    "MAX_BATCH_MESSAGES",
    "MAX_BODY_OCTETS",
    "PROBLEM_TYPES",
    "AdminContext",
    "ApiContext",
    "ApiKeyVerifier",
    "ApiLimits",
    "ApiProblem",
    "ConnectorState",
    "FieldError",
    "UpstreamState",
    "Upstreams",
    "create_app",
]
