"""Where SMS home routing keeps its correlations: the port, the in-memory
table, and the sealing a shared store uses.

Theory of operation
-------------------
A correlation (:class:`Correlation`) maps the correlation IMSI the router
handed a foreign SMSC to what the delivery that follows needs: the real IMSI,
the real serving node, the SMSC it was given to (calling GT and service centre
address) and its deadline. :class:`CorrelationStore` is the port: ``add``
stores one under a fresh id (False if that id is live: draw another), ``take``
removes one and returns it if it was live (whoever takes it first has it: a
second take, here or in another proxy sharing the store, gets None), ``expire``
forgets the dead, and each store is bounded (``set_limit``; the oldest entry
goes first). A store that is shared also keeps the delivery dialogues the
router restored (:class:`RoutedRecord`, by SMSC GT and transaction id), so
that the serving node's answers leave as the router's whichever proxy they
cross, or after a restart.

:class:`MemoryCorrelations` is one proxy's memory (forgotten at a restart).
A store that outlives the process or is shared (SQLite in the proxy's data
directory, :mod:`herald.guard.correlations`; PostgreSQL later, the same
rows) keeps each correlation *sealed* (:func:`seal`): the row's key is a keyed
hash of the correlation IMSI, and its fields are encrypted and authenticated
with a key derived from the policy's salt (:func:`sealing_key`), so a copy of
the table alone names no subscriber, node or correlation id. Keyed BLAKE2b
serves as the PRF for all three (RFC 7693): a keystream from a random nonce
(encrypt), then a tag over the row key, nonce and ciphertext (authenticate).

Times are the caller's clock here; a shared store converts them to the wall
clock (another process's monotonic clock means nothing) and back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from typing import NamedTuple, Protocol

__all__ = [
    "Correlation",
    "CorrelationStore",
    "MemoryCorrelations",
    "RoutedRecord",
    "dialogue_row",
    "row_key",
    "seal",
    "seal_blob",
    "seal_routed",
    "sealing_key",
    "unseal",
    "unseal_blob",
    "unseal_routed",
]

# A sealed record: nonce, then the ciphertext, then the tag.
_NONCE = 16
_TAG = 16
# A few short fields: an IMSI is 15 digits (E.212), node and SMSC addresses at
# most 20 (SCCP GT digits in practice), an SCCP address a dozen octets (hex),
# a routing label six numbers; a record longer than this is refused rather
# than stored.
MAX_RECORD = 256
_SEP = "\n"


class Correlation(NamedTuple):
    """One correlation IMSI's secret side. ``deadline`` and ``answered`` (when
    the HLR's answer was rewritten: the delivery's SMS consistency window
    starts there) are on the caller's clock."""

    deadline: float
    imsi: str
    node: str
    smsc_gt: str
    service_centre: str
    answered: float


class RoutedRecord(NamedTuple):
    """A delivery dialogue the router restored, as a shared store keeps it so
    that the serving node's answers leave as the router's whichever proxy
    they cross (or after a restart). ``router`` is the called party the SMSC
    used (SCCP-encoded), ``label`` its routing label (opc, dpc, si, ni, mp,
    sls); ``deadline`` on the caller's clock."""

    deadline: float
    node: str
    imsi: str
    correlation: str
    router: bytes
    label: tuple[int, int, int, int, int, int]


class CorrelationStore(Protocol):
    """Live correlations, by correlation IMSI, and the delivery dialogues
    routed with them, by (SMSC GT, SMSC transaction id): see the module
    docstring."""

    def add(self, correlation_id: str, entry: Correlation, now: float) -> bool:
        """Keep ``entry`` under ``correlation_id`` until its deadline; False,
        storing nothing, if that id is live (the caller draws another)."""
        ...

    def take(self, correlation_id: str, now: float) -> Correlation | None:
        """Remove ``correlation_id`` and return its entry if it was live at
        ``now``; None if it is unknown, expired or already taken."""
        ...

    def expire(self, now: float) -> None:
        """Forget every entry whose deadline has passed."""
        ...

    def set_limit(self, limit: int) -> None:
        """Hold at most ``limit`` entries of each kind from now on (oldest
        dropped first)."""
        ...

    def __len__(self) -> int:
        """Live correlations held."""
        ...

    def put_dialogue(self, key: tuple[str, bytes], record: RoutedRecord, now: float) -> None:
        """Keep a routed delivery dialogue until ``record.deadline``."""
        ...

    def find_dialogue(self, key: tuple[str, bytes], now: float) -> RoutedRecord | None:
        """A routed dialogue kept (by this process or another), if live."""
        ...

    def drop_dialogue(self, key: tuple[str, bytes]) -> None:
        """Forget a routed dialogue (it ended)."""
        ...


class MemoryCorrelations:
    """One process's correlations, oldest first (a restart forgets them). It
    keeps no dialogues: the router's own memory has them."""

    def __init__(self, limit: int) -> None:
        self._table: OrderedDict[str, Correlation] = OrderedDict()
        self._limit = limit

    def add(self, correlation_id: str, entry: Correlation, now: float) -> bool:
        table = self._table
        old = table.get(correlation_id)
        if old is not None:
            if old.deadline > now:
                return False
            del table[correlation_id]
        while len(table) >= self._limit:
            table.popitem(last=False)
        table[correlation_id] = entry
        return True

    def take(self, correlation_id: str, now: float) -> Correlation | None:
        entry = self._table.pop(correlation_id, None)
        return entry if entry is not None and entry.deadline > now else None

    def expire(self, now: float) -> None:
        table = self._table
        while table and next(iter(table.values())).deadline <= now:
            table.popitem(last=False)

    def set_limit(self, limit: int) -> None:
        self._limit = limit
        while len(self._table) > limit:
            self._table.popitem(last=False)

    def __len__(self) -> int:
        return len(self._table)

    # The router's own memory holds its dialogues; nobody else could ask.
    def put_dialogue(self, key: tuple[str, bytes], record: RoutedRecord, now: float) -> None:
        return None

    def find_dialogue(self, key: tuple[str, bytes], now: float) -> RoutedRecord | None:
        return None

    def drop_dialogue(self, key: tuple[str, bytes]) -> None:
        return None


def sealing_key(salt: bytes) -> bytes:
    """The key correlations are sealed with, derived from the policy's salt
    (its own domain: it is never the key of a published hash). Proxies that
    share a store share the policy, hence the key."""
    return hashlib.blake2b(salt, digest_size=32, person=b"herald-hr-seal").digest()


def row_key(key: bytes, correlation_id: str) -> bytes:
    """The stored key of a correlation: a keyed hash of its id."""
    return hashlib.blake2b(
        correlation_id.encode(), digest_size=16, key=key, person=b"herald-hr-row"
    ).digest()


def _stream(key: bytes, nonce: bytes, size: int) -> bytes:
    blocks = [
        hashlib.blake2b(nonce + block.to_bytes(4, "big"), key=key, person=b"herald-hr-xor").digest()
        for block in range((size + 63) // 64)
    ]
    return b"".join(blocks)[:size]


def _xor(a: bytes, b: bytes) -> bytes:
    # One big-int XOR: a few times faster than a generator over the octets.
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _tag(key: bytes, row: bytes, nonce: bytes, body: bytes) -> bytes:
    return hashlib.blake2b(
        row + nonce + body, digest_size=_TAG, key=key, person=b"herald-hr-tag"
    ).digest()


def seal(key: bytes, row: bytes, fields: tuple[str, ...]) -> bytes:
    """``fields`` (ASCII text) sealed for the row ``row``. ValueError if they
    are longer than a correlation's or hold a line break."""
    plain = _SEP.join(fields).encode("ascii")
    if len(plain) > MAX_RECORD or any(_SEP in f for f in fields):
        raise ValueError("not a correlation: fields too long or malformed")
    return seal_blob(key, row, plain)


def seal_blob(key: bytes, row: bytes, plain: bytes) -> bytes:
    """``plain`` encrypted and authenticated for the row ``row`` (any length:
    the engine's snapshots use it too)."""
    nonce = secrets.token_bytes(_NONCE)
    body = _xor(plain, _stream(key, nonce, len(plain)))
    return nonce + body + _tag(key, row, nonce, body)


def unseal_blob(key: bytes, row: bytes, sealed: bytes) -> bytes | None:
    """What :func:`seal_blob` sealed for ``row``; None if it was not sealed
    with ``key`` for ``row``."""
    if len(sealed) < _NONCE + _TAG:
        return None
    nonce, body, tag = sealed[:_NONCE], sealed[_NONCE:-_TAG], sealed[-_TAG:]
    if not hmac.compare_digest(tag, _tag(key, row, nonce, body)):
        return None
    return _xor(body, _stream(key, nonce, len(body)))


def unseal(key: bytes, row: bytes, sealed: bytes, count: int) -> tuple[str, ...] | None:
    """The ``count`` fields :func:`seal` sealed for ``row``; None if ``sealed``
    was not sealed with ``key`` for ``row`` (another salt, or tampered with)."""
    plain = unseal_blob(key, row, sealed)
    if plain is None:
        return None
    parts = tuple(plain.decode("ascii", "replace").split(_SEP))
    return parts if len(parts) == count else None


def dialogue_row(key: bytes, smsc_gt: str, tid: bytes) -> bytes:
    """The stored row key of the routed dialogue ``tid`` of the SMSC ``smsc_gt``."""
    return row_key(key, f"dialogue {smsc_gt} {tid.hex()}")


def seal_routed(key: bytes, row: bytes, record: RoutedRecord) -> bytes:
    """``record``'s fields sealed for ``row`` (its deadline is stored apart)."""
    return seal(key, row, (record.node, record.imsi, record.correlation, record.router.hex(),
                           ",".join(map(str, record.label))))  # fmt: skip


def unseal_routed(key: bytes, row: bytes, sealed: bytes, deadline: float
                  ) -> RoutedRecord | None:  # fmt: skip
    """The record :func:`seal_routed` sealed for ``row``, due at ``deadline`` (the
    caller's clock); None if it was not sealed for ``row`` with ``key``."""
    fields = unseal(key, row, sealed, 5)
    if fields is None:
        return None
    node, imsi, correlation, router, label = fields
    numbers = tuple(int(x) for x in label.split(","))
    if len(numbers) != 6:
        return None
    return RoutedRecord(deadline, node, imsi, correlation, bytes.fromhex(router), numbers)
