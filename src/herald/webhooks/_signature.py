"""Signing webhook requests, and verifying them in a receiver (pure: no I/O, no clock).

The scheme
----------
herald signs each POST with HMAC-SHA256 (RFC 2104, FIPS 180-4) keyed with the
account's webhook secret (the whole ``whsec_...`` string, as UTF-8 octets)
over the *signed payload*::

    signed payload = <timestamp> "." <raw request body>
    Herald-Signature: t=<timestamp>,v1=<64 lower-case hex digits>

``<timestamp>`` is the sending time in whole seconds since the Unix epoch,
in decimal; it is also sent alone as ``Herald-Timestamp``. Binding it into the
MAC lets a receiver refuse replays: a captured request stops verifying once
it is older than the receiver's tolerance. Each retry is signed afresh (new
timestamp, same body, same ``Herald-Event-Id``).

The header is a comma-separated list of ``key=value`` pairs. A receiver
accepts the request if *any* ``v1`` value matches, and ignores keys it does
not know, so herald can later add a scheme (``v2``) or send two ``v1``
signatures while a secret is being rotated without breaking receivers.

Comparison is constant-time (:func:`hmac.compare_digest`), so the time a
receiver takes to refuse a forged signature does not tell a forger how many
leading digits were right.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from herald.webhooks._errors import MalformedSignature, SignatureMismatch, TimestampOutsideTolerance

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_ID_HEADER",
    "MAX_SIGNATURE_HEADER_LENGTH",
    "SIGNATURE_HEADER",
    "SIGNATURE_SCHEME",
    "TIMESTAMP_HEADER",
    "sign",
    "signature_header",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "Herald-Signature"
TIMESTAMP_HEADER: Final = "Herald-Timestamp"
EVENT_ID_HEADER: Final = "Herald-Event-Id"
#: The only signature scheme today: HMAC-SHA256, hex.
SIGNATURE_SCHEME: Final = "v1"
#: Seconds a receiver accepts between the signed timestamp and its own clock,
#: either way: long enough for a slow network and ordinary clock skew, short
#: enough that a captured request is useless soon after.
DEFAULT_TOLERANCE: Final = 300.0
#: A header longer than this is refused before it is parsed: herald sends one
#: or two signatures (under 160 characters); a hostile sender could send megabytes.
MAX_SIGNATURE_HEADER_LENGTH: Final = 1024
#: Decimal digits of a timestamp: enough until the year 33658.
_MAX_TIMESTAMP_DIGITS: Final = 12
_HEX_DIGITS: Final = frozenset("0123456789abcdef")
_DIGEST_HEX_LENGTH: Final = 2 * hashlib.sha256().digest_size


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` signature (64 lower-case hex digits) of ``body`` sent at ``timestamp``."""
    if timestamp < 0:
        raise ValueError("timestamp must not be negative")
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The whole ``Herald-Signature`` header value: ``t=<timestamp>,v1=<hex>``."""
    return f"t={timestamp},{SIGNATURE_SCHEME}={sign(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    """``(timestamp, [v1 signatures])``; raises :class:`MalformedSignature`."""
    if not header:
        raise MalformedSignature(f"no {SIGNATURE_HEADER} header")
    if len(header) > MAX_SIGNATURE_HEADER_LENGTH:
        raise MalformedSignature(
            f"{SIGNATURE_HEADER} longer than {MAX_SIGNATURE_HEADER_LENGTH} characters"
        )
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise MalformedSignature(f"{SIGNATURE_HEADER}: {item.strip()!r} is not key=value")
        if key == "t":
            if timestamp is not None:
                raise MalformedSignature(f"{SIGNATURE_HEADER}: more than one t=")
            # isdecimal() alone would accept non-ASCII digits such as U+0663.
            if not (value.isascii() and value.isdigit()) or len(value) > _MAX_TIMESTAMP_DIGITS:
                raise MalformedSignature(f"{SIGNATURE_HEADER}: t= is not a Unix time")
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            if len(value) != _DIGEST_HEX_LENGTH or not set(value) <= _HEX_DIGITS:
                raise MalformedSignature(
                    f"{SIGNATURE_HEADER}: v1= is not {_DIGEST_HEX_LENGTH} lower-case hex digits"
                )
            signatures.append(value)
        # Any other key is a scheme this verifier does not know: ignored (module docstring).
    if timestamp is None:
        raise MalformedSignature(f"{SIGNATURE_HEADER}: no t=")
    if not signatures:
        raise MalformedSignature(f"{SIGNATURE_HEADER}: no {SIGNATURE_SCHEME}= signature")
    return timestamp, signatures


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    """Check a webhook request; return its signed timestamp (Unix seconds).

    ``header`` is the ``Herald-Signature`` value as received (``None`` if
    absent), ``body`` the raw request body *before* any JSON parsing, ``now``
    the receiver's clock (``time.time()``), ``tolerance`` the largest accepted
    distance in seconds between the two (default five minutes).

    Raises, each a :class:`SignatureError` with the ``http_status`` to answer:
    :class:`MalformedSignature` (400), :class:`SignatureMismatch` (401: altered
    body, or another secret), :class:`TimestampOutsideTolerance` (401: a
    replay, or clocks too far apart). On any of them, do not act on the body.
    The signature is checked before the timestamp, so a forged request is
    always reported as a mismatch.
    """
    if not tolerance >= 0:
        raise ValueError("tolerance must be a non-negative number of seconds")
    timestamp, signatures = _parse(header or "")
    expected = sign(secret, timestamp, body)
    matched = False
    for candidate in signatures:  # every candidate compared: no early exit to time
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureMismatch("the signature does not match the body under this secret")
    age = now - timestamp
    if abs(age) > tolerance:
        raise TimestampOutsideTolerance(
            f"signed {age:.0f} s {'ago' if age >= 0 else 'in the future'};"
            f" tolerance is {tolerance:g} s",
            age,
        )
    return timestamp
