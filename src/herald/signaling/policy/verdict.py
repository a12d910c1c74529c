"""What the guard decides about a message: allow, alert or block, and why.

A :class:`Verdict` names the rule that decided and the category of the
operation, gives a reason a human can act on, and identifies the subscriber and
the sender only by salted hashes: it is safe to print, log, audit and export.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, NamedTuple

from herald.signaling.policy.categories import Category

__all__ = ["Action", "Origin", "Rule", "Verdict"]


class Action(Enum):
    """Ordered by severity: a message gets the most severe action any rule gives."""

    ALLOW = "allow"
    ALERT = "alert"  # pass it on, but record it and tell someone
    BLOCK = "block"  # do not pass it on; record it

    # Members are singletons compared by identity: hash them by identity too
    # (Enum's own __hash__ is Python code, on the hot path of every dict lookup).
    __hash__ = object.__hash__


class Rule(Enum):
    """The rules, by the names shared with the scenario corpus' labels."""

    CAT1 = "cat1"
    CAT2 = "cat2"
    CAT3_VELOCITY = "cat3-velocity"
    SMS_CONSISTENCY = "sms-consistency"
    SILENT_SMS = "silent-sms"
    LOOKUP_ONLY = "lookup-only"
    REPEATED_LOOKUP = "repeated-lookup"
    RANGE_SWEEP = "range-sweep"
    ADDRESS_MISMATCH = "address-mismatch"
    TCAP_SANITY = "tcap-sanity"
    PLATFORM_EGRESS = "platform-egress"
    DENY_LIST = "deny-list"
    RATE_LIMIT = "rate-limit"
    SMS_ORIGIN = "sms-origin"
    SMS_SPOOFING = "sms-spoofing"
    # The proxy's SMS home routing refused a message to the SMS router (an
    # unknown, expired, replayed or foreign correlation id): always a block.
    HOME_ROUTING = "home-routing"
    # Not a policy rule: the message could not be decoded at all (strict parse).
    MALFORMED = "malformed"

    __hash__ = object.__hash__


class Origin(Enum):
    """Who sent the message, judged by its calling global title."""

    PLATFORM = "platform"  # one of herald's own global titles
    HOME = "home"  # the home network
    PARTNER = "partner"  # a roaming partner
    FOREIGN = "foreign"  # any other network

    __hash__ = object.__hash__


class Verdict(NamedTuple):
    """The decision about one message (or a late alert about an earlier one).

    ``subscriber`` and ``sender`` are salted hashes, given for blocks and
    alerts (empty for allowed messages, and when the message names no
    subscriber); ``late`` marks a verdict produced by the timer
    (:meth:`Engine.expire`) rather than by a message.
    """

    action: Action
    rule: Rule | None
    category: Category
    reason: str
    time: float
    operation: str = ""
    origin: Origin = Origin.FOREIGN
    subscriber: str = ""
    sender: str = ""
    late: bool = False

    @property
    def allowed(self) -> bool:
        """Whether the message may be passed on (allow or alert)."""
        return self.action is not Action.BLOCK

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view: everything in it is safe to publish."""
        return {
            "time": self.time,
            "action": self.action.value,
            "rule": None if self.rule is None else self.rule.value,
            "category": self.category.value,
            "operation": self.operation,
            "origin": self.origin.value,
            "reason": self.reason,
            "subscriber": self.subscriber,
            "sender": self.sender,
            "late": self.late,
        }
