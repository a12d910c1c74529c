"""The home router alone (pure: time is an argument): correlation ids, their
lifetime and bounds. The proxy's tests (tests/guard/test_homerouting.py) run
the same router between real endpoints."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import m3ua_fixtures as fx
from guard.builders import FOREIGN, HOME_IMSI, HOME_MSISDN, MSC_HOME, NEAR_SMSC, policy
from herald.signaling import SignalingError, SignalingMessage, decode, encode
from herald.signaling._digits import encode_bcd
from herald.signaling.homerouting import HomeRouter
from herald.signaling.map_types import RoutingInfoForSmRes
from herald.signaling.message import ReturnError, ReturnResult
from herald.signaling.policy import PolicyError

from .strategies import signaling_messages

ROUTER = "19990009999"


def router(extra: str = "", randbelow: object = None) -> HomeRouter:
    p = policy(f'[home_routing]\nrouter_gt = "{ROUTER}"\ncorrelation_ttl_s = 30\n' + extra)
    return HomeRouter(p) if randbelow is None else HomeRouter(p, randbelow)  # type: ignore[arg-type]


def lookup(r: HomeRouter, now: float, smsc: str = FOREIGN, msisdn: str = HOME_MSISDN) -> str:
    """An SRI-SM and the HLR's answer through ``r``: the correlation IMSI."""
    sri, otid = fx.sri_sm(smsc, msisdn)
    assert r.from_interconnect(decode(sri), now) is None  # passed on unchanged
    out = r.to_interconnect(decode(fx.sri_sm_result(otid, smsc)), now)
    assert out is not None and out.forward is not None and not out.refusal
    (result,) = out.forward.tcap.components
    assert isinstance(result, ReturnResult) and isinstance(result.result, RoutingInfoForSmRes)
    return result.result.imsi


def deliver(r: HomeRouter, now: float, correlation: str, smsc: str = FOREIGN) -> str:
    """An MT-ForwardSM to the router: "" when passed on, else the refusal."""
    mt, _ = fx.mt_fsm_begin(smsc, imsi=correlation, called=ROUTER)
    out = r.from_interconnect(decode(mt), now)
    assert out is not None
    if out.refusal:
        assert out.forward is None and isinstance(out.answer, SignalingMessage)
        assert out.answer.tcap.components == (ReturnError(1, 5),)
        return out.refusal
    assert out.forward is not None
    return ""


def test_each_lookup_gets_its_own_correlation_id() -> None:
    r = router()
    ids = [lookup(r, 0.0, FOREIGN, n) for n in (HOME_MSISDN, HOME_MSISDN, "19995550002")]
    ids.append(lookup(r, 0.0, "46669999999", HOME_MSISDN))
    assert len(set(ids)) == 4 and HOME_IMSI not in ids
    assert all(i.startswith("00101") and len(i) == 15 and i.isdigit() for i in ids)


def test_a_correlation_id_is_redrawn_while_it_is_live() -> None:
    draws = itertools.chain([7, 7, 7], itertools.count(8))
    r = router(randbelow=lambda n: next(draws))
    assert [lookup(r, 0.0) for _ in range(2)] == ["001010000000007", "001010000000008"]


def test_correlation_ids_expire() -> None:
    r = router()
    early, late = lookup(r, 0.0), lookup(r, 20.0)
    assert deliver(r, 29.9, early) == ""
    assert "expired" in deliver(r, 50.0, late)  # 30 s after its answer
    assert r.sizes == {"lookups": 0, "correlations": 0, "dialogues": 1, "retired": 0}
    r.expire(29.9 + 120.0)  # the delivery dialogue, idle for dialogue_ttl_s ...
    assert (r.sizes["dialogues"], r.sizes["retired"]) == (0, 1)
    r.expire(29.9 + 240.0)  # ... is answered for as the router a while longer
    assert r.sizes["retired"] == 0


def test_a_late_hlr_answer_does_not_leak() -> None:
    r = router()
    sri, otid = fx.sri_sm(FOREIGN)
    r.from_interconnect(decode(sri), 0.0)
    assert r.sizes["lookups"] == 1
    # The HLR answers after the window (or the lookup was evicted): no
    # correlation is made, and the answer leaves as a systemFailure.
    late = fx.sri_sm_result(otid, FOREIGN)
    out = r.to_interconnect(decode(late), 31.0)
    assert out is not None and out.forward is not None
    assert out.forward.tcap.components == (ReturnError(1, 34),)
    assert r.sizes["lookups"] == 0 and r.sizes["correlations"] == 0
    # to an exempt partner, the same answer passes unchanged
    exempt = router('except_partners = ["near"]\n')
    assert exempt.to_interconnect(decode(fx.sri_sm_result(otid, NEAR_SMSC)), 31.0) is None


def test_a_late_node_answer_leaves_as_the_router() -> None:
    r = router()
    correlation = lookup(r, 0.0)
    mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
    assert r.from_interconnect(decode(mt), 1.0) is not None
    r.expire(1.0 + 120.0)  # the router gave up on the delivery
    answer = fx.answer(otid, MSC_HOME, FOREIGN, ReturnResult(1))
    out = r.to_interconnect(decode(answer), 130.0)
    assert out is not None and out.forward is not None
    assert out.forward.calling_digits == ROUTER
    assert r.sizes["retired"] == 0  # its END closed it
    # much later, nothing is known about it any more: the engine's business
    assert r.to_interconnect(decode(answer), 500.0) is None


def test_memory_is_bounded() -> None:
    r = router("max_entries = 16\n")
    ids = [lookup(r, float(i), FOREIGN, f"1999555{i:04d}") for i in range(40)]
    assert r.sizes["correlations"] == 16
    assert "unknown" in deliver(r, 40.0, ids[0])  # evicted: the oldest go first
    assert deliver(r, 40.0, ids[-1]) == ""


def test_partners_are_routed_unless_exempted() -> None:
    assert router().routed(NEAR_SMSC) and router().routed(FOREIGN)
    exempt = router('except_partners = ["near"]\n')
    assert not exempt.routed(NEAR_SMSC) and exempt.routed(FOREIGN)
    assert not exempt.routed("19991000001")  # home
    foreign_only = router('origins = "foreign"\n')
    assert not foreign_only.routed(NEAR_SMSC) and not foreign_only.routed("37771000001")
    assert foreign_only.routed(FOREIGN)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('router_gt = "28880000001"\n', "home_routing.router_gt"),  # a partner's GT
        ('router_gt = "1999"\nexcept_partners = ["nowhere"]\n', "home_routing.except_partners[0]"),
        ('router_gt = "1999"\nmsin_prefix = "12345"\n', "home_routing.msin_prefix"),
        ("correlation_ttl_s = 30\n", "home_routing.router_gt"),
        ('router_gt = "1999"\nttl = 3\n', "home_routing.ttl"),
        ('router_gt = "1999"\norigins = "partners"\n', "home_routing.origins"),
        ('router_gt = "1999"\norigins = "foreign"\nexcept_partners = ["near"]\n',
         "home_routing.except_partners"),
    ],
)
def test_bad_home_routing_settings_are_named(extra: str, field: str) -> None:
    with pytest.raises(PolicyError) as caught:
        policy("[home_routing]\n" + extra)
    assert caught.value.field == field


def test_the_refusal_action_is_not_configurable() -> None:
    with pytest.raises(PolicyError, match="always block"):
        policy('[actions]\nhome-routing = "alert"\n')


def test_a_router_needs_home_routing_on() -> None:
    with pytest.raises(ValueError, match="router_gt"):
        HomeRouter(policy())


# ------------------------------------------------ hostile traffic (property)


def _aimed(msg: SignalingMessage, called: str | None, calling: str | None,
           dtid: bytes | None) -> SignalingMessage:
    """``msg`` readdressed at the router's live state (GTs, a live tid)."""
    sccp = msg.sccp
    if called is not None and sccp.called.gt is not None:
        sccp = sccp._replace(called=sccp.called._replace(gt=sccp.called.gt._replace(digits=called)))
    if calling is not None and sccp.calling.gt is not None:
        sccp = sccp._replace(
            calling=sccp.calling._replace(gt=sccp.calling.gt._replace(digits=calling)))
    tcap = msg.tcap
    if dtid is not None and tcap.dtid is not None:
        tcap = tcap._replace(dtid=dtid)
    return msg._replace(sccp=sccp, tcap=tcap)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), signaling_messages(),
                          st.sampled_from([None, ROUTER, FOREIGN]),
                          st.sampled_from([None, ROUTER, FOREIGN, "19991000001"]),
                          st.booleans()), max_size=6))
def test_hostile_traffic_never_breaks_the_router_or_leaks(
    traffic: list[tuple[bool, SignalingMessage, str | None, str | None, bool]],
) -> None:
    r = router()
    correlation = lookup(r, 0.0)  # a live correlation: the real IMSI and node in memory
    mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=lookup(r, 0.0), called=ROUTER)
    assert r.from_interconnect(decode(mt), 0.0) is not None  # and a routed delivery
    packed = [encode_bcd(x[: len(x) // 2 * 2]) for x in (HOME_IMSI, MSC_HOME)]
    for inbound, msg, called, calling, live_tid in traffic:
        msg = _aimed(msg, called, calling, otid if live_tid else None)
        try:
            out = (r.from_interconnect if inbound else r.to_interconnect)(msg, 1.0)
            if out is None:
                continue
            leaving = out.answer if inbound else out.forward
            if leaving is not None:
                data = encode(leaving)
                assert not any(p is not None and p in data for p in packed)
        except SignalingError:
            pass  # the proxy refuses the message (fails closed)
    # the legitimate delivery still works after all that
    assert deliver(r, 2.0, correlation) == ""
