"""Longest-prefix lookup on digit strings, and salted hashes of identifiers.

Global titles and IMSIs are classified by their leading digits (E.164 country
code and national destination code; E.212 MCC+MNC). A :class:`PrefixMap` keeps
one dict per distinct prefix length and probes the lengths from the longest
down, so a lookup costs at most one dict probe per length in use (a policy has
a handful), whatever the number of prefixes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final, Generic, TypeVar

from herald.signaling.privacy import HASH_HEX_CHARS, MIN_SALT_BYTES

__all__ = ["PrefixMap", "SubscriberHasher"]

T = TypeVar("T")

# RFC 2104 §2: SHA-256's block size, and the inner and outer pads.
_BLOCK: Final = 64
_IPAD: Final = bytes((x ^ 0x36) for x in range(256))
_OPAD: Final = bytes((x ^ 0x5C) for x in range(256))


class PrefixMap(Generic[T]):
    """Maps digit prefixes to values; :meth:`longest` finds the longest match."""

    __slots__ = ("_tables",)

    def __init__(self, entries: Iterable[tuple[str, T]] = ()) -> None:
        by_length: dict[int, dict[str, T]] = {}
        for prefix, value in entries:
            by_length.setdefault(len(prefix), {})[prefix] = value
        # Longest first. A slice longer than the digits is just the digits,
        # which no key of that length equals: no length check needed.
        self._tables = tuple((n, by_length[n]) for n in sorted(by_length, reverse=True))

    def longest(self, digits: str) -> T | None:
        for length, table in self._tables:
            found = table.get(digits[:length])
            if found is not None:
                return found
        return None

    def __contains__(self, digits: object) -> bool:
        return isinstance(digits, str) and self.longest(digits) is not None

    def __bool__(self) -> bool:
        return bool(self._tables)


class SubscriberHasher:
    """HMAC-SHA256(salt, "kind:identifier"), truncated: the only form in which a
    subscriber or node identifier leaves the engine (and the form the engine's
    state is keyed on). Equal to :func:`herald.signaling.privacy.salted_hash`,
    with the HMAC key schedule done once instead of per call."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, salt: bytes) -> None:
        if len(salt) < MIN_SALT_BYTES:
            raise ValueError(f"the hash salt must be at least {MIN_SALT_BYTES} bytes")
        # RFC 2104 with the padded key's inner and outer states computed once:
        # each hash is then two SHA-256 copies and updates, no key schedule.
        key = hashlib.sha256(salt).digest() if len(salt) > _BLOCK else salt
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def __call__(self, kind: str, identifier: str) -> str:
        """Hash ``identifier`` in the namespace ``kind`` (``imsi``, ``msisdn``,
        ``gt``): the same digits as an IMSI and as an MSISDN hash differently."""
        inner = self._inner.copy()
        inner.update(f"{kind}:{identifier}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:HASH_HEX_CHARS]

    def __repr__(self) -> str:
        return "SubscriberHasher(<salt>)"
