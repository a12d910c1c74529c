"""The other fields (reference, metadata, callback) and the record they make."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from herald.intake._body import Body
from herald.intake._errors import InvalidField
from herald.intake._schedule import Schedule
from herald.intake._sender import Sender
from herald.store import (
    DEFAULT_PRIORITY,
    MAX_CALLBACK_URL_LENGTH,
    MAX_METADATA_LENGTH,
    MAX_REFERENCE_LENGTH,
    MAX_TAG_LENGTH,
    NewMessage,
    Priority,
    Source,
    StatusEvents,
)

__all__ = [
    "build_message",
    "check_callback_events",
    "check_callback_url",
    "check_priority",
    "check_reference",
    "check_tag",
    "serialize_metadata",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_reference(value: object, *, field: str = "reference") -> str | None:
    """The customer's own reference: 1..128 printable characters, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string", "wrong_type")
    if not value:
        raise InvalidField(field, "must not be empty (leave it out instead)", "empty")
    if len(value) > MAX_REFERENCE_LENGTH:
        raise InvalidField(field, f"has at most {MAX_REFERENCE_LENGTH} characters", "too_long")
    if _CONTROL.search(value):
        raise InvalidField(field, "must not contain control characters", "invalid_characters")
    return value


def serialize_metadata(value: object, *, field: str = "metadata") -> str | None:
    """A JSON object, serialised compactly for the store (at most 4096 characters)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidField(field, "must be a JSON object", "wrong_type")
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidField(field, f"is not JSON: {exc}", "wrong_type") from None
    if len(text) > MAX_METADATA_LENGTH:
        raise InvalidField(
            field, f"is {len(text)} characters as JSON; at most {MAX_METADATA_LENGTH}", "too_long"
        )
    return text


def check_callback_url(value: object, *, field: str = "callback_url") -> str | None:
    """An absolute ``http`` or ``https`` URL without credentials, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string", "wrong_type")
    if len(value) > MAX_CALLBACK_URL_LENGTH:
        raise InvalidField(field, f"has at most {MAX_CALLBACK_URL_LENGTH} characters", "too_long")
    if _CONTROL.search(value) or " " in value:
        raise InvalidField(field, "must not contain spaces or control characters", "invalid_url")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise InvalidField(field, "is not a URL", "invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField(field, "must be an absolute http:// or https:// URL", "invalid_url")
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL would be stored and shown in clear; webhooks
        # are authenticated by their HMAC signature instead.
        raise InvalidField(field, "must not carry a user name or password", "invalid_url")
    del port
    return value


#: A tag: lower-case letters, digits, ``_`` and ``-`` (a report groups by it).
_TAG = re.compile(rf"[a-z0-9_-]{{1,{MAX_TAG_LENGTH}}}")
_PRIORITY_OF_LABEL = {p.label: p for p in Priority}


def check_priority(value: object, *, field: str = "priority") -> Priority | None:
    """A class named ``otp``, ``transactional``, ``bulk`` or ``marketing``; ``None``: not given."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string", "wrong_type")
    try:
        return Priority.parse(value.strip().lower())
    except ValueError:
        raise InvalidField(
            field, f"must be one of {', '.join(p.label for p in Priority)}", "invalid_choice"
        ) from None


def check_tag(value: object, *, field: str = "tag") -> tuple[str | None, Priority | None]:
    """The customer's label for a kind of traffic, and the class it implies when it
    names one (tag ``otp`` means priority ``otp`` unless the priority is given)."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string", "wrong_type")
    if not _TAG.fullmatch(value):
        raise InvalidField(
            field, f"must be 1-{MAX_TAG_LENGTH} of a-z, 0-9, _ and -", "invalid_format"
        )
    return value, _PRIORITY_OF_LABEL.get(value)


def check_callback_events(value: object, *, field: str = "callback_events") -> StatusEvents | None:
    """``"all"``, ``"final"``, ``"none"`` or a list of status labels; ``None``: the account's."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() not in ("all", "final", "none"):
            raise InvalidField(
                field, 'must be "all", "final", "none" or a list of statuses', "invalid_choice"
            )
    elif not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise InvalidField(
            field, 'must be "all", "final", "none" or a list of status names', "wrong_type"
        )
    try:
        return StatusEvents.parse(value)
    except ValueError as exc:
        raise InvalidField(field, str(exc), "invalid_choice") from None


# -- the message ------------------------------------------------------------------


def build_message(
    *,
    message_id: str,
    account_id: int,
    source: Source,
    to: str,
    sender: Sender,
    body: Body,
    schedule: Schedule,
    now: float,
    reference: str | None = None,
    metadata: str | None = None,
    callback_url: str | None = None,
    registered_delivery: int = 0,
    test: bool = False,
    callback_events: StatusEvents | None = None,
    priority: Priority = DEFAULT_PRIORITY,
    tag: str | None = None,
) -> NewMessage:
    """The :class:`NewMessage` for validated parts, accepted at ``now``."""
    return NewMessage(
        id=message_id,
        account_id=account_id,
        source=source,
        to=to,
        sender=sender.value,
        body=body.data,
        encoding=body.encoding.value,
        data_coding=body.data_coding,
        segments=body.segments,
        accepted_at=now,
        expires_at=schedule.expires_at,
        send_at=schedule.send_at,
        reference=reference,
        metadata=metadata,
        callback_url=callback_url,
        registered_delivery=registered_delivery,
        test=test,
        callback_events=callback_events,
        priority=priority,
        tag=tag,
    )
