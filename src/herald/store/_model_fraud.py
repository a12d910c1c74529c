"""The live pumping defence's records (docs/fraud.md, "Live"): an account's
settings and customer controls, and every decision taken.

A decision keeps what the engine was asked (``request``: the fields of
:class:`herald.fraud.Request` and the client hints) so that a restarted
herald can feed the engine again from the store, and the reasons and figures
it answered so that the customer can read why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Final

from herald.store._errors import InvalidRecord
from herald.store._model import Status

__all__ = [
    "MAX_FRAUD_LIST_ENTRIES",
    "NO_FRAUD_SETTINGS",
    "FraudAction",
    "FraudDecision",
    "FraudMode",
    "FraudOutcome",
    "FraudReason",
    "FraudSettings",
    "FraudTail",
    "caps_from_json",
    "caps_json",
    "reasons_from_json",
    "reasons_json",
    "request_json",
]

#: Entries of an allow or deny list, and countries with a ceiling.
MAX_FRAUD_LIST_ENTRIES: Final = 1_000


class FraudMode(StrEnum):
    ENFORCE = "enforce"  # a block refuses the SMS
    MONITOR = "monitor"  # a block is recorded as would_block; the SMS is sent


class FraudAction(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    WOULD_BLOCK = "would_block"  # monitor mode: blocked by the engine, sent anyway


@dataclass(frozen=True, slots=True)
class FraudSettings:
    """An account's defence: its mode, whether OTP messages of ``POST
    /v1/messages`` are asked too, and its own controls: ``allow`` and ``deny``
    (E.164 prefixes, ``+`` and digits; a whole number is a prefix too) and
    ``country_caps`` (ISO 3166-1 alpha-2 -> money per 24 hours, the account's
    currency)."""

    mode: FraudMode = FraudMode.ENFORCE
    otp_messages: bool = False
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    country_caps: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("allow", "deny"):
            entries: tuple[str, ...] = getattr(self, name)
            if len(entries) > MAX_FRAUD_LIST_ENTRIES:
                raise InvalidRecord(name, f"more than {MAX_FRAUD_LIST_ENTRIES} entries")
            for entry in entries:
                if not (entry.startswith("+") and entry[1:].isdigit() and 2 <= len(entry) <= 16
                        and entry[1:].isascii()):
                    raise InvalidRecord(name, f"{entry!r} is not '+' and 1 to 15 digits")
        if len(self.country_caps) > MAX_FRAUD_LIST_ENTRIES:
            raise InvalidRecord("country_caps", f"more than {MAX_FRAUD_LIST_ENTRIES} entries")
        for country, cap in self.country_caps.items():
            if not (len(country) == 2 and country.isascii() and country.isupper()
                    and country.isalpha()):
                raise InvalidRecord("country_caps", f"{country!r} is not an ISO 3166-1 code")
            if not isinstance(cap, Decimal) or not cap.is_finite() or cap < 0:
                raise InvalidRecord("country_caps", f"{country}: not an amount >= 0")


NO_FRAUD_SETTINGS: Final = FraudSettings()


@dataclass(frozen=True, slots=True)
class FraudReason:
    """One reason of a decision: a code, the cell it is about, its figures."""

    code: str
    cell: str = ""
    figures: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FraudDecision:
    """One decision about one SMS of a verification (``verification_id``) or
    an OTP message (``verification_id`` ``None``). ``message_id``: the SMS
    sent (allowed, or would_block), ``None`` when it was not. ``engine``: the
    engine decided (a customer list or ceiling did not): fed again on a
    rebuild. ``price_micros``: what the SMS costs (account currency,
    micro-units; ``None`` unbilled)."""

    id: str
    account_id: int
    created_at: float
    to: str
    action: FraudAction
    reasons: tuple[FraudReason, ...]
    engine: bool
    country: str | None = None
    price_micros: int | None = None
    currency: str | None = None
    verification_id: str | None = None
    message_id: str | None = None
    request: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FraudOutcome:
    """What became of a message the defence let through: its final status
    (``None``: not final yet) and when, and when its code was entered."""

    message_id: str
    status: Status | None
    done_at: float | None
    converted_at: float | None


@dataclass(frozen=True, slots=True)
class FraudTail:
    """What the store took since a cursor (docs/fraud.md, "Live"): the engine
    decisions of every process and node, oldest first, the conversions
    (message id, when its code was entered), and the cursor to ask from next.
    A cursor is the store's own (opaque to the caller); each decision and
    conversion comes in exactly one tail."""

    decisions: tuple[FraudDecision, ...]
    conversions: tuple[tuple[str, float], ...]
    cursor: tuple[int, int]


# -- stored forms (JSON text), the same in every store --------------------------------


def reasons_json(reasons: Sequence[FraudReason]) -> str:
    return json.dumps([{"code": r.code, "cell": r.cell, "figures": dict(r.figures)}
                       for r in reasons], separators=(",", ":"))  # fmt: skip


def reasons_from_json(text: str) -> tuple[FraudReason, ...]:
    return tuple(FraudReason(x["code"], x["cell"], x["figures"]) for x in json.loads(text))


def request_json(request: Mapping[str, str]) -> str:
    return json.dumps(dict(request), sort_keys=True, separators=(",", ":"))


def caps_json(caps: Mapping[str, Decimal]) -> str:
    """Ceilings as decimal text (exact, never a float)."""
    return json.dumps({k: str(v) for k, v in sorted(caps.items())})


def caps_from_json(text: str) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in json.loads(text).items()}
