"""The port to herald's message store that platform egress checks consult.

Every SRI-SM and MT-ForwardSM leaving from the platform's own global titles must
serve a customer message queued for that number. The engine asks the store
through :class:`PendingMessages`; herald's SQLite/PostgreSQL store implements
it, and :class:`InMemoryPendingMessages` serves tests, scans and the benchmark.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

__all__ = ["InMemoryPendingMessages", "PendingMessages"]


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
