"""What the HTTP API is built from: :class:`ApiContext` and its limits."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from herald.accounts import Principal
from herald.admin import Admin
from herald.billing import no_prices
from herald.chat import ChatService
from herald.config import HttpConfig
from herald.defence import LiveDefence
from herald.guard.journal import GuardJournal
from herald.ids import IdGenerator
from herald.intake import DEFAULT_POLICY, NO_RULES, DestinationRules, IntakePolicy
from herald.metrics import Metrics
from herald.rating import PriceList
from herald.routes import LiveClasses
from herald.routing import RouteTable
from herald.store import MAX_IDEMPOTENCY_RESPONSE_OCTETS, NewMessage, Store
from herald.verify import VerifySettings

__all__ = [
    "MAX_BATCH_BODY_OCTETS",
    "MAX_BATCH_MESSAGES",
    "MAX_BODY_OCTETS",
    "AdminContext",
    "ApiContext",
    "ApiKeyVerifier",
    "ApiLimits",
    "ConnectorState",
    "UpstreamState",
    "Upstreams",
]

#: One message: a 255-part GSM text is 39,015 characters; as UCS-2 JSON escapes
#: (``\\uXXXX``, 6 octets each) 17,085 characters are 102,510 octets; plus
#: metadata (4 KiB) and the other fields. 256 KiB holds every valid message.
MAX_BODY_OCTETS: Final = 256 * 1024
#: The issue's limit for one batch call.
MAX_BATCH_MESSAGES: Final = 10_000
#: A batch body: 10,000 messages of 3 KiB each on average. Larger requests
#: are refused before they are read (memory bound; split the batch).
MAX_BATCH_BODY_OCTETS: Final = 32 * 1024 * 1024
#: Failed authentications per client address: refill rate (per second) and
#: burst. Each failure of a key that is not cached costs an argon2
#: verification (about 100 ms of a core); see ``_auth``.
AUTH_FAILURE_RATE: Final = 1.0
AUTH_FAILURE_BURST: Final = 10.0
#: Client addresses (and accounts) whose buckets are remembered at once.
MAX_TRACKED_KEYS: Final = 10_000
#: Seconds an account's settings (its rate limit, whether it is disabled) are used
#: without a re-read. A change made through :mod:`herald.admin` drops them at once
#: (in this process) or within a second (elsewhere); this bounds it if that fails.
ACCOUNT_CACHE_TTL: Final = 5.0
#: Idempotency records answer replays for 24 hours (the issue's figure).
IDEMPOTENCY_TTL: Final = 24 * 3600.0
#: Seconds of traffic an account may send at once (token bucket capacity).
BURST_SECONDS: Final = 2.0


class ApiKeyVerifier(Protocol):
    """What the API needs from :class:`herald.accounts.Accounts`."""

    def cached_api_key(self, presented: str, now: float) -> Principal | None:
        """The key's account if it verified lately (no verification needed)."""
        ...

    async def authenticate_api_key(
        self, presented: str, now: float, *, suspect: bool = False
    ) -> Principal:
        """Raises :class:`herald.accounts.InvalidCredentials`, and
        :class:`herald.accounts.LoginsBusy` for a ``suspect`` login."""
        ...


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """Limits of the HTTP API; the defaults are the named constants above."""

    max_body_octets: int = MAX_BODY_OCTETS
    max_batch_body_octets: int = MAX_BATCH_BODY_OCTETS
    max_batch_messages: int = MAX_BATCH_MESSAGES
    auth_failure_rate: float = AUTH_FAILURE_RATE
    auth_failure_burst: float = AUTH_FAILURE_BURST
    max_tracked_keys: int = MAX_TRACKED_KEYS
    account_cache_ttl: float = ACCOUNT_CACHE_TTL
    idempotency_ttl: float = IDEMPOTENCY_TTL
    burst_seconds: float = BURST_SECONDS
    max_idempotent_response_octets: int = MAX_IDEMPOTENCY_RESPONSE_OCTETS

    def __post_init__(self) -> None:
        if min(self.max_body_octets, self.max_batch_body_octets, self.max_batch_messages) < 1:
            raise ValueError("body and batch limits must be positive")
        if self.auth_failure_rate <= 0 or self.auth_failure_burst < 1:
            raise ValueError("auth_failure_rate must be positive and the burst at least 1")
        if self.max_tracked_keys < 1 or self.burst_seconds <= 0:
            raise ValueError("max_tracked_keys and burst_seconds must be positive")
        if self.account_cache_ttl < 0 or self.idempotency_ttl <= 0:
            raise ValueError("account_cache_ttl must not be negative, idempotency_ttl positive")


@dataclass(frozen=True, slots=True)
class UpstreamState:
    """One connector's binds, as ``/healthz`` reports them."""

    bound: int  # sessions that may submit (transmitter or transceiver), bound now
    binds: int  # such sessions configured


#: The connectors' binds now, by connector name; ``None`` when dispatch cannot
#: say (``herald serve``'s delivery process is not running or not reporting).
Upstreams = Callable[[], Mapping[str, UpstreamState] | None]


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """An upstream connector as the admin API shows it: configuration (no
    password) and its binds now (``bound`` ``None``: dispatch is not reporting)."""

    name: str
    host: str
    port: int
    system_id: str
    bind_type: str
    binds: int  # binds configured that may submit (0 for a receiver)
    bound: int | None
    tps: float
    window: int


def _no_connectors() -> Sequence[ConnectorState]:
    return ()


@dataclass(frozen=True, slots=True)
class AdminContext:
    """What the admin API (``/v1/admin``) and the console (``/console``) need: the
    admin service, the connectors' state, the number-table generation this
    process uses, the key that signs console sessions, and the guard's audit log."""

    service: Admin
    connectors: Callable[[], Sequence[ConnectorState]] = _no_connectors
    numbers_in_use: Callable[[], int] | None = None
    # Signs the console's session cookies (herald serve: derived from
    # <data-dir>/master.key, herald.console.console_key); the default, a random
    # key of this process, ends every session when the process restarts.
    console_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    # herald.toml's [[routes]], for the route explainer (None: not known here).
    fallback_routes: RouteTable | None = None
    # The signaling guard's audit log, read for GET /v1/admin/guard (None: none).
    guard: GuardJournal | None = None


def _never() -> bool:
    return False


def _ignore(messages: Sequence[NewMessage]) -> None:
    del messages


def _no_rules() -> DestinationRules:
    return NO_RULES


@dataclass(frozen=True, slots=True)
class ApiContext:
    """Everything :func:`herald.api.create_app` needs; nothing global.

    - ``clock``: epoch seconds (the service passes ``time.time``; tests a
      settable clock). Used for acceptance times, expiry, rate limits, the
      credential cache.
    - ``on_accepted``: called after each commit with the messages just
      accepted (the service wakes dispatch). It must not block or raise.
    - ``config.default_account_rate``: API requests per second per account
      (any endpoint); ``Account.rate_limit`` bounds messages per second.
    - ``upstreams``: the connectors' binds, for ``/healthz`` (``None``: an API
      without dispatch, whose health is its store's).
    - ``destinations``: the rules a destination is checked against as they
      stand (numbering plan, routes; the service passes
      :meth:`herald.numbers.NumberTables.rules`), called once per request.
    - ``admin``: serve the admin API (``/v1/admin``, see ``_admin``) on it.
    - ``prices``: an account's sell price list as it stands, ``None`` for an
      account that is not billed (the service passes
      :meth:`herald.billing.PriceLists.sell`); docs/billing.md.
    - ``verify``, ``verify_key``: the Verify API's settings and code key.
    - ``defence``: the pumping defence (``None``: the app makes its own).
    - ``classes``: the ``[[classes]]`` entries of the routes in force, for
      messages whose request names no class (``None``: the account's default).
    """

    store: Store
    accounts: ApiKeyVerifier
    ids: IdGenerator
    clock: Callable[[], float]
    metrics: Metrics
    config: HttpConfig = field(default_factory=HttpConfig)
    on_accepted: Callable[[Sequence[NewMessage]], None] = _ignore
    stopping: Callable[[], bool] = _never  # True once herald stops: sends get 503
    # Refuse a callback_url naming a private, loopback or link-local address
    # (herald serve: [webhooks] block_private_addresses, on by default).
    block_private_callbacks: bool = False
    intake: IntakePolicy = DEFAULT_POLICY
    destinations: Callable[[], DestinationRules] = _no_rules
    limits: ApiLimits = field(default_factory=ApiLimits)
    upstreams: Upstreams | None = None
    # The admin API is served when given (``herald serve`` always gives it).
    admin: AdminContext | None = None
    prices: Callable[[int], PriceList | None] = no_prices
    classes: LiveClasses | None = None
    verify: VerifySettings = field(default_factory=VerifySettings)
    # The key of the Verify API's code hashes (herald serve: derived from
    # <data-dir>/master.key, herald.verify.code_key); the default, a random key
    # of this process, cannot check codes sent by another process.
    verify_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    defence: LiveDefence | None = None
    # The chat channels (docs/channels.md): chains in POST /v1/messages, the
    # providers' webhooks. None: this herald sends SMS only.
    chat: ChatService | None = None
