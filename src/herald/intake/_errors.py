"""Intake's refusals: one exception per kind of field, each knowing its wire answers."""

from __future__ import annotations

from typing import ClassVar

from herald.smpp.constants import CommandStatus

__all__ = [
    "IntakeError",
    "InvalidBody",
    "InvalidDestination",
    "InvalidField",
    "InvalidSchedule",
    "InvalidSource",
    "InvalidSubmission",
    "InvalidValidity",
    "TooLong",
]


class IntakeError(ValueError):
    """A submission field is refused. Answer the client and keep serving.

    ``field`` names the field in the caller's vocabulary, ``code`` is a stable
    machine-readable reason (documented in ``docs/api.md``), ``message`` a
    sentence for a human. HTTP answers ``http_status`` (422) with a problem
    body naming the field; SMPP answers ``smpp_status`` in the submit_sm_resp.
    """

    http_status: ClassVar[int] = 422
    smpp_status: ClassVar[CommandStatus] = CommandStatus.ESME_RSUBMITFAIL

    def __init__(self, field: str, message: str, code: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


class InvalidDestination(IntakeError):
    """The destination is not a usable phone number (ESME_RINVDSTADR)."""

    smpp_status = CommandStatus.ESME_RINVDSTADR


class InvalidSource(IntakeError):
    """The sender is not an alphanumeric name, short code or number (ESME_RINVSRCADR)."""

    smpp_status = CommandStatus.ESME_RINVSRCADR


class TooLong(IntakeError):
    """The body needs more parts (or octets) than a message may have (ESME_RINVMSGLEN)."""

    smpp_status = CommandStatus.ESME_RINVMSGLEN


class InvalidBody(IntakeError):
    """The body is missing, empty, not encodable, or not valid base64 / data_coding."""


class InvalidSchedule(IntakeError):
    """send_at is unreadable, in the past, too far ahead or after expiry (ESME_RINVSCHED)."""

    smpp_status = CommandStatus.ESME_RINVSCHED


class InvalidValidity(IntakeError):
    """The validity period is out of bounds (ESME_RINVEXPIRY)."""

    smpp_status = CommandStatus.ESME_RINVEXPIRY


class InvalidField(IntakeError):
    """reference, metadata or callback_url breaks its format or size limit."""


class InvalidSubmission(IntakeError):
    """Several fields are refused at once; ``errors`` holds each, in field order.

    ``field``, ``code`` and ``smpp_status`` are those of the first error, so an
    SMPP caller can answer with it directly.
    """

    def __init__(self, errors: tuple[IntakeError, ...]) -> None:
        if not errors:
            raise ValueError("InvalidSubmission needs at least one error")
        first = errors[0]
        super().__init__(first.field, first.message, first.code)
        self.errors = errors
        self.smpp_status = first.smpp_status  # type: ignore[misc]  # per instance
