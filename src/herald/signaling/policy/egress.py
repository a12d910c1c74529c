"""The port to herald's message store that platform egress checks consult.

Every SRI-SM and MT-ForwardSM leaving from the platform's own global titles must
serve a customer message queued for that number. The engine asks the store
through :class:`PendingMessages`; herald's SQLite/PostgreSQL store implements
it, and :class:`InMemoryPendingMessages` serves tests, scans and the benchmark.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

__all__ = ["InMemoryPendingMessages", "PendingMessages", "SharedLookups"]


@runtime_checkable
class PendingMessages(Protocol):
    """Whether a customer message to ``msisdn`` (E.164 digits, no ``+``) is
    queued and not yet final at time ``now``. Must be fast (an index lookup) and
    must not raise: when the store cannot answer, answer ``False`` (fail closed).
    """

    def has_pending(self, msisdn: str, now: float) -> bool: ...


class InMemoryPendingMessages:
    """A set of queued destination numbers, each until an optional expiry time."""

    __slots__ = ("_until",)

    def __init__(self, msisdns: Iterable[str] = ()) -> None:
        self._until: dict[str, float] = {m: float("inf") for m in msisdns}

    def add(self, msisdn: str, until: float = float("inf")) -> None:
        self._until[msisdn] = until

    def discard(self, msisdn: str) -> None:
        self._until.pop(msisdn, None)

    def has_pending(self, msisdn: str, now: float) -> bool:
        until = self._until.get(msisdn)
        return until is not None and now <= until

    def __len__(self) -> int:
        return len(self._until)


@runtime_checkable
class SharedLookups(Protocol):
    """SRI-SM answers shared by the proxies of an active pair, at once: the
    delivery that follows a lookup answered through one proxy may arrive
    through the other before their next share. ``requester`` is the SMSC's
    GT, ``subscriber`` the published (salted) hash of the IMSI, ``node`` the
    serving node the HLR named ("" for none). Must be fast and must not
    raise: a store that cannot answer ``find`` answers ``None``."""

    def answered(self, requester: str, subscriber: str, node: str, when: float,
                 until: float) -> None:  # fmt: skip
        """The HLR answered ``requester`` at ``when``; the delivery may follow until ``until``."""
        ...

    def find(self, requester: str, subscriber: str, now: float) -> tuple[float, str] | None:
        """(when answered, node) of a live answer to ``requester`` about
        ``subscriber`` shared by any proxy, which a delivery now follows
        (:meth:`delivered` says so from then on); None if there is none."""
        ...

    def delivered(self, requester: str, subscriber: str) -> bool:
        """Whether a delivery through any proxy followed that answer (found by
        :meth:`find`): its lookup was not a lookup only."""
        ...
