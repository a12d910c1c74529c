"""SMS home routing: no IMSI or serving node address leaves for an SMS lookup.

Theory of operation
-------------------
An SMSC abroad that delivers a short message to a home subscriber first asks
the HLR (sendRoutingInfoForSM, TS 29.002 §12.1) and gets the subscriber's
IMSI and the address of the MSC/SGSN serving it: exactly what tracking
services buy. With home routing (the scheme of 3GPP TR 23.840: MT short
messages routed via the home network), the home network answers with a
*correlation IMSI* (home MCC-MNC and a pseudonymous MSIN, one per
transaction) and the address of its own SMS router; the MT-ForwardSM then comes to the router,
which restores the real IMSI and passes it on to the real serving node.

:class:`HomeRouter` does this inside the guard's proxy, on decoded messages
(pure: no I/O, no clock; ``now`` is an argument, randomness is injected). It
lets the SRI-SM reach the HLR unchanged and rewrites the answer:

1. ``from_interconnect``: an SRI-SM from a home-routed network (every network
   but the home and the platform, less the partners the policy exempts, or
   only the networks without a roaming agreement: ``origins``) is
   remembered by its dialogue (requester GT, transaction id) with the SMSC
   address it names, for ``correlation_ttl_s``.
2. ``to_interconnect``: the HLR's result for that dialogue is rewritten: the
   IMSI becomes a fresh correlation IMSI, the network node the router's GT,
   the LMSI and every field the codec does not model (the SGSN's
   ``additional-Number`` among them) are dropped. The correlation (real IMSI,
   real node, SMSC) is kept for ``correlation_ttl_s``; drawn afresh for each
   answer, it names one lookup, so one number. HLR errors are
   passed on by code only (an ``absentSubscriberSM`` diagnostic says why the
   phone is unreachable: not for a foreign network).
3. ``from_interconnect``: an MT-ForwardSM to the router's GT naming a live
   correlation IMSI, sent by the same SMSC (calling GT and SM-RP-OA) that made
   the lookup, is restored (real IMSI, called party the real serving node)
   and passed on; the correlation is consumed, so a replay is refused. A
   long message's MAP-OPEN naming the correlation IMSI as destination
   reference (the invoke follows in a TC-CONTINUE) is restored alike. An
   unknown, expired, consumed or foreign correlation IMSI is refused and
   answered as a serving node answers an IMSI it does not know
   (``unidentifiedSubscriber``).
4. ``to_interconnect``: everything the serving node sends back in that
   dialogue leaves as the router: calling party the address the SMSC called,
   routing label the reverse of the SMSC's, results without parameters,
   errors by code only. An SCCP service message returning the restored
   MT-ForwardSM (it holds the real IMSI and node) becomes a ``systemFailure``
   answer from the router.

Every table is bounded (``max_entries``, oldest evicted) and forgets its
entries at their deadline. Nothing here logs or publishes an identifier.

The correlations live in a :class:`~herald.signaling.correlations.CorrelationStore`:
this process's memory by default, or a store that survives a restart and is
shared by the proxies of one home network (the correlation is *taken* from it
by the delivery, so it serves once, whichever proxy the delivery reaches).
So are the routed delivery dialogues (written when the delivery is restored,
dropped when it ends): the serving node's answers may come back through
another proxy, or after a restart, and must still leave as the router's.
Pending lookups stay in memory: a lookup and its answer travel one
association (SCCP class 1, in sequence), hence one proxy.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from herald.signaling._ber import decode_oid, encode_oid, read_tlv, tlv
from herald.signaling._digits import decode_tbcd, encode_tbcd
from herald.signaling.codec import build
from herald.signaling.codec import invoke as make_invoke
from herald.signaling.correlations import (
    Correlation,
    CorrelationStore,
    MemoryCorrelations,
    RoutedRecord,
)
from herald.signaling.errors import DecodeError, MapError
from herald.signaling.map_codec import encode_result
from herald.signaling.map_ops import MapOperation, map_ac
from herald.signaling.map_types import (
    AddressString,
    ForwardSmArg,
    RoutingInfoForSmArg,
    RoutingInfoForSmRes,
    SmRpDa,
    SmRpDaKind,
    SmRpOaKind,
)
from herald.signaling.message import (
    Component,
    Dialogue,
    DialogueKind,
    Invoke,
    Reject,
    ReturnError,
    ReturnResult,
    RoutingLabel,
    SccpAddress,
    SccpMessageType,
    SignalingMessage,
    TcapMessage,
    TcapMessageType,
)
from herald.signaling.policy.config import Policy
from herald.signaling.policy.rules import is_mt_delivery
from herald.signaling.policy.state import Compiled
from herald.signaling.policy.verdict import Origin
from herald.signaling.sccp import decode_address, encode_address

__all__ = [
    "MAP_ERRORS_PASSED",
    "HomeRouter",
    "Outcome",
    "RoutingError",
]

K = TypeVar("K")
V = TypeVar("V")

_SRI_SM = int(MapOperation.SEND_ROUTING_INFO_FOR_SM)
_BEGIN, _CONTINUE, _END, _ABORT = (
    TcapMessageType.BEGIN,
    TcapMessageType.CONTINUE,
    TcapMessageType.END,
    TcapMessageType.ABORT,
)
_SERVICE = (SccpMessageType.UDTS, SccpMessageType.XUDTS)


class RoutingError:
    """MAP error codes the router sends (TS 29.002 §17.6.6)."""

    UNIDENTIFIED_SUBSCRIBER = 5  # an MSC's answer to an IMSI it does not know
    SM_DELIVERY_FAILURE = 32
    SYSTEM_FAILURE = 34


#: Errors passed back to a home-routed network, by code only (TS 29.002
#: §17.6.6; every one's parameter is OPTIONAL, except sm-DeliveryFailure's,
#: which is cut to its enumerated cause). Any other error becomes systemFailure.
MAP_ERRORS_PASSED: frozenset[int] = frozenset({
    1,  # unknownSubscriber
    5,  # unidentifiedSubscriber
    6,  # absentSubscriberSM (its diagnostic says why: dropped)
    9,  # illegalSubscriber
    11,  # teleserviceNotProvisioned
    12,  # illegalEquipment
    13,  # callBarred
    21,  # facilityNotSupported
    31,  # subscriberBusyForMT-SMS
    32,  # sm-DeliveryFailure
    34,  # systemFailure
    35,  # dataMissing
    36,  # unexpectedDataValue
})  # fmt: skip

# TS 29.002 §17.7.6: SM-EnumeratedDeliveryFailureCause 0..5.
_MAX_DELIVERY_FAILURE_CAUSE = 5
# E.212 §2.2.
_IMSI_DIGITS = 15


class Outcome(NamedTuple):
    """What to do with one message instead of passing it on unchanged.

    ``forward``: the message to pass on in its place (None: nothing);
    ``answer``: a message to send back towards its sender (None: nothing);
    ``refusal``: why the message was refused ("" when it was only rewritten),
    for the caller's verdict and audit. It names no subscriber or node;
    ``lookup``: for a restored delivery, the correlation it followed (the
    caller tells its engine that lookup was answered: it may have been
    answered before a restart, or through another proxy).
    """

    forward: SignalingMessage | None
    answer: SignalingMessage | None = None
    refusal: str = ""
    lookup: Correlation | None = None


class _Lookup(NamedTuple):
    """A home-routed SRI-SM awaiting the HLR's answer (the number itself is
    not kept: the correlation id drawn for the answer is this lookup's alone)."""

    deadline: float
    service_centre: str


@dataclass(slots=True)
class _Routed:
    """A delivery dialogue passing through the router."""

    deadline: float
    smsc_gt: str
    smsc_tid: bytes
    node: str
    imsi: str
    correlation: str
    router: SccpAddress  # the called party the SMSC used
    label: RoutingLabel  # the SMSC's routing label
    home_tid: bytes | None = None


def _put(table: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    if key in table:
        del table[key]
    elif len(table) >= limit:
        table.popitem(last=False)
    table[key] = value


def _reverse(label: RoutingLabel) -> RoutingLabel:
    return label._replace(opc=label.dpc, dpc=label.opc)


def _with_gt(address: SccpAddress, digits: str) -> SccpAddress:
    if address.gt is None:
        return address
    return address._replace(gt=address.gt._replace(digits=digits))


def _plain_dialogue(d: Dialogue | None) -> Dialogue | None:
    """The dialogue portion without its user information (MAP-OPEN's
    references may name the subscriber)."""
    return d if d is None or d.user_information is None else d._replace(user_information=None)


def _sanitised_error(c: ReturnError) -> ReturnError:
    code = c.error_code
    if code is None or code not in MAP_ERRORS_PASSED:
        return ReturnError(c.invoke_id, RoutingError.SYSTEM_FAILURE)
    if code != RoutingError.SM_DELIVERY_FAILURE:
        return ReturnError(c.invoke_id, code)
    cause = _delivery_failure_cause(c.parameter)
    if cause is None:
        return ReturnError(c.invoke_id, RoutingError.SYSTEM_FAILURE)
    # SM-DeliveryFailureCause ::= SEQUENCE { sm-EnumeratedDeliveryFailureCause }
    return ReturnError(c.invoke_id, code, bytes((0x30, 3, 0x0A, 1, cause)))


def _delivery_failure_cause(parameter: bytes | None) -> int | None:
    """The enumerated cause of an sm-DeliveryFailure parameter: the SEQUENCE of
    v2/v3 or the bare ENUMERATED of v1; None if it is neither."""
    p = parameter or b""
    if len(p) >= 5 and p[0] == 0x30 and p[2:4] == b"\x0a\x01":
        cause = p[4]
    elif len(p) == 3 and p[:2] == b"\x0a\x01":
        cause = p[2]
    else:
        return None
    return cause if cause <= _MAX_DELIVERY_FAILURE_CAUSE else None


# TS 29.002 §17.1: map-DialogueAS, the abstract syntax of MAP-OPEN etc. in a
# dialogue portion's user information (an EXTERNAL).
MAP_DIALOGUE_AS = (0, 4, 0, 0, 1, 1, 1, 1)
_MAP_OPEN, _DESTINATION_REFERENCE, _ORIGINATION_REFERENCE = 0xA0, 0x80, 0x81


class _MapOpen(NamedTuple):
    """A MAP-OPEN's fields as (tag, content) pairs, and the two references'
    digits. A long MT-ForwardSM may open its dialogue with MAP-OPEN alone, the
    IMSI in ``destinationReference`` and the SMSC in ``originationReference``
    (TS 29.002 §7.3.1, §12.9)."""

    fields: tuple[tuple[int, bytes], ...]
    destination: str | None
    origination: str | None

    def with_destination(self, imsi: str) -> bytes:
        """The user information again, ``destinationReference`` naming ``imsi``
        (its nature and plan octet kept)."""
        packed = encode_tbcd(imsi)
        assert packed is not None
        parts = b""
        for tag, content in self.fields:
            if tag == _DESTINATION_REFERENCE:
                content = content[:1] + packed
            parts += tlv(tag, content)
        return tlv(0x28, tlv(0x06, encode_oid(MAP_DIALOGUE_AS))
                   + tlv(0xA0, tlv(_MAP_OPEN, parts)))


def _map_open(info: bytes | None) -> _MapOpen | None:
    """The MAP-OPEN in a dialogue's user information, or None (absent, another
    MAP dialogue PDU, or not well formed)."""
    if not info:
        return None
    try:
        tag, s, e, end = read_tlv(info, 0, len(info), MapError)
        if tag != 0x28 or end != len(info):
            return None
        tag, os_, oe, p = read_tlv(info, s, e, MapError)
        if tag != 0x06 or decode_oid(info, os_, oe, MapError) != MAP_DIALOGUE_AS:
            return None
        tag, s, e, _ = read_tlv(info, p, e, MapError)  # single-ASN1-type [0]
        if tag != 0xA0:
            return None
        tag, s, e, _ = read_tlv(info, s, e, MapError)  # MAP-DialoguePDU
        if tag != _MAP_OPEN:
            return None
        fields = []
        refs: dict[int, str | None] = {}
        p = s
        while p < e:
            tag, cs, ce, p = read_tlv(info, p, e, MapError)
            content = info[cs:ce]
            fields.append((tag, content))
            if tag in (_DESTINATION_REFERENCE, _ORIGINATION_REFERENCE) and content:
                refs[tag] = decode_tbcd(content[1:])
    except DecodeError:
        return None
    return _MapOpen(tuple(fields), refs.get(_DESTINATION_REFERENCE),
                    refs.get(_ORIGINATION_REFERENCE))


class HomeRouter:
    """SMS home routing for one policy (see the module docstring).

    ``randbelow(n)`` draws the correlation MSINs (default: :mod:`secrets`);
    ``correlations`` keeps them (default: this process's memory).
    """

    def __init__(
        self,
        policy: Policy,
        randbelow: Callable[[int], int] = secrets.randbelow,
        correlations: CorrelationStore | None = None,
    ) -> None:
        self._use(policy)
        self._randbelow = randbelow
        self._lookups: OrderedDict[tuple[str, bytes], _Lookup] = OrderedDict()
        self._correlations: CorrelationStore = (
            MemoryCorrelations(self.settings.max_entries) if correlations is None
            else correlations
        )
        self._routed: OrderedDict[tuple[str, bytes], _Routed] = OrderedDict()
        self._by_home_tid: dict[tuple[str, bytes], tuple[str, bytes]] = {}
        self._retired: OrderedDict[tuple[str, bytes], _Routed] = OrderedDict()
        self.refused = 0
        self.rewritten = 0

    def _use(self, policy: Policy) -> None:
        hr = policy.home_routing
        if not hr.enabled:
            raise ValueError("the policy does not turn home routing on (home_routing.router_gt)")
        self.settings = hr
        self._c = Compiled(policy)
        self._exempt = frozenset(
            i
            for i, p in enumerate(policy.partners)
            if hr.origins == "foreign" or p.name in hr.except_partners
        )
        self._prefix = policy.home.mcc + policy.home.mnc + hr.msin_prefix
        self._random_digits = _IMSI_DIGITS - len(self._prefix)

    def replace_policy(self, policy: Policy) -> None:
        """Route by ``policy`` from now on (a reload). Live correlations and
        dialogues stay valid until their deadlines (which keep the lifetimes
        they were given); new ones follow the new settings."""
        self._use(policy)
        self._correlations.set_limit(self.settings.max_entries)

    # ------------------------------------------------------------ public API

    def origin(self, calling_gt: str) -> Origin:
        """Who ``calling_gt`` is, as the engine classifies it."""
        return self._c.origin(calling_gt)[0]

    def routed(self, calling_gt: str) -> bool:
        """Whether lookups from ``calling_gt`` are home-routed."""
        origin, partner = self._c.origin(calling_gt)
        if origin is Origin.FOREIGN:
            return True
        return origin is Origin.PARTNER and partner not in self._exempt

    @property
    def sizes(self) -> dict[str, int]:
        return {
            "lookups": len(self._lookups),
            "correlations": len(self._correlations),
            "dialogues": len(self._routed),
            "retired": len(self._retired),
        }

    def expire(self, now: float) -> None:
        """Forget every entry whose deadline has passed (call it periodically:
        a shared store is purged here only; a dead correlation is refused
        whether purged or not)."""
        self._correlations.expire(now)
        self._expire_memory(now)

    def _expire_memory(self, now: float) -> None:
        """Forget the in-memory entries whose deadline has passed (on every
        message: popping the oldest few costs nothing)."""
        lookups, routed = self._lookups, self._routed
        while lookups and next(iter(lookups.values())).deadline <= now:
            lookups.popitem(last=False)
        while routed:
            key = next(iter(routed))
            if routed[key].deadline > now:
                break
            self._retire(key, now)
        retired = self._retired
        while retired and next(iter(retired.values())).deadline <= now:
            retired.popitem(last=False)

    def from_interconnect(self, msg: SignalingMessage, now: float) -> Outcome | None:
        """A message arriving from the interconnect: None to pass it on
        unchanged, else an :class:`Outcome`."""
        self._expire_memory(now)
        tcap = msg.tcap
        calling = msg.calling_digits or ""
        router = self.settings.router_gt
        if msg.called_digits == router and msg.sccp.kind not in _SERVICE:
            return self._to_router(msg, now, calling)
        if tcap.kind == _BEGIN and tcap.otid and self.routed(calling):
            for c in tcap.components:
                if isinstance(c, Invoke) and c.opcode == _SRI_SM:
                    arg = c.argument
                    if isinstance(arg, RoutingInfoForSmArg):
                        _put(
                            self._lookups,
                            (calling, tcap.otid),
                            _Lookup(
                                now + self.settings.correlation_ttl_s,
                                arg.service_centre.digits,
                            ),
                            self.settings.max_entries,
                        )
        return None

    def to_interconnect(self, msg: SignalingMessage, now: float) -> Outcome | None:
        """A message leaving for the interconnect: None to pass it on
        unchanged, else an :class:`Outcome` (its ``forward`` goes out)."""
        self._expire_memory(now)
        tcap = msg.tcap
        called = msg.called_digits or ""
        if msg.sccp.kind in _SERVICE:
            return self._returned(msg, called, now)
        if tcap.dtid is None:
            return None
        key = (called, tcap.dtid)
        if key in self._routed:
            return self._from_node(msg, key, now)
        lookup = self._lookups.get(key)
        if lookup is not None:
            if tcap.kind != _CONTINUE:
                del self._lookups[key]
            return self._answer(msg, lookup, called, now)
        late = self._retired.get(key)
        if late is not None:
            # The node answers a delivery the router gave up on (idle past
            # dialogue_ttl_s, or evicted): it still leaves as the router.
            if tcap.kind in (_END, _ABORT):
                del self._retired[key]
                self._correlations.drop_dialogue(key)
            return Outcome(self._as_router(msg, late))
        if tcap.kind != _BEGIN and self.routed(called) and self._adopt(key, now):
            # Routed by another proxy, or before a restart.
            return self._from_node(msg, key, now)
        if self.routed(called) and any(
            isinstance(c, ReturnResult) and isinstance(c.result, RoutingInfoForSmRes)
            for c in tcap.components
        ):
            # An HLR answer to a home-routed network matching no lookup (it
            # came after correlation_ttl_s, or the lookup was evicted): its
            # IMSI and node never leave; the SMSC is told to try again.
            self.rewritten += 1
            return Outcome(msg._replace(tcap=tcap._replace(
                components=tuple(
                    ReturnError(c.invoke_id, RoutingError.SYSTEM_FAILURE)
                    if isinstance(c, ReturnResult) else c
                    for c in tcap.components if not isinstance(c, Invoke)
                ),
                dialogue=_plain_dialogue(tcap.dialogue),
            )))
        return None

    # ------------------------------------------------------------ internals

    def _answer(
        self, msg: SignalingMessage, lookup: _Lookup, smsc_gt: str, now: float
    ) -> Outcome:
        """The HLR's answer to a home-routed SRI-SM, rewritten."""
        components: list[Component] = []
        for c in msg.tcap.components:
            if isinstance(c, ReturnResult):
                res = c.result
                if not isinstance(res, RoutingInfoForSmRes):
                    # Undecoded: it cannot be checked, so it does not leave.
                    components.append(ReturnError(c.invoke_id, RoutingError.SYSTEM_FAILURE))
                    continue
                correlation = self._correlate(res, lookup, smsc_gt, now)
                fake = RoutingInfoForSmRes(correlation, AddressString(self.settings.router_gt))
                components.append(
                    ReturnResult(c.invoke_id, c.last, _SRI_SM, encode_result(fake), fake)
                )
            elif isinstance(c, ReturnError):
                components.append(_sanitised_error(c))
            elif isinstance(c, Reject):
                components.append(c)
            # An HLR invokes nothing in this dialogue: an invoke is not passed.
        self.rewritten += 1
        tcap = msg.tcap._replace(
            components=tuple(components), dialogue=_plain_dialogue(msg.tcap.dialogue)
        )
        return Outcome(self._rebuilt(msg, tcap))

    def _correlate(
        self, res: RoutingInfoForSmRes, lookup: _Lookup, smsc_gt: str, now: float
    ) -> str:
        entry = Correlation(
            now + self.settings.correlation_ttl_s,
            res.imsi,
            res.network_node.digits,
            smsc_gt,
            lookup.service_centre,
            now,
        )
        for _ in range(64):  # a live collision is rare below max_entries; bounded anyway
            imsi = self._prefix + str(self._randbelow(10**self._random_digits)).zfill(
                self._random_digits
            )
            if self._correlations.add(imsi, entry, now):
                return imsi
        # pragma: no cover - needs max_entries near 10**random_digits
        raise RuntimeError("no free correlation IMSI")

    def _to_router(self, msg: SignalingMessage, now: float, calling: str) -> Outcome:
        """A message addressed to the router's GT."""
        tcap = msg.tcap
        if tcap.kind == _BEGIN:
            return self._delivery(msg, now, calling)
        routed_key: tuple[str, bytes] | None = None
        if tcap.otid is not None and (
            (calling, tcap.otid) in self._routed or self._adopt((calling, tcap.otid), now)
        ):
            routed_key = (calling, tcap.otid)
        elif tcap.dtid is not None:
            routed_key = self._by_home_tid.get((calling, tcap.dtid))
        routed = None if routed_key is None else self._routed.get(routed_key)
        if routed is None or routed_key is None:
            return self._refuse(None, "message to the SMS router outside any routed delivery")
        if tcap.dtid is not None and routed.home_tid is not None and tcap.dtid != routed.home_tid:
            return self._refuse(None, "message to the SMS router outside any routed delivery")
        components = []
        for c in tcap.components:
            if isinstance(c, Invoke):
                arg = c.argument
                if not isinstance(arg, ForwardSmArg):
                    return self._refuse(None, "only short messages pass the SMS router")
                if arg.da.kind is SmRpDaKind.IMSI:
                    if arg.da.imsi != routed.correlation:
                        return self._refuse(None, "correlation id of another delivery")
                    c = self._restored_invoke(c, arg, routed.imsi)
                elif arg.da.kind is not SmRpDaKind.NONE:
                    # noSM-RP-DA: the IMSI went in MAP-OPEN (TS 29.002 §12.9).
                    return self._refuse(None, "only short messages pass the SMS router")
            components.append(c)
        if tcap.kind in (_END, _ABORT):
            self._drop(routed_key, ended=True)
        else:
            routed.deadline = now + self.settings.dialogue_ttl_s
            self._routed.move_to_end(routed_key)
        self.rewritten += 1
        forward = msg._replace(
            sccp=msg.sccp._replace(called=_with_gt(msg.called, routed.node)),
            tcap=tcap._replace(components=tuple(components),
                               dialogue=_plain_dialogue(tcap.dialogue)),
        )
        return Outcome(self._rebuilt(forward, forward.tcap))

    def _delivery(self, msg: SignalingMessage, now: float, calling: str) -> Outcome:
        """A TC-BEGIN to the router: an MT-ForwardSM naming a correlation IMSI
        in its SM-RP-DA, or MAP-OPEN alone naming it as destination reference
        (a long message: the invoke follows in a TC-CONTINUE)."""
        tcap = msg.tcap
        invokes = [c for c in tcap.components if isinstance(c, Invoke)]
        mac = map_ac(msg.application_context)
        opened = _map_open(tcap.dialogue.user_information if tcap.dialogue else None)
        invoke: Invoke | None = None
        if not tcap.components and opened is not None and opened.destination:
            correlation: str | None = opened.destination
            sca = opened.origination
            invoke_id = 1
        elif (
            len(invokes) == 1
            and invokes[0].opcode is not None
            and is_mt_delivery(invokes[0].opcode, mac)
            and isinstance(invokes[0].argument, ForwardSmArg)
        ):
            invoke = invokes[0]
            arg = invoke.argument
            assert isinstance(arg, ForwardSmArg)
            correlation = arg.da.imsi if arg.da.kind is SmRpDaKind.IMSI else None
            sca = arg.oa.address.digits if (
                arg.oa.kind is SmRpOaKind.SERVICE_CENTRE and arg.oa.address is not None
            ) else None
            invoke_id = invoke.invoke_id
        else:
            return self._refuse(None, "only MT-ForwardSM is accepted by the SMS router")
        # Taken whatever follows: one delivery dialogue per lookup, and an id
        # shown to the wrong SMSC is burnt (the right one asks again).
        entry = None if correlation is None else self._correlations.take(correlation, now)
        if entry is None:
            reason = "MT-ForwardSM with an unknown, expired or used correlation id"
        elif entry.smsc_gt != calling or entry.service_centre != sca:
            reason = "MT-ForwardSM with a correlation id issued to another SMSC"
        else:
            reason = ""
        if reason or entry is None or correlation is None:
            answer = self._error_end(msg, invoke_id, RoutingError.UNIDENTIFIED_SUBSCRIBER)
            return self._refuse(answer, reason or "MT-ForwardSM refused")
        otid = tcap.otid
        assert otid is not None
        if (calling, otid) not in self._routed and len(self._routed) >= self.settings.max_entries:
            self._retire(next(iter(self._routed)), now)
        _put(
            self._routed,
            (calling, otid),
            _Routed(
                now + self.settings.dialogue_ttl_s,
                calling,
                otid,
                entry.node,
                entry.imsi,
                correlation,
                msg.called,
                msg.label,
            ),
            self.settings.max_entries,
        )
        # Shared: the node's answers may cross another proxy (or this one
        # restarted). Kept through the time a retired dialogue is answered for.
        lb = msg.label
        self._correlations.put_dialogue(
            (calling, otid),
            RoutedRecord(now + 2 * self.settings.dialogue_ttl_s, entry.node, entry.imsi,
                         correlation, encode_address(msg.called),
                         (lb.opc, lb.dpc, lb.si, lb.ni, lb.mp, lb.sls)),
            now,
        )  # fmt: skip
        self.rewritten += 1
        components = tuple(
            self._restored_invoke(c, c.argument, entry.imsi)
            if c is invoke and isinstance(c.argument, ForwardSmArg) else c
            for c in tcap.components
        )
        forward = msg._replace(
            sccp=msg.sccp._replace(called=_with_gt(msg.called, entry.node)),
            tcap=tcap._replace(
                components=components,
                dialogue=self._forwarded_dialogue(tcap.dialogue, opened, correlation, entry.imsi),
            ),
        )
        return Outcome(self._rebuilt(forward, forward.tcap), lookup=entry)

    @staticmethod
    def _forwarded_dialogue(
        d: Dialogue | None, opened: _MapOpen | None, correlation: str, imsi: str
    ) -> Dialogue | None:
        """The dialogue portion passed to the serving node: a MAP-OPEN naming
        the correlation IMSI names the real one; any other user information
        is dropped (it could only name the correlation id)."""
        if d is None:
            return None
        if opened is not None and opened.destination == correlation:
            return d._replace(user_information=opened.with_destination(imsi))
        return _plain_dialogue(d)

    @staticmethod
    def _restored_invoke(c: Invoke, arg: ForwardSmArg, imsi: str) -> Invoke:
        real = arg._replace(da=SmRpDa(SmRpDaKind.IMSI, imsi=imsi))
        assert c.opcode is not None
        return make_invoke(c.invoke_id, real, c.opcode, c.linked_id)

    def _from_node(self, msg: SignalingMessage, key: tuple[str, bytes], now: float) -> Outcome:
        """The serving node answering a routed delivery: it leaves as the router."""
        routed = self._routed[key]
        tcap = msg.tcap
        if tcap.kind == _CONTINUE and tcap.otid is not None and routed.home_tid is None:
            routed.home_tid = tcap.otid
            self._by_home_tid[(routed.smsc_gt, tcap.otid)] = key
        if tcap.kind in (_END, _ABORT):
            self._drop(key, ended=True)
        else:
            routed.deadline = now + self.settings.dialogue_ttl_s
            self._routed.move_to_end(key)
        return Outcome(self._as_router(msg, routed))

    def _as_router(self, msg: SignalingMessage, routed: _Routed) -> SignalingMessage:
        """``msg`` from the serving node, as the router sends it: calling party
        the address the SMSC called, the reverse of the SMSC's routing label,
        results without parameters (MT-ForwardSM-Res carries at most the
        phone's delivery report and extensions), errors by code only."""
        tcap = msg.tcap
        components: list[Component] = []
        for c in tcap.components:
            if isinstance(c, ReturnResult):
                components.append(ReturnResult(c.invoke_id, c.last))
            elif isinstance(c, ReturnError):
                components.append(_sanitised_error(c))
            elif isinstance(c, Reject):
                components.append(c)
        self.rewritten += 1
        return msg._replace(
            label=_reverse(routed.label)._replace(sls=msg.label.sls),
            sccp=msg.sccp._replace(calling=routed.router),
            tcap=tcap._replace(components=tuple(components),
                               dialogue=_plain_dialogue(tcap.dialogue)),
        )

    def _returned(self, msg: SignalingMessage, smsc_gt: str, now: float) -> Outcome | None:
        """A UDTS/XUDTS going back to an SMSC: if it returns a routed delivery
        (whose data holds the real IMSI and node), the router answers instead."""
        tcap = msg.tcap
        tid = tcap.otid
        key = None if tid is None else (smsc_gt, tid)
        if key is None:
            return None
        if key not in self._routed and key not in self._retired:
            self._adopt(key, now)  # routed by another proxy, or before a restart
        routed = self._drop(key, ended=True) or self._retired.pop(key, None)
        if routed is None:
            return None
        invoke_id = next((c.invoke_id for c in tcap.components if isinstance(c, Invoke)), 1)
        answer = TcapMessage(
            _END,
            dtid=tid,
            components=(ReturnError(invoke_id, RoutingError.SYSTEM_FAILURE),),
        )
        self.rewritten += 1
        return Outcome(
            build(_reverse(routed.label), msg.called, routed.router, answer,
                  routing_context=msg.routing_context)
        )

    def _error_end(self, msg: SignalingMessage, invoke_id: int, code: int) -> SignalingMessage:
        """A TC-END answering ``msg`` (a TC-BEGIN) with one MAP error, from the
        party it called; accepting the dialogue first when it opened one (Q.774
        §3.2.2: the first backward message carries the AARE)."""
        ac = msg.application_context
        dialogue = None if ac is None else Dialogue(
            DialogueKind.RESPONSE, ac, result=0, diagnostic=(1, 0)
        )
        tcap = TcapMessage(
            _END, dtid=msg.tcap.otid, dialogue=dialogue,
            components=(ReturnError(invoke_id, code),),
        )
        return build(_reverse(msg.label), msg.calling, msg.called, tcap,
                     routing_context=msg.routing_context)

    def _refuse(self, answer: SignalingMessage | None, reason: str) -> Outcome:
        self.refused += 1
        return Outcome(None, answer, reason)

    @staticmethod
    def _rebuilt(msg: SignalingMessage, tcap: TcapMessage) -> SignalingMessage:
        """``msg`` with ``tcap`` (its SCCP data is re-encoded by ``encode``)."""
        return msg._replace(tcap=tcap)

    def _drop(self, key: tuple[str, bytes], *, ended: bool = False) -> _Routed | None:
        """Stop routing a dialogue; ``ended``: it is over (the shared store
        forgets it too; else it stays there until its deadline)."""
        routed = self._routed.pop(key, None)
        if routed is not None and routed.home_tid is not None:
            self._by_home_tid.pop((routed.smsc_gt, routed.home_tid), None)
        if ended:
            self._correlations.drop_dialogue(key)
        return routed

    def _adopt(self, key: tuple[str, bytes], now: float) -> bool:
        """Route a dialogue this router does not hold but the store does
        (restored by another proxy, or before a restart); False if none."""
        record = self._correlations.find_dialogue(key, now)
        if record is None:
            return False
        try:
            router = decode_address(record.router)
        except DecodeError:
            return False
        if len(self._routed) >= self.settings.max_entries:
            self._retire(next(iter(self._routed)), now)
        _put(
            self._routed,
            key,
            _Routed(now + self.settings.dialogue_ttl_s, key[0], key[1], record.node,
                    record.imsi, record.correlation, router, RoutingLabel(*record.label)),
            self.settings.max_entries,
        )  # fmt: skip
        return True

    def _retire(self, key: tuple[str, bytes], now: float) -> None:
        """Stop routing a delivery (idle, or evicted), but keep answering for
        it as the router for another ``dialogue_ttl_s``: a late answer from
        the node must not leave with the node's address."""
        routed = self._drop(key)
        if routed is not None:
            routed.deadline = now + self.settings.dialogue_ttl_s
            _put(self._retired, key, routed, self.settings.max_entries)
