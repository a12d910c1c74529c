"""The policy engine, rule by rule, on Facts built in the test (no codec)."""

from __future__ import annotations

import json

import pytest

from herald.signaling.map_ops import MapAc
from herald.signaling.map_types import SmRpDaKind
from herald.signaling.policy import (
    Action,
    Category,
    Direction,
    Engine,
    Facts,
    InMemoryPendingMessages,
    Origin,
    Rule,
    Verdict,
)

from .builders import (
    FAR_IMSI,
    FAR_VLR,
    FOREIGN,
    HLR,
    HOME_IMSI,
    HOME_MSISDN,
    MSC_HOME,
    NEAR_HLR,
    NEAR_IMSI,
    NEAR_SMSC,
    NEAR_VLR,
    PLATFORM,
    VLR_HOME,
    continue_from_responder,
    invoke,
    mt_fsm,
    policy,
    sri_sm,
    sri_sm_result,
    update_location,
)

ATI_AC = (MapAc.ANY_TIME_INFO_ENQUIRY, 3)
PSI_AC = (MapAc.SUBSCRIBER_INFO_ENQUIRY, 3)


def check(v: Verdict, action: Action, rule: Rule | None) -> None:
    assert (v.action, v.rule) == (action, rule), v.reason


# ------------------------------------------------------------------- category 1


@pytest.mark.parametrize("sender", [FOREIGN, NEAR_SMSC])
def test_any_time_interrogation_from_the_interconnect_is_blocked(sender: str) -> None:
    v = Engine(policy()).inspect(invoke(0, 71, ATI_AC, sender, imsi=HOME_IMSI))
    check(v, Action.BLOCK, Rule.CAT1)
    assert v.category is Category.CAT1
    assert v.operation == "anyTimeInterrogation"


def test_an_allow_list_entry_lifts_category_1_for_that_sender_only() -> None:
    engine = Engine(
        policy('[[allow]]\ngt_prefixes = ["2888"]\noperations = ["anyTimeInterrogation"]\n')
    )
    check(engine.inspect(invoke(0, 71, ATI_AC, NEAR_SMSC)), Action.ALLOW, None)
    check(engine.inspect(invoke(0, 71, ATI_AC, FAR_VLR)), Action.BLOCK, Rule.CAT1)


def test_an_allow_list_entry_does_not_skip_the_other_checks() -> None:
    engine = Engine(
        policy(
            '[[allow]]\ngt_prefixes = ["2888"]\noperations = ["anyTimeInterrogation"]\n'
            "[rates]\nper_gt_per_s = 1\nper_gt_burst = 2\n"
        )
    )
    verdicts = [engine.inspect(invoke(0, 71, ATI_AC, NEAR_SMSC)) for _ in range(3)]
    assert [v.action for v in verdicts] == [Action.ALLOW, Action.ALLOW, Action.BLOCK]
    assert verdicts[-1].rule is Rule.RATE_LIMIT
    # and a TC-BEGIN without a dialogue portion is still refused
    check(engine.inspect(invoke(5, 71, None, NEAR_SMSC)), Action.BLOCK, Rule.TCAP_SANITY)


def test_opcode_46_is_judged_by_its_application_context() -> None:
    engine = Engine(policy())
    # mo-ForwardSM under shortMsgMO-Relay v3: category 3, no IMSI to judge: allowed
    mo = invoke(0, 46, (MapAc.SHORT_MSG_MO_RELAY, 3), NEAR_VLR, msisdn="28880000009")
    check(engine.inspect(mo), Action.ALLOW, None)
    assert engine.inspect(mo).category is Category.CAT3
    # forwardSM under shortMsgMT-Relay v2 is an MT delivery: it needs its SRI-SM
    mt = mt_fsm(0, NEAR_SMSC)
    mt_v2 = mt._replace(opcode=46, invokes=(46,), ac=(MapAc.SHORT_MSG_MT_RELAY, 2))
    v = engine.inspect(mt_v2)
    check(v, Action.BLOCK, Rule.SMS_CONSISTENCY)
    assert v.category is Category.SMS


def test_an_operation_under_a_context_that_does_not_carry_it_is_category_1() -> None:
    # anyTimeInterrogation smuggled into a shortMsgGateway dialogue
    v = Engine(policy()).inspect(invoke(0, 71, (MapAc.SHORT_MSG_GATEWAY, 3), NEAR_SMSC))
    check(v, Action.BLOCK, Rule.CAT1)


def test_a_second_invoke_cannot_hide_behind_a_benign_first() -> None:
    sri = sri_sm(0, NEAR_SMSC)
    mixed = sri._replace(invokes=(45, 71))
    check(Engine(policy()).inspect(mixed), Action.BLOCK, Rule.CAT1)


def test_category_override_and_action_override() -> None:
    engine = Engine(
        policy(
            '[categories]\n[[categories.override]]\noperation = "anyTimeInterrogation"\n'
            'category = "sms"\n'
        )
    )
    check(engine.inspect(invoke(0, 71, ATI_AC, FOREIGN)), Action.ALLOW, None)
    engine = Engine(policy('[actions]\ncat1 = "alert"\n'))
    check(engine.inspect(invoke(0, 71, ATI_AC, FOREIGN)), Action.ALERT, Rule.CAT1)


# ------------------------------------------------------------------- category 2


def test_provide_subscriber_info_on_a_home_subscriber_is_blocked() -> None:
    v = Engine(policy()).inspect(invoke(0, 70, PSI_AC, NEAR_HLR, VLR_HOME, imsi=HOME_IMSI))
    check(v, Action.BLOCK, Rule.CAT2)
    assert "home subscriber" in v.reason


def test_provide_subscriber_info_from_the_subscribers_own_home_network_is_allowed() -> None:
    engine = Engine(policy())
    check(
        engine.inspect(invoke(0, 70, PSI_AC, NEAR_HLR, VLR_HOME, imsi=NEAR_IMSI)),
        Action.ALLOW,
        None,
    )
    # the same question about another partner's subscriber is not theirs to ask
    check(
        engine.inspect(invoke(0, 70, PSI_AC, NEAR_HLR, VLR_HOME, imsi=FAR_IMSI)),
        Action.BLOCK,
        Rule.CAT2,
    )
    # nor may a network without an agreement ask about its own subscriber
    check(
        engine.inspect(invoke(0, 70, PSI_AC, FOREIGN, VLR_HOME, imsi="004040000000001")),
        Action.BLOCK,
        Rule.CAT2,
    )


# ------------------------------------------------------- category 3: velocity


def test_an_impossible_move_is_blocked_and_its_dialogue_with_it() -> None:
    engine = Engine(policy())
    check(engine.inspect(update_location(0, NEAR_VLR)), Action.ALLOW, None)
    jump = update_location(600, FAR_VLR)  # Europe to Australia in ten minutes
    v = engine.inspect(jump)
    check(v, Action.BLOCK, Rule.CAT3_VELOCITY)
    assert v.category is Category.CAT3
    # the HLR's InsertSubscriberData inside that dialogue is blocked too
    isd = continue_from_responder(601, jump, 7, imsi=HOME_IMSI)
    check(engine.inspect(isd), Action.BLOCK, Rule.CAT3_VELOCITY)


def test_a_move_a_traveller_could_make_is_allowed() -> None:
    engine = Engine(policy())
    check(engine.inspect(update_location(0, NEAR_VLR)), Action.ALLOW, None)
    check(engine.inspect(update_location(30 * 3600, FAR_VLR)), Action.ALLOW, None)
    # and a blocked update does not move the subscriber: the next one from the
    # old place is still judged against the last *accepted* location
    check(
        engine.inspect(update_location(30 * 3600 + 60, NEAR_VLR)), Action.BLOCK, Rule.CAT3_VELOCITY
    )


def test_neighbouring_regions_are_within_the_slack() -> None:
    engine = Engine(policy())
    check(engine.inspect(update_location(0, VLR_HOME)), Action.ALLOW, None)  # seen at home
    check(engine.inspect(update_location(60, NEAR_VLR)), Action.ALLOW, None)  # ~280 km


def test_update_location_about_a_home_subscriber_needs_a_roaming_agreement() -> None:
    v = Engine(policy()).inspect(update_location(0, FOREIGN))
    check(v, Action.BLOCK, Rule.CAT3_VELOCITY)


def test_update_location_whose_vlr_number_is_not_the_caller_is_blocked() -> None:
    v = Engine(policy()).inspect(update_location(0, NEAR_VLR, vlr_number="28882999999"))
    check(v, Action.BLOCK, Rule.ADDRESS_MISMATCH)


# ---------------------------------------------------------------- SMS checks


def _sri_then_result(engine: Engine, t: float, sender: str = NEAR_SMSC) -> None:
    begin = sri_sm(t, sender)
    check(engine.inspect(begin), Action.ALLOW, None)
    check(engine.inspect(sri_sm_result(t + 0.1, begin)), Action.ALLOW, None)


def test_mt_forward_sm_after_its_sri_sm_is_allowed() -> None:
    engine = Engine(policy())
    _sri_then_result(engine, 0)
    check(engine.inspect(mt_fsm(1, NEAR_SMSC)), Action.ALLOW, None)
    assert engine.expire(1000) == []  # the lookup was followed by its delivery


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        (mt_fsm(1, "28881000999"), "another sender"),
        (mt_fsm(1, NEAR_SMSC, node="19992000999"), "another node"),
        (mt_fsm(1, NEAR_SMSC, imsi="001010000000777"), "another subscriber"),
        (mt_fsm(500, NEAR_SMSC), "too late"),
    ],
)
def test_mt_forward_sm_inconsistent_with_its_sri_sm_is_blocked(facts: Facts, why: str) -> None:
    engine = Engine(policy())
    _sri_then_result(engine, 0)
    check(engine.inspect(facts), Action.BLOCK, Rule.SMS_CONSISTENCY)


def test_silent_sms_is_blocked() -> None:
    engine = Engine(policy())
    _sri_then_result(engine, 0)
    v = engine.inspect(mt_fsm(1, NEAR_SMSC, pid=0x40))
    check(v, Action.BLOCK, Rule.SILENT_SMS)


def test_a_lookup_not_followed_by_delivery_raises_a_late_alert() -> None:
    engine = Engine(policy())
    _sri_then_result(engine, 100)
    deadline = engine.next_deadline()
    assert deadline == pytest.approx(100.1 + engine.policy.sms.lookup_only_s)
    assert engine.expire(deadline - 1) == []
    late = engine.expire(deadline)
    assert [(v.action, v.rule, v.late) for v in late] == [(Action.ALERT, Rule.LOOKUP_ONLY, True)]
    assert late[0].subscriber == engine.subscriber_hash("imsi", HOME_IMSI)
    assert engine.expire(deadline + 1000) == []  # reported once
    assert engine.next_deadline() is None


def test_a_declared_lookup_owes_no_delivery() -> None:
    engine = Engine(policy())
    begin = sri_sm(0, NEAR_SMSC, delivery_not_intended=True)
    engine.inspect(begin)
    engine.inspect(sri_sm_result(0.1, begin))
    assert engine.expire(10_000) == []


def test_repeated_lookups_of_one_number_alert() -> None:
    engine = Engine(policy())
    limit = engine.policy.lookups.repeated_max
    verdicts = [engine.inspect(sri_sm(i * 10, NEAR_SMSC)) for i in range(limit + 1)]
    assert [v.action for v in verdicts[:limit]] == [Action.ALLOW] * limit
    check(verdicts[-1], Action.ALERT, Rule.REPEATED_LOOKUP)
    # outside the window the count starts again
    later = engine.inspect(sri_sm(10 * 3600, NEAR_SMSC))
    check(later, Action.ALLOW, None)


# The sweep tests look at the sweep rule alone: lookups from a network without
# an agreement are otherwise alerted at once (sms-origin, tested below).
SWEEP_ONLY = '[actions]\n"sms-origin" = "allow"\n'


def test_a_sweep_of_one_number_range_is_blocked() -> None:
    engine = Engine(policy(SWEEP_ONLY))
    n = engine.policy.lookups.sweep_distinct
    verdicts = [engine.inspect(sri_sm(i, FOREIGN, msisdn=f"1999555{i:04d}")) for i in range(n)]
    assert [v.action for v in verdicts[:-1]] == [Action.ALLOW] * (n - 1)
    check(verdicts[-1], Action.BLOCK, Rule.RANGE_SWEEP)


def test_many_scattered_numbers_of_one_block_are_not_a_sweep() -> None:
    """A busy SMSC looks up many subscribers of one 1000-number block; only
    numbers close together make a sweep."""
    engine = Engine(policy(SWEEP_ONLY))
    n = engine.policy.lookups.sweep_distinct
    scattered = [
        engine.inspect(sri_sm(i, FOREIGN, msisdn=f"1999555{(i * 97) % 1000:04d}"))
        for i in range(3 * n)
    ]
    assert {v.action for v in scattered} == {Action.ALLOW}
    # ... and a sweep hidden among them is still found
    swept = [
        engine.inspect(sri_sm(100 + i, FOREIGN, msisdn=f"1999555{500 + 2 * i:04d}"))
        for i in range(n)
    ]
    check(swept[-1], Action.BLOCK, Rule.RANGE_SWEEP)


def test_lookups_spread_over_ranges_or_senders_are_not_a_sweep() -> None:
    engine = Engine(policy(SWEEP_ONLY))
    n = engine.policy.lookups.sweep_distinct
    spread = [engine.inspect(sri_sm(i, FOREIGN, msisdn=f"19995{i:02d}00001")) for i in range(n)]
    senders = [
        engine.inspect(sri_sm(i, f"466612345{i:02d}", msisdn=f"1999666{i:04d}")) for i in range(n)
    ]
    assert {v.action for v in spread + senders} == {Action.ALLOW}


def test_a_lookup_from_a_network_without_agreement_gets_the_origin_action() -> None:
    # Issue 13: at the message, not only by a late lookup-only alert.
    check(Engine(policy()).inspect(sri_sm(0, FOREIGN)), Action.ALERT, Rule.SMS_ORIGIN)
    blocking = Engine(policy('[actions]\n"sms-origin" = "block"\n'))
    check(blocking.inspect(sri_sm(0, FOREIGN)), Action.BLOCK, Rule.SMS_ORIGIN)
    # partners' lookups are their business
    check(Engine(policy()).inspect(sri_sm(0, NEAR_SMSC)), Action.ALLOW, None)


def test_home_routing_is_the_origin_action_unless_the_policy_blocks() -> None:
    routed = '[home_routing]\nrouter_gt = "19990009999"\n'
    check(Engine(policy(routed)).inspect(sri_sm(0, FOREIGN)), Action.ALLOW, None)
    blocking = Engine(policy(routed + '[actions]\n"sms-origin" = "block"\n'))
    check(blocking.inspect(sri_sm(0, FOREIGN)), Action.BLOCK, Rule.SMS_ORIGIN)


def test_late_alerts_name_the_requesters_real_origin() -> None:
    engine = Engine(policy())
    begin = sri_sm(0, NEAR_SMSC)
    engine.inspect(begin)
    engine.inspect(sri_sm_result(1, begin))
    (late,) = engine.expire(1_000.0)
    assert late.rule is Rule.LOOKUP_ONLY and late.origin is Origin.PARTNER


# ------------------------------------------------------------- spoofed SMS

FAR_MSC = "37772000001"
HOME_SMSC = "19993000001"


def mo_fsm(t: float, calling: str, msisdn: str = HOME_MSISDN) -> Facts:
    """An MO-ForwardSM whose originator (SM-RP-OA) is ``msisdn``."""
    return invoke(t, 46, (MapAc.SHORT_MSG_MO_RELAY, 3), calling, HOME_SMSC, msisdn=msisdn,
                  sm_rp_da=SmRpDaKind.SERVICE_CENTRE, service_centre=HOME_SMSC)  # fmt: skip


def profile_sent(t: float, vlr: str, msisdn: str = HOME_MSISDN) -> Facts:
    """The home HLR's InsertSubscriberData naming the number, to ``vlr``."""
    return invoke(t, 7, (MapAc.SUBSCRIBER_DATA_MNGT, 3), HLR, vlr, imsi=HOME_IMSI, msisdn=msisdn)


def test_an_mo_sms_claiming_a_home_number_from_no_agreement_is_spoofed() -> None:
    v = Engine(policy()).inspect(mo_fsm(0, FOREIGN))
    check(v, Action.BLOCK, Rule.SMS_SPOOFING)
    assert v.category is Category.CAT3
    # another network's subscriber is not ours to judge
    check(Engine(policy()).inspect(mo_fsm(0, FOREIGN, "46665550001")), Action.ALLOW, None)


def test_an_mo_sms_must_come_from_where_the_subscriber_is_registered() -> None:
    engine = Engine(policy())
    check(engine.inspect(mo_fsm(0, NEAR_VLR)), Action.ALLOW, None)  # nothing known yet
    engine.inspect(profile_sent(10, NEAR_VLR))  # roaming in "near"
    check(engine.inspect(mo_fsm(20, NEAR_VLR)), Action.ALLOW, None)
    check(engine.inspect(mo_fsm(30, FAR_MSC)), Action.BLOCK, Rule.SMS_SPOOFING)
    engine.inspect(profile_sent(40, VLR_HOME))  # back home
    check(engine.inspect(mo_fsm(50, NEAR_VLR)), Action.BLOCK, Rule.SMS_SPOOFING)
    assert engine.state_sizes["number_locations"] == 1


def test_an_mt_sms_claiming_a_home_smsc_through_another_network_is_spoofed() -> None:
    engine = Engine(policy())
    check(engine.inspect(mt_fsm(0, FOREIGN, service_centre=HOME_SMSC)), Action.BLOCK,
          Rule.SMS_SPOOFING)  # fmt: skip
    check(engine.inspect(mt_fsm(0, NEAR_SMSC, service_centre=PLATFORM)), Action.BLOCK,
          Rule.SMS_SPOOFING)  # fmt: skip


# --------------------------------------------------------------- TCAP sanity


def test_begin_without_application_context_is_blocked() -> None:
    check(Engine(policy()).inspect(invoke(0, 45, None, NEAR_SMSC)), Action.BLOCK, Rule.TCAP_SANITY)


def test_global_operation_code_is_blocked() -> None:
    sri = sri_sm(0, NEAR_SMSC)
    f = sri._replace(invokes=(), opcode=None, global_opcode=True)
    check(Engine(policy()).inspect(f), Action.BLOCK, Rule.TCAP_SANITY)


def test_continue_without_context_uses_its_dialogue() -> None:
    """An ISD in a TC-CONTINUE without dialogue portion takes the AC of the BEGIN
    that opened the dialogue (networkLocUp), where it is category 2."""
    engine = Engine(policy())
    ul = invoke(
        0,
        2,
        (MapAc.NETWORK_LOC_UP, 3),
        VLR_HOME,
        NEAR_HLR,
        imsi=NEAR_IMSI,
        msc_number=MSC_HOME,
        vlr_number=VLR_HOME,
    )
    check(engine.inspect(ul), Action.ALLOW, None)  # home traffic: observed only
    isd = continue_from_responder(0.2, ul, 7)
    v = engine.inspect(isd)
    check(v, Action.ALLOW, None)  # the partner HLR updating its own subscriber
    assert v.category is Category.CAT2
    spoofed = continue_from_responder(0.3, ul, 7, imsi=HOME_IMSI)
    check(engine.inspect(spoofed), Action.BLOCK, Rule.CAT2)


# ----------------------------------------------------------- platform egress


def test_platform_lookup_for_a_queued_message_then_delivery_is_allowed() -> None:
    store = InMemoryPendingMessages([HOME_MSISDN])
    engine = Engine(policy(), store)
    begin = sri_sm(0, PLATFORM)
    check(engine.inspect(begin), Action.ALLOW, None)
    check(engine.inspect(sri_sm_result(0.1, begin, hlr=HLR)), Action.ALLOW, None)
    check(engine.inspect(mt_fsm(0.2, PLATFORM)), Action.ALLOW, None)
    assert engine.expire(10_000) == []


def test_platform_lookup_without_a_queued_message_is_blocked() -> None:
    engine = Engine(policy(), InMemoryPendingMessages(["19995550002"]))
    v = engine.inspect(sri_sm(0, PLATFORM))
    check(v, Action.BLOCK, Rule.PLATFORM_EGRESS)
    assert v.origin is Origin.PLATFORM


def test_platform_without_a_store_fails_closed() -> None:
    check(Engine(policy()).inspect(sri_sm(0, PLATFORM)), Action.BLOCK, Rule.PLATFORM_EGRESS)


@pytest.mark.parametrize(
    "facts",
    [
        invoke(0, 71, ATI_AC, PLATFORM, imsi=HOME_IMSI),
        invoke(0, 22, (MapAc.LOCATION_INFO_RETRIEVAL, 3), PLATFORM, msisdn=HOME_MSISDN),
        sri_sm(0, PLATFORM, delivery_not_intended=True),
        mt_fsm(0, PLATFORM),  # no SRI-SM before it
    ],
    ids=["ati", "sri", "lookup-only-sri-sm", "mt-without-sri-sm"],
)
def test_everything_else_from_the_platform_is_blocked(facts: Facts) -> None:
    engine = Engine(policy(), InMemoryPendingMessages([HOME_MSISDN]))
    check(engine.inspect(facts), Action.BLOCK, Rule.PLATFORM_EGRESS)


def test_platform_delivery_after_the_message_left_the_queue_is_blocked() -> None:
    store = InMemoryPendingMessages([HOME_MSISDN])
    engine = Engine(policy(), store)
    begin = sri_sm(0, PLATFORM)
    engine.inspect(begin)
    engine.inspect(sri_sm_result(0.1, begin))
    store.discard(HOME_MSISDN)
    check(engine.inspect(mt_fsm(0.2, PLATFORM)), Action.BLOCK, Rule.PLATFORM_EGRESS)


def report_sm(t: float, calling: str, msisdn: str = HOME_MSISDN) -> Facts:
    """reportSM-DeliveryStatus from ``calling`` about ``msisdn``."""
    return invoke(t, 47, (MapAc.SHORT_MSG_GATEWAY, 3), calling, msisdn=msisdn,
                  service_centre=calling)  # fmt: skip


def test_platform_delivery_report_for_a_queued_message_is_allowed() -> None:
    engine = Engine(policy(), InMemoryPendingMessages([HOME_MSISDN]))
    check(engine.inspect(report_sm(0, PLATFORM)), Action.ALLOW, None)
    # for a number the platform has nothing queued for: blocked
    check(engine.inspect(report_sm(1, PLATFORM, "19995550002")), Action.BLOCK,
          Rule.PLATFORM_EGRESS)  # fmt: skip
    check(Engine(policy()).inspect(report_sm(0, PLATFORM)), Action.BLOCK, Rule.PLATFORM_EGRESS)


def test_platform_lookup_not_followed_by_delivery_is_a_late_alert() -> None:
    engine = Engine(policy(), InMemoryPendingMessages([HOME_MSISDN]))
    begin = sri_sm(0, PLATFORM)
    engine.inspect(begin)
    engine.inspect(sri_sm_result(0.1, begin))
    late = engine.expire(10_000)
    assert [(v.rule, v.origin) for v in late] == [(Rule.PLATFORM_EGRESS, Origin.PLATFORM)]


# ------------------------------------------------------- lists, rates, spoofing


def test_deny_list_by_gt_blocks_even_results_and_by_operation_blocks_invokes() -> None:
    engine = Engine(
        policy('[deny]\ngt_prefixes = ["28881"]\noperations = ["sendAuthenticationInfo"]\n')
    )
    check(engine.inspect(sri_sm(0, NEAR_SMSC)), Action.BLOCK, Rule.DENY_LIST)
    sai = invoke(0, 56, (MapAc.INFO_RETRIEVAL, 3), NEAR_VLR, imsi=NEAR_IMSI)
    check(engine.inspect(sai), Action.BLOCK, Rule.DENY_LIST)


def test_rate_limit_per_sender_refills_with_time() -> None:
    engine = Engine(policy("[rates]\nper_gt_per_s = 2\nper_gt_burst = 3\n"))
    burst = [engine.inspect(sri_sm(0, NEAR_SMSC, msisdn=f"1999{i:07d}")) for i in range(4)]
    assert [v.action for v in burst] == [Action.ALLOW] * 3 + [Action.BLOCK]
    assert burst[-1].rule is Rule.RATE_LIMIT
    check(engine.inspect(sri_sm(1.0, NEAR_SMSC, msisdn="19990000077")), Action.ALLOW, None)


def test_rate_limit_per_subscriber() -> None:
    engine = Engine(
        policy(
            "[rates]\nper_subscriber_per_min = 1\nper_subscriber_burst = 2\n"
            "[lookups]\nrepeated_max = 100\n"
        )
    )
    v = [engine.inspect(sri_sm(i, f"28881000{i:03d}")) for i in range(3)]
    assert [x.action for x in v] == [Action.ALLOW, Action.ALLOW, Action.BLOCK]
    assert v[-1].rule is Rule.RATE_LIMIT


def test_home_gt_arriving_from_the_interconnect_is_spoofed() -> None:
    f = invoke(
        0,
        7,
        (MapAc.SUBSCRIBER_DATA_MNGT, 3),
        HLR,
        NEAR_VLR,
        imsi=HOME_IMSI,
        direction=Direction.INBOUND,
    )
    check(Engine(policy()).inspect(f), Action.BLOCK, Rule.ADDRESS_MISMATCH)
    # the same message seen leaving the home network is the HLR's own business
    g = invoke(
        0,
        7,
        (MapAc.SUBSCRIBER_DATA_MNGT, 3),
        HLR,
        NEAR_VLR,
        imsi=HOME_IMSI,
        direction=Direction.OUTBOUND,
    )
    check(Engine(policy()).inspect(g), Action.ALLOW, None)


# ------------------------------------------------------------ state and output


def test_state_is_bounded_and_evicts_the_oldest() -> None:
    engine = Engine(
        policy(
            "[limits]\nsubscribers = 16\ndialogues = 16\ncorrelations = 16\nsenders = 16\n"
            "sweep_senders = 16\n"
        )
    )
    for i in range(100):
        imsi = f"00101{i:010d}"
        engine.inspect(update_location(i, NEAR_VLR, imsi=imsi))
        begin = sri_sm(i, f"28881{i:06d}", msisdn=f"1999{i:07d}")
        engine.inspect(begin)
        engine.inspect(sri_sm_result(i, begin, imsi=imsi))
    sizes = engine.state_sizes
    assert max(sizes.values()) <= 16, sizes
    # the first subscriber was evicted: a jump from it is no longer judged
    check(engine.inspect(update_location(200, FAR_VLR, imsi="001010000000000")), Action.ALLOW, None)
    # the last one was kept
    check(
        engine.inspect(update_location(200, FAR_VLR, imsi="001010000000099")),
        Action.BLOCK,
        Rule.CAT3_VELOCITY,
    )


def test_verdicts_carry_no_identifier_in_clear() -> None:
    """The red line: no IMSI, MSISDN or node address in any verdict."""
    engine = Engine(policy(), InMemoryPendingMessages([HOME_MSISDN]))
    facts = [
        update_location(0, NEAR_VLR),
        update_location(60, FAR_VLR),
        invoke(1, 71, ATI_AC, FOREIGN, imsi=HOME_IMSI, msisdn=HOME_MSISDN),
        invoke(2, 70, PSI_AC, NEAR_HLR, VLR_HOME, imsi=HOME_IMSI),
        sri_sm(3, NEAR_SMSC),
        mt_fsm(4, NEAR_SMSC, pid=0x40),
        sri_sm(5, PLATFORM),
    ]
    out = [engine.inspect(f) for f in facts] + engine.expire(1e9)
    text = json.dumps([v.as_dict() for v in out])
    assert {v.action for v in out} >= {Action.BLOCK, Action.ALLOW}
    for secret in (
        HOME_IMSI,
        HOME_MSISDN,
        NEAR_VLR,
        FAR_VLR,
        FOREIGN,
        NEAR_SMSC,
        NEAR_HLR,
        MSC_HOME,
        HLR,
        PLATFORM,
    ):
        assert secret not in text
        assert secret[-7:] not in text
    assert all(len(v.subscriber) in (0, 20) for v in out)
    assert "00101" not in repr(facts[0]) and HOME_IMSI not in repr(facts[0])
