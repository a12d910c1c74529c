"""Errors of the webhooks package: signature checks and delivery attempts.

Two families, split as STYLE.md item 5 asks:

- :class:`SignatureError` is what :func:`~herald.webhooks.verify_signature`
  raises in a *receiver* (the customer's code, or a test): the request did not
  come from herald, was altered, or is too old. ``http_status`` is the answer
  the receiver should give (the sender retries non-2xx answers, so a request
  refused for clock skew is sent again later with a fresh timestamp).
- :class:`DeliveryError` is one failed POST in the *sender*. It never leaves
  the sender: it becomes the outbox row's ``last_error`` and a metric.
  ``retryable`` says whether trying again can help (a 503 can; a URL with an
  ``ftp:`` scheme cannot), ``outcome`` is the bounded metric label.
"""

from __future__ import annotations

__all__ = [
    "BlockedAddress",
    "DeliveryError",
    "DeliveryTimeout",
    "InvalidWebhookUrl",
    "MalformedSignature",
    "NonSuccessStatus",
    "SignatureError",
    "SignatureMismatch",
    "SubjectGone",
    "TimestampOutsideTolerance",
    "Unreachable",
    "WebhookError",
]


class WebhookError(Exception):
    """Base of every error of :mod:`herald.webhooks`."""


# -- receiving: signature verification ----------------------------------------------


class SignatureError(WebhookError, ValueError):
    """The request's signature does not hold. Answer ``http_status``; do not process it."""

    http_status: int = 400


class MalformedSignature(SignatureError):
    """The ``Herald-Signature`` header is missing, too long, or not ``t=<int>,v1=<hex>``."""


class SignatureMismatch(SignatureError):
    """No ``v1`` signature matches the body under this secret (altered, or wrong secret)."""

    http_status = 401


class TimestampOutsideTolerance(SignatureError):
    """The signed timestamp is further from ``now`` than the tolerance (a replay, or skew).

    ``age`` is ``now - timestamp`` in seconds (negative: from the future).
    """

    http_status = 401

    def __init__(self, message: str, age: float) -> None:
        super().__init__(message)
        self.age = age


# -- sending: one failed delivery attempt ---------------------------------------------


class DeliveryError(WebhookError):
    """One delivery attempt failed; the sender records it and schedules the next one."""

    retryable: bool = True
    outcome: str = "error"


class InvalidWebhookUrl(DeliveryError, ValueError):
    """The URL is not one herald posts to (scheme, host, length). Never retried.

    :func:`~herald.webhooks.check_url` raises it; the HTTP API can call that
    at intake and answer 422 naming ``callback_url``.
    """

    retryable = False
    outcome = "invalid_url"


class BlockedAddress(DeliveryError):
    """The host resolves to an address the policy forbids (private, loopback…). Never retried."""

    retryable = False
    outcome = "blocked"


class SubjectGone(DeliveryError):
    """The event's message, inbound message or account no longer exists. Never retried."""

    retryable = False
    outcome = "gone"


class Unreachable(DeliveryError):
    """No answer could be had: DNS failure, connection refused or reset, TLS failure."""

    outcome = "unreachable"


class DeliveryTimeout(DeliveryError):
    """The receiver did not answer within the configured timeout."""

    outcome = "timeout"


class NonSuccessStatus(DeliveryError):
    """The receiver answered, but not with 2xx (redirects are not followed)."""

    outcome = "http_error"

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code
