"""Webhooks: signed, durable, retried status and inbound notifications.

- :class:`WebhookSender` POSTs the store's ``Channel.WEBHOOK`` outbox events
  (see :mod:`herald.webhooks.sender` for how it claims, batches, retries and
  stops) over herald's own kept-alive HTTP/1.1 client (``_http``).
- :func:`verify_signature` is what a receiver calls to check a request
  (``docs/webhooks.md`` shows how); :func:`signature_header` is how herald
  signs.
- :func:`status_payload` / :func:`inbound_payload` build the JSON bodies;
  :func:`check_url` is the callback URL rule the HTTP API can apply at intake.

The ``_``-modules are private; import from here.
"""

from herald.webhooks._errors import (
    BlockedAddress,
    DeliveryError,
    DeliveryTimeout,
    InvalidWebhookUrl,
    MalformedSignature,
    NonSuccessStatus,
    SignatureError,
    SignatureMismatch,
    SubjectGone,
    TimestampOutsideTolerance,
    Unreachable,
    WebhookError,
)
from herald.webhooks._payload import (
    BLOCKED_EVENT_TYPES,
    INBOUND_EVENT_TYPE,
    STATUS_EVENT_TYPE,
    batch_body,
    decision_view,
    fraud_payload,
    inbound_payload,
    rfc3339,
    status_payload,
    webhook_event_id,
)
from herald.webhooks._policy import (
    ALLOWED_SCHEMES,
    JITTER,
    IPAddress,
    RetryPolicy,
    WebhookTarget,
    address_allowed,
    blocked_destination,
    check_url,
    endpoint,
    literal_address,
    redact_url,
)
from herald.webhooks._signature import (
    DEFAULT_TOLERANCE,
    EVENT_ID_HEADER,
    MAX_SIGNATURE_HEADER_LENGTH,
    SIGNATURE_HEADER,
    SIGNATURE_SCHEME,
    TIMESTAMP_HEADER,
    sign,
    signature_header,
    verify_signature,
)
from herald.webhooks.sender import (
    ACCOUNT_TTL,
    BATCH_COUNT_HEADER,
    LEASE_MARGIN,
    MAX_CLAIM_BATCH,
    MAX_ERROR_BODY,
    PIN_TTL,
    DeliveryResult,
    Outcome,
    Resolver,
    SenderOptions,
    WebhookSender,
    WebhookStore,
    sender_for,
)

__all__ = [
    "ACCOUNT_TTL",
    "ALLOWED_SCHEMES",
    "BATCH_COUNT_HEADER",
    "BLOCKED_EVENT_TYPES",
    "DEFAULT_TOLERANCE",
    "EVENT_ID_HEADER",
    "INBOUND_EVENT_TYPE",
    "JITTER",
    "LEASE_MARGIN",
    "MAX_CLAIM_BATCH",
    "MAX_ERROR_BODY",
    "MAX_SIGNATURE_HEADER_LENGTH",
    "PIN_TTL",
    "SIGNATURE_HEADER",
    "SIGNATURE_SCHEME",
    "STATUS_EVENT_TYPE",
    "TIMESTAMP_HEADER",
    "BlockedAddress",
    "DeliveryError",
    "DeliveryResult",
    "DeliveryTimeout",
    "IPAddress",
    "InvalidWebhookUrl",
    "MalformedSignature",
    "NonSuccessStatus",
    "Outcome",
    "Resolver",
    "RetryPolicy",
    "SenderOptions",
    "SignatureError",
    "SignatureMismatch",
    "SubjectGone",
    "TimestampOutsideTolerance",
    "Unreachable",
    "WebhookError",
    "WebhookSender",
    "WebhookStore",
    "WebhookTarget",
    "address_allowed",
    "batch_body",
    "blocked_destination",
    "check_url",
    "decision_view",
    "endpoint",
    "fraud_payload",
    "inbound_payload",
    "literal_address",
    "redact_url",
    "rfc3339",
    "sender_for",
    "sign",
    "signature_header",
    "status_payload",
    "verify_signature",
    "webhook_event_id",
]
