"""Decisions of the webhook sender as functions of data (pure: no I/O, no clock).

- :class:`RetryPolicy`: when the next attempt is due after a failure, or
  that there is none (given up).
- :func:`check_url`: whether a callback URL is one herald posts to.
- :func:`address_allowed`: whether an IP address may be connected to when
  private destinations are blocked (server-side request forgery hygiene).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from herald.config import WebhookConfig
from herald.store import MAX_CALLBACK_URL_LENGTH
from herald.webhooks._errors import InvalidWebhookUrl

__all__ = [
    "ALLOWED_SCHEMES",
    "JITTER",
    "IPAddress",
    "RetryPolicy",
    "WebhookTarget",
    "address_allowed",
    "blocked_destination",
    "check_url",
    "endpoint",
    "literal_address",
    "redact_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Schemes herald posts to. Anything else (file:, ftp:, gopher:, data:) is how a
#: URL fetcher is turned against its own host, and is no webhook.
ALLOWED_SCHEMES: Final = frozenset({"http", "https"})
#: Share of each retry delay drawn at random (the delay lies between
#: ``(1 - JITTER)`` times and the whole of the exponential step), so that the
#: events queued during a receiver's outage do not all come back in the same second.
JITTER: Final = 0.5
#: 2**60 seconds is far past any ``backoff_max``; the bound keeps ``2.0**n`` finite.
_MAX_DOUBLINGS: Final = 60
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped, with a bounded number of attempts.

    After the n-th failed attempt the next one waits ``step(n) =
    min(backoff_max, backoff_min * 2**(n-1))`` seconds, less a random share
    of at most :data:`JITTER` of it, and never less than ``backoff_min``.
    After ``max_attempts`` attempts (or a failure retrying cannot cure) the
    event is given up.
    """

    backoff_min: float = 1.0
    backoff_max: float = 600.0
    max_attempts: int = 12

    def __post_init__(self) -> None:
        if not (math.isfinite(self.backoff_min) and self.backoff_min > 0):
            raise ValueError("backoff_min must be a positive number of seconds")
        if not (math.isfinite(self.backoff_max) and self.backoff_max >= self.backoff_min):
            raise ValueError("backoff_max must be a number of seconds >= backoff_min")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def from_config(cls, config: WebhookConfig) -> RetryPolicy:
        return cls(config.backoff_min, config.backoff_max, config.max_attempts)

    def step(self, failures: int) -> float:
        """The un-jittered wait after ``failures`` (>= 1) failed attempts."""
        if failures < 1:
            raise ValueError("failures must be at least 1")
        doublings = min(failures - 1, _MAX_DOUBLINGS)
        return min(self.backoff_max, self.backoff_min * 2.0**doublings)

    def delay(self, failures: int, draw: float) -> float:
        """The wait after ``failures`` failed attempts; ``draw`` is uniform in [0, 1)."""
        if not 0.0 <= draw < 1.0:
            raise ValueError("draw must be in [0, 1)")
        step = self.step(failures)
        return max(self.backoff_min, step * (1.0 - JITTER * draw))

    def next_attempt_at(
        self, now: float, attempts: int, *, retryable: bool, draw: float
    ) -> float | None:
        """When to try again after attempt ``attempts`` failed at ``now``; ``None``: never."""
        if not retryable or attempts >= self.max_attempts:
            return None
        return now + self.delay(attempts, draw)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A checked callback URL: ``host`` is lower case, without IPv6 brackets."""

    url: str
    scheme: str
    host: str
    port: int

    @property
    def ip(self) -> IPAddress | None:
        """The host as an address when the URL names one, else ``None`` (a name)."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def check_url(url: str) -> WebhookTarget:
    """Check a callback URL; raises :class:`InvalidWebhookUrl` saying what is wrong.

    Accepted: ``http`` or ``https``, a host, an optional port 1..65535, at most
    :data:`~herald.store.MAX_CALLBACK_URL_LENGTH` characters, no whitespace or
    control characters. User info (``https://user:pass@host/``) is allowed, as
    it is a common way to protect a receiver, and is redacted in errors.
    """
    if not url:
        raise InvalidWebhookUrl("the callback URL is empty")
    if len(url) > MAX_CALLBACK_URL_LENGTH:
        raise InvalidWebhookUrl(f"the callback URL is longer than {MAX_CALLBACK_URL_LENGTH}")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise InvalidWebhookUrl("the callback URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"the callback URL does not parse: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidWebhookUrl(
            f"the callback URL's scheme must be http or https, not {scheme or 'none'!r}"
        )
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidWebhookUrl("the callback URL names no host")
    if port == 0:
        raise InvalidWebhookUrl("the callback URL's port must be 1..65535")
    return WebhookTarget(url, scheme, host, port or _DEFAULT_PORTS[scheme])


def redact_url(url: str) -> str:
    """``url`` without its user info, for logs and stored errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc="***@" + netloc).geturl()


def endpoint(url: str) -> str:
    """Where ``url`` posts to: its host, with the port if it names one; ``""``
    if it has none. Never its path, query or user info: they may carry the
    customer's secrets, and this is kept in a message's timeline."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # an unparsable URL or port
        return ""
    if not host:
        return ""
    if ":" in host:  # RFC 3986 §3.2.2: an IPv6 literal keeps its brackets
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the mapping forms."""
    if address.ipv4_mapped is not None:  # RFC 4291 §2.5.5.2 ::ffff:a.b.c.d
        return address.ipv4_mapped
    if address.sixtofour is not None:  # RFC 3056 2002:AABB:CCDD::/48
        return address.sixtofour
    if address in _NAT64:  # RFC 6052 §2.1 well-known prefix 64:ff9b::/96
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


def address_allowed(address: IPAddress) -> bool:
    """Whether herald may connect to ``address`` when private destinations are blocked.

    Only globally routable unicast addresses (IANA special-purpose registries,
    RFC 6890) are: not loopback, private (RFC 1918, RFC 4193), link-local
    (which holds cloud metadata services at 169.254.169.254), shared
    (RFC 6598), reserved, unspecified or multicast. IPv6 forms that embed an
    IPv4 address are judged by that address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_allowed(embedded)
    return address.is_global and not address.is_multicast


_HEX: Final = frozenset("0123456789abcdefABCDEF")
_OCTAL: Final = frozenset("01234567")
_DECIMAL: Final = frozenset("0123456789")


def _ipv4_number(part: str) -> int | None:
    """One part of an IPv4 literal as C's ``inet_aton`` reads it: decimal, 0x hex, 0 octal."""
    if not part.isascii():
        return None
    if part[:2].lower() == "0x":
        digits, base, allowed = part[2:], 16, _HEX
    elif len(part) > 1 and part[0] == "0":
        digits, base, allowed = part[1:], 8, _OCTAL
    else:
        digits, base, allowed = part, 10, _DECIMAL
    if not digits or not set(digits) <= allowed:
        return None  # int() would take what C does not: "0x" again, "_", signs, spaces
    return int(digits, base)


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names without any lookup, or ``None`` for a name.

    IPv6 and dotted-quad IPv4, and also the IPv4 forms C's ``inet_aton`` (so
    ``getaddrinfo``, curl and most HTTP clients) takes: ``2130706433``,
    ``0x7f000001``, ``127.1``, ``0177.0.0.1`` are all 127.0.0.1.
    """
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(parts):
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    *head, last = [n for n in numbers if n is not None]
    if any(n > 0xFF for n in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = 0
    for n in head:
        value = value << 8 | n
    return ipaddress.IPv4Address(value << (8 * (4 - len(head))) | last)


def blocked_destination(
    url: str, address_filter: Callable[[IPAddress], bool] = address_allowed
) -> str | None:
    """Why herald will not post to ``url`` when private destinations are blocked,
    when that is known without resolving it: a literal address ``address_filter``
    refuses, or ``localhost`` (RFC 6761: always loopback). ``None`` otherwise
    (a name is checked when it is resolved, at each delivery)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this machine (loopback)"
    address = literal_address(host)
    if address is not None and not address_filter(address):
        named = host if host.strip("[]") == str(address) else f"{host} ({address})"
        return f"{named} is a private, loopback, link-local or reserved address"
    return None
