"""The store's values for operating herald: admin keys and the audit log.

An admin key is a credential apart from the accounts' API keys (its own
table, its own prefix; see :mod:`herald.admin`). Every change an operator
makes (through the admin API or the ``herald`` CLI) is an
:class:`AuditEntry`: who, when, what. An entry never carries a secret: the
fields named in :data:`SECRET_FIELDS` may only say what happened to one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from herald.store._errors import InvalidRecord

__all__ = [
    "MAX_ACTION_LENGTH",
    "MAX_ACTOR_LENGTH",
    "MAX_AUDIT_CHANGES_OCTETS",
    "MAX_TARGET_LENGTH",
    "RECENT_WINDOW",
    "SECRET_FIELDS",
    "SECRET_OUTCOMES",
    "AdminKeyRecord",
    "AdminScope",
    "AuditEntry",
    "AuditFilter",
    "OverviewMinute",
    "RecentFilter",
]

MAX_ACTOR_LENGTH: Final = 128
MAX_ACTION_LENGTH: Final = 64
MAX_TARGET_LENGTH: Final = 200
#: The JSON of one entry's changes (a setting or a list of them, never a table).
MAX_AUDIT_CHANGES_OCTETS: Final = 16 * 1024
#: Change fields that name a secret: their value says what happened to it, never what it is.
SECRET_FIELDS: Final = frozenset({"key", "api_key", "password", "secret", "webhook_secret"})
SECRET_OUTCOMES: Final = frozenset({"issued", "reset", "revoked", "removed"})


class AdminScope(Enum):
    """What an admin key may do: read only, or read and change."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class AdminKeyRecord:
    """A stored admin key: its public id, its name (unique among active keys),
    its scope and the argon2id hash of its secret."""

    key_id: str
    name: str
    scope: AdminScope
    key_hash: str = field(repr=False)
    created_at: float
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _check(name: str, value: str, limit: int) -> None:
    if not value or len(value) > limit:
        raise InvalidRecord(name, f"must be 1..{limit} characters")


@dataclass(frozen=True, slots=True)
class OverviewMinute:
    """A point of the console overview's day chart (``herald.api._admin_views.Overview``):
    how much each counter grew over the ``seconds`` ending at ``at`` (epoch seconds)."""

    at: float
    seconds: float
    accepted: float
    sent: float
    delivered: float
    failed: float


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change. ``seq`` is given by the store (0 before it is recorded).

    ``actor``: the admin key's name (``key:<name>``) or ``cli:<os user>``;
    ``action``: what was done (``account.update``); ``target``: what it was
    done to (``account:acme``); ``changes``: the fields changed and their new
    values (JSON values; a secret field only says ``issued``, ``reset``...).
    """

    at: float
    actor: str
    action: str
    target: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0

    def __post_init__(self) -> None:
        _check("actor", self.actor, MAX_ACTOR_LENGTH)
        _check("action", self.action, MAX_ACTION_LENGTH)
        _check("target", self.target, MAX_TARGET_LENGTH)
        for name, value in self.changes.items():
            if name in SECRET_FIELDS and value not in SECRET_OUTCOMES:
                raise InvalidRecord(f"changes.{name}", "a secret is recorded as what"
                                    f" happened to it ({', '.join(sorted(SECRET_OUTCOMES))})")
        if len(self.changes_json()) > MAX_AUDIT_CHANGES_OCTETS:
            raise InvalidRecord("changes", f"more than {MAX_AUDIT_CHANGES_OCTETS} octets of JSON")

    def changes_json(self) -> str:
        """``changes`` as JSON (an infinite number, e.g. an unlimited rate, as a string)."""
        return json.dumps(_json_safe(self.changes), ensure_ascii=False, separators=(",", ":"),
                          sort_keys=True, allow_nan=False)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "unlimited" if value > 0 else str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries :meth:`~herald.store.AdminStore.list_audit` returns, newest first.

    ``since``: at or after this time; ``target``: this target exactly, or
    every target starting with it when it ends in ``*`` (``account:*``);
    ``before``: entries with a smaller ``seq`` (the cursor of the next page).
    """

    since: float | None = None
    target: str | None = None
    before: int | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise InvalidRecord("limit", "must be positive")
        if self.target is not None:
            _check("target", self.target, MAX_TARGET_LENGTH)


#: Messages a :class:`RecentFilter` looks at by default (the newest of the store).
RECENT_WINDOW: Final = 100_000


@dataclass(frozen=True, slots=True)
class RecentFilter:
    """Which messages :meth:`~herald.store.AdminStore.recent_messages` returns:
    among the store's newest ``window`` messages, those of ``account_id``, with
    ``status``, accepted in ``[since, until)`` (each optional), newest first, at
    most ``limit``. ``status`` is a :class:`~herald.store.Status` value."""

    account_id: int | None = None
    status: int | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    window: int = RECENT_WINDOW

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 1000:
            raise InvalidRecord("limit", "must be 1..1000")
        if self.window < 1:
            raise InvalidRecord("window", "must be positive")
