"""The synthetic world the corpus is drawn from: countries, networks, number
ranges, prices per segment, daily curves, accounts and use cases.

Fixed (the same for every seed): a seed changes who sends what and when, not
the map. Numbers have each country's real E.164 shape (country code, national
length, mobile prefixes per network) but are drawn at random inside those
prefixes, so they are synthetic (a number may exist: never send to one). Ranges
are spread like real ones: a network holds hundreds of 10k ranges in a big
country and a handful in a small one. Mobile country and network codes
are the real ones where they exist.

A *10k range* is a number without its last four digits, a *1k range* without
its last three.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACCOUNTS",
    "ALL_COUNTRIES",
    "CURRENCY",
    "HOURLY",
    "LAUNCH_COUNTRY",
    "LEGIT_COUNTRIES",
    "NETWORK_CONVERSION",
    "NEVER_SEEN",
    "RARE_COUNTRIES",
    "USE_CASE_CONVERSION",
    "WEEKDAY",
    "Account",
    "Country",
    "Network",
    "prices_document",
]

CURRENCY = "USD"

#: Relative request rate by local hour (0-23): people asleep at 3 a.m., a
#: morning rise, an evening peak.
HOURLY = (
    0.20, 0.12, 0.08, 0.07, 0.08, 0.15, 0.35, 0.60, 0.85, 1.00, 1.05, 1.05,
    1.00, 1.00, 0.95, 0.95, 1.00, 1.05, 1.10, 1.15, 1.10, 0.95, 0.70, 0.40,
)
#: Relative rate by weekday, Monday first.
WEEKDAY = (1.00, 1.00, 1.00, 1.00, 1.05, 0.85, 0.80)

#: Share of delivered codes that a human types in, by use case.
USE_CASE_CONVERSION = {
    "signup": 0.62,
    "login": 0.86,
    "password_reset": 0.72,
    "transaction": 0.92,
}


#: Networks whose users type fewer (or more) of their codes than their country's,
#: a factor on the country's conversion (``corpus.py --networks-differ``). Real
#: traffic has them: a network whose SMS arrive late (a congested or badly routed
#: SMSC: the user gives up or asks for another channel), whose phones lack
#: autofill, or whose subscribers are mostly on cheap prepaid plans; and one whose
#: users type a little more than the country's. Chosen without looking at the
#: engine: one attacked network among them (Indonesia's Indosat, a `curve_follow`
#: target) and several that no attack uses on purpose.
NETWORK_CONVERSION = {
    "40420": 0.65,   # India, Vi: SMS delivered late under load
    "62120": 0.70,   # Nigeria, Airtel
    "72402": 0.75,   # Brazil, TIM
    "334050": 0.70,  # Mexico, AT&T
    "51021": 0.75,   # Indonesia, Indosat (a premium network some attacks pick)
    "26201": 1.05,   # Germany, Telekom: autofill on most of its phones
}


@dataclass(frozen=True, slots=True)
class Network:
    mcc_mnc: str
    name: str
    prefixes: tuple[str, ...]  # national mobile prefixes, after the country code
    price: float  # per segment, in CURRENCY


@dataclass(frozen=True, slots=True)
class Country:
    iso: str
    cc: str  # E.164 country code
    national_len: int  # digits after the country code
    utc_offset: float  # hours, for the daily curve
    price: float  # per segment: the country's price when the network is unknown
    weight: float  # share of legitimate traffic
    conversion: float  # factor on USE_CASE_CONVERSION
    networks: tuple[Network, ...]

    def number(self, prefix: str, subscriber: int) -> str:
        """The E.164 number of ``subscriber`` (taken modulo the range) under ``prefix``."""
        digits = self.national_len - len(prefix)
        return f"+{self.cc}{prefix}{subscriber % 10**digits:0{digits}d}"


def _n(mcc_mnc: str, name: str, prefixes: str, price: float) -> Network:
    return Network(mcc_mnc, name, tuple(prefixes.split()), price)


LEGIT_COUNTRIES = (
    Country("US", "1", 10, -5, 0.0079, 0.20, 0.95, (
        _n("310260", "T-Mobile", "202 312", 0.0079),
        _n("311480", "Verizon", "213 415", 0.0079),
        _n("310410", "AT&T", "646 305", 0.0079),
    )),
    Country("GB", "44", 10, 0, 0.040, 0.16, 1.00, (
        _n("23430", "EE", "7700 7701", 0.040),
        _n("23415", "Vodafone", "7702 7703", 0.040),
        _n("23410", "O2", "7704 7705", 0.040),
    )),
    Country("IN", "91", 10, 5.5, 0.0050, 0.14, 0.80, (
        _n("40410", "Airtel", "98100 98101", 0.0050),
        _n("405857", "Jio", "70000 70001", 0.0050),
        _n("40420", "Vi", "98200 98201", 0.0050),
    )),
    Country("DE", "49", 11, 1, 0.080, 0.10, 0.95, (
        _n("26201", "Telekom", "1511 1512", 0.080),
        _n("26202", "Vodafone", "1520 1522", 0.080),
        _n("26203", "O2", "1590 1760", 0.080),
    )),
    Country("BR", "55", 11, -3, 0.025, 0.10, 0.85, (
        _n("72405", "Claro", "11991 21991", 0.025),
        _n("72406", "Vivo", "11995 21995", 0.025),
        _n("72402", "TIM", "11981 21981", 0.025),
    )),
    Country("FR", "33", 9, 1, 0.070, 0.08, 0.92, (
        _n("20801", "Orange", "612 670", 0.070),
        _n("20810", "SFR", "611 661", 0.070),
        _n("20820", "Bouygues", "660 698", 0.070),
    )),
    Country("ID", "62", 11, 7, 0.35, 0.07, 0.75, (
        _n("51010", "Telkomsel", "812 813", 0.35),
        _n("51011", "XL", "817 818", 0.35),
        _n("51021", "Indosat", "814 815", 0.42),
    )),
    Country("NG", "234", 10, 1, 0.28, 0.06, 0.70, (
        _n("62130", "MTN", "803 806", 0.28),
        _n("62120", "Airtel", "802 808", 0.28),
        _n("62150", "Glo", "805 807", 0.33),
    )),
    Country("MX", "52", 10, -6, 0.030, 0.05, 0.85, (
        _n("334020", "Telcel", "155 551", 0.030),
        _n("33403", "Movistar", "556", 0.030),
        _n("334050", "AT&T", "553", 0.030),
    )),
    Country("ES", "34", 9, 1, 0.070, 0.04, 0.90, (
        _n("21407", "Movistar", "600 609", 0.070),
        _n("21401", "Vodafone", "607 610", 0.070),
        _n("21403", "Orange", "617 620", 0.070),
    )),
)


_Row = tuple[str, str, str, float, float, float, int, str]


def _small(row: _Row, weight: float) -> Country:
    """A country with two networks: an ordinary one and a premium-priced one
    (the kind whose operators share termination fees with pumpers). ``row``:
    ISO code, country code, MCC, UTC offset, price, premium price, national
    length, first digits of mobile numbers."""
    iso, cc, mcc, offset, price, premium, national_len, first = row
    return Country(iso, cc, national_len, offset, price, weight, 0.75, (
        _n(f"{mcc}01", f"{iso}-Mobile", f"{first}0 {first}1", price),
        _n(f"{mcc}02", f"{iso}-Premium", f"{first}5 {first}6", premium),
    ))


#: Countries with a trickle of real traffic (about nine requests a day): the
#: "rarely seen" of the attack styles.
_RARE: tuple[_Row, ...] = (
    ("KG", "996", "437", 6, 0.26, 0.62, 9, "70"),
    ("TJ", "992", "436", 5, 0.31, 0.70, 9, "90"),
    ("MM", "95", "414", 6.5, 0.24, 0.55, 9, "97"),
    ("SL", "232", "619", 0, 0.30, 0.66, 8, "76"),
    ("GN", "224", "611", 0, 0.29, 0.58, 9, "62"),
    ("MR", "222", "609", 0, 0.33, 0.71, 8, "44"),
    ("TD", "235", "622", 1, 0.32, 0.69, 8, "66"),
    ("SO", "252", "637", 3, 0.34, 0.74, 9, "61"),
    ("PG", "675", "537", 10, 0.36, 0.80, 8, "70"),
    ("SB", "677", "540", 11, 0.37, 0.82, 7, "74"),
    ("MV", "960", "472", 5, 0.22, 0.52, 7, "79"),
    ("LA", "856", "457", 7, 0.21, 0.50, 10, "20"),
    ("KH", "855", "456", 7, 0.20, 0.48, 9, "12"),
    ("NP", "977", "429", 5.75, 0.19, 0.45, 10, "98"),
    ("BY", "375", "257", 3, 0.25, 0.60, 9, "29"),
    ("AZ", "994", "400", 4, 0.27, 0.63, 9, "50"),
    ("UZ", "998", "434", 5, 0.28, 0.67, 9, "90"),
    ("TM", "993", "438", 5, 0.30, 0.69, 8, "65"),
    ("AF", "93", "412", 4.5, 0.29, 0.64, 9, "70"),
    ("YE", "967", "421", 3, 0.31, 0.72, 9, "77"),
)
RARE_COUNTRIES = tuple(_small(row, weight=0.0004) for row in _RARE)

#: Countries no account has ever sent to: burst targets.
_NEVER: tuple[_Row, ...] = (
    ("ER", "291", "657", 3, 0.38, 0.95, 7, "71"),
    ("KM", "269", "654", 3, 0.36, 0.90, 7, "32"),
    ("NR", "674", "536", 12, 0.40, 1.05, 7, "55"),
    ("TO", "676", "539", 13, 0.35, 0.88, 7, "77"),
    ("VU", "678", "541", 11, 0.37, 0.92, 7, "59"),
)
NEVER_SEEN = tuple(_small(row, weight=0.0) for row in _NEVER)

#: Where an account launches mid-week (a legitimate trap): never seen before.
LAUNCH_COUNTRY = Country("KE", "254", 9, 3, 0.19, 0.0, 0.80, (
    _n("63902", "Safaricom", "710 711", 0.19),
    _n("63903", "Airtel", "733 734", 0.19),
))

ALL_COUNTRIES = (*LEGIT_COUNTRIES, *RARE_COUNTRIES, *NEVER_SEEN, LAUNCH_COUNTRY)


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    share: float  # of the legitimate volume
    use_cases: tuple[tuple[str, float], ...]  # (use case, weight)
    hints: bool  # sends client hints (ip, device, ...) at all
    platforms: tuple[str, ...]


ACCOUNTS = (
    Account("shopfast", 0.35, (("signup", 0.3), ("login", 0.6), ("password_reset", 0.1)),
            True, ("ios", "android", "web")),
    Account("paynow", 0.30, (("login", 0.7), ("transaction", 0.25), ("password_reset", 0.05)),
            True, ("ios", "android")),
    Account("chatly", 0.25, (("signup", 0.5), ("login", 0.5)), True, ("ios", "android")),
    # A customer on the raw API: no client hints, no country or network either.
    Account("rawsender", 0.10, (("login", 1.0),), False, ()),
)


def prices_document() -> dict[str, object]:
    """``prices.json``: price per segment by country and by network."""
    return {
        "currency": CURRENCY,
        "country": {c.iso: c.price for c in ALL_COUNTRIES},
        "mcc_mnc": {n.mcc_mnc: n.price for c in ALL_COUNTRIES for n in c.networks},
    }
