"""CDR exports and margin reports as ``herald cdr`` and the admin API write them.

One home for the columns, the periods' time forms and the money text, so
that ``herald cdr export`` and ``GET /v1/admin/cdrs`` write the same CSV.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from herald.rating import from_micros
from herald.store import Cdr, MarginRow

__all__ = [
    "CDR_COLUMNS", "CDR_PAGE", "MARGIN_GROUPS", "cdr_row", "margin_key", "margin_percent",
    "money", "parse_when", "utc_text",
]  # fmt: skip

#: The columns of a CDR export (money in units of currency, 6 places).
CDR_COLUMNS: Final = (
    "message_id", "account", "accepted_at", "country", "network", "segments", "priced_by",
    "sell", "refunded", "connector", "buy", "status",
)  # fmt: skip
#: CDRs read from the store per round trip while exporting.
CDR_PAGE: Final = 5_000
#: What a margin report groups by.
MARGIN_GROUPS: Final = ("account", "connector", "country")


def money(micros: int) -> str:
    """Micro-units as decimal text with 6 places (``1500000`` -> ``1.500000``)."""
    return f"{from_micros(micros):f}"


def utc_text(seconds: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds (``2027-01-15T08:00:00.000Z``)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_when(text: str) -> float:
    """A period's bound: ``YYYY-MM-DD`` (UTC midnight), an RFC 3339 date-time
    with its offset, or epoch seconds; ``ValueError`` otherwise."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            value = float(text)
            if math.isfinite(value):
                return value
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
        if moment.tzinfo is not None:
            return moment.timestamp()
    except ValueError:
        pass
    raise ValueError(
        f"{text!r}: not YYYY-MM-DD, an RFC 3339 date-time with its offset, or epoch seconds"
    )


def cdr_row(c: Cdr, names: Mapping[int, str]) -> tuple[object, ...]:
    """One CDR as a row of :data:`CDR_COLUMNS` (``names``: account names by id)."""
    return (
        c.message_id, names.get(c.account_id, str(c.account_id)), utc_text(c.accepted_at),
        "+" + c.country, c.network or "", c.segments, c.price_key, money(c.sell),
        money(c.refunded), c.connector or "", "" if c.buy is None else money(c.buy),
        c.status.label,
    )  # fmt: skip


def margin_key(row: MarginRow, by: str, names: Mapping[str, str]) -> str:
    """How a margin row's group is shown: an account's name, ``+49``, a
    connector's name or ``(not sent)``."""
    if by == "account":
        return names.get(row.key, row.key)
    if by == "country":
        return "+" + row.key
    return row.key or "(not sent)"


def margin_percent(part: int, whole: int) -> str:
    """``part`` as a percentage of ``whole``, one place; ``-`` for no revenue."""
    if whole == 0:
        return "-"
    return f"{Decimal(part * 100) / Decimal(whole):.1f}"
