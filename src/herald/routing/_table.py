"""The prefix tables: which connectors carry a message when no rule decides, which
account owns an inbound number (pure: no I/O, no clock).

Outbound (:class:`RouteTable`): the route whose prefix is the *longest* prefix
of the destination's E.164 digits wins; its connectors are tried in order (the
first that accepts wins; a permanent failure moves the message to the next). An
empty prefix is the catch-all. A destination no route matches raises
:class:`NoRoute`; dispatch then fails the message permanently (error code
``herald.dispatch.ErrorCode.NO_ROUTE``).

Inbound (:class:`InboundTable`): a mobile-originated message to ``number``
belongs to the account of the rule for exactly that number, else of the
longest matching prefix rule (an empty prefix is the default account), else to
nobody (:class:`UnknownNumber`).

Numbers are compared as E.164 digits: a leading ``+`` is ignored; anything
else that is not a digit makes the number unroutable (:class:`InvalidNumber`),
never a silent partial match. Lookups cost at most ``MAX_E164_DIGITS + 1``
dictionary probes, whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = [
    "MAX_E164_DIGITS",
    "InboundRule",
    "InboundTable",
    "InvalidNumber",
    "NoRoute",
    "Route",
    "RouteTable",
    "RoutingError",
    "UnknownNumber",
    "e164_digits",
]

#: ITU-T E.164 §6: an international number has at most 15 digits. Longer input
#: is no number, and bounding it bounds every lookup.
MAX_E164_DIGITS: Final = 15
#: SMPP 3.4 §5.2.9: destination_addr is at most 20 characters (21 with the NUL);
#: MO destinations may be short codes or long numbers in national formats.
MAX_ADDRESS_DIGITS: Final = 20


class RoutingError(ValueError):
    """Base of routing's errors: the number cannot be routed."""


class InvalidNumber(RoutingError):
    """The number is empty, too long, or has a character that is not a digit."""


class NoRoute(RoutingError):
    """No route's prefix matches the destination (and there is no catch-all)."""


class UnknownNumber(RoutingError):
    """No inbound rule (and no default account) covers the number."""


def e164_digits(number: str, *, limit: int = MAX_E164_DIGITS) -> str:
    """``number`` as bare digits (a leading ``+`` dropped). Raises :class:`InvalidNumber`."""
    digits = number[1:] if number.startswith("+") else number
    if not digits or len(digits) > limit or not (digits.isascii() and digits.isdigit()):
        raise InvalidNumber(f"not a number of 1..{limit} digits")
    return digits


class _RouteLike(Protocol):
    @property
    def prefix(self) -> str: ...
    @property
    def connectors(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Route:
    """Destinations starting with ``prefix`` go to ``connectors``, in order."""

    prefix: str
    connectors: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.prefix and e164_digits(self.prefix) != self.prefix:
            raise InvalidNumber(f"route prefix {self.prefix!r} is not bare digits")
        if not self.connectors:
            raise ValueError(f"route {self.prefix!r} names no connector")


class RouteTable:
    """Longest-prefix match from E.164 digits to an ordered connector list."""

    __slots__ = ("_longest", "_routes")

    def __init__(self, routes: Iterable[_RouteLike]) -> None:
        table: dict[str, tuple[str, ...]] = {}
        for r in routes:
            route = Route(r.prefix.removeprefix("+"), tuple(r.connectors))
            if route.prefix in table:
                raise ValueError(f"two routes for prefix {route.prefix!r}")
            table[route.prefix] = route.connectors
        self._routes = table
        self._longest = max((len(p) for p in table), default=0)

    def __len__(self) -> int:
        return len(self._routes)

    @property
    def connectors(self) -> frozenset[str]:
        """Every connector some route names."""
        return frozenset(name for names in self._routes.values() for name in names)

    def lookup(self, destination: str) -> tuple[str, ...]:
        """The connectors for ``destination``, in the order to try them.

        Raises :class:`InvalidNumber` (not E.164 digits) or :class:`NoRoute`.
        """
        digits = e164_digits(destination)
        routes = self._routes
        for length in range(min(len(digits), self._longest), -1, -1):
            found = routes.get(digits[:length])
            if found is not None:
                return found
        raise NoRoute("no route for this destination")


@dataclass(frozen=True, slots=True)
class InboundRule:
    """MO messages to ``number`` (exact) or to numbers starting with ``prefix``
    belong to ``account``. Exactly one of ``number`` / ``prefix`` is set; an
    empty ``prefix`` makes ``account`` the default."""

    account: str
    number: str | None = None
    prefix: str | None = None

    def __post_init__(self) -> None:
        if (self.number is None) == (self.prefix is None):
            raise ValueError("an inbound rule has exactly one of number or prefix")
        if self.number is not None:
            e164_digits(self.number, limit=MAX_ADDRESS_DIGITS)
        if self.prefix:
            e164_digits(self.prefix, limit=MAX_ADDRESS_DIGITS)
        if not self.account:
            raise ValueError("an inbound rule names an account")


class _InboundLike(Protocol):
    @property
    def account(self) -> str: ...
    @property
    def number(self) -> str | None: ...
    @property
    def prefix(self) -> str | None: ...


class InboundTable:
    """Exact number, then longest prefix, then the default: the owning account's name."""

    __slots__ = ("_exact", "_longest", "_prefixes")

    def __init__(self, rules: Sequence[_InboundLike]) -> None:
        self._exact: dict[str, str] = {}
        self._prefixes: dict[str, str] = {}
        for r in rules:
            rule = InboundRule(r.account, r.number, r.prefix)
            if rule.number is not None:
                key, table = e164_digits(rule.number, limit=MAX_ADDRESS_DIGITS), self._exact
            else:
                key, table = (rule.prefix or "").removeprefix("+"), self._prefixes
            if key in table:
                raise ValueError(f"two inbound rules for {key!r}")
            table[key] = rule.account
        self._longest = max((len(p) for p in self._prefixes), default=0)

    @property
    def accounts(self) -> frozenset[str]:
        """Every account name some rule names."""
        return frozenset((*self._exact.values(), *self._prefixes.values()))

    def lookup(self, number: str) -> str:
        """The account owning ``number``. Raises :class:`InvalidNumber`, :class:`UnknownNumber`."""
        digits = e164_digits(number, limit=MAX_ADDRESS_DIGITS)
        exact = self._exact.get(digits)
        if exact is not None:
            return exact
        prefixes = self._prefixes
        for length in range(min(len(digits), self._longest), -1, -1):
            found = prefixes.get(digits[:length])
            if found is not None:
                return found
        raise UnknownNumber("no inbound rule covers this number")
