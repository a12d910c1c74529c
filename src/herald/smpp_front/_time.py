"""SMPP time fields (schedule_delivery_time, validity_period) to epoch seconds.

SMPP 3.4 §7.1.1: ``YYMMDDhhmmsstnnp`` — 16 characters. ``t`` tenths of a
second, ``nn`` the offset from UTC in quarter hours, ``p`` one of:

* ``+`` / ``-``: absolute time, local time ahead of / behind UTC by ``nn``
  quarter hours;
* ``R``: relative to now (``YY`` years ... ``ss`` seconds; ``tnn`` unused).

An empty string means "not given". Anything else is refused with the status
the field's spec names (ESME_RINVSCHED / ESME_RINVEXPIRY), raised as
``SmppTimeError``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["SmppTimeError", "parse_smpp_time"]


class SmppTimeError(ValueError):
    """The field is not an SMPP 3.4 §7.1.1 time."""


def parse_smpp_time(value: str, now: float) -> float | None:
    """Epoch seconds for an SMPP time field, or None when it is empty."""
    if not value:
        return None
    if len(value) != 16 or not value[:15].isdigit() or value[15] not in "+-R":
        raise SmppTimeError(f"not an SMPP time (YYMMDDhhmmsstnnp): {value!r}")
    yy, mo, dd, hh, mi, ss = (int(value[i:i + 2]) for i in range(0, 12, 2))
    tenths, quarters, sign = int(value[12]), int(value[13:15]), value[15]
    if sign == "R":
        # Relative: months and years have no fixed length; SMPP SMSCs use 30/365 days.
        seconds = ((yy * 365 + mo * 30 + dd) * 24 + hh) * 3600 + mi * 60 + ss
        return now + seconds
    if quarters > 48:
        raise SmppTimeError(f"UTC offset of {quarters} quarter hours is out of range")
    try:
        local = datetime(2000 + yy, mo, dd, hh, mi, ss, tenths * 100_000, tzinfo=UTC)
    except ValueError as exc:
        raise SmppTimeError(f"not a valid date: {value!r} ({exc})") from None
    offset = timedelta(minutes=15 * quarters)
    utc = local - offset if sign == "+" else local + offset
    return utc.timestamp()
