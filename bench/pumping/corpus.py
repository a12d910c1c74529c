"""A labelled synthetic week of one-time-code traffic, with SMS pumping in it.

    .venv/bin/python bench/pumping/corpus.py --seed 1 --out /tmp/corpus1
    .venv/bin/python bench/pumping/corpus.py --seed 2 --days 7 --scale 0.05 --out /tmp/small

Writes the inputs of ``herald fraud replay`` (issue 11, "Offline replay"),
one JSON object per line, each file in time order:

- ``requests.jsonl``: ``{"id","ts","account","use_case","to", "country"?,
  "mcc_mnc"?,"network"?,"ip"?,"ip_country"?,"asn"?,"ip_type"?,"device_id"?,
  "platform"?}``; ``ts`` is ISO 8601 UTC with milliseconds;
- ``verifications.jsonl``: ``{"ts","request_id"}``, a code entered;
- ``receipts.jsonl``: ``{"ts","request_id","status"}``, DELIVRD | UNDELIV | EXPIRED;
- ``prices.json``: ``{"currency","country":{ISO: price},"mcc_mnc":{MCCMNC: price}}``
  per segment (every code is one segment);

and ``labels.jsonl``, which a replay must never read: ``{"id","label":
"legit"|"attack","style"?,"trap"?,"country","mcc_mnc"}`` with the true
country and network (a request may omit them) so the money of each request
is derivable from ``prices.json`` (``score.py``).

Same seed, same bytes. The week starts Monday 2026-01-05 00:00 UTC; its first
day is the defence's warm-up and holds no attack and no trap. Volumes below
are for ``--scale 1`` (about 200,000 requests in 7 days) and are multiplied
by ``--scale``; every count is drawn within +-25 % of its figure per seed,
and where and when each attack or trap happens is drawn per seed as well.

Legitimate traffic (``_world.py`` holds the map): 22,500 requests a day over
four accounts (one on the raw API with no hints, country or network at all)
and ten countries, plus twenty rarely-seen countries with about nine requests
a day each. The rate follows the hour of week in each country's local time.
Delivery: 95 % DELIVRD after seconds, 3 % UNDELIV, 1.5 % EXPIRED after hours,
0.5 % no receipt. A delivered code is typed in 5-60 s later (triangular, mode
14 s) with a probability per use case (signup 62 %, login 86 %, password
reset 72 %, transaction 92 %) times a factor per country (0.70 Nigeria to
1.00 United Kingdom); with ``--networks-differ`` also a factor per network
for six networks whose users type fewer or more codes than their country's
(0.65 India's Vi to 1.05 Germany's Telekom, ``_world.NETWORK_CONVERSION``;
the same draws, so only who types a code changes). A user who got no code or
did not type it asks again 30-120 s later in 35 % of cases, once. Logins come
85 % from returning users (same number, device, address). Each optional field is missing in 4 % of
requests; ``ip_type`` is mobile, residential, vpn or hosting. Attackers' hints
come from a mix of origins per style (``BOT_ORIGINS``: hosting, VPN,
residential proxies, mobile), a new device each request, none at all in 15 %.

Attacks (``label: attack``, ``style``); pumped numbers acknowledge delivery
(97 % DELIVRD) and never type a code, except ``self_verify``'s share:

============== ======== ================================================================
style          requests what
============== ======== ================================================================
burst          600      one 10k range of the premium network of a never-seen country,
                        within 15 minutes
slow_low       2,400    80 1k ranges in two costly seen countries and two rare ones,
                        evenly from day 2 to the end (about 17 an hour)
sweep          1,800    consecutive numbers in one network (rare country), 100 minutes;
                        55 % unallocated: UNDELIV (70 %) or EXPIRED (30 %)
curve_follow   3,600    40 % on top of Indonesia's or Nigeria's own hourly curve, into
                        its dearest network over 40 10k ranges, day 3 to the end;
                        mostly mobile addresses of the country, like real users
self_verify    1,500    the premium network of a rare country over 36 hours; 35 % of
                        the codes typed in by the attacker 0.3-1.2 s after the request
rare_countries 540      twelve rare countries at once, 45 each within one hour, 70 %
                        into their premium networks
repeat         960      four numbers in premium networks, each every 60-180 s for 8 hours
============== ======== ================================================================

Legitimate traps (``label: legit``, ``trap``):

================== ========================================================================
trap               what
================== ========================================================================
tv_campaign        1,500 extra United Kingdom sign-ups within 20 minutes after 20:00
                   (decaying), ordinary conversion
new_country_launch an account opens Kenya (never seen) at 09:00 local, 8 an hour
                   growing by 8 each day
network_outage     one network of a seen country fails for 3 hours: 80 % UNDELIV, 15 %
                   EXPIRED, no codes typed for them, users retry twice as often
app_store_feature  a whole day of 3x ``chatly`` sign-ups in every country it serves
================== ========================================================================

Every loop is bounded by the drawn counts; generation at scale 1 takes a few
seconds.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from pumping._world import (
    ACCOUNTS,
    CURRENCY,
    HOURLY,
    LAUNCH_COUNTRY,
    LEGIT_COUNTRIES,
    NETWORK_CONVERSION,
    NEVER_SEEN,
    RARE_COUNTRIES,
    USE_CASE_CONVERSION,
    WEEKDAY,
    Account,
    Country,
    Network,
    prices_document,
)

__all__ = ["ATTACK_STYLES", "START_MS", "TRAPS", "generate", "iso_ms", "main", "stakes", "write"]

#: The week's first instant (a Monday): 2026-01-05T00:00:00Z.
START_MS = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
DAY = 24 * HOUR
LEGIT_PER_DAY = 22_500
OPTIONAL_MISSING = 0.04
#: Each of these is absent from ``requests.jsonl`` with OPTIONAL_MISSING.
OPTIONAL = ("country", "mcc_mnc", "network", "ip", "ip_country", "asn", "ip_type",
            "device_id", "platform")

ATTACK_STYLES = ("burst", "slow_low", "sweep", "curve_follow", "self_verify",
                 "rare_countries", "repeat")
TRAPS = ("tv_campaign", "new_country_launch", "network_outage", "app_store_feature")

HOSTING_ASNS = ("AS14061", "AS16509", "AS24940", "AS16276", "AS63949")
VPN_ASNS = ("AS9009", "AS60068", "AS212238")


@dataclass(slots=True)
class Req:
    """One request and what happened to it (times in ms since the epoch)."""

    ts: int
    account: str
    use_case: str
    to: str
    country: Country
    network: Network
    hints: dict[str, str]
    label: str = "legit"
    style: str | None = None
    trap: str | None = None
    status: str | None = None  # receipt status, None: no receipt
    receipt_ms: int = 0
    verified_ms: int | None = None


@dataclass(slots=True)
class User:
    to: str
    country: Country
    network: Network
    hints: dict[str, str]


@dataclass(slots=True)
class Plan:
    """Where and when this seed's traps happen."""

    tv_start: int
    launch_start: int
    outage: tuple[Network, int, int]
    feature_day: int
    pools: dict[tuple[str, str], list[User]] = field(default_factory=dict)
    #: A factor per network (mcc_mnc) on its users' conversion; empty: networks
    #: convert like their country (the corpus before ``--networks-differ``).
    network_conversion: dict[str, float] = field(default_factory=dict)


# --- helpers ------------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    """ISO 8601 UTC with milliseconds: ``2026-01-05T13:04:05.123Z``."""
    stamp = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ms % 1000:03d}Z"


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:  # normal approximation: Knuth's loop would run ~lam times
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _count(rng: random.Random, figure: float, scale: float) -> int:
    """``figure`` x ``scale``, within +-25 %, at least 1."""
    return max(1, round(figure * scale * rng.uniform(0.75, 1.25)))


def _local_rate(country: Country, ms: int) -> float:
    """Relative request rate at ``ms`` in ``country``'s local time (mean 1 over a week)."""
    local = ms + int(country.utc_offset * HOUR)
    hours = local // HOUR
    return HOURLY[hours % 24] * WEEKDAY[(hours // 24) % 7] / _CURVE_MEAN


_CURVE_MEAN = sum(HOURLY) / 24 * sum(WEEKDAY) / 7


def _ip(rng: random.Random, country: Country, ip_type: str) -> tuple[str, str]:
    """An address and its ASN: a few blocks per country and type, fixed per country."""
    base = sum(ord(c) for c in country.iso + ip_type)
    block = rng.randrange(4)
    return (f"{(base * 7 + block) % 200 + 20}.{(base + block * 31) % 256}."
            f"{rng.randrange(256)}.{rng.randrange(1, 255)}", f"AS{30000 + base * 4 + block}")


def _device(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def _number(rng: random.Random, country: Country, network: Network) -> str:
    prefix = rng.choice(network.prefixes)
    return country.number(prefix, rng.getrandbits(40))


def _human_hints(rng: random.Random, account: Account, country: Country) -> dict[str, str]:
    if not account.hints:
        return {}
    ip_type = rng.choices(("mobile", "residential", "vpn", "hosting"), (55, 40, 3, 2))[0]
    ip_country = country.iso if rng.random() < 0.95 else rng.choice(LEGIT_COUNTRIES).iso
    ip, asn = _ip(rng, country, ip_type)
    return {"ip": ip, "ip_country": ip_country, "asn": asn, "ip_type": ip_type,
            "device_id": _device(rng), "platform": rng.choice(account.platforms)}


#: Where each style's requests come from (ip_type weights): hints help, never decide.
BOT_ORIGINS: dict[str, dict[str, float]] = {
    "burst": {"hosting": 0.5, "vpn": 0.2, "residential": 0.3},
    "slow_low": {"residential": 0.8, "mobile": 0.2},
    "sweep": {"vpn": 0.5, "hosting": 0.5},
    "curve_follow": {"mobile": 0.7, "residential": 0.3},
    "self_verify": {"hosting": 0.5, "vpn": 0.3, "residential": 0.2},
    "rare_countries": {"hosting": 0.4, "residential": 0.6},
    "repeat": {"vpn": 0.5, "residential": 0.5},
}
#: Share of an attacker's requests with no client hints at all (an API call from a script).
BOT_NO_HINTS = 0.15


def _bot_hints(rng: random.Random, country: Country, style: str) -> dict[str, str]:
    """Client hints of an attacker's request, a new device each time (BOT_ORIGINS)."""
    if rng.random() < BOT_NO_HINTS:
        return {}
    origins = BOT_ORIGINS[style]
    kind = rng.choices(list(origins), list(origins.values()))[0]
    if kind in ("hosting", "vpn"):
        asn = rng.choice(HOSTING_ASNS if kind == "hosting" else VPN_ASNS)
        ip = f"{rng.choice((45, 104, 138, 159, 185))}.{rng.randrange(256)}." \
             f"{rng.randrange(256)}.{rng.randrange(1, 255)}"
        ip_country = rng.choice(("US", "NL", "DE", "SG", "RU"))
    else:
        origin = country if kind == "mobile" else rng.choice(LEGIT_COUNTRIES)
        ip, asn = _ip(rng, origin, kind)
        ip_country = origin.iso
    return {"ip": ip, "ip_country": ip_country, "asn": asn, "ip_type": kind,
            "device_id": _device(rng), "platform": rng.choice(("android", "ios", "web"))}


def _deliver(rng: random.Random, req: Req, p_convert: float, *, outage: bool = False) -> None:
    """A legitimate request's receipt and, perhaps, its code typed in."""
    r = rng.random()
    if outage:
        req.status = "UNDELIV" if r < 0.80 else "EXPIRED" if r < 0.95 else "DELIVRD"
    else:
        req.status = ("DELIVRD" if r < 0.95 else "UNDELIV" if r < 0.98
                      else "EXPIRED" if r < 0.995 else None)
    if req.status == "EXPIRED":
        req.receipt_ms = req.ts + rng.randrange(HOUR, 4 * HOUR)
    else:
        req.receipt_ms = req.ts + int(1500 + rng.lognormvariate(7.6, 0.6))
    if req.status == "DELIVRD" and rng.random() < p_convert:
        req.verified_ms = req.ts + int(rng.triangular(5_000, 60_000, 14_000))


def _pump(rng: random.Random, req: Req, p_self: float = 0.0) -> None:
    """A pumped request: delivery acknowledged, a code typed only by a bot, fast."""
    req.status = "DELIVRD" if rng.random() < 0.97 else "UNDELIV"
    req.receipt_ms = req.ts + int(1200 + rng.lognormvariate(7.2, 0.5))
    if req.status == "DELIVRD" and rng.random() < p_self:
        req.verified_ms = req.ts + rng.randrange(300, 1200)


# --- legitimate traffic -------------------------------------------------------------------


def _user(rng: random.Random, plan: Plan, account: Account, country: Country,
          returning: bool) -> User:
    pool = plan.pools.setdefault((account.name, country.iso), [])
    if returning and pool and rng.random() < 0.85:
        return rng.choice(pool)
    network = rng.choice(country.networks)
    user = User(_number(rng, country, network), country, network,
                _human_hints(rng, account, country))
    pool.append(user)
    return user


def _human(rng: random.Random, plan: Plan, ts: int, account: Account, country: Country,
           use_case: str, trap: str | None = None) -> Iterator[Req]:
    """One person asking for a code, and asking again if it did not come or was not typed."""
    user = _user(rng, plan, account, country, returning=use_case != "signup")
    p_convert = min(0.98, USE_CASE_CONVERSION[use_case] * country.conversion
                    * plan.network_conversion.get(user.network.mcc_mnc, 1.0))
    net, out_start, out_end = plan.outage
    retry_p = 0.35
    for _attempt in range(2):
        outage = user.network == net and out_start <= ts < out_end
        req = Req(ts, account.name, use_case, user.to, country, user.network, user.hints,
                  trap="network_outage" if outage and trap is None else trap)
        _deliver(rng, req, p_convert, outage=outage)
        yield req
        if req.verified_ms is not None or rng.random() >= (0.7 if outage else retry_p):
            return
        ts += rng.randrange(30_000, 120_000)


def _use_case(rng: random.Random, account: Account) -> str:
    names, weights = zip(*account.use_cases, strict=True)
    return str(rng.choices(names, weights)[0])


def legit(rng: random.Random, plan: Plan, days: int, scale: float) -> Iterator[Req]:
    """The week's ordinary traffic, hour by hour (bounded: accounts x countries x hours)."""
    countries = (*LEGIT_COUNTRIES, *RARE_COUNTRIES)
    total_weight = sum(c.weight for c in countries)
    for hour in range(days * 24):
        t0 = START_MS + hour * HOUR
        for account in ACCOUNTS:
            for country in countries:
                lam = (LEGIT_PER_DAY * scale * account.share * country.weight / total_weight
                       / 24 * _local_rate(country, t0))
                for _ in range(_poisson(rng, lam)):
                    ts = t0 + rng.randrange(HOUR)
                    yield from _human(rng, plan, ts, account, country, _use_case(rng, account))


# --- traps --------------------------------------------------------------------------------


def tv_campaign(rng: random.Random, plan: Plan, scale: float) -> Iterator[Req]:
    account, country = ACCOUNTS[0], LEGIT_COUNTRIES[1]  # shopfast, GB
    for _ in range(_count(rng, 1500, scale)):
        ts = plan.tv_start + min(int(rng.expovariate(1 / 300_000)), 20 * 60_000)
        yield from _human(rng, plan, ts, account, country, "signup", "tv_campaign")


def new_country_launch(rng: random.Random, plan: Plan, days: int, scale: float
                       ) -> Iterator[Req]:
    account, country = ACCOUNTS[2], LAUNCH_COUNTRY  # chatly
    end = START_MS + days * DAY
    for t0 in range(plan.launch_start, end, HOUR):
        growth = 1 + (t0 - plan.launch_start) / DAY
        lam = 8 * scale * growth * _local_rate(country, t0)
        for _ in range(_poisson(rng, lam)):
            yield from _human(rng, plan, t0 + rng.randrange(HOUR), account, country,
                              _use_case(rng, account), "new_country_launch")


def app_store_feature(rng: random.Random, plan: Plan, scale: float) -> Iterator[Req]:
    """Twice chatly's usual sign-ups on top of them, for one day."""
    account = ACCOUNTS[2]
    countries = (*LEGIT_COUNTRIES, *RARE_COUNTRIES)
    total_weight = sum(c.weight for c in countries)
    signup_share = dict(account.use_cases)["signup"] / sum(w for _, w in account.use_cases)
    day0 = START_MS + plan.feature_day * DAY
    for t0 in range(day0, day0 + DAY, HOUR):
        for country in LEGIT_COUNTRIES:
            lam = (2 * LEGIT_PER_DAY * scale * account.share * signup_share * country.weight
                   / total_weight / 24 * _local_rate(country, t0))
            for _ in range(_poisson(rng, lam)):
                yield from _human(rng, plan, t0 + rng.randrange(HOUR), account, country,
                                  "signup", "app_store_feature")


# --- attacks ------------------------------------------------------------------------------


@dataclass(slots=True)
class Targets:
    """This seed's attacked places, drawn once so styles do not share a rare country."""

    rare: list[Country]
    never_seen: Country
    curve_country: Country


def _attack(ts: int, style: str, account: str, use_case: str, country: Country,
            network: Network, to: str, hints: dict[str, str]) -> Req:
    return Req(ts, account, use_case, to, country, network, hints, label="attack", style=style)


def _premium(country: Country) -> Network:
    return max(country.networks, key=lambda n: n.price)


def burst(rng: random.Random, t: Targets, start: int, scale: float) -> Iterator[Req]:
    country = t.never_seen
    network = _premium(country)
    range10k = country.number(rng.choice(network.prefixes), rng.getrandbits(32))[:-4]
    for _ in range(_count(rng, 600, scale)):
        req = _attack(start + rng.randrange(15 * 60_000), "burst", "chatly", "signup", country,
                      network, f"{range10k}{rng.randrange(10_000):04d}",
                      _bot_hints(rng, country, "burst"))
        _pump(rng, req)
        yield req


def slow_low(rng: random.Random, t: Targets, start: int, end: int, scale: float
             ) -> Iterator[Req]:
    countries = [LEGIT_COUNTRIES[6], LEGIT_COUNTRIES[7], t.rare[0], t.rare[1]]  # ID, NG
    ranges = []
    for _ in range(80):
        country = rng.choice(countries)
        network = rng.choice(country.networks)
        ranges.append((country, network, _number(rng, country, network)[:-3]))
    for _ in range(_count(rng, 2400, scale)):
        country, network, range1k = rng.choice(ranges)
        req = _attack(rng.randrange(start, end), "slow_low", "shopfast", "signup", country,
                      network, f"{range1k}{rng.randrange(1000):03d}",
                      _bot_hints(rng, country, "slow_low"))
        _pump(rng, req)
        yield req


def sweep(rng: random.Random, t: Targets, start: int, scale: float) -> Iterator[Req]:
    country = t.rare[2]
    network = country.networks[0]
    prefix = rng.choice(network.prefixes)
    count = _count(rng, 1800, scale)
    room = 10 ** (country.national_len - len(prefix))
    subscriber = rng.randrange(max(1, room - 2 * count))  # no wrap within the range
    ts = start
    for _ in range(count):
        ts += rng.randrange(1, 2 * 100 * 60_000 // count)
        subscriber += 1 if rng.random() < 0.8 else 2
        req = _attack(ts, "sweep", "paynow", "login", country, network,
                      country.number(prefix, subscriber), _bot_hints(rng, country, "sweep"))
        if rng.random() < 0.55:  # unallocated: the network cannot deliver
            req.status = "UNDELIV" if rng.random() < 0.7 else "EXPIRED"
            req.receipt_ms = ts + (rng.randrange(2_000, 30_000) if req.status == "UNDELIV"
                                   else rng.randrange(HOUR, 4 * HOUR))
        else:
            _pump(rng, req)
        yield req


def curve_follow(rng: random.Random, t: Targets, start: int, end: int, scale: float
                 ) -> Iterator[Req]:
    country = t.curve_country
    network = _premium(country)
    ranges = [_number(rng, country, network)[:-4] for _ in range(40)]
    countries = (*LEGIT_COUNTRIES, *RARE_COUNTRIES)
    per_hour = (0.4 * LEGIT_PER_DAY * scale * country.weight
                / sum(c.weight for c in countries) / 24)
    for t0 in range(start, end, HOUR):
        for _ in range(_poisson(rng, per_hour * _local_rate(country, t0))):
            req = _attack(t0 + rng.randrange(HOUR), "curve_follow", "shopfast", "signup",
                          country, network, f"{rng.choice(ranges)}{rng.randrange(10_000):04d}",
                          _bot_hints(rng, country, "curve_follow"))
            _pump(rng, req)
            yield req


def self_verify(rng: random.Random, t: Targets, start: int, scale: float) -> Iterator[Req]:
    country = t.rare[3]
    network = _premium(country)
    ranges = [_number(rng, country, network)[:-4] for _ in range(20)]
    for _ in range(_count(rng, 1500, scale)):
        req = _attack(start + rng.randrange(36 * HOUR), "self_verify", "chatly", "signup",
                      country, network, f"{rng.choice(ranges)}{rng.randrange(10_000):04d}",
                      _bot_hints(rng, country, "self_verify"))
        _pump(rng, req, p_self=0.35)
        yield req


def rare_countries(rng: random.Random, t: Targets, start: int, scale: float) -> Iterator[Req]:
    for country in t.rare[6:18]:
        for _ in range(_count(rng, 45, scale)):
            network = _premium(country) if rng.random() < 0.7 else country.networks[0]
            req = _attack(start + rng.randrange(HOUR), "rare_countries", "shopfast", "signup",
                          country, network, _number(rng, country, network),
                          _bot_hints(rng, country, "rare_countries"))
            _pump(rng, req)
            yield req


def repeat(rng: random.Random, t: Targets, start: int, scale: float) -> Iterator[Req]:
    end = start + 8 * HOUR
    for country in (t.rare[4], t.rare[5], t.rare[4], t.rare[5]):
        network = _premium(country)
        to = _number(rng, country, network)
        ts = start + rng.randrange(10 * 60_000)
        gap = (60_000 / scale, 180_000 / scale)
        while ts < end:  # bounded: each step moves at least 60 s / scale
            req = _attack(ts, "repeat", "paynow", "login", country, network, to,
                          _bot_hints(rng, country, "repeat"))
            _pump(rng, req)
            yield req
            ts += rng.randrange(int(gap[0]), int(gap[1]))


# --- the week -----------------------------------------------------------------------------


def _some_time(rng: random.Random, days: int, first_day: int = 1) -> int:
    """A random whole minute from ``first_day`` to the second-to-last day's end."""
    last = max(first_day + 1, days - 1)
    return START_MS + rng.randrange(first_day * DAY, last * DAY, 60_000)


def generate(seed: int, days: int = 7, scale: float = 1.0, *,
             networks_differ: bool = False) -> list[Req]:
    """Every request of the corpus, in time order (deterministic per arguments).
    ``networks_differ``: some networks' users convert unlike their country's
    (NETWORK_CONVERSION); the draws are the same, so only who types a code changes."""
    if days < 3:
        raise ValueError("days: at least 3 (a warm-up day and room for attacks and traps)")
    rng = random.Random(seed)
    end = START_MS + days * DAY
    rare = list(RARE_COUNTRIES)
    rng.shuffle(rare)
    targets = Targets(rare, rng.choice(NEVER_SEEN), rng.choice(LEGIT_COUNTRIES[6:8]))
    outage_country = rng.choice([LEGIT_COUNTRIES[i] for i in (1, 3, 4, 5, 9)])
    outage_start = START_MS + rng.randrange(1, days - 1) * DAY + rng.randrange(6, 12) * HOUR
    plan = Plan(
        tv_start=START_MS + rng.randrange(1, days - 1) * DAY + 20 * HOUR,
        launch_start=START_MS + rng.randrange(2, max(3, days - 2)) * DAY + 6 * HOUR,
        outage=(rng.choice(outage_country.networks), outage_start, outage_start + 3 * HOUR),
        feature_day=rng.randrange(1, days),
        network_conversion=dict(NETWORK_CONVERSION) if networks_differ else {},
    )
    # Each source gets its own generator, so one's volume does not move another's draws.
    sources: list[Callable[[random.Random], Iterator[Req]]] = [
        lambda r: legit(r, plan, days, scale),
        lambda r: tv_campaign(r, plan, scale),
        lambda r: new_country_launch(r, plan, days, scale),
        lambda r: app_store_feature(r, plan, scale),
        lambda r: burst(r, targets, _some_time(r, days), scale),
        lambda r: slow_low(r, targets, START_MS + DAY + 3 * HOUR, end, scale),
        lambda r: sweep(r, targets, _some_time(r, days), scale),
        lambda r: curve_follow(r, targets, START_MS + 2 * DAY, end, scale),
        lambda r: self_verify(r, targets, _some_time(r, days - 1), scale),
        lambda r: rare_countries(r, targets, _some_time(r, days), scale),
        lambda r: repeat(r, targets, _some_time(r, days), scale),
    ]
    requests: list[Req] = []
    for index, source in enumerate(sources):
        requests.extend(source(random.Random(seed * 1_000 + index)))
    requests = [r for r in requests if r.ts < end]
    requests.sort(key=lambda r: (r.ts, r.to, r.label))
    return requests


def _hidden(rng: random.Random, req: Req) -> dict[str, str]:
    """The optional fields of a request, some of them missing."""
    fields: dict[str, str] = {}
    if req.account == "rawsender":
        return fields
    fields = {"country": req.country.iso, "mcc_mnc": req.network.mcc_mnc,
              "network": req.network.name, **req.hints}
    return {k: v for k, v in fields.items() if rng.random() >= OPTIONAL_MISSING}


def write(requests: list[Req], out: Path, seed: int) -> None:
    """The five files of the corpus in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed * 1_000 + 999)
    receipts: list[tuple[int, int, str]] = []
    verifications: list[tuple[int, int]] = []
    width = len(str(len(requests)))
    with (out / "requests.jsonl").open("wb") as rf, (out / "labels.jsonl").open("wb") as lf:
        for n, req in enumerate(requests):
            rid = f"r{n:0{width}d}"
            row: dict[str, str] = {"id": rid, "ts": iso_ms(req.ts), "account": req.account,
                                   "use_case": req.use_case, "to": req.to}
            row.update(_hidden(rng, req))
            rf.write(orjson.dumps(row) + b"\n")
            label: dict[str, str] = {"id": rid, "label": req.label}
            if req.style:
                label["style"] = req.style
            if req.trap:
                label["trap"] = req.trap
            label["country"] = req.country.iso
            label["mcc_mnc"] = req.network.mcc_mnc
            lf.write(orjson.dumps(label) + b"\n")
            if req.status is not None:
                receipts.append((req.receipt_ms, n, req.status))
            if req.verified_ms is not None:
                verifications.append((req.verified_ms, n))
    receipts.sort()
    verifications.sort()
    with (out / "receipts.jsonl").open("wb") as f:
        f.writelines(orjson.dumps({"ts": iso_ms(ts), "request_id": f"r{n:0{width}d}",
                                   "status": status}) + b"\n" for ts, n, status in receipts)
    with (out / "verifications.jsonl").open("wb") as f:
        f.writelines(orjson.dumps({"ts": iso_ms(ts), "request_id": f"r{n:0{width}d}"}) + b"\n"
                     for ts, n in verifications)
    (out / "prices.json").write_bytes(orjson.dumps(prices_document(), option=orjson.OPT_INDENT_2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="volume factor (1: about 200,000 requests in 7 days)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--networks-differ", action="store_true",
                        help="some networks' users convert unlike their country's "
                             "(_world.NETWORK_CONVERSION)")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 10:
        parser.error("--scale: between 0 and 10")
    requests = generate(args.seed, args.days, args.scale, networks_differ=args.networks_differ)
    write(requests, args.out, args.seed)
    print(f"{len(requests)} requests in {args.out}")
    for name, (count, stake) in sorted(stakes(requests).items()):
        print(f"  {name:<20} {count:>7} requests {stake:>10,.2f} {CURRENCY} delivered")
    return 0


def stakes(requests: list[Req]) -> dict[str, tuple[int, float]]:
    """Requests and money delivered (one segment each) per attack style, trap and "legit"."""
    totals: dict[str, tuple[int, float]] = {}
    for req in requests:
        name = req.style or req.trap or req.label
        count, money = totals.get(name, (0, 0.0))
        totals[name] = (count + 1, money + (req.network.price if req.status == "DELIVRD" else 0))
    return totals


if __name__ == "__main__":
    sys.exit(main())
