"""The signaling guard's policy engine (pure core: no I/O, no clock).

Build a :class:`Policy` with :func:`parse_policy` (TOML text), an
:class:`Engine` over it, and feed it :class:`Facts` (usually from
:func:`facts_from_message` on the codec's decoded message); each call returns a
:class:`Verdict`. Call :meth:`Engine.expire` periodically for late alerts.
"""

from herald.signaling.policy.categories import Category, category_of, operation_name
from herald.signaling.policy.config import Policy, PolicyError, parse_policy
from herald.signaling.policy.egress import InMemoryPendingMessages, PendingMessages
from herald.signaling.policy.engine import Engine
from herald.signaling.policy.facts import (
    ComponentKind,
    Direction,
    Facts,
    SccpKind,
    SmRpDaKind,
    TcapKind,
)
from herald.signaling.policy.verdict import Action, Origin, Rule, Verdict

__all__ = [
    "Action",
    "Category",
    "ComponentKind",
    "Direction",
    "Engine",
    "Facts",
    "InMemoryPendingMessages",
    "Origin",
    "PendingMessages",
    "Policy",
    "PolicyError",
    "Rule",
    "SccpKind",
    "SmRpDaKind",
    "TcapKind",
    "Verdict",
    "category_of",
    "operation_name",
    "parse_policy",
]
