"""The guard's rules: each a small function of (policy, state, message).

A rule returns ``None`` (nothing to say) or a :data:`Finding`: the rule's name
and a reason. The engine maps the rule to the policy's action (block, alert or
allow) and runs the rules of a message's origin in table order
(:data:`SCREEN_RULES` for traffic from partners and foreign networks,
:data:`EGRESS_RULES` for the platform's own global titles); the first block
decides. Rules that keep counters (rates, lookups) update them as they run; the
changes that record what a message *did* (a location update, a delivery) are
applied by the engine only once the message is let through.

Reasons never name a subscriber, a node address or a place: they are printed,
logged and audited.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Final, TypeVar

from herald.signaling.map_ops import MapAc
from herald.signaling.map_types import SILENT_SMS_PID, SmRpDaKind
from herald.signaling.policy.categories import (
    LOOKUP_OPCODES,
    Category,
    Op,
    operation_name,
)
from herald.signaling.policy.egress import PendingMessages
from herald.signaling.policy.facts import Facts, TcapKind
from herald.signaling.policy.state import (
    D_AC,
    D_AC_OTHER,
    Bucket,
    Compiled,
    Correlation,
    Dialogue,
    State,
    bounded_put,
    distance_km,
)
from herald.signaling.policy.verdict import Action, Origin, Rule

__all__ = [
    "EGRESS_RULES",
    "SCREEN_RULES",
    "TP_PID_SHORT_MESSAGE_TYPE_0",
    "Finding",
    "Message",
    "RuleFn",
    "is_mt_delivery",
    "node_key",
    "plan",
]

Finding = tuple[Rule, str]
K = TypeVar("K")

# TS 23.040 §9.2.3.9: TP-PID 0x40 is "Short Message Type 0": the handset
# acknowledges it and discards it without telling the user (a "silent SMS").
TP_PID_SHORT_MESSAGE_TYPE_0: Final = SILENT_SMS_PID

# Enum members and IntEnum values as module constants: reading ``Category.CAT1``
# goes through the enum class's attribute machinery (about as costly as a
# small rule), a module global does not.
_CAT1: Final = Category.CAT1
_CAT2: Final = Category.CAT2
_CAT3: Final = Category.CAT3
_NO_CATEGORY: Final = Category.NONE
_FOREIGN: Final = Origin.FOREIGN
_HOME: Final = Origin.HOME
_BLOCK_ACTION: Final = Action.BLOCK
_HOME_SIDE: Final = (Origin.HOME, Origin.PLATFORM)
_DA_IMSI: Final = SmRpDaKind.IMSI
_BEGIN: Final = int(TcapKind.BEGIN)
_UNIDIRECTIONAL: Final = int(TcapKind.UNIDIRECTIONAL)
_UPDATE_LOCATION: Final = int(Op.UPDATE_LOCATION)
_PROVIDE_ROAMING_NUMBER: Final = int(Op.PROVIDE_ROAMING_NUMBER)
_SRI_SM: Final = int(Op.SEND_ROUTING_INFO_FOR_SM)
_MT_FORWARD_SM: Final = int(Op.MT_FORWARD_SM)
_MO_FORWARD_SM: Final = int(Op.MO_FORWARD_SM)
_REPORT_SM: Final = int(Op.REPORT_SM_DELIVERY_STATUS)
_MT_RELAY: Final = int(MapAc.SHORT_MSG_MT_RELAY)


def is_mt_delivery(opcode: int, ac: tuple[int, int] | None) -> bool:
    """mt-ForwardSM (44), or forwardSM (46) in a shortMsgMT-Relay (AC 25) v1/v2
    dialogue (TS 29.002 §12.9, §17.6.5)."""
    if opcode == _MT_FORWARD_SM:
        return True
    return (
        opcode == _MO_FORWARD_SM
        and ac is not None
        and ac[0] == _MT_RELAY
        and ac[1] <= 2
    )


class Message:
    """One message being judged: its facts plus what the engine derived.

    Two kinds of identifier digest, both cached per message:

    - *keys* (``imsi_key``, ``msisdn_key``): the interpreter's keyed hash of
      the identifier, used to index the engine's in-memory state; they never
      leave the process, and cost nanoseconds;
    - *published hashes* (``subscriber``, ``sender``): HMAC-SHA256 with the
      policy's salt, computed only for the verdicts that are printed or audited.
    """

    __slots__ = (
        "_home_imsi",
        "_imsi_key",
        "_msisdn_key",
        "ac",
        "ac_other",
        "c",
        "categories",
        "category",
        "dialogue",
        "f",
        "mt",
        "origin",
        "partner",
        "store",
    )

    def __init__(
        self,
        c: Compiled,
        f: Facts,
        origin: Origin,
        partner: int,
        dialogue: Dialogue | None,
        store: PendingMessages | None,
    ) -> None:
        self.c = c
        self.f = f
        self.origin = origin
        self.partner = partner
        self.dialogue = dialogue
        self.store = store
        if dialogue is None or f.ac is not None or f.ac_other:
            self.ac, self.ac_other = f.ac, f.ac_other
        else:
            self.ac, self.ac_other = dialogue[D_AC], dialogue[D_AC_OTHER]
        # categories, category and mt are set by classify() or from the
        # engine's plan cache before any rule runs.
        self.categories: tuple[Category, ...]
        self.category: Category
        self.mt: bool
        self._imsi_key: int | None = None
        self._msisdn_key: int | None = None
        self._home_imsi: bool | None = None

    def classify(self) -> None:
        """Fill ``categories`` (one per invoke), ``category`` (the most
        restrictive) and ``mt`` (whether this delivers a short message)."""
        ac, other, category = self.ac, self.ac_other, self.c.category
        invokes = self.f.invokes
        if len(invokes) == 1:
            op = invokes[0]
            worst = category(op, ac, other)
            self.categories = (worst,)
            self.category = worst
            self.mt = is_mt_delivery(op, ac)
            return
        cats = tuple(category(op, ac, other) for op in invokes)
        self.categories = cats
        self.category = max(cats, key=lambda cat: cat.rank, default=_NO_CATEGORY)
        self.mt = any(is_mt_delivery(op, ac) for op in invokes)

    @property
    def imsi_key(self) -> int:
        if self._imsi_key is None:
            self._imsi_key = hash(("imsi", self.f.imsi))
        return self._imsi_key

    @property
    def msisdn_key(self) -> int:
        if self._msisdn_key is None:
            self._msisdn_key = hash(("msisdn", self.f.msisdn))
        return self._msisdn_key

    @property
    def subscriber(self) -> str:
        """The published hash of the subscriber (IMSI, else MSISDN), or ""."""
        f = self.f
        if f.imsi:
            return self.c.hash("imsi", f.imsi)
        if f.msisdn:
            return self.c.hash("msisdn", f.msisdn)
        return ""

    @property
    def sender(self) -> str:
        """The published hash of the calling GT."""
        return self.c.hash("gt", self.f.calling_gt)

    @property
    def home_imsi(self) -> bool:
        """Whether the message names an IMSI of the home network."""
        if self._home_imsi is None:
            imsi = self.f.imsi
            self._home_imsi = bool(imsi) and self.c.home_imsi.longest(imsi) is not None
        return self._home_imsi


def node_key(digits: str) -> int:
    """In-memory key of a node address (see :class:`Message`)."""
    return hash(("gt", digits))


RuleFn = Callable[[Compiled, State, Message], Finding | None]


def _ac_text(m: Message) -> str:
    if m.ac_other:
        return "a non-MAP application context"
    if m.ac is None:
        return "an unknown application context"
    return f"application context {m.ac[0]} v{m.ac[1]}"


# ---------------------------------------------------------------- the rules


def deny_list(c: Compiled, s: State, m: Message) -> Finding | None:
    if c.deny_ops:
        for op in m.f.invokes:
            if op in c.deny_ops:
                return Rule.DENY_LIST, f"{operation_name(op)} is on the deny list"
    return None


def tcap_sanity(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    if f.global_opcode:
        # map-operations.md: MAP uses local operation codes; a global (OID) code
        # at the interconnect is an evasion attempt.
        return Rule.TCAP_SANITY, "global operation code at the interconnect"
    if (f.tcap == _BEGIN or f.tcap == _UNIDIRECTIONAL) and (
        f.ac is None and not f.ac_other
    ):
        # Q.773 §3.1: without a dialogue portion there is no application context,
        # i.e. MAP v1 (obsolete) or a message crafted to dodge (opcode, AC) rules.
        return Rule.TCAP_SANITY, "TC-BEGIN without a dialogue portion (no application context)"
    return None


def cat1(c: Compiled, s: State, m: Message) -> Finding | None:
    for op, cat in zip(m.f.invokes, m.categories, strict=True):
        if cat is _CAT1 and not c.allow_listed(m.f.calling_gt, op):
            return (
                Rule.CAT1,
                f"{operation_name(op)} under {_ac_text(m)} is category 1: "
                "never accepted from the interconnect",
            )
    return None


def cat2(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    for op, cat in zip(f.invokes, m.categories, strict=True):
        if cat is not _CAT2 or c.allow_listed(f.calling_gt, op):
            continue
        name = operation_name(op)
        if f.imsi:
            if m.home_imsi:
                return Rule.CAT2, f"{name} about a home subscriber from another network"
            if m.origin is _FOREIGN:
                return Rule.CAT2, f"{name} from a network without a roaming agreement"
            if c.partner_imsi.longest(f.imsi) != m.partner:
                return (
                    Rule.CAT2,
                    f"{name} about a subscriber whose home network is not the sender's",
                )
        elif m.origin is _FOREIGN:
            return Rule.CAT2, f"{name} from a network without a roaming agreement"
    return None


def address_mismatch(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    if _UPDATE_LOCATION in f.invokes:
        # TS 29.002 §8.1.2: the VLR number is the address of the VLR sending the
        # update, i.e. the calling party; anything else redirects the HLR's
        # InsertSubscriberData and later traffic to a node that did not ask.
        if f.vlr_number and f.vlr_number != f.calling_gt:
            return (
                Rule.ADDRESS_MISMATCH,
                "updateLocation whose VLR number differs from its calling GT",
            )
        if f.msc_number and c.origin(f.msc_number) != (m.origin, m.partner):
            return (
                Rule.ADDRESS_MISMATCH,
                "updateLocation whose MSC number belongs to another network than its calling GT",
            )
    # The roaming number is asked of the VLR serving the subscriber here, so
    # the MSC it names must be ours.
    if (
        _PROVIDE_ROAMING_NUMBER in f.invokes
        and f.msc_number
        and c.origin(f.msc_number)[0] is not _HOME
    ):
        return (
            Rule.ADDRESS_MISMATCH,
            "provideRoamingNumber naming an MSC outside the home network",
        )
    return None


def cat3_velocity(c: Compiled, s: State, m: Message) -> Finding | None:
    if m.category is not _CAT3 or not m.home_imsi:
        return None  # only our outbound roamers are ours to judge
    f = m.f
    name = operation_name(f.opcode)
    if m.origin is _FOREIGN:
        if any(c.allow_listed(f.calling_gt, op) for op in f.invokes):
            return None
        return (
            Rule.CAT3_VELOCITY,
            f"{name} about a home subscriber from a network without a roaming agreement",
        )
    last = s.locations.get(m.imsi_key)
    if last is None:
        return None
    last_partner, last_region, last_time = last
    if last_partner == m.partner:
        return None
    here = c.regions.get(c.region_of(m.partner))
    there = c.regions.get(last_region)
    if here is None or there is None:
        return None  # no coordinates: velocity cannot be judged
    elapsed = max(0.0, f.time - last_time)
    v = c.policy.velocity
    needed = distance_km(here, there) - v.slack_km
    if needed > 0 and needed > v.max_speed_kmh * elapsed / 3600.0:
        return (
            Rule.CAT3_VELOCITY,
            f"{name} from a network the subscriber could not have reached "
            f"{elapsed:.0f} s after the previous one",
        )
    return None


def sms_consistency(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    if not m.mt or f.sm_rp_da != _DA_IMSI or not m.home_imsi:
        return None
    corr = s.correlations.get((f.calling_gt, m.imsi_key))
    if (corr is None or f.time - corr[0] > c.policy.sms.consistency_s) and s.shared is not None:
        corr = _shared_answer(c, s, m)
    if corr is None or f.time - corr[0] > c.policy.sms.consistency_s:
        if not s.answers_seen and s.answers_may_be_missing:
            # No SRI-SM answer seen at all: the capture may hold one direction
            # only, and then every delivery would look unrequested.
            s.unjudged_consistency += 1
            return None
        return (
            Rule.SMS_CONSISTENCY,
            "MT-ForwardSM to a home subscriber with no SRI-SM answered to the same sender",
        )
    if corr[1] and f.called_gt and node_key(f.called_gt) != corr[1]:
        return Rule.SMS_CONSISTENCY, "MT-ForwardSM sent to another node than its SRI-SM named"
    return None


def _shared_answer(c: Compiled, s: State, m: Message) -> Correlation | None:
    """An SRI-SM answer another proxy shared (see SharedLookups), kept here
    for the rest of the message's segments; None if there is none."""
    f = m.f
    assert s.shared is not None
    found = s.shared.find(f.calling_gt, c.hash("imsi", f.imsi), f.time)
    if found is None:
        return None
    corr: Correlation = (found[0], node_key(found[1]) if found[1] else 0, "")
    bounded_put(s.correlations, (f.calling_gt, m.imsi_key), corr, c.policy.limits.correlations)
    return corr


def sms_origin(c: Compiled, s: State, m: Message) -> Finding | None:
    """An SRI-SM from a network without a roaming agreement, judged at the
    message (not only by the late lookup-only alert, after the answer left).
    With home routing on, such lookups are answered with a correlation id by
    the proxy: that is the policy's action, unless it says block."""
    if m.origin is not _FOREIGN or _SRI_SM not in m.f.invokes:
        return None
    if c.home_routing and c.actions[Rule.SMS_ORIGIN] is not _BLOCK_ACTION:
        return None
    return Rule.SMS_ORIGIN, "SRI-SM from a network without a roaming agreement"


def sms_spoofing(c: Compiled, s: State, m: Message) -> Finding | None:
    """Short messages that pretend to come from the home network (category 3:
    about our subscribers, plausible only from where they are).

    - an MO-ForwardSM whose originator (SM-RP-OA) is a home number, from a
      network without an agreement, or from a partner while the home HLR last
      sent that subscriber's profile elsewhere (home, or another network);
    - an MT delivery whose service centre (SM-RP-OA) is a home or platform
      SMSC, arriving through a node of another network.
    """
    f = m.f
    if m.mt:
        sc = f.service_centre
        if sc and c.origin(sc)[0] in _HOME_SIDE:
            return Rule.SMS_SPOOFING, "MT-ForwardSM claiming a home SMSC through another network"
        return None
    if _MO_FORWARD_SM not in f.invokes or not f.msisdn:
        return None
    if c.home_msisdn.longest(f.msisdn) is None:
        return None
    if m.origin is _FOREIGN:
        return (
            Rule.SMS_SPOOFING,
            "MO-ForwardSM from a home subscriber's number through a network without an agreement",
        )
    known = s.number_locations.get(m.msisdn_key)
    if known is not None and known[0] != m.partner:
        return (
            Rule.SMS_SPOOFING,
            "MO-ForwardSM from a home subscriber's number through a network "
            "the subscriber is not registered in",
        )
    return None


def silent_sms(c: Compiled, s: State, m: Message) -> Finding | None:
    if m.mt and m.f.tp_pid == TP_PID_SHORT_MESSAGE_TYPE_0:
        return Rule.SILENT_SMS, "short message type 0 (TP-PID 0x40): a silent SMS"
    return None


def _take(
    table: OrderedDict[K, Bucket], key: K, now: float, rate: float, burst: float, limit: int
) -> bool:
    """Take one token from ``key``'s bucket (a new bucket starts full)."""
    bucket = table.get(key)
    if bucket is None:
        tokens = burst
    else:
        tokens, last = bucket
        if now > last:
            tokens += (now - last) * rate
            if tokens > burst:
                tokens = burst
    ok = tokens >= 1.0
    value = (tokens - 1.0 if ok else tokens, now)
    if bucket is None:
        bounded_put(table, key, value, limit)
    else:
        table[key] = value
        # Youngest last: a proxy shares only what changed since its last
        # share by walking each table from its young end (snapshot.py).
        table.move_to_end(key)
    return ok


def rate_limit(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    now = f.time
    if not _take(s.gt_buckets, f.calling_gt, now, c.gt_rate, c.gt_burst, c.senders_limit):
        return Rule.RATE_LIMIT, f"sender above {c.policy.rates.per_gt_per_s:g} operations/s"
    if f.imsi or f.msisdn:
        key = m.imsi_key if f.imsi else m.msisdn_key
        if not _take(s.subscriber_buckets, key, now, c.subscriber_rate, c.subscriber_burst,
                     c.subscribers_limit):  # fmt: skip
            return (
                Rule.RATE_LIMIT,
                f"above {c.policy.rates.per_subscriber_per_min:g} operations/min about one "
                "subscriber",
            )
    return None


def repeated_lookup(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    if f.opcode not in LOOKUP_OPCODES or not (f.msisdn or f.imsi):
        return None
    key = m.msisdn_key if f.msisdn else m.imsi_key
    lk, now = c.policy.lookups, f.time
    before = s.lookup_times.get(key)
    window = lk.repeated_window_s
    if before is None:
        times: tuple[float, ...] = (now,)
        bounded_put(s.lookup_times, key, times, c.policy.limits.subscribers)
    else:
        # Keep only what can still count: the window's last repeated_max + 1.
        kept = before[-lk.repeated_max :]
        if now - kept[0] > window:
            kept = tuple(t for t in kept if now - t <= window)
        times = (*kept, now)
        s.lookup_times[key] = times
        s.lookup_times.move_to_end(key)  # youngest last (see _take)
    if len(times) > lk.repeated_max:
        return (
            Rule.REPEATED_LOOKUP,
            f"more than {lk.repeated_max} lookups of one number in {lk.repeated_window_s:g} s",
        )
    return None


# Numbers remembered per block, as a multiple of sweep_distinct: room for a
# sweep interleaved with ordinary lookups into the same block.
SWEEP_BLOCK_FACTOR: Final = 2


def _dense(suffixes: list[int], distinct: int, span: int) -> bool:
    """Whether ``distinct`` of the sorted ``suffixes`` lie within ``span``."""
    suffixes.sort()
    return any(
        suffixes[i + distinct - 1] - suffixes[i] < span for i in range(len(suffixes) - distinct + 1)
    )


def range_sweep(c: Compiled, s: State, m: Message) -> Finding | None:
    """Many distinct numbers close together, looked up by one sender.

    Numbers are grouped in blocks (all but the last ``sweep_block_digits``
    digits); a block holds each number's position in it (the block itself is
    keyed by hash, so the state never spells a number). A sweep is
    ``sweep_distinct`` distinct positions within ``sweep_span`` consecutive
    numbers in the window: consecutive-ish, which a busy SMSC's lookups of
    random subscribers in the same block are not.
    """
    f = m.f
    lk = c.policy.lookups
    digits = lk.sweep_block_digits
    msisdn = f.msisdn
    if f.opcode not in LOOKUP_OPCODES or len(msisdn) <= digits or not msisdn.isdigit():
        return None
    now = f.time
    blocks = s.sweeps.get(f.calling_gt)
    if blocks is None:
        blocks = {}
        bounded_put(s.sweeps, f.calling_gt, blocks, c.policy.limits.sweep_senders)
    else:
        s.sweeps.move_to_end(f.calling_gt)  # youngest last (see _take)
    block = hash(("block", msisdn[:-digits]))
    numbers = blocks.get(block)
    per_block = SWEEP_BLOCK_FACTOR * lk.sweep_distinct
    if numbers is None:
        numbers = {}
        bounded_put(blocks, block, numbers, max(1, c.policy.limits.lookups_per_sender // per_block))
    position = int(msisdn[-digits:])
    bounded_put(numbers, position, now, per_block)
    distinct, span, window = lk.sweep_distinct, lk.sweep_span, lk.sweep_window_s
    if len(numbers) < distinct:
        return None
    # Only numbers within span of this one can make a cluster with it (any
    # cluster without it was judged when its own last number came).
    near = [k for k, t in numbers.items() if -span < k - position < span and now - t <= window]
    if len(near) >= distinct and _dense(near, distinct, span):
        return (
            Rule.RANGE_SWEEP,
            f"{distinct} numbers within {span} consecutive numbers "
            f"looked up by one sender within {window:g} s",
        )
    return None


def platform_egress(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    if f.global_opcode:
        return Rule.PLATFORM_EGRESS, "global operation code from a platform GT"
    for op in f.invokes:
        if op != _SRI_SM and op != _REPORT_SM and not is_mt_delivery(op, m.ac):
            return (
                Rule.PLATFORM_EGRESS,
                f"{operation_name(op)} from a platform GT: only SRI-SM, MT-ForwardSM and "
                "ReportSM-DeliveryStatus serving a queued customer message may leave the platform",
            )
    now, store = f.time, m.store
    if _REPORT_SM in f.invokes and (
        not f.msisdn or store is None or not store.has_pending(f.msisdn, now)
    ):
        # TS 29.002 §12.3: the SMSC reports a delivery's outcome for a number
        # to its HLR; from the platform, only for a message it is delivering.
        return (
            Rule.PLATFORM_EGRESS,
            "ReportSM-DeliveryStatus from a platform GT with no queued customer message "
            "to that number",
        )
    if _SRI_SM in f.invokes:
        if f.delivery_not_intended:
            return (
                Rule.PLATFORM_EGRESS,
                "SRI-SM with sm-deliveryNotIntended from a platform GT: a lookup, not a delivery",
            )
        if not f.msisdn or store is None or not store.has_pending(f.msisdn, now):
            return (
                Rule.PLATFORM_EGRESS,
                "SRI-SM from a platform GT with no queued customer message to that number",
            )
    if m.mt:
        corr = (
            s.correlations.get((f.calling_gt, m.imsi_key))
            if f.sm_rp_da == _DA_IMSI and f.imsi
            else None
        )
        if (
            corr is None
            or now - corr[0] > c.policy.sms.consistency_s
            or not corr[2]
            or store is None
            or not store.has_pending(corr[2], now)
        ):
            return (
                Rule.PLATFORM_EGRESS,
                "MT-ForwardSM from a platform GT without an SRI-SM for a queued customer message",
            )
        if corr[1] and f.called_gt and node_key(f.called_gt) != corr[1]:
            return (
                Rule.PLATFORM_EGRESS,
                "MT-ForwardSM from a platform GT to another node than its SRI-SM named",
            )
    return None


# When a rule can say anything at all, from what is known before it runs: the
# plan for (origin, category, opcode, MT) keeps only these, so a message runs
# the three or four rules that concern it rather than all of them.
Applies = Callable[[Compiled, Category, int | None, bool], bool]


def _always(c: Compiled, cat: Category, op: int | None, mt: bool) -> bool:
    return True


_APPLIES: Final[dict[RuleFn, Applies]] = {
    deny_list: lambda c, cat, op, mt: bool(c.deny_ops),
    cat1: lambda c, cat, op, mt: cat is _CAT1,
    cat2: lambda c, cat, op, mt: cat is _CAT2,
    address_mismatch: lambda c, cat, op, mt: op in (_UPDATE_LOCATION, _PROVIDE_ROAMING_NUMBER),
    cat3_velocity: lambda c, cat, op, mt: cat is _CAT3,
    sms_consistency: lambda c, cat, op, mt: mt,
    sms_origin: lambda c, cat, op, mt: op == _SRI_SM,
    sms_spoofing: lambda c, cat, op, mt: op in (_MT_FORWARD_SM, _MO_FORWARD_SM),
    silent_sms: lambda c, cat, op, mt: mt,
    repeated_lookup: lambda c, cat, op, mt: op in LOOKUP_OPCODES,
    range_sweep: lambda c, cat, op, mt: op in LOOKUP_OPCODES,
}


def plan(
    rules: tuple[RuleFn, ...], c: Compiled, category: Category, opcode: int | None, mt: bool
) -> tuple[RuleFn, ...]:
    """The rules of ``rules`` that can apply to a single-invoke message."""
    return tuple(r for r in rules if _APPLIES.get(r, _always)(c, category, opcode, mt))


# Traffic from roaming partners and foreign networks, in decision order.
SCREEN_RULES: Final[tuple[RuleFn, ...]] = (
    deny_list,
    tcap_sanity,
    cat1,
    cat2,
    address_mismatch,
    cat3_velocity,
    sms_spoofing,
    sms_consistency,
    sms_origin,
    silent_sms,
    rate_limit,
    repeated_lookup,
    range_sweep,
)

# Traffic from the platform's own global titles.
EGRESS_RULES: Final[tuple[RuleFn, ...]] = (
    deny_list,
    tcap_sanity,
    platform_egress,
    silent_sms,
)
