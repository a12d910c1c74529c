"""The engine's compiled policy and its bounded memory.

:class:`Compiled` turns a :class:`Policy` into the lookup structures the hot path
uses (prefix maps, the category table with overrides applied, action table).
:class:`State` is everything the engine remembers between messages. Every
container is bounded by a named limit from ``Policy.limits`` and evicts its
oldest entry when full (an ``OrderedDict``, see :func:`bounded_put`;
re-inserting an entry moves it to the young end).

What the state holds, by the red line (ARCHITECTURE.md): subscribers and
serving nodes only as keyed hashes (the interpreter's per-process SipHash of the
identifier: in-memory keys that never leave the process), networks only as a
partner index and region name, senders as global titles (network node
addresses, never printed). Published hashes (HMAC-SHA256 with the policy's salt)
are computed only for what is printed or audited. The single exception is the
platform's own SRI-SM correlation, which keeps the MSISDN of the customer
message it serves (herald's store holds that number anyway) so the
MT-ForwardSM can be checked against the store again.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final, TypeVar

from herald.signaling.policy.categories import (
    CATEGORY_TABLE,
    OPCODE_FALLBACK,
    Category,
)
from herald.signaling.policy.config import ListEntry, Partner, Policy
from herald.signaling.policy.egress import SharedLookups
from herald.signaling.policy.prefix import PrefixMap, SubscriberHasher
from herald.signaling.policy.verdict import Action, Origin, Rule

__all__ = [
    "D_AC",
    "D_AC_OTHER",
    "D_BLOCKED",
    "D_CATEGORY",
    "D_LOOKUP_ONLY",
    "D_MSISDN",
    "D_OPCODE",
    "D_ORIGIN",
    "ORIGINS",
    "ORIGIN_CACHE_LIMIT",
    "ORIGIN_INDEX",
    "Bucket",
    "Compiled",
    "Correlation",
    "Dialogue",
    "Location",
    "NumberLocation",
    "PendingLookup",
    "State",
    "bounded_put",
    "distance_km",
]

K = TypeVar("K")
V = TypeVar("V")

# Calling GTs whose origin (platform/home/partner/foreign) is cached. A GT is a
# node address, not a subscriber; the cache is dropped whole when full.
ORIGIN_CACHE_LIMIT = 65_536

# Mean Earth radius (IUGG), for great-circle distances between region centres.
EARTH_RADIUS_KM = 6371.0


def bounded_put(table: dict[K, V], key: K, value: V, limit: int) -> None:
    """Insert or refresh ``key`` as the youngest entry, evicting the oldest
    entry when the table is full.

    Large tables are OrderedDicts: finding a plain dict's oldest entry
    (``next(iter(d))``) walks over every slot deleted since the dict was last
    resized, so a full table that keeps evicting gets slower with each
    eviction (measured: 5 -> 50 us per message after 80,000 evictions from
    the 200,000-entry dialogue table), while ``popitem(last=False)`` is O(1).
    Tables of a few dozen entries (a sweep block's numbers) stay plain dicts,
    cheaper to fill, whose few holes cost nothing.
    """
    if key in table:
        del table[key]
    elif len(table) >= limit:
        if isinstance(table, OrderedDict):
            table.popitem(last=False)
        else:
            del table[next(iter(table))]
    table[key] = value


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance between two (lat, lon) points in degrees."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


class _ListMatcher:
    """An allow- or deny-list entry compiled for matching."""

    __slots__ = ("gts", "ops")

    def __init__(self, entry: ListEntry) -> None:
        self.gts: PrefixMap[bool] | None = (
            PrefixMap((p, True) for p in entry.gt_prefixes) if entry.gt_prefixes else None
        )
        self.ops = entry.operations or None

    def matches(self, gt: str, opcode: int) -> bool:
        return (self.gts is None or self.gts.longest(gt) is not None) and (
            self.ops is None or opcode in self.ops
        )


class Compiled:
    """A policy turned into lookup tables. Immutable after construction."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.hash = SubscriberHasher(policy.salt)
        # The token buckets' figures, read on every message: attributes of
        # this (compiled) class rather than of the policy's dataclasses,
        # which compiled code reads through a generic attribute lookup.
        rates, limits = policy.rates, policy.limits
        self.gt_rate: float = rates.per_gt_per_s
        self.gt_burst: float = rates.per_gt_burst
        self.subscriber_rate: float = rates.per_subscriber_per_min / 60.0
        self.subscriber_burst: float = rates.per_subscriber_burst
        self.senders_limit: int = limits.senders
        self.subscribers_limit: int = limits.subscribers
        self.home_routing: bool = policy.home_routing.enabled
        self.actions: dict[Rule, Action] = dict(policy.actions)
        self.platform_gts = frozenset(policy.platform_gts)
        self.home_gts: PrefixMap[bool] = PrefixMap((p, True) for p in policy.home.gt_prefixes)
        self.home_imsi: PrefixMap[bool] = PrefixMap((p, True) for p in policy.home.imsi_prefixes)
        self.home_msisdn: PrefixMap[bool] = PrefixMap(
            (p, True) for p in policy.home.msisdn_prefixes
        )
        self.partner_gts: PrefixMap[int] = PrefixMap(
            (prefix, i) for i, p in enumerate(policy.partners) for prefix in p.gt_prefixes
        )
        self.partner_imsi: PrefixMap[int] = PrefixMap(
            (prefix, i) for i, p in enumerate(policy.partners) for prefix in p.imsi_prefixes
        )
        self.partners: tuple[Partner, ...] = policy.partners
        self.regions = {name: (r.lat, r.lon) for name, r in policy.regions.items()}
        self.home_region = policy.home.region
        self.deny_gts: PrefixMap[bool] = PrefixMap((p, True) for p in policy.deny.gt_prefixes)
        self.deny_ops = policy.deny.operations
        self.allow = tuple(_ListMatcher(e) for e in policy.allow)
        self.unknown_category = policy.unknown_category
        table = dict(CATEGORY_TABLE)
        fallback = dict(OPCODE_FALLBACK)
        # Opcode-wide overrides first, then (opcode, AC)-specific ones win.
        for (code, ac_id, _version), category in policy.category_overrides.items():
            if ac_id is None:
                fallback[code] = category
                for key in [k for k in table if k[0] == code]:
                    table[key] = category
        for (code, ac_id, version), category in policy.category_overrides.items():
            if ac_id is not None and version is not None:
                table[(code, ac_id, version)] = category
        self.categories = table
        self.fallback = fallback

    def category(self, opcode: int, ac: tuple[int, int] | None, ac_other: bool) -> Category:
        if ac_other:
            # A non-MAP application context: this engine does not know its
            # operations, so it gets the policy's category for unknown pairs.
            return self.unknown_category
        if ac is not None:
            found = self.categories.get((opcode, ac[0], ac[1]))
        else:
            found = self.fallback.get(opcode)
        return self.unknown_category if found is None else found

    def allow_listed(self, gt: str, opcode: int) -> bool:
        return any(m.matches(gt, opcode) for m in self.allow)

    def origin(self, gt: str) -> tuple[Origin, int]:
        """Classify a calling GT: (origin, partner index or -1)."""
        if gt in self.platform_gts:
            return Origin.PLATFORM, -1
        if self.home_gts.longest(gt) is not None:
            return Origin.HOME, -1
        partner = self.partner_gts.longest(gt)
        if partner is not None:
            return Origin.PARTNER, partner
        return Origin.FOREIGN, -1

    def region_of(self, partner: int) -> str:
        return self.home_region if partner < 0 else self.partners[partner].region


# State records are plain tuples of atomic values (numbers, strings, bytes,
# None, tuples of those). CPython's cyclic collector stops tracking such a tuple
# after its first collection; class instances and named tuples stay tracked and
# are traversed by every full collection, which cost a third of the engine's
# time on a 50,000-message capture (measured). Field positions are named below.

#: An open TCAP dialogue, keyed by (originator GT, originating transaction id):
#: (ac, ac_other, opcode, origin index, blocked rule value or None, category
#: value, msisdn (only for the platform's own SRI-SM), lookup_only (an SRI-SM
#: declaring sm-deliveryNotIntended)).
Dialogue = tuple[tuple[int, int] | None, bool, int | None, int, str | None, str, str, bool]
D_AC: Final = 0
D_AC_OTHER: Final = 1
D_OPCODE: Final = 2
D_ORIGIN: Final = 3
D_BLOCKED: Final = 4
D_CATEGORY: Final = 5
D_MSISDN: Final = 6
D_LOOKUP_ONLY: Final = 7

#: An SRI-SM answered with an IMSI, awaiting its MT-ForwardSM: (time, key of
#: the serving node the HLR named or 0, msisdn (only for the platform's own)).
Correlation = tuple[float, int, str]

#: An answered lookup that owes a delivery: (deadline, published hash of the
#: IMSI, requester GT (hashed when reported), from the platform?).
PendingLookup = tuple[float, str, str, bool]

#: A home subscriber's last accepted location: (partner index, -1 for home;
#: region name; time).
Location = tuple[int, str, float]

#: Where the home HLR last sent a home number's profile (InsertSubscriberData
#: naming the MSISDN): (partner index, -1 for home; time).
NumberLocation = tuple[int, float]

#: A token bucket: (tokens available, at this time).
Bucket = tuple[float, float]

#: Origin <-> the small int a Dialogue stores.
ORIGINS: tuple[Origin, ...] = tuple(Origin)
ORIGIN_INDEX: dict[Origin, int] = {o: i for i, o in enumerate(ORIGINS)}


@dataclass(slots=True)
class State:
    """Everything the engine remembers. Keys are hashes or node addresses."""

    dialogues: OrderedDict[tuple[str, bytes], Dialogue] = field(default_factory=OrderedDict)
    correlations: OrderedDict[tuple[str, int], Correlation] = field(
        default_factory=OrderedDict
    )
    pending: OrderedDict[tuple[str, int], PendingLookup] = field(default_factory=OrderedDict)
    locations: OrderedDict[int, Location] = field(default_factory=OrderedDict)
    # msisdn key -> NumberLocation, from the home HLR's InsertSubscriberData.
    number_locations: OrderedDict[int, NumberLocation] = field(default_factory=OrderedDict)
    gt_buckets: OrderedDict[str, Bucket] = field(default_factory=OrderedDict)
    subscriber_buckets: OrderedDict[int, Bucket] = field(default_factory=OrderedDict)
    lookup_times: OrderedDict[int, tuple[float, ...]] = field(default_factory=OrderedDict)
    # sender GT -> number block (hashed) -> {position in the block: last time
    # seen}; at most sweep_senders senders, each with at most
    # lookups_per_sender numbers (see rules.range_sweep, SWEEP_BLOCK_FACTOR).
    sweeps: OrderedDict[str, dict[int, dict[int, float]]] = field(default_factory=OrderedDict)
    # (SMSC GT, IMSI key) -> when delivered: MT deliveries no lookup of this
    # engine owed, kept only while the state is shared with other proxies
    # (record_deliveries): the proxy whose lookup it was then owes no
    # lookup-only alert.
    delivered: OrderedDict[tuple[str, int], float] = field(default_factory=OrderedDict)
    record_deliveries: bool = False
    # SRI-SM answers shared at once with the other proxies (sms-consistency
    # asks it when it has no answer of its own), or None.
    shared: SharedLookups | None = None
    origin_cache: dict[str, tuple[Origin, int]] = field(default_factory=dict)
    evicted_pending: int = 0
    # SRI-SM answers observed; with answers_may_be_missing (a capture that may
    # hold one direction only), MT deliveries are not judged for consistency
    # until the first answer is seen, and are counted instead.
    answers_seen: int = 0
    answers_may_be_missing: bool = False
    unjudged_consistency: int = 0
