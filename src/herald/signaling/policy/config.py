"""The guard's policy: one typed, validated value read from a TOML document.

:func:`parse_policy` turns TOML text into a :class:`Policy` (reading the file is
the caller's business: this module is pure). Every field is checked; a bad or
unknown field raises :class:`PolicyError` naming it (``partners[2].mcc``), so a
typo never silently disables a rule. ``docs/guard.md`` documents each field
with its unit; the dataclasses below carry the defaults.

Cross-field checks: every region a network names must be defined; partner and
home global-title prefixes must not overlap (a GT would otherwise be both home
and foreign); the salt must be long enough to make the hashes unguessable.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from herald.signaling.policy.categories import Category, opcode_for_name
from herald.signaling.policy.verdict import Action, Rule
from herald.signaling.privacy import MIN_SALT_BYTES

__all__ = [
    "DEFAULT_ACTIONS",
    "MIN_SALT_BYTES",
    "Home",
    "HomeRouting",
    "Limits",
    "ListEntry",
    "Lookups",
    "OnBlock",
    "Partner",
    "Policy",
    "PolicyError",
    "ProxySettings",
    "Rates",
    "Region",
    "SmsWindows",
    "Velocity",
    "parse_policy",
]


# Q.713 §3.12: return cause 1 is "no translation for this specific address",
# the answer that discloses least about why the message went no further.
DEFAULT_RETURN_CAUSE = 1

DEFAULT_ACTIONS: dict[Rule, Action] = {
    Rule.CAT1: Action.BLOCK,
    Rule.CAT2: Action.BLOCK,
    Rule.CAT3_VELOCITY: Action.BLOCK,
    Rule.SMS_CONSISTENCY: Action.BLOCK,
    Rule.SILENT_SMS: Action.BLOCK,
    Rule.LOOKUP_ONLY: Action.ALERT,
    Rule.REPEATED_LOOKUP: Action.ALERT,
    Rule.RANGE_SWEEP: Action.BLOCK,
    Rule.ADDRESS_MISMATCH: Action.BLOCK,
    Rule.TCAP_SANITY: Action.BLOCK,
    Rule.PLATFORM_EGRESS: Action.BLOCK,
    Rule.DENY_LIST: Action.BLOCK,
    Rule.RATE_LIMIT: Action.BLOCK,
    Rule.SMS_ORIGIN: Action.ALERT,
    Rule.SMS_SPOOFING: Action.BLOCK,
    Rule.MALFORMED: Action.BLOCK,
    Rule.HOME_ROUTING: Action.BLOCK,
}
# Rules whose action is not the policy's to choose: a refused home-routed
# delivery has nowhere to go.
FIXED_ACTIONS = frozenset({Rule.HOME_ROUTING})


class PolicyError(ValueError):
    """The policy document is not valid; ``field`` names the offending field.

    The caller should show the message and refuse to start (or keep running
    the previous policy): there is no partial policy.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Region:
    """A coarse place (a country's or region's centre), for velocity checks only."""

    name: str
    lat: float  # degrees, -90..90
    lon: float  # degrees, -180..180


@dataclass(frozen=True, slots=True)
class Home:
    mcc: str
    mnc: str
    gt_prefixes: tuple[str, ...]
    imsi_prefixes: tuple[str, ...]  # default: MCC+MNC
    msisdn_prefixes: tuple[str, ...]  # default: the GT prefixes
    region: str = ""
    name: str = "home"


@dataclass(frozen=True, slots=True)
class Partner:
    name: str
    mcc: str
    mnc: str
    gt_prefixes: tuple[str, ...]
    region: str = ""
    imsi_prefixes: tuple[str, ...] = ()  # default: MCC+MNC

    @property
    def plmn(self) -> str:
        return self.mcc + self.mnc


@dataclass(frozen=True, slots=True)
class ListEntry:
    """An allow- or deny-list entry. Empty ``gt_prefixes`` means any sender;
    empty ``operations`` means any operation."""

    gt_prefixes: tuple[str, ...] = ()
    operations: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Velocity:
    max_speed_kmh: float = 1000.0  # faster than any airliner's block speed
    slack_km: float = 500.0  # region centres are coarse: borders can be crossed at once


@dataclass(frozen=True, slots=True)
class SmsWindows:
    consistency_s: float = 120.0  # an MT-ForwardSM must follow its SRI-SM within this
    lookup_only_s: float = 60.0  # a successful SRI-SM must be followed by delivery in this


@dataclass(frozen=True, slots=True)
class Lookups:
    repeated_window_s: float = 600.0
    repeated_max: int = 5  # lookups of one number in the window before it is flagged
    sweep_window_s: float = 300.0
    sweep_distinct: int = 8  # distinct numbers looked up by one sender ...
    sweep_span: int = 32  # ... within this many consecutive numbers
    sweep_block_digits: int = 3  # a block is the numbers sharing all but this many digits


@dataclass(frozen=True, slots=True)
class Rates:
    per_gt_per_s: float = 200.0  # sustained operations per second per calling GT
    per_gt_burst: float = 400.0
    per_subscriber_per_min: float = 30.0  # operations about one subscriber per minute
    per_subscriber_burst: float = 15.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the engine's state; the oldest entry is evicted when full."""

    subscribers: int = 200_000  # locations, lookup counts and rate buckets per subscriber
    senders: int = 20_000  # calling GTs with rate buckets and sweep windows
    lookups_per_sender: int = 1024  # numbers remembered per sender for sweep detection
    sweep_senders: int = 1000  # senders with sweep state (x lookups_per_sender in all)
    dialogues: int = 200_000  # open TCAP dialogues remembered
    correlations: int = 200_000  # SRI-SM results awaiting their MT-ForwardSM


class OnBlock:
    DROP = "drop"
    UDTS = "udts"


@dataclass(frozen=True, slots=True)
class ProxySettings:
    on_block: str = OnBlock.DROP
    return_cause: int = DEFAULT_RETURN_CAUSE


@dataclass(frozen=True, slots=True)
class HomeRouting:
    """SMS home routing in the proxy (``docs/guard.md``): SRI-SM answers to
    home-routed networks carry a correlation IMSI and the router's GT instead
    of the subscriber's IMSI and serving node. Off without ``router_gt``."""

    router_gt: str = ""  # the home SMS router's global title; "" = home routing off
    origins: str = "all"  # "all": every other network; "foreign": those without an agreement
    except_partners: tuple[str, ...] = ()  # with origins "all": partners given the real values
    correlation_ttl_s: float = 30.0  # a correlation IMSI is valid this long for its delivery
    dialogue_ttl_s: float = 120.0  # a routed delivery dialogue idle this long is forgotten
    msin_prefix: str = ""  # correlation MSINs start with this (a range no subscriber has)
    max_entries: int = 100_000  # live correlations, routed dialogues, pending lookups (each)

    @property
    def enabled(self) -> bool:
        return bool(self.router_gt)


@dataclass(frozen=True, slots=True)
class Policy:
    """The whole policy. Build it with :func:`parse_policy`."""

    salt: bytes
    home: Home
    name: str = "policy"
    partners: tuple[Partner, ...] = ()
    regions: dict[str, Region] = field(default_factory=dict)
    platform_gts: tuple[str, ...] = ()
    category_overrides: dict[tuple[int, int | None, int | None], Category] = field(
        default_factory=dict
    )
    unknown_category: Category = Category.CAT1
    allow: tuple[ListEntry, ...] = ()
    deny: ListEntry = ListEntry()
    velocity: Velocity = Velocity()
    sms: SmsWindows = SmsWindows()
    lookups: Lookups = Lookups()
    rates: Rates = Rates()
    limits: Limits = Limits()
    actions: dict[Rule, Action] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    proxy: ProxySettings = ProxySettings()
    home_routing: HomeRouting = HomeRouting()

    def __repr__(self) -> str:
        return f"Policy(name={self.name!r}, partners={len(self.partners)}, salt=<hidden>)"


# --------------------------------------------------------------------------
# Validation helpers: each reads one TOML table and tracks unknown keys.

T = TypeVar("T")


class _Table:
    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise PolicyError(path, "must be a table")
        self.data: dict[str, Any] = data
        self.path = path
        self.used: set[str] = set()

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, check: Callable[[Any, str], T], default: T) -> T:
        self.used.add(key)
        if key not in self.data:
            return default
        return check(self.data[key], self._at(key))

    def require(self, key: str, check: Callable[[Any, str], T]) -> T:
        self.used.add(key)
        if key not in self.data:
            raise PolicyError(self._at(key), "is required")
        return check(self.data[key], self._at(key))

    def table(self, key: str) -> _Table:
        self.used.add(key)
        return _Table(self.data.get(key, {}), self._at(key))

    def tables(self, key: str) -> list[_Table]:
        self.used.add(key)
        items = self.data.get(key, [])
        if not isinstance(items, list):
            raise PolicyError(self._at(key), "must be an array of tables")
        return [_Table(item, f"{self._at(key)}[{i}]") for i, item in enumerate(items)]

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise PolicyError(self._at(extra[0]), "unknown field")


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise PolicyError(path, "must be a string")
    return value


def _digits(min_len: int, max_len: int) -> Callable[[Any, str], str]:
    def check(value: Any, path: str) -> str:
        text = _str(value, path)
        if not text.isdigit() or not text.isascii() or not min_len <= len(text) <= max_len:
            raise PolicyError(path, f"must be {min_len} to {max_len} decimal digits")
        return text

    return check


def _digit_list(max_len: int) -> Callable[[Any, str], tuple[str, ...]]:
    one = _digits(1, max_len)

    def check(value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise PolicyError(path, "must be an array of digit strings")
        return tuple(one(v, f"{path}[{i}]") for i, v in enumerate(value))

    return check


def _number(lo: float, hi: float) -> Callable[[Any, str], float]:
    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PolicyError(path, "must be a number")
        if not lo <= value <= hi:
            raise PolicyError(path, f"must be between {lo:g} and {hi:g}")
        return float(value)

    return check


def _integer(lo: int, hi: int) -> Callable[[Any, str], int]:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PolicyError(path, "must be an integer")
        if not lo <= value <= hi:
            raise PolicyError(path, f"must be between {lo} and {hi}")
        return value

    return check


def _operations(value: Any, path: str) -> frozenset[int]:
    if not isinstance(value, list):
        raise PolicyError(path, "must be an array of operation names or codes")
    codes = set()
    for i, item in enumerate(value):
        text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
        code = opcode_for_name(text) if isinstance(text, str) else None
        if code is None or not 0 <= code <= 255:
            raise PolicyError(f"{path}[{i}]", f"unknown MAP operation {item!r}")
        codes.add(code)
    return frozenset(codes)


def _enum(kind: type[Any], what: str) -> Callable[[Any, str], Any]:
    def check(value: Any, path: str) -> Any:
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in kind)
            raise PolicyError(path, f"{what} must be one of {allowed}") from None

    return check


_category = _enum(Category, "a category")
_action = _enum(Action, "an action")
_MAX_GT = 15  # E.164 §6.1: at most 15 digits
_MAX_IMSI = 15  # E.212 §2.2: at most 15 digits


# --------------------------------------------------------------------------


_D_VELOCITY, _D_SMSWINDOWS, _D_LOOKUPS, _D_RATES, _D_LIMITS = (
    Velocity(),
    SmsWindows(),
    Lookups(),
    Rates(),
    Limits(),
)


def parse_policy(text: str) -> Policy:
    """Parse and validate a TOML policy document.

    Raises :class:`PolicyError` (naming the field) on any invalid, missing or
    unknown field, and on TOML syntax errors.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError("", f"not valid TOML: {exc}") from None
    root = _Table(data, "")
    name = root.get("name", _str, "policy")
    salt_text = root.require("salt", _str)
    salt = salt_text.encode()
    if len(salt) < MIN_SALT_BYTES:
        raise PolicyError("salt", f"must be at least {MIN_SALT_BYTES} bytes")

    regions: dict[str, Region] = {}
    region_table = root.table("regions")
    for region_name in list(region_table.data):
        entry = _Table(region_table.data[region_name], f"regions.{region_name}")
        region_table.used.add(region_name)
        regions[region_name] = Region(
            region_name,
            entry.require("lat", _number(-90, 90)),
            entry.require("lon", _number(-180, 180)),
        )
        entry.done()

    def region_ref(value: Any, path: str) -> str:
        text = _str(value, path)
        if text not in regions:
            raise PolicyError(path, f"region {text!r} is not defined in [regions]")
        return text

    h = root.table("home")
    mcc = h.require("mcc", _digits(3, 3))
    mnc = h.require("mnc", _digits(2, 3))
    gt_prefixes = h.require("gt_prefixes", _digit_list(_MAX_GT))
    if not gt_prefixes:
        raise PolicyError("home.gt_prefixes", "must list at least one prefix")
    home = Home(
        mcc=mcc,
        mnc=mnc,
        gt_prefixes=gt_prefixes,
        imsi_prefixes=h.get("imsi_prefixes", _digit_list(_MAX_IMSI), (mcc + mnc,)),
        msisdn_prefixes=h.get("msisdn_prefixes", _digit_list(_MAX_GT), gt_prefixes),
        region=h.get("region", region_ref, ""),
        name=h.get("name", _str, "home"),
    )
    h.done()

    partners = []
    for p in root.tables("partners"):
        p_mcc = p.require("mcc", _digits(3, 3))
        p_mnc = p.require("mnc", _digits(2, 3))
        partner = Partner(
            name=p.require("name", _str),
            mcc=p_mcc,
            mnc=p_mnc,
            gt_prefixes=p.require("gt_prefixes", _digit_list(_MAX_GT)),
            region=p.get("region", region_ref, ""),
            imsi_prefixes=p.get("imsi_prefixes", _digit_list(_MAX_IMSI), (p_mcc + p_mnc,)),
        )
        p.done()
        for i, prefix in enumerate(partner.gt_prefixes):
            clash = next(
                (g for g in home.gt_prefixes if g.startswith(prefix) or prefix.startswith(g)),
                None,
            )
            if clash is not None:
                raise PolicyError(
                    f"{p.path}.gt_prefixes[{i}]", f"overlaps home GT prefix {clash!r}"
                )
        partners.append(partner)

    plat = root.table("platform")
    no_gts: tuple[str, ...] = ()
    platform_gts = plat.get("gts", _digit_list(_MAX_GT), no_gts)
    plat.done()

    cats = root.table("categories")
    unknown = cats.get("unknown", _category, Category.CAT1)
    overrides: dict[tuple[int, int | None, int | None], Category] = {}
    for o in cats.tables("override"):
        ops = o.require("operation", lambda v, path: _operations([v], path))
        ac = o.get("ac", _ac_pair, None)
        category = o.require("category", _category)
        o.done()
        for code in ops:
            key = (code, None, None) if ac is None else (code, ac[0], ac[1])
            overrides[key] = category
    cats.done()

    allow = []
    for a in root.tables("allow"):
        allow.append(
            ListEntry(
                a.get("gt_prefixes", _digit_list(_MAX_GT), ()),
                a.get("operations", _operations, frozenset()),
            )
        )
        a.done()
        if not allow[-1].gt_prefixes and not allow[-1].operations:
            raise PolicyError(a.path, "an allow entry must name GT prefixes or operations")
    d = root.table("deny")
    deny = ListEntry(
        d.get("gt_prefixes", _digit_list(_MAX_GT), ()),
        d.get("operations", _operations, frozenset()),
    )
    d.done()

    v = root.table("velocity")
    velocity = Velocity(
        max_speed_kmh=v.get("max_speed_kmh", _number(1, 50_000), _D_VELOCITY.max_speed_kmh),
        slack_km=v.get("slack_km", _number(0, 20_000), _D_VELOCITY.slack_km),
    )
    v.done()

    s = root.table("sms")
    sms = SmsWindows(
        consistency_s=s.get(
            "consistency_window_s", _number(1, 86_400), _D_SMSWINDOWS.consistency_s
        ),
        lookup_only_s=s.get(
            "lookup_only_window_s", _number(1, 86_400), _D_SMSWINDOWS.lookup_only_s
        ),
    )
    s.done()

    lk = root.table("lookups")
    lookups = Lookups(
        repeated_window_s=lk.get(
            "repeated_window_s", _number(1, 86_400), _D_LOOKUPS.repeated_window_s
        ),
        repeated_max=lk.get("repeated_max", _integer(1, 10_000), _D_LOOKUPS.repeated_max),
        sweep_window_s=lk.get("sweep_window_s", _number(1, 86_400), _D_LOOKUPS.sweep_window_s),
        sweep_distinct=lk.get("sweep_distinct", _integer(2, 10_000), _D_LOOKUPS.sweep_distinct),
        sweep_span=lk.get("sweep_span", _integer(2, 1_000_000), _D_LOOKUPS.sweep_span),
        sweep_block_digits=lk.get(
            "sweep_block_digits", _integer(1, 6), _D_LOOKUPS.sweep_block_digits
        ),
    )
    lk.done()
    if lookups.sweep_span < lookups.sweep_distinct:
        raise PolicyError("lookups.sweep_span", "must be at least lookups.sweep_distinct")
    if lookups.sweep_span > 10**lookups.sweep_block_digits:
        raise PolicyError(
            "lookups.sweep_span", "must fit in a block (10 ** lookups.sweep_block_digits)"
        )

    r = root.table("rates")
    rates = Rates(
        per_gt_per_s=r.get("per_gt_per_s", _number(0.001, 1e7), _D_RATES.per_gt_per_s),
        per_gt_burst=r.get("per_gt_burst", _number(1, 1e7), _D_RATES.per_gt_burst),
        per_subscriber_per_min=r.get(
            "per_subscriber_per_min", _number(0.001, 1e7), _D_RATES.per_subscriber_per_min
        ),
        per_subscriber_burst=r.get(
            "per_subscriber_burst", _number(1, 1e7), _D_RATES.per_subscriber_burst
        ),
    )
    r.done()

    lim = root.table("limits")
    limits = Limits(
        subscribers=lim.get("subscribers", _integer(16, 100_000_000), _D_LIMITS.subscribers),
        senders=lim.get("senders", _integer(16, 10_000_000), _D_LIMITS.senders),
        lookups_per_sender=lim.get(
            "lookups_per_sender", _integer(16, 1_000_000), _D_LIMITS.lookups_per_sender
        ),
        sweep_senders=lim.get("sweep_senders", _integer(16, 10_000_000), _D_LIMITS.sweep_senders),
        dialogues=lim.get("dialogues", _integer(16, 100_000_000), _D_LIMITS.dialogues),
        correlations=lim.get("correlations", _integer(16, 100_000_000), _D_LIMITS.correlations),
    )
    lim.done()

    act = root.table("actions")
    actions = dict(DEFAULT_ACTIONS)
    for rule_name in list(act.data):
        try:
            rule = Rule(rule_name)
        except ValueError:
            raise PolicyError(f"actions.{rule_name}", "unknown rule") from None
        actions[rule] = act.require(rule_name, _action)
        if rule in FIXED_ACTIONS and actions[rule] is not DEFAULT_ACTIONS[rule]:
            raise PolicyError(f"actions.{rule_name}", "is always block")
    act.done()

    px = root.table("proxy")
    proxy = ProxySettings(
        on_block=px.get("on_block", _on_block, OnBlock.DROP),
        return_cause=px.get("return_cause", _integer(0, 255), DEFAULT_RETURN_CAUSE),
    )
    px.done()
    home_routing = _home_routing(root.table("home_routing"), home, tuple(partners))
    root.done()

    return Policy(
        salt=salt,
        home=home,
        name=name,
        partners=tuple(partners),
        regions=regions,
        platform_gts=platform_gts,
        category_overrides=overrides,
        unknown_category=unknown,
        allow=tuple(allow),
        deny=deny,
        velocity=velocity,
        sms=sms,
        lookups=lookups,
        rates=rates,
        limits=limits,
        actions=actions,
        proxy=proxy,
        home_routing=home_routing,
    )


# E.212 §2.2: an IMSI is at most 15 digits; fewer than this many random MSIN
# digits would make correlation ids guessable and collide within the bound.
MIN_RANDOM_MSIN_DIGITS = 6
_D_HOME_ROUTING = HomeRouting()


def _home_routing(t: _Table, home: Home, partners: tuple[Partner, ...]) -> HomeRouting:
    router = t.get("router_gt", _digits(1, _MAX_GT), "")
    names = {p.name for p in partners}

    def partner_names(value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise PolicyError(path, "must be an array of partner names")
        for i, item in enumerate(value):
            if _str(item, f"{path}[{i}]") not in names:
                raise PolicyError(f"{path}[{i}]", f"no partner is named {item!r}")
        return tuple(value)

    def origins(value: Any, path: str) -> str:
        if value not in ("all", "foreign"):
            raise PolicyError(path, "must be 'all' (every other network) or 'foreign' "
                              "(networks without a roaming agreement)")
        return str(value)

    hr = HomeRouting(
        router_gt=router,
        origins=t.get("origins", origins, "all"),
        except_partners=t.get("except_partners", partner_names, ()),
        correlation_ttl_s=t.get(
            "correlation_ttl_s", _number(1, 3_600), _D_HOME_ROUTING.correlation_ttl_s
        ),
        dialogue_ttl_s=t.get("dialogue_ttl_s", _number(1, 3_600), _D_HOME_ROUTING.dialogue_ttl_s),
        msin_prefix=t.get("msin_prefix", _digits(1, 8), ""),
        max_entries=t.get("max_entries", _integer(16, 10_000_000), _D_HOME_ROUTING.max_entries),
    )
    t.done()
    if t.data and not router:
        raise PolicyError("home_routing.router_gt", "is required to turn home routing on")
    if hr.origins == "foreign" and hr.except_partners:
        raise PolicyError("home_routing.except_partners", "with origins = 'foreign' no partner "
                          "is home-routed: nothing to except")
    if router and not any(router.startswith(p) for p in home.gt_prefixes):
        raise PolicyError("home_routing.router_gt", "must be a home network GT (home.gt_prefixes)")
    random_digits = _MAX_IMSI - len(home.mcc + home.mnc) - len(hr.msin_prefix)
    if random_digits < MIN_RANDOM_MSIN_DIGITS:
        raise PolicyError(
            "home_routing.msin_prefix",
            f"leaves {random_digits} random MSIN digits; at least {MIN_RANDOM_MSIN_DIGITS} needed",
        )
    return hr


def _ac_pair(value: Any, path: str) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in value)
    ):
        raise PolicyError(path, "must be [ac_id, version], two integers")
    return (value[0], value[1])


def _on_block(value: Any, path: str) -> str:
    text = _str(value, path)
    if text not in (OnBlock.DROP, OnBlock.UDTS):
        raise PolicyError(path, f"must be {OnBlock.DROP!r} or {OnBlock.UDTS!r}")
    return text
