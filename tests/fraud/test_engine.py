"""The pumping-defence engine, fed tables of events (no clock, no I/O)."""

from __future__ import annotations

import random

import pytest

from herald.fraud import (
    Action,
    Decision,
    Engine,
    Prices,
    Receipt,
    Request,
    Verification,
    replay,
)

T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z
S, MIN, HOUR = 1_000, 60_000, 3_600_000
PRICES = Prices("USD", {"GB": 0.04, "ER": 0.38}, {"23430": 0.04, "65702": 0.95})


def _human(n: int, rng: random.Random, *, start: int = T0, per_min: float = 2.0,
           conversion: float = 0.75, status: str = "DELIVRD", prefix: str = "+447700"
           ) -> tuple[list[Request], list[Receipt], list[Verification]]:
    """``n`` UK users asking for a code, each a fresh number; ``conversion`` type it in."""
    reqs, rcpts, vers = [], [], []
    ts = start
    for i in range(n):
        ts += int(rng.expovariate(per_min / MIN))
        rid = f"h{i}"
        reqs.append(Request(rid, ts, "shop", "signup", f"{prefix}{rng.randrange(10**6):06d}",
                            "GB", "23430"))
        rcpts.append(Receipt(rid, ts + 3 * S, status))
        if status == "DELIVRD" and rng.random() < conversion:
            vers.append(Verification(rid, ts + rng.randrange(8, 40) * S))
    return reqs, rcpts, vers


def _burst(n: int, start: int, *, fast_share: float = 0.0, rng: random.Random
           ) -> tuple[list[Request], list[Receipt], list[Verification]]:
    """``n`` codes within minutes to one 10k range of a premium, never-seen network."""
    reqs, rcpts, vers = [], [], []
    for i in range(n):
        ts = start + i * 1_500
        rid = f"b{i}"
        reqs.append(Request(rid, ts, "shop", "signup", f"+291715{rng.randrange(10**4):04d}",
                            "ER", "65702"))
        rcpts.append(Receipt(rid, ts + 2 * S, "DELIVRD"))
        if rng.random() < fast_share:
            vers.append(Verification(rid, ts + 600))  # typed by the bot in 0.6 s
    return reqs, rcpts, vers


def _run(*parts: tuple[list[Request], list[Receipt], list[Verification]],
         engine: Engine | None = None) -> dict[str, Decision]:
    reqs = sorted((r for p in parts for r in p[0]), key=lambda r: r.ts)
    rcpts = [r for p in parts for r in p[1]]
    vers = [v for p in parts for v in p[2]]
    return {d.request_id: d for d in replay(engine or Engine(PRICES), reqs, rcpts, vers)}


def _blocked(decisions: dict[str, Decision], prefix: str) -> list[str]:
    return [k for k, d in decisions.items() if k.startswith(prefix) and d.action is Action.BLOCK]


def _sent_before_first_block(decisions: dict[str, Decision], prefix: str) -> float:
    total = 0.0
    for k, d in decisions.items():  # insertion order is time order
        if not k.startswith(prefix):
            continue
        if d.action is Action.BLOCK:
            return total
        total += d.price
    return float("inf")


def test_steady_domestic_traffic_with_normal_conversion_is_never_blocked() -> None:
    rng = random.Random(1)
    decisions = _run(_human(6_000, rng, per_min=3))
    assert _blocked(decisions, "h") == []


@pytest.mark.parametrize("fast_share", [0.0, 0.35])
def test_a_burst_to_a_premium_never_seen_range_is_blocked_within_a_few_codes(
        fast_share: float) -> None:
    rng = random.Random(2)
    decisions = _run(_human(3_000, rng), _burst(200, T0 + 10 * HOUR, fast_share=fast_share,
                                                 rng=rng))
    assert _sent_before_first_block(decisions, "b") <= 5 * 0.95
    assert len(_blocked(decisions, "b")) >= 190
    assert _blocked(decisions, "h") == []
    reason = next(d for d in decisions.values() if d.action is Action.BLOCK).reasons[-1]
    assert reason.code in ("loss_budget", "unfamiliar_countries")
    assert {"excess", "budget", "price"} <= set(reason.figures)


def test_an_outage_is_not_pumping() -> None:
    rng = random.Random(3)
    # A UK network fails: nothing is delivered, nobody types a code, users ask again.
    normal = _human(2_000, rng)
    outage = _human(600, rng, start=T0 + 8 * HOUR, per_min=6, status="UNDELIV")
    outage_ids = [(Request("o" + r.id, r.ts, r.account, r.use_case, r.to, r.country, r.mcc_mnc),
                   Receipt("o" + r.id, r.ts + 3 * S, "UNDELIV")) for r in outage[0]]
    decisions = _run(normal, ([q for q, _ in outage_ids], [c for _, c in outage_ids], []))
    assert _blocked(decisions, "o") == []


def test_the_same_traffic_delivered_and_never_typed_is_blocked() -> None:
    rng = random.Random(3)
    normal = _human(2_000, rng)
    pumped = _human(600, rng, start=T0 + 8 * HOUR, per_min=6, conversion=0.0)
    pumped_ids = [(Request("o" + r.id, r.ts, r.account, r.use_case, r.to, r.country, r.mcc_mnc),
                   Receipt("o" + r.id, r.ts + 3 * S, "DELIVRD")) for r in pumped[0]]
    decisions = _run(normal, ([q for q, _ in pumped_ids], [c for _, c in pumped_ids], []))
    # Cheap domestic codes keep latitude (some $20 here), then the loss trips.
    assert len(_blocked(decisions, "o")) >= 50


def test_codes_typed_faster_than_a_human_are_not_trusted() -> None:
    engine = Engine(PRICES)
    number = "+2917150001"
    decisions = []
    for i in range(6):
        ts = T0 + i * 5 * MIN
        rid = f"r{i}"
        decisions.append(engine.request(Request(rid, ts, "shop", "login", number, "ER",
                                                "65702")))
        if decisions[-1].action is Action.ALLOW:
            engine.receipt(Receipt(rid, ts + 2 * S, "DELIVRD"))
            engine.verification(Verification(rid, ts + 800))  # 0.8 s: a bot
    assert any(d.action is Action.BLOCK for d in decisions)
    assert not any(r.code == "trusted_number" for d in decisions for r in d.reasons)


def test_a_number_verified_at_human_speed_is_trusted_inside_a_blocked_range() -> None:
    engine = Engine(PRICES)
    trusted = "+2917159999"
    engine.request(Request("t0", T0, "shop", "login", trusted, "ER", "65702"))
    engine.receipt(Receipt("t0", T0 + 2 * S, "DELIVRD"))
    engine.verification(Verification("t0", T0 + 15 * S))
    rng = random.Random(4)
    decisions = _run(_burst(40, T0 + MIN, rng=rng), engine=engine)
    assert _blocked(decisions, "b")
    again = engine.request(Request("t1", T0 + 3 * MIN, "shop", "login", trusted, "ER", "65702"))
    assert again.action is Action.ALLOW
    assert again.reasons[0].code == "trusted_number"


def test_a_trusted_number_that_seldom_types_does_not_close_its_range_to_neighbours() -> None:
    engine = Engine(PRICES)
    trusted, neighbour = "+447700900123", "+447700900777"
    engine.request(Request("t0", T0, "shop", "login", trusted, "GB", "23430"))
    engine.receipt(Receipt("t0", T0 + 2 * S, "DELIVRD"))
    engine.verification(Verification("t0", T0 + 15 * S))
    # The same person logs in forty times and types none of the codes (about 1 USD
    # at risk in its 1k range, whose budget is 0.60), among other users who type
    # theirs: allowed, it is trusted ...
    for i in range(1, 41):
        ts = T0 + i * 10 * MIN
        decision = engine.request(Request(f"t{i}", ts, "shop", "login", trusted, "GB", "23430"))
        assert decision.action is Action.ALLOW
        engine.receipt(Receipt(f"t{i}", ts + 2 * S, "DELIVRD"))
        for j in range(2):
            rid = f"u{i}-{j}"
            engine.request(Request(rid, ts + j * MIN, "shop", "login", f"+4477011{i:03d}{j:03d}",
                                   "GB", "23430"))
            engine.receipt(Receipt(rid, ts + j * MIN + 2 * S, "DELIVRD"))
            engine.verification(Verification(rid, ts + j * MIN + 20 * S))
    # ... and its loss is its own: the range stays open to the next person in it.
    other = engine.request(Request("n0", T0 + 7 * HOUR, "shop", "login", neighbour, "GB",
                                   "23430"))
    assert other.action is Action.ALLOW, other.reasons


def test_a_block_expires_and_escalates_on_repeat() -> None:
    engine = Engine(PRICES)
    rng = random.Random(5)

    def familiar(until: int) -> None:
        # Eritrea's users asked often in the hours before: not a rarely-seen country,
        # whose codes in flight would be refused before any range is blocked.
        users = [Request(f"u{until}.{i}", until - 3 * HOUR + i * 3 * MIN, "shop", "signup",
                         f"+29172{rng.randrange(10**5):05d}", "ER", "65702") for i in range(60)]
        _run((users, [Receipt(r.id, r.ts + 2 * S, "DELIVRD") for r in users],
              [Verification(r.id, r.ts + 20 * S) for r in users]), engine=engine)

    familiar(T0)
    burst = _burst(20, T0, rng=rng)
    first = _run(burst, engine=engine)
    blocked_id, decision = next((k, d) for k, d in first.items() if d.action is Action.BLOCK)
    block = decision.reasons[-1]
    base = int(block.figures["block_ms"])
    assert HOUR <= base <= 48 * HOUR
    cell = block.cell.split(":", 1)[1].split("|")[-1]  # a range (or number) of the burst
    assert next(r.to for r in burst[0] if r.id == blocked_id).startswith(cell)

    def ask(rid: str, ts: int) -> Decision:  # a fresh number in the blocked cell
        number = (cell + f"{rng.randrange(10**6):06d}")[:11]
        return engine.request(Request(rid, ts, "shop", "signup", number, "ER", "65702"))

    assert ask("p1", T0 + base // 2).reasons[-1].code == "cell_blocked"
    familiar(T0 + base)
    later = [ask(f"q{i}", T0 + base + MIN + i * S) for i in range(10)]
    assert later[0].action is Action.ALLOW  # expired
    again = next(d for d in later if d.action is Action.BLOCK).reasons[-1]
    assert again.cell == block.cell
    assert again.figures["block_ms"] == 2 * base  # escalated


def test_sequential_numbers_count_at_full_price() -> None:
    engine = Engine(PRICES)
    first = engine.request(Request("s0", T0, "shop", "login", "+447700900100", "GB", "23430"))
    second = engine.request(Request("s1", T0 + S, "shop", "login", "+447700900101", "GB",
                                    "23430"))
    assert first.action is second.action is Action.ALLOW
    assert [r.code for r in second.reasons] == ["sequential"]


def test_missing_signals_fail_open() -> None:
    engine = Engine(Prices())
    for n, to in enumerate(("+99", "+44abc123456", "", "+999123456789")):
        unknown = engine.request(Request(f"u{n}", T0, "raw", "login", to, None, None))
        assert unknown.action is Action.ALLOW
        assert unknown.reasons[0].code == "unknown_destination"
    no_price = engine.request(Request("u9", T0, "raw", "login", "+447700900123", None, None))
    assert no_price.action is Action.ALLOW
    assert no_price.reasons[0].code == "unknown_price"




def _premium(n: int) -> list[Request]:
    """A burst to one 1k range of a premium network, 2 s apart."""
    return [Request(f"p{i}", T0 + i * 2 * S, "shop", "signup", f"+29171500{10 + 7 * i:02d}",
                    "ER", "65702") for i in range(n)]  # fmt: skip


def test_a_request_taken_elsewhere_is_learned_as_it_was_taken() -> None:
    """Another engine's decisions (a node of one cluster): a code it sent counts as
    sent, even where this engine would refuse it; one it refused is never counted."""
    one = Engine(PRICES)
    decisions = [one.request(r) for r in _premium(12)]
    first = next(n for n, d in enumerate(decisions) if d.action is Action.BLOCK)
    # Fed as sent, every code: the block comes (in its state), the codes still count.
    sent = Engine(PRICES)
    for r in _premium(12):
        assert sent.request(r, Action.ALLOW).action is Action.ALLOW
    assert sent.blocks(T0 + 30 * S)  # it blocked what it was told was sent
    after = Request("next", T0 + 30 * S, "shop", "signup", "+2917150099", "ER", "65702")
    assert sent.request(after).action is Action.BLOCK
    # Fed as refused, every code: nothing was sent, so nothing is blocked.
    refused = Engine(PRICES)
    for r in _premium(12):
        assert refused.request(r, Action.BLOCK).action is Action.BLOCK
    assert refused.blocks(T0 + 30 * S) == []
    assert refused.request(after).action is Action.ALLOW
    # Taken as this engine would have taken it: the same state as deciding itself.
    same = Engine(PRICES)
    for r, d in zip(_premium(12), decisions, strict=True):
        assert same.request(r, d.action).action is d.action
    assert same.blocks(T0 + 30 * S) == one.blocks(T0 + 30 * S) and first >= 1
