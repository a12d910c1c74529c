"""Errors as RFC 9457 problem details (``application/problem+json``).

Every refusal the API makes is an :class:`ApiProblem`: an HTTP status, a
problem type (``urn:herald:problem:<slug>``, listed in :data:`PROBLEM_TYPES`
and in ``docs/api.md``), a title, a detail sentence and, when fields are to
blame, an ``errors`` list (RFC 9457 §3.2 extension member) with one entry per
field::

    {"field": "messages[3].to", "pointer": "/messages/3/to", "in": "body",
     "code": "not_valid", "detail": "is not an assigned number ..."}

``pointer`` is an RFC 6901 JSON pointer into the request body (body fields
only); ``field`` the same place as a dotted path, or the query parameter or
header name. Errors from :mod:`herald.intake`, pydantic and the store are
translated here, at the boundary; nothing else reaches a client (a bug
becomes a bare 500 problem, its traceback goes to the log).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from starlette.responses import Response

from herald.intake import IntakeError, InvalidSubmission
from herald.ratelimit import retry_after
from herald.store import StoreBusy, StoreError, StoreUnavailable

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPES",
    "ApiProblem",
    "FieldError",
    "insufficient_funds",
    "intake_field_errors",
    "internal_error",
    "problem_response",
    "pydantic_field_errors",
    "shutting_down",
    "store_problem",
    "unpriced",
]

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"

#: slug -> title. The type URI is ``urn:herald:problem:<slug>``.
PROBLEM_TYPES: Final[Mapping[str, str]] = {
    "invalid-request": "The request has invalid fields",
    "malformed-json": "The request body is not JSON",
    "bad-request": "The request is malformed",
    "unsupported-media-type": "The request body has a media type this endpoint does not take",
    "payload-too-large": "The request body is too large",
    "unauthorized": "A valid API key is required",
    "forbidden": "This key may not do this",
    "conflict": "The name or id is taken",
    "too-many-failed-logins": "Too many failed authentications from this address",
    "rate-limited": "The account's rate limit is exceeded",
    "daily-quota-exceeded": "The account's daily quota is used up",
    "address-not-allowed": "The account's API keys may not be used from this address",
    "not-found": "No such resource",
    "method-not-allowed": "Method not allowed",
    "idempotency-mismatch": "The Idempotency-Key was used for a different request",
    "cancel-too-late": "The message was submitted upstream already or has a final status",
    "cancel-in-progress": "The message is being submitted upstream",
    "insufficient-funds": "The account's balance does not cover the price",
    "verification-sends-exceeded": "Too many verification codes were sent to this number",
    "verification-not-pending": "The verification is approved, expired or canceled",
    "fraud-blocked": "The SMS was refused by the pumping defence or the account's controls",
    "bad-signature": "The provider webhook's signature is missing or does not match",
    "malformed-webhook": "The provider webhook's body cannot be read",
    "provider-refused": "The chat provider refused the request",
    "provider-unavailable": "The chat provider did not answer; retry later",
    "store-busy": "herald is busy; retry later",
    "unavailable": "herald cannot serve this now; retry later",
    "shutting-down": "herald is stopping; retry shortly",
    "internal-error": "Internal error",
}

#: Retry-After (seconds) for a busy store (a commit takes milliseconds) and
#: for a store that failed (an operator has to look).
STORE_BUSY_RETRY_AFTER: Final = 1
STORE_UNAVAILABLE_RETRY_AFTER: Final = 5
#: Retry-After for a send that arrives while herald stops: a restart takes a second or two.
SHUTDOWN_RETRY_AFTER: Final = 2


@dataclass(frozen=True, slots=True)
class FieldError:
    """One refused field. ``path`` is the place in the body (keys and list
    indices), or a one-element path naming a query parameter or header."""

    path: tuple[str | int, ...]
    code: str
    detail: str
    location: str = "body"  # body | query | path | header | file (an uploaded file's line)

    @property
    def dotted(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out

    @property
    def pointer(self) -> str:
        # RFC 6901 §3: '~' is written '~0' and '/' is written '~1'.
        return "".join(
            "/" + str(p).replace("~", "~0").replace("/", "~1") for p in self.path
        )

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.dotted}
        if self.location == "body":
            out["pointer"] = self.pointer
        out["in"] = self.location
        out["code"] = self.code
        out["detail"] = self.detail
        return out


@dataclass(eq=False)
class ApiProblem(Exception):
    """An answer other than success; raise it from a handler."""

    status: int
    slug: str
    detail: str
    errors: Sequence[FieldError] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.slug}: {self.detail}")

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": f"urn:herald:problem:{self.slug}",
            "title": PROBLEM_TYPES[self.slug],
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            out["errors"] = [e.as_json() for e in self.errors]
        out.update(self.extra)
        return out


def problem_response(problem: ApiProblem) -> Response:
    content = json.dumps(problem.body(), ensure_ascii=False, separators=(",", ":"))
    return Response(
        content.encode(), problem.status, dict(problem.headers), media_type=PROBLEM_MEDIA_TYPE
    )


def intake_field_errors(
    exc: IntakeError, prefix: tuple[str | int, ...] = ()
) -> list[FieldError]:
    """The field errors of an intake refusal, placed under ``prefix`` in the body."""
    errors = exc.errors if isinstance(exc, InvalidSubmission) else (exc,)
    return [FieldError((*prefix, e.field), e.code, e.message) for e in errors]


# pydantic error types -> herald's codes (docs/api.md lists them).
_PYDANTIC_CODES: Final[Mapping[str, str]] = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "literal_error": "invalid_choice",
    "enum": "invalid_choice",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "too_long": "too_long",
    "too_short": "too_short",
    "json_invalid": "malformed_json",
}


def pydantic_field_errors(
    errors: Iterable[Mapping[str, Any]],
    prefix: tuple[str | int, ...] = (),
    *,
    location_from_loc: bool = False,
) -> list[FieldError]:
    """Field errors from pydantic's ``errors()`` (or FastAPI's, whose ``loc``
    starts with ``body``/``query``/``path``/``header``: ``location_from_loc``)."""
    out: list[FieldError] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        location = "body"
        if location_from_loc and loc:
            location, loc = str(loc[0]), loc[1:]
        kind = str(err.get("type", "invalid"))
        code = _PYDANTIC_CODES.get(kind, "wrong_type" if kind.endswith("_type") else kind)
        path = tuple(p if isinstance(p, int) else str(p) for p in loc)
        out.append(FieldError((*prefix, *path), code, str(err.get("msg", "is invalid")), location))
    return out


def store_problem(exc: StoreError) -> ApiProblem:
    """The answer to a store error (STYLE.md item 5: translated, never leaked)."""
    if isinstance(exc, StoreBusy):
        return ApiProblem(
            503, "store-busy", "too many writes are waiting; retry shortly",
            headers={"Retry-After": str(STORE_BUSY_RETRY_AFTER)},
        )
    if isinstance(exc, StoreUnavailable):
        return ApiProblem(
            503, "unavailable", "the message store cannot be reached",
            headers={"Retry-After": str(STORE_UNAVAILABLE_RETRY_AFTER)},
        )
    if exc.http_status == 404:
        return ApiProblem(404, "not-found", "no such message")
    return internal_error()


def insufficient_funds(price: Decimal) -> ApiProblem:
    """The answer to a send its account cannot pay for (docs/billing.md): 402,
    the price of what was refused; nothing was stored or charged."""
    return ApiProblem(
        402, "insufficient-funds",
        f"the account's balance and credit limit do not cover the price of this request"
        f" ({price:f}); nothing was sent or charged: top up the account",
        extra={"reason": "insufficient_funds", "price": f"{price:f}"},
    )  # fmt: skip


def unpriced(prefix: tuple[str | int, ...] = ()) -> FieldError:
    """The refusal of a destination the account's price list does not price."""
    return FieldError((*prefix, "to"), "unpriced",
                      "has no price in the account's price list: the account may not send"
                      " there")  # fmt: skip


def shutting_down() -> ApiProblem:
    """The answer to a send that arrives while herald stops: retryable, nothing stored."""
    return ApiProblem(
        503, "shutting-down", "herald is stopping; send the request again shortly",
        headers={"Retry-After": str(SHUTDOWN_RETRY_AFTER)},
    )


def internal_error() -> ApiProblem:
    """The answer to a bug: no detail (the traceback goes to the log)."""
    return ApiProblem(500, "internal-error", "herald failed to handle the request")


def rate_limited(slug: str, detail: str, wait: float) -> ApiProblem:
    return ApiProblem(429, slug, detail, headers={"Retry-After": str(retry_after(wait))})
