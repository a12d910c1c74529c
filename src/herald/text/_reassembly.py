"""Reassembly of inbound concatenated messages (UDH or SAR numbered parts).

Theory of operation
-------------------
A `Reassembler` holds the parts of messages still incomplete, keyed by the
caller's key (source, destination, reference: whatever identifies one
concatenated message on that link) together with the announced total, so a
reference reused for a message of another length never mixes with it.
`feed` stores a part and returns the whole message when its last missing part
arrives; the caller decodes the joined payload (joining octets before
decoding also repairs senders that split an escape or surrogate pair).

Every dimension hostile input can grow is bounded by a named constant below:
parts per message, pending messages, buffered octets, waiting time. A full
buffer refuses new messages with `ReassemblyFull` (transient: the peer
retries) rather than evicting, so that a flood of first parts cannot push out
messages that are about to complete. `expire(now)` returns what has waited
too long so the caller can deliver partial text or drop it.

The deadline of a message is fixed when its first part arrives (not moved by
later parts), so a sender trickling parts cannot hold memory forever. Messages
sit in an OrderedDict in arrival order, which is deadline order for a
monotonic `now`, so expiry pops from the front and costs only what it returns.

After completion the key is remembered for DUPLICATE_WINDOW seconds: an SMSC
that resends a part whose response was lost must not start a ghost message
that later expires as a one-part fragment.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final

from ._errors import LocalTextError, ReassemblyError, ReassemblyFull

__all__ = [
    "DUPLICATE_WINDOW",
    "MAX_PARTS_PER_MESSAGE",
    "MAX_PENDING_MESSAGES",
    "MAX_PENDING_OCTETS",
    "REASSEMBLY_TIMEOUT",
    "Incomplete",
    "Reassembled",
    "Reassembler",
]

# TS 23.040 §9.2.3.24.1: total and sequence number are one octet each; SMPP
# 3.4 §5.3.2.23 gives sar_total_segments the same range.
MAX_PARTS_PER_MESSAGE: Final = 255
# Messages waiting for parts at once. A handset's long message completes in
# seconds, so thousands pending means a stuck or hostile peer; the bound keeps
# the table (and each expiry sweep) small.
MAX_PENDING_MESSAGES: Final = 10_000
# Octets buffered across all pending messages: 16 MiB, about 120 000 parts of
# 140 octets. Without it, MAX_PENDING_MESSAGES * 254 parts of up to 64 KiB
# each (message_payload) would be unbounded in practice.
MAX_PENDING_OCTETS: Final = 16 * 1024 * 1024
# Seconds a message may wait for its missing parts, from its first part. SMSC
# retry intervals for a deliver_sm run to minutes; memory is bounded by the
# two limits above, so the wait can be generous.
REASSEMBLY_TIMEOUT: Final = 600.0
# Seconds a completed key keeps absorbing duplicate parts: covers an SMSC
# resending after its response timeout (tens of seconds), while a legitimate
# reuse of the same (key, total) within it is unlikely.
DUPLICATE_WINDOW: Final = 60.0


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A complete message: payloads in sequence order 1..total."""

    key: Hashable
    payloads: tuple[bytes, ...]

    @property
    def payload(self) -> bytes:
        return b"".join(self.payloads)


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A message that timed out: the parts that did arrive, by sequence number."""

    key: Hashable
    total: int
    received: tuple[tuple[int, bytes], ...]
    first_seen: float

    @property
    def missing(self) -> tuple[int, ...]:
        have = {seq for seq, _ in self.received}
        return tuple(seq for seq in range(1, self.total + 1) if seq not in have)


@dataclass(slots=True)
class _Pending:
    total: int
    deadline: float
    first_seen: float
    parts: dict[int, bytes] = field(default_factory=dict)
    octets: int = 0


class Reassembler:
    """Collects numbered parts into whole messages, within fixed bounds.

    `now` is any monotonic clock in seconds, supplied by the caller on every
    call; the object never reads a clock.
    """

    def __init__(
        self,
        *,
        timeout: float = REASSEMBLY_TIMEOUT,
        max_messages: int = MAX_PENDING_MESSAGES,
        max_octets: int = MAX_PENDING_OCTETS,
        duplicate_window: float = DUPLICATE_WINDOW,
    ) -> None:
        if not (timeout > 0 and duplicate_window >= 0 and max_messages >= 1 and max_octets >= 1):
            raise LocalTextError("timeout > 0, duplicate_window >= 0 and bounds >= 1 required")
        self._timeout = timeout
        self._max_messages = max_messages
        self._max_octets = max_octets
        self._window = duplicate_window
        self._pending: OrderedDict[tuple[Hashable, int], _Pending] = OrderedDict()
        self._done: OrderedDict[tuple[Hashable, int], float] = OrderedDict()  # -> forget at
        self._octets = 0

    def __len__(self) -> int:
        """Messages waiting for parts."""
        return len(self._pending)

    @property
    def buffered_octets(self) -> int:
        return self._octets

    def feed(
        self, key: Hashable, total: int, seq: int, payload: bytes, now: float
    ) -> Reassembled | None:
        """Store part `seq` of `total`; return the message if it is now complete.

        A single-part message (total 1) completes at once. A duplicate part
        (same key, total, seq) is ignored and returns None, also for a while
        after its message completed. Raises `ReassemblyError` for impossible
        numbering (answer with a permanent error, or deliver the payload as a
        message of its own) and `ReassemblyFull` when the bounds are reached
        (answer with a transient error so the peer retries).
        """
        if not 1 <= total <= MAX_PARTS_PER_MESSAGE:
            raise ReassemblyError(f"total {total} outside 1..{MAX_PARTS_PER_MESSAGE}")
        if not 1 <= seq <= total:
            raise ReassemblyError(f"part {seq} of {total}")
        slot = (key, total)
        self._forget_done(now)
        if slot in self._done:
            return None
        if total == 1:
            self._remember(slot, now)
            return Reassembled(key, (payload,))
        pending = self._pending.get(slot)
        if pending is not None and seq in pending.parts:
            return None
        if self._octets + len(payload) > self._max_octets:
            raise ReassemblyFull(f"{self._octets} octets buffered, bound {self._max_octets}")
        if pending is None:
            if len(self._pending) >= self._max_messages:
                raise ReassemblyFull(f"{len(self._pending)} messages pending")
            pending = _Pending(total, now + self._timeout, now)
            self._pending[slot] = pending
        pending.parts[seq] = payload
        pending.octets += len(payload)
        self._octets += len(payload)
        if len(pending.parts) < total:
            return None
        del self._pending[slot]
        self._octets -= pending.octets
        self._remember(slot, now)
        return Reassembled(key, tuple(pending.parts[i] for i in range(1, total + 1)))

    def expire(self, now: float) -> list[Incomplete]:
        """Remove and return the messages whose deadline is at or before `now`."""
        self._forget_done(now)
        expired: list[Incomplete] = []
        while self._pending:  # pops one per pass: bounded by len(self._pending)
            slot = next(iter(self._pending))
            pending = self._pending[slot]
            if pending.deadline > now:
                break
            del self._pending[slot]
            self._octets -= pending.octets
            expired.append(
                Incomplete(
                    slot[0], pending.total, tuple(sorted(pending.parts.items())),
                    pending.first_seen,
                )
            )
        return expired

    def next_deadline(self) -> float | None:
        """When `expire` next has work: the caller arms its one timer for it."""
        if not self._pending:
            return None
        return self._pending[next(iter(self._pending))].deadline

    def _remember(self, slot: tuple[Hashable, int], now: float) -> None:
        # Bounded like the pending table; past the bound, duplicates of the
        # overflow simply are not recognised.
        if self._window > 0 and len(self._done) < self._max_messages:
            self._done[slot] = now + self._window

    def _forget_done(self, now: float) -> None:
        while self._done:  # pops one per pass: bounded by len(self._done)
            slot = next(iter(self._done))
            if self._done[slot] > now:
                break
            del self._done[slot]
