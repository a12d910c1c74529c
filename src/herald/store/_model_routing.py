"""The store's routing values: the stored routes file, connector states,
delivery counts per connector and the rule that routed a message."""

from __future__ import annotations

from dataclasses import dataclass

from herald.store._errors import InvalidRecord

__all__ = [
    "MAX_ROUTES_OCTETS",
    "MAX_RULE_NAME_LENGTH",
    "ConnectorState",
    "DeliveryCounts",
    "FinalPart",
    "MessageRoute",
    "RouteRecord",
    "StoredRoutes",
]

#: A routes file as stored: 1,000 rules fit many times; more is a mistaken file.
MAX_ROUTES_OCTETS = 64 * 1024 * 1024
#: A rule's name as stored with each message it routes.
MAX_RULE_NAME_LENGTH = 64
#: A connector name (herald.toml's; the segments table bounds it the same).
_MAX_CONNECTOR = 64
_MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class StoredRoutes:
    """The routing rules in force: the routes file (TOML) as imported, where
    it came from and when; ``generation``: the change that wrote them (set by
    the store). (Buy prices are billing's buy lists: ``price_lists``.)"""

    rules: str
    source: str
    imported_at: float
    generation: int = 0

    def __post_init__(self) -> None:
        if len(self.rules.encode()) > MAX_ROUTES_OCTETS:
            raise InvalidRecord("rules", f"routes exceed {MAX_ROUTES_OCTETS} octets")
        if len(self.source) > 1024:
            raise InvalidRecord("source", "longer than 1024")


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """An operator's word on a connector: ``disabled`` keeps routing off it."""

    connector: str
    disabled: bool
    reason: str | None
    changed_at: float

    def __post_init__(self) -> None:
        if not self.connector or len(self.connector) > _MAX_CONNECTOR:
            raise InvalidRecord("connector", f"must be 1..{_MAX_CONNECTOR} characters")
        if self.reason is not None and len(self.reason) > _MAX_REASON:
            raise InvalidRecord("reason", f"longer than {_MAX_REASON}")


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    """A connector's recent final segments: how many, and how many delivered."""

    connector: str
    delivered: int
    finals: int


@dataclass(frozen=True, slots=True)
class FinalPart:
    """A segment that reached a final status: its connector, its message's number
    (as stored), whether it was delivered, when its message went out upstream
    (``None``: not recorded) and when the segment's final status came."""

    connector: str
    to: str
    delivered: bool
    sent_at: float | None
    final_at: float


@dataclass(frozen=True, slots=True)
class RouteRecord:
    """``message_id`` was routed by rule ``rule`` at ``at``."""

    message_id: str
    rule: str
    at: float

    def __post_init__(self) -> None:
        if not self.rule or len(self.rule) > MAX_RULE_NAME_LENGTH:
            raise InvalidRecord("rule", f"must be 1..{MAX_RULE_NAME_LENGTH} characters")


@dataclass(frozen=True, slots=True)
class MessageRoute:
    """How a message went: the connector that carried it (its first segment's;
    ``None`` until one was accepted upstream) and the rule that chose it
    (``None``: no rule recorded, e.g. routed before rules existed)."""

    connector: str | None
    rule: str | None
