"""An account's settings as operators give them, checked one by one (pure).

The same names and rules for ``herald accounts create|set`` and the admin
API (``POST``/``PATCH /v1/admin/accounts``): :data:`SETTINGS` maps each to
the :class:`~herald.store.Account` field it sets and a check that turns the
given value (a JSON value, or what argparse already parsed) into the field's
value or raises :class:`FieldProblem`-carrying :class:`InvalidInput`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from herald.admin._errors import FieldProblem, InvalidInput
from herald.intake import IntakeError, check_callback_url
from herald.store import (
    MAX_WEBHOOK_BATCH,
    MAX_WEBHOOK_BATCH_WAIT,
    Account,
    Priority,
    StatusEvents,
)
from herald.webhooks import blocked_destination

__all__ = ["MAX_BIND_LIMIT", "SETTINGS", "apply_settings", "describe_settings"]

#: Simultaneous SMPP binds one account may hold (each is a connection and a task).
MAX_BIND_LIMIT: Final = 1000


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Refused("wrong_type", "must be a number")
    return float(value)


def _rate(value: Any) -> float:
    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return math.inf
    if isinstance(value, str):
        raise _Refused("wrong_type", "must be a number of messages per second or 'unlimited'")
    rate = _number(value)
    if not rate > 0:
        raise _Refused("out_of_range", "must be positive (or 'unlimited')")
    return rate


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Refused("wrong_type", "must be an integer")
        if not low <= value <= high:
            raise _Refused("out_of_range", f"must be {low}..{high}")
        return value

    return check


def _url(value: Any) -> str | None:
    try:
        return check_callback_url(value, field="url")
    except IntakeError as exc:
        raise _Refused(exc.code, exc.message) from None


def _events(value: Any) -> StatusEvents:
    if isinstance(value, StatusEvents):
        return value
    if not (isinstance(value, str) or (isinstance(value, list)
                                       and all(isinstance(v, str) for v in value))):
        raise _Refused("wrong_type", 'must be "all", "final", "none" or a list of statuses')
    try:
        return StatusEvents.parse(value)
    except ValueError as exc:
        raise _Refused("invalid_choice", str(exc)) from None


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Refused("wrong_type", "must be true or false")
    return value


def _priority(value: Any) -> Priority | None:
    if value is None or isinstance(value, Priority):
        return value
    if not isinstance(value, str):
        raise _Refused("wrong_type", "must be a priority class name or null")
    try:
        return Priority.parse(value)
    except ValueError as exc:
        raise _Refused("invalid_choice", str(exc)) from None


def _wait_ms(value: Any) -> float:
    ms = _number(value)
    if not 0 <= ms <= MAX_WEBHOOK_BATCH_WAIT * 1000:
        raise _Refused("out_of_range", f"must be 0..{MAX_WEBHOOK_BATCH_WAIT * 1000:g}")
    return ms / 1000


#: setting -> (Account field, check). The order is the order problems are reported in.
SETTINGS: Final[Mapping[str, tuple[str, Callable[[Any], Any]]]] = {
    "rate_limit": ("rate_limit", _rate),
    "bind_limit": ("bind_limit", _integer(0, MAX_BIND_LIMIT)),
    "callback_url": ("callback_url", _url),
    "callback_events": ("webhook_events", _events),
    "inbound": ("inbound_webhooks", _flag),
    "inbound_url": ("inbound_url", _url),
    "webhook_batch": ("webhook_batch_max", _integer(1, MAX_WEBHOOK_BATCH)),
    "webhook_batch_wait_ms": ("webhook_batch_wait", _wait_ms),
    "priority": ("priority", _priority),
}


_URLS: Final = ("callback_url", "inbound_url")


def apply_settings(
    account: Account, given: Mapping[str, Any], *, allow_private_urls: bool
) -> tuple[Account, dict[str, Any]]:
    """``account`` with the settings ``given``, and the settings that changed
    (their new values as :func:`describe_settings` shows them).

    Raises :class:`InvalidInput` naming every refused setting (an unknown
    name too); nothing is applied then. A URL naming a private, loopback or
    link-local address is refused unless ``allow_private_urls`` (a herald with
    ``[webhooks] block_private_addresses = false``).
    """
    problems: list[FieldProblem] = []
    fields: dict[str, Any] = {}
    for name in given:
        if name not in SETTINGS:
            problems.append(FieldProblem(name, "unknown_field", "is not a setting; settings: "
                                         + ", ".join(SETTINGS)))
    for name, (attribute, check) in SETTINGS.items():
        if name not in given:
            continue
        try:
            value = check(given[name])
            if attribute in _URLS and value is not None and not allow_private_urls:
                blocked = blocked_destination(value)
                if blocked is not None:
                    raise _Refused("private_address", f"is not allowed: {blocked} (this herald"
                                   " has [webhooks] block_private_addresses = true)")
        except _Refused as exc:
            problems.append(FieldProblem(name, exc.code, exc.message))
            continue
        fields[attribute] = value
    if problems:
        raise InvalidInput(problems)
    changed = dataclasses.replace(account, **fields)
    before, after = describe_settings(account), describe_settings(changed)
    return changed, {name: value for name, value in after.items() if before[name] != value}


def describe_settings(account: Account) -> dict[str, Any]:
    """The account's settings by name, as JSON values (what the API shows and takes)."""
    a = account
    return {
        "rate_limit": "unlimited" if math.isinf(a.rate_limit) else a.rate_limit,
        "bind_limit": a.bind_limit,
        "callback_url": a.callback_url,
        "callback_events": a.webhook_events.describe(),
        "inbound": a.inbound_webhooks,
        "inbound_url": a.inbound_url,
        "webhook_batch": a.webhook_batch_max,
        "webhook_batch_wait_ms": round(a.webhook_batch_wait * 1000, 3),
        "priority": None if a.priority is None else a.priority.label,
    }
