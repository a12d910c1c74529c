"""Public ids for messages and inbound messages.

A port (:class:`IdGenerator`) and the shipped implementation
(:class:`SortableIdGenerator`): 128 bits, the first 48 the creation time in
milliseconds, the other 80 random, written as 26 characters of base32hex
(RFC 4648 §7: ``0-9a-v``), lower case. Properties the platform relies on:

- **Time-ordered.** base32hex preserves byte order, so ids sort like their
  creation times. The store's unique index on the public id then grows at its
  right edge (B-tree locality, fewer pages touched per insert), and ids in
  logs read in order.
- **Unique without coordination.** 80 random bits per millisecond make a
  collision between nodes vanishingly unlikely; within one generator the
  random part is incremented for ids in the same millisecond, so a process
  never repeats itself and its ids stay strictly increasing even if the
  clock steps back.
- **No meaning beyond time.** An id carries no account, number or node
  identity; the creation time is already in every API answer.

Time is an argument (``now``, seconds since the epoch), as everywhere in herald.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Protocol

__all__ = ["ID_LENGTH", "IdGenerator", "SortableIdGenerator", "id_time", "is_valid_id"]

ID_LENGTH = 26
_RANDOM_BITS = 80
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1
_TIME_MASK = (1 << 48) - 1
_ID_RE = re.compile(r"[0-9a-v]{25}[0-9a-v]")
# base32hex (RFC 4648 §7) of 128 bits is 26 digits of 5 bits: the value shifted
# left by 2 (the padding bits of the last digit), read 10 bits (two digits) at a
# time through a table of every digit pair. Same text as
# base64.b32hexencode(...)[:26].lower(), without its byte-chunk loop (about 2x
# faster, and an id is made per accepted message).
_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_PAIR_SHIFTS = tuple(range(120, -1, -10))


class IdGenerator(Protocol):
    def new_id(self, now: float) -> str:
        """A new, unique id for something created at ``now`` (epoch seconds)."""
        ...


class SortableIdGenerator:
    """Time-ordered 128-bit ids. Not thread-safe: one per event loop."""

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_random = 0

    def new_id(self, now: float) -> str:
        ms = int(now * 1000) & _TIME_MASK
        if ms > self._last_ms:
            self._last_ms = ms
            self._last_random = int.from_bytes(os.urandom(10), "big")
        else:
            # Same millisecond (or the clock stepped back): stay strictly increasing.
            self._last_random = (self._last_random + 1) & _RANDOM_MASK
            if self._last_random == 0:  # 2**80 ids in one millisecond: borrow the next
                self._last_ms += 1
        value = ((self._last_ms << _RANDOM_BITS) | self._last_random) << 2
        pairs = _PAIRS
        return "".join([pairs[(value >> shift) & 0x3FF] for shift in _PAIR_SHIFTS])


def is_valid_id(text: str) -> bool:
    """Whether ``text`` has the shape of an id this module makes (cheap pre-check)."""
    return len(text) == ID_LENGTH and _ID_RE.fullmatch(text) is not None


def id_time(message_id: str) -> float:
    """The creation time (epoch seconds, millisecond precision) inside an id.

    Raises :class:`ValueError` if ``message_id`` is not such an id.
    """
    if not is_valid_id(message_id):
        raise ValueError("not a herald id")
    raw = base64.b32hexdecode(message_id.upper() + "======")
    return (int.from_bytes(raw, "big") >> _RANDOM_BITS) / 1000
