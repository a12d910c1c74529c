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

from collections import deque
from collections.abc import Callable

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
    Bucket,
    Compiled,
    Dialogue,
    State,
    bounded_put,
    distance_km,
)
from herald.signaling.policy.verdict import Origin, Rule

__all__ = [
    "EGRESS_RULES",
    "SCREEN_RULES",
    "TP_PID_SHORT_MESSAGE_TYPE_0",
    "Finding",
    "Message",
    "RuleFn",
    "is_mt_delivery",
]

Finding = tuple[Rule, str]

# TS 23.040 §9.2.3.9: TP-PID 0x40 is "Short Message Type 0": the handset
# acknowledges it and discards it without telling the user (a "silent SMS").
TP_PID_SHORT_MESSAGE_TYPE_0 = SILENT_SMS_PID


def is_mt_delivery(opcode: int, ac: tuple[int, int] | None) -> bool:
    """mt-ForwardSM (44), or forwardSM (46) in a shortMsgMT-Relay (AC 25) v1/v2
    dialogue (TS 29.002 §12.9, §17.6.5)."""
    if opcode == Op.MT_FORWARD_SM:
        return True
    return (
        opcode == Op.MO_FORWARD_SM
        and ac is not None
        and ac[0] == MapAc.SHORT_MSG_MT_RELAY
        and ac[1] <= 2
    )


class Message:
    """One message being judged: its facts plus what the engine derived."""

    __slots__ = (
        "_imsi_hash",
        "_msisdn_hash",
        "_sender",
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
        if f.ac is not None or f.ac_other or dialogue is None:
            self.ac, self.ac_other = f.ac, f.ac_other
        else:
            self.ac, self.ac_other = dialogue.ac, dialogue.ac_other
        self.categories: tuple[Category, ...] = ()
        self.category = Category.NONE
        self.mt = False
        self._sender = ""
        self._imsi_hash = ""
        self._msisdn_hash = ""

    def classify(self) -> None:
        """Fill ``categories`` (one per invoke), ``category`` (the most
        restrictive) and ``mt`` (whether this delivers a short message)."""
        ac, other = self.ac, self.ac_other
        cats = tuple(self.c.category(op, ac, other) for op in self.f.invokes)
        self.categories = cats
        worst = Category.NONE
        for cat in cats:
            if cat.rank > worst.rank:
                worst = cat
        self.category = worst
        self.mt = any(is_mt_delivery(op, ac) for op in self.f.invokes)

    @property
    def sender(self) -> str:
        if not self._sender:
            self._sender = self.c.hash("gt", self.f.calling_gt)
        return self._sender

    @property
    def imsi_hash(self) -> str:
        if not self._imsi_hash and self.f.imsi:
            self._imsi_hash = self.c.hash("imsi", self.f.imsi)
        return self._imsi_hash

    @property
    def msisdn_hash(self) -> str:
        if not self._msisdn_hash and self.f.msisdn:
            self._msisdn_hash = self.c.hash("msisdn", self.f.msisdn)
        return self._msisdn_hash

    @property
    def subscriber(self) -> str:
        return self.imsi_hash or self.msisdn_hash

    @property
    def home_imsi(self) -> bool:
        return bool(self.f.imsi) and self.c.home_imsi.longest(self.f.imsi) is not None


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
    if (f.tcap is TcapKind.BEGIN or f.tcap is TcapKind.UNIDIRECTIONAL) and (
        f.ac is None and not f.ac_other
    ):
        # Q.773 §3.1: without a dialogue portion there is no application context,
        # i.e. MAP v1 (obsolete) or a message crafted to dodge (opcode, AC) rules.
        return Rule.TCAP_SANITY, "TC-BEGIN without a dialogue portion (no application context)"
    return None


def cat1(c: Compiled, s: State, m: Message) -> Finding | None:
    for op, cat in zip(m.f.invokes, m.categories, strict=True):
        if cat is Category.CAT1 and not c.allow_listed(m.f.calling_gt, op):
            return (
                Rule.CAT1,
                f"{operation_name(op)} under {_ac_text(m)} is category 1: "
                "never accepted from the interconnect",
            )
    return None


def cat2(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    for op, cat in zip(f.invokes, m.categories, strict=True):
        if cat is not Category.CAT2 or c.allow_listed(f.calling_gt, op):
            continue
        name = operation_name(op)
        if f.imsi:
            if m.home_imsi:
                return Rule.CAT2, f"{name} about a home subscriber from another network"
            if m.origin is Origin.FOREIGN:
                return Rule.CAT2, f"{name} from a network without a roaming agreement"
            if c.partner_imsi.longest(f.imsi) != m.partner:
                return (
                    Rule.CAT2,
                    f"{name} about a subscriber whose home network is not the sender's",
                )
        elif m.origin is Origin.FOREIGN:
            return Rule.CAT2, f"{name} from a network without a roaming agreement"
    return None


def address_mismatch(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    if Op.UPDATE_LOCATION in f.invokes:
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
        Op.PROVIDE_ROAMING_NUMBER in f.invokes
        and f.msc_number
        and c.origin(f.msc_number)[0] is not Origin.HOME
    ):
        return (
            Rule.ADDRESS_MISMATCH,
            "provideRoamingNumber naming an MSC outside the home network",
        )
    return None


def cat3_velocity(c: Compiled, s: State, m: Message) -> Finding | None:
    if m.category is not Category.CAT3 or not m.home_imsi:
        return None  # only our outbound roamers are ours to judge
    f = m.f
    name = operation_name(f.opcode)
    if m.origin is Origin.FOREIGN:
        if any(c.allow_listed(f.calling_gt, op) for op in f.invokes):
            return None
        return (
            Rule.CAT3_VELOCITY,
            f"{name} about a home subscriber from a network without a roaming agreement",
        )
    last = s.locations.get(m.imsi_hash)
    if last is None or last.partner == m.partner:
        return None
    here = c.regions.get(c.region_of(m.partner))
    there = c.regions.get(last.region)
    if here is None or there is None:
        return None  # no coordinates: velocity cannot be judged
    elapsed = max(0.0, f.time - last.time)
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
    if not m.mt or f.sm_rp_da is not SmRpDaKind.IMSI or not m.home_imsi:
        return None
    corr = s.correlations.get((f.calling_gt, m.imsi_hash))
    if corr is None or f.time - corr.time > c.policy.sms.consistency_s:
        return (
            Rule.SMS_CONSISTENCY,
            "MT-ForwardSM to a home subscriber with no SRI-SM answered to the same sender",
        )
    if corr.node and f.called_gt and c.hash("gt", f.called_gt) != corr.node:
        return Rule.SMS_CONSISTENCY, "MT-ForwardSM sent to another node than its SRI-SM named"
    return None


def silent_sms(c: Compiled, s: State, m: Message) -> Finding | None:
    if m.mt and m.f.tp_pid == TP_PID_SHORT_MESSAGE_TYPE_0:
        return Rule.SILENT_SMS, "short message type 0 (TP-PID 0x40): a silent SMS"
    return None


def rate_limit(c: Compiled, s: State, m: Message) -> Finding | None:
    f, r, now = m.f, c.policy.rates, m.f.time
    bucket = s.gt_buckets.get(f.calling_gt)
    if bucket is None:
        bucket = Bucket(r.per_gt_burst, now)
        bounded_put(s.gt_buckets, f.calling_gt, bucket, c.policy.limits.senders)
    if not bucket.take(now, r.per_gt_per_s, r.per_gt_burst):
        return Rule.RATE_LIMIT, f"sender above {r.per_gt_per_s:g} operations/s"
    subscriber = m.subscriber
    if subscriber:
        bucket = s.subscriber_buckets.get(subscriber)
        if bucket is None:
            bucket = Bucket(r.per_subscriber_burst, now)
            bounded_put(s.subscriber_buckets, subscriber, bucket, c.policy.limits.subscribers)
        if not bucket.take(now, r.per_subscriber_per_min / 60.0, r.per_subscriber_burst):
            return (
                Rule.RATE_LIMIT,
                f"above {r.per_subscriber_per_min:g} operations/min about one subscriber",
            )
    return None


def _lookup_key(m: Message) -> str:
    return m.msisdn_hash or m.imsi_hash


def repeated_lookup(c: Compiled, s: State, m: Message) -> Finding | None:
    if m.f.opcode not in LOOKUP_OPCODES:
        return None
    key = _lookup_key(m)
    if not key:
        return None
    lk, now = c.policy.lookups, m.f.time
    times = s.lookup_times.get(key)
    if times is None:
        times = deque(maxlen=lk.repeated_max + 1)
        bounded_put(s.lookup_times, key, times, c.policy.limits.subscribers)
    times.append(now)
    while times and now - times[0] > lk.repeated_window_s:
        times.popleft()
    if len(times) > lk.repeated_max:
        return (
            Rule.REPEATED_LOOKUP,
            f"more than {lk.repeated_max} lookups of one number in {lk.repeated_window_s:g} s",
        )
    return None


def range_sweep(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    lk = c.policy.lookups
    if f.opcode not in LOOKUP_OPCODES or len(f.msisdn) <= lk.sweep_block_digits:
        return None
    now = f.time
    blocks = s.sweeps.get(f.calling_gt)
    if blocks is None:
        blocks = {}
        bounded_put(s.sweeps, f.calling_gt, blocks, c.policy.limits.senders)
    block = f.msisdn[: -lk.sweep_block_digits]
    numbers = blocks.get(block)
    if numbers is None:
        numbers = {}
        max_blocks = max(1, c.policy.limits.lookups_per_sender // lk.sweep_distinct)
        bounded_put(blocks, block, numbers, max_blocks)
    bounded_put(numbers, m.msisdn_hash, now, lk.sweep_distinct)
    for key in [k for k, t in numbers.items() if now - t > lk.sweep_window_s]:
        del numbers[key]
    if len(numbers) >= lk.sweep_distinct:
        return (
            Rule.RANGE_SWEEP,
            f"{len(numbers)} numbers of one {10**lk.sweep_block_digits}-number range "
            f"looked up by one sender within {lk.sweep_window_s:g} s",
        )
    return None


def platform_egress(c: Compiled, s: State, m: Message) -> Finding | None:
    f = m.f
    if f.global_opcode:
        return Rule.PLATFORM_EGRESS, "global operation code from a platform GT"
    for op in f.invokes:
        if op != Op.SEND_ROUTING_INFO_FOR_SM and not is_mt_delivery(op, m.ac):
            return (
                Rule.PLATFORM_EGRESS,
                f"{operation_name(op)} from a platform GT: only SRI-SM and MT-ForwardSM "
                "serving a queued customer message may leave the platform",
            )
    now, store = f.time, m.store
    if Op.SEND_ROUTING_INFO_FOR_SM in f.invokes:
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
            s.correlations.get((f.calling_gt, m.imsi_hash))
            if f.sm_rp_da is SmRpDaKind.IMSI and f.imsi
            else None
        )
        if (
            corr is None
            or now - corr.time > c.policy.sms.consistency_s
            or not corr.msisdn
            or store is None
            or not store.has_pending(corr.msisdn, now)
        ):
            return (
                Rule.PLATFORM_EGRESS,
                "MT-ForwardSM from a platform GT without an SRI-SM for a queued customer message",
            )
        if corr.node and f.called_gt and c.hash("gt", f.called_gt) != corr.node:
            return (
                Rule.PLATFORM_EGRESS,
                "MT-ForwardSM from a platform GT to another node than its SRI-SM named",
            )
    return None


# Traffic from roaming partners and foreign networks, in decision order.
SCREEN_RULES: tuple[RuleFn, ...] = (
    deny_list,
    tcap_sanity,
    cat1,
    cat2,
    address_mismatch,
    cat3_velocity,
    sms_consistency,
    silent_sms,
    rate_limit,
    repeated_lookup,
    range_sweep,
)

# Traffic from the platform's own global titles.
EGRESS_RULES: tuple[RuleFn, ...] = (
    deny_list,
    tcap_sanity,
    platform_egress,
    silent_sms,
)
