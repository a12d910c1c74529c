"""Longest-prefix lookup on digit strings, and salted hashes of identifiers.

Global titles and IMSIs are classified by their leading digits (E.164 country
code and national destination code; E.212 MCC+MNC). A :class:`PrefixMap` keeps
one dict per distinct prefix length and probes the lengths from the longest
down, so a lookup costs at most one dict probe per length in use (a policy has
a handful), whatever the number of prefixes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Generic, TypeVar

from herald.signaling.privacy import HASH_HEX_CHARS, MIN_SALT_BYTES

__all__ = ["PrefixMap", "SubscriberHasher"]

T = TypeVar("T")


class PrefixMap(Generic[T]):
    """Maps digit prefixes to values; :meth:`longest` finds the longest match."""

    __slots__ = ("_by_length", "_lengths")

    def __init__(self, entries: Iterable[tuple[str, T]] = ()) -> None:
        by_length: dict[int, dict[str, T]] = {}
        for prefix, value in entries:
            by_length.setdefault(len(prefix), {})[prefix] = value
        self._lengths = tuple(sorted(by_length, reverse=True))
        self._by_length = tuple(by_length[n] for n in self._lengths)

    def longest(self, digits: str) -> T | None:
        size = len(digits)
        for length, table in zip(self._lengths, self._by_length, strict=True):
            if length <= size:
                found = table.get(digits[:length])
                if found is not None:
                    return found
        return None

    def __contains__(self, digits: object) -> bool:
        return isinstance(digits, str) and self.longest(digits) is not None

    def __bool__(self) -> bool:
        return bool(self._lengths)


class SubscriberHasher:
    """HMAC-SHA256(salt, "kind:identifier"), truncated: the only form in which a
    subscriber or node identifier leaves the engine (and the form the engine's
    state is keyed on). Equal to :func:`herald.signaling.privacy.salted_hash`,
    with the HMAC key schedule done once instead of per call."""

    __slots__ = ("_base",)

    def __init__(self, salt: bytes) -> None:
        if len(salt) < MIN_SALT_BYTES:
            raise ValueError(f"the hash salt must be at least {MIN_SALT_BYTES} bytes")
        self._base = hmac.new(salt, digestmod=hashlib.sha256)

    def __call__(self, kind: str, identifier: str) -> str:
        """Hash ``identifier`` in the namespace ``kind`` (``imsi``, ``msisdn``,
        ``gt``): the same digits as an IMSI and as an MSISDN hash differently."""
        h = self._base.copy()
        h.update(f"{kind}:{identifier}".encode())
        return h.hexdigest()[:HASH_HEX_CHARS]

    def __repr__(self) -> str:
        return "SubscriberHasher(<salt>)"
