"""The guard's policy engine: facts in, verdicts out.

Theory of operation
-------------------
:meth:`Engine.inspect` judges one message, described by a :class:`Facts`:

1. *Origin.* The calling global title says who sent it: the platform's own
   GTs, the home network, a roaming partner, or a foreign network (cached per
   GT). A message that the link says came in from the interconnect but carries
   a home or platform calling GT is spoofed (``address-mismatch``).
2. *Dialogue.* TC-CONTINUE/END/ABORT are matched to the TC-BEGIN that opened
   their dialogue (keyed by originator GT and transaction id), which supplies
   the application context when the message has no dialogue portion, and the
   operation a result answers. Every message of a dialogue whose BEGIN was
   blocked is blocked by the same rule (the HLR's InsertSubscriberData inside a
   blocked UpdateLocation, an answer to a blocked AnyTimeInterrogation).
3. *Observation.* An SRI-SM result carrying an IMSI is remembered as a
   correlation (requester GT, hashed IMSI): the MT-ForwardSM that may follow it,
   and a pending lookup that must be followed by a delivery before the
   lookup-only window ends (:meth:`Engine.expire` turns the ones that were not
   into late alerts).
4. *Rules.* Messages carrying operations run the rule table of their origin
   (:mod:`herald.signaling.policy.rules`): partner and foreign traffic is
   screened, platform traffic is held to egress correlation, home traffic is
   only observed. The first rule whose action is *block* decides; otherwise
   the first *alert*; otherwise the message is allowed.
5. *Commit.* A message that is let through updates what it changed: an
   UpdateLocation moves the subscriber's last known network; a delivery
   clears its pending lookup.

The engine is pure: no I/O, no clock. ``Facts.time`` is the only time it sees,
and :meth:`Engine.expire` takes ``now`` from the caller, who should call it at
:meth:`Engine.next_deadline` (or on every message: it is cheap when idle).
"""

from __future__ import annotations

from typing import Final

from herald.signaling.policy import snapshot as _snapshot
from herald.signaling.policy.categories import Category, Op, operation_name
from herald.signaling.policy.config import Policy
from herald.signaling.policy.egress import PendingMessages, SharedLookups
from herald.signaling.policy.facts import ComponentKind, Direction, Facts, TcapKind
from herald.signaling.policy.rules import (
    EGRESS_RULES,
    SCREEN_RULES,
    Finding,
    Message,
    RuleFn,
    node_key,
    plan,
)
from herald.signaling.policy.state import (
    D_BLOCKED,
    D_CATEGORY,
    D_LOOKUP_ONLY,
    D_MSISDN,
    D_OPCODE,
    ORIGIN_CACHE_LIMIT,
    ORIGIN_INDEX,
    Compiled,
    Dialogue,
    PendingLookup,
    State,
    bounded_put,
)
from herald.signaling.policy.verdict import Action, Origin, Rule, Verdict

__all__ = ["Engine"]

# The hot path's module constants are Final (here and in the codec, bridge,
# rules and inspector): compiled (scripts/compile), mypyc keeps a Final name in
# a C static, while a plain module global costs a dict lookup at every read
# (measured by callgrind, compiled: 64,037 -> 57,947 instructions a message on
# the batched path once they were Final; no change in pure Python).
_SRI_SM_NAME: Final = operation_name(Op.SEND_ROUTING_INFO_FOR_SM)
# Plain ints and module constants on the hot path: an IntEnum member or an
# Enum class attribute costs an attribute lookup through the enum machinery.
_SRI_SM: Final = int(Op.SEND_ROUTING_INFO_FOR_SM)
_UPDATE_LOCATION: Final = int(Op.UPDATE_LOCATION)
_ISD: Final = int(Op.INSERT_SUBSCRIBER_DATA)
_ALLOW: Final = Action.ALLOW
_ALERT: Final = Action.ALERT
_BLOCK: Final = Action.BLOCK
_NO_CATEGORY: Final = Category.NONE
# Enum.value is a Python-level property: read it once here.
_CATEGORY_VALUES: Final = {category: category.value for category in Category}
_RULE_VALUES: Final = {rule: rule.value for rule in Rule}
# And back (calling an Enum class runs EnumMeta.__call__, interpreted).
_RULES_BY_VALUE: Final = {rule.value: rule for rule in Rule}
_CATEGORIES_BY_VALUE: Final = {category.value: category for category in Category}
# Verdicts are built with tuple.__new__ and every field given: a NamedTuple's
# own __new__ is a Python function with defaults, twice the cost.
_new: Final = tuple.__new__
_INBOUND: Final = Direction.INBOUND
_HOME: Final = Origin.HOME
_PLATFORM: Final = Origin.PLATFORM
_PARTNER: Final = Origin.PARTNER
_RESULT_LAST: Final = ComponentKind.RETURN_RESULT_LAST
_RESULT_NOT_LAST: Final = ComponentKind.RETURN_RESULT_NOT_LAST
# Compared with == (IntEnum): a decoder may hand plain ints.
_BEGIN: Final = TcapKind.BEGIN
_END: Final = TcapKind.END
_CONTINUE: Final = TcapKind.CONTINUE
_ABORT: Final = TcapKind.ABORT
_UNIDIRECTIONAL: Final = TcapKind.UNIDIRECTIONAL
_OP_NAMES: Final = {code: operation_name(code) for code in range(256)}

_Plan = tuple[tuple[Category, ...], Category, bool, tuple[RuleFn, ...]]
# Distinct (opcode, AC) pairs planned per origin before the cache is reset
# (256 opcodes x the ACs in use is far below it; hostile variety is not).
PLAN_CACHE_LIMIT: Final = 4096

_RULES_BY_ORIGIN: Final[dict[Origin, tuple[RuleFn, ...]]] = {
    Origin.PARTNER: SCREEN_RULES,
    Origin.FOREIGN: SCREEN_RULES,
    Origin.PLATFORM: EGRESS_RULES,
    Origin.HOME: (),
}


class Engine:
    """Judges messages against one policy, keeping bounded state between them.

    ``store`` answers whether a customer message is queued for a number (the
    platform egress check); without one, every SRI-SM and MT-ForwardSM from a
    platform GT is blocked (fail closed).

    ``answers_may_be_missing`` (scan mode: a capture may hold one direction
    only): until the first SRI-SM answer is seen, MT deliveries are not judged
    for SMS consistency but counted (:attr:`unjudged_consistency`), so the
    caller can say so rather than block every delivery. A live proxy sees
    both directions and leaves it off.
    """

    def __init__(
        self,
        policy: Policy,
        store: PendingMessages | None = None,
        *,
        answers_may_be_missing: bool = False,
    ) -> None:
        self._s = State(answers_may_be_missing=answers_may_be_missing)
        self._store = store
        self._use(policy)
        # Verdicts given: every inspect() counts one; blocks and alerts are
        # counted where they are built (rare), allows by difference.
        self._inspected = 0
        self._blocked = 0
        self._alerted = 0
        self._late_alerts = 0

    def _use(self, policy: Policy) -> None:
        self._c = Compiled(policy)
        self.policy = policy
        self._dialogue_limit = policy.limits.dialogues
        self._deny_gts = bool(self._c.deny_gts)
        self._spoof_check = self._c.actions[Rule.ADDRESS_MISMATCH] is not Action.ALLOW
        # origin -> (opcode, AC) -> (categories, category, MT, the rules that
        # can apply: see rules.plan). Bounded by the (opcode, AC) pairs seen.
        self._plans: dict[Origin, dict[tuple[int, tuple[int, int] | None], _Plan]] = {
            o: {} for o in Origin
        }
        self._s.origin_cache.clear()

    def replace_policy(self, policy: Policy) -> None:
        """Judge from now on by ``policy`` (a reload), keeping what the engine
        remembers: dialogues, locations, correlations, rates and lookups, each
        table cut to the new policy's limit (oldest entries first)."""
        self._use(policy)
        s, limits = self._s, policy.limits
        for table, limit in (
            (s.dialogues, limits.dialogues),
            (s.correlations, limits.correlations),
            (s.pending, limits.correlations),
            (s.locations, limits.subscribers),
            (s.number_locations, limits.subscribers),
            (s.subscriber_buckets, limits.subscribers),
            (s.lookup_times, limits.subscribers),
            (s.gt_buckets, limits.senders),
            (s.delivered, limits.correlations),
            (s.sweeps, limits.sweep_senders),
        ):
            while len(table) > limit:
                table.popitem(last=False)

    # ------------------------------------------------------------ public API

    @property
    def counts(self) -> dict[Action, int]:
        """Verdicts given so far, by action (late alerts included)."""
        return {
            Action.ALLOW: self._inspected - self._blocked - self._alerted,
            Action.ALERT: self._alerted + self._late_alerts,
            Action.BLOCK: self._blocked,
        }

    def expire(self, now: float) -> list[Verdict]:
        """Late alerts: successful SRI-SM lookups whose delivery did not follow
        within the lookup-only window, as of ``now``. Call it periodically (at
        :meth:`next_deadline`); each pending lookup is reported at most once."""
        pending = self._s.pending
        out: list[Verdict] = []
        actions = self._c.actions
        while pending:
            key = next(iter(pending))
            entry = pending[key]
            deadline, subscriber, requester, platform = entry
            if deadline > now:
                break
            del pending[key]
            rule = Rule.PLATFORM_EGRESS if platform else Rule.LOOKUP_ONLY
            if actions[rule] is Action.ALLOW:
                continue
            shared = self._s.shared
            if shared is not None and not platform and shared.delivered(requester, subscriber):
                continue  # delivered through another proxy of the pair
            reason = (
                "SRI-SM from a platform GT not followed by its MT-ForwardSM"
                if platform
                else "SRI-SM answered but not followed by an MT-ForwardSM: a lookup only"
            )
            out.append(
                Verdict(
                    Action.ALERT,
                    rule,
                    Category.SMS,
                    reason,
                    deadline,
                    operation=_SRI_SM_NAME,
                    # The requester's own origin: a partner's SMSC is not "foreign".
                    origin=Origin.PLATFORM if platform else self._c.origin(requester)[0],
                    subscriber=subscriber,
                    sender=self._c.hash("gt", requester),
                    late=True,
                )
            )
            self._late_alerts += 1
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has something to report (``None``: nothing pending)."""
        pending = self._s.pending
        if not pending:
            return None
        return pending[next(iter(pending))][0]

    @property
    def answers_seen(self) -> int:
        """SRI-SM answers (with an IMSI) observed so far."""
        return self._s.answers_seen

    @property
    def unjudged_consistency(self) -> int:
        """MT deliveries not judged for SMS consistency because no SRI-SM
        answer had been seen yet (only with ``answers_may_be_missing``)."""
        return self._s.unjudged_consistency

    def copy_state(self, now: float, limit: int) -> _snapshot.Copied:
        """The newest ``limit`` entries of every table, for a snapshot
        (:func:`herald.signaling.policy.snapshot.encode` it in any thread)."""
        return _snapshot.copy_state(self._s, self._c, now, limit)

    def copy_changes(self, now: float, since: float, limit: int) -> _snapshot.Copied:
        """What changed at or after ``since`` (at most ``limit`` entries a
        table), for another proxy sharing the state (see
        :func:`herald.signaling.policy.snapshot.copy_state`)."""
        return _snapshot.copy_state(self._s, self._c, now, limit, since)

    def share_deliveries(self) -> None:
        """Remember deliveries no lookup of this engine's owed, so that a
        proxy sharing the state can settle its own (see :meth:`copy_changes`)."""
        self._s.record_deliveries = True

    def share_lookups(self, shared: SharedLookups) -> None:
        """Tell ``shared`` every SRI-SM answer about a home subscriber, and ask
        it when a delivery follows no answer this engine saw (an active pair:
        the answer may have crossed the other proxy a moment ago)."""
        self._s.shared = shared

    def restore_state(self, data: bytes, now: float, age: float = 0.0,
                      share: bool = False) -> int:  # fmt: skip
        """Merge a snapshot taken ``age`` seconds ago, or with ``share``
        another proxy's changes (see
        :func:`herald.signaling.policy.snapshot.restore_state`)."""
        return _snapshot.restore_state(self._s, self._c, data, now, age, share)

    def lookup_answered(self, requester: str, imsi: str, node: str, when: float) -> None:
        """An SRI-SM answered to ``requester`` at ``when`` (naming ``imsi`` at
        ``node``) that this engine may not have seen: before a restart, or
        through another proxy sharing SMS home routing's store. The delivery
        that follows is then judged consistent with it, as if it had been
        seen; no lookup-only deadline is started (the delivery is at hand)."""
        c, s = self._c, self._s
        if not imsi or c.home_imsi.longest(imsi) is None:
            return
        key = (requester, hash(("imsi", imsi)))
        if key not in s.correlations:
            entry = (when, node_key(node) if node else 0, "")
            bounded_put(s.correlations, key, entry, self.policy.limits.correlations)

    def subscriber_hash(self, kind: str, identifier: str) -> str:
        """The salted hash this engine publishes for an identifier (``imsi``,
        ``msisdn`` or ``gt``): for joining an operator's own records to verdicts."""
        return self._c.hash(kind, identifier)

    @property
    def state_sizes(self) -> dict[str, int]:
        s = self._s
        return {
            "dialogues": len(s.dialogues),
            "correlations": len(s.correlations),
            "pending_lookups": len(s.pending),
            "locations": len(s.locations),
            "number_locations": len(s.number_locations),
            "senders": len(s.gt_buckets),
            "subscriber_buckets": len(s.subscriber_buckets),
            "lookup_counters": len(s.lookup_times),
            "sweep_senders": len(s.sweeps),
        }

    # ------------------------------------------------- the verdict path

    def inspect(self, f: Facts) -> Verdict:
        """The verdict on one message. Never raises on any ``Facts`` value.

        (The hot path, hence long: one call per message, the steps of the
        module docstring in order.)
        """
        self._inspected += 1
        c, s = self._c, self._s
        gt = f.calling_gt
        found = s.origin_cache.get(gt)
        if found is None:
            if len(s.origin_cache) >= ORIGIN_CACHE_LIMIT:
                s.origin_cache.clear()
            found = s.origin_cache[gt] = c.origin(gt)
        origin, partner = found

        tcap = f.tcap
        dialogue: Dialogue | None = None
        if tcap != _BEGIN and tcap != _UNIDIRECTIONAL:
            dialogues = s.dialogues
            key: tuple[str, bytes] | None = None
            if f.dtid:
                key = (f.called_gt, f.dtid)
                dialogue = dialogues.get(key)
            if dialogue is None and f.otid:
                key = (gt, f.otid)
                dialogue = dialogues.get(key)
            if dialogue is not None:
                if tcap in (_END, _ABORT):
                    del dialogues[key]  # type: ignore[arg-type]
                if dialogue[D_BLOCKED] is not None:
                    return self._verdict(
                        Message(c, f, origin, partner, dialogue, self._store),
                        _BLOCK,
                        (
                            _RULES_BY_VALUE[dialogue[D_BLOCKED]],
                            "continues a dialogue whose first message was blocked",
                        ),
                        _CATEGORIES_BY_VALUE[dialogue[D_CATEGORY]],
                        dialogue[D_OPCODE],
                    )

        if self._deny_gts and c.deny_gts.longest(gt) is not None:
            finding: Finding = (Rule.DENY_LIST, "calling GT is on the deny list")
            m = Message(c, f, origin, partner, dialogue, self._store)
            m.classify()
            return self._decided(m, _BLOCK, finding)

        if (
            self._spoof_check
            and f.direction == _INBOUND
            and (origin is _HOME or origin is _PLATFORM)
        ):
            finding = (
                Rule.ADDRESS_MISMATCH,
                "home or platform calling GT arriving from the interconnect (spoofed)",
            )
            m = Message(c, f, origin, partner, dialogue, self._store)
            m.classify()
            return self._decided(m, c.actions[Rule.ADDRESS_MISMATCH], finding)

        invokes = f.invokes
        component = f.component
        if not invokes and not f.global_opcode:
            if f.imsi and (component is _RESULT_LAST or component is _RESULT_NOT_LAST):
                self._observe_result(Message(c, f, origin, partner, dialogue, self._store))
            opcode = f.opcode if dialogue is None else dialogue[D_OPCODE]
            return _new(
                Verdict,
                (
                    _ALLOW,
                    None,
                    _NO_CATEGORY,
                    "",
                    f.time,
                    "" if opcode is None else (_OP_NAMES.get(opcode) or operation_name(opcode)),
                    origin,
                    "",
                    "",
                    False,
                ),
            )

        m = Message(c, f, origin, partner, dialogue, self._store)
        if component is _RESULT_LAST or component is _RESULT_NOT_LAST:
            self._observe_result(m)

        if len(invokes) == 1 and not m.ac_other:
            # (opcode, AC) fixes the category, whether it is an MT delivery and
            # so the rules that can apply: computed once per pair and origin.
            plans = self._plans[origin]
            plan_key = (invokes[0], m.ac)
            cached = plans.get(plan_key)
            if cached is None:
                if len(plans) >= PLAN_CACHE_LIMIT:
                    plans.clear()
                m.classify()
                cached = plans[plan_key] = (
                    m.categories,
                    m.category,
                    m.mt,
                    plan(_RULES_BY_ORIGIN[origin], c, m.category, invokes[0], m.mt),
                )
            else:
                m.categories, m.category, m.mt = cached[0], cached[1], cached[2]
            rules = cached[3]
        else:
            m.classify()
            rules = _RULES_BY_ORIGIN[origin]
        decided: Finding | None = None
        action = _ALLOW
        actions = c.actions
        for rule in rules:
            result = rule(c, s, m)
            if result is not None:
                chosen = actions[result[0]]
                if chosen is _BLOCK:
                    decided, action = result, chosen
                    break
                if chosen is _ALERT and decided is None:
                    decided, action = result, chosen
        return self._decided(m, action, decided)

    # ------------------------------------------------------------- internals

    def _decided(self, m: Message, action: Action, finding: Finding | None) -> Verdict:
        """Record the dialogue and commit the message's effects, then build the
        verdict. ``m`` is classified."""
        f = m.f
        if f.tcap == _BEGIN and f.otid:
            blocked = finding[0] if action is _BLOCK and finding is not None else None
            platform_sri = m.origin is _PLATFORM and f.opcode == _SRI_SM
            # bounded_put, inline: once per TC-BEGIN.
            dialogues = self._s.dialogues
            key = (f.calling_gt, f.otid)
            if key in dialogues:
                del dialogues[key]
            elif len(dialogues) >= self._dialogue_limit:
                dialogues.popitem(last=False)
            dialogues[key] = (
                f.ac,
                f.ac_other,
                f.opcode,
                ORIGIN_INDEX[m.origin],
                None if blocked is None else _RULE_VALUES[blocked],
                _CATEGORY_VALUES[m.category],
                f.msisdn if platform_sri else "",
                f.delivery_not_intended,
            )
        if action is _BLOCK:
            return self._verdict(m, action, finding, m.category, f.opcode)
        if f.imsi and (m.mt or f.opcode == _UPDATE_LOCATION):
            self._commit(m)
        elif f.msisdn and f.opcode == _ISD and m.origin is _HOME:
            self._number_location(m)
        if action is _ALLOW:
            opcode = f.opcode
            return _new(
                Verdict,
                (
                    _ALLOW,
                    None,
                    m.category,
                    "",
                    f.time,
                    "" if opcode is None else (_OP_NAMES.get(opcode) or operation_name(opcode)),
                    m.origin,
                    "",
                    "",
                    False,
                ),
            )
        return self._verdict(m, action, finding, m.category, f.opcode)

    def _verdict(
        self,
        m: Message,
        action: Action,
        finding: Finding | None,
        category: Category,
        opcode: int | None,
    ) -> Verdict:
        """A block or alert verdict: with the published hashes of the
        subscriber and the sender (allowed messages publish none: nothing
        prints or audits them by default, and an HMAC per message would cost
        more than the rules)."""
        assert finding is not None
        if action is _BLOCK:
            self._blocked += 1
        else:
            self._alerted += 1
        return _new(
            Verdict,
            (
                action,
                finding[0],
                category,
                finding[1],
                m.f.time,
                "" if opcode is None else (_OP_NAMES.get(opcode) or operation_name(opcode)),
                m.origin,
                m.subscriber,
                m.sender,
                False,
            ),
        )

    def _observe_result(self, m: Message) -> None:
        """Remember an answered SRI-SM (TS 29.002 §12.1: RoutingInfoForSM-Res
        carries the IMSI and the serving node's number)."""
        f, d = m.f, m.dialogue
        opcode = f.opcode if f.opcode is not None else (d[D_OPCODE] if d is not None else None)
        if opcode != _SRI_SM or not f.imsi:
            return
        c, s = self._c, self._s
        s.answers_seen += 1
        requester = f.called_gt
        platform = requester in c.platform_gts
        if not platform and not m.home_imsi:
            return  # someone else's subscriber: not ours to correlate
        key = (requester, m.imsi_key)
        node = node_key(f.msc_number) if f.msc_number else 0
        msisdn = d[D_MSISDN] if (platform and d is not None) else ""
        limits = self.policy.limits
        bounded_put(s.correlations, key, (f.time, node, msisdn), limits.correlations)
        subscriber = c.hash("imsi", f.imsi)
        shared = s.shared
        if shared is not None and not platform:
            sms = self.policy.sms
            # Kept until the delivery is late, and the lookup-only check past.
            shared.answered(requester, subscriber, f.msc_number, f.time,
                            f.time + max(sms.consistency_s, sms.lookup_only_s))  # fmt: skip
        if d is not None and d[D_LOOKUP_ONLY]:
            # TS 29.002 §12.1.1: sm-deliveryNotIntended declares a lookup (e.g.
            # number portability); no delivery is owed. The lookup rules still
            # counted it when it was asked.
            return
        entry: PendingLookup = (
            f.time + self.policy.sms.lookup_only_s,
            subscriber,
            requester,
            platform,
        )
        if key not in s.pending and len(s.pending) >= limits.correlations:
            s.evicted_pending += 1
        bounded_put(s.pending, key, entry, limits.correlations)

    def _number_location(self, m: Message) -> None:
        """The home HLR sent a home number's profile to the VLR it calls: the
        subscriber is registered in that VLR's network (sms-spoofing reads it)."""
        c = self._c
        if c.home_msisdn.longest(m.f.msisdn) is None:
            return
        origin, partner = c.origin(m.f.called_gt)
        if origin is not _PARTNER and origin is not _HOME:
            return  # an ISD to a network without agreement is cat2's business
        bounded_put(
            self._s.number_locations,
            m.msisdn_key,
            (partner if origin is _PARTNER else -1, m.f.time),
            self.policy.limits.subscribers,
        )

    def _commit(self, m: Message) -> None:
        f, s = m.f, self._s
        if m.mt and f.imsi:
            key = (f.calling_gt, m.imsi_key)
            if s.pending.pop(key, None) is None and s.record_deliveries:
                # Its lookup may be owed by another proxy sharing the state:
                # shared, this delivery settles it there (snapshot.py).
                bounded_put(s.delivered, key, f.time, self.policy.limits.correlations)
        if (
            f.opcode == _UPDATE_LOCATION
            and m.home_imsi
            and (m.origin is _PARTNER or m.origin is _HOME)
        ):
            partner = m.partner if m.origin is _PARTNER else -1
            bounded_put(
                s.locations,
                m.imsi_key,
                (partner, self._c.region_of(partner), f.time),
                self.policy.limits.subscribers,
            )
