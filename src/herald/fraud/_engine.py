"""The pumping-defence engine: a pure state machine fed requests, receipts and
verifications in time order (issue 11, "Pumping defence").

Theory of operation. Every request falls into five *cells* of the destination
hierarchy, widest first: country, network (``mcc_mnc``, "?" unknown), 10k
range (the number without its last four digits), 1k range, number. Each cell
keeps, decaying with a half-life of its level:

- ``excess``: money at risk beyond what expected conversion explains. A sent
  code adds ``price x p`` (``p`` its expected conversion); a code typed in at
  human speed takes ``price`` back; an undelivered code (UNDELIV, EXPIRED)
  takes its ``price x p`` back, because an outage is not pumping: pumped
  ranges acknowledge delivery. So real users (who convert as expected) keep
  the excess near zero, and a code in flight counts at once: a burst to a
  premium range trips before its first receipt.
- ``volume``: money sent while the cell looked healthy; the cell's *budget*
  is ``max(floor, share x volume)`` (LEVELS): cheap, busy domestic cells get
  latitude, a never-seen premium range gets a few dollars.

A request is blocked when a cell of it is blocked or its excess would pass
its budget; then the narrowest such cell is blocked (the first found, from
the number up) for its level's ``block_ms x 2**strikes``: blocks expire and
escalate.
The blocked cell's excess is taken off the wider cells: the block explains
that loss, so a network is not blocked for what its attacked ranges did.
While the ranges or the number of a request look attacked (excess over half
the budget) it teaches no cell its volume and no conversion ("a cell that
looks attacked stops teaching its baseline"); country and network are not
asked, or a country whose conversion is not learned yet would never learn.

*Sources.* The ranges are also kept as seen from each source (account, use
case): the source's view is judged first, and the whole range only against
SCOPED_WHOLE x its budget, so an attack through one source closes the range to
that source alone. A source's view of a network is an *alarm*: its loss (over
what chance explains: ALARM_Z standard deviations of codes converting at ``p``) raises
that source's pressure (the ranges' budgets shrink, and ranges that never
converted get strict floors) without refusing anything itself. Its sounding
counts only once the request that sounded it is judged: a chance loss alone
never reaches the strict floors, which need a second recent block (seed 75).
Client hints
make two more cells, the address block (/24 and ASN type) and the device,
blocked when they lose money over many numbers and never converted; their
budgets follow their conversion shrunk toward their parent's.

*Graduated.* A number's first time over budget throttles it (one code every
THROTTLE_MS; a bot asking on turns it into a block); other cells are blocked.
Country and network budgets also keep their usual volume for the hour of week
(hour of week shrunk toward hour of day).

Countries with little healthy volume also share one *unfamiliar* cell per
source: when its loss, or the full price of its codes in flight (sent in the
last minutes and not typed in), passes its budget spread over countries (many
rarely-seen countries pumped at once) the source is on alert for a while,
refusing codes to rarely-seen countries that have not converted at human speed
since the alert began (or, the source's own users, in the last hour), while a
launch, whose users convert, goes on.

Expected conversion ``p`` of a request: the conversion of its (account, use
case), learned with a Beta prior, times the lift of its destination: the
country's (its conversions over what its sources predicted, shrunk toward 1),
the network's shrunk toward the country's, the 10k range's toward the
network's (``Level.lift_weight``), each kept within LIFT_RANGE. A network whose
users type fewer codes (late SMS, no autofill) is not taken for a loss. Codes typed in faster than
``HUMAN_MS`` are a bot's: they count as lost and the number is never trusted.
A number whose code was typed at human speed is trusted and always allowed.
Consecutive numbers (a sweep) count at full price. Missing signals fail open:
an unknown country or price allows the request with the reason why.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import phonenumbers

from herald.fraud._events import Action, Decision, Reason, Receipt, Request, Verification

__all__ = ["HUMAN_MS", "LEVELS", "MODES", "Block", "Controls", "Engine", "Level", "Prices"]

#: A code typed in sooner than this after the request was not typed by a person
#: (reading an SMS and typing six digits takes a human several seconds).
HUMAN_MS = 2_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ENFORCE, MONITOR = "enforce", "monitor"
MODES = (ENFORCE, MONITOR)
#: No block lasts longer than this, however often the cell reoffends.
MAX_BLOCK_MS = 7 * 24 * HOUR_MS
#: Two numbers this close in one 1k range within SEQUENCE_MS look like a sweep.
SEQUENCE_GAP = 3
SEQUENCE_MS = 15 * 60_000
#: Prior of the conversion of a source never seen (account, use case).
PRIOR_CONVERSION = 0.6
PRIOR_WEIGHT = 20.0
#: Destination cells differ in conversion, not by more than this (a lift on the
#: source's conversion): a country, network or range whose codes nobody types
#: (all pumped) must not learn that this is normal.
LIFT_RANGE = (0.5, 1.5)
#: Conversions may take a cell's excess this far below zero (a share of its
#: budget): good history buys a little latitude, never a whole budget's worth.
CREDIT_LIMIT = 0.25
#: Each recent block of a range under a network divides the budget of the
#: network's other ranges by (1 + PRESSURE x blocks): an attack spread over many
#: ranges of one network is met sooner in each new range.
PRESSURE = 0.5
#: ... but a range always lets this many codes of its own risk through, and
#: only its loss of the last hours counts (RECENT_MS half-life): real users
#: come to a range a few times a week, an attack many times a day.
PRESSURE_FLOOR_CODES = 1.5
RECENT_MS = 12 * HOUR_MS
#: Hour-of-week profiles (country and network): each new observation of an hour
#: moves it by this share (after the first few); an hour of week counts like this
#: many of its hour of day (its parent) before it is trusted on its own; a budget
#: keeps this share of the hour's expected volume when the cell's own has decayed.
PROFILE_RATE = 0.3
PROFILE_WEIGHT = 2.0
PROFILE_TRUST = 0.8
#: The epoch began on a Thursday: hour 0 of the week is Monday 00:00 UTC.
WEEK_OFFSET_H = 72
#: Throttle (numbers): the first time a number passes its budget it may still get
#: one code every THROTTLE_MS for its level's block time; THROTTLE_WAITS codes held
#: in one throttle turn it into a block (a bot asks on, a person waits).
THROTTLE_MS = 30 * 60_000
THROTTLE_WAITS = 3
#: A sent code is forgotten this long after it was sent (its receipt or code
#: will not come any more); cells, trusted numbers: see Engine(max_cells=...).
SENT_TTL_MS = 48 * HOUR_MS
#: Codes in flight: a person types a code within a minute or two of asking, so what
#: was sent in the last few minutes and not typed in is money at risk at its full
#: price, before any expected conversion excuses it (issue 11: "a limit on the cost
#: of unconfirmed SMS in flight"). Half-life of that sum.
FLIGHT_MS = 5 * 60_000
#: A source's alarm on a network sounds only for a loss that chance does not explain:
#: this many standard deviations of the excess of codes converting as expected.
ALARM_Z = 3.0
#: A price when neither the network nor the country has one (fail open, but count).
DEFAULT_PRICE = 0.05


@dataclass(frozen=True, slots=True)
class Level:
    name: str
    floor: float  # smallest budget, account currency
    share: float  # budget as a share of the healthy volume
    half_life_ms: int
    #: Smallest budget in codes at the request's own risk: a number may go
    #: unconverted twice (a user asking again) before its third code is refused.
    floor_codes: float = 0.0
    #: First block of a cell of this level; each new block of it doubles.
    block_ms: int = 3_600_000
    #: When a block expires the cell's excess is cut to this share of its
    #: budget: an attacker who comes back trips again within a code or two,
    #: real users who caused a false block get some latitude back.
    reopen: float = 0.5
    #: Learn the healthy volume by hour of week (Cell.expected_volume).
    profile: bool = False
    #: (floor, floor_codes) while the cell has never converted at human speed.
    cold: tuple[float, float] | None = None
    #: Half-lives of the ranges above (numbers only), see _Cell.shadow.
    shadows: tuple[int, ...] = ()
    #: Half-life of ``flight``, the full price of the codes sent and not yet typed
    #: in nor undelivered (0: not kept), see Engine._unfamiliar_judge.
    flight_ms: int = 0
    #: The budget is at least this many standard deviations of what chance explains
    #: of the excess (``noise``: the variance of codes converting at ``p``); 0: not kept.
    noise_z: float = 0.0
    #: The cell learns its own conversion (a lift on its sources'), shrunk toward its
    #: parent's with this many expected conversions of prior (0: it takes its parent's).
    lift_weight: float = 0.0


#: Widest first. Narrow cells keep a long memory (slow-and-low attacks come back
#: to a range every few hours); wide ones follow the day.
LEVELS = (
    Level("country", 3.0, 0.20, 6 * HOUR_MS, profile=True, flight_ms=FLIGHT_MS,
          lift_weight=10.0),
    Level("network", 2.0, 0.20, 6 * HOUR_MS, profile=True, lift_weight=20.0),
    # An attacked range or number sees a code every hour or two: a one-hour
    # block would never meet it again.
    Level("range10k", 0.8, 0.30, 72 * HOUR_MS, floor_codes=3.0, block_ms=12 * HOUR_MS,
          reopen=0.8, lift_weight=40.0),
    Level("range1k", 0.6, 0.30, 96 * HOUR_MS, floor_codes=3.0, block_ms=12 * HOUR_MS,
          reopen=0.8),
    Level("number", 0.8, 0.50, 24 * HOUR_MS, floor_codes=2.5, block_ms=12 * HOUR_MS,
          shadows=(72 * HOUR_MS, 96 * HOUR_MS), flight_ms=FLIGHT_MS),
)
#: Levels also kept per source (account, use case): an attack through one source
#: blocks that source's view of a range, and the range stays open to the others.
SCOPED_DEPTHS = (2, 3)
#: A source's view of a range sees little real traffic and blocks only that
#: source: while neither it nor the whole range ever converted and the network
#: is under attack (a recent block), its floors are strict (``cold``).
SCOPED_LEVELS = (
    Level("range10k", 0.8, 0.30, 72 * HOUR_MS, floor_codes=3.0,
          block_ms=48 * HOUR_MS, reopen=0.8, cold=(0.12, 1.0)),
    Level("range1k", 0.6, 0.30, 96 * HOUR_MS, floor_codes=3.0,
          block_ms=48 * HOUR_MS, reopen=0.8, cold=(0.12, 1.0)),
)
#: The whole range is judged against this many times its budget, so that the
#: source that explains its loss trips first.
SCOPED_WHOLE = 1.5
#: All the countries with fewer healthy requests than UNFAMILIAR_COUNT (decayed
#: like their volume: about a day's worth of a country seeing 8 an hour) together:
#: many rarely-seen countries pumped at once each stay under their own budget.
UNFAMILIAR = Level("unfamiliar", 1.5, 0.10, 6 * HOUR_MS, flight_ms=FLIGHT_MS)
UNFAMILIAR_COUNT = 40.0
#: ... and then each of them whose own excess passes this share of its budget
#: is blocked: a launch, whose users convert, stays well under it.
UNFAMILIAR_SUSPECT = 0.3
#: ... and, during an alert, has had one typed at human speed since it began, or
#: this recently of the alerted source's own codes (its users there: a launch).
UNFAMILIAR_HIT_MS = HOUR_MS
#: The group goes on alert only for a loss spread over countries: the request's
#: country holds less than this share of it.
UNFAMILIAR_SPREAD = 0.5
#: An alert lasts at most this long: it refuses codes no cell has judged yet.
UNFAMILIAR_MAX_MS = 2 * HOUR_MS


#: Client sources: an address block (/24 with its ASN type) and a device. They
#: carry loss like the destination cells and are blocked when a bot reuses them
#: across ranges; their budgets follow how they convert against their parent
#: (CLIENT_WEIGHT codes of the parent's conversion as a prior, a factor within
#: CLIENT_TRUST).
SOURCE_LEVELS = (
    Level("ip_block", 3.0, 0.30, 24 * HOUR_MS, floor_codes=8.0, block_ms=6 * HOUR_MS),
    Level("device", 0.8, 0.50, 24 * HOUR_MS, floor_codes=3.0, block_ms=12 * HOUR_MS),
)
#: A network as seen from one source (Engine._sound).
ALARM = Level("alarm", 2.0, 0.20, 24 * HOUR_MS, reopen=0.5, noise_z=ALARM_Z)
ALARM_MS = HOUR_MS
#: The range levels, whole and as seen from a source (a trusted number's loss is its own).
RANGES = frozenset(("range10k", "range1k"))
#: Cells that learn no volume (no latitude) while they look attacked themselves.
GUARDED = frozenset((*(level.name for level in SOURCE_LEVELS), ALARM.name))
CLIENT_WEIGHT = 10.0
CLIENT_TRUST = (0.5, 1.5)


@dataclass(frozen=True, slots=True)
class Controls:
    """A customer's own rules for its requests (issue 11, "Customer controls").

    ``allow``, ``deny``: E.164 numbers or prefixes (``+44``, ``+4477009``); a denied
    number is refused, an allowed one skips the defence (deny wins). ``countries``:
    geo permissions, ISO codes; None: every country. ``ceilings``: per country, the
    most money (account currency) sent per UTC day.
    """

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    countries: frozenset[str] | None = None
    ceilings: dict[str, float] = field(default_factory=dict)


def _listed(prefixes: tuple[str, ...], number: str) -> str | None:
    return next((prefix for prefix in prefixes if number.startswith(prefix)), None)


def _block24(ip: str | None) -> str | None:
    """The /24 of an IPv4 address (``192.0.2``), the /48 of an IPv6 one; None if neither."""
    if not ip:
        return None
    if ip.count(".") == 3:
        return ip.rsplit(".", 1)[0]
    if ":" in ip:
        return ":".join(ip.split(":")[:3])
    return None


def _retry_after(reason: Reason) -> int:
    return int(reason.figures.get("retry_after_ms", 0)) if reason.code == "throttle" else 0


@dataclass(frozen=True, slots=True)
class Prices:
    """Price per segment by network and by country (``prices.json``)."""

    currency: str = "USD"
    country: dict[str, float] = field(default_factory=dict)
    mcc_mnc: dict[str, float] = field(default_factory=dict)

    def of(self, country: str, mcc_mnc: str | None) -> float | None:
        if mcc_mnc is not None and (price := self.mcc_mnc.get(mcc_mnc)) is not None:
            return price
        return self.country.get(country)


class _Cell:
    __slots__ = ("blocks", "count", "daily", "excess", "flight", "hits", "key", "last",
                 "last_hit", "last_number", "last_number_ms", "level", "lift_hits",
                 "lift_trials", "next_ok", "noise", "recent", "shadow", "strikes",
                 "throttle_until", "trials", "until", "volume", "waits", "weekly")

    def __init__(self, key: str, level: Level) -> None:
        self.key = key
        self.level = level
        self.excess = 0.0
        self.recent = 0.0  # the same as excess, with a half-life of RECENT_MS
        #: The same again with the half-lives of the ranges (numbers only): what a
        #: range holds of this number's own loss.
        self.shadow = [0.0] * len(level.shadows)
        self.volume = 0.0
        self.flight = 0.0  # full price of the codes in flight (level.flight_ms)
        self.noise = 0.0  # variance of the excess under expected conversion (level.noise_z)
        self.count = 0.0  # healthy requests, decayed like volume
        self.blocks = 0.0  # blocks of narrower cells under this one, decayed
        self.hits = 0  # codes typed in at human speed
        self.last_hit = -HOUR_MS * 1_000_000  # when the last of them was typed
        self.last = 0
        self.until = 0
        self.strikes = 0
        self.last_number = -1
        self.last_number_ms = 0
        self.trials = 0.0  # delivered codes that may teach conversion (source cells)
        #: Its conversion (level.lift_weight): codes typed in at human speed that teach,
        #: and what their sources' conversion predicted of them (delivered codes).
        self.lift_hits = 0.0
        self.lift_trials = 0.0
        #: Throttle (numbers): until when, when the next code may pass, codes held.
        self.throttle_until = 0
        self.next_ok = 0
        self.waits = 0
        #: Healthy volume by hour of day and hour of week (country and network):
        #: [value, observations] per hour, see expected_volume.
        self.daily: list[list[float]] | None = None
        self.weekly: list[list[float]] | None = None
        if level.profile:
            self.daily = [[0.0, 0.0] for _ in range(24)]
            self.weekly = [[0.0, 0.0] for _ in range(168)]

    def decay(self, now: int) -> None:
        if self.until and self.until <= now:  # a block expired: a fresh start, its
            self.until = 0                    # strikes kept (the next block is longer)
            self.excess = min(self.excess, self.level.reopen * self.budget())
            self.recent = min(self.recent, self.excess)
        if now > self.last:
            if self.weekly is not None and now // HOUR_MS != self.last // HOUR_MS:
                self._learn_hour()
            factor = 0.5 ** ((now - self.last) / self.level.half_life_ms)
            self.excess *= factor
            self.recent *= 0.5 ** ((now - self.last) / RECENT_MS)
            for n, half_life in enumerate(self.level.shadows):
                self.shadow[n] *= 0.5 ** ((now - self.last) / half_life)
            if self.level.flight_ms:
                self.flight *= 0.5 ** ((now - self.last) / self.level.flight_ms)
            self.noise *= factor * factor  # a variance: weights squared
            self.volume *= factor
            self.count *= factor
            self.blocks *= factor
            self.last = now

    def _learn_hour(self) -> None:
        """Fold the healthy volume of the hour that just ended into the profiles."""
        assert self.daily is not None and self.weekly is not None
        if self.last <= 0 or self.volume <= 0:
            return
        hour = self.last // HOUR_MS
        for slot in (self.daily[hour % 24], self.weekly[(hour + WEEK_OFFSET_H) % 168]):
            slot[1] += 1
            slot[0] += (self.volume - slot[0]) * max(PROFILE_RATE, 1 / slot[1])

    def expected_volume(self, now: int) -> float:
        """The healthy volume this cell usually has at this hour of the week: the
        hour of week shrunk toward the hour of day (its parent) by how often each
        was seen, 0 before any."""
        if self.daily is None or self.weekly is None:
            return 0.0
        hour = now // HOUR_MS
        day_value, day_seen = self.daily[hour % 24]
        week_value, week_seen = self.weekly[(hour + WEEK_OFFSET_H) % 168]
        if not day_seen:
            return 0.0
        return (week_seen * week_value + PROFILE_WEIGHT * day_value) / (week_seen
                                                                         + PROFILE_WEIGHT)

    def budget(self, at_risk: float = 0.0, cold: bool = False, now: int = 0) -> float:
        level = self.level
        volume = self.volume
        if self.daily is not None and now:  # an hour that is usually busier keeps its room
            volume = max(volume, PROFILE_TRUST * self.expected_volume(now))
        if cold and level.cold is not None:  # never converted: the strict floors
            return max(level.cold[0], level.share * volume, level.cold[1] * at_risk)
        if level.noise_z:
            return max(level.floor, level.share * volume, level.noise_z * math.sqrt(self.noise))
        return max(level.floor, level.share * volume, level.floor_codes * at_risk)

    def healthy(self) -> bool:
        return self.excess < 0.5 * self.budget()

    def credit(self, amount: float, sent: int, now: int) -> None:
        """Take back ``amount`` added at ``sent`` (decayed like the rest)."""
        self.decay(now)
        self.excess -= amount * 0.5 ** ((now - sent) / self.level.half_life_ms)
        self.excess = max(self.excess, -CREDIT_LIMIT * self.budget())
        self.recent -= amount * 0.5 ** ((now - sent) / RECENT_MS)
        self.recent = max(self.recent, -CREDIT_LIMIT * self.budget())
        for n, half_life in enumerate(self.level.shadows):
            self.shadow[n] = max(self.shadow[n] - amount * 0.5 ** ((now - sent) / half_life),
                                 -CREDIT_LIMIT * self.budget())

    def land(self, price: float, variance: float, sent: int, now: int) -> None:
        """A code sent at ``sent`` is no longer in flight (typed in or undelivered);
        ``variance``: what it added to ``noise`` (0: keep it, its outcome is known
        only as a conversion)."""
        self.decay(now)
        if self.level.flight_ms:
            self.flight = max(0.0, self.flight - price * 0.5 ** ((now - sent)
                                                                  / self.level.flight_ms))
        if variance and self.level.noise_z:
            self.noise = max(0.0, self.noise - variance * 0.25 ** ((now - sent)
                                                                   / self.level.half_life_ms))

    def add(self, amount: float, sent: int, now: int) -> None:
        """Add ``amount`` at risk since ``sent`` (decayed like the rest)."""
        self.decay(now)
        self.excess += amount * 0.5 ** ((now - sent) / self.level.half_life_ms)
        self.recent += amount * 0.5 ** ((now - sent) / RECENT_MS)
        for n, half_life in enumerate(self.level.shadows):
            self.shadow[n] += amount * 0.5 ** ((now - sent) / half_life)


@dataclass(slots=True)
class _Sent:
    ts: int
    number: str
    source: tuple[str, str]
    country: str
    cells: tuple[_Cell, ...]
    price: float
    at_risk: float  # what it added to each cell's excess
    teaches: bool  # its outcome may teach conversion (decided when it was sent)
    lifts: tuple[_Cell, ...]  # the destination cells that learn their conversion
    delivered: bool = False
    settled: bool = False  # converted or undelivered: no longer at risk


@dataclass(slots=True)
class _Rate:
    """A conversion with a prior: (hits + prior x weight) / (trials + weight)."""

    hits: float = 0.0
    trials: float = 0.0

    def value(self, prior: float, weight: float) -> float:
        return (self.hits + prior * weight) / (self.trials + weight)


def _region(number: str) -> str | None:
    digits = number.lstrip("+")
    if not digits.isdigit():
        return None
    for length in (1, 2, 3):  # E.164 country codes are prefix-free
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length]))
        if regions:
            return regions[0]
    return None


def _teaches(cells: tuple[_Cell, ...]) -> bool:
    """Whether a request's outcome may teach conversion: not when its ranges or
    number look attacked. Country and network are not asked: before their
    conversion is learned they look attacked to everyone, and would never learn."""
    return all(cell.healthy() for cell in cells[2:5])


@dataclass(frozen=True, slots=True)
class Block:
    """A cell the engine refuses (``kind`` ``block``) or throttles (``throttle``) until
    ``until`` (ms), named as in a decision's reasons; ``strikes`` so far."""

    cell: str
    kind: str
    until: int
    strikes: int


class Engine:
    """Feed events in time order; ``request`` answers each code with a Decision.

    ``mode``: ``enforce`` (the default) or ``monitor``, which allows every request and
    records on its decision what enforce would have done (``Decision.would``), its
    state moving as if every code was sent. ``controls``: the customers' own rules per
    account (``"*"``: every account without its own). ``max_cells``: memory bound;
    past it the cells touched longest ago are forgotten (blocked ones last), and as
    many trusted numbers are kept.
    """

    def __init__(self, prices: Prices, *, mode: str = "enforce",
                 controls: Mapping[str, Controls] | None = None,
                 max_cells: int = 1_000_000) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: one of {', '.join(MODES)}, not {mode!r}")
        if max_cells < 100:
            raise ValueError("max_cells: at least 100")
        self.prices = prices
        self.mode = mode
        self.controls = dict(controls or {})
        self.max_cells = max_cells
        self._cells: list[dict[str, _Cell]] = [{} for _ in LEVELS]
        self._sent: dict[str, _Sent] = {}
        self._sent_order: deque[tuple[int, str]] = deque()  # (ts, id), oldest first
        self._sources: dict[tuple[str, str], _Rate] = {}
        #: Numbers that typed a code at human speed (True) or faster (False), oldest first.
        self._numbers: dict[str, bool] = {}
        #: Ranges as seen from one source (account, use case): SCOPED_DEPTHS.
        self._scoped: list[dict[str, _Cell]] = [{} for _ in SCOPED_DEPTHS]
        #: Client sources: address block (/24, by ASN type) and device; SOURCE_LEVELS.
        self._clients: list[dict[str, _Cell]] = [{} for _ in SOURCE_LEVELS]
        self._unfamiliar: dict[tuple[str, str], _Cell] = {}
        #: When each source's unfamiliar group last went on alert (ms), and when a code
        #: of the source was last typed at human speed in each country (group key, ISO).
        self._alerted: dict[str, int] = {}
        self._own_hits: dict[tuple[str, str], int] = {}
        #: A network as seen from one source: its loss raises the network's pressure.
        self._alarms: dict[str, _Cell] = {}
        #: Money sent today per (account, country), for the customers' ceilings.
        self._spent: dict[tuple[str, str], tuple[int, float]] = {}
        #: Cells ever blocked or throttled, by name: what :meth:`blocks` looks at
        #: (not every cell); expired ones are dropped there.
        self._held: dict[str, _Cell] = {}

    # --- memory ---------------------------------------------------------------------------

    def cell_count(self) -> int:
        """Cells held (every level, scoped and client cells included)."""
        return sum(len(cells) for cells in (*self._cells, *self._scoped, *self._clients,
                                            self._alarms))

    def memory(self) -> dict[str, int]:
        """What the engine holds, by kind (all bounded: max_cells, SENT_TTL_MS)."""
        return {"cells": self.cell_count(), "sent": len(self._sent),
                "numbers": len(self._numbers)}

    def _evict(self, now: int) -> None:
        """Back to 3/4 of max_cells: forget the cells touched longest ago, blocked last."""
        tables = (*self._cells, *self._scoped, *self._clients, self._alarms)
        ranked = sorted(((cell.until > now or cell.throttle_until > now, cell.last, n, key)
                         for n, table in enumerate(tables) for key, cell in table.items()))
        for _blocked, _last, n, key in ranked[:len(ranked) - self.max_cells * 3 // 4]:
            del tables[n][key]

    def _forget_sent(self, now: int) -> None:
        order = self._sent_order
        while order and now - order[0][0] >= SENT_TTL_MS:
            self._sent.pop(order.popleft()[1], None)

    def _remember(self, number: str, human: bool) -> None:
        numbers = self._numbers
        numbers.pop(number, None)
        numbers[number] = human
        while len(numbers) > self.max_cells:
            del numbers[next(iter(numbers))]

    def blocks(self, now: int) -> list[Block]:
        """The blocks and throttles in force at ``now`` (ms), the longest first."""
        found = []
        for name, cell in list(self._held.items()):
            if cell.until > now:
                found.append(Block(name, "block", cell.until, cell.strikes))
            elif cell.throttle_until > now:
                found.append(Block(name, "throttle", cell.throttle_until, cell.strikes))
            else:
                del self._held[name]
        found.sort(key=lambda b: (-b.until, b.cell))
        return found

    def _hold(self, cell: _Cell) -> None:
        self._held[f"{cell.level.name}:{cell.key}"] = cell

    # --- requests -------------------------------------------------------------------------

    def _cell(self, depth: int, key: str) -> _Cell:
        cells = self._cells[depth]
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _Cell(key, LEVELS[depth])
        return cell

    def _scoped_cell(self, n: int, key: str) -> _Cell:
        cells = self._scoped[n]
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _Cell(key, SCOPED_LEVELS[n])
        return cell

    def _client_cells(self, req: Request) -> tuple[_Cell, ...]:
        """The request's address block and device cells (none when the hints are missing)."""
        found = []
        block = _block24(req.ip)
        for n, key in enumerate((block and f"{req.ip_type or '?'}|{block}",
                                 req.device_id and f"device|{req.device_id}")):
            if key:
                cells = self._clients[n]
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = _Cell(key, SOURCE_LEVELS[n])
                found.append(cell)
        return tuple(found)

    def expected_conversion(self, req: Request) -> float:
        """The expected conversion of ``req`` from what the engine has learned so far
        (it changes nothing); 0 for a destination it cannot place."""
        country = req.country or _region(req.to)
        if country is None or len(req.to) < 8:
            return 0.0
        keys = self._keys(req, country)
        path = tuple(self._cells[depth].get(key) for depth, key in enumerate(keys))
        return self._expected((req.account, req.use_case), path)

    def _expected(self, source: tuple[str, str], path: tuple[_Cell | None, ...]) -> float:
        """The source's conversion (Beta prior) times the lift of the narrowest
        destination cell that learns one: each cell's lift is its conversions over
        what its sources predicted, shrunk toward its parent's (the country's toward
        1) with its level's ``lift_weight``, kept within LIFT_RANGE."""
        base = self._sources.get(source, _Rate()).value(PRIOR_CONVERSION, PRIOR_WEIGHT)
        lift = 1.0
        for cell in path:
            if cell is None:
                continue  # never seen: its parent's
            weight = cell.level.lift_weight
            if weight:
                lift = (cell.lift_hits + weight * lift) / (cell.lift_trials + weight)
                lift = min(LIFT_RANGE[1], max(LIFT_RANGE[0], lift))
        return min(0.98, base * lift)

    @staticmethod
    def _keys(req: Request, country: str) -> tuple[str, ...]:
        """The request's cell keys, widest first (LEVELS)."""
        return (country, f"{country}/{req.mcc_mnc or '?'}", req.to[:-4], req.to[:-3], req.to)

    def request(self, req: Request, taken: Action | None = None) -> Decision:
        """Judge ``req``. ``taken``: another engine decided it so (a node of one cluster,
        docs/fraud.md "Live"): this one learns the code as sent (``allow``: judged as
        in monitor mode, its state moving as if it refused it where it would) or as
        never sent (``block``), whatever it would have answered itself."""
        self._forget_sent(req.ts)
        if self.cell_count() > self.max_cells:
            self._evict(req.ts)
        country = req.country or _region(req.to)
        if country is None or len(req.to) < 8:
            return Decision(req.id, Action.ALLOW, (Reason("unknown_destination", req.to),), 0.0)
        price = self.prices.of(country, req.mcc_mnc)
        reasons: list[Reason] = []
        if price is None:
            price = DEFAULT_PRICE
            reasons.append(Reason("unknown_price", country, {"assumed": price}))
        controls = self.controls.get(req.account) or self.controls.get("*")
        refusal: Reason | None = None  # monitor mode: what enforce would refuse for
        listed = False
        if controls is not None:
            verdict = self._control(controls, req, country, price)
            if verdict is not None and verdict.code != "allow_list":
                if self.mode == ENFORCE and taken is not Action.ALLOW:
                    return self._refuse(req, price, (*reasons, verdict))
                refusal = verdict
            listed = verdict is not None and verdict.code == "allow_list"
            if verdict is not None:
                reasons.append(verdict)
        source = (req.account, req.use_case)
        keys = self._keys(req, country)
        path = tuple(self._cell(depth, key) for depth, key in enumerate(keys))
        p = self._expected(source, path)
        scope = f"{req.account}/{req.use_case}|"
        scoped = tuple(self._scoped_cell(n, scope + keys[depth])
                       for n, depth in enumerate(SCOPED_DEPTHS))
        clients = self._client_cells(req)
        alarm = self._alarms.get(scope + keys[1])
        if alarm is None:
            alarm = self._alarms[scope + keys[1]] = _Cell(scope + keys[1], ALARM)
        group: tuple[_Cell, ...] = ()
        if path[0].count < UNFAMILIAR_COUNT:
            cell = self._unfamiliar.get(source)
            if cell is None:
                cell = self._unfamiliar[source] = _Cell(scope + "unfamiliar", UNFAMILIAR)
            group = (cell,)
        cells = (*path, *scoped, *clients, *group, alarm)
        for cell in cells:
            cell.decay(req.ts)
        at_risk = price * p
        range1k = path[3]
        tail = int(req.to[-3:]) if req.to[-3:].isdigit() else -1
        if (range1k.last_number >= 0 and tail != range1k.last_number
                and abs(tail - range1k.last_number) <= SEQUENCE_GAP
                and req.ts - range1k.last_number_ms <= SEQUENCE_MS):
            at_risk = price
            reasons.append(Reason("sequential", range1k.key,
                                  {"previous": range1k.last_number, "this": tail}))
        range1k.last_number, range1k.last_number_ms = tail, req.ts
        trusted = False
        if listed or refusal is not None:
            pass
        elif self._numbers.get(req.to):
            trusted = True
            reasons.append(Reason("trusted_number", req.to))
        else:
            verdict = self._judge(path, scoped, clients, group, alarm, at_risk, price, p,
                                  req.ts)
            if verdict is not None:
                if self.mode == ENFORCE and taken is not Action.ALLOW:
                    return self._refuse(req, price, (*reasons, verdict))
                refusal = verdict  # monitor: record it, send the code all the same
                reasons.append(verdict)
            # After the judgement: a sounding alone does not reach the strict floors (a
            # chance loss sounds it now and then; judged on the floors it had just switched
            # on, its own request closed its range and that block kept them on, seed 75).
            if taken is not Action.BLOCK:
                self._sound(alarm, path[1], at_risk, req.ts)
        if taken is Action.BLOCK:  # refused elsewhere, though this engine would send it
            return self._refuse(req, price, (*reasons, Reason("refused_elsewhere", req.to)))
        teaches = _teaches(cells)
        for cell in cells:
            if teaches and (cell.level.name not in GUARDED or cell.healthy()):
                cell.volume += price  # a client cell or alarm losing money learns no latitude
                cell.count += 1
        # A trusted number is always allowed: what its codes lose is that person's,
        # not its ranges' (a user who often asks and seldom types does not close the
        # range to its neighbours). Its country, network and number still count it.
        charged = tuple(c for c in cells if c.level.name not in RANGES) if trusted else cells
        for cell in charged:
            cell.add(at_risk, req.ts, req.ts)
            if cell.level.flight_ms:
                cell.flight += price
        if teaches:  # chance explains the loss of healthy traffic, not an attack's own codes
            alarm.noise += at_risk * (price - at_risk)  # price^2 x p(1 - p): its variance
        self._sent_order.append((req.ts, req.id))
        self._sent[req.id] = _Sent(req.ts, req.to, source, country, charged, price, at_risk,
                                   teaches, tuple(c for c in path if c.level.lift_weight))
        if controls is not None and country in controls.ceilings:
            day, spent = self._spent.get((req.account, country), (0, 0.0))
            today = req.ts // DAY_MS
            self._spent[(req.account, country)] = (today, price + (spent if day == today else 0))
        if refusal is not None:
            return Decision(req.id, Action.ALLOW, tuple(reasons), price, would=Action.BLOCK,
                            throttle_ms=_retry_after(refusal))
        if not reasons:
            reasons.append(Reason("within_budget", path[0].key,
                                  {"excess": round(path[0].excess, 4),
                                   "budget": round(path[0].budget(now=req.ts), 4)}))
        would = Action.ALLOW if self.mode == MONITOR else None
        return Decision(req.id, Action.ALLOW, tuple(reasons), price, would=would)

    @staticmethod
    def _sound(alarm: _Cell, network: _Cell, at_risk: float, now: int) -> None:
        """One source losing money across a network's ranges, none over its budget yet:
        count it as a block under the network (at most once per ALARM_MS), so its
        ranges meet the pressure and strict floors sooner. Refuses nothing itself."""
        if alarm.until <= now and alarm.excess + at_risk > alarm.budget():
            alarm.until = now + ALARM_MS
            alarm.excess *= alarm.level.reopen
            alarm.blocks += 1

    @staticmethod
    def _refuse(req: Request, price: float, reasons: tuple[Reason, ...]) -> Decision:
        return Decision(req.id, Action.BLOCK, reasons, price,
                        throttle_ms=_retry_after(reasons[-1]))

    def _control(self, controls: Controls, req: Request, country: str, price: float
                 ) -> Reason | None:
        """The customer's own rules: deny list, allow list, countries, daily ceilings."""
        if (prefix := _listed(controls.deny, req.to)) is not None:
            return Reason("deny_list", prefix)
        if (prefix := _listed(controls.allow, req.to)) is not None:
            return Reason("allow_list", prefix)
        if controls.countries is not None and country not in controls.countries:
            return Reason("geo_permission", f"country:{country}")
        ceiling = controls.ceilings.get(country)
        if ceiling is not None:
            day, spent = self._spent.get((req.account, country), (0, 0.0))
            if day != req.ts // DAY_MS:
                spent = 0.0
            if spent + price > ceiling:
                return Reason("country_ceiling", f"country:{country}",
                              {"spent": round(spent, 4), "ceiling": ceiling, "price": price})
        return None

    def _judge(self, path: tuple[_Cell, ...], scoped: tuple[_Cell, ...],
               clients: tuple[_Cell, ...], group: tuple[_Cell, ...], alarm: _Cell,
               at_risk: float, price: float, p: float, now: int) -> Reason | None:
        """The reason to refuse, narrowest cell first; None: allow."""
        for cell in (*reversed(path), *scoped, *clients):
            if cell.until > now:
                return Reason("cell_blocked", f"{cell.level.name}:{cell.key}",
                              {"until_ms": cell.until, "strikes": cell.strikes})
        figures = {"price": price, "expected_conversion": round(p, 4)}
        number = path[-1]
        if number.throttle_until > now:  # one code every THROTTLE_MS, a bot asks on
            if now < number.next_ok:
                number.waits += 1
                if number.waits < THROTTLE_WAITS:
                    return Reason("throttle", f"number:{number.key}",
                                  {"retry_after_ms": number.next_ok - now,
                                   "until_ms": number.throttle_until, "waits": number.waits})
                number.throttle_until = 0
                return self._block(number, path[:4], (), now, {
                    "budget": round(number.budget(at_risk), 4), **figures,
                    "waits": number.waits})
            number.next_ok = now + THROTTLE_MS
        number = path[-1]
        number_recent = max(0.0, number.recent)
        throttled = number.throttle_until > now
        # The source's alarm tightens its ranges on the network (strict floors for those
        # that never converted, pressure) while its soundings and its ranges' blocks add
        # up to one recent block (decayed: one of them alone falls below at once).
        alarmed = alarm.blocks >= 1
        for depth in range(len(path) - 1, -1, -1):
            if depth == 4 and throttled:
                continue  # the throttle governs the number now
            judged: tuple[tuple[_Cell, float], ...] = ((path[depth], 1.0),)
            if depth in SCOPED_DEPTHS:
                # A source's view of the range first: one source's loss blocks that
                # source only; the whole range needs more (an attack from many).
                judged = ((scoped[SCOPED_DEPTHS.index(depth)], 1.0),
                          (path[depth], SCOPED_WHOLE))
            for cell, factor in judged:
                # A range is judged on its other numbers: one person asking again and
                # again is the number's business (its own, smaller budget).
                own = max(0.0, number.shadow[depth - 2]) if depth in (2, 3) else 0.0
                budget = factor * cell.budget(at_risk, cold=cell.hits == path[depth].hits == 0
                                              and alarmed, now=now)
                over = cell.excess - own + at_risk > budget
                if not over and depth in (2, 3) and alarmed and factor == 1.0:
                    # Its network is under attack: a range that gathers loss quickly is
                    # met with a smaller budget.
                    budget = max(PRESSURE_FLOOR_CODES * at_risk,
                                 budget / (1 + PRESSURE * alarm.blocks))
                    over = cell.recent - number_recent + at_risk > budget
                if over and depth == 4 and cell.strikes == 0:
                    # A number's first time over: throttle it (a person may ask again
                    # later; a bot asking on turns it into a block).
                    cell.strikes = 1
                    cell.throttle_until = now + cell.level.block_ms
                    self._hold(cell)
                    cell.next_ok = now + THROTTLE_MS
                    cell.waits = 0
                    return Reason("throttle", f"number:{cell.key}", {
                        "excess": round(cell.excess, 4), "budget": round(budget, 4),
                        **figures, "retry_after_ms": THROTTLE_MS,
                        "until_ms": cell.throttle_until, "waits": 0})
                if over:
                    explained = (*path[1:depth + (cell is not path[depth])], *group)
                    wider = path[:depth] + (alarm,) * (cell is not path[depth])
                    return self._block(cell, wider, explained, now, {
                        "budget": round(budget, 4), **figures})
        own = max(0.0, number.excess)  # same half-life: one person's is the number's
        for cell in clients:  # an address block or a device losing money on many numbers
            if cell.hits:  # a person typed a code from it: shared with real users
                continue
            budget = cell.budget(at_risk) * self._client_trust(cell, path, clients)
            if cell.excess - own + at_risk > budget:
                return self._block(cell, (), (), now, {"budget": round(budget, 4), **figures})
        if group:  # an unfamiliar country: are such countries pumped at once?
            return self._unfamiliar_judge(path, group[0], at_risk, price, p, now)
        return None

    def _client_trust(self, cell: _Cell, path: tuple[_Cell, ...],
                      clients: tuple[_Cell, ...]) -> float:
        """A client cell's budget factor: its conversion at human speed shrunk toward
        its parent's (a device toward its address block, a block toward the country),
        over the parent's, within CLIENT_TRUST."""
        parent = path[0]
        if cell.level is SOURCE_LEVELS[1] and len(clients) == 2:
            parent = clients[0]
        base = (parent.hits + PRIOR_CONVERSION * PRIOR_WEIGHT) / (parent.trials + PRIOR_WEIGHT)
        own = (cell.hits + base * CLIENT_WEIGHT) / (cell.trials + CLIENT_WEIGHT)
        return min(CLIENT_TRUST[1], max(CLIENT_TRUST[0], own / base))

    def _block(self, cell: _Cell, wider: tuple[_Cell, ...], explained: tuple[_Cell, ...],
               now: int, figures: dict[str, float]) -> Reason:
        """Block ``cell`` (expiring, escalating); its loss is taken off ``explained``."""
        duration = min(MAX_BLOCK_MS, cell.level.block_ms * 2**cell.strikes)
        cell.until = now + duration
        cell.strikes += 1
        self._hold(cell)
        for above in wider:
            above.blocks += cell.hits == 0  # pure loss: an attack's mark
        # The block explains the loss, not the network's; the country keeps it: a
        # small country pumped range after range still adds up.
        for above in explained:
            above.excess = max(0.0, above.excess - cell.excess)
            above.recent = max(0.0, above.recent - cell.recent)
        cell.throttle_until = 0
        return Reason("loss_budget", f"{cell.level.name}:{cell.key}", {
            "excess": round(cell.excess, 4), **figures, "block_ms": duration,
            "strikes": cell.strikes})

    def _unfamiliar_judge(self, path: tuple[_Cell, ...], group: _Cell, at_risk: float,
                          price: float, p: float, now: int) -> Reason | None:
        """Many rarely-seen countries pumped at once through one source: each stays under
        its own budget, their sum does not. Once the source's group passes its budget it
        is on *alert* (expiring, escalating): a code to a rarely-seen country is then
        refused unless its credit covers it, or it converted at human speed since the
        alert began (the source's own codes: in the last hour) and has little loss."""
        country = path[0]
        figures = {"excess": round(group.excess, 4), "budget": round(group.budget(), 4),
                   "price": price, "expected_conversion": round(p, 4)}
        alerted = self._alerted.get(group.key, now)
        if group.until <= now:
            budget = group.budget()
            # Its loss, or its codes in flight at full price (before any receipt or any
            # expected conversion: a burst over many countries trips within a few codes),
            # over its budget and spread over countries: the source goes on alert. One
            # country's loss is left to its own cells (a launch is one country).
            flight = group.flight + price > budget
            if not ((group.excess + at_risk > budget and country.excess + at_risk
                     <= UNFAMILIAR_SPREAD * (group.excess + at_risk))
                    or (flight and country.flight + price
                        <= UNFAMILIAR_SPREAD * (group.flight + price))):
                # A person asking again is the number's business (its throttle).
                if group.flight - max(0.0, path[-1].flight) + price <= budget:
                    return None
                # ... but its codes in flight are judged by nothing else (a range or a
                # number meets a burst through its loss, ``price x p``): when they are
                # over the group's budget, the country that holds them is judged as if
                # the source were on alert, and only this country (seed 84: three of the
                # burst's first five codes, 1.2 of its 2.0 USD in flight, were to Laos);
                # the number's own codes are left out (a person asking again is the
                # number's business: its throttle). A launch goes on: its users' codes
                # typed in the last hour vouch for it.
                figures["flight"] = round(group.flight, 4)
                alerted = now
            else:
                figures["flight"] = round(group.flight, 4)
                duration = min(UNFAMILIAR_MAX_MS, group.level.block_ms * 2**group.strikes)
                group.until = now + duration
                group.strikes += 1
                self._hold(group)
                self._alerted[group.key] = alerted = now
                figures["block_ms"] = duration
        # Other sources' conversions before the alert say nothing of what this source
        # sends now: real users of a rarely-seen country convert now and then, and the
        # attack's codes to it passed on them (seed 84: 7 of its 12 countries had one in
        # the hour before, none of the source's own). One since the alert began vouches
        # for the country, and so does one of the source's own users in the last hour
        # (a launch by the alerted source goes on).
        converts = ((country.last_hit >= alerted
                     or now - self._own_hits.get((group.key, country.key), -HOUR_MS * 10**6)
                     < UNFAMILIAR_HIT_MS)
                    and country.excess < UNFAMILIAR_SUSPECT * country.budget())
        if country.excess + at_risk <= 0 or converts:
            return None
        figures["cell_excess"] = round(country.excess, 4)
        if group.until > now:
            figures.update(until_ms=group.until, strikes=group.strikes)
        return Reason("unfamiliar_countries", f"country:{country.key}", figures)

    # --- feedback -------------------------------------------------------------------------

    def receipt(self, event: Receipt) -> None:
        sent = self._sent.get(event.request_id)
        if sent is None or sent.delivered:
            return
        if event.status == "DELIVRD":
            sent.delivered = True
            for cell in sent.cells:
                cell.trials += 1
            if sent.teaches:
                p = self._sources.get(sent.source, _Rate()).value(PRIOR_CONVERSION,
                                                                   PRIOR_WEIGHT)
                self._sources.setdefault(sent.source, _Rate()).trials += 1
                for cell in sent.lifts:
                    cell.lift_trials += p
        elif not sent.settled:  # an outage or an unallocated number: not a loss
            sent.settled = True
            variance = sent.at_risk * (sent.price - sent.at_risk) if sent.teaches else 0.0
            for cell in sent.cells:
                cell.credit(sent.at_risk, sent.ts, event.ts)
                cell.land(sent.price, variance, sent.ts, event.ts)

    def verification(self, event: Verification) -> None:
        sent = self._sent.get(event.request_id)
        if sent is None or sent.settled:
            return
        if event.ts - sent.ts < HUMAN_MS:  # a bot typed it: count it lost, trust nothing
            self._remember(sent.number, False)
            extra = sent.price - sent.at_risk
            for cell in sent.cells:
                cell.add(extra, sent.ts, event.ts)
            sent.at_risk = sent.price
            return
        sent.settled = True
        if self._numbers.get(sent.number) is not False:
            self._remember(sent.number, True)
        if (group := self._unfamiliar.get(sent.source)) is not None:
            self._own_hits[(group.key, sent.country)] = event.ts
        for cell in sent.cells:
            cell.credit(sent.price, sent.ts, event.ts)
            cell.land(sent.price, 0.0, sent.ts, event.ts)
            cell.hits += 1
            cell.last_hit = event.ts
        if sent.delivered and sent.teaches:
            self._sources.setdefault(sent.source, _Rate()).hits += 1
            for cell in sent.lifts:
                cell.lift_hits += 1
