"""herald's configuration: one typed, validated object per component.

Read from ``herald.toml`` (TOML) at the edge, by `load_config`; everything
below receives the typed objects. Every field is documented with its unit.
A bad value raises `ConfigError` naming the field path (``connectors[1].tps``),
so a user can fix the file without reading code.

Secrets (connector passwords) may be written inline or, better, named by
``password_env``; they never appear in ``repr``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from herald.cluster.leases import DEFAULT_SETTINGS, LeaseSettings
from herald.fraud import AddressTypes
from herald.intake import (
    DEFAULT_POLICY,
    DEFAULT_VALIDITY_PERIOD,
    MAX_VALIDITY_PERIOD,
    MIN_VALIDITY_PERIOD,
    IntakePolicy,
)
from herald.smpp.message_id import IdPolicy
from herald.text import Method, SmscDefault
from herald.verify import Autofill, VerifySettings

__all__ = [
    "DEFAULT_CLAIM_LEASE",
    "DEFAULT_DATA_DIR",
    "DEFAULT_RECEIPT_TIMEOUT",
    "GUARD_AUDIT_LOG",
    "ClusterConfig",
    "ConfigError",
    "ConnectorConfig",
    "GuardConfig",
    "HeraldConfig",
    "HttpConfig",
    "InboundConfig",
    "RouteConfig",
    "SmppServerConfig",
    "StoreConfig",
    "WebhookConfig",
    "load_config",
    "parse_config",
    "parse_listen",
]

DEFAULT_DATA_DIR: Final = Path("herald-data")
#: The guard's audit log herald serve reads when [guard] names none, in the data dir.
GUARD_AUDIT_LOG: Final = "guard-audit.jsonl"
BIND_TYPES: Final = ("transmitter", "receiver", "transceiver")

#: Seconds without a final receipt before herald looks into a part (see
#: ConnectorConfig.receipt_timeout): most receipts come within seconds and an
#: SMSC retrying a phone that is off reports within its retry schedule's first
#: hours, while a receipt lost on the way never comes. An hour keeps slow
#: deliveries from being ended early and still ends lost ones the same day,
#: far inside the default validity (48 h).
DEFAULT_RECEIPT_TIMEOUT: Final = 3600.0

#: Seconds a dispatch claim holds a message (renewed while held): how soon the
#: messages a dead herald had claimed are claimed again (DispatchSettings.lease).
DEFAULT_CLAIM_LEASE: Final = 20.0

# Hostile or mistyped values that would make herald misbehave rather than fail.
MAX_BINDS_PER_CONNECTOR: Final = 64
MAX_WINDOW: Final = 1024
MAX_TPS: Final = 100_000.0
#: Event loops ``herald serve`` can run on ("auto": uvloop where it is installed).
LOOPS: Final = ("auto", "asyncio", "uvloop")


class ConfigError(ValueError):
    """The configuration is invalid; ``path`` names the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def parse_listen(value: str, path: str, default_port: int) -> tuple[str, int]:
    """``"127.0.0.1:2775"``, ``"[::1]:2775"``, ``":2775"`` or ``"host"`` -> (host, port)."""
    text = value.strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(path, f"unterminated IPv6 literal in {value!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(path, f"expected ':port' after ']' in {value!r}")
            port = _port(rest[1:], path)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, path)
    host = host or "127.0.0.1"
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(path, f"{host!r} is not an IP address") from None
    return host, port


def _port(text: str, path: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigError(path, f"port must be 0..65535, got {text!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str = "127.0.0.1"  # binding wider is an explicit setting
    port: int = 8080
    # Requests per second each account may make to the API (token bucket, burst = 2 s).
    default_account_rate: float = 5000.0
    # Reverse proxies (networks) whose X-Forwarded-For herald believes: the client
    # address the pumping defence sees (docs/fraud.md, "Live"). None: the peer's.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass(frozen=True, slots=True)
class SmppServerConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Seconds a new connection may stay unbound before it is closed.
    session_init_timeout: float = 5.0
    # Seconds of silence before herald sends enquire_link to a customer bind.
    enquire_link_interval: float = 30.0
    # deliver_sm (receipts, MO) herald leaves unanswered on one bind.
    window: int = 64
    # Connection admission (herald.net.server): in all, per client address,
    # and not yet bound (in all and per address).
    max_connections: int = 1000
    max_per_address: int = 100
    max_unbound: int = 64
    max_unbound_per_address: int = 8


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    """One upstream operator connection (herald is the ESME)."""

    name: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    system_type: str = ""
    bind_type: str = "transceiver"
    binds: int = 1  # simultaneous binds; they share one token bucket
    window: int = 10  # unacknowledged submit_sm per bind
    tps: float = 50.0  # submit_sm per second across all binds of this connector (inf: no limit)
    receipt_id_policy: IdPolicy = IdPolicy.AS_IS
    smsc_default: SmscDefault = SmscDefault.GSM7  # what data_coding 0 means upstream
    tls: bool = False
    tls_verify: bool = True
    enquire_link_interval: float = 30.0  # seconds
    response_timeout: float = 30.0  # seconds before an unanswered submit_sm is retried
    reconnect_min: float = 1.0  # seconds; backoff doubles up to reconnect_max
    reconnect_max: float = 60.0
    source_ton: int | None = None  # override the customer's TON/NPI when set
    source_npi: int | None = None
    # How a long message travels upstream: UDH with an 8- or 16-bit reference,
    # SAR TLVs, or one PDU with the whole body in message_payload.
    concatenation: Method = Method.UDH8
    # Seconds after a part was accepted without a final receipt before herald
    # looks into it: asks with query_sm (``query_sm``), or ends the message
    # ``expired`` with error 0x10005 (docs/dispatch.md, "Receipts that never come").
    receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT
    # Whether this upstream answers query_sm (SMPP 3.4 §4.8); many do not.
    query_sm: bool = False


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """Destinations starting with ``prefix`` (E.164 digits, no '+') go to ``connectors``,
    tried in order; the first that accepts wins, a permanent failure moves on."""

    prefix: str
    connectors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InboundConfig:
    """Mobile-originated messages to ``number`` (exactly) or to numbers starting
    with ``prefix`` belong to ``account`` (an account name). An exact number
    beats a prefix, a longer prefix a shorter one; ``prefix = ""`` names the
    default account."""

    account: str
    number: str | None = None
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    timeout: float = 10.0  # seconds per POST
    max_attempts: int = 12
    backoff_min: float = 1.0  # seconds; doubles per attempt up to backoff_max
    backoff_max: float = 600.0
    concurrency: int = 32  # POSTs in flight at once, over all endpoints
    per_endpoint: int = 16  # connections (so POSTs in flight) per endpoint at most
    # Refuse callback URLs that name or resolve to private, loopback,
    # link-local or reserved addresses (SSRF: cloud metadata, local services).
    # On by default; the demo, tests and benchmarks turn it off to post to
    # receivers on 127.0.0.1.
    block_private_addresses: bool = True


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """The signaling guard's audit log, which ``herald serve`` reads (read-only) for
    ``GET /v1/admin/guard`` and the console's Guard page (docs/guard.md): the file
    ``herald guard scan|proxy --audit`` writes (``None``: ``<data_dir>/guard-audit.jsonl``),
    and the file holding its HMAC key (``None``: ``$HERALD_AUDIT_KEY``, else unkeyed)."""

    audit_log: Path | None = None
    audit_key_file: Path | None = None

    def log_path(self, data_dir: Path) -> Path:
        return self.audit_log if self.audit_log is not None else data_dir / GUARD_AUDIT_LOG


#: The fewest ``[store] history_days``: the pumping defence rebuilds itself
#: from the last 7 days of its decisions (``herald.defence.HISTORY``), and a
#: day partition is dropped only once wholly older than the retention.
MIN_HISTORY_DAYS = 8
#: The fewest ``[store] message_days``: the pumping defence rebuilds itself from
#: a week of decisions and their messages' conversions, which go with the messages.
MIN_MESSAGE_DAYS = MIN_HISTORY_DAYS


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where ``herald serve`` keeps messages: ``url`` ``None`` is the embedded SQLite
    store in the data directory; ``postgresql://user@host:port/database`` is a
    PostgreSQL database that several nodes share (docs/scale-out.md). Keep the
    password out of it (PGPASSWORD or ~/.pgpass); it is never shown in ``repr``.
    ``history_days``: on PostgreSQL, the days of history (the pumping defence's
    decisions) kept in its day partitions, older ones dropped by the cluster's
    leader; ``None`` keeps all (the partitions are created either way).

    Retention, on either store (``docs/retention.md``; carried out
    by the leader's housekeeping, :mod:`herald.dispatch._retention`):
    ``message_days``, the days a final message is kept after it ended (with its
    segments, routes and events; never a message not final); ``text_days``, the
    days a final message keeps its text after it ended (fewer than
    ``message_days``); ``cdr_days``, the days a CDR is kept after its message
    was accepted. ``None`` keeps them all."""

    url: str | None = field(default=None, repr=False)
    history_days: int | None = None
    message_days: int | None = None
    text_days: int | None = None
    cdr_days: int | None = None


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """``[cluster]``: the timings of nodes sharing a PostgreSQL store (docs/leases.md),
    in seconds. ``leases``: a bind slot's lease, its margin and renewal period (the
    cross-field checks of :class:`~herald.cluster.LeaseSettings`). ``claim_lease``:
    how long a dispatch claim holds a message, so how soon a dead node's (or a
    killed herald's, on SQLite too) in-flight messages are sent again."""

    leases: LeaseSettings = DEFAULT_SETTINGS
    claim_lease: float = DEFAULT_CLAIM_LEASE


@dataclass(frozen=True, slots=True)
class HeraldConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    # Messages, accounts, ... : SQLite in data_dir unless [store] url names PostgreSQL.
    # The data directory holds the master key, guard state and demo files either way.
    store: StoreConfig = StoreConfig()
    http: HttpConfig = HttpConfig()
    smpp: SmppServerConfig = SmppServerConfig()
    webhooks: WebhookConfig = WebhookConfig()
    connectors: tuple[ConnectorConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    inbound: tuple[InboundConfig, ...] = ()
    intake: IntakePolicy = DEFAULT_POLICY
    verify: VerifySettings = field(default_factory=VerifySettings)
    # [fraud] address_types, asn_types: the pumping defence's client address types
    # (docs/fraud.md, "Live"); empty: only the clients' own ip_type hints.
    address_types: AddressTypes = field(default_factory=AddressTypes)
    guard: GuardConfig = GuardConfig()
    cluster: ClusterConfig = ClusterConfig()
    # Processes of `herald serve`: 1 = everything in one; 2 = the front (HTTP,
    # customers' SMPP, webhooks, receipts out) and dispatch (operators) apart;
    # 0 = "auto": 2 when this process may use 2 CPUs or more, else 1.
    processes: int = 0
    # With 2 processes, the nice value the front adds to its own (0..19): when the
    # CPUs are all busy, messages already accepted go out before more come in; but
    # every other busy process then wins against intake too. 0: off (the default).
    # (herald.workers._supervisor; docs/performance.md).
    intake_nice: int = 0
    # The event loop: "uvloop", "asyncio" (the standard library's) or "auto" (uvloop
    # where it is installed: 15 % less CPU per HTTP request, equal elsewhere).
    loop: str = "auto"
    # [channels.*] (docs/channels.md): herald.chat.ChatSettings, or None (SMS only).
    channels: Any = None

    def event_loop(self) -> str:
        """``loop`` with "auto" resolved: "uvloop" if it can be imported, else "asyncio"."""
        if self.loop != "auto":
            return self.loop
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "asyncio"
        return "uvloop"

    def process_count(self) -> int:
        """``processes`` with "auto" resolved for this machine."""
        if self.processes:
            return self.processes
        return 2 if len(os.sched_getaffinity(0)) >= 2 else 1

    def connector(self, name: str) -> ConnectorConfig:
        for c in self.connectors:
            if c.name == name:
                return c
        raise KeyError(name)


# -- parsing --------------------------------------------------------------------


class _Table:
    """Typed reads from one TOML table, each error naming its path; unknown keys rejected."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, "must be a table")
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise ConfigError(self.at(key), "must be a number, not a boolean")
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise ConfigError(self.at(key), f"must be {names}, got {type(value).__name__}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = float(self.get(key, (int, float), default))
        if not (math.isfinite(value) and low <= value <= high):
            raise ConfigError(self.at(key), f"must be between {low:g} and {high:g}, got {value:g}")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = int(self.get(key, int, default))
        if not low <= value <= high:
            raise ConfigError(self.at(key), f"must be between {low} and {high}, got {value}")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = str(self.get(key, str, default))
        if value not in choices:
            raise ConfigError(self.at(key), f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def required(self, key: str, kind: type) -> Any:
        if key not in self.data:
            raise ConfigError(self.at(key), "is required")
        return self.get(key, kind, None)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(self.at(unknown[0]), "unknown setting")


def _guard(t: _Table, base: Path) -> GuardConfig:
    def path(key: str) -> Path | None:
        value = t.get(key, str, None)
        if value is None:
            return None
        if not value.strip():
            raise ConfigError(t.at(key), "must be a file name")
        found = Path(value)
        return found if found.is_absolute() else base / found

    found = GuardConfig(audit_log=path("audit_log"), audit_key_file=path("audit_key_file"))
    t.finish()
    return found


def _store(t: _Table) -> StoreConfig:
    url = t.get("url", str, None)
    if url is not None:
        from herald.store.postgres import check_url  # the one check herald db migrate makes

        try:
            check_url(url)
        except ValueError as exc:  # its message shows the URL with the password redacted
            raise ConfigError(t.at("url"), str(exc)) from None
    days = t.get("history_days", int, None)
    if days is not None:
        # The pumping defence rebuilds itself from a week of its decisions.
        days = t.integer("history_days", days, MIN_HISTORY_DAYS, 100 * 366)
    messages = t.get("message_days", int, None)
    if messages is not None:
        messages = t.integer("message_days", messages, MIN_MESSAGE_DAYS, 100 * 366)
    texts = t.get("text_days", int, None)
    if texts is not None:
        texts = t.integer("text_days", texts, 1, 100 * 366)
        if messages is not None and texts >= messages:
            raise ConfigError(t.at("text_days"), f"must be fewer than message_days ({messages}):"
                              " the message and its text go together then")  # fmt: skip
    cdrs = t.get("cdr_days", int, None)
    if cdrs is not None:
        cdrs = t.integer("cdr_days", cdrs, 1, 100 * 366)
    t.finish()
    return StoreConfig(url=url, history_days=days, message_days=messages, text_days=texts,
                       cdr_days=cdrs)  # fmt: skip


def _cluster(t: _Table) -> ClusterConfig:
    defaults = LeaseSettings()
    lease = t.number("lease", defaults.lease, 0.1, 3600)
    margin = t.number("margin", defaults.margin, 0.01, 3600)
    renew_every = t.number("renew_every", defaults.renew_every, 0.01, 3600)
    claim_lease = t.number("claim_lease", DEFAULT_CLAIM_LEASE, 0.5, 3600)
    try:
        leases = LeaseSettings(lease=lease, margin=margin, renew_every=renew_every)
    except ValueError as exc:  # the cross-field checks; the message names both fields
        raise ConfigError(t.path, str(exc).replace("leases.", "")) from None
    t.finish()
    return ClusterConfig(leases=leases, claim_lease=claim_lease)


def _http(t: _Table) -> HttpConfig:
    host, port = parse_listen(t.get("listen", str, "127.0.0.1:8080"), t.at("listen"), 8080)
    rate = t.number("default_account_rate", 5000.0, 0.1, MAX_TPS)
    proxies = []
    for n, entry in enumerate(t.get("trusted_proxies", list, [])):
        try:
            proxies.append(ipaddress.ip_network(entry, strict=False))
        except (TypeError, ValueError):
            raise ConfigError(f"{t.at('trusted_proxies')}[{n}]",
                              f"an IP address or network (10.0.0.0/8), not {entry!r}") from None
    t.finish()
    return HttpConfig(host=host, port=port, default_account_rate=rate,
                      trusted_proxies=tuple(proxies))


def _fraud(t: _Table) -> AddressTypes:
    tables: dict[str, dict[str, list[str]]] = {}
    for key in ("address_types", "asn_types"):
        table = _Table(t.get(key, dict, {}), t.at(key))
        tables[key] = {kind: table.get(kind, list, []) for kind in table.data}
        table.finish()
    t.finish()
    for key, arguments in (("address_types", {"ranges": tables["address_types"]}),
                           ("asn_types", {"asns": tables["asn_types"]})):
        try:
            AddressTypes(**arguments)
        except ValueError as exc:
            raise ConfigError(t.at(key), str(exc)) from None
    return AddressTypes(tables["address_types"], tables["asn_types"])


def _verify(t: _Table) -> VerifySettings:
    accounts: dict[str, Autofill] = {}
    table = t.get("accounts", dict, {})
    for name, raw in table.items():
        a = _Table(raw, f"{t.at('accounts')}.{name}")
        try:
            accounts[name] = Autofill(a.get("android_app_hash", str, None),
                                      a.get("ios_domain", str, None), a.get("sender", str, None))
        except ValueError as exc:
            raise ConfigError(a.path, str(exc)) from None
        a.finish()
    settings = VerifySettings(
        ttl=t.number("ttl", 600.0, 30, 86_400),
        max_checks=t.integer("max_checks", 5, 1, 100),
        sends_per_hour=t.integer("sends_per_hour", 5, 1, 1000),
        sender=t.get("sender", str, "Verify"),
        accounts=accounts,
    )
    t.finish()
    return settings


def _smpp(t: _Table, base: Path) -> SmppServerConfig:
    host, port = parse_listen(t.get("listen", str, "127.0.0.1:2775"), t.at("listen"), 2775)
    cert, key = t.get("tls_cert", str, None), t.get("tls_key", str, None)
    if (cert is None) != (key is None):
        raise ConfigError(t.at("tls_cert"), "tls_cert and tls_key go together")
    config = SmppServerConfig(
        host=host,
        port=port,
        tls_cert=base / cert if cert else None,
        tls_key=base / key if key else None,
        session_init_timeout=t.number("session_init_timeout", 5.0, 0.1, 3600),
        enquire_link_interval=t.number("enquire_link_interval", 30.0, 1, 3600),
        window=t.integer("window", 64, 1, MAX_WINDOW),
        max_connections=t.integer("max_connections", 1000, 1, 1_000_000),
        max_per_address=t.integer("max_per_address", 100, 1, 1_000_000),
        max_unbound=t.integer("max_unbound", 64, 1, 1_000_000),
        max_unbound_per_address=t.integer("max_unbound_per_address", 8, 1, 1_000_000),
    )
    t.finish()
    return config


def _tps(t: _Table) -> float:
    """``tps``: submits per second, or ``"unlimited"`` (also TOML's ``inf``): the
    operator sets no rate and the binds' windows set the pace."""
    value = t.data.get("tps")
    if isinstance(value, str) or value == math.inf:
        t.used.add("tps")
        if value not in ("unlimited", math.inf):
            raise ConfigError(t.at("tps"), f'must be a number or "unlimited", got {value!r}')
        return math.inf
    return t.number("tps", 50.0, 0.01, MAX_TPS)


def _webhooks(t: _Table) -> WebhookConfig:
    config = WebhookConfig(
        timeout=t.number("timeout", 10.0, 0.1, 300),
        max_attempts=t.integer("max_attempts", 12, 1, 100),
        backoff_min=t.number("backoff_min", 1.0, 0.01, 3600),
        backoff_max=t.number("backoff_max", 600.0, 0.01, 86400),
        concurrency=t.integer("concurrency", 32, 1, 1024),
        per_endpoint=t.integer("per_endpoint", 16, 1, 1024),
        block_private_addresses=t.get("block_private_addresses", bool, True),
    )
    if config.backoff_max < config.backoff_min:
        raise ConfigError(t.at("backoff_max"), "must not be below backoff_min")
    t.finish()
    return config


def _intake(t: _Table) -> IntakePolicy:
    prefixes = t.get("test_prefixes", list, [])
    for i, prefix in enumerate(prefixes):
        if not isinstance(prefix, str) or not prefix.lstrip("+").isdigit():
            raise ConfigError(f"{t.at('test_prefixes')}[{i}]", "must be E.164 digits")
    default = t.number("default_validity", DEFAULT_VALIDITY_PERIOD, 60, 30 * 86400)
    longest = t.number("max_validity", MAX_VALIDITY_PERIOD, 60, 30 * 86400)
    if longest < default:
        raise ConfigError(t.at("max_validity"), "must not be below default_validity")
    policy = IntakePolicy(
        require_valid_number=t.get("require_valid_number", bool, True),
        test_prefixes=tuple(p.lstrip("+") for p in prefixes),
        default_validity=default,
        min_validity=min(MIN_VALIDITY_PERIOD, default),
        max_validity=longest,
    )
    t.finish()
    return policy


def _password(t: _Table, env: Mapping[str, str]) -> str:
    inline = t.get("password", str, None)
    var = t.get("password_env", str, None)
    if (inline is None) == (var is None):
        raise ConfigError(t.at("password"), "give exactly one of password or password_env")
    if var is not None:
        if var not in env:
            raise ConfigError(t.at("password_env"), f"environment variable {var} is not set")
        return env[var]
    return str(inline)


def _enum(t: _Table, key: str, enum_type: Any, default: Any) -> Any:
    names = tuple(m.value for m in enum_type)
    return enum_type(t.choice(key, default.value, names))


def _connector(t: _Table, env: Mapping[str, str]) -> ConnectorConfig:
    name = t.required("name", str)
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(t.at("name"), "must be letters, digits, '-' or '_'")
    tls = t.get("tls", bool, False)
    config = ConnectorConfig(
        name=name,
        host=t.required("host", str),
        port=_port(str(t.required("port", int)), t.at("port")),
        system_id=t.required("system_id", str),
        password=_password(t, env),
        system_type=t.get("system_type", str, ""),
        bind_type=t.choice("bind_type", "transceiver", BIND_TYPES),
        binds=t.integer("binds", 1, 1, MAX_BINDS_PER_CONNECTOR),
        window=t.integer("window", 10, 1, MAX_WINDOW),
        tps=_tps(t),
        receipt_id_policy=_enum(t, "receipt_id_policy", IdPolicy, IdPolicy.AS_IS),
        smsc_default=_enum(t, "data_coding_0", SmscDefault, SmscDefault.GSM7),
        tls=tls,
        tls_verify=t.get("tls_verify", bool, True),
        enquire_link_interval=t.number("enquire_link_interval", 30.0, 1, 3600),
        response_timeout=t.number("response_timeout", 30.0, 0.1, 3600),
        reconnect_min=t.number("reconnect_min", 1.0, 0.01, 3600),
        reconnect_max=t.number("reconnect_max", 60.0, 0.01, 86400),
        source_ton=t.get("source_ton", int, None),
        source_npi=t.get("source_npi", int, None),
        concatenation=_enum(t, "concatenation", Method, Method.UDH8),
        receipt_timeout=t.number("receipt_timeout", DEFAULT_RECEIPT_TIMEOUT, 1, 30 * 86400),
        query_sm=t.get("query_sm", bool, False),
    )
    if len(config.system_id) > 15:
        raise ConfigError(t.at("system_id"), "SMPP 3.4 allows at most 15 characters")
    if config.reconnect_max < config.reconnect_min:
        raise ConfigError(t.at("reconnect_max"), "must not be below reconnect_min")
    t.finish()
    return config


def _route(t: _Table, known: set[str]) -> RouteConfig:
    prefix = t.get("prefix", str, "").lstrip("+")
    if prefix and not prefix.isdigit():
        raise ConfigError(t.at("prefix"), f"must be digits (an E.164 prefix), got {prefix!r}")
    names = t.required("connectors", list)
    if not names:
        raise ConfigError(t.at("connectors"), "must name at least one connector")
    for i, name in enumerate(names):
        if name not in known:
            raise ConfigError(f"{t.at('connectors')}[{i}]", f"no connector named {name!r}")
    t.finish()
    return RouteConfig(prefix=prefix, connectors=tuple(names))


def _digits(t: _Table, key: str) -> str | None:
    value = t.get(key, str, None)
    if value is None:
        return None
    digits: str = value.removeprefix("+")
    if len(digits) > 20 or (digits and not (digits.isascii() and digits.isdigit())):
        raise ConfigError(t.at(key), f"must be up to 20 digits, got {value!r}")
    return digits


def _inbound(t: _Table) -> InboundConfig:
    account = t.required("account", str)
    if not account:
        raise ConfigError(t.at("account"), "must name an account")
    number, prefix = _digits(t, "number"), _digits(t, "prefix")
    if (number is None) == (prefix is None):
        raise ConfigError(t.at("number"), "give exactly one of number or prefix")
    if number == "":
        raise ConfigError(t.at("number"), "must not be empty (prefix = \"\" is the default)")
    t.finish()
    return InboundConfig(account=account, number=number, prefix=prefix)


def parse_config(
    data: Mapping[str, Any], *, base: Path = Path("."), env: Mapping[str, str] | None = None
) -> HeraldConfig:
    """Validate a parsed TOML document into a `HeraldConfig` (raises `ConfigError`)."""
    env = os.environ if env is None else env
    top = _Table(data, "")
    data_dir = Path(top.get("data_dir", str, str(DEFAULT_DATA_DIR)))
    store = _store(_Table(top.get("store", dict, {}), "store"))
    http = _http(_Table(top.get("http", dict, {}), "http"))
    smpp = _smpp(_Table(top.get("smpp", dict, {}), "smpp"), base)
    webhooks = _webhooks(_Table(top.get("webhooks", dict, {}), "webhooks"))
    connectors = tuple(
        _connector(_Table(c, f"connectors[{i}]"), env)
        for i, c in enumerate(top.get("connectors", list, []))
    )
    seen: set[str] = set()
    for i, c in enumerate(connectors):
        if c.name in seen:
            raise ConfigError(f"connectors[{i}].name", f"duplicate connector name {c.name!r}")
        seen.add(c.name)
    routes = tuple(
        _route(_Table(r, f"routes[{i}]"), seen) for i, r in enumerate(top.get("routes", list, []))
    )
    inbound = tuple(
        _inbound(_Table(r, f"inbound[{i}]")) for i, r in enumerate(top.get("inbound", list, []))
    )
    intake = _intake(_Table(top.get("intake", dict, {}), "intake"))
    verify = _verify(_Table(top.get("verify", dict, {}), "verify"))
    address_types = _fraud(_Table(top.get("fraud", dict, {}), "fraud"))
    guard = _guard(_Table(top.get("guard", dict, {}), "guard"), base)
    cluster = _cluster(_Table(top.get("cluster", dict, {}), "cluster"))
    processes = parse_processes(top.get("processes", (str, int), "auto"), top.at("processes"))
    intake_nice = top.integer("intake_nice", 0, 0, 19)
    loop = top.choice("loop", "auto", LOOPS)
    from herald.chat._config import parse_channels  # herald.chat imports this module

    channels = parse_channels(top.get("channels", dict, None), env)
    for i, c in enumerate(connectors):
        if c.receipt_timeout >= intake.default_validity:
            raise ConfigError(
                f"connectors[{i}].receipt_timeout",
                f"must be below [intake] default_validity ({intake.default_validity:g} s):"
                " a message's validity would end it first")
    claimed: set[tuple[str, str]] = set()
    for i, rule in enumerate(inbound):
        key = ("number", rule.number) if rule.number is not None else ("prefix", rule.prefix or "")
        if key in claimed:
            raise ConfigError(f"inbound[{i}].{key[0]}", f"another rule has {key[0]} {key[1]!r}")
        claimed.add(key)
    top.finish()
    return HeraldConfig(
        data_dir=data_dir if data_dir.is_absolute() else base / data_dir,
        store=store,
        http=http,
        smpp=smpp,
        webhooks=webhooks,
        connectors=connectors,
        routes=routes,
        inbound=inbound,
        intake=intake,
        verify=verify,
        address_types=address_types,
        guard=guard,
        cluster=cluster,
        processes=processes,
        intake_nice=intake_nice,
        loop=loop,
        channels=channels,
    )


def parse_processes(value: object, path: str) -> int:
    """``"auto"`` (0) or 1 or 2: the processes ``herald serve`` runs."""
    if value == "auto":
        return 0
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value not in (1, 2):
        raise ConfigError(path, f'must be "auto", 1 or 2, got {value!r}')
    return value


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> HeraldConfig:
    """Read and validate ``herald.toml``; relative paths are relative to the file."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("", f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path}: {exc}") from None
    return parse_config(data, base=path.parent, env=env)
