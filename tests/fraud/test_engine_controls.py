"""The engine's graduated actions, monitor mode, memory bound, customer controls and
source cells (issue 11, "Pumping defence")."""

from __future__ import annotations

import random

import pytest

from herald.fraud import Action, Controls, Decision, Engine, Prices, Receipt, Request, Verification

T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
S, MIN, HOUR = 1_000, 60_000, 3_600_000
PRICES = Prices("USD", {"GB": 0.04, "ER": 0.38, "DE": 0.08}, {"23430": 0.04, "65702": 0.95})


def _pumped(engine: Engine, rid: str, ts: int, to: str, *, account: str = "shop",
            use_case: str = "signup", country: str = "ER", network: str | None = "65702",
            device: str | None = None, ip: str | None = None) -> Decision:
    """A code to ``to`` that is delivered and never typed in."""
    decision = engine.request(Request(rid, ts, account, use_case, to, country, network,
                                      device_id=device, ip=ip))
    if decision.action is Action.ALLOW:
        engine.receipt(Receipt(rid, ts + 2 * S, "DELIVRD"))
    return decision


def test_a_number_over_its_budget_is_throttled_before_it_is_blocked() -> None:
    engine = Engine(PRICES)
    number = "+2917150001"
    steps = [_pumped(engine, f"r{i}", T0 + i * 20 * MIN, number) for i in range(4)]
    throttled = next(d for d in steps if d.action is Action.BLOCK)
    assert throttled.step == "throttle" and throttled.throttle_ms > 0
    assert throttled.reasons[-1].code == "throttle"
    # A person waits: half an hour later one code passes.
    later = T0 + 4 * 20 * MIN + throttled.throttle_ms
    assert _pumped(engine, "w", later, number).action is Action.ALLOW
    # A bot asks on, every minute: the throttle turns into a block.
    asks = [_pumped(engine, f"b{i}", later + (i + 1) * MIN, number) for i in range(5)]
    assert asks[0].step == "throttle"
    assert asks[-1].step == "block"
    assert any(d.reasons[-1].code == "loss_budget" for d in asks)


def test_monitor_mode_allows_everything_and_records_what_it_would_have_done() -> None:
    rng = random.Random(1)
    numbers = [f"+291715{rng.randrange(10**4):04d}" for _ in range(60)]
    enforce, monitor = Engine(PRICES), Engine(PRICES, mode="monitor")
    enforced = [_pumped(enforce, f"r{i}", T0 + i * S, to) for i, to in enumerate(numbers)]
    watched = [_pumped(monitor, f"r{i}", T0 + i * S, to) for i, to in enumerate(numbers)]
    assert sum(d.action is Action.BLOCK for d in enforced) >= 50
    assert all(d.action is Action.ALLOW for d in watched)
    would = [d for d in watched if d.would is Action.BLOCK]
    assert len(would) >= 50
    assert all(d.step == "block" and d.reasons[-1].code in ("loss_budget", "cell_blocked",
                                                             "unfamiliar_countries")
               for d in would)
    assert watched[0].would is Action.ALLOW and watched[0].step == "allow"
    with pytest.raises(ValueError, match="mode"):
        Engine(PRICES, mode="dry-run")


def test_memory_is_bounded_however_many_numbers_it_sees() -> None:
    engine = Engine(PRICES, max_cells=2_000)
    rng = random.Random(2)
    largest = 0
    for i in range(20_000):  # three days of distinct numbers, all typed in (trusted)
        ts = T0 + i * 13 * S
        rid = f"r{i}"
        to = f"+4477{rng.randrange(10**8):08d}"
        engine.request(Request(rid, ts, "shop", "login", to, "GB", "23430",
                               device_id=f"d{i}", ip=f"10.{i % 250}.{i // 250}.1"))
        engine.receipt(Receipt(rid, ts + 2 * S, "DELIVRD"))
        engine.verification(Verification(rid, ts + 9 * S))
        largest = max(largest, engine.cell_count())
    memory = engine.memory()
    assert largest <= 2_000 + 10  # one request's new cells above the cap before eviction
    assert memory["numbers"] <= 2_000
    assert memory["sent"] < 20_000  # settled codes older than SENT_TTL_MS are forgotten


def test_customer_controls_deny_allow_geo_and_daily_ceiling() -> None:
    controls = {"shop": Controls(allow=("+4477009",), deny=("+447701",),
                                 countries=frozenset({"GB", "DE"}), ceilings={"DE": 0.2}),
                "*": Controls(deny=("+49",))}
    engine = Engine(PRICES, controls=controls)

    def ask(rid: str, to: str, country: str, account: str = "shop", ts: int = T0) -> Decision:
        return engine.request(Request(rid, ts, account, "login", to, country, None))

    assert ask("d", "+447701123456", "GB").reasons[-1].code == "deny_list"
    assert ask("g", "+2917150001", "ER").reasons[-1].code == "geo_permission"
    assert ask("a", "+447700912345", "GB").action is Action.ALLOW
    de = [ask(f"c{i}", f"+4915112345{i:02d}", "DE") for i in range(4)]
    assert [d.action for d in de] == [Action.ALLOW, Action.ALLOW, Action.BLOCK, Action.BLOCK]
    assert de[2].reasons[-1].code == "country_ceiling"
    assert de[2].reasons[-1].figures["ceiling"] == 0.2
    assert ask("n", "+4915112345", "DE", ts=T0 + 24 * HOUR).action is Action.ALLOW  # a new day
    assert ask("o", "+4915112399", "DE", account="other").reasons[-1].code == "deny_list"
    # An allowed number skips the defence even inside a pumped range.
    for i in range(40):
        _pumped(engine, f"p{i}", T0 + HOUR + i * S, f"+44770090{i:04d}", country="GB",
                network="23430", account="x")
    listed = ask("l", "+447700900001", "GB", ts=T0 + HOUR + MIN)
    assert listed.action is Action.ALLOW and listed.reasons[-1].code == "allow_list"


def test_an_attack_through_one_source_closes_the_range_to_that_source_only() -> None:
    engine = Engine(PRICES)
    rng = random.Random(3)
    for i in range(40):  # a bot through (shop, signup) pumps one 10k range
        _pumped(engine, f"b{i}", T0 + i * 30 * S, f"+291715{rng.randrange(10**4):04d}",
                account="shop")
    bot = engine.request(Request("b", T0 + 21 * MIN, "shop", "signup", "+2917154321", "ER",
                                 "65702"))
    other = engine.request(Request("o", T0 + 21 * MIN, "bank", "login", "+2917151234", "ER",
                                   "65702"))
    assert bot.action is Action.BLOCK and "shop/signup|" in bot.reasons[-1].cell
    assert other.action is Action.ALLOW


def test_a_device_losing_money_on_many_numbers_is_blocked() -> None:
    engine = Engine(PRICES)
    decisions = []
    for i in range(80):  # every bot code to another range, so no range trips
        ts = T0 + i * 10 * MIN
        human = engine.request(Request(f"h{i}", ts, "shop", "signup", f"+447799{i:06d}", "GB",
                                       "23430", device_id=f"phone-{i}"))
        assert human.action is Action.ALLOW
        engine.receipt(Receipt(f"h{i}", ts + 2 * S, "DELIVRD"))
        engine.verification(Verification(f"h{i}", ts + 12 * S))
        decisions.append(_pumped(engine, f"r{i}", ts + 30 * S, f"+4477{i:02d}0{i:05d}",
                                 country="GB", network="23430", device="bot-1"))
    blocked = [d for d in decisions if d.action is Action.BLOCK]
    assert blocked and blocked[0].reasons[-1].cell == "device:device|bot-1"
    assert len(blocked) >= 40


def test_a_country_budget_remembers_its_usual_volume_at_this_hour_of_week() -> None:
    def week(engine: Engine, quiet_from: int) -> Decision:
        """GB traffic (all typed in) every 20 s for a week, silent from ``quiet_from``."""
        for i in range(0, 7 * 24 * 180):
            ts = T0 + i * 20 * S
            if ts >= quiet_from:
                break
            rid = f"r{i}"
            engine.request(Request(rid, ts, "shop", "login", f"+44770{i:07d}", "GB", "23430"))
            engine.receipt(Receipt(rid, ts + 2 * S, "DELIVRD"))
            engine.verification(Verification(rid, ts + 9 * S))
        return engine.request(Request("q", T0 + 8 * 24 * HOUR + 12 * HOUR, "shop", "login",
                                      "+447799900000", "GB", "23430"))

    # The same Tuesday noon after a quiet day: the profile keeps the budget up.
    learned = week(Engine(PRICES), T0 + 7 * 24 * HOUR)
    short = week(Engine(PRICES), T0 + 3 * HOUR)
    budget = learned.reasons[-1].figures["budget"]
    assert learned.reasons[-1].code == "within_budget"
    assert budget > 2 * short.reasons[-1].figures["budget"]


def test_many_rare_countries_at_once_put_their_source_on_alert() -> None:
    codes = {"KG": "996", "TJ": "992", "SL": "232", "GN": "224", "MR": "222", "TD": "235",
             "SO": "252", "PG": "675", "SB": "677", "AF": "93"}
    engine = Engine(Prices("USD", {**dict.fromkeys(codes, 0.6), "KE": 0.19}))
    rng = random.Random(4)
    decisions = []
    for i in range(120):  # one bot source, ten rarely-seen countries, one code every 6 s
        ts = T0 + i * 6 * S
        iso = list(codes)[i % len(codes)]
        decisions.append(_pumped(engine, f"b{i}", ts, f"+{codes[iso]}7{rng.randrange(10**7):07d}",
                                 country=iso, network=None))
        if i % 3 == 0:  # meanwhile another customer launches Kenya; its users type codes
            rid = f"k{i}"
            kenya = engine.request(Request(rid, ts, "chat", "signup",
                                           f"+254710{rng.randrange(10**6):06d}", "KE", None))
            assert kenya.action is Action.ALLOW
            engine.receipt(Receipt(rid, ts + 2 * S, "DELIVRD"))
            engine.verification(Verification(rid, ts + 15 * S))
    first = next(i for i, d in enumerate(decisions) if d.action is Action.BLOCK)
    assert first <= 12  # about a minute
    assert decisions[first].reasons[-1].code == "unfamiliar_countries"
    after = decisions[first:]
    assert sum(d.action is Action.BLOCK for d in after) >= 0.9 * len(after)


def test_codes_in_flight_to_many_rare_countries_trip_the_alert_within_a_few_codes() -> None:
    # Slow first codes (one every 15 s): the loss the source is expected to convert away
    # needs five or six codes to pass its budget; their full price in flight needs three.
    codes = {"KG": "996", "TJ": "992", "SL": "232", "GN": "224", "MR": "222", "TD": "235"}
    engine = Engine(Prices("USD", dict.fromkeys(codes, 0.6)))
    rng = random.Random(5)
    decisions = [_pumped(engine, f"b{i}", T0 + i * 15 * S,
                         f"+{codes[iso]}7{rng.randrange(10**7):07d}", country=iso, network=None)
                 for i, iso in enumerate(list(codes) * 4)]
    first = next(i for i, d in enumerate(decisions) if d.action is Action.BLOCK)
    assert first <= 2
    reason = decisions[first].reasons[-1]
    assert reason.code == "unfamiliar_countries" and reason.figures["flight"] > 1.0
    assert all(d.action is Action.BLOCK for d in decisions[first:])


def test_a_launch_in_one_new_country_does_not_trip_the_alert_on_its_codes_in_flight() -> None:
    engine = Engine(Prices("USD", {"KE": 0.19}))
    rng = random.Random(6)
    for i in range(200):  # a code every 10 s to a country never seen; half are typed in
        rid, ts = f"k{i}", T0 + i * 10 * S
        kenya = engine.request(Request(rid, ts, "chat", "signup",
                                       f"+25471{rng.randrange(10**7):07d}", "KE", None))
        assert kenya.action is Action.ALLOW, kenya.reasons
        engine.receipt(Receipt(rid, ts + 2 * S, "DELIVRD"))
        if i % 2:
            engine.verification(Verification(rid, ts + 20 * S))


@pytest.mark.parametrize("seed", range(6))
def test_chance_losses_of_a_source_do_not_close_a_fresh_range_to_it(seed: int) -> None:
    # A source's codes to one network convert at their usual rate, with chance streaks
    # of codes not typed in; they must not count as an attack on the network (which
    # would leave a range that never converted one code before it is closed).
    engine = Engine(Prices("USD", {"ID": 0.42}, {"51021": 0.42}))
    rng = random.Random(seed)
    for i in range(128):  # four days, a code every 45 minutes
        rid, ts = f"r{i}", T0 + i * 45 * MIN
        to = f"+62814{rng.randrange(10**4):04d}{rng.randrange(10**4):04d}"
        assert engine.request(Request(rid, ts, "shop", "signup", to, "ID", "51021")
                              ).action is Action.ALLOW
        engine.receipt(Receipt(rid, ts + 3 * S, "DELIVRD"))
        if rng.random() < 0.5:
            engine.verification(Verification(rid, ts + 20 * S))
    ts = T0 + 128 * 45 * MIN
    for j in range(2):  # two new users in one fresh range, neither types the code
        probe = engine.request(Request(f"p{j}", ts + j * MIN, "shop", "signup",
                                       f"+628149999000{j}", "ID", "51021"))
        assert probe.action is Action.ALLOW, probe.reasons
        engine.receipt(Receipt(f"p{j}", ts + j * MIN + 3 * S, "DELIVRD"))


def test_the_blocks_in_force_are_listed_until_they_expire() -> None:
    engine = Engine(PRICES)
    number = "+2917150001"
    assert engine.blocks(T0) == []
    steps = [(T0 + i * 20 * MIN, _pumped(engine, f"r{i}", T0 + i * 20 * MIN, number))
             for i in range(4)]
    at, throttled = next((t, d) for t, d in steps if d.action is Action.BLOCK)
    held = engine.blocks(at)
    assert [(b.cell, b.kind, b.strikes) for b in held] == [
        (throttled.reasons[-1].cell, "throttle", 1)]
    assert held[0].until > at
    # the bot asks on: the throttle becomes a block, which expires in its turn
    later = at + MIN
    asks = [(later + i * MIN, _pumped(engine, f"b{i}", later + i * MIN, number))
            for i in range(5)]
    when, blocked = next((t, d) for t, d in asks if d.reasons[-1].code == "loss_budget")
    held = engine.blocks(when)
    reason = blocked.reasons[-1]
    assert (reason.cell, "block", when + reason.figures["block_ms"]) in [
        (b.cell, b.kind, b.until) for b in held]
    assert engine.blocks(max(b.until for b in held)) == []


def test_a_chance_alarm_in_a_launch_does_not_close_range_after_range() -> None:
    # A source opens a country never seen: every range is new and none converted yet.
    # Its first hours go unconverted, so its alarm on the network sounds; then its users
    # type codes as usual. The request that sounded it was judged on the strict floors
    # the sounding had just switched on, and its range closed on its neighbour's
    # untyped code; that block kept the floors on, and each range they closed after
    # kept them on in turn: range after range for two days (seed 75). A sounding alone
    # must not switch them on.
    engine = Engine(Prices("USD", {"KE": 0.4}, {"63902": 0.4}))
    refused = []
    for i in range(60):  # every hour two users in one fresh 10k range
        for n, typed in enumerate((False, i >= 8 and i % 5 != 0)):  # the first never types
            rid, ts = f"r{i}-{n}", T0 + i * HOUR + n * 2 * MIN
            decision = engine.request(Request(rid, ts, "chatly", "signup",
                                              f"+25471{i:03d}{n}00{n}", "KE", "63902"))
            if decision.action is Action.BLOCK:
                refused.append((rid, decision.reasons[-1].cell))
                continue
            engine.receipt(Receipt(rid, ts + 3 * S, "DELIVRD"))
            if typed:
                engine.verification(Verification(rid, ts + 20 * S))
    assert refused == []


def test_an_attack_spread_over_fresh_ranges_meets_the_strict_floors_once_evidenced() -> None:
    # The other side of the launch above: a bot through one source, four codes to each
    # of 40 fresh 10k ranges of a network, none typed in. The first ranges close on
    # their ordinary budgets; those blocks and the alarm's sounding keep the strict
    # floors on, so every later range is closed at its second code.
    engine = Engine(Prices("USD", {"ID": 0.42}, {"51021": 0.42}))
    allowed = [0] * 40
    for i in range(40):
        for k in range(4):
            rid, ts = f"b{i}-{k}", T0 + (i * 4 + k) * 20 * MIN
            decision = _pumped(engine, rid, ts, f"+62814{i:03d}{k}{k:03d}", country="ID",
                               network="51021")
            allowed[i] += decision.action is Action.ALLOW
    assert min(allowed[:3]) >= 3  # ordinary budgets: three codes or 0.8 USD
    assert allowed[5:] == [1] * 35


def test_conversions_before_the_alert_do_not_open_a_rare_country_to_the_attack() -> None:
    # Seed 84: real users in the rarely-seen countries had typed codes in the hour before
    # the attack (other sources' users); on those conversions the attack's codes passed the
    # alert country by country (37 of 515 after its first block), for two minutes.
    codes = {"KG": "996", "TJ": "992", "SL": "232", "GN": "224", "MR": "222", "TD": "235",
             "SO": "252", "PG": "675", "SB": "677", "AF": "93"}
    engine = Engine(Prices("USD", {**dict.fromkeys(codes, 0.6), "LA": 0.6, "KE": 0.6}))
    rng = random.Random(7)

    def user(rid: str, ts: int, account: str, to: str, iso: str, typed: bool) -> None:
        decision = engine.request(Request(rid, ts, account, "signup", to, iso, None))
        assert decision.action is Action.ALLOW, decision.reasons
        engine.receipt(Receipt(rid, ts + 2 * S, "DELIVRD"))
        if typed:
            engine.verification(Verification(rid, ts + 20 * S))

    for i, iso in enumerate(codes):  # each country's user types the code, 50-5 min before
        user(f"u{i}", T0 + (10 + 5 * i) * MIN, "chat",
             f"+{codes[iso]}6{rng.randrange(10**7):07d}", iso, True)
    for i in range(3):  # meanwhile the source itself launches Kenya; one user types it
        user(f"k{i}", T0 + (30 + i) * MIN, "shop", f"+2547{i}{rng.randrange(10**7):07d}", "KE",
             i == 0)
    start = T0 + HOUR
    decisions = [_pumped(engine, f"b{i}", start + i * 6 * S,
                         f"+{codes[iso]}7{rng.randrange(10**7):07d}", country=iso, network=None)
                 for i, iso in enumerate(list(codes) * 11)]
    first = next(i for i, d in enumerate(decisions) if d.action is Action.BLOCK)
    assert first <= 6
    assert decisions[first].reasons[-1].code == "unfamiliar_countries"
    assert all(d.action is Action.BLOCK for d in decisions[first:]), [
        d.reasons[-1].cell for d in decisions[first:] if d.action is Action.ALLOW]
    # The source's own users converting in the last hour vouch for their country (a launch
    # by the alerted source goes on) ...
    ts = start + 110 * 6 * S
    kenya = engine.request(Request("k3", ts, "shop", "signup", "+254739876543", "KE", None))
    assert kenya.action is Action.ALLOW, kenya.reasons
    # ... and so does a code typed at human speed since the alert began, by any source: a
    # user of another source converts in Laos, and the alerted source's next user passes.
    user("l0", ts, "chat", "+85620555001", "LA", True)
    laos = engine.request(Request("l1", ts + MIN, "shop", "signup", "+85620555002", "LA", None))
    assert laos.action is Action.ALLOW, laos.reasons


LAOS = Prices("USD", {"NP": 0.19, "AZ": 0.27, "LA": 0.21, "KH": 0.2},
              {"45701": 0.21, "45702": 0.50})


def test_a_burst_whose_codes_in_flight_are_mostly_to_one_rare_country_is_refused_there() -> None:
    # Seed 84's rare-countries burst: cheap codes to three rarely-seen countries, then
    # premium ones to Laos's 45702, one source. Its codes in flight pass the group's
    # budget at the fifth code, but Laos holds most of them: left to Laos's own cells,
    # which judge a code at price x p, the fifth passed and the burst ran on.
    engine = Engine(LAOS)
    burst = [(0, "+9779809765609", "NP", "42901"), (22, "+8562001146448", "LA", "45701"),
             (56, "+994500424173", "AZ", "40001"), (56.1, "+8562067186943", "LA", "45702"),
             (59.5, "+8562052654765", "LA", "45702"), (63, "+8562031402277", "LA", "45702"),
             (66, "+8562077150923", "LA", "45702")]
    decisions = [_pumped(engine, f"b{i}", T0 + int(at * S), to, country=iso, network=net)
                 for i, (at, to, iso, net) in enumerate(burst)]
    assert [d.action for d in decisions[:4]] == [Action.ALLOW] * 4
    refused = decisions[4]
    assert refused.action is Action.BLOCK
    reason = refused.reasons[-1]
    assert (reason.code, reason.cell) == ("unfamiliar_countries", "country:LA")
    assert reason.figures["flight"] + 0.50 > reason.figures["budget"] == 1.5
    assert all(d.action is Action.BLOCK for d in decisions[5:])
    # Only that country: the source is not on alert, its users elsewhere go on.
    cambodia = engine.request(Request("u0", T0 + 70 * S, "shop", "signup", "+85512345678",
                                      "KH", None))
    assert cambodia.action is Action.ALLOW, cambodia.reasons


@pytest.mark.parametrize("typed", [True, False])
def test_a_launch_whose_users_type_their_codes_is_not_refused_on_its_codes_in_flight(
        typed: bool) -> None:
    # A premium launch in one new country: a code every 10 s, 0.50 each, so the
    # source's codes in flight pass the group's budget (1.5 USD) at the fourth. Its
    # users type half of them 15 s later: their conversions vouch for the country.
    # Nobody typing any: the fourth code is refused (the rule the launch passes).
    engine = Engine(Prices("USD", {"LA": 0.21}, {"45702": 0.50}))
    rng = random.Random(11)
    decisions = []
    for i in range(120):
        rid, ts = f"l{i}", T0 + i * 10 * S
        decision = engine.request(Request(rid, ts, "chat", "signup",
                                          f"+85620{rng.randrange(10**7):07d}", "LA", "45702"))
        decisions.append(decision)
        if decision.action is Action.ALLOW:
            engine.receipt(Receipt(rid, ts + 2 * S, "DELIVRD"))
            if typed and i % 2 == 0:
                engine.verification(Verification(rid, ts + 15 * S))
    if typed:
        assert all(d.action is Action.ALLOW for d in decisions), next(
            d.reasons for d in decisions if d.action is Action.BLOCK)
    else:
        first = next(i for i, d in enumerate(decisions) if d.action is Action.BLOCK)
        assert first == 3
        assert decisions[first].reasons[-1].code == "unfamiliar_countries"
