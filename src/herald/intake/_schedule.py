"""Schedules: ``send_at`` and the expiry that follows from the validity period."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from herald.intake._errors import InvalidSchedule, InvalidValidity
from herald.intake._policy import DEFAULT_POLICY, IntakePolicy

__all__ = ["Schedule", "parse_time", "schedule"]

#: Epoch times beyond this (year 9999) are refused before any arithmetic.
_MAX_EPOCH: Final = 253402300799.0


@dataclass(frozen=True, slots=True)
class Schedule:
    """When to send (``None``: now) and when to give up (epoch seconds)."""

    send_at: float | None
    expires_at: float


def parse_time(value: object, *, field: str = "send_at") -> float:
    """Epoch seconds from a number (epoch seconds) or an RFC 3339 date-time.

    RFC 3339 §5.6 requires the offset (``Z`` or ``+hh:mm``); a local time
    without one is refused. Raises :class:`InvalidSchedule` (``invalid_time``).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidSchedule(
            field, "must be epoch seconds or an RFC 3339 date-time", "invalid_time"
        )
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40 or not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt ].+", text):
            raise InvalidSchedule(field, "is not an RFC 3339 date-time", "invalid_time")
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "zZ" else text)
        except ValueError:
            raise InvalidSchedule(field, "is not an RFC 3339 date-time", "invalid_time") from None
        if moment.tzinfo is None:
            raise InvalidSchedule(
                field, "needs a UTC offset (RFC 3339 §5.6), e.g. 'Z'", "invalid_time"
            )
        return moment.timestamp()
    seconds = float(value)
    if not (math.isfinite(seconds) and 0 <= seconds <= _MAX_EPOCH):
        raise InvalidSchedule(field, "is not a time herald can schedule", "invalid_time")
    return seconds


def schedule(
    now: float,
    *,
    validity_period: object = None,
    send_at: object = None,
    expires_at: float | None = None,
    policy: IntakePolicy = DEFAULT_POLICY,
    validity_field: str = "validity_period",
    send_at_field: str = "send_at",
) -> Schedule:
    """The schedule of a message accepted at ``now`` (epoch seconds).

    ``validity_period`` (seconds) counts from acceptance, as SMPP's relative
    validity does (SMPP 3.4 §7.1.1); ``expires_at`` is the absolute form (SMPP
    absolute validity), mutually exclusive with it. Without either, a message
    lives ``policy.default_validity`` from when it is due to be sent, so a
    scheduled message never expires before its time. ``send_at`` may be a
    number or RFC 3339 (see :func:`parse_time`); a value at or before ``now``
    means "now".

    Raises :class:`InvalidValidity` (``wrong_type``, ``out_of_range``) and
    :class:`InvalidSchedule` (``invalid_time``, ``in_the_past``, ``too_far``,
    ``after_expiry``).
    """
    if validity_period is not None and expires_at is not None:
        raise ValueError("give validity_period or expires_at, not both")
    due: float | None = None
    if send_at is not None:
        due = parse_time(send_at, field=send_at_field)
        if due < now - policy.send_at_skew:
            raise InvalidSchedule(
                send_at_field,
                f"is more than {policy.send_at_skew:g} s in the past",
                "in_the_past",
            )
        if due > now + policy.max_schedule_ahead:
            raise InvalidSchedule(
                send_at_field,
                f"is more than {policy.max_schedule_ahead / 86400:g} days ahead",
                "too_far",
            )
        if due <= now:
            due = None
    if validity_period is not None:
        if isinstance(validity_period, bool) or not isinstance(validity_period, int | float):
            raise InvalidValidity(validity_field, "must be a number of seconds", "wrong_type")
        period = float(validity_period)
        if not (math.isfinite(period) and policy.min_validity <= period <= policy.max_validity):
            raise InvalidValidity(
                validity_field,
                f"must be {policy.min_validity:g}..{policy.max_validity:g} seconds",
                "out_of_range",
            )
        expiry = now + period
    elif expires_at is not None:
        if not (
            math.isfinite(expires_at)
            and now + policy.min_validity <= expires_at <= now + policy.max_validity
        ):
            raise InvalidValidity(
                validity_field,
                f"must end {policy.min_validity:g}..{policy.max_validity:g} seconds from now",
                "out_of_range",
            )
        expiry = expires_at
    else:
        expiry = (now if due is None else due) + policy.default_validity
    if due is not None and due >= expiry:
        raise InvalidSchedule(
            send_at_field,
            "is not before the message expires (acceptance + validity_period)",
            "after_expiry",
        )
    return Schedule(due, expiry)
