"""The priority class a ``[[classes]]`` entry gives a message whose request named none.

:class:`Classifier` walks the entries in order; the **first** whose every
criterion matches gives its class (the criteria and their matching are the
routing rules', :func:`~herald.routing._decide.mismatch`). None matching:
no class from the routes file (the account's default applies, else
transactional). Immutable: whoever reads new entries builds a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from herald.routing._decide import RouteQuery, RuleCheck, longest_prefix, mismatch
from herald.routing._rules import ClassRule
from herald.store import Priority

__all__ = ["ClassChoice", "Classifier"]


class ClassChoice(NamedTuple):
    """The class an entry gives (``None``: no entry matches) and the entry's
    name; with ``explain``, every entry considered and why it matched or not."""

    priority: Priority | None
    entry: str | None
    checks: tuple[RuleCheck, ...] = ()


_NONE = ClassChoice(None, None)


class Classifier:
    """The ``[[classes]]`` entries of a routes file; see the module docstring."""

    __slots__ = ("_accounts", "_prefix_lengths", "_prefixes", "entries", "uses_accounts",
                 "uses_country", "uses_network")

    def __init__(self, entries: Sequence[ClassRule] = (), *,
                 groups: Mapping[str, Iterable[str]] | None = None) -> None:
        self.entries = tuple(entries)
        members = {name: frozenset(accounts) for name, accounts in (groups or {}).items()}
        self._accounts = tuple(
            e.accounts.union(*(members.get(g, ()) for g in e.groups)) for e in self.entries)
        self._prefixes = frozenset(p for e in self.entries for p in e.prefixes)
        self._prefix_lengths = sorted({len(p) for p in self._prefixes}, reverse=True)
        #: What a caller must put in a query for the entries to match right.
        self.uses_accounts = any(self._accounts)
        self.uses_country = any(e.countries for e in self.entries)
        self.uses_network = any(e.networks for e in self.entries)

    def prefix_class(self, to: str) -> str:
        """The longest entry prefix ``to`` starts with: numbers of one prefix
        class match the same prefix criteria (a cache keys on it)."""
        return longest_prefix(to, self._prefixes, self._prefix_lengths)

    def classify(self, query: RouteQuery, now: float, *, explain: bool = False) -> ClassChoice:
        """The class the first entry matching ``query`` at ``now`` gives
        (``query.priority`` is not looked at)."""
        checks: list[RuleCheck] = []
        for k, entry in enumerate(self.entries):
            miss = mismatch(entry, self._accounts[k], query, now, explain)
            if miss is None:
                if explain:
                    checks.append(RuleCheck(entry.name, True, "every criterion matches: chosen"))
                return ClassChoice(entry.priority, entry.name, tuple(checks))
            if explain:
                checks.append(RuleCheck(entry.name, False, miss))
        return ClassChoice(None, None, tuple(checks)) if explain else _NONE
