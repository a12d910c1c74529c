"""Keeping subscriber identities and serving-node addresses out of sight.

The codec has to decode IMSIs, MSISDNs and MSC/VLR numbers because the policy
rules read them, but herald's red line (``shared/ARCHITECTURE.md``) says none of
them may reach a log, a CLI table, a metric or an API. Two tools:

- :func:`mask` replaces digits for ``repr()``: every decoded value's ``repr``
  goes through it, so printing a decoded message by accident leaks nothing.
- :func:`salted_hash` is the only form in which an identifier may leave the
  signaling layer (the audit log, verdict records): a keyed HMAC-SHA256, so the
  same subscriber hashes to the same token under one salt and can be
  correlated, but nobody without the salt can test a guessed number against it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any, Final, TypeVar

__all__ = ["HASH_HEX_CHARS", "MIN_SALT_BYTES", "mask", "masked_repr", "salted_hash", "value"]

_T = TypeVar("_T")

#: Hex characters kept from the HMAC: 80 bits, far beyond any subscriber base,
#: short enough for a table column.
HASH_HEX_CHARS: Final = 20

#: A salt shorter than this makes a dictionary attack over all E.164 numbers
#: cheap for anyone who guesses it; refuse it.
MIN_SALT_BYTES: Final = 16

#: Digits of an IMSI that ``repr`` keeps: the MCC and (2-digit) MNC, i.e. the
#: subscriber's *home* network, which says nothing about where the phone is.
IMSI_KEPT_DIGITS: Final = 5


def mask(digits: str, keep: int = 0) -> str:
    """``digits`` with everything after the first ``keep`` characters starred."""
    return digits[:keep] + "*" * max(0, len(digits) - keep)


def salted_hash(salt: bytes, identifier: str, *, kind: str = "") -> str:
    """A stable, non-reversible token for a subscriber identifier.

    ``kind`` separates namespaces (``"imsi"``, ``"msisdn"``) so an IMSI and an
    MSISDN with the same digits never collide. Raises ``ValueError`` for a salt
    shorter than :data:`MIN_SALT_BYTES`.
    """
    if len(salt) < MIN_SALT_BYTES:
        raise ValueError(f"salt must be at least {MIN_SALT_BYTES} bytes")
    message = f"{kind}:{identifier}".encode()
    return hmac.new(salt, message, hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]


def masked_repr(obj: Any, sensitive: Iterable[str], imsi_fields: Iterable[str] = ()) -> str:
    """``ClassName(field=value, ...)`` of a NamedTuple with sensitive fields masked.

    Fields named in ``sensitive`` are masked entirely (str digits starred,
    bytes shown as their length);
    fields in ``imsi_fields`` keep the home-network prefix. Nested values use
    their own ``repr`` (which masks in turn).
    """
    hidden = frozenset(sensitive)
    imsi = frozenset(imsi_fields)
    parts = []
    for name in obj._fields:
        field = getattr(obj, name)
        if name in imsi and isinstance(field, str):
            shown = repr(mask(field, IMSI_KEPT_DIGITS))
        elif name in hidden and isinstance(field, str):
            shown = repr(mask(field))
        elif name in hidden and isinstance(field, bytes):
            shown = f"<{len(field)} bytes>"
        else:
            shown = repr(field)
        parts.append(f"{name}={shown}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def _same_class_eq(self: tuple[object, ...], other: object) -> bool:
    return type(self) is type(other) and tuple.__eq__(self, other)


def _same_class_ne(self: tuple[object, ...], other: object) -> bool:
    return not _same_class_eq(self, other)


def value(cls: type[_T]) -> type[_T]:
    """Make a NamedTuple class compare like a value type: equal only to an
    instance of the same class with equal fields (a plain NamedTuple equals
    any tuple with the same items, e.g. two argument types with one IMSI)."""
    setattr(cls, "__eq__", _same_class_eq)  # noqa: B010
    setattr(cls, "__ne__", _same_class_ne)  # noqa: B010
    setattr(cls, "__hash__", tuple.__hash__)  # noqa: B010
    return cls
