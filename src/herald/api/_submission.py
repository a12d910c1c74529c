"""An HTTP message request as :mod:`herald.intake` checks it: every field at once.

:func:`plain_submission` reads a JSON object whose every field already has a
type the request model (:class:`~herald.api._models.MessageRequest`, strict)
allows, without pydantic; anything else is left to the model, which names
each wrong field. Both give the same :class:`Submission` for the same object
(``tests/api/test_fast_send.py`` checks it field by field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast

from herald.intake import (
    NO_RULES,
    Body,
    DestinationRules,
    EncodingChoice,
    IntakeError,
    IntakePolicy,
    InvalidBody,
    InvalidField,
    InvalidSubmission,
    Schedule,
    Sender,
    build_message,
    check_callback_events,
    check_callback_url,
    check_priority,
    check_reference,
    check_tag,
    decode_base64,
    normalize_destination,
    prepare_binary,
    prepare_text,
    schedule,
    serialize_metadata,
    validate_sender,
)
from herald.store import DEFAULT_PRIORITY, NewMessage, Priority, Source, StatusEvents
from herald.webhooks import blocked_destination

__all__ = [
    "ENCODINGS",
    "SUBMISSION_FIELDS",
    "Prepared", "Submission", "plain_submission", "validate_submission"]


@dataclass(frozen=True, slots=True)
class Submission:
    """One message as the HTTP API receives it (types already JSON-checked).

    ``binary`` is base64 text; ``send_at`` epoch seconds or RFC 3339;
    ``metadata`` a JSON object. Validate with :func:`validate_submission`.
    """

    to: str
    sender: str
    text: str | None = None
    binary: str | None = None
    encoding: str = "auto"
    reference: str | None = None
    metadata: object = None
    callback_url: str | None = None
    validity_period: object = None
    send_at: object = None
    test: bool = False
    callback_events: object = None
    priority: str | None = None
    tag: str | None = None


_NULL: Final[type] = type(None)
_TEXT: Final[frozenset[type]] = frozenset({str})
_OPTIONAL_TEXT: Final[frozenset[type]] = frozenset({str, _NULL})
#: The model's float takes an integer (converted) but not a flag: ``type(True)``
#: is ``bool``, so exact types keep ``true`` out.
_OPTIONAL_NUMBER: Final[frozenset[type]] = frozenset({int, float, _NULL})

#: The request's JSON fields and the exact types of the values the strict
#: model takes as they are (``None``: any value; ``validate_submission`` checks it).
SUBMISSION_FIELDS: Final[Mapping[str, frozenset[type] | None]] = {
    "to": _TEXT,
    "from": _TEXT,
    "text": _OPTIONAL_TEXT,
    "binary": _OPTIONAL_TEXT,
    "encoding": _TEXT,  # and one of ENCODINGS
    "reference": _OPTIONAL_TEXT,
    "metadata": frozenset({dict, _NULL}),
    "callback_url": _OPTIONAL_TEXT,
    "callback_events": None,
    "validity_period": _OPTIONAL_NUMBER,
    "send_at": None,
    "test": frozenset({bool}),
    "priority": _OPTIONAL_TEXT,
    "tag": _OPTIONAL_TEXT,
}
#: The model's ``encoding`` choices.
ENCODINGS: Final = frozenset({"auto", "gsm7", "ucs2", "binary"})


def plain_submission(item: dict[str, object]) -> Submission | None:
    """The :class:`Submission` of a JSON object whose fields the request model
    would take unchanged, or ``None``: a field is unknown, missing or of
    another type (validate it with the model then, to name what is wrong)."""
    fields = SUBMISSION_FIELDS
    for key, value in item.items():
        if key not in fields:
            return None
        types = fields[key]
        if types is not None and type(value) not in types:
            return None
    get = item.get
    to, sender, encoding = get("to"), get("from"), get("encoding", "auto")
    if to is None or sender is None or encoding not in ENCODINGS:
        return None
    validity = get("validity_period")
    return Submission(
        cast(str, to), cast(str, sender), cast("str | None", get("text")),
        cast("str | None", get("binary")), encoding,
        cast("str | None", get("reference")), get("metadata"),
        cast("str | None", get("callback_url")),
        None if validity is None else float(cast(float, validity)),  # the model's float
        get("send_at"), cast(bool, get("test", False)), get("callback_events"),
        cast("str | None", get("priority")), cast("str | None", get("tag")),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated submission, ready to become a :class:`NewMessage` with an id."""

    to: str
    sender: Sender
    body: Body
    schedule: Schedule
    reference: str | None
    metadata: str | None
    callback_url: str | None
    test: bool
    callback_events: StatusEvents | None = None
    priority: Priority | None = None  # None: the account's default
    tag: str | None = None

    def message(
        self,
        message_id: str,
        account_id: int,
        now: float,
        source: Source = Source.HTTP,
        *,
        default_priority: Priority | None = None,
    ) -> NewMessage:
        """The record to store; ``default_priority``: the account's class, used
        when the request named none."""
        priority = self.priority
        if priority is None:
            priority = DEFAULT_PRIORITY if default_priority is None else default_priority
        return build_message(
            message_id=message_id,
            account_id=account_id,
            source=source,
            to=self.to,
            sender=self.sender,
            body=self.body,
            schedule=self.schedule,
            now=now,
            reference=self.reference,
            metadata=self.metadata,
            callback_url=self.callback_url,
            test=self.test,
            callback_events=self.callback_events,
            priority=priority,
            tag=self.tag,
        )


def _body_of(sub: Submission, policy: IntakePolicy) -> Body:
    try:
        choice = EncodingChoice(sub.encoding)
    except ValueError:
        raise InvalidBody(
            "encoding", "must be one of auto, gsm7, ucs2, binary", "invalid_choice"
        ) from None
    if sub.text is not None and sub.binary is not None:
        raise InvalidBody("binary", "give either text or binary, not both", "conflict")
    if sub.binary is not None:
        if choice not in (EncodingChoice.AUTO, EncodingChoice.BINARY):
            raise InvalidBody(
                "encoding", f"{choice.value!r} is a text encoding; binary is sent as is", "conflict"
            )
        return prepare_binary(decode_base64(sub.binary), policy=policy)
    if sub.text is None:
        raise InvalidBody("text", "text or binary is required", "required")
    return prepare_text(sub.text, choice, policy=policy)


def validate_submission(
    sub: Submission,
    now: float,
    policy: IntakePolicy,
    *,
    block_private: bool = False,
    rules: DestinationRules = NO_RULES,
) -> Prepared:
    """Check every field of ``sub``; raise :class:`InvalidSubmission` with all refusals.

    Fields are checked independently, so one answer names every problem. With
    ``block_private``, a ``callback_url`` naming a private, loopback or
    link-local address (or ``localhost``) is refused here, where the customer
    hears of it, not dropped at delivery. ``rules`` refuse a destination
    outside the numbering plan or without a route (``unassigned``,
    ``unroutable``).
    """
    errors: list[IntakeError] = []
    to = sender = body = when = None
    try:
        to = normalize_destination(sub.to, policy=policy, rules=rules)
    except IntakeError as exc:
        errors.append(exc)
    try:
        sender = validate_sender(sub.sender, policy=policy)
    except IntakeError as exc:
        errors.append(exc)
    try:
        body = _body_of(sub, policy)
    except IntakeError as exc:
        errors.append(exc)
    try:
        when = schedule(
            now, validity_period=sub.validity_period, send_at=sub.send_at, policy=policy
        )
    except IntakeError as exc:
        errors.append(exc)
    reference = metadata = callback_url = None
    if sub.reference is not None:
        try:
            reference = check_reference(sub.reference)
        except IntakeError as exc:
            errors.append(exc)
    if sub.metadata is not None:
        try:
            metadata = serialize_metadata(sub.metadata)
        except IntakeError as exc:
            errors.append(exc)
    if sub.callback_url is not None:
        try:
            callback_url = check_callback_url(sub.callback_url)
            blocked = blocked_destination(callback_url) if block_private and callback_url else None
            if blocked is not None:
                raise InvalidField("callback_url", f"is not allowed: {blocked}", "blocked_address")
        except IntakeError as exc:
            errors.append(exc)
    events = None
    if sub.callback_events is not None:
        try:
            events = check_callback_events(sub.callback_events)
        except IntakeError as exc:
            errors.append(exc)
    priority = tag = implied = None
    try:
        tag, implied = check_tag(sub.tag)
    except IntakeError as exc:
        errors.append(exc)
    try:
        priority = check_priority(sub.priority)
    except IntakeError as exc:
        errors.append(exc)
    if errors:
        raise InvalidSubmission(tuple(errors))
    assert to is not None and sender is not None and body is not None and when is not None
    return Prepared(to, sender, body, when, reference, metadata, callback_url, sub.test, events,
                    implied if priority is None else priority, tag)
