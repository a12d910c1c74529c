"""Routing rules in a running herald, and ``herald routes`` / ``herald connectors``.

The decisions themselves are pure (:mod:`herald.routing`). Here: the rules
and connector states as the store keeps them, the connectors' buy lists
(billing's) least-cost rules price by, a process's
:class:`LiveRouting` that keeps its router current with the store without a
restart, the ``[[classes]]`` entries intake applies (:class:`LiveClasses`),
and the commands (``herald.routes.cli``). See ``docs/routing.md``.
"""

from herald.routes._classes import LiveClasses
from herald.routes._explain import Explanation, explain_route
from herald.routes._live import (
    CHECK_INTERVAL,
    HEALTH_INTERVAL,
    LiveRouting,
    build_router,
    parse_stored,
    read_buy_prices,
    read_health,
)

__all__ = [
    "CHECK_INTERVAL",
    "HEALTH_INTERVAL",
    "Explanation",
    "LiveClasses",
    "LiveRouting",
    "build_router",
    "explain_route",
    "parse_stored",
    "read_buy_prices",
    "read_health",
]
