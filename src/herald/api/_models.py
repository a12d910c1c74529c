"""The API's JSON shapes as pydantic models: request bodies (validated with
them) and answers (documented with them in ``/openapi.json``; the tests check
every answer against its model).

Request models are strict (``1`` is not ``true``, ``"3600"`` is not a number)
and forbid unknown fields, so a typo such as ``"form"`` is refused by name
instead of silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from herald.intake import MAX_VALIDITY_PERIOD, MIN_VALIDITY_PERIOD

__all__ = [
    "BatchEntry",
    "BatchRequest",
    "BatchResponse",
    "CancelledList",
    "ErrorInfo",
    "Health",
    "MessageList",
    "MessageRequest",
    "MessageView",
    "Problem",
    "ProblemField",
    "UpstreamBinds",
]

_STATUSES = Literal[
    "accepted", "queued", "sent", "delivered", "undelivered", "expired", "rejected", "failed",
    "cancelled", "validated",
]


class MessageRequest(BaseModel):
    """One message to send."""

    model_config = ConfigDict(extra="forbid", strict=True)

    to: str = Field(
        description="Destination, E.164 ('+' optional; spaces, '-', '.', '()' ignored).",
        examples=["+14155552671"],
    )
    from_: str = Field(
        alias="from",
        description="Sender: an alphanumeric name (at most 11 GSM characters),"
        " a short code (3-8 digits) or an E.164 number.",
        examples=["ACME"],
    )
    text: str | None = Field(None, description="The text. Give text or binary, not both.")
    binary: str | None = Field(
        None, description="Opaque octets, base64 (RFC 4648 §4), sent with data_coding 4."
    )
    encoding: Literal["auto", "gsm7", "ucs2", "binary"] = Field(
        "auto", description="auto picks GSM 7-bit when every character allows it, else UCS-2."
    )
    reference: str | None = Field(
        None, description="Your own reference (1-128 characters); filterable."
    )
    metadata: dict[str, Any] | None = Field(
        None, description="Any JSON object (at most 4096 characters); echoed in webhooks."
    )
    callback_url: str | None = Field(
        None, description="http(s) URL for this message's status webhooks."
    )
    callback_events: Any = Field(
        None,
        description='Which status changes are posted for this message: "all" (sent and the'
        ' final status), "final", "none", or a list of statuses (sent, delivered, undelivered,'
        " expired, rejected, failed, cancelled). Default: the account's setting.",
        json_schema_extra={"anyOf": [
            {"type": "string", "enum": ["all", "final", "none"]},
            {"type": "array", "items": {"type": "string", "enum": [
                "sent", "delivered", "undelivered", "expired", "rejected", "failed",
                "cancelled"]}},
            {"type": "null"},
        ]},
    )  # fmt: skip
    validity_period: float | None = Field(
        None,
        description=f"Seconds from acceptance before the message expires"
        f" ({MIN_VALIDITY_PERIOD:g}-{MAX_VALIDITY_PERIOD:g}; default 48 h from when it is due).",
    )
    send_at: Any = Field(
        None,
        description="When to send: epoch seconds or an RFC 3339 date-time with offset.",
        json_schema_extra={"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]},
    )
    test: bool = Field(False, description="Validate and answer (200) without storing or sending.")
    priority: str | None = Field(
        None,
        description="Priority class: every waiting otp message is sent before any"
        " transactional one, and so on. Default: the class the tag names, else the"
        " account's default, else transactional.",
        json_schema_extra={"enum": ["otp", "transactional", "bulk", "marketing", None]},
    )  # a str checked by intake (as the fast path reads it): one answer for both paths
    tag: str | None = Field(
        None,
        description="Your label for this kind of traffic (1-32 of a-z, 0-9, _ and -);"
        " a tag naming a priority class (e.g. otp) implies it.",
    )


class BatchRequest(BaseModel):
    """Up to 10,000 messages; each is validated on its own."""

    model_config = ConfigDict(extra="forbid", strict=True)

    messages: list[MessageRequest] = Field(min_length=1, max_length=10_000)


class ErrorInfo(BaseModel):
    code: int | None = Field(description="The upstream or herald error code.")
    permanent: bool = Field(description="Whether retrying the same message can succeed.")


class WebhookDelivery(BaseModel):
    """A webhook event of the message whose delivery failed at least once."""

    event: str = Field(description="The status the event reports.")
    url: str | None
    state: Literal["retrying", "failed"] = Field(
        description="retrying: it will be sent again at next_attempt_at; failed: given up."
    )
    attempts: int
    next_attempt_at: str | None
    error: str | None = Field(description="Why the last attempt failed.")


class RouteInfo(BaseModel):
    """How the message was routed."""

    connector: str | None = Field(
        description="The upstream connector that carried it; null until one accepted it.")
    rule: str | None = Field(
        description="The routing rule that chose the connectors; null: the prefix routes"
        " of herald.toml (or not routed yet).")


class PriceView(BaseModel):
    """What a message costs a billed account (docs/billing.md); decimal strings."""

    amount: str = Field(description="per_segment x segments, rounded half to even to 6 places")
    per_segment: str
    segments: int
    priced_by: str = Field(description="The price list entry: an MCC/MNC, +country code or"
                           " default")  # fmt: skip


class MessageView(BaseModel):
    """A message as the API shows it."""

    id: str | None = Field(description="herald's id; null for a test answer.")
    status: _STATUSES
    test: bool
    to: str
    from_: str = Field(alias="from")
    encoding: str
    segments: int
    reference: str | None
    metadata: dict[str, Any] | None
    callback_url: str | None
    callback_events: str | list[str] | None = Field(
        description="The message's own event choice; null: the account's."
    )
    priority: Literal["otp", "transactional", "bulk", "marketing"]
    tag: str | None
    send_at: str | None
    expires_at: str
    timestamps: dict[str, str] = Field(
        description="RFC 3339 time at which the message reached each status it went through."
    )
    error: ErrorInfo | None
    route: RouteInfo | None = Field(
        None, description="GET /v1/messages/{id} only: the connector and the routing rule.")
    webhooks: list[WebhookDelivery] | None = Field(
        None,
        description="GET /v1/messages/{id} only: the message's webhook events whose delivery"
        " failed (being retried, or given up); delivered events are not listed.",
    )
    price: PriceView | None = Field(
        None, description="Sending only, billed accounts only: what the message costs (charged"
        " with the commit; a test is priced, never charged).",
    )  # fmt: skip


class MessageList(BaseModel):
    messages: list[MessageView]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: last.")


class CancelledList(BaseModel):
    cancelled: list[str] = Field(
        description="The ids cancelled, oldest first; as many as the limit: send again.")


class ProblemField(BaseModel):
    field: str = Field(description="Dotted path, query parameter or header name (an uploaded"
                       " file's line: 'line N').")
    pointer: str | None = Field(None, description="RFC 6901 JSON pointer into the body.")
    in_: Literal["body", "query", "path", "header", "file"] = Field(alias="in")
    code: str
    detail: str


class BatchEntry(BaseModel):
    index: int
    status: Literal["accepted", "refused", "validated"]
    id: str | None = None
    segments: int | None = None
    encoding: str | None = None
    errors: list[ProblemField] | None = None
    price: PriceView | None = None


class BatchResponse(BaseModel):
    accepted: int
    refused: int
    results: list[BatchEntry]


class Problem(BaseModel):
    """RFC 9457 problem details (a refused batch adds its summary and ``results``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = None


class UpstreamBinds(BaseModel):
    bound: int = Field(description="Sessions that may submit, bound now")
    binds: int = Field(description="Such sessions configured")


class Health(BaseModel):
    """``ok``: the store answers and an upstream bind is up; ``degraded``: the
    store answers (messages are accepted and stored) but no upstream bind is up,
    so nothing is sent until one is (``reason`` says why)."""

    status: Literal["ok", "degraded"]
    reason: str | None = None
    upstreams: dict[str, UpstreamBinds] | None = None
