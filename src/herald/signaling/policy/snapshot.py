"""The engine's state saved and restored: what survives a restart of the proxy.

Theory of operation
-------------------
A snapshot is taken in two steps so that the owner of the state (the proxy's
event loop) is held only for the first:

1. :func:`copy_state` copies the newest ``limit`` entries of every table
   (C-level slices of the OrderedDicts; the values are immutable tuples, the
   sweep tables' inner dicts are copied), with ``now`` and the policy's
   fingerprint;
2. :func:`encode` turns the copy into JSON bytes (any thread): every time as
   an offset from ``now``, partners by name (their positions may change with
   the policy), transaction ids in hex.

:func:`restore_state` merges a snapshot into a state, ``age`` seconds after it
was taken: each time is moved to the restoring clock (``now + offset - age``),
entries already held keep the newer of the two, each table stays within its
limit (oldest out first), and entries a later policy cannot use (a partner no
longer defined) are skipped.

The state's keys are the interpreter's keyed hashes of the identifiers
(``hash``: SipHash under the process's hash seed, a few dozen nanoseconds on
the hot path). They mean the same in another process only if it runs the
same Python with the same ``PYTHONHASHSEED``; a snapshot records a
fingerprint of its keys and one taken under another seed is refused whole
(its keys would name nobody). Running the proxy with a fixed, secret
``PYTHONHASHSEED`` is what makes its state restorable.

What a snapshot holds is what the state holds (see :mod:`.state`): keys, not
identifiers, but they are the guard's own: the caller keeps snapshots sealed.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import json
from collections import OrderedDict
from operator import itemgetter
from typing import Any, NamedTuple

from herald.signaling.policy.state import Compiled, State, bounded_put

__all__ = ["SNAPSHOT_VERSION", "Copied", "SnapshotError", "copy_state", "encode",
           "restore_state"]  # fmt: skip

SNAPSHOT_VERSION = 1

# Tables whose values end with, or are, a time: (name, position of the time
# in the value). Each is an OrderedDict keyed by a str, an int or a pair.
_TIMED = (
    ("correlations", 0),
    ("pending", 0),
    ("locations", 2),
    ("number_locations", 1),
    ("gt_buckets", 1),
    ("subscriber_buckets", 1),
)


class SnapshotError(ValueError):
    """A snapshot that cannot be restored here (format, version, salt)."""


class Copied(NamedTuple):
    """The newest entries of each table, as of ``now`` (see :func:`copy_state`)."""

    now: float
    fingerprint: int
    partners: tuple[str, ...]
    tables: dict[str, list[tuple[Any, Any]]]


def fingerprint() -> int:
    """Which keys a state uses: the interpreter's ``hash`` of a fixed value
    (the state's keys are the interpreter's keyed hashes: equal in two
    processes only when they share the hash seed and the Python version)."""
    return hash(("herald-state-keys", "imsi", "000000000000000"))


def _newest(table: dict[Any, Any], limit: int) -> list[tuple[Any, Any]]:
    items = list(itertools.islice(reversed(table.items()), limit))
    items.reverse()
    return items


#: A share's walk from a table's young end stops after this many entries in
#: a row changed before the last share: behind them lie only older changes
#: (a few out-of-order entries: a lookup vouched for with its answer's time).
PATIENCE = 256


def _changed(table: dict[Any, Any], time_of: Any, since: float, limit: int
             ) -> list[tuple[Any, Any]]:  # fmt: skip
    """The entries of ``table`` changed at or after ``since`` (``time_of``
    their value's time), oldest first: a walk from the young end, at most
    ``limit`` taken, ended by :data:`PATIENCE` older ones in a row."""
    out: list[tuple[Any, Any]] = []
    older = 0
    for kv in reversed(table.items()):
        if time_of(kv[1]) >= since:
            out.append(kv)
            older = 0
            if len(out) >= limit:
                break
        else:
            older += 1
            if older >= PATIENCE:
                break
    out.reverse()
    return out


def _sweep_time(blocks: dict[int, dict[int, float]]) -> float:
    return max((max(n.values(), default=0.0) for n in blocks.values()), default=0.0)


def copy_state(
    state: State, c: Compiled, now: float, limit: int, since: float | None = None
) -> Copied:
    """Step 1 (on the state's owner): the newest ``limit`` entries per table.

    With ``since`` (a share between proxies, not a snapshot): of those, only
    the entries changed at or after ``since``, without dialogues (a dialogue's
    answers come back through the proxy its first message crossed: each
    accepted connection has its own connection to the peer) and pending
    lookups (the answering proxy's to report), and with the deliveries
    :attr:`State.delivered` holds (which settle them there). Every table
    keeps the entries this engine changed last at its young end
    (``bounded_put``, and ``move_to_end`` where a rule updates one in place;
    what a share merges goes to the old end, see :func:`restore_state`), so
    the share walks back from there and stops at the changes it already
    made (see :func:`_changed`); more than ``limit`` changes to one table
    between two shares lose the oldest."""
    if since is None:
        tables = {name: _newest(getattr(state, name), limit) for name, _ in _TIMED}
        tables["lookup_times"] = _newest(state.lookup_times, limit)
        senders = _newest(state.sweeps, limit)
        tables["delivered"] = [(k, (t,)) for k, t in _newest(state.delivered, limit)]
        tables["dialogues"] = _newest(state.dialogues, limit)
    else:
        tables = {name: _changed(getattr(state, name), itemgetter(at), since, limit)
                  for name, at in _TIMED if name != "pending"}  # fmt: skip
        tables["lookup_times"] = _changed(state.lookup_times, itemgetter(-1), since, limit)
        tables["delivered"] = [(k, (t,)) for k, t in _changed(state.delivered, float, since,
                                                              limit)]  # fmt: skip
        tables["dialogues"] = []
        # A lookup's pending delivery stays the answering proxy's: shared, a
        # lookup only would be reported by both.
        tables["pending"] = []
        senders = _changed(state.sweeps, _sweep_time, since, limit)
    tables["sweeps"] = [
        (gt, {block: dict(numbers) for block, numbers in blocks.items()})
        for gt, blocks in senders
    ]
    return Copied(now, fingerprint(), tuple(p.name for p in c.partners), tables)


def _partner_name(copied: Copied, index: int) -> str | None:
    return None if index < 0 else copied.partners[index]


def encode(copied: Copied) -> bytes:
    """Step 2 (any thread): the copy as JSON bytes, times relative to its ``now``."""
    now = copied.now
    t = copied.tables

    def rel(x: float) -> float:
        return round(x - now, 6)

    out: dict[str, Any] = {
        "version": SNAPSHOT_VERSION,
        "fingerprint": copied.fingerprint,
        "dialogues": [[gt, tid.hex(), list(d[0]) if d[0] is not None else None, *d[1:]]
                      for (gt, tid), d in t["dialogues"]],
        "correlations": [[gt, k, rel(v[0]), v[1], v[2]] for (gt, k), v in t["correlations"]],
        "pending": [[gt, k, rel(v[0]), v[1], v[2], v[3]] for (gt, k), v in t["pending"]],
        "locations": [[k, _partner_name(copied, v[0]), v[1], rel(v[2])]
                      for k, v in t["locations"]],
        "number_locations": [[k, _partner_name(copied, v[0]), rel(v[1])]
                             for k, v in t["number_locations"]],
        "gt_buckets": [[k, v[0], rel(v[1])] for k, v in t["gt_buckets"]],
        "subscriber_buckets": [[k, v[0], rel(v[1])] for k, v in t["subscriber_buckets"]],
        "lookup_times": [[k, [rel(x) for x in v]] for k, v in t["lookup_times"]],
        "delivered": [[gt, k, rel(v[0])] for (gt, k), v in t["delivered"]],
        "sweeps": [[gt, [[block, [[pos, rel(x)] for pos, x in numbers.items()]]
                         for block, numbers in blocks.items()]]
                   for gt, blocks in t["sweeps"]],
    }  # fmt: skip
    return json.dumps(out, separators=(",", ":")).encode()


def _merge(table: OrderedDict[Any, Any], key: Any, value: Any, at: int, limit: int,
           share: bool) -> None:  # fmt: skip
    """Keep the newer of what is held and what is restored (a share's new
    entries at the old end: see :func:`restore_state`)."""
    held = table.get(key)
    if held is None:
        bounded_put(table, key, value, limit)
        if share:
            table.move_to_end(key, last=False)
    elif held[at] < value[at]:
        table[key] = value


def restore_state(state: State, c: Compiled, data: bytes, now: float, age: float = 0.0,
                  share: bool = False) -> int:  # fmt: skip
    """Merge the snapshot ``data``, taken ``age`` seconds ago, into ``state``;
    returns the entries restored. With ``share`` (another proxy's changes,
    :func:`copy_state` with ``since``), what is new here goes to the old end
    of its table and what is held is updated in place: the young end keeps
    this engine's own changes, which its next share walks back over until it
    meets a run of older entries (merged ones there would end the walk before
    them); a merged entry is the first to go when its table is full. Raises
    :class:`SnapshotError` if it is not
    a snapshot of this format taken under this hash seed (changing nothing), or is
    malformed (after merging what came before the fault: the caller's seal
    makes that a bug, not an attack)."""
    try:
        snap = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f"not a snapshot: {exc}") from None
    if not isinstance(snap, dict) or snap.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError("not a snapshot of this version")
    if snap.get("fingerprint") != fingerprint():
        raise SnapshotError(
            "a snapshot taken under another hash seed (or Python): its keys name nobody here"
        )
    base = now - age
    partners = {p.name: i for i, p in enumerate(c.partners)}
    limits = c.policy.limits
    count = 0
    try:
        for gt, tid, ac, *rest in snap["dialogues"]:
            key = (str(gt), bytes.fromhex(tid))
            if key not in state.dialogues:
                value = (tuple(ac) if ac is not None else None, *rest)
                bounded_put(state.dialogues, key, value, limits.dialogues)
                count += 1
        for gt, k, dt, node, msisdn in snap["correlations"]:
            _merge(state.correlations, (gt, k), (base + dt, node, msisdn), 0,
                   limits.correlations, share)  # fmt: skip
            count += 1
        for gt, k, dt, published, requester, platform in snap["pending"]:
            _merge(state.pending, (gt, k), (base + dt, published, requester, platform), 0,
                   limits.correlations, share)  # fmt: skip
            count += 1
        for k, name, region, dt in snap["locations"]:
            index = -1 if name is None else partners.get(name)
            if index is not None:
                _merge(state.locations, k, (index, region, base + dt), 2, limits.subscribers,
                       share)  # fmt: skip
                count += 1
        for k, name, dt in snap["number_locations"]:
            index = -1 if name is None else partners.get(name)
            if index is not None:
                _merge(state.number_locations, k, (index, base + dt), 1, limits.subscribers,
                       share)  # fmt: skip
                count += 1
        for k, tokens, dt in snap["gt_buckets"]:
            _merge(state.gt_buckets, k, (tokens, base + dt), 1, limits.senders, share)
            count += 1
        for k, tokens, dt in snap["subscriber_buckets"]:
            _merge(state.subscriber_buckets, k, (tokens, base + dt), 1, limits.subscribers,
                   share)  # fmt: skip
            count += 1
        for k, times in snap["lookup_times"]:
            held = state.lookup_times.get(k, ())
            merged = tuple(sorted({*held, *(base + x for x in times)}))
            if k in state.lookup_times:
                state.lookup_times[k] = merged  # in place (see the docstring)
            else:
                bounded_put(state.lookup_times, k, merged, limits.subscribers)
                if share:
                    state.lookup_times.move_to_end(k, last=False)
            count += 1
        for gt, k, _dt in snap.get("delivered", ()):
            # Delivered through the proxy that shared this: no lookup-only
            # alert is owed here for its lookup.
            state.pending.pop((gt, k), None)
            count += 1
        for gt, blocks in snap["sweeps"]:
            mine = state.sweeps.get(gt)
            if mine is None:
                mine = {}
                bounded_put(state.sweeps, gt, mine, limits.sweep_senders)
                if share:
                    state.sweeps.move_to_end(gt, last=False)
            for block, numbers in blocks:
                # Two bounded sets merged: at most twice a block's bound.
                held_numbers = mine.setdefault(block, {})
                for pos, dt in numbers:
                    held_numbers[pos] = max(held_numbers.get(pos, base + dt), base + dt)
            count += 1
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"a malformed snapshot: {exc}") from None
    return count
